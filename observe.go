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
	// Op is what was observed: [OpPortal], [OpWebhook] or [OpReturnSync].
	Op Op
	// Outcome is what happened, one of the fixed set listed with the Op.
	Outcome Outcome
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
