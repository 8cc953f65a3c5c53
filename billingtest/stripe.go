package billingtest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/customer"
	"github.com/stripe/stripe-go/v76/subscription"
)

// TestKey is the secret key the kit's clients send to the fake. The fake
// accepts any test-mode key (sk_test_... or rk_test_...), never a live one.
const TestKey = "sk_test_billingtest"

// Paths of the endpoints the fake serves, for [Stripe.Fail], [Stripe.FailNext]
// and [Stripe.CallCount].
const (
	// PathPortalSessions is POST /v1/billing_portal/sessions.
	PathPortalSessions = "/v1/billing_portal/sessions"
	// PathSubscriptions is GET /v1/subscriptions (the list); as a pattern
	// it matches only the list. Use PathSubscriptions+"/" for every
	// GET /v1/subscriptions/{id}.
	PathSubscriptions = "/v1/subscriptions"
	// PathCustomers is POST /v1/customers (create); PathCustomers+"/"
	// matches every /v1/customers/{id}.
	PathCustomers = "/v1/customers"
	// PathProducts is /v1/products (create, list).
	PathProducts = "/v1/products"
	// PathPrices is /v1/prices (create, list).
	PathPrices = "/v1/prices"
	// PathInvoices is /v1/invoices (list).
	PathInvoices = "/v1/invoices"
	// PathPaymentMethods is /v1/payment_methods (create, list).
	PathPaymentMethods = "/v1/payment_methods"
	// PathPortalConfigurations is /v1/billing_portal/configurations.
	PathPortalConfigurations = "/v1/billing_portal/configurations"
	// PathWebhookEndpoints is /v1/webhook_endpoints.
	PathWebhookEndpoints = "/v1/webhook_endpoints"
	// PathEvents is /v1/events (list).
	PathEvents = "/v1/events"
	// PathFeatures is /v1/entitlements/features.
	PathFeatures = "/v1/entitlements/features"
	// PathActiveEntitlements is /v1/entitlements/active_entitlements.
	PathActiveEntitlements = "/v1/entitlements/active_entitlements"
)

// Stripe is the test kit's Stripe emulator: an in-memory, stateful
// stand-in for the part of Stripe's API that billing apps use (products,
// prices, customers, subscriptions, invoices, payment methods, portal
// configurations and sessions, webhook endpoints, events, entitlements),
// with a hosted portal page, webhook delivery, a test clock, call recording,
// connection counting and fault injection. It decodes what stripe-go v76
// sends (form-encoded bodies, Bearer or basic key auth) and answers JSON
// shaped like Stripe's, with a Request-Id header on every reply, so that
// stripe-go's real clients work against it. The section "The emulator" of
// the package documentation is its contract: the endpoints, ids, URLs,
// what it does and what it leaves out.
//
// Faults and [Stripe.CallCount] use the emulator's own patterns (a path, a
// path prefix ending in "/", "*"), which match before routing. A Stripe is
// safe for concurrent use. Create one with [NewStripe], [StartStripe],
// [NewEmulator] or [StartEmulator]; the zero value is not usable.
type Stripe struct {
	srv        *httptest.Server
	mux        *http.ServeMux // routes, set once by newStripe
	client     *http.Client
	hookClient *http.Client // webhook deliveries
	cfg        EmulatorConfig
	closing    chan struct{}
	ctx        context.Context // canceled by Close: ends deliveries in flight
	cancel     context.CancelFunc
	once       sync.Once
	wg         sync.WaitGroup // the delivery goroutines
	offset     atomic.Int64   // the clock's offset from the wall clock, in ns

	mu        sync.Mutex
	seq       int64 // creation order of the objects, for lists
	conns     int
	customers map[string]*StripeCustomer
	subs      map[string]*SubscriptionSpec
	sessions  []PortalSession
	calls     []Call
	callsGen  int           // incremented by Reset: a call in flight then is no longer recorded
	callAdded chan struct{} // closed and replaced when a call is recorded
	rules     []*faultRule
	catalog   catalog
	billing   billingState
	portal    portalState
	ent       entitlementState
	log       eventLog
	hooks     webhookState
}

// NewStripe starts an emulator on 127.0.0.1 (an [httptest.Server]) with no
// customers, configured as [NewEmulator] does except that portal session
// URLs keep the fake's historical form
// https://billing.stripe.com/p/session/test_..., which leads nowhere (the
// hosted page is still served at [Stripe.URL] + the URL's path). Call Close
// when done. It needs no *testing.T, so a demo can run it in-process; in
// tests, [StartStripe] closes it for you. For session URLs that open the
// hosted page, use [NewEmulator] or [StartEmulator].
func NewStripe() *Stripe {
	s, err := newStripe(EmulatorConfig{PortalURL: "https://billing.stripe.com"}, nil)
	if err != nil {
		panic("billingtest: NewStripe: " + err.Error()) // only a listener error, and NewStripe listens on what httptest picks
	}
	return s
}

// StartStripe is [NewStripe] for tests: the fake is closed when t's test
// ends.
func StartStripe(t testing.TB) *Stripe {
	t.Helper()
	s := NewStripe()
	t.Cleanup(s.Close)
	return s
}

