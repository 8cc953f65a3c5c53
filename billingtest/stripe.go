package billingtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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
// Endpoints:
//
//	POST /v1/billing_portal/sessions   customer must exist (else 404 resource_missing)
//	GET  /v1/subscriptions/{id}
//	GET  /v1/subscriptions             ?customer=&status=&price= (status default: all but canceled)
//	POST /v1/customers                 create
//	GET  /v1/customers/{id}
//	POST /v1/customers/{id}            update email, name, metadata
//
// Anything else is Stripe's 404 error JSON. A Stripe is safe for concurrent
// use. Create one with [NewStripe] or [StartStripe]; the zero value is not
// usable.
type Stripe struct {
	srv     *httptest.Server
	client  *http.Client
	closing chan struct{}
	once    sync.Once

	mu            sync.Mutex
	conns         int
	customers     map[string]*StripeCustomer
	subs          map[string]*StripeSubscription
	sessions      []PortalSession
	calls         []Call
	callsGen      int           // incremented by Reset: a call in flight then is no longer recorded
	callAdded     chan struct{} // closed and replaced when a call is recorded
	rules         []*faultRule
	defaultReturn string
}

// StripeCustomer is a customer the fake knows.
type StripeCustomer struct {
	// ID is the customer id (cus_...).
	ID string
	// Email and Name are the customer's, as set by POST /v1/customers.
	Email, Name string
	// Metadata is the customer's metadata.
	Metadata map[string]string
	// Created is when the customer was added.
	Created time.Time
}

// StripeSubscription is a subscription the fake knows, with one item.
type StripeSubscription struct {
	// ID is the subscription id (sub_...). Required.
	ID string
	// Customer is the customer id (cus_...) it belongs to. Required; the
	// customer is added to the fake if it is not known.
	Customer string
	// Status is Stripe's status word. Default: "active".
	Status string
	// PriceID, LookupKey and ProductID describe the price of the
	// subscription's only item (items.data[0].price).
	PriceID, LookupKey, ProductID string
	// Created is the subscription's creation time. Default: when it was put.
	Created time.Time
	// CurrentPeriodEnd is the end of the current period. Default: Created
	// plus 30 days.
	CurrentPeriodEnd time.Time
	// CancelAtPeriodEnd is Stripe's cancel_at_period_end.
	CancelAtPeriodEnd bool
	// Metadata is the subscription's metadata.
	Metadata map[string]string
}

// JSON returns the subscription as Stripe's API renders it, with the
// defaults of [Stripe.PutSubscription] applied: what the fake answers to
// GET /v1/subscriptions/{id}, for example to build an event's
// data.object. stripe-go decodes it into a *stripe.Subscription.
func (sub StripeSubscription) JSON() []byte {
	sub = sub.withDefaults()
	b, err := json.Marshal(subscriptionJSON(&sub))
	if err != nil {
		panic("billingtest: " + err.Error()) // only maps of plain values are encoded
	}
	return b
}

func (sub StripeSubscription) withDefaults() StripeSubscription {
	if sub.Status == "" {
		sub.Status = "active"
	}
	if sub.Created.IsZero() {
		sub.Created = time.Now()
	}
	if sub.CurrentPeriodEnd.IsZero() {
		sub.CurrentPeriodEnd = sub.Created.Add(30 * 24 * time.Hour)
	}
	return sub
}

// PortalSession is a billing portal session the fake created.
type PortalSession struct {
	// ID is the session id (bps_...).
	ID string
	// URL is the portal URL the fake returned, unique per session.
	URL string
	// Customer, ReturnURL, Configuration, Locale and OnBehalfOf are the
	// parameters of the request (ReturnURL after the default was applied).
	Customer, ReturnURL, Configuration, Locale, OnBehalfOf string
	// FlowData holds the request's flow_data parameters as sent, keyed by
	// their form names, for example "flow_data[type]" or
	// "flow_data[subscription_cancel][subscription]". Nil without a flow.
	FlowData url.Values
	// Created is when the session was created.
	Created time.Time
}

