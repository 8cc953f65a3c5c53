package billingtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
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