// newStripe builds the emulator on ln (nil: httptest's own listener on
// 127.0.0.1) and starts serving.
func newStripe(cfg EmulatorConfig, ln net.Listener) (*Stripe, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Stripe{
		cfg:       cfg,
		closing:   make(chan struct{}),
		callAdded: make(chan struct{}),
		customers: map[string]*StripeCustomer{},
		subs:      map[string]*SubscriptionSpec{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.initState()
	s.mux = s.routes()
	s.srv = httptest.NewUnstartedServer(s)
	if ln != nil {
		_ = s.srv.Listener.Close()
		s.srv.Listener = ln
	}
	s.srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		s.mu.Lock()
		s.conns++
		ci := &connInfo{n: s.conns}
		s.mu.Unlock()
		return context.WithValue(ctx, connKey{}, ci)
	}
	s.srv.Start()
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL = publicURL(s.srv.Listener.Addr())
	}
	if s.cfg.PortalURL == "" {
		s.cfg.PortalURL = s.cfg.PublicURL
	}
	s.client = billing.NewHTTPClient(10 * time.Second)
	s.hookClient = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	return s, nil
}

// URL is the emulator's base URL (http://127.0.0.1:port), what a stripe-go
// BackendConfig.URL takes: where it listens, an unspecified host (":0")
// written as 127.0.0.1. The URLs it hands out (portal sessions, invoices)
// start with [EmulatorConfig].PublicURL, by default the same.
func (s *Stripe) URL() string { return publicURL(s.srv.Listener.Addr()) }

// Close ends slow replies and webhook deliveries in progress, stops every
// goroutine the emulator started, shuts the server down and closes the
// idle connections of [Stripe.HTTPClient]. Calling it again does nothing.
func (s *Stripe) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.cancel()
		s.srv.Close()
		s.wg.Wait()
		s.client.CloseIdleConnections()
		s.hookClient.CloseIdleConnections()
	})
}

// HTTPClient is the *http.Client the kit's backends use by default, made by
// [billing.NewHTTPClient] with a 10 s timeout: a keep-alive pool like the
// one an app would use in production, shared by every backend of this fake.
func (s *Stripe) HTTPClient() *http.Client { return s.client }

// BackendConfig configures a stripe-go backend wired to the fake by
// [Stripe.NewBackend]. The zero value gives [Stripe.Backend]'s defaults.
type BackendConfig struct {
	// MaxNetworkRetries is how many times stripe-go retries a failed
	// attempt. Default: 2, stripe-go's own default. Use stripe.Int64(0) for
	// none.
	MaxNetworkRetries *int64
	// HTTPClient makes the requests. Default: [Stripe.HTTPClient].
	HTTPClient *http.Client
	// RetrySleep keeps stripe-go's production backoff between retries
	// (0.5 s, then about 1 s, then 2.5 s...). Default: false, retries
	// follow at once so that fault tests take milliseconds.
	RetrySleep bool
	// Logger is stripe-go's logger. Default: silent
	// (stripe.LeveledLogger{Level: stripe.LevelNull}).
	Logger stripe.LeveledLoggerInterface
}

// NewBackend returns a stripe-go backend that sends every call to the fake.
// It touches none of stripe-go's globals.
func (s *Stripe) NewBackend(c BackendConfig) stripe.Backend {
	cfg := &stripe.BackendConfig{
		URL:               stripe.String(s.URL()),
		HTTPClient:        c.HTTPClient,
		MaxNetworkRetries: c.MaxNetworkRetries,
		LeveledLogger:     c.Logger,
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = s.client
	}
	if cfg.MaxNetworkRetries == nil {
		cfg.MaxNetworkRetries = stripe.Int64(2)
	}
	if cfg.LeveledLogger == nil {
		cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
	}
	b := stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
	if bi, ok := b.(*stripe.BackendImplementation); ok {
		// BackendConfig has no field for it; this switch is stripe-go's
		// own, meant for tests.
		bi.SetNetworkRetriesSleep(c.RetrySleep)
	}
	return b
}

// Backend returns a stripe-go backend wired to the fake with the defaults of
// [BackendConfig]: 2 retries without sleeping between them, the shared
// [Stripe.HTTPClient], stripe-go's logging off.
func (s *Stripe) Backend() stripe.Backend { return s.NewBackend(BackendConfig{}) }

// SessionClient returns stripe-go's billing portal session client wired to
// the fake, with [TestKey]. It satisfies [billing.SessionCreator].
func (s *Stripe) SessionClient() *session.Client {
	return &session.Client{B: s.Backend(), Key: TestKey}
}

// SubscriptionClient returns stripe-go's subscription client wired to the
// fake, with [TestKey]. It satisfies [billing.SubscriptionGetter].
func (s *Stripe) SubscriptionClient() *subscription.Client {
	return &subscription.Client{B: s.Backend(), Key: TestKey}
}

// API returns stripe-go's client for every resource (client.API) wired to
// the emulator, with [TestKey] and [Stripe.Backend]'s settings: the
// emulator's whole API through one value, for example
// s.API().Subscriptions.New(...).
func (s *Stripe) API() *client.API {
	b := s.Backend()
	return client.New(TestKey, &stripe.Backends{API: b, Connect: b, Uploads: b})
}

// CustomerClient returns stripe-go's customer client wired to the fake,
// with [TestKey].
func (s *Stripe) CustomerClient() *customer.Client {
	return &customer.Client{B: s.Backend(), Key: TestKey}
}
