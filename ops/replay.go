package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/internal/pace"
	"github.com/contafy/billing/internal/redact"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/event"
)

// EventLister lists events from Stripe's Events API (it keeps 30 days).
// stripe-go's *event.Client (package github.com/stripe/stripe-go/v76/event)
// satisfies it. The params carry the request's context in params.Context.
type EventLister interface {
	List(params *stripe.EventListParams) *event.Iter
}

// maxReplayEvents bounds the events one replay holds in memory.
const maxReplayEvents = 1_000_000

// ReplayConfig configures [Replay]. Events, Handler and Since are
// required; everything else has a documented default.
type ReplayConfig struct {
	// Events lists the events. Required; stripe-go's *event.Client.
	Events EventLister
	// Store is the store Handler writes to, read before and after each
	// event for the Drift lines. Required.
	Store billing.SyncStore
	// Handler applies each event through [billing.WebhookHandler.Handle], so the
	// event-id deduplication and the order apply as for a delivery.
	// Required: the app's handler, or one built like it.
	Handler *billing.WebhookHandler
	// Since is the oldest event time to replay. Required; Stripe keeps 30
	// days of events.
	Since time.Time
	// FailedOnly replays only events whose delivery to an endpoint failed
	// (Stripe's delivery_success=false). Default false: every event.
	FailedOnly bool
	// Types are the event types to replay. Default [HandledEvents].
	Types []string
	// RatePerSecond caps the list requests per second. Default
	// [DefaultRatePerSecond].
	RatePerSecond float64
	// MaxBackoff caps the wait after a rate-limited (429) page, as for
	// [ReconcileConfig].MaxBackoff. Default 30 s.
	MaxBackoff time.Duration
	// OnEvent, if set, is called after each event is handled, with the
	// report so far, for a progress line.
	OnEvent func(ReplayReport)
	// Logger receives a warning per retried page and per failed event.
	// Default: discard.
	Logger *slog.Logger
}

// ReplayReport counts what a [Replay] run did. Its JSON form is the
// `billing replay -json` output.
type ReplayReport struct {
	// Read is the number of events read; Total how many there are to
	// replay (known once every page is read, before the first is handled).
	Read  int `json:"read"`
	Total int `json:"total"`
	// Applied, Duplicate and Stale count the store's answers; Other the
	// other outcomes (linked, ignored, unknown price, ...).
	Applied   int `json:"applied"`
	Duplicate int `json:"duplicate"`
	Stale     int `json:"stale"`
	Other     int `json:"other"`
	// Errors is the number of events the handler failed (run the replay
	// again to retry them: the applied ones are duplicates then).
	Errors int `json:"errors"`
	// Drift lists the users whose plan changed.
	Drift []PlanDrift `json:"drift"`
	// Pages and RateLimited count the list requests, as for a reconcile.
	Pages       int `json:"pages"`
	RateLimited int `json:"rate_limited"`
}

// Replay reads the events of the given types created since cfg.Since
// (optionally only those whose delivery failed), and hands each, oldest
// first, to the webhook handler's [billing.WebhookHandler.Handle]: an event that
// was applied already is a Duplicate, an older one is Stale, and what was
// missed is applied, with its plan change delivered by the handler's
// Notifier. Requests are paced and a rate-limited page is retried, as in
// [Reconcile]. A failed event is counted and the replay goes on.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayReport, error) {
	var rep ReplayReport
	switch {
	case cfg.Events == nil:
		return rep, errors.New("billing: ReplayConfig.Events is required (for example &event.Client{B: billing.NewBackend(nil), Key: key})")
	case cfg.Handler == nil:
		return rep, errors.New("billing: ReplayConfig.Handler is required (the app's WebhookHandler)")
	case cfg.Store == nil:
		return rep, errors.New("billing: ReplayConfig.Store is required (the store the Handler writes to)")
	case cfg.Since.IsZero():
		return rep, errors.New("billing: ReplayConfig.Since is required (for example time.Now().Add(-72 * time.Hour); Stripe keeps 30 days)")
	}
	types := cfg.Types
	if len(types) == 0 {
		types = HandledEvents
	}
	log := orDiscard(cfg.Logger)
	pacer := pace.New(orRate(cfg.RatePerSecond))
	maxBackoff := cfg.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 30 * time.Second
	}

	// Stripe lists newest first: read every page, then handle oldest first.
	var events []*stripe.Event
	cursor := ""
	for {
		p := &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: cfg.Since.Unix()}}
		p.Context = ctx
		p.Limit = stripe.Int64(100)
		p.Single = true
		p.Types = stripe.StringSlice(types)
		if cfg.FailedOnly {
			p.DeliverySuccess = stripe.Bool(false)
		}
		if cursor != "" {
			p.StartingAfter = stripe.String(cursor)
		}
		var page []*stripe.Event
		var hasMore bool
		err := pacer.RetryRateLimited(ctx, maxBackoff, &rep.RateLimited, log, func() error {
			it := cfg.Events.List(p)
			if it == nil || it.Iter == nil {
				return errNoIterator
			}
			page = page[:0]
			for it.Next() {
				if e := it.Event(); e != nil {
					page = append(page, e)
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
			hasMore = it.Meta() != nil && it.Meta().HasMore
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("billing: replay: list events after %q: %w", cursor, err)
		}
		rep.Pages++
		events = append(events, page...)
		if len(events) > maxReplayEvents {
			return rep, fmt.Errorf("billing: replay: more than %d events since %s; replay a shorter span (Since) or only failed deliveries (FailedOnly)", maxReplayEvents, cfg.Since.Format(time.RFC3339))
		}
		if !hasMore || len(page) == 0 {
			break
		}
		cursor = page[len(page)-1].ID
	}
	// Newest first, so reversed: oldest first, and within one second in the
	// order Stripe created them, which the stable sort then keeps.
	slices.Reverse(events)
	slices.SortStableFunc(events, func(a, b *stripe.Event) int {
		switch {
		case a.Created < b.Created:
			return -1
		case a.Created > b.Created:
			return 1
		}
		return 0
	})
	rep.Total = len(events)

	store := cfg.Store
	for _, ev := range events {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Read++
		var before billing.User
		var linked bool
		customer := eventCustomer(ev)
		if customer != "" {
			before, linked, _ = store.UserByCustomer(ctx, customer)
		}
		out, err := cfg.Handler.Handle(ctx, ev)
		switch {
		case err != nil:
			rep.Errors++
			log.LogAttrs(ctx, slog.LevelWarn, "billing: replay: event failed; run the replay again to retry it",
				slog.String("event_id", ev.ID), slog.String("event_type", string(ev.Type)), slog.String("cause", redact.Cause(err)))
		case out == billing.Applied:
			rep.Applied++
		case out == billing.Duplicate:
			rep.Duplicate++
		case out == billing.Stale:
			rep.Stale++
		default:
			rep.Other++
		}
		if err == nil && out == billing.Applied && linked {
			if after, ok, err := store.UserByCustomer(ctx, customer); err == nil && ok && after.Plan != before.Plan {
				rep.Drift = append(rep.Drift, PlanDrift{UserID: after.ID, From: before.Plan, To: after.Plan})
			}
		}
		if cfg.OnEvent != nil {
			cfg.OnEvent(rep)
		}
	}
	return rep, nil
}
