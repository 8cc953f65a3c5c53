// Package demo builds the billing handlers that every router example mounts,
// offline: the test kit's fake Stripe (github.com/contafy/billing/billingtest)
// with its standard customers and subscriptions, its standard users in a
// [billing.MemoryStore], and its static token authenticator.
//
// A real app replaces the parts with its own: its user table (a
// [billing.UserStore] and [billing.SyncStore], for example the sqlstore
// module), its session verifier (a [billing.TokenVerifier]), stripe-go's
// clients and the endpoint's signing secret:
//
//	b := billing.NewBackend(nil)
//	key := os.Getenv("STRIPE_SECRET_KEY")
//	sessions := &session.Client{B: b, Key: key}
//	subs := &subscription.Client{B: b, Key: key}
//	secret := os.Getenv("STRIPE_WEBHOOK_SECRET")
package demo

import (
	"log/slog"
	"net/http"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
)

// The paths the examples mount the handlers at.
const (
	PortalPath  = "/api/subscription/create-portal-session"
	WebhookPath = "/api/subscription/webhook"
	// ReturnPath is where the portal sends users back: the return sync
	// reads their subscriptions from Stripe, then redirects to AccountPath.
	ReturnPath  = "/billing/return"
	AccountPath = "/account"
)

// WebhookSecret is the signing secret the demo's webhook handler accepts.
const WebhookSecret = billingtest.WebhookSecret

// Options tune [New]. The zero value is the default.
type Options struct {
	// Logger receives the handlers' records. Default: discard.
	Logger *slog.Logger
	// Observer receives the handlers' observations. Default: none.
	Observer billing.Observer
}

// App holds the handlers to mount. Close it when done.
type App struct {
	// Portal is the handler of POST /api/subscription/create-portal-session.
	Portal http.Handler
	// Webhook is the handler of POST /api/subscription/webhook.
	Webhook http.Handler
	// Return is the handler of GET /billing/return, the portal's return
	// URL: it syncs the user's plan from Stripe (in case they come back
	// before the webhook), then redirects to /account.
	Return http.Handler
	// Store holds the users (billingtest.Users) and their subscriptions.
	Store *billing.MemoryStore
	// Stripe is the fake Stripe the handlers call.
	Stripe *billingtest.Stripe
}

// New returns the demo handlers, wired to a fresh fake Stripe.
func New(opts Options) (*App, error) {
	fake := billingtest.NewStripe()
	fake.Seed()
	store := billingtest.NewStore()
	// One value for the rules the webhook handler and the return sync share.
	rules := billing.PlanRules{Prices: billing.PriceTable{Prices: map[string]billing.Plan{
		billingtest.PriceBasic: billing.Basic,
		billingtest.PricePro:   billing.Pro,
	}}}
	auth := billingtest.NewStaticAuth()
	svc, err := billing.NewPortalService(billing.PortalConfig{
		Stripe:            fake.SessionClient(),
		Subscriptions:     fake.SubscriptionClient(),
		Users:             store,
		Auth:              auth,
		ReturnURL:         "http://localhost:8080" + ReturnPath,
		AllowedReturnURLs: []string{"http://localhost:8080/billing/"},
		Logger:            opts.Logger,
		Observer:          opts.Observer,
	})
	if err != nil {
		fake.Close()
		return nil, err
	}
	wh, err := billing.NewWebhookHandler(billing.WebhookConfig{
		Secrets:       []string{WebhookSecret},
		Store:         store,
		Rules:         rules,
		Subscriptions: fake.SubscriptionClient(),
		Logger:        opts.Logger,
		Observer:      opts.Observer,
	})
	if err != nil {
		fake.Close()
		return nil, err
	}
	rs, err := billing.NewReturnSync(billing.ReturnSyncConfig{
		Auth:          auth,
		Users:         store,
		Store:         store,
		Subscriptions: fake.SubscriptionClient(),
		Rules:         rules,
		Redirect:      AccountPath,
		Logger:        opts.Logger,
		Observer:      opts.Observer,
	})
	if err != nil {
		fake.Close()
		return nil, err
	}
	return &App{
		Portal:  svc,
		Webhook: wh,
		Return:  rs,
		Store:   store,
		Stripe:  fake,
	}, nil
}

// Close stops the fake Stripe.
func (a *App) Close() { a.Stripe.Close() }
