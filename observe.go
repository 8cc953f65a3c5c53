package billing

import (
	"context"
	"time"
)

// Observer receives one [Observation] per portal request, webhook event and
// return sync, for metrics and traces (count by Op and Outcome, histogram of
// Latency). Observe is called synchronously on the request's goroutine and
// must be quick and safe for concurrent use. An Observation never holds a
// secret, a token or a URL.
type Observer interface {
	Observe(ctx context.Context, o Observation)
}

// ObserverFunc adapts a function to an [Observer].
type ObserverFunc func(ctx context.Context, o Observation)

// Observe calls f(ctx, o).
func (f ObserverFunc) Observe(ctx context.Context, o Observation) { f(ctx, o) }

// Observation describes one handled request or event.
type Observation struct {
	// Op is "portal", "webhook" or "return_sync".
	Op string
	// Outcome is a short word, a fixed set per Op, fit for a metric label.
	// For the portal: "created", "unauthorized", "not_paid",
	// "cross_origin", "customer_not_found", "bad_request", "too_large",
	// "method_not_allowed" or "error". For webhooks: the reply's outcome
	// ("applied", "duplicate", "stale", "tie_kept", "unknown_price",
	// "linked", "unknown_user", "ignored"), "rejected" (4xx) or "error"
	// (5xx). For the return sync: "synced", "unauthorized" or "error".
	Outcome string
	// Status is the HTTP status answered.
	Status int
	// Latency is the time spent in the handler.
	Latency time.Duration
	// UserID is the application user, when known.
	UserID string
	// EventType is the Stripe event type, for webhooks.
	EventType string
	// StripeRequestID is Stripe's request id, when Stripe was called.
	StripeRequestID string
}