// Call is one request the fake received.
type Call struct {
	// Method and Path are the request's, for example POST and
	// /v1/billing_portal/sessions.
	Method, Path string
	// Form holds the parsed parameters: the form-encoded body of a POST and
	// the query string, as stripe-go encodes them (customer, return_url,
	// flow_data[type], ...).
	Form url.Values
	// IdempotencyKey is the Idempotency-Key header. stripe-go sends the same
	// key on every retry of one POST.
	IdempotencyKey string
	// StripeVersion is the Stripe-Version header (stripe-go v76 sends
	// 2023-10-16).
	StripeVersion string
	// StripeAccount is the Stripe-Account header, if any.
	StripeAccount string
	// Conn numbers the TCP connection the request came on: 1 for the first
	// the fake accepted, 2 for the second, and so on.
	Conn int
	// RequestID is the Request-Id the fake answered with.
	RequestID string
	// Status is the reply's status code: 0 while the reply is pending, for
	// a dropped connection, and when the client gave up first.
	Status int
	// Fault describes the injected fault that answered the call, empty if
	// none did.
	Fault string
	// Time is when the fake received the call.
	Time time.Time
}

type connKey struct{}

// connInfo is what the fake knows of one TCP connection.
type connInfo struct {
	n        int          // serial number
	requests atomic.Int64 // requests received on it
}

// NewStripe starts a fake Stripe on 127.0.0.1 with no customers. Call
// Close when done. It needs no *testing.T, so a demo can run it in-process;
// in tests, [StartStripe] closes it for you.
func NewStripe() *Stripe {
	s := &Stripe{
		closing:   make(chan struct{}),
		callAdded: make(chan struct{}),
		customers: map[string]*StripeCustomer{},
		subs:      map[string]*StripeSubscription{},
	}
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

// ---- state ----

// AddCustomer makes the fake know the customer ids; adding a known one
// again changes nothing.
func (s *Stripe) AddCustomer(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, ok := s.customers[id]; !ok {
			s.customers[id] = &StripeCustomer{ID: id, Created: time.Now()}
		}
	}
}

// Customer returns the customer with the given id, if the fake knows it.
func (s *Stripe) Customer(id string) (StripeCustomer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok {
		return StripeCustomer{}, false
	}
	return cloneCustomer(c), true
}

// DeleteCustomer forgets a customer, as if deleted in Stripe's dashboard:
// portal sessions for it are then answered 404 resource_missing. Its
// subscriptions stay.
func (s *Stripe) DeleteCustomer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.customers, id)
}

// PutSubscription stores sub (replacing one with the same ID), filling in
// the defaults of [StripeSubscription], and adds its customer if unknown.
// It panics if sub.ID or sub.Customer is empty, a mistake in the test.
func (s *Stripe) PutSubscription(sub StripeSubscription) {
	if sub.ID == "" || sub.Customer == "" {
		panic("billingtest: PutSubscription needs ID and Customer")
	}
	sub = sub.withDefaults()
	sub.Metadata = cloneMap(sub.Metadata)
	s.AddCustomer(sub.Customer)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[sub.ID] = &sub
}

// Subscription returns the stored subscription with the given id.
func (s *Stripe) Subscription(id string) (StripeSubscription, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		return StripeSubscription{}, false
	}
	c := *sub
	c.Metadata = cloneMap(sub.Metadata)
	return c, true
}

// SetDefaultReturnURL sets the return URL that a portal session without
// return_url gets, as a portal configuration's default_return_url does in
// Stripe. Default: none, such a request is answered 400 parameter_missing.
func (s *Stripe) SetDefaultReturnURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defaultReturn = u
}

// Sessions returns the portal sessions created so far, oldest first.
func (s *Stripe) Sessions() []PortalSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PortalSession, len(s.sessions))
	for i, ps := range s.sessions {
		ps.FlowData = cloneValues(ps.FlowData)
		out[i] = ps
	}
	return out
}

// ---- recording ----

// Calls returns the calls received so far, in the order they arrived. The
// Authorization header is never recorded.
func (s *Stripe) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Form = cloneValues(c.Form)
		out[i] = c
	}
	return out
}

