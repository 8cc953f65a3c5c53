package billing_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

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

// subGetter is a SubscriptionGetter over a map of subscription -> customer.
type subGetter struct {
	owners map[string]string
	err    error
	calls  int
}

func (g *subGetter) Get(id string, _ *stripe.SubscriptionParams) (*stripe.Subscription, error) {
	g.calls++
	if g.err != nil {
		return nil, g.err
	}
	c, ok := g.owners[id]
	if !ok {
		return nil, &stripe.Error{HTTPStatusCode: 404, Code: stripe.ErrorCodeResourceMissing}
	}
	return &stripe.Subscription{ID: id, Customer: &stripe.Customer{ID: c}}, nil
}

func TestFlows(t *testing.T) {
	redirect := &billing.AfterCompletion{Type: billing.AfterRedirect, ReturnURL: "https://app.example.com/billing/thanks"}
	tests := []struct {
		name      string
		user      string
		flow      billing.Flow
		getter    *subGetter
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
		{name: "someone else's subscription with getter", user: "u_pro", getter: &subGetter{owners: map[string]string{"sub_other": "cus_other"}}, flow: billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: "sub_other"}, wantErr: "flow subscription is not the user's subscription", wantCalls: 1},
		{name: "missing subscription with getter", user: "u_pro", getter: &subGetter{}, flow: billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: "sub_nowhere"}, wantErr: "flow subscription is not the user's subscription", wantCalls: 1},
		{name: "getter failure is 500", user: "u_pro", getter: &subGetter{err: errors.New("down")}, flow: billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: "sub_x"}, wantErr: "Failed to create portal session", wantCalls: 1},
		{name: "own other subscription proven by getter", user: "u_pro", getter: &subGetter{owners: map[string]string{"sub_pro2": "cus_pro"}}, flow: billing.Flow{Type: billing.FlowSubscriptionUpdate, Subscription: "sub_pro2"}, wantSub: "sub_pro2", wantCalls: 1},
		{name: "stored subscription needs no getter call", user: "u_pro", getter: &subGetter{}, flow: billing.Flow{Type: billing.FlowSubscriptionUpdate, Subscription: "sub_pro"}, wantSub: "sub_pro"},
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
			if tc.getter != nil && tc.getter.calls != tc.wantCalls {
				t.Errorf("subscription reads = %d, want %d", tc.getter.calls, tc.wantCalls)
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

func TestParsePlan(t *testing.T) {
	for in, want := range map[string]billing.Plan{"FREE": billing.Free, "basic": billing.Basic, " Pro ": billing.Pro} {
		got, err := billing.ParsePlan(in)
		if err != nil || got != want {
			t.Errorf("ParsePlan(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ENTERPRISE", "PRO1"} {
		if _, err := billing.ParsePlan(in); err == nil {
			t.Errorf("ParsePlan(%q) accepted", in)
		}
	}
	if billing.Free.Paid() || !billing.Basic.Paid() || !billing.Pro.Paid() || billing.Plan("pro").Paid() {
		t.Error("Paid() wrong")
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
