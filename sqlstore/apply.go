package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/contafy/billing"
)

// This file holds the writes of the sync: ApplySubscription, ApplyFeatures
// and LinkCustomer. Each is one transaction that takes its decisions on
// rows it holds locked (see the package documentation) and records the
// plan changes it makes in the outbox before it commits.

// ApplySubscription implements [billing.SyncStore]: it applies c in one
// transaction, with the outcomes and the order rule of the interface's
// documentation (see the package documentation for the locking). The
// subscription's lifecycle facts and items are stored with its state, and
// a [billing.PlanChange] is recorded in the outbox for each linked user
// whose [billing.View] the change alters, in the same transaction. retain
// is how long the event id is remembered. A returned error means nothing
// was written.
func (s *Store) ApplySubscription(ctx context.Context, c billing.SubscriptionChange, retain time.Duration) (billing.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if c.Subscription.ID == "" || c.Subscription.CustomerID == "" {
		return "", errors.New("sqlstore: ApplySubscription: subscription id and customer id are required")
	}
	var out billing.Outcome
	err := s.retry(ctx, func() error {
		err := s.apply(ctx, c, retain, &out)
		if s.uniqueViolation(err) {
			// Another transaction inserted the subscription after our
			// read (possible only if it came with another customer id):
			// start over.
			return errRetry
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sqlstore: apply subscription %s (event %q): %w", c.Subscription.ID, c.EventID, err)
	}
	s.wrote(ctx)
	return out, nil
}

// apply is ApplySubscription's transaction: Applied and Stale commit,
// Duplicate and Tie roll back. Its statements (on PostgreSQL, five round
// trips): BEGIN; the event id's claim and the customer's lock; the read of
// the subscription's row, the customer's other subscriptions, its users and
// its features; the writes of the subscription, the users' plans and the
// plan changes; COMMIT. The decisions between them are taken in Go on what
// the read returned, under the locks.
func (s *Store) apply(ctx context.Context, c billing.SubscriptionChange, retain time.Duration, out *billing.Outcome) error {
	now := s.cfg.now()
	sub := asStored(c.Subscription)
	created := c.Created.Unix()
	return s.inTx(ctx, s.claimFirst(c.EventID, sub.CustomerID, now, retain), func(q querier, claimed int64) ([]stmt, bool, error) {
		// 1. The event id is claimed (and the customer locked). A
		// concurrent claim of the same id waits for the other
		// transaction: if it commits we see a conflict (Duplicate), if
		// it rolls back (a Tie, an error) we get the id.
		if c.EventID != "" && claimed == 0 {
			*out = billing.Duplicate
			return nil, false, nil
		}
		// 2. What the store holds of the customer, the subscription's
		// row locked.
		cs, err := s.readCustomer(ctx, q, sub.CustomerID, sub.ID)
		if err != nil {
			return nil, false, err
		}
		if old := cs.target; old != nil {
			switch {
			case old.sub.Terminal() && !(sub.Terminal() && newer(created, c.Seq, old.created, old.seq)):
				*out = billing.Stale
				return nil, true, nil
			case created == old.created && c.Seq <= old.seq && c.EventID != old.eventID:
				*out = billing.Tie
				return nil, false, nil
			case !newer(created, c.Seq, old.created, old.seq):
				*out = billing.Stale
				return nil, true, nil
			}
		}
		// 3. The views before and after, computed in Go.
		before := s.views(cs.users, cs.customerSubs(), cs.featureKeys())
		exists := cs.target != nil
		cs.target = &storedSub{sub: sub, created: created, seq: c.Seq, eventID: c.EventID}
		subs := cs.customerSubs()
		after := make([]billing.User, len(cs.users))
		planChanged := false
		for i, u := range cs.users {
			after[i] = derive(u, subs)
			planChanged = planChanged || after[i].Plan != u.Plan || (s.t.uSub != "" && after[i].SubscriptionID != u.SubscriptionID)
		}
		// 4. The writes: the subscription, the users' plans, the changes.
		var w []stmt
		if exists {
			w = append(w, stmt{s.q.updateSub, append(append(subArgs(sub), created, c.Seq, c.EventID, now.UnixMilli()), sub.ID)})
		} else {
			w = append(w, stmt{s.q.insertSub, append(append([]any{sub.ID}, subArgs(sub)...), created, c.Seq, c.EventID, now.UnixMilli())})
		}
		if planChanged {
			w = append(w, s.setPlan(after[0], sub.CustomerID))
		}
		w = append(w, s.outboxRows(before, s.views(after, subs, cs.featureKeys()), c.Cause, now)...)
		*out = billing.Applied
		return s.combine(w), true, nil
	})
}

// uniqueViolation reports whether err is PostgreSQL's unique_violation
// (SQLSTATE 23505).
func (s *Store) uniqueViolation(err error) bool {
	var e interface{ SQLState() string }
	return err != nil && s.dialect == Postgres && errors.As(err, &e) && e.SQLState() == "23505"
}

// ApplyFeatures implements [billing.FeatureStore]: it stores a customer's
// whole list of active features in one transaction, with the outcomes and
// the order of ApplySubscription (Duplicate, Stale, Tie, Applied; no
// terminal state), keyed by customer, even when no user is linked to the
// customer yet, and records a [billing.PlanChange] for each linked user
// whose view it alters. A returned error means nothing was written.
func (s *Store) ApplyFeatures(ctx context.Context, c billing.FeaturesChange, retain time.Duration) (billing.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if c.CustomerID == "" {
		return "", errors.New("sqlstore: ApplyFeatures: customer id is required")
	}
	var out billing.Outcome
	err := s.retry(ctx, func() error { return s.applyFeatures(ctx, c, retain, &out) })
	if err != nil {
		return "", fmt.Errorf("sqlstore: apply features of %s (event %q): %w", c.CustomerID, c.EventID, err)
	}
	s.wrote(ctx)
	return out, nil
}

// applyFeatures is ApplyFeatures' transaction, in the three steps of
// [Store.apply].
func (s *Store) applyFeatures(ctx context.Context, c billing.FeaturesChange, retain time.Duration, out *billing.Outcome) error {
	now := s.cfg.now()
	created := c.Created.Unix()
	return s.inTx(ctx, s.claimFirst(c.EventID, c.CustomerID, now, retain), func(q querier, claimed int64) ([]stmt, bool, error) {
		if c.EventID != "" && claimed == 0 {
			*out = billing.Duplicate
			return nil, false, nil
		}
		cs, err := s.readCustomer(ctx, q, c.CustomerID, "")
		if err != nil {
			return nil, false, err
		}
		if old := cs.features; old != nil {
			switch {
			case created == old.created && c.Seq <= old.seq && c.EventID != old.eventID:
				*out = billing.Tie
				return nil, false, nil
			case !newer(created, c.Seq, old.created, old.seq):
				*out = billing.Stale
				return nil, true, nil
			}
		}
		subs := cs.customerSubs()
		before := s.views(cs.users, subs, cs.featureKeys())
		keys := featureKeys(c.Features)
		w := []stmt{{s.q.upsertFeatures, []any{c.CustomerID, featuresJSON(keys), created, c.Seq, c.EventID, now.UnixMilli()}}}
		w = append(w, s.outboxRows(before, s.views(cs.users, subs, keys), c.Cause, now)...)
		*out = billing.Applied
		return s.combine(w), true, nil
	})
}

// LinkCustomer implements [billing.SyncStore]: it links the Stripe
// customer to the user and sets the user's plan from the customer's stored
// subscriptions, if any, in one transaction. A user previously linked to
// the customer is unlinked (its customer id set to NULL; its plan is left
// alone). Linking the same pair again changes nothing. A
// [billing.PlanChange] (cause customer_linked) is recorded for the user
// and for the unlinked one when their views change. An unknown user
// returns found=false and a nil error.
func (s *Store) LinkCustomer(ctx context.Context, userID, customerID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if userID == "" || customerID == "" {
		return false, errors.New("sqlstore: LinkCustomer: user id and customer id are required")
	}
	var found bool
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, nil, func(q querier, _ int64) ([]stmt, bool, error) {
			var (
				w   []stmt
				err error
			)
			found, w, err = s.link(ctx, q, userID, customerID)
			return w, found && err == nil, err
		})
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: link customer %s to user %s: %w", customerID, userID, err)
	}
	s.wrote(ctx)
	return found, nil
}