// CallCount returns how many received calls match pattern: a path
// ("/v1/billing_portal/sessions"), a path ending in "/" (every path below
// it), "*" (every call), each optionally preceded by a method and a space
// ("GET /v1/customers/").
func (s *Stripe) CallCount(pattern string) int {
	m := parsePattern(pattern)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if m.match(c.Method, c.Path) {
			n++
		}
	}
	return n
}

// WaitCalls blocks until at least n received calls match pattern (as in
// [Stripe.CallCount]), for example to cancel a client only once its request
// has reached a slow fake. It returns ctx's error if ctx ends first, and an
// error if the fake is closed first.
func (s *Stripe) WaitCalls(ctx context.Context, pattern string, n int) error {
	m := parsePattern(pattern)
	for {
		s.mu.Lock()
		got := 0
		for _, c := range s.calls {
			if m.match(c.Method, c.Path) {
				got++
			}
		}
		added := s.callAdded
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-added:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return errors.New("billingtest: WaitCalls: the fake Stripe was closed")
		}
	}
}

// Connections returns how many TCP connections the fake has accepted since
// it started (Reset does not clear it). Compare it with the number of calls
// to see whether a client reuses its connections.
func (s *Stripe) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Reset forgets the recorded calls, the created portal sessions and every
// pending fault. Customers, subscriptions and the connection count stay.
// The fake keeps every call and session until Reset: a long benchmark
// should call it now and then (outside the timer).
func (s *Stripe) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	s.callsGen++
	s.sessions = nil
	s.rules = nil
}

// ---- faults ----

// Fault is an injected failure: an error reply, a delay, or a dropped
// connection. Build one with the constructors ([ServerError],
// [ServiceUnavailable], [HTMLError], [BadGateway], [RateLimit], [LockTimeout],
// [Conflict], [ResourceMissing], [Slow], [Drop]), whose comments say
// whether stripe-go v76 retries it, or set the fields yourself.
//
// stripe-go v76 retries (up to MaxNetworkRetries, on the same request and
// with the same Idempotency-Key): connection errors and any reply it cannot
// decode as a Stripe error; 409; 429 with code lock_timeout; 503; any 5xx to
// a non-POST request; and whatever a Stripe-Should-Retry: true header asks.
// It never retries after Stripe-Should-Retry: false, nor once the request's
// context is done.
type Fault struct {
	// Status is the reply's status code. Zero with Drop unset means no
	// error reply: the call is answered normally after Delay.
	Status int
	// Type, Code, Param and Message fill Stripe's error JSON
	// {"error":{"type","code","param","message"}}.
	Type, Code, Param, Message string
	// HTML makes the body an HTML page instead of Stripe's error JSON, as a
	// proxy or load balancer in front of Stripe answers.
	HTML bool
	// ShouldRetry, if "true" or "false", is sent as the Stripe-Should-Retry
	// header, which overrides stripe-go's own rules.
	ShouldRetry string
	// Delay is how long the fake waits before answering (or dropping). The
	// wait ends early, without a reply, when the client gives up or the
	// fake is closed.
	Delay time.Duration
	// Drop closes the TCP connection without a reply.
	Drop bool
}

