package billingtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/stripe/stripe-go/v76"
)

// A portal service against the fake Stripe: one call per session, and a
// Stripe outage (503, which stripe-go retries twice) answered as the
// contract's 500.
func Example() {
	s := billingtest.NewStripe() // in a test: billingtest.StartStripe(t)
	defer s.Close()
	s.Seed()

	svc, err := billing.NewPortalService(billing.PortalConfig{
		Stripe:    s.SessionClient(),
		Users:     billingtest.NewStore(),
		Auth:      billingtest.NewStaticAuth(),
		ReturnURL: billingtest.ReturnURL,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	sess, err := svc.CreateSession(ctx, billingtest.UserPro, billing.SessionOptions{})
	fmt.Println(err, strings.HasPrefix(sess.URL, "https://billing.stripe.com/p/session/"), s.CallCount(billingtest.PathPortalSessions))

	s.Fail(billingtest.PathPortalSessions, billingtest.ServiceUnavailable())
	_, err = svc.CreateSession(ctx, billingtest.UserPro, billing.SessionOptions{})
	fmt.Println(errors.Is(err, billing.ErrInternal), s.CallCount(billingtest.PathPortalSessions))

	s.Reset() // forget calls and faults
	s.FailNext(billingtest.PathPortalSessions, 1, billingtest.ResourceMissing("customer"))
	_, err = svc.CreateSession(ctx, billingtest.UserPro, billing.SessionOptions{})
	fmt.Println(errors.Is(err, billing.ErrCustomerNotFound), s.CallCount(billingtest.PathPortalSessions))
	// Output:
	// <nil> true 1
	// true 4
	// true 1
}

// The standard users and tokens through the portal handler.
func ExampleNewStaticAuth() {
	s := billingtest.NewStripe()
	defer s.Close()
	s.Seed()
	svc, err := billing.NewPortalService(billing.PortalConfig{
		Stripe: s.SessionClient(), Users: billingtest.NewStore(), Auth: billingtest.NewStaticAuth(), ReturnURL: billingtest.ReturnURL,
	})
	if err != nil {
		panic(err)
	}
	h := svc

	for _, token := range []string{billingtest.TokenPro, billingtest.TokenFree, billingtest.TokenNoCustomer, billingtest.TokenExpired} {
		req := httptest.NewRequest(http.MethodPost, "/api/subscription/create-portal-session", nil)
		req.AddCookie(billingtest.Cookie(token))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(token, rec.Code)
	}
	// Output:
	// tok_pro 200
	// tok_free 403
	// tok_nocust 404
	// tok_expired 401
}

// The emulator as an app's tests use it: a portal session whose URL opens
// the hosted page, a webhook endpoint of the app, and the clock moved by a
// period, which renews both seeded subscriptions and delivers the events.
func ExampleNewEmulator() {
	emu, err := billingtest.NewEmulator(billingtest.EmulatorConfig{}) // in a test: billingtest.StartEmulator(t, cfg)
	if err != nil {
		panic(err)
	}
	defer emu.Close()
	emu.Seed()

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})) // the app's webhook handler
	defer app.Close()
	emu.AddWebhookEndpoint(app.URL+billingtest.WebhookPath, "customer.subscription.updated", "customer.subscription.deleted")

	sess, err := emu.SessionClient().New(&stripe.BillingPortalSessionParams{
		Customer: stripe.String(billingtest.CustomerPro), ReturnURL: stripe.String(billingtest.ReturnURL)})
	if err != nil {
		panic(err)
	}
	resp, err := emu.HTTPClient().Get(sess.URL)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(strings.HasPrefix(sess.URL, emu.URL()+"/p/session/"), resp.StatusCode)

	if err := emu.AdvanceClock(context.Background(), 30*24*time.Hour); err != nil {
		panic(err)
	}
	for _, d := range emu.Deliveries() {
		fmt.Println(d.EventType, d.Status)
	}
	// Output:
	// true 200
	// customer.subscription.updated 200
	// customer.subscription.updated 200
}
