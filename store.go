package billing

import (
	"context"
	"errors"
	"sync"
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
	// Seq orders changes with the same Created second: a change replaces the
	// stored state only when (Created in seconds, Seq) is strictly greater
	// than the stored pair. The webhook handler sets it from the status
	// (incomplete 1 < active, trialing, past_due, unpaid, paused 2 <
	// canceled, incomplete_expired 3, so a cancelation beats an update of
	// the same second) and, for a state read again from Stripe to break a
	// tie, from the time of that read in nanoseconds (with the event's
	// Created; the read is made once the event's second is over). A state
	// read by [ReturnSync] at T has Created = T and Seq = 0: events of
	// earlier seconds are Stale against it, events of T's second or later
	// replace it.
	Seq int64
}

// Outcome says what the store did with a [SubscriptionChange].
type Outcome int

const (
	// Applied: the change was newer and is now the stored state; the linked
	// user's plan was recomputed in the same atomic step.
	Applied Outcome = iota + 1
	// Duplicate: the event id was processed before; nothing changed.
	Duplicate
	// Stale: the stored state is newer (or the stored subscription is
	// terminal and the change would revive it); nothing changed but the
	// event id is remembered.
	Stale
	// Tie: the stored state has the same Created second and a Seq not lower
	// than the change's, from another event. Nothing changed and the event id
	// is NOT remembered: the caller should read the subscription from Stripe
	// and apply that state, with the same EventID and a Seq that is the time
	// of the read.
	Tie
)

// String returns the outcome's name in lower case, for logs.
func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	case Tie:
		return "tie"
	}
	return "unknown"
}

// SyncStore is what the webhook sync needs from the store. Every method must
// be safe for concurrent use, also from several processes sharing one
// database: the check and the write of ApplySubscription and LinkCustomer are
// one atomic step (one statement, or one transaction with row locks), never a
// read in Go followed by a write.
type SyncStore interface {
	// UserByCustomer returns the user linked to a Stripe customer id;
	// found=false and a nil error when none is.
	UserByCustomer(ctx context.Context, customerID string) (u User, found bool, err error)

	// ApplySubscription applies c atomically:
	//   - c.EventID already remembered: Duplicate, nothing written;
	//   - stored state of c.Subscription.ID terminal, or (stored Created
	//     second, stored Seq) greater than c's: Stale, event id remembered;
	//   - same Created second and stored Seq >= c.Seq, from another event:
	//     Tie, nothing written, event id not remembered;
	//   - otherwise: Applied. The subscription is stored (kept even when no
	//     user is linked to its customer yet), the event id remembered, and
	//     the plan of the user linked to the customer, if any, set to the
	//     highest Plan among the customer's stored subscriptions, all in the
	//     same atomic step.
	// retain is how long the event id must be remembered at least.
	// A returned error means nothing was written, so the event can be
	// retried.
	ApplySubscription(ctx context.Context, c SubscriptionChange, retain time.Duration) (Outcome, error)

	// LinkCustomer links a Stripe customer to a user (for example on
	// checkout.session.completed) and, if the store holds subscriptions of
	// that customer, sets the user's plan to the highest Plan among them, in
	// one atomic step. Linking the same pair again is a no-op. A user id the
	// store does not know returns found=false and a nil error.
	LinkCustomer(ctx context.Context, userID, customerID string) (found bool, err error)
}

// MemoryStore is a [UserStore] and [SyncStore] in memory, safe for
// concurrent use. It is the embedded default of the demo and of the test
// kit; it is not shared between processes, so an app with several replicas
// wants a database store (module github.com/contafy/billing/sqlstore).
//
// The zero value is not usable; call [NewMemoryStore].
type MemoryStore struct {
	mu        sync.Mutex
	users     map[string]User                // by user id
	byCust    map[string]string              // customer id -> user id
	subs      map[string]memSub              // by subscription id
	custSubs  map[string]map[string]struct{} // customer id -> subscription ids
	events    map[string]time.Time           // event id -> expiry
	nextSweep time.Time                      // when expired event ids are dropped next
	now       func() time.Time
}

type memSub struct {
	sub     Subscription
	created int64 // unix seconds
	seq     int64
	eventID string
}

var (
	_ UserStore = (*MemoryStore)(nil)
	_ SyncStore = (*MemoryStore)(nil)
)

// NewMemoryStore returns a MemoryStore holding users.
func NewMemoryStore(users ...User) *MemoryStore {
	m := &MemoryStore{
		users:    make(map[string]User),
		byCust:   make(map[string]string),
		subs:     make(map[string]memSub),
		custSubs: make(map[string]map[string]struct{}),
		events:   make(map[string]time.Time),
		now:      time.Now,
	}
	for _, u := range users {
		m.Put(u)
	}
	return m
}

