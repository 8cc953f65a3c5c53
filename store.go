package billing

import (
	"context"
	"time"
)

// UserStore is what the portal needs from the application's user records.
//
// User returns the user with the given id. A user the store does not know is
// not an error: it returns found=false and a nil error (the portal answers
// 401, as for a bad token). Any other failure returns a non-nil error (the
// portal answers 500). Implementations must be safe for concurrent use.
type UserStore interface {
	User(ctx context.Context, id string) (u User, found bool, err error)
}

// UserStoreFunc adapts a function to a [UserStore].
type UserStoreFunc func(ctx context.Context, id string) (User, bool, error)

// User calls f(ctx, id).
func (f UserStoreFunc) User(ctx context.Context, id string) (User, bool, error) { return f(ctx, id) }

// Subscription is the state of one Stripe subscription as the sync last
// applied it.
type Subscription struct {
	// ID is the Stripe subscription id (sub_...).
	ID string
	// CustomerID is the Stripe customer id (cus_...) the subscription belongs to.
	CustomerID string
	// Status is Stripe's status word: active, trialing, past_due, canceled,
	// unpaid, incomplete, incomplete_expired or paused.
	Status string
	// Plan is the plan this subscription grants now, with its status already
	// taken into account: FREE for a canceled, unpaid or paused subscription,
	// and for a price that maps to no plan.
	Plan Plan
	// PriceID is the price of the subscription's first item, for logs.
	PriceID string
	// Items are the subscription's items, in Stripe's order.
	Items []SubscriptionItem

	// The lifecycle facts, as Stripe states them (a zero time: not set).
	// They travel with the state and obey the same order: an older change
	// never overwrites them.

	// CancelAtPeriodEnd: the subscription ends at CurrentPeriodEnd (the
	// user canceled in the portal); it stays paid until then.
	CancelAtPeriodEnd bool
	// CancelAt is when Stripe will cancel the subscription, if scheduled.
	CancelAt time.Time
	// CanceledAt is when the subscription was canceled (it may end later,
	// at CancelAt or the period end).
	CanceledAt time.Time
	// EndedAt is when the subscription ended.
	EndedAt time.Time
	// CurrentPeriodStart and CurrentPeriodEnd bound the period paid for.
	// Since API version 2025-03-31 Stripe states them per item; then these
	// are the earliest item period's.
	CurrentPeriodStart, CurrentPeriodEnd time.Time
	// TrialEnd is when the trial ends (or ended).
	TrialEnd time.Time
}

// SubscriptionItem is one item of a subscription: a price and a quantity.
type SubscriptionItem struct {
	// PriceID is the item's price (price_...).
	PriceID string
	// LookupKey is the price's lookup key, if any.
	LookupKey string
	// ProductID is the price's product (prod_...).
	ProductID string
	// Quantity is the item's quantity.
	Quantity int64
}

// Terminal reports whether the subscription can never become active again
// (canceled or incomplete_expired). Stripe never revives such a subscription;
// a resubscription gets a new id.
func (s Subscription) Terminal() bool {
	return s.Status == "canceled" || s.Status == "incomplete_expired"
}

// SubscriptionChange is one write of the sync: the state of a subscription as
// a Stripe event (or a read from Stripe) shows it, with the order key that
// decides whether it is newer than what is stored.
//
// # The order of changes
//
// This is the one place the order is decided; the store, the webhook
// handler, the return sync and the test kit follow it.
//
// A change replaces the stored state of its subscription only when its key
// (Created in whole seconds, Seq) is strictly greater than the stored key,
// and never when the stored state is terminal ([Subscription.Terminal]),
// unless the change is terminal too. Stripe's event times have whole
// seconds, so Seq orders the changes of one second:
//   - a webhook event has Seq = its status's rank: 1 for incomplete (a
//     subscription starts so and never returns to it), 2 for active,
//     trialing, past_due, unpaid, paused and any unknown status (they
//     follow each other in any direction), 3 for canceled and
//     incomplete_expired (terminal, so always last);
//   - two events of one second with the same rank cannot be ordered: the
//     store answers [Tie] and the webhook handler reads the subscription
//     from Stripe once that second is over, then applies the read with the
//     event's id and Created and Seq = the read's time in nanoseconds,
//     above every rank, so it beats every event of that second, delivered
//     before or after;
//   - a state read by [ReturnSync] at time T (this server's clock, taken
//     just before the call to Stripe) has Created = T and Seq = 0: an event
//     of an earlier second is already reflected in the read and is [Stale]
//     against it; an event of T's second or later replaces it (Seq 0 is
//     below every rank), whether it arrives before the read is applied
//     (the read is then a Tie and dropped) or after. Giving the read a
//     higher Seq would let it beat an event of its own second created after
//     it, a wrong state nothing would correct. Keep the clock synchronized
//     (NTP): a clock ahead of Stripe's by more than a second could make
//     events of the seconds in between Stale.
type SubscriptionChange struct {
	// EventID is the Stripe event id (evt_...). A change with an EventID is
	// applied at most once: the store remembers the id (for at least the
	// retention it is given) whatever the outcome, except [Tie]. An empty
	// EventID (a read from Stripe outside a webhook) is never deduplicated.
	EventID string
	// Subscription is the new state.
	Subscription Subscription
	// Created is the time of the event (Stripe's created, one-second
	// resolution), or of the read from Stripe.
	Created time.Time
	// Seq orders changes with the same Created second, as the order of
	// changes above says.
	Seq int64
	// Cause is what wrote the change, recorded with the [PlanChange] it
	// makes, if any.
	Cause Cause
}