// String describes the fault, for [Call].Fault and test names.
func (f Fault) String() string {
	var parts []string
	if f.Delay > 0 {
		parts = append(parts, "slow "+f.Delay.String())
	}
	switch {
	case f.Drop:
		parts = append(parts, "drop")
	case f.Status != 0 && f.HTML:
		parts = append(parts, fmt.Sprintf("%d html", f.Status))
	case f.Status != 0:
		p := fmt.Sprintf("%d %s", f.Status, f.Type)
		if f.Code != "" {
			p += " " + f.Code
		}
		parts = append(parts, p)
	}
	if f.ShouldRetry != "" {
		parts = append(parts, "should-retry="+f.ShouldRetry)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// ServerError is a JSON api_error reply with the given 5xx status. stripe-go
// does not retry it on a POST (Stripe's idempotency layer would replay the
// same failure) except for 503; it retries it on a GET.
func ServerError(status int) Fault {
	return Fault{Status: status, Type: "api_error", Message: "An unknown error occurred."}
}

// ServiceUnavailable is a 503 JSON api_error reply. stripe-go retries it,
// POST or GET.
func ServiceUnavailable() Fault { return ServerError(http.StatusServiceUnavailable) }

// HTMLError is a reply with the given status and an HTML body, as a proxy
// or load balancer in front of Stripe answers. stripe-go cannot decode it as
// a Stripe error and so treats it like a connection error: it retries it,
// whatever the status, POST or GET. Its error is not a *stripe.Error, and
// its text quotes the start of the body.
func HTMLError(status int) Fault { return Fault{Status: status, HTML: true} }

// BadGateway is [HTMLError] with status 502, what a proxy answers when
// Stripe is unreachable. stripe-go retries it, POST or GET.
func BadGateway() Fault { return HTMLError(http.StatusBadGateway) }

// RateLimit is 429 with code rate_limit. stripe-go does not retry it.
func RateLimit() Fault {
	return Fault{Status: http.StatusTooManyRequests, Type: "invalid_request_error", Code: "rate_limit",
		Message: "Too many requests hit the API too quickly."}
}

// LockTimeout is 429 with code lock_timeout (another request held a lock on
// the object). stripe-go retries it.
func LockTimeout() Fault {
	return Fault{Status: http.StatusTooManyRequests, Type: "invalid_request_error", Code: "lock_timeout",
		Message: "This object cannot be accessed right now because another API request or Stripe process is currently accessing it."}
}

// Conflict is 409 (a concurrent request with the same idempotency key).
// stripe-go retries it.
func Conflict() Fault {
	return Fault{Status: http.StatusConflict, Type: "idempotency_error", Code: "idempotency_key_in_use",
		Message: "There is currently another in-progress request using this Idempotent Key."}
}

// ResourceMissing is Stripe's 404 resource_missing for the named parameter
// (for example "customer"). stripe-go does not retry it. The billing
// library answers it with 404 "Stripe customer not found".
func ResourceMissing(param string) Fault {
	return Fault{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "resource_missing", Param: param,
		Message: "No such " + param + "."}
}

// Slow delays the reply by d, then answers normally. The delay ends early
// when the client gives up (a client timeout or a canceled context, which
// stripe-go does not retry; an http.Client timeout alone is a connection
// error, which it does retry) or the fake is closed.
func Slow(d time.Duration) Fault { return Fault{Delay: d} }

// Drop closes the connection without a reply. stripe-go retries it as a
// connection error.
//
// Go's http.Transport itself silently resends a request with an
// Idempotency-Key (every stripe-go POST) or a GET when a kept-alive
// connection closes before the first reply byte, which the fake would count
// as one more call. So that call counts stay exact, on a connection that
// already served a request the fake writes the first bytes of a status line
// before closing: the transport then reports the cut ("unexpected EOF")
// instead of resending, and stripe-go alone decides on the retry. On a
// fresh connection nothing at all is written (stripe-go sees "EOF").
func Drop() Fault { return Fault{Drop: true} }

type faultRule struct {
	pattern pattern
	fault   Fault
	left    int // -1: until Heal
}

// Fail makes every call matching pattern (see [Stripe.CallCount]) answer
// with f until [Stripe.Heal] or [Stripe.Reset]. Faults armed with
// [Stripe.FailNext] are used first.
func (s *Stripe) Fail(pattern string, f Fault) { s.arm(pattern, f, -1) }

// FailNext makes the next n calls matching pattern answer with f. Faults
// queue: FailNext(p, 1, a) then FailNext(p, 2, b) answers the next call with
// a, the two after it with b, and later calls normally.
func (s *Stripe) FailNext(pattern string, n int, f Fault) {
	if n > 0 {
		s.arm(pattern, f, n)
	}
}

func (s *Stripe) arm(pat string, f Fault, n int) {
	s.mu.Lock()
	s.rules = append(s.rules, &faultRule{pattern: parsePattern(pat), fault: f, left: n})
	s.mu.Unlock()
}

// Heal removes every fault armed for pattern (exactly as it was given).
func (s *Stripe) Heal(pattern string) {
	p := parsePattern(pattern)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = slices.DeleteFunc(s.rules, func(r *faultRule) bool { return r.pattern == p })
}

// takeFault returns the fault for a call, consuming one use of a counted
// fault; counted faults come before persistent ones.
func (s *Stripe) takeFault(method, path string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pass := 0; pass < 2; pass++ {
		for i, r := range s.rules {
			if (pass == 0) != (r.left > 0) || !r.pattern.match(method, path) {
				continue
			}
			if r.left > 0 {
				r.left--
				if r.left == 0 {
					s.rules = slices.Delete(s.rules, i, i+1)
				}
			}
			return r.fault, true
		}
	}
	return Fault{}, false
}

type pattern struct{ method, path string }

func parsePattern(p string) pattern {
	if m, rest, ok := strings.Cut(p, " "); ok {
		return pattern{method: m, path: strings.TrimSpace(rest)}
	}
	return pattern{path: p}
}

func (p pattern) match(method, path string) bool {
	if p.method != "" && p.method != method {
		return false
	}
	switch {
	case p.path == "*":
		return true
	case strings.HasSuffix(p.path, "/"):
		return strings.HasPrefix(path, p.path)
	}
	return path == p.path
}

// ---- serving ----

// ServeHTTP implements http.Handler; the fake's server calls it. It is
// exported so that a fake can also be mounted on a server of your own.
func (s *Stripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := "req_" + randID(14)
	w.Header().Set("Request-Id", reqID)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	formErr := r.ParseForm()

	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	if ci == nil { // mounted on a server of the caller's
		ci = &connInfo{}
	}
	reused := ci.requests.Add(1) > 1
	s.mu.Lock()
	idx, gen := len(s.calls), s.callsGen
	s.calls = append(s.calls, Call{
		Method:         r.Method,
		Path:           r.URL.Path,
		Form:           cloneValues(r.Form),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		StripeVersion:  r.Header.Get("Stripe-Version"),
		StripeAccount:  r.Header.Get("Stripe-Account"),
		Conn:           ci.n,
		RequestID:      reqID,
		Time:           time.Now(),
	})
	close(s.callAdded)
	s.callAdded = make(chan struct{})
	s.mu.Unlock()
	rw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		if s.callsGen == gen { // not forgotten by a Reset meanwhile
			s.calls[idx].Status = rw.status
		}
		s.mu.Unlock()
	}()

	if f, ok := s.takeFault(r.Method, r.URL.Path); ok {
		s.mu.Lock()
		if s.callsGen == gen {
			s.calls[idx].Fault = f.String()
		}
		s.mu.Unlock()
		if !s.inject(rw, r, f, reused) {
			return
		}
	}
	if formErr != nil {
		writeError(rw, http.StatusBadRequest, apiError{Type: "invalid_request_error", Message: "Invalid request body."})
		return
	}
	if !authorized(r) {
		writeError(rw, http.StatusUnauthorized, apiError{Type: "invalid_request_error",
			Message: "Invalid API Key provided. The fake accepts test-mode keys (sk_test_... or rk_test_...)."})
		return
	}
	s.route(rw, r)
}

// inject applies f and reports whether the call should then be answered
// normally.
func (s *Stripe) inject(w http.ResponseWriter, r *http.Request, f Fault, reused bool) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		case <-s.closing:
			return false
		}
	}
	if f.Drop {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
		}
		if reused {
			_, _ = conn.Write([]byte("HTTP/1.1 5")) // see Drop
		}
		conn.Close()
		return false
	}
	if f.Status == 0 {
		return true
	}
	if f.ShouldRetry != "" {
		w.Header().Set("Stripe-Should-Retry", f.ShouldRetry)
	}
	if f.HTML {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n</body>\r\n</html>\r\n",
			f.Status, http.StatusText(f.Status), f.Status, http.StatusText(f.Status))
		return false
	}
	writeError(w, f.Status, apiError{Type: f.Type, Code: f.Code, Param: f.Param, Message: f.Message})
	return false
}

