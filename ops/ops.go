package ops

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/contafy/billing"
	"github.com/contafy/billing/internal/redact"
)

// DefaultRatePerSecond is the default request rate of [Reconcile] and
// [Replay]: under Stripe's test-mode limit (25 read requests per second),
// so a run never competes with the app for its own quota.
const DefaultRatePerSecond = 20

// orRate returns rate, or [DefaultRatePerSecond] when it is not positive.
func orRate(rate float64) float64 {
	if rate <= 0 {
		return DefaultRatePerSecond
	}
	return rate
}

// orDiscard returns l, or a logger that discards everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// deliver hands the plan changes a page wrote to n's hook, when there is a
// Notifier. What it cannot deliver waits in the outbox for the next call
// (or the app's own Deliver): a failure is logged, without its text, and
// does not stop the run.
func deliver(ctx context.Context, n *billing.Notifier, log *slog.Logger) {
	if n == nil {
		return
	}
	if _, err := n.Deliver(ctx); err != nil && ctx.Err() == nil {
		log.LogAttrs(ctx, slog.LevelWarn, "billing: plan change delivery deferred", slog.String("cause", redact.Cause(err)))
	}
}

// priceIDs lists s's price ids, for logs.
func priceIDs(s *stripe.Subscription) string {
	var ids []string
	if s.Items != nil {
		for _, it := range s.Items.Data {
			if it != nil && it.Price != nil {
				ids = append(ids, it.Price.ID)
			}
		}
	}
	return strings.Join(ids, ",")
}

// eventCustomer returns the customer id of an event's object, if it has
// one (an id, or an expanded customer).
func eventCustomer(ev *stripe.Event) string {
	if ev.Data == nil {
		return ""
	}
	var w struct {
		Customer *stripe.Customer `json:"customer"`
	}
	if err := json.Unmarshal(ev.Data.Raw, &w); err != nil || w.Customer == nil {
		return ""
	}
	return w.Customer.ID
}

// errNoIterator is a lister's fault: it returned no iterator.
var errNoIterator = errors.New("lister returned no iterator")
