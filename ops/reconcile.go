package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/internal/pace"
	"github.com/stripe/stripe-go/v76"
)

// ReconcileConfig configures [Reconcile]. Store, Subscriptions and Rules
// are required; everything else has a documented default.
type ReconcileConfig struct {
	// Store is where the subscriptions read are applied: the same atomic,
	// ordered path as the webhooks'. Required.
	Store billing.SyncStore
	// Subscriptions lists the account's subscriptions. Required;
	// stripe-go's *subscription.Client.
	Subscriptions billing.SubscriptionLister
	// Rules map prices to plans: the webhook handler's value. Required.
	Rules billing.PlanRules
	// Notifier, if set, delivers the plan changes after each page (see
	// [billing.Notifier]). Default nil: they wait in the store's outbox.
	Notifier *billing.Notifier
	// RatePerSecond caps the list requests per second. Default
	// [DefaultRatePerSecond].
	RatePerSecond float64
	// Cursor resumes a run: the last subscription id a killed run reported
	// in [ReconcileReport].Cursor (or through OnPage). Default: from the
	// start.
	Cursor string
	// OnPage, if set, is called after each page is applied, with the
	// report so far: persist its Cursor to resume, print its progress.
	OnPage func(ReconcileReport)
	// MaxBackoff caps the wait after a rate-limited (429) page, which is
	// retried as long as ctx allows: 1 s (or MaxBackoff, if less), doubling
	// up to MaxBackoff. Default 30 s.
	MaxBackoff time.Duration
	// Logger receives a warning per unknown price and per retried page.
	// Default: discard.
	Logger *slog.Logger
}

// PlanDrift is a user whose plan a reconcile or replay changed: the drift
// it found between the store and Stripe.
type PlanDrift struct {
	UserID string       `json:"user_id"`
	From   billing.Plan `json:"from"`
	To     billing.Plan `json:"to"`
}

// ReconcileReport counts what a [Reconcile] run did. Its JSON form is the
// `billing reconcile -json` output.
type ReconcileReport struct {
	// Read is the number of subscriptions read from Stripe.
	Read int `json:"read"`
	// Applied is the number that replaced the stored state.
	Applied int `json:"applied"`
	// Stale is the number the store kept its own, newer, state for.
	Stale int `json:"stale"`
	// UnknownPrice is the number skipped because no price maps to a plan.
	UnknownPrice int `json:"unknown_price"`
	// Errors is the number of subscriptions the store failed to apply
	// (the run goes on; run it again to retry them).
	Errors int `json:"errors"`
	// Drift lists the users whose plan changed.
	Drift []PlanDrift `json:"drift"`
	// Pages is the number of list requests that succeeded; RateLimited the
	// number answered 429 and retried.
	Pages       int `json:"pages"`
	RateLimited int `json:"rate_limited"`
	// Cursor is the last subscription id applied: give it to
	// ReconcileConfig.Cursor to resume after it.
	Cursor string `json:"cursor"`
	// Done reports whether the run reached the last page.
	Done bool `json:"done"`
}