// authorized reports whether r carries a test-mode key, as a Bearer token
// or as the user of basic auth.
func authorized(r *http.Request) bool {
	key, ok := "", false
	if user, _, basic := r.BasicAuth(); basic {
		key, ok = user, true
	} else if b, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		key, ok = strings.TrimSpace(b), true
	}
	return ok && (strings.HasPrefix(key, "sk_test_") || strings.HasPrefix(key, "rk_test_"))
}

func (s *Stripe) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == PathPortalSessions && r.Method == http.MethodPost:
		s.createSession(w, r)
	case p == PathSubscriptions && r.Method == http.MethodGet:
		s.listSubscriptions(w, r)
	case strings.HasPrefix(p, PathSubscriptions+"/") && r.Method == http.MethodGet:
		s.getSubscription(w, strings.TrimPrefix(p, PathSubscriptions+"/"))
	case p == PathCustomers && r.Method == http.MethodPost:
		s.createCustomer(w, r)
	case strings.HasPrefix(p, PathCustomers+"/") && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		s.customer(w, r, strings.TrimPrefix(p, PathCustomers+"/"))
	default:
		writeError(w, http.StatusNotFound, apiError{Type: "invalid_request_error",
			Message: fmt.Sprintf("Unrecognized request URL (%s: %s). The billingtest fake serves only part of Stripe's API.", r.Method, p)})
	}
}

