package billingtest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
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
)

// Stripe is a fake of the part of Stripe's API that the billing library
// calls, served by an [httptest.Server] on 127.0.0.1. It keeps customers,
// subscriptions and billing portal sessions in memory, records every call,
// counts TCP connections, and answers with injected faults on request. It
// decodes what stripe-go v76 sends (form-encoded bodies, Bearer or basic
// key auth) and answers JSON shaped like Stripe's, with a Request-Id header
// on every reply, so that stripe-go's real clients work against it.
//
// Endpoints, routed by an [http.ServeMux] with these patterns (see
// serving.go):
//
//	POST /v1/billing_portal/sessions   customer must exist (else 404 resource_missing)
//	GET  /v1/subscriptions/{id}
//	GET  /v1/subscriptions             ?customer=&status=&price= (status default: all but canceled)
//	POST /v1/customers                 create
//	GET  /v1/customers/{id}
//	POST /v1/customers/{id}            update email, name, metadata
//
// Any other method or path is Stripe's 404 error JSON
// (invalid_request_error "Unrecognized request URL"). Faults and
// [Stripe.CallCount] use the fake's own patterns (a path, a path prefix
// ending in "/", "*"), which match before routing. A Stripe is safe for concurrent
// use. Create one with [NewStripe] or [StartStripe]; the zero value is not
// usable.
type Stripe struct {
	srv     *httptest.Server
	mux     *http.ServeMux // routes, set once by NewStripe
	client  *http.Client
	closing chan struct{}
	once    sync.Once

	mu            sync.Mutex
	conns         int
	customers     map[string]*StripeCustomer
	subs          map[string]*SubscriptionSpec
	sessions      []PortalSession
	calls         []Call
	callsGen      int           // incremented by Reset: a call in flight then is no longer recorded
	callAdded     chan struct{} // closed and replaced when a call is recorded
	rules         []*faultRule
	defaultReturn string
}

// NewStripe starts a fake Stripe on 127.0.0.1 with no customers. Call
// Close when done. It needs no *testing.T, so a demo can run it in-process;
// in tests, [StartStripe] closes it for you.
func NewStripe() *Stripe {
	s := &Stripe{
		closing:   make(chan struct{}),
		callAdded: make(chan struct{}),
		customers: map[string]*StripeCustomer{},
		subs:      map[string]*SubscriptionSpec{},
	}
	s.mux = s.routes()
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		s.mu.Lock()
		s.conns++
		ci := &connInfo{n: s.conns}
		s.mu.Unlock()
		return context.WithValue(ctx, connKey{}, ci)
	}
	s.srv.Start()
	s.client = billing.NewHTTPClient(10 * time.Second)
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

// URL is the fake's base URL (http://127.0.0.1:port), what a stripe-go
// BackendConfig.URL takes.
func (s *Stripe) URL() string { return s.srv.URL }

// Close ends slow replies in progress, shuts the server down and closes the
// idle connections of [Stripe.HTTPClient]. Calling it again does nothing.
func (s *Stripe) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.Close()
		s.client.CloseIdleConnections()
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
		URL:               stripe.String(s.srv.URL),
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

// CustomerClient returns stripe-go's customer client wired to the fake,
// with [TestKey].
func (s *Stripe) CustomerClient() *customer.Client {
	return &customer.Client{B: s.Backend(), Key: TestKey}
}
