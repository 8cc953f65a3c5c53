package openapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/getkin/kin-openapi/openapi3"
)

const statusPath = "/api/subscription"

// failingAccounts is an AccountStore whose reads fail, with a text the
// reply must not show.
type failingAccounts struct{}

func (failingAccounts) Account(context.Context, string) (billing.Account, bool, error) {
	return billing.Account{}, false, errors.New("pq: password authentication failed for user app (cus_secret, https://db.internal)")
}

// statusUser is one user of the status rows: the token that signs them
// in, and the Stripe state the store is given for them, as the webhook
// handler would write it.
type statusUser struct {
	token    string
	user     billing.User
	sub      *billing.Subscription
	features []string
}

func statusUsers() []statusUser {
	start := time.Date(2026, 12, 12, 0, 0, 0, 0, time.UTC)
	end := time.Date(2027, 1, 12, 0, 0, 0, 0, time.UTC)
	cancelAt := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	// A period end in another zone, with a fraction of a second: the reply
	// shows it in UTC, to the second.
	offZone := time.Date(2027, 1, 12, 1, 30, 15, 500_000_000, time.FixedZone("CEST", 2*3600))
	sub := func(s billing.Subscription) *billing.Subscription { return &s }
	return []statusUser{
		{token: "tok_s_pro", user: billing.User{ID: "u_s_pro", Plan: billing.Free, StripeCustomerID: "cus_s_pro"},
			sub: sub(billing.Subscription{ID: "sub_s_pro", CustomerID: "cus_s_pro", Status: "active", Plan: billing.Pro,
				CurrentPeriodStart: start, CurrentPeriodEnd: end}),
			features: []string{"seats_10"}},
		{token: "tok_s_free", user: billing.User{ID: "u_s_free", Plan: billing.Free}},
		{token: "tok_s_trial", user: billing.User{ID: "u_s_trial", Plan: billing.Free, StripeCustomerID: "cus_s_trial"},
			sub: sub(billing.Subscription{ID: "sub_s_trial", CustomerID: "cus_s_trial", Status: "trialing", Plan: billing.Basic,
				CancelAtPeriodEnd: true, CurrentPeriodStart: start, CurrentPeriodEnd: end, TrialEnd: end})},
		{token: "tok_s_past_due", user: billing.User{ID: "u_s_past_due", Plan: billing.Free, StripeCustomerID: "cus_s_past_due"},
			sub: sub(billing.Subscription{ID: "sub_s_past_due", CustomerID: "cus_s_past_due", Status: "past_due", Plan: billing.Pro,
				CurrentPeriodStart: start, CurrentPeriodEnd: end}),
			features: []string{"seats_10"}},
		{token: "tok_s_unpaid", user: billing.User{ID: "u_s_unpaid", Plan: billing.Free, StripeCustomerID: "cus_s_unpaid"},
			sub: sub(billing.Subscription{ID: "sub_s_unpaid", CustomerID: "cus_s_unpaid", Status: "unpaid", Plan: billing.Free,
				CurrentPeriodStart: start, CurrentPeriodEnd: end})},
		{token: "tok_s_canceled", user: billing.User{ID: "u_s_canceled", Plan: billing.Free, StripeCustomerID: "cus_s_canceled"},
			sub: sub(billing.Subscription{ID: "sub_s_canceled", CustomerID: "cus_s_canceled", Status: "canceled", Plan: billing.Free,
				CurrentPeriodStart: start, CurrentPeriodEnd: end, CanceledAt: start, EndedAt: start})},
		{token: "tok_s_cancel_at", user: billing.User{ID: "u_s_cancel_at", Plan: billing.Free, StripeCustomerID: "cus_s_cancel_at"},
			sub: sub(billing.Subscription{ID: "sub_s_cancel_at", CustomerID: "cus_s_cancel_at", Status: "active", Plan: billing.Pro,
				CurrentPeriodStart: start, CurrentPeriodEnd: end, CancelAt: cancelAt}),
			features: []string{"seats_10", "api", "api"}},
		{token: "tok_s_zone", user: billing.User{ID: "u_s_zone", Plan: billing.Free, StripeCustomerID: "cus_s_zone"},
			sub: sub(billing.Subscription{ID: "sub_s_zone", CustomerID: "cus_s_zone", Status: "active", Plan: billing.Basic,
				CurrentPeriodStart: start, CurrentPeriodEnd: offZone})},
		{token: "tok_s_customer_only", user: billing.User{ID: "u_s_customer_only", Plan: billing.Free, StripeCustomerID: "cus_s_customer_only"},
			features: []string{"beta"}},
	}
}

