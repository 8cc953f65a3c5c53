package billing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

// fakeSessions is a SessionCreator that records its calls and answers with
// err, or with a session whose URL is unique per call.
type fakeSessions struct {
	mu    sync.Mutex
	calls []*stripe.BillingPortalSessionParams
	err   error
	delay time.Duration
	noURL bool
}

func (f *fakeSessions) New(p *stripe.BillingPortalSessionParams) (*stripe.BillingPortalSession, error) {
	f.mu.Lock()
	f.calls = append(f.calls, p)
	n, err, delay := len(f.calls), f.err, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-p.Context.Done():
			return nil, p.Context.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	s := &stripe.BillingPortalSession{ID: fmt.Sprintf("bps_%d", n), URL: fmt.Sprintf("https://billing.stripe.com/p/session/test_%d", n)}
	if f.noURL {
		s.URL = ""
	}
	s.LastResponse = &stripe.APIResponse{RequestID: fmt.Sprintf("req_%d", n)}
	return s, nil
}

func (f *fakeSessions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeSessions) last() *stripe.BillingPortalSessionParams {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return nil
	}
	return f.calls[len(f.calls)-1]
}

// failingStore is a UserStore whose every call fails.
type failingStore struct{}

func (failingStore) User(context.Context, string) (billing.User, bool, error) {
	return billing.User{}, false, errors.New("connection refused to db.internal:5432")
}

// countingStore counts the calls to an inner UserStore.
type countingStore struct {
	billing.UserStore
	mu sync.Mutex
	n  int
}

func (c *countingStore) User(ctx context.Context, id string) (billing.User, bool, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.UserStore.User(ctx, id)
}

var testUsers = []billing.User{
	{ID: "u_free", Plan: billing.Free},
	{ID: "u_basic", Plan: billing.Basic, StripeCustomerID: "cus_basic"},
	{ID: "u_pro", Plan: billing.Pro, StripeCustomerID: "cus_pro", SubscriptionID: "sub_pro"},
	{ID: "u_nocust", Plan: billing.Pro},
	{ID: "u_gone", Plan: billing.Pro, StripeCustomerID: "cus_gone"},
}

// testTokens maps access tokens to user ids; "expired" and anything unknown fail.
var testTokens = map[string]string{
	"tok_free": "u_free", "tok_basic": "u_basic", "tok_pro": "u_pro",
	"tok_nocust": "u_nocust", "tok_ghost": "u_ghost", "tok_gone": "u_gone",
}

var testAuth = billing.NewCookieAuthenticator(billing.TokenVerifierFunc(func(_ context.Context, tok string) (string, error) {
	if tok == "tok_expired" {
		return "", fmt.Errorf("jwt exp in the past: %w", billing.ErrTokenExpired)
	}
	id, ok := testTokens[tok]
	if !ok {
		return "", billing.ErrTokenInvalid
	}
	return id, nil
}))

type env struct {
	stripe  *fakeSessions
	store   *countingStore
	handler http.Handler
	svc     *billing.PortalService
}

