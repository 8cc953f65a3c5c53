package billing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a [UserStore], [SyncStore], [FeatureStore],
// [AccountStore] and [Outbox] in memory, safe for concurrent use. It is the embedded default of the demo and of the test
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
	features  map[string]memFeatures         // customer id -> active features
	outbox    []memChange                    // recorded plan changes, in commit order
	changeSeq uint64                         // for change ids and claim tokens
	nextSweep time.Time                      // when expired event ids are dropped next
	now       func() time.Time
}

type memFeatures struct {
	keys []string
	key  orderKey
}

// orderKey is the order key of a stored state and the event that wrote it.
type orderKey struct {
	created, seq int64 // Created in unix seconds, Seq
	eventID      string
}

// order decides a change of key (created, seq) from eventID against the
// stored key, as [SubscriptionChange] orders them: Tie, Stale, or "" when
// the change is newer and applies. (The terminal rule of subscriptions is
// the caller's.)
func order(stored orderKey, created, seq int64, eventID string) Outcome {
	switch {
	case created == stored.created && seq <= stored.seq && eventID != stored.eventID:
		return Tie
	case !newer(created, seq, stored.created, stored.seq):
		return Stale
	}
	return ""
}

// seenLocked drops expired event ids and reports whether eventID (if any)
// was processed before. m.mu must be held.
func (m *MemoryStore) seenLocked(eventID string, now time.Time) bool {
	m.expireEvents(now)
	_, seen := m.events[eventID]
	return eventID != "" && seen
}

// rememberLocked remembers eventID (if any) for retain. m.mu must be held.
func (m *MemoryStore) rememberLocked(eventID string, now time.Time, retain time.Duration) {
	if eventID != "" {
		m.events[eventID] = now.Add(retain)
	}
}

// memChange is a recorded plan change and its delivery state.
type memChange struct {
	c          PlanChange
	token      string    // the live claim's, if any
	claimUntil time.Time // the claim's expiry
	retryAt    time.Time // not due before
	attempts   int
}

type memSub struct {
	sub Subscription
	key orderKey
}

var (
	_ UserStore    = (*MemoryStore)(nil)
	_ SyncStore    = (*MemoryStore)(nil)
	_ FeatureStore = (*MemoryStore)(nil)
	_ AccountStore = (*MemoryStore)(nil)
	_ Outbox       = (*MemoryStore)(nil)
)

