package billing_test

// Fuzz targets of the portal endpoint and the webhook handler. Each checks
// invariants, not only the absence of panics: every reply is one of the
// contract's JSON shapes with the exact headers; a refused request makes no
// Stripe call and writes nothing; what reaches Stripe (the fake's record of
// the request) is re-checked with net/url against the allowlist. Seed
// corpora live in testdata/fuzz/<FuzzName>/ and run as normal tests;
// scripts/fuzz runs each target for 10,000 executions.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76/webhook"
)

// fuzzAllowed is the allowlist of the body fuzz target, the one
// hostileReturnURLs (returnurl_test.go) is written against.
var fuzzAllowed = []string{"https://app.example.com/billing/", "https://other.example.com"}

// fuzzDefaultReturn is the configured return URL of the body fuzz target:
// outside fuzzAllowed, so a request cannot name it and pass.
const fuzzDefaultReturn = "https://app.example.com/account?from=default"

// expectedForToken is the contract's status for the access_token value tok,
// from the kit's StaticAuth table and standard users, with the customer a
// created session must be for.
func expectedForToken(tok string) (int, string) {
	switch tok {
	case billingtest.TokenBasic:
		return 200, billingtest.CustomerBasic
	case billingtest.TokenPro:
		return 200, billingtest.CustomerPro
	case billingtest.TokenFree:
		return 403, ""
	case billingtest.TokenNoCustomer:
		return 404, ""
	}
	return 401, "" // none, unknown, expired, unknown user, oversized
}

// FuzzPortalCookie sends arbitrary Cookie headers. The expected status is
// derived independently: net/http's own cookie parsing finds the
// access_token value, the kit's token table says whose it is. Only a 200
// may reach Stripe (exactly once, for that user's customer); the store is
// never written; the reply never echoes the token.
func FuzzPortalCookie(f *testing.F) {
	for _, s := range []string{
		"", "access_token=" + billingtest.TokenPro, "access_token=" + billingtest.TokenFree,
		"access_token=" + billingtest.TokenExpired, "access_token=tok_pro; access_token=tok_free",
		`access_token="tok_pro"`, "ACCESS_TOKEN=tok_pro", "access_token=tok_pro\x00",
		"other=1; access_token=" + billingtest.TokenNoCustomer, "access_token=" + strings.Repeat("A", 5000),
	} {
		f.Add(s)
	}
	fake := billingtest.StartStripe(f)
	fake.Seed()
	store := billingtest.NewStore()
	h := billingtest.NewPortalService(f, fake, store)
	f.Fuzz(func(t *testing.T, cookie string) {
		fake.Reset()
		r := httptest.NewRequest(http.MethodPost, portalPath, nil)
		r.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := checkPortalReply(t, w)

		tok := ""
		if c, err := (&http.Request{Header: http.Header{"Cookie": {cookie}}}).Cookie(billing.DefaultCookieName); err == nil {
			tok = c.Value
		}
		wantStatus, wantCustomer := expectedForToken(tok)
		if w.Code != wantStatus {
			t.Fatalf("cookie %q (token %q): status %d, want %d", cookie, tok, w.Code, wantStatus)
		}
		calls := fake.Calls()
		switch {
		case w.Code != 200 && len(calls) != 0:
			t.Fatalf("refused request (%d) made %d Stripe calls", w.Code, len(calls))
		case w.Code == 200:
			sess := fake.Sessions()
			if len(calls) != 1 || len(sess) != 1 || sess[0].Customer != wantCustomer || sess[0].URL != body["url"] {
				t.Fatalf("200 with %d calls, sessions %+v, reply url %q", len(calls), sess, body["url"])
			}
		}
		for _, u := range billingtest.Users() {
			if got, _, _ := store.User(context.Background(), u.ID); got != u {
				t.Fatalf("store changed: %+v, want %+v", got, u)
			}
		}
	})
}

