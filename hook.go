package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// PlanChange is one effective change of a user's [View] (plan, access,
// dates, payment problem or features), as the store committed it.
type PlanChange struct {
	// ID is the change's stable id: every delivery of this change carries
	// it, so the app's hook can be idempotent (for example by storing the
	// ids of the changes it handled).
	ID string
	// UserID is the user whose view changed.
	UserID string
	// Before and After are the user's view before and after the change.
	Before, After View
	// Cause is what wrote the change.
	Cause Cause
	// At is when the store committed the change (the store's clock).
	At time.Time
}

// CauseKind names what wrote a change.
type CauseKind string

// The kinds of [Cause].
const (
	// CauseWebhook: a Stripe event, through the webhook handler.
	CauseWebhook CauseKind = "webhook"
	// CauseReturnSync: a read from Stripe when the user came back from the
	// portal ([ReturnSync]).
	CauseReturnSync CauseKind = "return_sync"
	// CauseReconcile: a read from Stripe by a reconcile run.
	CauseReconcile CauseKind = "reconcile"
	// CauseCustomerLinked: a Stripe customer was linked to the user
	// ([SyncStore].LinkCustomer), whose stored subscriptions now count.
	CauseCustomerLinked CauseKind = "customer_linked"
)

// Cause is what wrote a change: its kind and, for an event, the event's id
// and type.
type Cause struct {
	// Kind is what wrote the change.
	Kind CauseKind
	// EventID and EventType are the Stripe event's, for CauseWebhook (and
	// for a reconcile that replays events).
	EventID, EventType string
}

// String returns the kind, followed by the event type and id if any, for
// logs: "webhook:customer.subscription.updated:evt_123".
func (c Cause) String() string {
	s := string(c.Kind)
	if c.EventType != "" {
		s += ":" + c.EventType
	}
	if c.EventID != "" {
		s += ":" + c.EventID
	}
	return s
}

// PlanChangeHook is the app's reaction to a change of a user's billing
// view: the welcome or downgrade email, provisioning, a CRM update.
//
// PlanChanged is called at least once for every change the store
// committed, also when the process died between the commit and the call or
// an earlier call returned an error (it is then called again, with
// backoff, until it returns nil). A change may therefore arrive more than
// once, always with the same [PlanChange].ID: make the hook idempotent. The
// changes of one user arrive in the order they were committed, one at a
// time across all replicas sharing the store. It must be safe for
// concurrent use (changes of different users may be delivered at once).
type PlanChangeHook interface {
	PlanChanged(ctx context.Context, c PlanChange) error
}

// PlanChangeHookFunc adapts a function to a [PlanChangeHook].
type PlanChangeHookFunc func(ctx context.Context, c PlanChange) error

// PlanChanged calls f(ctx, c).
func (f PlanChangeHookFunc) PlanChanged(ctx context.Context, c PlanChange) error { return f(ctx, c) }

// ClaimedChange is a [PlanChange] claimed for delivery by one caller of
// [Outbox].ClaimChanges.
type ClaimedChange struct {
	PlanChange
	// Token identifies the claim: completing or releasing a change whose
	// claim has expired and been taken by another caller does nothing.
	Token string
	// Attempt is 1 for the first delivery, 2 for the first retry, ...
	Attempt int
}

// Outbox is the store side of the plan-change hook. A store records a
// [PlanChange] in the same atomic step as the state that changed a user's
// view (ApplySubscription, ApplyFeatures and LinkCustomer; seeding users
// records none), so a committed change is never lost; a [Notifier] then
// delivers it. Every method must be safe for concurrent use, also from
// several processes sharing one database.
type Outbox interface {
	// ClaimChanges claims up to max changes for delivery until now+lease:
	// for each user with pending changes only the oldest one, and only when
	// it is due (its retry time has passed) and no other claim on it is
	// live. A claimed change is handed to no other caller until its claim
	// expires or is released, so each user's changes go out one at a time,
	// in commit order, across all replicas.
	ClaimChanges(ctx context.Context, max int, lease time.Duration) ([]ClaimedChange, error)
	// CompleteChange forgets a delivered change, which makes the user's next
	// change claimable. A claim that is no longer c's is not an error.
	CompleteChange(ctx context.Context, c ClaimedChange) error
	// ReleaseChange gives a claimed change back, due again after the given
	// wait on the store's clock (the hook failed). A claim that is no
	// longer c's is not an error.
	ReleaseChange(ctx context.Context, c ClaimedChange, after time.Duration) error
}

// NotifierConfig configures a [Notifier]. Outbox and Hook are required.
type NotifierConfig struct {
	// Outbox is the store's outbox: the same store the webhook handler and
	// the return sync write to. Required.
	Outbox Outbox
	// Hook receives the changes. Required.
	Hook PlanChangeHook
	// Lease is how long a claimed change is this process's before another
	// replica may deliver it (a process that died while delivering). It
	// must exceed the hook's longest run. Default 30 s.
	Lease time.Duration
	// Backoff is the wait before the next attempt after the given number
	// of failed attempts. Default: 1 s doubling up to 5 min.
	Backoff func(failures int) time.Duration
	// Batch is how many changes one claim takes. Default 100.
	Batch int
	// Logger receives a record per failed delivery. Default: discard.
	Logger *slog.Logger
	// Crash, if set, is called after a change is claimed and before the
	// hook; when it returns true, Deliver stops at once, as a process that
	// died there would: the claim is neither completed nor released, and
	// another Notifier delivers the change once the lease has expired. For
	// tests of the at-least-once contract. Default nil.
	Crash func(c PlanChange) bool
}