// NewMemoryStore returns a MemoryStore holding users.
func NewMemoryStore(users ...User) *MemoryStore {
	m := &MemoryStore{
		users:    make(map[string]User),
		byCust:   make(map[string]string),
		subs:     make(map[string]memSub),
		custSubs: make(map[string]map[string]struct{}),
		events:   make(map[string]time.Time),
		features: make(map[string]memFeatures),
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
	return cloneSub(ms.sub), ok, nil
}

// Account implements [AccountStore].
func (m *MemoryStore) Account(ctx context.Context, userID string) (Account, bool, error) {
	if err := ctx.Err(); err != nil {
		return Account{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.accountLocked(userID)
	return a, ok, nil
}

// accountLocked returns the account of a user. m.mu must be held.
func (m *MemoryStore) accountLocked(userID string) (Account, bool) {
	u, ok := m.users[userID]
	if !ok {
		return Account{}, false
	}
	a := Account{User: u}
	if ms, ok := m.subs[u.SubscriptionID]; ok && u.SubscriptionID != "" && ms.sub.CustomerID == u.StripeCustomerID {
		sub := cloneSub(ms.sub)
		a.Subscription = &sub
	}
	if u.StripeCustomerID != "" {
		a.Features = slices.Clone(m.features[u.StripeCustomerID].keys)
	}
	return a, true
}

// viewsLocked returns the views of the given users (absent ones skipped),
// to compare before and after a write. m.mu must be held.
func (m *MemoryStore) viewsLocked(userIDs ...string) map[string]View {
	vs := make(map[string]View, len(userIDs))
	for _, id := range userIDs {
		if a, ok := m.accountLocked(id); ok {
			vs[id] = a.View()
		}
	}
	return vs
}

// recordLocked appends a PlanChange for each user whose view differs from
// before. m.mu must be held.
func (m *MemoryStore) recordLocked(before map[string]View, cause Cause, now time.Time) {
	for _, id := range slices.Sorted(maps.Keys(before)) {
		a, ok := m.accountLocked(id)
		if !ok {
			continue
		}
		after := a.View()
		if after.Equal(before[id]) {
			continue
		}
		m.changeSeq++
		m.outbox = append(m.outbox, memChange{c: PlanChange{
			ID: fmt.Sprintf("chg_mem_%d", m.changeSeq), UserID: id,
			Before: before[id], After: after, Cause: cause, At: now,
		}})
	}
}

// linkedUsers returns the id of the user linked to a customer, if any.
func (m *MemoryStore) linkedUsers(customerID string) []string {
	if id, ok := m.byCust[customerID]; ok {
		return []string{id}
	}
	return nil
}

// cloneSub copies s so that the store's Items are never shared.
func cloneSub(s Subscription) Subscription {
	s.Items = slices.Clone(s.Items)
	return s
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
	if m.seenLocked(c.EventID, now) {
		return Duplicate, nil
	}
	created := c.Created.Unix()
	if old, ok := m.subs[c.Subscription.ID]; ok {
		out := order(old.key, created, c.Seq, c.EventID)
		if old.sub.Terminal() && (!c.Subscription.Terminal() || !newer(created, c.Seq, old.key.created, old.key.seq)) {
			out = Stale // a terminal subscription is never revived, nor its end rewritten by an older one
		}
		if out == Stale {
			m.rememberLocked(c.EventID, now, retain)
		}
		if out != "" {
			return out, nil
		}
	}
	before := m.viewsLocked(m.linkedUsers(c.Subscription.CustomerID)...)
	m.subs[c.Subscription.ID] = memSub{sub: cloneSub(c.Subscription), key: orderKey{created, c.Seq, c.EventID}}
	ids := m.custSubs[c.Subscription.CustomerID]
	if ids == nil {
		ids = make(map[string]struct{})
		m.custSubs[c.Subscription.CustomerID] = ids
	}
	ids[c.Subscription.ID] = struct{}{}
	m.rememberLocked(c.EventID, now, retain)
	m.recomputeLocked(c.Subscription.CustomerID)
	m.recordLocked(before, c.Cause, now)
	return Applied, nil
}

// ApplyFeatures implements [FeatureStore].
func (m *MemoryStore) ApplyFeatures(ctx context.Context, c FeaturesChange, retain time.Duration) (Outcome, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if c.CustomerID == "" {
		return "", errors.New("billing: ApplyFeatures: customer id is required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.seenLocked(c.EventID, now) {
		return Duplicate, nil
	}
	created := c.Created.Unix()
	if old, ok := m.features[c.CustomerID]; ok {
		out := order(old.key, created, c.Seq, c.EventID)
		if out == Stale {
			m.rememberLocked(c.EventID, now, retain)
		}
		if out != "" {
			return out, nil
		}
	}
	before := m.viewsLocked(m.linkedUsers(c.CustomerID)...)
	keys := slices.Clone(c.Features)
	slices.Sort(keys)
	m.features[c.CustomerID] = memFeatures{keys: slices.Compact(keys), key: orderKey{created, c.Seq, c.EventID}}
	m.rememberLocked(c.EventID, now, retain)
	m.recordLocked(before, c.Cause, now)
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
	if u.StripeCustomerID == customerID {
		return true, nil // linked already: a no-op
	}
	affected := []string{userID}
	if other, ok := m.byCust[customerID]; ok && other != userID {
		affected = append(affected, other)
	}
	before := m.viewsLocked(affected...)
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
	m.recordLocked(before, Cause{Kind: CauseCustomerLinked}, m.now())
	return true, nil
}

// ClaimChanges implements [Outbox].
func (m *MemoryStore) ClaimChanges(ctx context.Context, max int, lease time.Duration) ([]ClaimedChange, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var out []ClaimedChange
	seen := make(map[string]bool)
	for i := range m.outbox {
		if len(out) >= max {
			break
		}
		e := &m.outbox[i]
		if seen[e.c.UserID] {
			continue // only a user's oldest change
		}
		seen[e.c.UserID] = true
		if (e.token != "" && now.Before(e.claimUntil)) || now.Before(e.retryAt) {
			continue
		}
		m.changeSeq++
		e.token = fmt.Sprintf("clm_%d", m.changeSeq)
		e.claimUntil = now.Add(lease)
		e.attempts++
		out = append(out, ClaimedChange{PlanChange: e.c, Token: e.token, Attempt: e.attempts})
	}
	return out, nil
}

// CompleteChange implements [Outbox].
func (m *MemoryStore) CompleteChange(ctx context.Context, c ClaimedChange) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outbox = slices.DeleteFunc(m.outbox, func(e memChange) bool { return e.c.ID == c.ID && e.token == c.Token })
	return nil
}

// ReleaseChange implements [Outbox].
func (m *MemoryStore) ReleaseChange(ctx context.Context, c ClaimedChange, after time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.outbox {
		if e := &m.outbox[i]; e.c.ID == c.ID && e.token == c.Token {
			e.token, e.claimUntil, e.retryAt = "", time.Time{}, m.now().Add(after)
		}
	}
	return nil
}

// PendingChanges returns the recorded plan changes not yet delivered, in
// commit order, for tests and diagnostics.
func (m *MemoryStore) PendingChanges(ctx context.Context) ([]PlanChange, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PlanChange, len(m.outbox))
	for i, e := range m.outbox {
		out[i] = e.c
	}
	return out, nil
}

// SetClock replaces the store's clock (event id expiry, change times and
// claim leases), for tests. Call it before the store is shared.
func (m *MemoryStore) SetClock(now func() time.Time) { m.now = now }

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
		if !any || s.sub.Plan.Rank() > best.Rank() || (s.sub.Plan.Rank() == best.Rank() && s.sub.ID > bestSub) {
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