// statusStore returns a MemoryStore holding the users of statusUsers, their
// subscriptions and features applied as the webhook handler applies them,
// and a StaticAuth that knows the standard tokens and theirs.
func statusStore(t *testing.T) (*billing.MemoryStore, *billingtest.StaticAuth) {
	t.Helper()
	users := statusUsers()
	store := billing.NewMemoryStore()
	auth := billingtest.NewStaticAuth()
	ctx := context.Background()
	created := time.Unix(1_700_000_000, 0)
	for i, u := range users {
		if err := store.PutUser(ctx, u.user); err != nil {
			t.Fatal(err)
		}
		auth.Add(u.token, u.user.ID)
		if u.sub != nil {
			c := billing.SubscriptionChange{EventID: fmt.Sprintf("evt_s_sub_%d", i), Created: created, Seq: 2, Subscription: *u.sub}
			if out, err := store.ApplySubscription(ctx, c, time.Hour); err != nil || out != billing.Applied {
				t.Fatalf("ApplySubscription(%s) = %v, %v", u.sub.ID, out, err)
			}
		}
		if u.features != nil {
			c := billing.FeaturesChange{EventID: fmt.Sprintf("evt_s_feat_%d", i), CustomerID: u.user.StripeCustomerID,
				Features: u.features, Created: created, Seq: 1}
			if out, err := store.ApplyFeatures(ctx, c, time.Hour); err != nil || out != billing.Applied {
				t.Fatalf("ApplyFeatures(%s) = %v, %v", c.CustomerID, out, err)
			}
		}
	}
	return store, auth
}

// statusCase is one request to the status handler.
type statusCase struct {
	name   string
	method string // default GET
	token  string
	// failing uses an AccountStore whose reads fail.
	failing bool
	status  int
	// example names the document's example of the status that the reply
	// must equal ("example" for a media type's single example); else body
	// is the reply.
	example string
	body    string
	// docAccepts: as for the portal rows.
	docAccepts bool
}

func statusCases() []statusCase {
	return []statusCase{
		{name: "active PRO with features", token: "tok_s_pro", status: 200, example: "activePro", docAccepts: true},
		{name: "FREE without subscription", token: "tok_s_free", status: 200, example: "free", docAccepts: true},
		{name: "trialing BASIC canceling at period end", token: "tok_s_trial", status: 200, example: "trialCanceling", docAccepts: true},
		{name: "past_due", token: "tok_s_past_due", status: 200, example: "pastDue", docAccepts: true},
		{name: "unpaid", token: "tok_s_unpaid", status: 200, docAccepts: true,
			body: `{"plan":"FREE","status":"unpaid","renews_at":null,"ends_at":null,"trial_ends_at":null,"cancel_at_period_end":false,"payment_problem":true,"features":[]}`},
		{name: "canceled", token: "tok_s_canceled", status: 200, docAccepts: true,
			body: `{"plan":"FREE","status":"canceled","renews_at":null,"ends_at":null,"trial_ends_at":null,"cancel_at_period_end":false,"payment_problem":false,"features":[]}`},
		{name: "cancel_at scheduled, features sorted", token: "tok_s_cancel_at", status: 200, docAccepts: true,
			body: `{"plan":"PRO","status":"active","renews_at":null,"ends_at":"2026-12-20T00:00:00Z","trial_ends_at":null,"cancel_at_period_end":false,"payment_problem":false,"features":["api","seats_10"]}`},
		{name: "period end in another zone", token: "tok_s_zone", status: 200, docAccepts: true,
			body: `{"plan":"BASIC","status":"active","renews_at":"2027-01-11T23:30:15Z","ends_at":null,"trial_ends_at":null,"cancel_at_period_end":false,"payment_problem":false,"features":[]}`},
		{name: "customer with features, no subscription", token: "tok_s_customer_only", status: 200, docAccepts: true,
			body: `{"plan":"FREE","status":null,"renews_at":null,"ends_at":null,"trial_ends_at":null,"cancel_at_period_end":false,"payment_problem":false,"features":["beta"]}`},

		{name: "no cookie", status: 401, example: "example", docAccepts: false},
		{name: "bad token", token: "tok_forged", status: 401, example: "example", docAccepts: true},
		{name: "expired token", token: billingtest.TokenExpired, status: 401, example: "example", docAccepts: true},
		{name: "unknown user", token: billingtest.TokenUnknownUser, status: 401, example: "example", docAccepts: true},
		{name: "standard user the store does not know", token: billingtest.TokenPro, status: 401, example: "example", docAccepts: true},

		{name: "POST", method: http.MethodPost, token: "tok_s_pro", status: 405, example: "example", docAccepts: false},
		{name: "DELETE", method: http.MethodDelete, token: "tok_s_pro", status: 405, example: "example", docAccepts: false},

		{name: "store failure", token: "tok_s_pro", failing: true, status: 500, example: "example", docAccepts: true},
	}
}