func (s *Stripe) createSession(w http.ResponseWriter, r *http.Request) {
	cus := r.PostForm.Get("customer")
	if cus == "" {
		writeError(w, http.StatusBadRequest, missingParam("customer"))
		return
	}
	s.mu.Lock()
	_, known := s.customers[cus]
	def := s.defaultReturn
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, noSuch("customer", "customer", cus))
		return
	}
	ret := r.PostForm.Get("return_url")
	if ret == "" {
		ret = def
	}
	if ret == "" {
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "parameter_missing", Param: "return_url",
			Message: "You must provide a return_url or set a default return URL in the portal configuration."})
		return
	}
	if !validURL(ret) {
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "url_invalid", Param: "return_url", Message: "Not a valid URL"})
		return
	}
	flow, status, e := s.checkFlow(r.PostForm, cus)
	if e != nil {
		writeError(w, status, *e)
		return
	}
	ps := PortalSession{
		ID:            "bps_" + randID(24),
		URL:           "https://billing.stripe.com/p/session/test_" + randID(40),
		Customer:      cus,
		ReturnURL:     ret,
		Configuration: r.PostForm.Get("configuration"),
		Locale:        r.PostForm.Get("locale"),
		OnBehalfOf:    r.PostForm.Get("on_behalf_of"),
		FlowData:      flow,
		Created:       time.Now(),
	}
	s.mu.Lock()
	s.sessions = append(s.sessions, ps)
	s.mu.Unlock()
	body := map[string]any{
		"id":            ps.ID,
		"object":        "billing_portal.session",
		"configuration": orNil(ps.Configuration),
		"created":       ps.Created.Unix(),
		"customer":      ps.Customer,
		"flow":          flowJSON(flow),
		"livemode":      false,
		"locale":        orNil(ps.Locale),
		"on_behalf_of":  orNil(ps.OnBehalfOf),
		"return_url":    ps.ReturnURL,
		"url":           ps.URL,
	}
	if ps.Configuration == "" {
		body["configuration"] = "bpc_billingtest_default"
	}
	writeJSON(w, http.StatusOK, body)
}

var flowTypes = map[string]bool{
	"payment_method_update": true, "subscription_cancel": true,
	"subscription_update": true, "subscription_update_confirm": true,
}