// Put adds or replaces a user. A non-empty StripeCustomerID links that
// customer to the user.
func (m *MemoryStore) Put(u User) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.users[u.ID]; ok && old.StripeCustomerID != "" && old.StripeCustomerID != u.StripeCustomerID {
		delete(m.byCust, old.StripeCustomerID)
	}
	m.users[u.ID] = u
	if u.StripeCustomerID != "" {
		m.byCust[u.StripeCustomerID] = u.ID
	}
}

// User implements [UserStore].
func (m *MemoryStore) User(ctx context.Context, id string) (User, bool, error) {
	if err := ctx.Err(); err != nil {
		return User{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	return u, ok, nil
}

// UserByCustomer implements [SyncStore].
func (m *MemoryStore) UserByCustomer(ctx context.Context, customerID string) (User, bool, error) {
	if err := ctx.Err(); err != nil {
		return User{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.byCust[customerID]
	if !ok {
		return User{}, false, nil
	}
	u, ok := m.users[id]
	return u, ok, nil
}

// Subscription returns the stored state of a subscription, for tests and
// diagnostics.
func (m *MemoryStore) Subscription(id string) (Subscription, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.subs[id]
	return s.sub, ok
}

// ApplySubscription implements [SyncStore]. Expired event ids are dropped
// as a side effect of the calls, so the store needs no background goroutine.
func (m *MemoryStore) ApplySubscription(ctx context.Context, c SubscriptionChange, retain time.Duration) (Outcome, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if c.Subscription.ID == "" || c.Subscription.CustomerID == "" {
		return 0, errors.New("billing: ApplySubscription: subscription id and customer id are required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.expireEvents(now)
	if c.EventID != "" {
		if _, seen := m.events[c.EventID]; seen {
			return Duplicate, nil
		}
	}
	created := c.Created.Unix()
	remember := func() {
		if c.EventID != "" {
			m.events[c.EventID] = now.Add(retain)
		}
	}
	if old, ok := m.subs[c.Subscription.ID]; ok {
		switch {
		case old.sub.Terminal() && !(c.Subscription.Terminal() && newer(created, c.Seq, old.created, old.seq)):
			remember()
			return Stale, nil
		case created == old.created && c.Seq <= old.seq && c.EventID != old.eventID:
			return Tie, nil
		case !newer(created, c.Seq, old.created, old.seq):
			remember()
			return Stale, nil
		}
	}
	m.subs[c.Subscription.ID] = memSub{sub: c.Subscription, created: created, seq: c.Seq, eventID: c.EventID}
	ids := m.custSubs[c.Subscription.CustomerID]
	if ids == nil {
		ids = make(map[string]struct{})
		m.custSubs[c.Subscription.CustomerID] = ids
	}
	ids[c.Subscription.ID] = struct{}{}
	remember()
	m.recomputeLocked(c.Subscription.CustomerID)
	return Applied, nil
}

// LinkCustomer implements [SyncStore].
func (m *MemoryStore) LinkCustomer(ctx context.Context, userID, customerID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return false, nil
	}
	if u.StripeCustomerID != "" && u.StripeCustomerID != customerID {
		delete(m.byCust, u.StripeCustomerID)
	}
	u.StripeCustomerID = customerID
	m.users[userID] = u
	m.byCust[customerID] = userID
	m.recomputeLocked(customerID)
	return true, nil
}

// recomputeLocked sets the plan and subscription of the user linked to
// customerID from the customer's stored subscriptions. m.mu must be held.
func (m *MemoryStore) recomputeLocked(customerID string) {
	uid, ok := m.byCust[customerID]
	if !ok {
		return
	}
	u := m.users[uid]
	best, bestSub, any := Free, "", false
	for id := range m.custSubs[customerID] {
		s := m.subs[id]
		if !any || s.sub.Plan.rank() > best.rank() || (s.sub.Plan.rank() == best.rank() && s.sub.ID > bestSub) {
			best, bestSub, any = s.sub.Plan, s.sub.ID, true
		}
	}
	if !any {
		return
	}
	u.Plan, u.SubscriptionID = best, bestSub
	m.users[uid] = u
}

// expireEvents drops expired event ids, at most once a minute, so that the
// cost of the sweep is spread thin over the calls.
func (m *MemoryStore) expireEvents(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(time.Minute)
	for id, exp := range m.events {
		if now.After(exp) {
			delete(m.events, id)
		}
	}
}

// newer reports whether (c1, s1) > (c2, s2) lexicographically.
func newer(c1, s1, c2, s2 int64) bool {
	return c1 > c2 || (c1 == c2 && s1 > s2)
}
