package billing_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/subscription"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/testenv"
)

const tokUser1 = "tok_u1"

// returnEnv is a webhook env whose handler reads ties from the fake Stripe,
// plus a ReturnSync on the same store and fake, its clock at readAt.
type returnEnv struct {
	*whEnv
	fake   *billingtest.Stripe
	rs     *billing.ReturnSync
	readAt time.Time
}

func newReturnEnv(t *testing.T, mut ...func(*billing.ReturnSyncConfig)) *returnEnv {
	t.Helper()
	fake := billingtest.StartStripe(t)
	e := &returnEnv{fake: fake, readAt: t0}
	e.whEnv = newWHEnv(t, func(c *billing.WebhookConfig) { c.Subscriptions = fake.SubscriptionClient() })
	auth := billingtest.NewStaticAuth()
	auth.Add(tokUser1, user1)
	cfg := billing.ReturnSyncConfig{
		Auth:          auth,
		Users:         e.store,
		Store:         e.store,
		Subscriptions: fake.SubscriptionClient(),
		Rules:         billing.PlanRules{Prices: testPlans(t)},
		Redirect:      "/account",
		Logger:        slog.New(slog.NewJSONHandler(e.logs, nil)),
		Observer: billing.ObserverFunc(func(_ context.Context, o billing.Observation) {
			*e.obs = append(*e.obs, o)
		}),
	}
	for _, m := range mut {
		m(&cfg)
	}
	rs, err := billing.NewReturnSync(cfg)
	if err != nil {
		t.Fatal(err)
	}
	billing.SetReturnSyncClock(rs, func() time.Time { return e.readAt })
	e.rs = rs
	return e
}

// comeBack is the user's browser arriving from the portal with token.
func (e *returnEnv) comeBack(token string) {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/billing/return", nil)
	if token != "" {
		r.AddCookie(billingtest.Cookie(token))
	}
	w := httptest.NewRecorder()
	e.rs.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/account" {
		e.t.Fatalf("reply %d Location %q, want 303 to /account", w.Code, w.Header().Get("Location"))
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		e.t.Fatalf("Cache-Control = %q", w.Header().Get("Cache-Control"))
	}
}

// stripeHas sets the subscription as Stripe knows it now.
func (e *returnEnv) stripeHas(status, price string) {
	e.fake.PutSubscription(billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, Status: status, PriceID: price, Created: t0.Add(-24 * time.Hour)})
}