// checkFlow returns the flow_data parameters, after the checks Stripe makes
// that matter to the billing library: a known type, and a subscription that
// exists (else 404 resource_missing, as for the customer) and belongs to the
// session's customer (else 400).
func (s *Stripe) checkFlow(form url.Values, cus string) (url.Values, int, *apiError) {
	var flow url.Values
	for k, v := range form {
		if strings.HasPrefix(k, "flow_data[") {
			if flow == nil {
				flow = url.Values{}
			}
			flow[k] = slices.Clone(v)
		}
	}
	if flow == nil {
		return nil, 0, nil
	}
	typ := flow.Get("flow_data[type]")
	if !flowTypes[typ] {
		return nil, http.StatusBadRequest, &apiError{Type: "invalid_request_error", Code: "parameter_invalid_string", Param: "flow_data[type]",
			Message: "Invalid flow_data[type]."}
	}
	if typ == "payment_method_update" {
		return flow, 0, nil
	}
	param := "flow_data[" + typ + "][subscription]"
	id := flow.Get(param)
	if id == "" {
		m := missingParam(param)
		return nil, http.StatusBadRequest, &m
	}
	s.mu.Lock()
	sub, ok := s.subs[id]
	owner := ""
	if ok {
		owner = sub.Customer
	}
	s.mu.Unlock()
	if !ok {
		e := noSuch(param, "subscription", id)
		return nil, http.StatusNotFound, &e
	}
	if owner != cus {
		return nil, http.StatusBadRequest, &apiError{Type: "invalid_request_error", Param: param,
			Message: "The subscription does not belong to the session's customer."}
	}
	return flow, 0, nil
}

// flowJSON returns the session's "flow" object for the flow_data sent.
func flowJSON(flow url.Values) any {
	if flow == nil {
		return nil
	}
	typ := flow.Get("flow_data[type]")
	after := map[string]any{"type": orDefault(flow.Get("flow_data[after_completion][type]"), "portal_homepage"), "redirect": nil, "hosted_confirmation": nil}
	if u := flow.Get("flow_data[after_completion][redirect][return_url]"); u != "" {
		after["redirect"] = map[string]any{"return_url": u}
	}
	if after["type"] == "hosted_confirmation" {
		after["hosted_confirmation"] = map[string]any{"custom_message": orNil(flow.Get("flow_data[after_completion][hosted_confirmation][custom_message]"))}
	}
	out := map[string]any{"type": typ, "after_completion": after,
		"subscription_cancel": nil, "subscription_update": nil, "subscription_update_confirm": nil}
	if typ != "payment_method_update" {
		out[typ] = map[string]any{"subscription": flow.Get("flow_data[" + typ + "][subscription]")}
	}
	return out
}

func (s *Stripe) getSubscription(w http.ResponseWriter, id string) {
	s.mu.Lock()
	sub, ok := s.subs[id]
	var body map[string]any
	if ok {
		body = subscriptionJSON(sub)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "subscription", id))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Stripe) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	q := r.Form
	cus, status, price := q.Get("customer"), q.Get("status"), q.Get("price")
	s.mu.Lock()
	var subs []*StripeSubscription
	for _, sub := range s.subs {
		switch {
		case cus != "" && sub.Customer != cus,
			price != "" && sub.PriceID != price,
			status == "" && sub.Status == "canceled",
			status != "" && status != "all" && sub.Status != status:
			continue
		}
		subs = append(subs, sub)
	}
	sort.Slice(subs, func(i, j int) bool {
		if !subs[i].Created.Equal(subs[j].Created) {
			return subs[i].Created.After(subs[j].Created) // newest first, as Stripe lists
		}
		return subs[i].ID < subs[j].ID
	})
	data := make([]any, len(subs))
	for i, sub := range subs {
		data[i] = subscriptionJSON(sub)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false, "url": PathSubscriptions})
}