// Reconcile reads every subscription of the account (all statuses, a page
// of 100 at a time with the items and prices in the list reply, so no
// subscription is read on its own) and applies each through
// Store.ApplySubscription as a read at the page's time (see
// [billing.SubscriptionChange]: it never overwrites newer state), with cause
// [billing.CauseReconcile], so the plan-change hook fires once per change.
// Subscriptions of customers no user is linked to are stored for a later
// link. Requests are paced at RatePerSecond; a rate-limited page (429)
// backs off and is retried, it never ends the run. A store error on one
// subscription is counted and the run goes on. It returns when the last
// page is done, or with ctx's error and the report so far, whose Cursor
// (the last subscription applied, also when ctx ended within a page)
// resumes the run.
func Reconcile(ctx context.Context, cfg ReconcileConfig) (ReconcileReport, error) {
	var rep ReconcileReport
	switch {
	case cfg.Store == nil:
		return rep, errors.New("billing: ReconcileConfig.Store is required (the store the webhook handler writes to)")
	case cfg.Subscriptions == nil:
		return rep, errors.New("billing: ReconcileConfig.Subscriptions is required (for example &subscription.Client{B: billing.NewBackend(nil), Key: key})")
	}
	if err := cfg.Rules.Prices.Validate(); err != nil {
		return rep, fmt.Errorf("billing: ReconcileConfig.Rules.Prices: %w", err)
	}
	log := orDiscard(cfg.Logger)
	pacer := pace.New(orRate(cfg.RatePerSecond))
	maxBackoff := cfg.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 30 * time.Second
	}
	rep.Cursor = cfg.Cursor
	for {
		p := &stripe.SubscriptionListParams{Status: stripe.String("all")}
		p.Context = ctx
		p.Limit = stripe.Int64(100)
		p.Single = true
		if rep.Cursor != "" {
			p.StartingAfter = stripe.String(rep.Cursor)
		}
		if cfg.Rules.Prices.ProductMetadataKey != "" {
			p.AddExpand("data.items.data.price.product")
		}
		var page []*stripe.Subscription
		var hasMore bool
		var readAt time.Time
		err := pacer.RetryRateLimited(ctx, maxBackoff, &rep.RateLimited, log, func() error {
			readAt = time.Now()
			it := cfg.Subscriptions.List(p)
			if it == nil || it.Iter == nil {
				return errNoIterator
			}
			page = page[:0]
			for it.Next() {
				if s, ok := it.Current().(*stripe.Subscription); ok && s != nil {
					page = append(page, s)
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
			hasMore = it.Meta() != nil && it.Meta().HasMore
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("billing: reconcile: list subscriptions after %q: %w", rep.Cursor, err)
		}
		rep.Pages++
		for _, s := range page {
			// Stopped (ctx done) before or while applying s: the cursor
			// stays on the last one applied, so a resumed run applies s.
			if err := ctx.Err(); err != nil || !reconcileOne(ctx, cfg, s, readAt, &rep, log) {
				return rep, fmt.Errorf("billing: reconcile: stopped after %q: %w", rep.Cursor, context.Cause(ctx))
			}
			rep.Cursor = s.ID
		}
		deliver(ctx, cfg.Notifier, log)
		if cfg.OnPage != nil {
			cfg.OnPage(rep)
		}
		if !hasMore || len(page) == 0 {
			rep.Done = true
			return rep, nil
		}
	}
}

// reconcileOne applies one subscription read by a reconcile and counts it.
// It returns false, counting nothing, when a store call failed because ctx
// is done: the subscription is left for a resumed run (the store wrote
// nothing, or, for the last read, a change already counted in the outbox).
func reconcileOne(ctx context.Context, cfg ReconcileConfig, s *stripe.Subscription, readAt time.Time, rep *ReconcileReport, log *slog.Logger) bool {
	c, known := cfg.Rules.Change(s, readAt, billing.Cause{Kind: billing.CauseReconcile})
	switch {
	case !known && (s.ID == "" || s.Customer == nil || s.Customer.ID == ""):
		rep.Read++
		rep.Errors++
		return true
	case !known:
		rep.Read++
		rep.UnknownPrice++
		log.LogAttrs(ctx, slog.LevelWarn, "billing: reconcile: subscription price maps to no plan; left alone",
			slog.String("subscription_id", s.ID), slog.String("price_ids", priceIDs(s)))
		return true
	}
	customer := c.Subscription.CustomerID
	before, linked, err := cfg.Store.UserByCustomer(ctx, customer)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		rep.Read++
		rep.Errors++
		return true
	}
	out, err := cfg.Store.ApplySubscription(ctx, c, 0)
	if err != nil && ctx.Err() != nil {
		return false
	}
	rep.Read++
	switch {
	case err != nil:
		rep.Errors++
		return true
	case out == billing.Applied:
		rep.Applied++
	default:
		rep.Stale++
		return true
	}
	if !linked {
		return true
	}
	// Read with a context that outlives ctx: the change is committed, and
	// its drift line belongs to this run's report.
	if after, ok, err := cfg.Store.UserByCustomer(context.WithoutCancel(ctx), customer); err == nil && ok && after.Plan != before.Plan {
		rep.Drift = append(rep.Drift, PlanDrift{UserID: after.ID, From: before.Plan, To: after.Plan})
	}
	return true
}