func TestReturnSync(t *testing.T) {
	t.Run("applies Stripe's state before the webhook arrives", func(t *testing.T) {
		e := newReturnEnv(t)
		e.stripeHas("active", "price_pro")
		e.comeBack(tokUser1)
		e.wantPlan(user1, billing.Pro)
		if n := e.fake.CallCount(billingtest.PathSubscriptions); n != 1 {
			t.Fatalf("list calls = %d, want 1", n)
		}
		calls := e.fake.Calls()
		q := calls[len(calls)-1].Form
		if q.Get("customer") != cus1 || q.Get("status") != "all" {
			t.Fatalf("list params = %v, want customer=%s status=all", q, cus1)
		}
		if got := (*e.obs)[len(*e.obs)-1]; got.Op != "return_sync" || got.Outcome != "synced" || got.UserID != user1 {
			t.Fatalf("observation = %+v", got)
		}
	})
	t.Run("a late, older webhook does not overwrite the read", func(t *testing.T) {
		e := newReturnEnv(t)
		// The user was PRO, downgraded to BASIC in the portal 5 s ago and
		// comes back before either webhook.
		e.stripeHas("active", "price_basic")
		e.comeBack(tokUser1)
		e.wantPlan(user1, billing.Basic)
		e.expect(subEvent("customer.subscription.created", "active", "price_pro", t0.Add(-time.Hour)), 200, "stale")
		e.expect(subEvent("customer.subscription.updated", "active", "price_basic", t0.Add(-5*time.Second)), 200, "stale")
		e.wantPlan(user1, billing.Basic)
		// A change made after the read still comes through.
		e.expect(subEvent("customer.subscription.deleted", "canceled", "price_basic", t0.Add(time.Minute)), 200, "applied")
		e.wantPlan(user1, billing.Free)
	})
	t.Run("an early webhook, then the return sync, converge", func(t *testing.T) {
		e := newReturnEnv(t)
		e.expect(subEvent("customer.subscription.updated", "active", "price_pro", t0.Add(-5*time.Second)), 200, "applied")
		e.wantPlan(user1, billing.Pro)
		e.stripeHas("active", "price_pro")
		e.comeBack(tokUser1)
		e.wantPlan(user1, billing.Pro)
		e.wantStored(sub1, "active", billing.Pro)
	})
	t.Run("an event of the read's second, delivered after the read, replaces it", func(t *testing.T) {
		e := newReturnEnv(t)
		e.readAt = t0.Add(300 * time.Millisecond)
		e.stripeHas("active", "price_pro")
		e.comeBack(tokUser1)
		e.wantPlan(user1, billing.Pro)
		// At t0+0.8s, after the read but in its second, the user
		// downgrades; Stripe sends the event created at t0.
		e.stripeHas("active", "price_basic")
		e.expect(subEvent("customer.subscription.updated", "active", "price_basic", t0), 200, "applied")
		e.wantPlan(user1, billing.Basic)
	})
	t.Run("an event of the read's second, delivered before the read, is kept", func(t *testing.T) {
		// The same downgrade, but its webhook was handled before the slow
		// return sync wrote its (older) read: the read must not win.
		e := newReturnEnv(t)
		e.readAt = t0.Add(300 * time.Millisecond)
		e.stripeHas("active", "price_pro") // what the read saw
		e.expect(subEvent("customer.subscription.updated", "active", "price_basic", t0), 200, "applied")
		e.comeBack(tokUser1)
		e.wantPlan(user1, billing.Basic)
		if got := (*e.obs)[len(*e.obs)-1]; got.Outcome != "synced" {
			t.Fatalf("observation = %+v", got)
		}
	})
	t.Run("a canceled subscription is synced too", func(t *testing.T) {
		e := newReturnEnv(t)
		e.expect(subEvent("customer.subscription.created", "active", "price_pro", t0.Add(-time.Hour)), 200, "applied")
		e.stripeHas("canceled", "price_pro")
		e.comeBack(tokUser1)
		e.wantPlan(user1, billing.Free)
		e.wantStored(sub1, "canceled", billing.Free)
	})
	t.Run("unknown price leaves the plan alone", func(t *testing.T) {
		e := newReturnEnv(t)
		e.expect(subEvent("customer.subscription.created", "active", "price_basic", t0.Add(-time.Hour)), 200, "applied")
		e.stripeHas("active", "price_enterprise")
		e.comeBack(tokUser1)
		e.wantPlan(user1, billing.Basic)
		if !strings.Contains(e.logs.String(), "price_ids=price_enterprise") && !strings.Contains(e.logs.String(), `"price_ids":"price_enterprise"`) {
			t.Fatalf("unknown price not logged:\n%s", e.logs)
		}
	})
}

func TestReturnSyncFailuresStillRedirect(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		setup     func(e *returnEnv)
		wantCalls int
		outcome   string
	}{
		{name: "no cookie", token: "", wantCalls: 0, outcome: "unauthorized"},
		{name: "bad token", token: "tok_forged", wantCalls: 0, outcome: "unauthorized"},
		{name: "user without customer", token: tokUser1, setup: func(e *returnEnv) {
			e.store.PutUser(context.Background(), billing.User{ID: user1, Plan: billing.Free})
		}, wantCalls: 0, outcome: "synced"},
		{name: "Stripe fails", token: tokUser1, setup: func(e *returnEnv) {
			e.fake.Fail(billingtest.PathSubscriptions, billingtest.Fault{Status: 400, Type: "invalid_request_error", Message: "secret sk_test_leak"})
		}, wantCalls: 1, outcome: "error"},
		{name: "store fails", token: tokUser1, setup: func(e *returnEnv) { e.store.fail(true) }, wantCalls: 1, outcome: "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newReturnEnv(t)
			e.stripeHas("active", "price_pro")
			if tt.setup != nil {
				tt.setup(e)
			}
			e.comeBack(tt.token)
			e.wantPlan(user1, billing.Free)
			if n := e.fake.CallCount(billingtest.PathSubscriptions); n != tt.wantCalls {
				t.Fatalf("list calls = %d, want %d", n, tt.wantCalls)
			}
			if got := (*e.obs)[len(*e.obs)-1]; string(got.Outcome) != tt.outcome {
				t.Fatalf("outcome = %q, want %q", got.Outcome, tt.outcome)
			}
			if strings.Contains(e.logs.String(), "sk_test_leak") || strings.Contains(e.logs.String(), "tok_") {
				t.Fatalf("log leaks Stripe's text or a token:\n%s", e.logs)
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		e := newReturnEnv(t)
		w := httptest.NewRecorder()
		e.rs.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/billing/return", nil))
		if w.Code != 405 || w.Header().Get("Allow") != "GET" || !strings.Contains(w.Body.String(), `"error":"Method Not Allowed"`) {
			t.Fatalf("got %d Allow=%q %s", w.Code, w.Header().Get("Allow"), w.Body)
		}
	})
}