// newRequest builds the request of c against the document's server.
func (c statusCase) newRequest() *http.Request {
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, server+statusPath, nil)
	if c.token != "" {
		r.AddCookie(billingtest.Cookie(c.token))
	}
	return r
}

// statusExample returns the named example of the reply of GET
// /api/subscription with the given status.
func statusExample(doc *openapi3.T, status int, name string) (any, error) {
	rr := doc.Paths.Value(statusPath).Get.Responses.Status(status)
	if rr == nil {
		return nil, fmt.Errorf("no %d reply in the document", status)
	}
	mt := rr.Value.Content.Get("application/json")
	if mt == nil {
		return nil, fmt.Errorf("no application/json content for %d", status)
	}
	v, ok := examples(mt)[name]
	if !ok {
		return nil, fmt.Errorf("no example %q for %d", name, status)
	}
	return v, nil
}

// sameJSON reports whether body is the JSON of want (as decoded from YAML
// or JSON: objects, arrays, strings, numbers, booleans, null).
func sameJSON(body []byte, want any) (bool, error) {
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		return false, err
	}
	// Round-trip want through JSON so that YAML's types compare as JSON's.
	b, err := json.Marshal(want)
	if err != nil {
		return false, err
	}
	var w any
	if err := json.Unmarshal(b, &w); err != nil {
		return false, err
	}
	return reflect.DeepEqual(got, w), nil
}

