package billingtest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

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