func TestNewReturnSyncConfig(t *testing.T) {
	fake := billingtest.StartStripe(t)
	ok := func() billing.ReturnSyncConfig {
		s := billing.NewMemoryStore()
		return billing.ReturnSyncConfig{Auth: billingtest.NewStaticAuth(), Users: s, Store: s, Subscriptions: fake.SubscriptionClient(), Rules: billing.PlanRules{Prices: testPlans(t)}, Redirect: "https://app.example.com/account"}
	}
	tests := []struct {
		name string
		mut  func(*billing.ReturnSyncConfig)
		want string
	}{
		{"ok", func(*billing.ReturnSyncConfig) {}, ""},
		{"path redirect", func(c *billing.ReturnSyncConfig) { c.Redirect = "/account?tab=billing" }, ""},
		{"no auth", func(c *billing.ReturnSyncConfig) { c.Auth = nil }, "Auth is required"},
		{"no users", func(c *billing.ReturnSyncConfig) { c.Users = nil }, "Users is required"},
		{"no store", func(c *billing.ReturnSyncConfig) { c.Store = nil }, "Store is required"},
		{"no lister", func(c *billing.ReturnSyncConfig) { c.Subscriptions = nil }, "Subscriptions is required"},
		{"no plans", func(c *billing.ReturnSyncConfig) { c.Rules = billing.PlanRules{} }, "price table is empty"},
		{"no redirect", func(c *billing.ReturnSyncConfig) { c.Redirect = "" }, "Redirect is required"},
		{"protocol-relative redirect", func(c *billing.ReturnSyncConfig) { c.Redirect = "//evil.example" }, "Redirect"},
		{"javascript redirect", func(c *billing.ReturnSyncConfig) { c.Redirect = "javascript:alert(1)" }, "Redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.mut(&c)
			_, err := billing.NewReturnSync(c)
			if (err == nil) != (tt.want == "") || (err != nil && (!strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "billing: "))) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestStripeMockAcceptsSyncRequests sends the sync's Stripe requests (the
// return sync's list with the product expanded, the tie read with the
// product expanded) to stripe-mock, which checks them against Stripe's
// OpenAPI description.
func TestStripeMockAcceptsSyncRequests(t *testing.T) {
	client := &subscription.Client{B: billing.NewBackend(testenv.StripeMockBackendConfig(t)), Key: "sk_test_stripemock"}
	plans := testPlans(t) // maps product metadata, so both requests expand the product
	store := billing.NewMemoryStore(billing.User{ID: user1, StripeCustomerID: cus1})

	rs, err := billing.NewReturnSync(billing.ReturnSyncConfig{
		Auth: billingtest.NewStaticAuth(), Users: store, Store: store, Subscriptions: client, Rules: billing.PlanRules{Prices: plans}, Redirect: "/account",
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rs.Sync(context.Background(), user1)
	if err != nil || res.Read == 0 || res.StripeRequestID == "" {
		t.Fatalf("Sync = %+v, %v; want subscriptions read from stripe-mock", res, err)
	}

	g := &billingtest.SubscriptionGetter{Next: client}
	e := newWHEnv(t, func(c *billing.WebhookConfig) { c.Subscriptions = g })
	e.now = time.Now()
	// An unmapped price makes the handler read the subscription with its
	// product expanded.
	e.send(billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, PriceID: "price_unmapped"}, e.now), billingtest.RequestOptions{})
	if reads := g.Reads(); len(reads) != 1 || reads[0].Err != nil {
		t.Fatalf("reads = %+v, want one accepted by stripe-mock", reads)
	}
}
