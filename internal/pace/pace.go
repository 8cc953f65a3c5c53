// Package pace holds the waiting the package's Stripe callers share: a
// sleep that ends with its context (the webhook handler's wait for the next
// second before a read), and the request pacing and 429 backoff of
// reconcile and replay. Nothing here starts a goroutine.
package pace

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// Sleep waits d or until ctx is done, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pacer spaces requests at most a rate per second. It is not safe for
// concurrent use: one run, one Pacer.
type Pacer struct {
	every time.Duration
	next  time.Time
}

// New returns a Pacer for rate requests per second; rate must be positive.
func New(rate float64) *Pacer {
	return &Pacer{every: time.Duration(float64(time.Second) / rate)}
}

// Wait blocks until the next request may go, or ctx ends.
func (p *Pacer) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	if p.next.After(now) {
		if err := Sleep(ctx, p.next.Sub(now)); err != nil {
			return err
		}
		now = p.next
	}
	p.next = now.Add(p.every)
	return nil
}

// RetryRateLimited runs call after pacing, and again after a backoff (1 s,
// or max if less, doubling up to max) for as long as Stripe answers 429 and
// ctx allows; any other error is returned as it is. limited counts the 429s.
func (p *Pacer) RetryRateLimited(ctx context.Context, max time.Duration, limited *int, log *slog.Logger, call func() error) error {
	backoff := min(time.Second, max)
	for {
		if err := p.Wait(ctx); err != nil {
			return err
		}
		err := call()
		var se *stripe.Error
		if err == nil || !errors.As(err, &se) || se.HTTPStatusCode != http.StatusTooManyRequests {
			return err
		}
		*limited++
		log.LogAttrs(ctx, slog.LevelWarn, "billing: rate limited by Stripe (429); backing off",
			slog.Duration("backoff", backoff), slog.String("stripe_request_id", se.RequestID))
		if err := Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, max)
	}
}