func newEnv(t *testing.T, mod func(*billing.PortalConfig)) *env {
	t.Helper()
	e := &env{stripe: &fakeSessions{}, store: &countingStore{UserStore: billing.NewMemoryStore(testUsers...)}}
	cfg := billing.PortalConfig{
		Stripe:            e.stripe,
		Users:             e.store,
		Auth:              testAuth,
		ReturnURL:         "https://app.example.com/account",
		AllowedReturnURLs: []string{"https://app.example.com/billing/", "https://other.example.com"},
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := billing.NewPortalService(cfg)
	if err != nil {
		t.Fatalf("NewPortalService: %v", err)
	}
	e.svc = svc
	e.handler = svc
	return e
}

type reply struct {
	URL     string `json:"url,omitempty"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

func post(t *testing.T, h http.Handler, token, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(http.MethodPost, "/api/subscription/create-portal-session", nil)
	} else {
		r = httptest.NewRequest(http.MethodPost, "/api/subscription/create-portal-session", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.AddCookie(&http.Cookie{Name: "access_token", Value: token})
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var (
	unauthorized = reply{Error: "Unauthorized", Message: "Authentication required"}
	forbidden    = reply{Error: "Forbidden", Message: "Customer portal is only available for paid subscriptions"}
	notFound     = reply{Error: "Not Found", Message: "Stripe customer not found"}
	internal     = reply{Error: "Internal Server Error", Message: "Failed to create portal session"}
)

// TestContract runs every row of the contract (DESIGN.md §1) through the
// real handler: status, decoded body, headers, and the number of Stripe
// calls (zero for every rejected request).
func TestContract(t *testing.T) {
	stripeErr := func(status int, code stripe.ErrorCode) error {
		return &stripe.Error{HTTPStatusCode: status, Code: code, Type: stripe.ErrorTypeInvalidRequest,
			Msg: "No such customer: 'cus_gone'; key sk_test_leak", RequestID: "req_fail"}
	}
	tests := []struct {
		name       string
		method     string
		token      string
		body       string
		hdr        map[string]string
		mod        func(*billing.PortalConfig)
		stripeErr  error
		wantStatus int
		want       reply
		wantStripe int
		wantStore  int
		wantURL    bool
	}{
		{name: "no cookie", token: "", wantStatus: 401, want: unauthorized},
		{name: "bad token", token: "tok_nope", wantStatus: 401, want: unauthorized},
		{name: "expired token", token: "tok_expired", wantStatus: 401, want: unauthorized},
		{name: "unknown user", token: "tok_ghost", wantStatus: 401, want: unauthorized, wantStore: 1},
		{name: "free plan", token: "tok_free", wantStatus: 403, want: forbidden, wantStore: 1},
		{name: "basic plan", token: "tok_basic", wantStatus: 200, want: reply{Message: "Portal session created successfully"}, wantStripe: 1, wantStore: 1, wantURL: true},
		{name: "pro plan", token: "tok_pro", wantStatus: 200, want: reply{Message: "Portal session created successfully"}, wantStripe: 1, wantStore: 1, wantURL: true},
		{name: "paid without customer", token: "tok_nocust", wantStatus: 404, want: notFound, wantStore: 1},
		{name: "stripe resource_missing", token: "tok_gone", stripeErr: stripeErr(404, stripe.ErrorCodeResourceMissing), wantStatus: 404, want: notFound, wantStripe: 1, wantStore: 1},
		{name: "stripe api error", token: "tok_pro", stripeErr: &stripe.Error{HTTPStatusCode: 500, Type: stripe.ErrorTypeAPI, Msg: "boom sk_test_leak", RequestID: "req_x"}, wantStatus: 500, want: internal, wantStripe: 1, wantStore: 1},
		{name: "stripe other invalid request", token: "tok_pro", stripeErr: stripeErr(400, stripe.ErrorCodeParameterInvalidEmpty), wantStatus: 500, want: internal, wantStripe: 1, wantStore: 1},
		{name: "stripe network error", token: "tok_pro", stripeErr: errors.New("dial tcp: connection refused"), wantStatus: 500, want: internal, wantStripe: 1, wantStore: 1},
		{name: "store failure", token: "tok_pro", mod: func(c *billing.PortalConfig) { c.Users = failingStore{} }, wantStatus: 500, want: internal},
		{name: "GET", method: http.MethodGet, token: "tok_pro", wantStatus: 405, want: reply{Error: "Method Not Allowed", Message: "Only POST is allowed"}},
		{name: "PUT", method: http.MethodPut, token: "tok_pro", wantStatus: 405, want: reply{Error: "Method Not Allowed", Message: "Only POST is allowed"}},
		{name: "cross-site browser POST", token: "tok_pro", hdr: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, wantStatus: 403, want: reply{Error: "Forbidden", Message: "Cross-origin request rejected"}},
		{name: "cross-origin without Sec-Fetch-Site", token: "tok_pro", hdr: map[string]string{"Origin": "https://evil.example", "Host": "app.example.com"}, wantStatus: 403, want: reply{Error: "Forbidden", Message: "Cross-origin request rejected"}},
		{name: "cross-site unauthenticated is 403 before 401", token: "", hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: 403, want: reply{Error: "Forbidden", Message: "Cross-origin request rejected"}},
		{name: "trusted origin", token: "tok_pro", mod: func(c *billing.PortalConfig) { c.TrustedOrigins = []string{"https://front.example.com"} }, hdr: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://front.example.com"}, wantStatus: 200, want: reply{Message: "Portal session created successfully"}, wantStripe: 1, wantStore: 1, wantURL: true},
		{name: "same-origin browser POST", token: "tok_pro", hdr: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://app.example.com"}, wantStatus: 200, want: reply{Message: "Portal session created successfully"}, wantStripe: 1, wantStore: 1, wantURL: true},
		{name: "malformed body", token: "tok_pro", body: `{"return_url":`, wantStatus: 400, want: reply{Error: "Bad Request", Message: "request body is not valid JSON of return_url, locale and flow"}},
		{name: "unknown field", token: "tok_pro", body: `{"customer":"cus_other"}`, wantStatus: 400, want: reply{Error: "Bad Request", Message: "request body is not valid JSON of return_url, locale and flow"}},
		{name: "two objects", token: "tok_pro", body: `{}{}`, wantStatus: 400, want: reply{Error: "Bad Request", Message: "request body must be a single JSON object"}},
		{name: "oversized body", token: "tok_pro", body: `{"locale":"` + strings.Repeat("a", 9000) + `"}`, wantStatus: 413, want: reply{Error: "Request Entity Too Large", Message: "Request body too large"}},
		{name: "oversized body unauthenticated is 401", token: "", body: `{"locale":"` + strings.Repeat("a", 9000) + `"}`, wantStatus: 401, want: unauthorized},
		{name: "bad body of a free user is 400 before any store work", token: "tok_free", body: `nope`, wantStatus: 400, want: reply{Error: "Bad Request", Message: "request body is not valid JSON of return_url, locale and flow"}},
		{name: "empty JSON object", token: "tok_pro", body: `{}`, wantStatus: 200, want: reply{Message: "Portal session created successfully"}, wantStripe: 1, wantStore: 1, wantURL: true},
		{name: "allowed return_url", token: "tok_pro", body: `{"return_url":"https://app.example.com/billing/done"}`, wantStatus: 200, want: reply{Message: "Portal session created successfully"}, wantStripe: 1, wantStore: 1, wantURL: true},
		{name: "return_url outside allowlist", token: "tok_pro", body: `{"return_url":"https://evil.example/billing/"}`, wantStatus: 400, want: reply{Error: "Bad Request", Message: "return_url is not allowed"}},
		{name: "unsupported locale", token: "tok_pro", body: `{"locale":"xx-YY"}`, wantStatus: 400, want: reply{Error: "Bad Request", Message: "locale is not supported"}},
		{name: "text/plain body", token: "tok_pro", body: `{}`, hdr: map[string]string{"Content-Type": "text/plain"}, wantStatus: 400, want: reply{Error: "Bad Request", Message: "request body must be JSON (Content-Type: application/json)"}},
		{name: "stripe session without url", token: "tok_pro", mod: nil, stripeErr: errNoURL, wantStatus: 500, want: internal, wantStripe: 1, wantStore: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mod)
			if tc.stripeErr == errNoURL {
				e.stripe.noURL = true
			} else {
				e.stripe.err = tc.stripeErr
			}
			h := e.handler
			var w *httptest.ResponseRecorder
			if tc.method != "" {
				r := httptest.NewRequest(tc.method, "/api/subscription/create-portal-session", nil)
				r.AddCookie(&http.Cookie{Name: "access_token", Value: tc.token})
				w = httptest.NewRecorder()
				h.ServeHTTP(w, r)
			} else {
				w = post(t, h, tc.token, tc.body, tc.hdr)
			}
			if w.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d (body %s)", w.Code, tc.wantStatus, w.Body)
			}
			got := decode(t, w.Body.String())
			if tc.wantURL {
				if !strings.HasPrefix(got.URL, "https://billing.stripe.com/p/session/") {
					t.Errorf("url = %q, want a portal session URL", got.URL)
				}
				got.URL = ""
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("body mismatch (-want +got):\n%s", diff)
			}
			checkHeaders(t, w, tc.wantStatus)
			if n := e.stripe.count(); n != tc.wantStripe {
				t.Errorf("stripe calls = %d, want %d", n, tc.wantStripe)
			}
			if tc.mod == nil || tc.wantStore > 0 {
				if e.store.n != tc.wantStore {
					t.Errorf("store calls = %d, want %d", e.store.n, tc.wantStore)
				}
			}
			for _, leak := range []string{"sk_test_leak", "No such customer", "boom", "connection refused", "db.internal", tc.token} {
				if leak != "" && strings.Contains(w.Body.String(), leak) {
					t.Errorf("body leaks %q: %s", leak, w.Body)
				}
			}
		})
	}
}

var errNoURL = errors.New("sentinel: answer without url")

// decode parses a reply strictly: exactly the contract's fields.
func decode(t *testing.T, body string) reply {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("reply is not JSON: %v: %q", err, body)
	}
	var r reply
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("field %q is not a string in %s", k, body)
		}
		switch k {
		case "url":
			r.URL = s
		case "message":
			r.Message = s
		case "error":
			r.Error = s
		default:
			t.Errorf("unexpected field %q in %s", k, body)
		}
	}
	if r.Error != "" && r.URL != "" {
		t.Errorf("reply has both error and url: %s", body)
	}
	return r
}

func checkHeaders(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	want := map[string]string{
		"Content-Type":    "application/json",
		"Cache-Control":   "no-store",
		"Referrer-Policy": "no-referrer",
	}
	if status == 405 {
		want["Allow"] = "POST"
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if status != 405 && w.Header().Get("Allow") != "" {
		t.Errorf("unexpected Allow header on %d", status)
	}
}

func TestNewPortalServiceRejectsMissingDependencies(t *testing.T) {
	ok := billing.PortalConfig{Stripe: &fakeSessions{}, Users: billing.NewMemoryStore(), Auth: testAuth, ReturnURL: "https://app.example.com/"}
	tests := []struct {
		name string
		mod  func(*billing.PortalConfig)
		want string
	}{
		{"no stripe", func(c *billing.PortalConfig) { c.Stripe = nil }, "PortalConfig.Stripe is required"},
		{"no users", func(c *billing.PortalConfig) { c.Users = nil }, "PortalConfig.Users is required"},
		{"no auth", func(c *billing.PortalConfig) { c.Auth = nil }, "PortalConfig.Auth is required"},
		{"no return url", func(c *billing.PortalConfig) { c.ReturnURL = "" }, "PortalConfig.ReturnURL is required"},
		{"relative return url", func(c *billing.PortalConfig) { c.ReturnURL = "/account" }, "PortalConfig.ReturnURL"},
		{"bad allowlist entry", func(c *billing.PortalConfig) { c.AllowedReturnURLs = []string{"app.example.com"} }, "PortalConfig.AllowedReturnURLs"},
		{"allowlist entry with query", func(c *billing.PortalConfig) { c.AllowedReturnURLs = []string{"https://a.example/?x=1"} }, "no query"},
		{"bad locale", func(c *billing.PortalConfig) { c.Locale = "klingon" }, "PortalConfig.Locale"},
		{"bad trusted origin", func(c *billing.PortalConfig) { c.TrustedOrigins = []string{"not an origin"} }, "PortalConfig.TrustedOrigins"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			_, err := billing.NewPortalService(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "billing: ") {
				t.Fatalf("err = %v, want a billing: error containing %q", err, tc.want)
			}
		})
	}
	if _, err := billing.NewPortalService(ok); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func TestCreateSessionSendsOptions(t *testing.T) {
	e := newEnv(t, func(c *billing.PortalConfig) {
		c.Configuration = "bpc_123"
		c.Locale = "de"
		c.OnBehalfOf = "acct_123"
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := e.svc.CreateSession(ctx, "u_basic", billing.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.URL == "" || s.ID == "" || s.StripeRequestID == "" {
		t.Fatalf("session = %+v", s)
	}
	p := e.stripe.last()
	got := map[string]string{"customer": *p.Customer, "return_url": *p.ReturnURL, "configuration": *p.Configuration, "locale": *p.Locale, "on_behalf_of": *p.OnBehalfOf}
	want := map[string]string{"customer": "cus_basic", "return_url": "https://app.example.com/account", "configuration": "bpc_123", "locale": "de", "on_behalf_of": "acct_123"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if p.Context != ctx {
		t.Error("the request's context is not passed to Stripe")
	}
	if p.FlowData != nil {
		t.Error("no flow asked, flow_data sent")
	}

	if _, err := e.svc.CreateSession(ctx, "u_basic", billing.SessionOptions{ReturnURL: "https://other.example.com/x", Locale: "fr"}); err != nil {
		t.Fatal(err)
	}
	p = e.stripe.last()
	if *p.ReturnURL != "https://other.example.com/x" || *p.Locale != "fr" {
		t.Errorf("request options not used: return_url %q locale %q", *p.ReturnURL, *p.Locale)
	}
}

func TestCreateSessionTimeout(t *testing.T) {
	e := newEnv(t, nil)
	e.stripe.delay = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := e.svc.CreateSession(ctx, "u_pro", billing.SessionOptions{})
	if !errors.Is(err, billing.ErrInternal) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrInternal wrapping DeadlineExceeded", err)
	}
}

func TestFlows(t *testing.T) {
	redirect := &billing.AfterCompletion{Type: billing.AfterRedirect, ReturnURL: "https://app.example.com/billing/thanks"}
	tests := []struct {
		name      string
		user      string
		flow      billing.Flow
		getter    *billingtest.SubscriptionGetter
		wantErr   string // "" for success
		wantSub   string
		wantCalls int // getter calls
		check     func(t *testing.T, p *stripe.BillingPortalSessionFlowDataParams)
	}{
		{name: "payment method update", user: "u_basic", flow: billing.Flow{Type: billing.FlowPaymentMethodUpdate},
			check: func(t *testing.T, p *stripe.BillingPortalSessionFlowDataParams) {
				if *p.Type != "payment_method_update" || p.SubscriptionCancel != nil {
					t.Errorf("flow = %+v", p)
				}
			}},
		{name: "cancel own stored subscription implicitly", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionCancel, RetentionCoupon: "SAVE20"}, wantSub: "sub_pro",
			check: func(t *testing.T, p *stripe.BillingPortalSessionFlowDataParams) {
				if *p.SubscriptionCancel.Subscription != "sub_pro" || *p.SubscriptionCancel.Retention.CouponOffer.Coupon != "SAVE20" || *p.SubscriptionCancel.Retention.Type != "coupon_offer" {
					t.Errorf("cancel = %+v", p.SubscriptionCancel)
				}
			}},
		{name: "update names own stored subscription", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionUpdate, Subscription: "sub_pro", AfterCompletion: redirect}, wantSub: "sub_pro",
			check: func(t *testing.T, p *stripe.BillingPortalSessionFlowDataParams) {
				if *p.AfterCompletion.Type != "redirect" || *p.AfterCompletion.Redirect.ReturnURL != redirect.ReturnURL {
					t.Errorf("after completion = %+v", p.AfterCompletion)
				}
			}},
		{name: "update confirm with item and discount", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionUpdateConfirm,
			Items: []billing.FlowItem{{ID: "si_1", Price: "price_pro_yearly", Quantity: 2}}, Discounts: []billing.FlowDiscount{{Coupon: "C1"}},
			AfterCompletion: &billing.AfterCompletion{Type: billing.AfterHostedConfirmation, Message: "Thanks!"}}, wantSub: "sub_pro",
			check: func(t *testing.T, p *stripe.BillingPortalSessionFlowDataParams) {
				c := p.SubscriptionUpdateConfirm
				if *c.Subscription != "sub_pro" || *c.Items[0].ID != "si_1" || *c.Items[0].Price != "price_pro_yearly" || *c.Items[0].Quantity != 2 || *c.Discounts[0].Coupon != "C1" {
					t.Errorf("confirm = %+v", c)
				}
				if *p.AfterCompletion.HostedConfirmation.CustomMessage != "Thanks!" {
					t.Errorf("after completion = %+v", p.AfterCompletion)
				}
			}},
		{name: "someone else's subscription without getter", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: "sub_other"}, wantErr: "flow subscription is not the user's subscription"},
		{name: "someone else's subscription with getter", user: "u_pro", getter: billingtest.NewSubscriptionGetter(billingtest.SubscriptionSpec{ID: "sub_other", Customer: "cus_other"}), flow: billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: "sub_other"}, wantErr: "flow subscription is not the user's subscription", wantCalls: 1},
		{name: "missing subscription with getter", user: "u_pro", getter: &billingtest.SubscriptionGetter{}, flow: billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: "sub_nowhere"}, wantErr: "flow subscription is not the user's subscription", wantCalls: 1},
		{name: "getter failure is 500", user: "u_pro", getter: &billingtest.SubscriptionGetter{Fail: func(string) error { return errors.New("down") }}, flow: billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: "sub_x"}, wantErr: "Failed to create portal session", wantCalls: 1},
		{name: "own other subscription proven by getter", user: "u_pro", getter: billingtest.NewSubscriptionGetter(billingtest.SubscriptionSpec{ID: "sub_pro2", Customer: "cus_pro"}), flow: billing.Flow{Type: billing.FlowSubscriptionUpdate, Subscription: "sub_pro2"}, wantSub: "sub_pro2", wantCalls: 1},
		{name: "stored subscription needs no getter call", user: "u_pro", getter: &billingtest.SubscriptionGetter{}, flow: billing.Flow{Type: billing.FlowSubscriptionUpdate, Subscription: "sub_pro"}, wantSub: "sub_pro"},
		{name: "no known subscription", user: "u_basic", flow: billing.Flow{Type: billing.FlowSubscriptionUpdate}, wantErr: "flow needs a subscription and none is known for this user"},
		{name: "unknown type", user: "u_pro", flow: billing.Flow{Type: "delete_everything"}, wantErr: "flow type is not supported"},
		{name: "empty type", user: "u_pro", flow: billing.Flow{}, wantErr: "flow needs a type"},
		{name: "coupon on update", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionUpdate, RetentionCoupon: "X"}, wantErr: "flow subscription_update takes no coupon, items or discounts"},
		{name: "subscription on payment method update", user: "u_pro", flow: billing.Flow{Type: billing.FlowPaymentMethodUpdate, Subscription: "sub_pro"}, wantErr: "flow payment_method_update takes no subscription, coupon, items or discounts"},
		{name: "confirm without items", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionUpdateConfirm}, wantErr: "flow subscription_update_confirm needs exactly one item"},
		{name: "confirm item without change", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionUpdateConfirm, Items: []billing.FlowItem{{ID: "si_1"}}}, wantErr: "flow item needs an id and a new price or a quantity of at least 1"},
		{name: "confirm two discounts", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionUpdateConfirm, Items: []billing.FlowItem{{ID: "si_1", Quantity: 1}}, Discounts: []billing.FlowDiscount{{Coupon: "A"}, {Coupon: "B"}}}, wantErr: "flow subscription_update_confirm takes at most one discount"},
		{name: "discount with both", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionUpdateConfirm, Items: []billing.FlowItem{{ID: "si_1", Quantity: 1}}, Discounts: []billing.FlowDiscount{{Coupon: "A", PromotionCode: "promo_1"}}}, wantErr: "flow discount needs exactly one of coupon and promotion_code"},
		{name: "redirect outside allowlist", user: "u_pro", flow: billing.Flow{Type: billing.FlowPaymentMethodUpdate, AfterCompletion: &billing.AfterCompletion{Type: billing.AfterRedirect, ReturnURL: "https://evil.example/"}}, wantErr: "after_completion return_url is not allowed"},
		{name: "hosted confirmation with url", user: "u_pro", flow: billing.Flow{Type: billing.FlowPaymentMethodUpdate, AfterCompletion: &billing.AfterCompletion{Type: billing.AfterHostedConfirmation, ReturnURL: "https://app.example.com/billing/x"}}, wantErr: "after_completion hosted_confirmation takes no return_url"},
		{name: "injection in id", user: "u_pro", flow: billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: "sub_pro&customer=cus_other"}, wantErr: "flow has an invalid id"},
		{name: "free user with valid flow is still 403", user: "u_free", flow: billing.Flow{Type: billing.FlowPaymentMethodUpdate}, wantErr: "Customer portal is only available for paid subscriptions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *billing.PortalConfig) {
				if tc.getter != nil {
					c.Subscriptions = tc.getter
				}
			})
			f := tc.flow
			_, err := e.svc.CreateSession(context.Background(), tc.user, billing.SessionOptions{Flow: &f})
			if tc.getter != nil && tc.getter.Calls() != tc.wantCalls {
				t.Errorf("subscription reads = %d, want %d", tc.getter.Calls(), tc.wantCalls)
			}
			if tc.wantErr != "" {
				var be *billing.Error
				if !errors.As(err, &be) || be.Message != tc.wantErr {
					t.Fatalf("err = %v, want message %q", err, tc.wantErr)
				}
				if n := e.stripe.count(); n != 0 {
					t.Errorf("rejected flow made %d portal calls", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := e.stripe.last().FlowData
			if p == nil || *p.Type != string(tc.flow.Type) {
				t.Fatalf("flow_data = %+v", p)
			}
			var sub string
			switch {
			case p.SubscriptionCancel != nil:
				sub = *p.SubscriptionCancel.Subscription
			case p.SubscriptionUpdate != nil:
				sub = *p.SubscriptionUpdate.Subscription
			case p.SubscriptionUpdateConfirm != nil:
				sub = *p.SubscriptionUpdateConfirm.Subscription
			}
			if sub != tc.wantSub {
				t.Errorf("flow subscription = %q, want %q", sub, tc.wantSub)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func TestCanceledContextMakesNoStripeCall(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.svc.CreateSession(ctx, "u_pro", billing.SessionOptions{})
	if !errors.Is(err, billing.ErrInternal) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrInternal wrapping context.Canceled", err)
	}
	if n := e.stripe.count(); n != 0 {
		t.Fatalf("%d Stripe calls after cancel", n)
	}
}