// Notifier delivers the plan changes of an [Outbox] to a [PlanChangeHook],
// at least once, in order per user. It starts no goroutine: the webhook
// handler and the return sync call [Notifier.Deliver] right after their
// commit, on the request path, when their config names the Notifier; call
// Deliver yourself from a cron or a worker of yours to deliver what is left
// (changes whose hook failed, or that a process died before delivering).
// Build one with [NewNotifier]; it is safe for concurrent use.
type Notifier struct {
	cfg NotifierConfig
	log *slog.Logger
}

// NewNotifier checks cfg and returns the notifier. It names the first
// missing or invalid setting in its error.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	switch {
	case cfg.Outbox == nil:
		return nil, errors.New("billing: NotifierConfig.Outbox is required (the store: billing.NewMemoryStore() or a sqlstore.Store)")
	case cfg.Hook == nil:
		return nil, errors.New("billing: NotifierConfig.Hook is required (for example billing.PlanChangeHookFunc(func(ctx context.Context, c billing.PlanChange) error { ... }))")
	case cfg.Lease < 0, cfg.Batch < 0:
		return nil, errors.New("billing: NotifierConfig.Lease and Batch must not be negative (0 means the default)")
	}
	if cfg.Lease == 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Batch == 0 {
		cfg.Batch = 100
	}
	if cfg.Backoff == nil {
		cfg.Backoff = defaultBackoff
	}
	return &Notifier{cfg: cfg, log: orDiscard(cfg.Logger)}, nil
}

// defaultBackoff doubles from 1 s up to 5 min.
func defaultBackoff(failures int) time.Duration {
	d := time.Second
	for i := 1; i < failures && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// errCrashed stops Deliver at a test's crash point.
var errCrashed = errors.New("billing: Notifier stopped at its crash point (NotifierConfig.Crash)")

// Deliver delivers every change that is due now, until none is left to
// claim or ctx ends, and returns how many the hook accepted. A hook error
// does not stop it: the change is released with backoff and the others go
// on; the error returned is the outbox's, ctx's, or the first hook error
// (wrapped) when nothing else failed.
func (n *Notifier) Deliver(ctx context.Context) (delivered int, err error) {
	var hookErr error
	for {
		got, d, herr, err := n.round(ctx)
		delivered += d
		if hookErr == nil {
			hookErr = herr
		}
		if err != nil || got == 0 {
			if err == nil && hookErr != nil {
				err = hookErr
			}
			return delivered, err
		}
	}
}

// deliverNow is the request path's delivery: one claim round, so that a
// request never waits for more than one batch; what is left is delivered
// by the next request or an explicit Deliver.
func (n *Notifier) deliverNow(ctx context.Context) {
	if n == nil {
		return
	}
	if _, _, _, err := n.round(ctx); err != nil && !errors.Is(err, errCrashed) {
		n.log.LogAttrs(ctx, slog.LevelWarn, "billing: plan change delivery deferred", slog.String("cause", causeKind(err)))
	}
}

// round claims one batch and delivers it: got is how many were claimed.
func (n *Notifier) round(ctx context.Context) (got, delivered int, hookErr, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, nil, err
	}
	claimed, err := n.cfg.Outbox.ClaimChanges(ctx, n.cfg.Batch, n.cfg.Lease)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("billing: claim plan changes: %w", err)
	}
	for _, c := range claimed {
		if n.cfg.Crash != nil && n.cfg.Crash(c.PlanChange) {
			return len(claimed), delivered, hookErr, errCrashed
		}
		if herr := n.cfg.Hook.PlanChanged(ctx, c.PlanChange); herr != nil {
			if hookErr == nil {
				hookErr = fmt.Errorf("billing: plan change hook failed for change %s: %w", c.ID, herr)
			}
			retry := n.cfg.Backoff(c.Attempt)
			n.log.LogAttrs(ctx, slog.LevelWarn, "billing: plan change hook failed; retried later",
				slog.String("change_id", c.ID), slog.String("user_id", c.UserID),
				slog.Int("attempt", c.Attempt), slog.Duration("retry_in", retry))
			if err := n.cfg.Outbox.ReleaseChange(ctx, c, retry); err != nil {
				return len(claimed), delivered, hookErr, fmt.Errorf("billing: release plan change %s: %w", c.ID, err)
			}
			continue
		}
		if err := n.cfg.Outbox.CompleteChange(ctx, c); err != nil {
			return len(claimed), delivered, hookErr, fmt.Errorf("billing: complete plan change %s: %w", c.ID, err)
		}
		delivered++
	}
	return len(claimed), delivered, hookErr, nil
}
