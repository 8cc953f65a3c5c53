// Package demo builds the billing handlers that every router example mounts,
// offline: users in a [billing.MemoryStore], a cookie authenticator that knows
// a few fixed tokens, and a stand-in for Stripe.
//
// A real app replaces the three parts with its own: its user table (a
// [billing.UserStore]), its session verifier (a [billing.TokenVerifier]) and
// stripe-go's portal session client:
//
//	sc := &session.Client{B: billing.NewBackend(nil), Key: os.Getenv("STRIPE_SECRET_KEY")}
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/contafy/billing"
	"github.com/stripe/stripe-go/v76"
)

// The paths the examples mount the handlers at.
const (
	PortalPath  = "/api/subscription/create-portal-session"
	WebhookPath = "/api/subscription/webhook"
)

// Tokens are the access_token cookie values the demo authenticator accepts,
// mapped to the user they belong to.
var Tokens = map[string]string{
	"tok_free":  "u_free",
	"tok_basic": "u_basic",
	"tok_pro":   "u_pro",
}

// Options tune [New]. The zero value is the default.
type Options struct {
	// Logger receives the handlers' records. Default: discard.
	Logger *slog.Logger
	// Observer receives the handlers' observations. Default: none.
	Observer billing.Observer
}

// App holds the handlers to mount.
type App struct {
	// Portal is the handler of POST /api/subscription/create-portal-session.
	Portal http.Handler
	// Store holds the demo users.
	Store *billing.MemoryStore
}

// New returns the demo handlers.
func New(opts Options) (*App, error) {
	store := billing.NewMemoryStore(
		billing.User{ID: "u_free", Plan: billing.Free},
		billing.User{ID: "u_basic", Plan: billing.Basic, StripeCustomerID: "cus_basic"},
		billing.User{ID: "u_pro", Plan: billing.Pro, StripeCustomerID: "cus_pro"},
	)
	svc, err := billing.NewPortalService(billing.Config{
		Stripe:    &fakeSessions{},
		Users:     store,
		ReturnURL: "http://localhost:8080/account",
		Logger:    opts.Logger,
		Observer:  opts.Observer,
	})
	if err != nil {
		return nil, err
	}
	auth := billing.NewCookieAuthenticator(billing.TokenVerifierFunc(
		func(_ context.Context, token string) (string, error) {
			if id, ok := Tokens[token]; ok {
				return id, nil
			}
			return "", billing.ErrTokenInvalid
		}))
	return &App{Portal: svc.Handler(auth), Store: store}, nil
}

// fakeSessions stands in for stripe-go's portal session client.
type fakeSessions struct{ n atomic.Int64 }

func (f *fakeSessions) New(p *stripe.BillingPortalSessionParams) (*stripe.BillingPortalSession, error) {
	n := f.n.Add(1)
	return &stripe.BillingPortalSession{
		ID:          fmt.Sprintf("bps_demo%d", n),
		URL:         fmt.Sprintf("https://billing.stripe.com/p/session/test_demo%d", n),
		Customer:    stripe.StringValue(p.Customer),
		ReturnURL:   stripe.StringValue(p.ReturnURL),
		APIResource: stripe.APIResource{LastResponse: &stripe.APIResponse{RequestID: fmt.Sprintf("req_demo%d", n)}},
	}, nil
}
