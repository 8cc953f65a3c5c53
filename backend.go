package billing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// NewBackend returns a stripe-go backend for interactive requests: its HTTP
// client gives up after 10 s (stripe-go's default is 80 s, far longer than a
// user waits for a button), and it keeps up to 64 idle connections to Stripe
// so that concurrent requests reuse TLS connections instead of opening new
// ones. Pass nil for defaults; a non-nil cfg is used as it is, with
// HTTPClient filled in if empty, and its LeveledLogger (default: silent)
// wrapped so that stripe-go's records never carry a response body (a portal
// session's holds its URL, a bearer credential), Stripe's error text or an
// error's text: even at debug level, stripe-go logs only methods, paths,
// timings, retries and error kinds with Stripe's request id. It never
// touches stripe-go's globals.
func NewBackend(cfg *stripe.BackendConfig) stripe.Backend {
	if cfg == nil {
		cfg = &stripe.BackendConfig{}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient(10 * time.Second)
	}
	if cfg.LeveledLogger == nil {
		// stripe-go logs errors at its default level to stderr, Stripe's
		// text included; the service logs what matters itself.
		cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
	} else if _, ok := cfg.LeveledLogger.(redactingLogger); !ok {
		cfg.LeveledLogger = redactingLogger{next: cfg.LeveledLogger}
	}
	return stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
}

// NewHTTPClient returns an *http.Client for Stripe calls with the given
// overall timeout per attempt and a transport sized for concurrent requests
// to one host: it keeps up to 64 idle connections to Stripe (Go's default
// keeps 2, so a burst of requests opens, and then closes, a new TLS
// connection for nearly every request) and opens at most 64 at once
// (requests beyond that wait for a free connection rather than pay for a
// new handshake).
func NewHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 128
	t.MaxIdleConnsPerHost = 64
	t.MaxConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Timeout: timeout, Transport: t}
}

// redactingLogger wraps the stripe-go logger an app gives [NewBackend]:
// stripe-go v76 logs every response body at debug level (a portal
// session's body holds its URL, a bearer credential), Stripe's error
// messages at error level, and the start of an undecodable body (a proxy's
// HTML page). It passes on stripe-go's records with every string argument
// withheld but those of the formats known to carry only a method, a host, a
// path, a duration or a retry count, and every error reduced to its kind
// (for a Stripe error: type, code, HTTP status, request id).
type redactingLogger struct {
	next stripe.LeveledLoggerInterface
}

// safeStripeFormats are the format strings of stripe-go v76's log calls
// whose string arguments are safe to log: methods, hosts, paths, retry
// reasons.
var safeStripeFormats = map[string]bool{
	"Requesting %v %v%v":                                        true,
	"Request completed in %v (retry: %v)":                       true,
	"Not retrying request: %v":                                  true,
	"Initiating retry %v for request %v %v%v after sleeping %v": true,
}

func (l redactingLogger) Debugf(format string, v ...any) {
	l.next.Debugf(format, redactArgs(format, v)...)
}

func (l redactingLogger) Infof(format string, v ...any) {
	l.next.Infof(format, redactArgs(format, v)...)
}

func (l redactingLogger) Warnf(format string, v ...any) {
	l.next.Warnf(format, redactArgs(format, v)...)
}

func (l redactingLogger) Errorf(format string, v ...any) {
	l.next.Errorf(format, redactArgs(format, v)...)
}

func redactArgs(format string, v []any) []any {
	safe := safeStripeFormats[format]
	out := make([]any, len(v))
	for i, a := range v {
		switch a := a.(type) {
		case time.Duration, int, int64, bool:
			out[i] = a
		case error:
			out[i] = describeStripeErr(a)
		case string:
			switch {
			case safe:
				out[i] = a
			case strings.HasPrefix(a, "Couldn't deserialize JSON (response status: "):
				// stripe-go's text for an undecodable body: keep the status.
				status, _, _ := strings.Cut(strings.TrimPrefix(a, "Couldn't deserialize JSON (response status: "), ",")
				out[i] = "Couldn't deserialize JSON (response status: " + status + ", body withheld by billing)"
			default:
				out[i] = "[withheld by billing]"
			}
		default:
			out[i] = "[withheld by billing]"
		}
	}
	return out
}

// describeStripeErr names an error of a Stripe call without its text.
func describeStripeErr(err error) string {
	var se *stripe.Error
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("stripe error type=%s code=%s http_status=%d request_id=%s", se.Type, se.Code, se.HTTPStatusCode, se.RequestID)
	case errors.Is(err, context.Canceled):
		return "context canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before the reply (EOF)"
	}
	return fmt.Sprintf("error of type %T (text withheld by billing)", err)
}
