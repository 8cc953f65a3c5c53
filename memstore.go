package billing

import (
	"context"
	"errors"
	"sync"
	"time"
)

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
		m.putLocked(u)
	}
	return m
}

// PutUser adds or replaces a user, as [SyncStore] describes for seeding: a
// non-empty StripeCustomerID links that customer to the user (and unlinks
// it from any other user), and when the store holds subscriptions of that
// customer, the user's Plan and SubscriptionID are derived from them, not
// taken from u. The error is ctx's, or one for an empty id.
func (m *MemoryStore) PutUser(ctx context.Context, u User) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if u.ID == "" {
		return errors.New("billing: MemoryStore.PutUser: the user id is required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putLocked(u)
	return nil
}

// putLocked stores u and derives its plan. m.mu must be held (or m not yet
// shared).
func (m *MemoryStore) putLocked(u User) {
	if old, ok := m.users[u.ID]; ok && old.StripeCustomerID != "" && old.StripeCustomerID != u.StripeCustomerID {
		delete(m.byCust, old.StripeCustomerID)
	}
	if u.StripeCustomerID != "" {
		if other, ok := m.byCust[u.StripeCustomerID]; ok && other != u.ID {
			o := m.users[other]
			o.StripeCustomerID = ""
			m.users[other] = o
		}
		m.byCust[u.StripeCustomerID] = u.ID
	}
	m.users[u.ID] = u
	if u.StripeCustomerID != "" {
		m.recomputeLocked(u.StripeCustomerID)
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
// diagnostics; found=false and a nil error when none is stored. The error
// is ctx's.
func (m *MemoryStore) Subscription(ctx context.Context, id string) (s Subscription, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return Subscription{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, ok := m.subs[id]
	return ms.sub, ok, nil
}

// ApplySubscription implements [SyncStore]. Expired event ids are dropped
// as a side effect of the calls, so the store needs no background goroutine.
func (m *MemoryStore) ApplySubscription(ctx context.Context, c SubscriptionChange, retain time.Duration) (Outcome, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if c.Subscription.ID == "" || c.Subscription.CustomerID == "" {
		return "", errors.New("billing: ApplySubscription: subscription id and customer id are required")
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
	if other, ok := m.byCust[customerID]; ok && other != userID {
		o := m.users[other]
		o.StripeCustomerID = ""
		m.users[other] = o
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