// FuzzPortalBody sends arbitrary optional bodies from a PRO user. A 4xx
// makes no portal session call (at most the one subscription read that
// proves a flow's named subscription is not the user's); a 500 only
// follows a portal call that Stripe (the fake) refused. Whatever reaches
// Stripe is re-checked independently: return_url and a flow's
// after-completion redirect are the configured default or inside the
// allowlist by net/url's reading; a flow acts only on the user's own
// subscription.
func FuzzPortalBody(f *testing.F) {
	for _, s := range []string{
		"", "{}", `{"return_url":"https://app.example.com/billing/done"}`, `{"locale":"de"}`,
		`{"flow":{"type":"subscription_cancel","retention_coupon":"SAVE20"}}`,
		`{"flow":{"type":"payment_method_update","after_completion":{"type":"redirect","return_url":"https://other.example.com/x"}}}`,
		`{"flow":{"type":"subscription_update_confirm","items":[{"id":"si_1","price":"price_basic"}],"discounts":[{"coupon":"C"}]}}`,
		`{"flow":{"type":"subscription_update","subscription":"sub_basic"}}`,
		`{"RETURN_URL":"https://evil.example"}`, `{"return_url":"https://evil.example"}{}`,
	} {
		f.Add(s)
	}
	fake := billingtest.StartStripe(f)
	fake.Seed()
	h := billingtest.NewPortalService(f, fake, nil, func(c *billing.PortalConfig) {
		c.ReturnURL = fuzzDefaultReturn
		c.AllowedReturnURLs = fuzzAllowed
	})
	f.Fuzz(func(t *testing.T, body string) {
		fake.Reset()
		r := httptest.NewRequest(http.MethodPost, portalPath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.AddCookie(billingtest.Cookie(billingtest.TokenPro))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		rep := checkPortalReply(t, w)

		var sessionCalls, reads int
		var sessionStatus int
		for _, c := range fake.Calls() {
			switch {
			case c.Method == http.MethodPost && c.Path == billingtest.PathPortalSessions:
				sessionCalls++
				sessionStatus = c.Status
			case c.Method == http.MethodGet && strings.HasPrefix(c.Path, billingtest.PathSubscriptions+"/"):
				reads++
			default:
				t.Fatalf("unexpected Stripe call %s %s", c.Method, c.Path)
			}
		}
		if reads > 1 {
			t.Fatalf("%d subscription reads for one request", reads)
		}
		switch w.Code {
		case 200:
			if sessionCalls != 1 {
				t.Fatalf("200 after %d session calls", sessionCalls)
			}
		case 400, 413:
			if sessionCalls != 0 {
				t.Fatalf("refused body (%d) made %d session calls", w.Code, sessionCalls)
			}
		case 500:
			if sessionCalls != 1 || sessionStatus < 400 {
				t.Fatalf("500 without a refused Stripe call (%d calls, status %d)", sessionCalls, sessionStatus)
			}
			return
		default:
			t.Fatalf("status %d for a PRO user's body %q", w.Code, body)
		}
		if w.Code != 200 {
			return
		}
		sess := fake.Sessions()
		if len(sess) != 1 || sess[0].URL != rep["url"] || sess[0].Customer != billingtest.CustomerPro {
			t.Fatalf("sessions %+v for reply url %q", sess, rep["url"])
		}
		if ret := sess[0].ReturnURL; ret != fuzzDefaultReturn && !allowedByNetURL(ret, fuzzAllowed) {
			t.Fatalf("return_url %q reached Stripe outside the allowlist (body %q)", ret, body)
		}
		for k, v := range sess[0].FlowData {
			switch {
			case k == "flow_data[after_completion][redirect][return_url]":
				if len(v) != 1 || !allowedByNetURL(v[0], fuzzAllowed) {
					t.Fatalf("after_completion redirect %q reached Stripe outside the allowlist (body %q)", v, body)
				}
			case strings.HasSuffix(k, "[subscription]"):
				if diff := cmp.Diff([]string{billingtest.SubscriptionPro}, v); diff != "" {
					t.Fatalf("flow acts on another subscription (-want +got):\n%s", diff)
				}
			}
		}
	})
}

// FuzzWebhook feeds arbitrary bodies and Stripe-Signature headers to the
// webhook handler, whose tie and product reads go to a fake Stripe. With
// sign set the body is correctly signed, so the fuzzer reaches the event
// decoding. Every reply has the JSON shape and headers of the contract; an
// unsigned (or wrongly signed) request is 400; a 4xx writes nothing and
// calls nothing; a 5xx happens only after a Stripe read (the fake
// contradicting the event), never on a healthy store alone.
func FuzzWebhook(f *testing.F) {
	valid := subEvent("customer.subscription.updated", "active", "price_pro", t0)
	f.Add(valid, "", true)
	f.Add(valid, "t=1,v1=00", false)
	f.Add(valid, billingtest.Sign(valid, secret, t0), false)
	f.Add([]byte(`{"id":"evt_1","type":"customer.subscription.updated","data":{"object":{"id":"sub_1","customer":{"id":"cus_1"},"status":"active","items":{"data":[{"price":null}]}}}}`), "", true)
	f.Add([]byte(`{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"client_reference_id":"u1","customer":"cus_1"}}}`), "", true)
	f.Add([]byte(`{"id":"evt_1","type":"customer.subscription.deleted","data":{"object":[]}}`), "", true)
	f.Add([]byte(`{"id":"evt_1","livemode":true,"type":"customer.subscription.deleted","data":{"object":{}}}`), "", true)
	f.Add([]byte("\x00\xff"), "t=,v1=,t=9999999999999999999", false)
	fake := billingtest.StartStripe(f)
	fake.Seed()
	f.Fuzz(func(t *testing.T, body []byte, header string, sign bool) {
		fake.Reset()
		mem := billing.NewMemoryStore(billing.User{ID: user1, Plan: billing.Free, StripeCustomerID: cus1})
		store := &countingSync{SyncStore: mem}
		h, err := billing.NewWebhookHandler(billing.WebhookConfig{Secrets: []string{secret}, Store: store, Rules: billing.PlanRules{Prices: testPlans(t)},
			LinkCheckout: true, Subscriptions: fake.SubscriptionClient()})
		if err != nil {
			t.Fatal(err)
		}
		billing.SetWebhookClock(h, func() time.Time { return t0 })
		if sign {
			header = billingtest.Sign(body, secret, t0)
		}
		r := httptest.NewRequest(http.MethodPost, billingtest.WebhookPath, bytes.NewReader(body))
		r.Header.Set("Stripe-Signature", header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkWebhookReply(t, w)

		calls := len(fake.Calls())
		// Independently of the handler: does stripe-go accept the
		// signature with our secret (at any time)?
		validSig := webhook.ValidatePayloadIgnoringTolerance(body, header, secret) == nil
		switch {
		case !validSig && w.Code != 400:
			t.Fatalf("unsigned or wrongly signed request answered %d: %s", w.Code, w.Body)
		case w.Code == 400 || w.Code == 413:
			if n := store.writes.Load(); n != 0 || calls != 0 {
				t.Fatalf("refused event (%d) made %d writes and %d Stripe calls", w.Code, n, calls)
			}
			if u, _, _ := mem.User(context.Background(), user1); u.Plan != billing.Free {
				t.Fatal("a refused event changed the plan")
			}
		case w.Code == 500:
			if calls == 0 {
				t.Fatalf("500 without a Stripe read, on a healthy store: %s", w.Body)
			}
		case w.Code != 200:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}

// TestFuzzCorpusHostileReturnURLs keeps the committed seed corpus of
// FuzzPortalBody honest: at least 25 distinct return_url forms in it (as
// return_url or as an after_completion redirect) are outside the
// allowlist by net/url's reading, so every run of the seeds (each go test)
// proves them refused.
func TestFuzzCorpusHostileReturnURLs(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzPortalBody")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	hostile := map[string]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") {
			t.Fatalf("%s is not a go test fuzz v1 file of one string", e.Name())
		}
		body, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		var opts billing.SessionOptions
		if json.Unmarshal([]byte(body), &opts) != nil {
			continue
		}
		urls := []string{opts.ReturnURL}
		if opts.Flow != nil && opts.Flow.AfterCompletion != nil {
			urls = append(urls, opts.Flow.AfterCompletion.ReturnURL)
		}
		for _, u := range urls {
			if u != "" && !allowedByNetURL(u, fuzzAllowed) {
				hostile[u] = true
			}
		}
	}
	if len(hostile) < 25 {
		t.Fatalf("the corpus holds %d hostile return_url forms, want at least 25", len(hostile))
	}
	t.Logf("%d hostile return_url forms in %s", len(hostile), dir)
}