// FeaturesChange is one write of a customer's active features (Stripe's
// entitlements.active_entitlement_summary.updated event, or a read of the
// active entitlements list): the whole list, ordered like a
// [SubscriptionChange]: an event has Seq 1, a read at T has Created = T and
// Seq 0, a tie's read has Seq = the read's time in nanoseconds.
type FeaturesChange struct {
	// EventID is the Stripe event id, deduplicated as for a
	// [SubscriptionChange]; empty for a read.
	EventID string
	// CustomerID is the Stripe customer (cus_...). Required.
	CustomerID string
	// Features are the lookup keys of the customer's active features: the
	// whole list, which replaces the stored one.
	Features []string
	// Created is the time of the event, or of the read.
	Created time.Time
	// Seq orders changes of one Created second.
	Seq int64
	// Cause is what wrote the change.
	Cause Cause
}

// FeatureStore stores customers' active features (Stripe entitlements). The
// webhook handler applies entitlement events to its Store when the store
// implements it, and acknowledges them as [Ignored] otherwise.
type FeatureStore interface {
	// ApplyFeatures applies c atomically with the outcomes and the order of
	// [SyncStore].ApplySubscription (Duplicate, Stale, Tie, Applied), keyed
	// by customer. The features are stored even when no user is linked to
	// the customer yet. A returned error means nothing was written.
	ApplyFeatures(ctx context.Context, c FeaturesChange, retain time.Duration) (Outcome, error)
}

// SyncStore is what the webhook sync needs from the store. Every method must
// be safe for concurrent use, also from several processes sharing one
// database: the check and the write of ApplySubscription and LinkCustomer are
// one atomic step (one statement, or one transaction with row locks), never a
// read in Go followed by a write.
//
// A user's Plan and SubscriptionID are derived, never set over the stored
// subscriptions: when the store holds subscriptions of the user's customer,
// Plan is the highest Plan among them (FREE < BASIC < PRO) and
// SubscriptionID the id of that subscription, the greatest id (compared as
// strings) among those of that plan. Every write that touches a user or a
// subscription (ApplySubscription, LinkCustomer, and a store's own ways of
// adding users, such as seeding the same users again at every start, from
// any replica) recomputes them in the same atomic step, so no write can
// regress a plan that the stored subscriptions determine. Only a user whose
// customer has no stored subscription keeps the plan it was given.
type SyncStore interface {
	// UserByCustomer returns the user linked to a Stripe customer id;
	// found=false and a nil error when none is.
	UserByCustomer(ctx context.Context, customerID string) (u User, found bool, err error)

	// ApplySubscription applies c atomically, in the order of
	// [SubscriptionChange]:
	//   - c.EventID already remembered: Duplicate, nothing written;
	//   - stored state of c.Subscription.ID terminal, or (stored Created
	//     second, stored Seq) greater than c's: Stale, event id remembered;
	//   - same Created second and stored Seq >= c.Seq, from another event:
	//     Tie, nothing written, event id not remembered;
	//   - otherwise: Applied. The subscription is stored (kept even when no
	//     user is linked to its customer yet), the event id remembered, and
	//     the plan of the user linked to the customer, if any, derived again
	//     (see above), all in the same atomic step.
	// retain is how long the event id must be remembered at least.
	// A returned error means nothing was written, so the event can be
	// retried.
	ApplySubscription(ctx context.Context, c SubscriptionChange, retain time.Duration) (Outcome, error)

	// LinkCustomer links a Stripe customer to a user (for example on
	// checkout.session.completed), unlinking it from any other user, and
	// derives the user's plan from that customer's stored subscriptions, if
	// any, in one atomic step. Linking the same pair again is a no-op. A
	// user id the store does not know returns found=false and a nil error.
	LinkCustomer(ctx context.Context, userID, customerID string) (found bool, err error)
}

// newer reports whether (c1, s1) > (c2, s2) lexicographically.
func newer(c1, s1, c2, s2 int64) bool {
	return c1 > c2 || (c1 == c2 && s1 > s2)
}
