package billing_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/internal/testenv"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
)

// stripeMockService wires a PortalService to Stripe's own stripe-mock, which
// validates every request against Stripe's OpenAPI description.
func stripeMockService(t *testing.T, mod func(*billing.PortalConfig)) *billing.PortalService {
	t.Helper()
	b := billing.NewBackend(testenv.StripeMockBackendConfig(t))
	cfg := billing.PortalConfig{
		Stripe:            &session.Client{B: b, Key: "sk_test_stripemock"},
		Users:             billing.NewMemoryStore(testUsers...),
		Auth:              testAuth,
		ReturnURL:         "https://app.example.com/account",
		AllowedReturnURLs: []string{"https://app.example.com/billing/"},
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := billing.NewPortalService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestStripeMockAcceptsEveryRequestShape sends every flow type, both
// after-completion behaviours and every option to stripe-mock: a request
// shape Stripe's API description rejects fails here.
func TestStripeMockAcceptsEveryRequestShape(t *testing.T) {
	svc := stripeMockService(t, func(c *billing.PortalConfig) {
		c.Configuration = "bpc_123"
		c.OnBehalfOf = "acct_123"
		c.Locale = "auto"
	})
	redirect := &billing.AfterCompletion{Type: billing.AfterRedirect, ReturnURL: "https://app.example.com/billing/done"}
	hosted := &billing.AfterCompletion{Type: billing.AfterHostedConfirmation, Message: "All set."}
	home := &billing.AfterCompletion{Type: billing.AfterPortalHome}
	cases := map[string]billing.SessionOptions{
		"plain":                          {},
		"return url and locale":          {ReturnURL: "https://app.example.com/billing/x", Locale: "pt-BR"},
		"payment method update":          {Flow: &billing.Flow{Type: billing.FlowPaymentMethodUpdate}},
		"payment method update redirect": {Flow: &billing.Flow{Type: billing.FlowPaymentMethodUpdate, AfterCompletion: redirect}},
		"cancel":                         {Flow: &billing.Flow{Type: billing.FlowSubscriptionCancel}},
		"cancel with coupon hosted":      {Flow: &billing.Flow{Type: billing.FlowSubscriptionCancel, RetentionCoupon: "SAVE20", AfterCompletion: hosted}},
		"update":                         {Flow: &billing.Flow{Type: billing.FlowSubscriptionUpdate, AfterCompletion: home}},
		"update confirm price":           {Flow: &billing.Flow{Type: billing.FlowSubscriptionUpdateConfirm, Items: []billing.FlowItem{{ID: "si_1", Price: "price_pro"}}, AfterCompletion: redirect}},
		"update confirm quantity coupon": {Flow: &billing.Flow{Type: billing.FlowSubscriptionUpdateConfirm, Items: []billing.FlowItem{{ID: "si_1", Quantity: 3}}, Discounts: []billing.FlowDiscount{{Coupon: "C1"}}}},
		"update confirm promotion code":  {Flow: &billing.Flow{Type: billing.FlowSubscriptionUpdateConfirm, Items: []billing.FlowItem{{ID: "si_1", Price: "price_pro", Quantity: 1}}, Discounts: []billing.FlowDiscount{{PromotionCode: "promo_1"}}, AfterCompletion: hosted}},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := svc.CreateSession(context.Background(), "u_pro", opts)
			if err != nil {
				t.Fatalf("stripe-mock rejected the request: %v", err)
			}
			if !strings.HasPrefix(s.URL, "http") || s.ID == "" {
				t.Fatalf("session = %+v", s)
			}
		})
	}
}

// TestStripeMockAcceptsEveryLocale proves the locale list matches Stripe's.
func TestStripeMockAcceptsEveryLocale(t *testing.T) {
	svc := stripeMockService(t, nil)
	for _, l := range strings.Fields(`auto bg cs da de el en en-AU en-CA en-GB en-IE en-IN en-NZ en-SG
		es es-419 et fi fil fr fr-CA hr hu id it ja ko lt lv ms mt nb nl pl pt pt-BR ro ru sk sl sv
		th tr vi zh zh-HK zh-TW`) {
		if _, err := svc.CreateSession(context.Background(), "u_basic", billing.SessionOptions{Locale: l}); err != nil {
			t.Errorf("locale %q: %v", l, err)
		}
	}
}

// TestStripeMockValidates proves stripe-mock is a real check: a shape it
// rejects surfaces as ErrInternal (and so the tests above can fail).
func TestStripeMockValidates(t *testing.T) {
	c := &session.Client{B: billing.NewBackend(testenv.StripeMockBackendConfig(t)), Key: "sk_test_stripemock"}
	svc, err := billing.NewPortalService(billing.PortalConfig{
		Stripe: badShape{c}, Users: billing.NewMemoryStore(testUsers...), Auth: testAuth, ReturnURL: "https://app.example.com/account",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.CreateSession(context.Background(), "u_pro", billing.SessionOptions{})
	var se *stripe.Error
	if !errors.Is(err, billing.ErrInternal) || !errors.As(err, &se) || se.HTTPStatusCode != http.StatusBadRequest {
		t.Fatalf("err = %v, want ErrInternal wrapping stripe-mock's 400", err)
	}
}

// badShape corrupts the flow type before the call.
type badShape struct{ c *session.Client }

func (b badShape) New(p *stripe.BillingPortalSessionParams) (*stripe.BillingPortalSession, error) {
	p.FlowData = &stripe.BillingPortalSessionFlowDataParams{Type: stripe.String("not_a_flow")}
	return b.c.New(p)
}

// TestStripeMockThroughHandler runs the 200 row of the contract against
// stripe-mock through the real handler.
func TestStripeMockThroughHandler(t *testing.T) {
	svc := stripeMockService(t, nil)
	h := svc
	start := time.Now()
	w := post(t, h, "tok_pro", `{"flow":{"type":"subscription_cancel"}}`, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s (after %v)", w.Code, w.Body, time.Since(start))
	}
	r := decode(t, w.Body.String())
	if r.URL == "" || r.Message != billing.SuccessMessage {
		t.Fatalf("reply = %+v", r)
	}
}
