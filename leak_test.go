package billing_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/testenv"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
	"github.com/stripe/stripe-go/v76/subscription"
)

// leakCheck is the goroutine-leak check that TestMain runs after the
// package's tests and after stripe-mock was stopped.
var leakCheck = testenv.LeakCheck()

// captureStdio sends what the process writes to os.Stdout and os.Stderr
// (stripe-go's LeveledLogger writes there, with no way to redirect it)
// into w until the returned stop is called.
func captureStdio(t *testing.T, w io.Writer) (stop func()) {
	t.Helper()
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = pw, pw
	done := make(chan struct{})
	go func() { _, _ = io.Copy(w, r); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			os.Stdout, os.Stderr = oldOut, oldErr
			pw.Close()
			<-done
			r.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// failingSync is a SyncStore whose writes fail with a driver-like error
// that names a password.
type failingSync struct{ billing.SyncStore }

func (failingSync) ApplySubscription(context.Context, billing.SubscriptionChange, time.Duration) (billing.Outcome, error) {
	return "", errors.New("pq: password authentication failed for user billing (password=hunter2)")
}

// TestNoSecretsInLogs runs every row of the portal contract, every Stripe
// fault and every kind of webhook delivery with the library's slog logger
// at debug level AND stripe-go's own LeveledLogger at debug level (as an
// app debugging its Stripe integration would set it on billing.NewBackend),
// both writing into one buffer, and asserts that the buffer holds no
// secret key, no webhook secret, no cookie or token, no portal URL, and
// none of Stripe's error text.
func TestNoSecretsInLogs(t *testing.T) {
	const (
		key     = "sk_test_SECRETKEY0123456789"
		whsec   = "whsec_SECRETSIGNING0123456789"
		tokPro  = "tokSECRETpro0001"
		tokFree = "tokSECRETfree0002"
		tokNoC  = "tokSECRETnocust0003"
		tokOld  = "tokSECRETexpired0004"
		tokGone = "tokSECRETunknownuser0005"
		tokBad  = "tokSECRETforged0006"
		inBody  = "tokSECRETinbody0007"
	)
	var buf billingtest.LogBuffer
	stop := captureStdio(t, &buf)
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	stripeLog := &stripe.LeveledLogger{Level: stripe.LevelDebug}

	fake := billingtest.StartStripe(t)
	fake.Seed()
	auth := &billingtest.StaticAuth{}
	auth.Add(tokPro, billingtest.UserPro)
	auth.Add(tokFree, billingtest.UserFree)
	auth.Add(tokNoC, billingtest.UserNoCustomer)
	auth.Add(tokGone, "u_gone")
	auth.AddExpiring(tokOld, billingtest.UserPro, time.Unix(1, 0))
	backend := func(timeout time.Duration) stripe.Backend {
		hc := billing.NewHTTPClient(timeout)
		t.Cleanup(hc.CloseIdleConnections)
		b := billing.NewBackend(&stripe.BackendConfig{URL: stripe.String(fake.URL()), HTTPClient: hc, LeveledLogger: stripeLog})
		if bi, ok := b.(*stripe.BackendImplementation); ok {
			bi.SetNetworkRetriesSleep(false) // the retries, without 1.5 s of backoff per fault
		}
		return b
	}
	portal := func(timeout time.Duration, store billing.UserStore) http.Handler {
		b := backend(timeout)
		return billingtest.NewPortalService(t, fake, store, func(c *billing.PortalConfig) {
			c.Stripe = &session.Client{B: b, Key: key}
			c.Subscriptions = &subscription.Client{B: b, Key: key}
			c.Logger = logger
			c.Auth = auth
		})
	}
	h, slow := portal(10*time.Second, nil), portal(100*time.Millisecond, nil)
	brokenStore := portal(10*time.Second, billing.UserStoreFunc(func(context.Context, string) (billing.User, bool, error) {
		return billing.User{}, false, errors.New("dial tcp db.internal:5432: password=hunter2")
	}))

	portalRows := []struct {
		name, token, body string
		method            string
		hdr               map[string]string
		fault             *billingtest.Fault
		path              string // the fault's path; default portal sessions
		slow, cancel      bool
		brokenStore       bool
	}{
		{name: "created", token: tokPro},
		{name: "created with options", token: tokPro, body: `{"return_url":"https://app.example.com/billing?x=` + inBody + `","locale":"de","flow":{"type":"subscription_cancel","after_completion":{"type":"redirect","return_url":"https://app.example.com/done"}}}`},
		{name: "no cookie"},
		{name: "store failure", token: tokPro, brokenStore: true},
		{name: "forged token", token: tokBad},
		{name: "expired token", token: tokOld},
		{name: "unknown user", token: tokGone},
		{name: "free plan", token: tokFree},
		{name: "no customer", token: tokNoC},
		{name: "GET", method: http.MethodGet, token: tokPro},
		{name: "cross-origin", token: tokPro, hdr: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
		{name: "bad body", token: tokPro, body: `{"return_url":"` + inBody + `","x":1}`},
		{name: "refused return_url", token: tokPro, body: `{"return_url":"https://evil.example/` + inBody + `"}`},
		{name: "oversized body", token: tokPro, body: `{"locale":"` + strings.Repeat(inBody, 1000) + `"}`},
		{name: "flow naming another subscription", token: tokPro, body: `{"flow":{"type":"subscription_update","subscription":"` + billingtest.SubscriptionBasic + `"}}`},
		{name: "subscription read fails", token: tokPro, body: `{"flow":{"type":"subscription_update","subscription":"sub_other"}}`, fault: ptr(billingtest.ServerError(500)), path: billingtest.PathSubscriptions + "/"},
		{name: "503", token: tokPro, fault: ptr(billingtest.ServiceUnavailable())},
		{name: "429 lock_timeout", token: tokPro, fault: ptr(billingtest.LockTimeout())},
		{name: "409", token: tokPro, fault: ptr(billingtest.Conflict())},
		{name: "dropped connection", token: tokPro, fault: ptr(billingtest.Drop())},
		{name: "HTML 502", token: tokPro, fault: ptr(billingtest.BadGateway())},
		{name: "500 JSON", token: tokPro, fault: ptr(billingtest.ServerError(500))},
		{name: "502 JSON", token: tokPro, fault: ptr(billingtest.ServerError(502))},
		{name: "429 rate_limit", token: tokPro, fault: ptr(billingtest.RateLimit())},
		{name: "resource_missing", token: tokPro, fault: ptr(billingtest.ResourceMissing("customer"))},
		{name: "slow beyond the client timeout", token: tokPro, fault: ptr(billingtest.Slow(time.Hour)), slow: true},
		{name: "canceled during the Stripe call", token: tokPro, fault: ptr(billingtest.Slow(time.Hour)), cancel: true},
	}
	statuses := map[int]bool{}
	for _, row := range portalRows {
		fake.Reset()
		if row.fault != nil {
			p := row.path
			if p == "" {
				p = billingtest.PathPortalSessions
			}
			fake.Fail(p, *row.fault)
		}
		r := portalRequest(row.token, row.body)
		if row.method != "" {
			r.Method = row.method
		}
		for k, v := range row.hdr {
			r.Header.Set(k, v)
		}
		hh := h
		switch {
		case row.slow:
			hh = slow
		case row.brokenStore:
			hh = brokenStore
		}
		if row.cancel {
			ctx, cancel := context.WithCancel(context.Background())
			go cancelOnCall(t, fake, cancel)
			r = r.WithContext(ctx)
			defer cancel()
		}
		w := httptest.NewRecorder()
		hh.ServeHTTP(w, r)
		statuses[w.Code] = true
	}

	// The webhook: applied, duplicate, stale, bad and missing signatures,
	// old timestamp, other API version, livemode mismatch, a tie read from
	// Stripe that fails, and a failing store.
	mem := billing.NewMemoryStore(billingtest.Users()...)
	whCfg := billing.WebhookConfig{Secrets: []string{whsec}, Store: mem, Rules: billing.PlanRules{Prices: billingtest.Prices()}, Logger: logger,
		Subscriptions: &subscription.Client{B: backend(10 * time.Second), Key: key}}
	wh, err := billing.NewWebhookHandler(whCfg)
	if err != nil {
		t.Fatal(err)
	}
	whCfg.Store = failingSync{mem}
	whFailing, err := billing.NewWebhookHandler(whCfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	spec := billingtest.SubscriptionSpec{ID: billingtest.SubscriptionPro, Customer: billingtest.CustomerPro, PriceID: billingtest.PricePro}
	ev1 := billingtest.SubscriptionEvent("customer.subscription.updated", spec, now.Add(-time.Minute))
	ev0 := billingtest.SubscriptionEvent("customer.subscription.updated", spec, now.Add(-2*time.Minute))
	tie := billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{ID: billingtest.SubscriptionPro, Customer: billingtest.CustomerPro, PriceID: billingtest.PriceBasic}, now.Add(-time.Minute))
	live := billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{ID: "sub_live", Customer: billingtest.CustomerPro, Livemode: true}, now)
	fake.Reset()
	fake.Fail(billingtest.PathSubscriptions+"/", billingtest.ServiceUnavailable())
	for _, d := range []struct {
		h       http.Handler
		payload []byte
		variant billingtest.Variant
	}{
		{wh, ev1, billingtest.Valid}, {wh, ev1, billingtest.Valid}, {wh, ev0, billingtest.Valid},
		{wh, ev1, billingtest.BadSignature}, {wh, ev1, billingtest.Unsigned}, {wh, ev1, billingtest.MalformedSignature},
		{wh, ev1, billingtest.Stale}, {wh, ev1, billingtest.Future}, {wh, tie, billingtest.OtherAPIVersionSignature},
		{wh, tie, billingtest.Valid}, {wh, live, billingtest.Valid}, {whFailing, live, billingtest.Valid},
	} {
		w := httptest.NewRecorder()
		d.h.ServeHTTP(w, billingtest.WebhookRequest(d.payload, whsec, billingtest.RequestOptions{Variant: d.variant}))
		statuses[w.Code] = true
	}
	stop()

	logs := buf.String()
	// The test must have logged what it claims to cover.
	for _, s := range []int{200, 400, 401, 403, 404, 405, 413, 500} {
		if !statuses[s] {
			t.Errorf("no request answered %d", s)
		}
	}
	for _, want := range []string{`"outcome":"created"`, `"outcome":"duplicate"`, `"outcome":"stale"`, "[DEBUG]", "[INFO] Requesting POST", "[WARN] Initiating retry"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q: the test does not exercise what it claims", want)
		}
	}
	secrets := []string{key, whsec, tokPro, tokFree, tokNoC, tokOld, tokGone, tokBad, inBody, "hunter2",
		"access_token=", "billing.stripe.com/p/session",
		// Stripe's error texts (the fake's messages) and a proxy's HTML.
		"An unknown error occurred", "Too many requests", "another API request", "another in-progress request", "No such customer", "<html>", "<center>"}
	for _, s := range secrets {
		if i := strings.Index(logs, s); i >= 0 {
			t.Errorf("the logs hold %q: ...%s...", s, logs[max(0, i-200):min(len(logs), i+len(s)+100)])
		}
	}
	if m := regexp.MustCompile(`\b[sr]k_(test|live)_|\bwhsec_`).FindString(logs); m != "" {
		t.Errorf("the logs hold a key prefix %q", m)
	}
	if testing.Verbose() {
		t.Logf("%d bytes of logs checked", len(logs))
	}
}