// subscriptionJSON renders sub as Stripe does (the fields stripe-go's
// Subscription decodes that the library reads). Called with s.mu held when
// sub is stored.
func subscriptionJSON(sub *StripeSubscription) map[string]any {
	var product any
	if sub.ProductID != "" {
		product = sub.ProductID
	}
	price := map[string]any{
		"id": sub.PriceID, "object": "price", "active": true, "currency": "usd",
		"lookup_key": orNil(sub.LookupKey), "product": product, "type": "recurring",
		"recurring": map[string]any{"interval": "month", "interval_count": 1},
	}
	start := sub.CurrentPeriodEnd.AddDate(0, 0, -30)
	if start.Before(sub.Created) {
		start = sub.Created
	}
	item := map[string]any{
		"id": "si_" + strings.TrimPrefix(sub.ID, "sub_"), "object": "subscription_item",
		"created": sub.Created.Unix(), "price": price, "quantity": 1, "subscription": sub.ID,
	}
	var canceledAt, endedAt any
	if sub.Status == "canceled" {
		canceledAt, endedAt = sub.CurrentPeriodEnd.Unix(), sub.CurrentPeriodEnd.Unix()
	}
	return map[string]any{
		"id":                   sub.ID,
		"object":               "subscription",
		"customer":             sub.Customer,
		"status":               sub.Status,
		"created":              sub.Created.Unix(),
		"start_date":           sub.Created.Unix(),
		"current_period_start": start.Unix(),
		"current_period_end":   sub.CurrentPeriodEnd.Unix(),
		"cancel_at_period_end": sub.CancelAtPeriodEnd,
		"canceled_at":          canceledAt,
		"ended_at":             endedAt,
		"livemode":             false,
		"metadata":             orEmpty(sub.Metadata),
		"items": map[string]any{
			"object": "list", "data": []any{item}, "has_more": false,
			"url": "/v1/subscription_items?subscription=" + sub.ID,
		},
	}
}

func (s *Stripe) createCustomer(w http.ResponseWriter, r *http.Request) {
	c := &StripeCustomer{ID: "cus_" + randID(14), Created: time.Now()}
	applyCustomer(c, r.PostForm)
	s.mu.Lock()
	s.customers[c.ID] = c
	body := customerJSON(c)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (s *Stripe) customer(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	c, ok := s.customers[id]
	var body map[string]any
	if ok {
		if r.Method == http.MethodPost {
			applyCustomer(c, r.PostForm)
		}
		body = customerJSON(c)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "customer", id))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func applyCustomer(c *StripeCustomer, form url.Values) {
	if v, ok := form["email"]; ok {
		c.Email = v[0]
	}
	if v, ok := form["name"]; ok {
		c.Name = v[0]
	}
	for k, v := range form {
		if key, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(key, "]") {
			if c.Metadata == nil {
				c.Metadata = map[string]string{}
			}
			key = strings.TrimSuffix(key, "]")
			if v[0] == "" {
				delete(c.Metadata, key)
			} else {
				c.Metadata[key] = v[0]
			}
		}
	}
}

func customerJSON(c *StripeCustomer) map[string]any {
	return map[string]any{
		"id": c.ID, "object": "customer", "created": c.Created.Unix(), "livemode": false,
		"email": orNil(c.Email), "name": orNil(c.Name), "metadata": orEmpty(c.Metadata),
	}
}

// ---- replies ----

type apiError struct {
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message,omitempty"`
	DocURL  string `json:"doc_url,omitempty"`
}

func missingParam(param string) apiError {
	return apiError{Type: "invalid_request_error", Code: "parameter_missing", Param: param,
		Message: "Missing required param: " + param + "."}
}

func noSuch(param, kind, id string) apiError {
	return apiError{Type: "invalid_request_error", Code: "resource_missing", Param: param,
		Message: fmt.Sprintf("No such %s: '%s'", kind, id)}
}

func writeError(w http.ResponseWriter, status int, e apiError) {
	if e.Code != "" {
		e.DocURL = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(e.Code, "_", "-")
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("billingtest: " + err.Error()) // only maps of plain values are encoded
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Stripe-Version", stripe.APIVersion)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (for Drop).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ---- helpers ----

func randID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	s = strings.NewReplacer("-", "a", "_", "b").Replace(s)
	return s[:n]
}

func validURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}

func cloneCustomer(c *StripeCustomer) StripeCustomer {
	out := *c
	out.Metadata = cloneMap(c.Metadata)
	return out
}