// link is the body of LinkCustomer's transaction: it returns whether the
// user exists and the writes. It locks the new customer and the user's
// current one (in the order of their lock keys), then the user's row, and
// checks that the user's customer is still the one it locked.
func (s *Store) link(ctx context.Context, q querier, userID, customerID string) (bool, []stmt, error) {
	var current sql.NullString
	err := q.QueryRowContext(ctx, s.q.userCustomer, userID).Scan(&current)
	if errors.Is(err, sql.ErrNoRows) || s.notAKey(err) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	oldCus := current.String
	if err := s.lockCustomers(ctx, q, customerID, oldCus); err != nil {
		return false, nil, err
	}
	u, err := scanUser(q.QueryRowContext(ctx, s.q.lockUser, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	if u.StripeCustomerID != oldCus {
		return false, nil, errRetry // relinked between the read and the lock
	}
	now := s.cfg.now()
	cs, err := s.readCustomer(ctx, q, customerID, "")
	if err != nil {
		return false, nil, err
	}
	subs := cs.customerSubs()
	// The user's view before: from its current customer's state.
	var uBefore billing.View
	switch oldCus {
	case "":
		uBefore = account(u, nil, nil).View()
	case customerID:
		uBefore = account(u, subs, cs.featureKeys()).View()
	default:
		old, err := s.readCustomer(ctx, q, oldCus, "")
		if err != nil {
			return false, nil, err
		}
		uBefore = account(u, old.customerSubs(), old.featureKeys()).View()
	}
	linked := u
	linked.StripeCustomerID = customerID
	linked = derive(linked, subs)
	views := map[string][2]billing.View{u.ID: {uBefore, account(linked, subs, cs.featureKeys()).View()}}
	var w []stmt
	if oldCus != customerID {
		others := false
		// Others linked to the customer lose it (and with it its
		// subscriptions and features); their plans stay as they are.
		for _, o := range cs.users {
			if o.ID == userID {
				continue
			}
			unlinked := o
			unlinked.StripeCustomerID = ""
			views[o.ID] = [2]billing.View{account(o, subs, cs.featureKeys()).View(), account(unlinked, nil, nil).View()}
			others = true
		}
		if others {
			w = append(w, stmt{s.q.unlinkOthers, []any{customerID, userID}})
		}
		w = append(w, stmt{s.q.linkUser, []any{customerID, userID}})
	}
	// After the link statement: the plan is set on the row it updated.
	if len(subs) > 0 && (linked.Plan != u.Plan || (s.t.uSub != "" && linked.SubscriptionID != u.SubscriptionID) || oldCus != customerID) {
		w = append(w, s.setPlan(linked, customerID))
	}
	ids := make([]string, 0, len(views))
	for id := range views {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var bv, av []userView
	for _, id := range ids {
		bv = append(bv, userView{id, views[id][0]})
		av = append(av, userView{id, views[id][1]})
	}
	w = append(w, s.outboxRows(bv, av, billing.Cause{Kind: billing.CauseCustomerLinked}, now)...)
	return true, w, nil
}

// userView is a user's view, by user id.
type userView struct {
	userID string
	view   billing.View
}

// views returns the views of users linked to a customer with these
// subscriptions and features.
func (s *Store) views(users []billing.User, subs []billing.Subscription, features []string) []userView {
	out := make([]userView, len(users))
	for i, u := range users {
		out[i] = userView{u.ID, account(u, subs, features).View()}
	}
	return out
}

// setPlan is the statement that gives the users linked to customer the
// plan and subscription id of u.
func (s *Store) setPlan(u billing.User, customer string) stmt {
	if s.t.uSub != "" {
		return stmt{s.q.setPlanStep, []any{string(u.Plan), u.SubscriptionID, customer}}
	}
	return stmt{s.q.setPlanStep, []any{string(u.Plan), customer}}
}

// outboxRows returns the statements recording a plan change for each
// user whose view differs between before and after (the same users, in
// the same order).
func (s *Store) outboxRows(before, after []userView, cause billing.Cause, now time.Time) []stmt {
	var w []stmt
	for i, a := range after {
		if a.view.Equal(before[i].view) {
			continue
		}
		args := []any{a.userID, encodeView(before[i].view), encodeView(a.view), encodeCause(cause)}
		if s.dialect == SQLite {
			args = append(args, now.UnixMilli())
		}
		w = append(w, stmt{s.q.insertChange, args})
	}
	return w
}

// claimFirst returns the first statement of a write for an event id (""
// for none) of a customer: the claim of the event id and, on PostgreSQL,
// the customer's lock, in one statement, the claim first, so that a
// duplicate never waits for the customer. It affects (returns) no row for
// an event id already claimed: a duplicate, which takes no lock. Without
// an event id it is the lock alone (nil on SQLite, whose transaction holds
// the write lock).
func (s *Store) claimFirst(eventID, customer string, now time.Time, retain time.Duration) *stmt {
	switch {
	case eventID != "" && s.dialect == Postgres:
		return &stmt{s.q.claimLock, []any{eventID, now.Add(retain).UnixMilli(), now.UnixMilli(), s.cfg.lockSpace, lockKey(customer)}}
	case eventID != "":
		return &stmt{s.q.claim, []any{eventID, now.Add(retain).UnixMilli(), now.UnixMilli()}}
	case s.dialect == Postgres:
		return &stmt{s.q.lockFirst, []any{s.cfg.lockSpace, lockKey(customer)}}
	}
	return nil
}

// lockCustomers takes the transaction-scoped locks of customer ids
// (PostgreSQL; SQLite's transaction already holds the write lock), in the
// order of their keys, so that two writers locking two customers each do
// not deadlock. Empty ids are skipped.
func (s *Store) lockCustomers(ctx context.Context, q querier, customers ...string) error {
	if s.dialect != Postgres {
		return nil
	}
	var keys []int32
	for _, c := range customers {
		if c != "" {
			keys = append(keys, lockKey(c))
		}
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if _, err := q.ExecContext(ctx, s.q.lockCustomer, s.cfg.lockSpace, k); err != nil {
			return err
		}
	}
	return nil
}

// lockKey is the second key of a customer's advisory lock.
func lockKey(customerID string) int32 {
	h := fnv.New32a()
	h.Write([]byte(customerID))
	return int32(h.Sum32())
}

// newer reports whether (c1, s1) > (c2, s2) lexicographically.
func newer(c1, s1, c2, s2 int64) bool {
	return c1 > c2 || (c1 == c2 && s1 > s2)
}
