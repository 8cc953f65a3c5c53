package billingtest

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

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

// Calls returns the calls received so far, in the order they arrived. The
// Authorization header is never recorded.
func (s *Stripe) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneEach(s.calls, func(c Call) Call { c.Form = cloneValues(c.Form); return c })
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

// Reset forgets the recorded calls, the created portal sessions (as
// [Stripe.Sessions] lists them; their hosted pages keep working) and every
// pending fault. The rest of the state stays: customers, subscriptions,
// the catalog, invoices, payment methods, configurations, webhook
// endpoints, events and deliveries, the clock and the connection count.
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