// TestStatusReplies sends every row of the contract through the real status
// handler and validates the request and the reply (status, headers, body)
// against the document. Every status the document lists for GET
// /api/subscription must be produced by some row and every status produced
// must be listed; every example the document gives is a reply some row
// produces.
func TestStatusReplies(t *testing.T) {
	doc, router := loadDoc(t)
	store, auth := statusStore(t)
	h, err := billing.NewStatusHandler(billing.StatusConfig{Accounts: store, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	failing, err := billing.NewStatusHandler(billing.StatusConfig{Accounts: failingAccounts{}, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	produced := map[string]bool{} // "status name" of the examples produced
	for _, c := range statusCases() {
		t.Run(c.name, func(t *testing.T) {
			handler := h
			if c.failing {
				handler = failing
			}
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, c.newRequest())
			res := w.Result()
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", res.StatusCode, c.status, w.Body)
			}
			seen[res.StatusCode] = true

			var want any
			if c.example != "" {
				ex, err := statusExample(doc, c.status, c.example)
				if err != nil {
					t.Fatal(err)
				}
				want = ex
			} else if err := json.Unmarshal([]byte(c.body), &want); err != nil {
				t.Fatalf("row body: %v", err)
			}
			if same, err := sameJSON(w.Body.Bytes(), want); err != nil || !same {
				wb, _ := json.Marshal(want)
				t.Errorf("body %s, want %s (%v)", strings.TrimSpace(w.Body.String()), wb, err)
			} else if c.example != "" {
				produced[fmt.Sprintf("%d %s", c.status, c.example)] = true
			}
			for _, secret := range []string{"cus_", "sub_", "evt_", "http", "password", "pq:"} {
				if strings.Contains(w.Body.String(), secret) {
					t.Errorf("reply shows %q: %s", secret, w.Body)
				}
			}

			wantDoc := rejects
			if c.docAccepts {
				wantDoc = accepts
			}
			if err := validateOp(doc, router, http.MethodGet, c.newRequest(), res, w.Body.Bytes(), wantDoc); err != nil {
				t.Error(err)
			}
		})
	}
	checkOpCoverage(t, doc, http.MethodGet, statusPath, seen)
	if !rowsFiltered() {
		for code, rr := range doc.Paths.Value(statusPath).Get.Responses.Map() {
			for name := range examples(rr.Value.Content.Get("application/json")) {
				if !produced[code+" "+name] {
					t.Errorf("example %s %q of GET %s is produced by no row", code, name, statusPath)
				}
			}
		}
	}
}

// TestStatusDocument checks what the rows cannot show: the operation's
// security and tag, and that the 200 schema names exactly the reply's
// fields, all required.
func TestStatusDocument(t *testing.T) {
	doc, _ := loadDoc(t)
	op := doc.Paths.Value(statusPath).Get
	if op == nil {
		t.Fatalf("no GET %s in the document", statusPath)
	}
	if op.Security == nil || len(*op.Security) != 1 || (*op.Security)[0]["accessToken"] == nil {
		t.Errorf("security %v, want accessToken", op.Security)
	}
	if !slices.Contains(op.Tags, "status") || doc.Tags.Get("status") == nil {
		t.Errorf("tags %v (document tags %v), want the tag status", op.Tags, doc.Tags)
	}
	if !strings.Contains(doc.Info.Description, "GET /api/subscription") {
		t.Error("info.description does not mention the status endpoint")
	}
	for _, p := range []string{statusPath, portalPath, billingtest.WebhookPath} {
		if item := doc.Paths.Value(p); item == nil || len(item.Operations()) != 1 {
			t.Errorf("%s: want exactly one operation", p)
		}
	}
	s := op.Responses.Status(200).Value.Content.Get("application/json").Schema.Value
	fields := []string{"plan", "status", "renews_at", "ends_at", "trial_ends_at", "cancel_at_period_end", "payment_problem", "features"}
	var props []string
	for k := range s.Properties {
		props = append(props, k)
	}
	required := slices.Clone(s.Required)
	slices.Sort(props)
	slices.Sort(required)
	want := slices.Sorted(slices.Values(fields))
	if !slices.Equal(props, want) || !slices.Equal(required, want) {
		t.Errorf("properties %v, required %v; want both %v", props, required, want)
	}
	if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
		t.Error("SubscriptionStatus allows additional properties")
	}
}

// TestStatusValidatorRejectsDrift makes sure the checks of TestStatusReplies
// can fail: replies that differ from the contract in one way each must be
// refused, while the replies they are made from pass.
func TestStatusValidatorRejectsDrift(t *testing.T) {
	doc, router := loadDoc(t)
	good := http.Header{
		"Content-Type":           {"application/json"},
		"Cache-Control":          {"no-store"},
		"Referrer-Policy":        {"no-referrer"},
		"X-Content-Type-Options": {"nosniff"},
	}
	without := func(h http.Header, k string) http.Header { h = h.Clone(); h.Del(k); return h }
	with := func(h http.Header, k, v string) http.Header { h = h.Clone(); h.Set(k, v); return h }
	allow := with(good, "Allow", "GET")

	const ok200 = `{"plan":"PRO","status":"active","renews_at":"2027-01-12T00:00:00Z","ends_at":null,"trial_ends_at":null,"cancel_at_period_end":false,"payment_problem":false,"features":["seats_10"]}`
	const ok401 = `{"error":"Unauthorized","message":"Authentication required"}`
	const ok405 = `{"error":"Method Not Allowed","message":"Only GET is allowed"}`
	const ok500 = `{"error":"Internal Server Error","message":"Failed to read subscription status"}`
	// field replaces one field of ok200 (a nil value drops it); extra adds one.
	field := func(k string, v any) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(ok200), &m); err != nil {
			panic(err)
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	null := json.RawMessage("null")

	type reply struct {
		name   string
		status int
		header http.Header
		body   string
	}
	for _, r := range []reply{
		{"200", 200, good, ok200},
		{"200 without subscription", 200, good, field("status", null)},
		{"401", 401, good, ok401},
		{"405", 405, allow, ok405},
		{"500", 500, good, ok500},
	} {
		req := statusCase{token: "tok_s_pro"}.newRequest()
		if r.status == 405 {
			req.Method = http.MethodPost
		}
		res := &http.Response{StatusCode: r.status, Header: r.header}
		if err := validateOp(doc, router, http.MethodGet, req, res, []byte(r.body), accepts); err != nil {
			t.Errorf("good reply %s refused, so the drift rows prove nothing: %v", r.name, err)
		}
	}

	tests := []reply{
		{"extra field customer_id", 200, good, field("customer_id", "cus_123")},
		{"extra field portal_url", 200, good, field("portal_url", "https://billing.stripe.com/p/session/x")},
		{"extra field subscription_id", 200, good, field("subscription_id", "sub_123")},
		{"status a number", 200, good, field("status", 5)},
		{"status a boolean", 200, good, field("status", true)},
		{"status empty", 200, good, field("status", "")},
		{"status missing", 200, good, field("status", nil)},
		{"plan unknown", 200, good, field("plan", "ENTERPRISE")},
		{"plan lower case", 200, good, field("plan", "pro")},
		{"plan null", 200, good, field("plan", null)},
		{"renews_at not UTC", 200, good, field("renews_at", "2027-01-12T01:00:00+01:00")},
		{"renews_at with fraction", 200, good, field("renews_at", "2027-01-12T00:00:00.5Z")},
		{"renews_at a date", 200, good, field("renews_at", "2027-01-12")},
		{"renews_at unix time", 200, good, field("renews_at", 1799712000)},
		{"ends_at missing", 200, good, field("ends_at", nil)},
		{"trial_ends_at not a time", 200, good, field("trial_ends_at", "soon")},
		{"cancel_at_period_end a string", 200, good, field("cancel_at_period_end", "false")},
		{"payment_problem null", 200, good, field("payment_problem", null)},
		{"features null", 200, good, field("features", null)},
		{"features missing", 200, good, field("features", nil)},
		{"features not strings", 200, good, field("features", []any{1})},
		{"features repeated", 200, good, field("features", []string{"a", "a"})},
		{"features an object", 200, good, field("features", map[string]bool{"seats_10": true})},
		{"no Cache-Control", 200, without(good, "Cache-Control"), ok200},
		{"cacheable", 200, with(good, "Cache-Control", "private, max-age=60"), ok200},
		{"no Referrer-Policy", 200, without(good, "Referrer-Policy"), ok200},
		{"no X-Content-Type-Options", 200, without(good, "X-Content-Type-Options"), ok200},
		{"text body", 200, with(good, "Content-Type", "text/plain"), ok200},
		{"not JSON", 200, good, `plan=PRO`},
		{"401 other message", 401, good, `{"error":"Unauthorized","message":"Token expired"}`},
		{"401 extra field", 401, good, `{"error":"Unauthorized","message":"Authentication required","detail":"jwt exp"}`},
		{"401 without Cache-Control", 401, without(good, "Cache-Control"), ok401},
		{"405 without Allow", 405, good, ok405},
		{"405 Allow POST", 405, with(good, "Allow", "POST"), ok405},
		{"405 the portal's message", 405, allow, `{"error":"Method Not Allowed","message":"Only POST is allowed"}`},
		{"500 with the store's text", 500, good, `{"error":"Internal Server Error","message":"pq: password authentication failed"}`},
		{"500 the portal's message", 500, good, `{"error":"Internal Server Error","message":"Failed to create portal session"}`},
		{"undocumented 404", 404, good, `{"error":"Not Found","message":"Stripe customer not found"}`},
		{"undocumented 403", 403, good, `{"error":"Forbidden","message":"Cross-origin request rejected"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := statusCase{token: "tok_s_pro"}.newRequest()
			if tt.status == 405 {
				req.Method = http.MethodPost
			}
			res := &http.Response{StatusCode: tt.status, Header: tt.header}
			if err := validateOp(doc, router, http.MethodGet, req, res, []byte(tt.body), accepts); err == nil {
				t.Errorf("reply %d %s with %v passed the document", tt.status, tt.body, tt.header)
			}
		})
	}
}
