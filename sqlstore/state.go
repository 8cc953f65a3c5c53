package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/contafy/billing"
)

// This file reads what the store holds of a customer and of an account,
// and converts between the rows and package billing's types.

// subCols are the columns of a subscription row, in the order of
// [stateRow]'s fields.
const subCols = "subscription_id, customer_id, status, plan, price_id, items, cancel_at_period_end, " +
	"cancel_at, canceled_at, ended_at, current_period_start, current_period_end, trial_end, " +
	"event_created, event_seq, event_id"

// The kinds of rows of the state queries, which return a customer's (or an
// account's) subscriptions, users and features as rows of one shape: a kind
// and the columns of a subscription, which the other kinds fill in part.
const (
	kindTarget   = 0 // the subscription a change is for, by id (any customer)
	kindSub      = 1 // a subscription of the customer
	kindUser     = 2 // a user linked to the customer: id, customer, subscription, plan
	kindFeatures = 3 // the customer's features: customer, features (JSON), order key
)

// stateRow is one row of a state query.
type stateRow struct {
	kind                                     int
	id, customer, status, plan, price, jsonV sql.NullString
	flag                                     sql.NullBool
	times                                    [6]sql.NullInt64
	created, seq                             sql.NullInt64
	eventID                                  sql.NullString
}

// dest returns the scan destinations: with the kind first when kind is
// true (the state queries), without it for a bare subscription row.
func (r *stateRow) dest(kind bool) []any {
	d := []any{&r.id, &r.customer, &r.status, &r.plan, &r.price, &r.jsonV, &r.flag}
	for i := range r.times {
		d = append(d, &r.times[i])
	}
	d = append(d, &r.created, &r.seq, &r.eventID)
	if kind {
		d = append([]any{&r.kind}, d...)
	}
	return d
}

// storedSub is a stored subscription with the order key of its state.
type storedSub struct {
	sub          billing.Subscription
	created, seq int64
	eventID      string
}

// storedFeatures is a customer's stored features with their order key.
type storedFeatures struct {
	keys         []string
	created, seq int64
	eventID      string
}

// subscription decodes a subscription row.
func (r *stateRow) subscription() (storedSub, error) {
	s := billing.Subscription{
		ID: r.id.String, CustomerID: r.customer.String, Status: r.status.String,
		Plan: billing.Plan(r.plan.String), PriceID: r.price.String,
		CancelAtPeriodEnd: r.flag.Bool,
	}
	if r.jsonV.Valid {
		var items []itemJSON
		if err := json.Unmarshal([]byte(r.jsonV.String), &items); err != nil {
			return storedSub{}, fmt.Errorf("subscription %s: items column: %w", s.ID, err)
		}
		if items != nil {
			s.Items = make([]billing.SubscriptionItem, len(items))
			for i, it := range items {
				s.Items[i] = billing.SubscriptionItem{PriceID: it.PriceID, LookupKey: it.LookupKey, ProductID: it.ProductID, Quantity: it.Quantity}
			}
		}
	}
	for i, t := range []*time.Time{&s.CancelAt, &s.CanceledAt, &s.EndedAt, &s.CurrentPeriodStart, &s.CurrentPeriodEnd, &s.TrialEnd} {
		if r.times[i].Valid {
			*t = time.Unix(r.times[i].Int64, 0).UTC()
		}
	}
	return storedSub{sub: s, created: r.created.Int64, seq: r.seq.Int64, eventID: r.eventID.String}, nil
}

// user decodes a user row.
func (r *stateRow) user() billing.User {
	u := billing.User{ID: r.id.String, Plan: billing.Plan(r.plan.String), StripeCustomerID: r.customer.String, SubscriptionID: r.status.String}
	if !r.plan.Valid {
		u.Plan = billing.Free
	}
	return u
}

// features decodes a features row.
func (r *stateRow) features() (storedFeatures, error) {
	f := storedFeatures{created: r.created.Int64, seq: r.seq.Int64, eventID: r.eventID.String}
	if err := json.Unmarshal([]byte(r.jsonV.String), &f.keys); err != nil {
		return storedFeatures{}, fmt.Errorf("features of %s: %w", r.id.String, err)
	}
	if len(f.keys) == 0 {
		f.keys = nil
	}
	return f, nil
}

// itemJSON is a subscription item in the items column.
type itemJSON struct {
	PriceID   string `json:"price_id,omitempty"`
	LookupKey string `json:"lookup_key,omitempty"`
	ProductID string `json:"product_id,omitempty"`
	Quantity  int64  `json:"quantity"`
}

// subArgs returns the values of the columns of subCols but the id and the
// order key (customer_id ... trial_end), for a write of s.
func subArgs(s billing.Subscription) []any {
	var items any // NULL for no items
	if s.Items != nil {
		w := make([]itemJSON, len(s.Items))
		for i, it := range s.Items {
			w[i] = itemJSON{PriceID: it.PriceID, LookupKey: it.LookupKey, ProductID: it.ProductID, Quantity: it.Quantity}
		}
		b, _ := json.Marshal(w) // strings and integers: cannot fail
		items = string(b)
	}
	args := []any{s.CustomerID, s.Status, string(s.Plan), s.PriceID, items, s.CancelAtPeriodEnd}
	for _, t := range []time.Time{s.CancelAt, s.CanceledAt, s.EndedAt, s.CurrentPeriodStart, s.CurrentPeriodEnd, s.TrialEnd} {
		if t.IsZero() {
			args = append(args, nil)
		} else {
			args = append(args, t.Unix())
		}
	}
	return args
}

// asStored returns s as the store keeps it and reads it back: times in
// whole seconds (Stripe's resolution), in UTC; its own copy of the items.
// Views are computed from it, so that a change's After is the next
// change's Before.
func asStored(s billing.Subscription) billing.Subscription {
	for _, t := range []*time.Time{&s.CancelAt, &s.CanceledAt, &s.EndedAt, &s.CurrentPeriodStart, &s.CurrentPeriodEnd, &s.TrialEnd} {
		if !t.IsZero() {
			*t = time.Unix(t.Unix(), 0).UTC()
		}
	}
	s.Items = slices.Clone(s.Items)
	return s
}

// featureKeys returns keys as the store keeps them: sorted, without
// duplicates, nil for none.
func featureKeys(keys []string) []string {
	if len(keys) == 0 {
		return nil
	}
	k := slices.Clone(keys)
	slices.Sort(k)
	return slices.Compact(k)
}

// featuresJSON encodes stored keys for the features column.
func featuresJSON(keys []string) string {
	if keys == nil {
		return "[]"
	}
	b, _ := json.Marshal(keys)
	return string(b)
}

// customerState is what the store holds of one customer, read by
// [Store.readCustomer] under the customer's lock.
type customerState struct {
	customer string
	// target is the stored row of the subscription a change is for, if
	// any, whatever customer it belongs to now.
	target *storedSub
	// subs are the customer's other subscriptions.
	subs []storedSub
	// users are the users linked to the customer (one, unless an
	// application's table allows more), by id.
	users []billing.User
	// features are the customer's stored features, nil if none.
	features *storedFeatures
}

// customerSubs returns the customer's stored subscriptions, the target
// included if it is the customer's.
func (cs *customerState) customerSubs() []billing.Subscription {
	out := make([]billing.Subscription, 0, len(cs.subs)+1)
	for _, s := range cs.subs {
		out = append(out, s.sub)
	}
	if cs.target != nil && cs.target.sub.CustomerID == cs.customer {
		out = append(out, cs.target.sub)
	}
	return out
}

// featureKeys returns the customer's stored feature keys.
func (cs *customerState) featureKeys() []string {
	if cs.features == nil {
		return nil
	}
	return cs.features.keys
}

// readCustomer reads, in one statement, the subscription target (by id;
// "" for none), the other subscriptions of customer, the users linked to
// it and its features. On PostgreSQL the target's row and the users' rows
// are locked FOR UPDATE; the caller holds the customer's advisory lock,
// which every writer of the customer's subscriptions, features and links
// holds, so the rest cannot change before the commit either. On SQLite the
// transaction holds the database's write lock.
func (s *Store) readCustomer(ctx context.Context, q querier, customer, target string) (*customerState, error) {
	rows, err := q.QueryContext(ctx, s.q.readCustomer, target, customer, customer, target, customer)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cs := &customerState{customer: customer}
	var r stateRow // Scan sets every field of each row
	dest := r.dest(true)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		switch r.kind {
		case kindTarget, kindSub:
			sub, err := r.subscription()
			if err != nil {
				return nil, err
			}
			if r.kind == kindTarget {
				cs.target = &sub
			} else {
				cs.subs = append(cs.subs, sub)
			}
		case kindUser:
			cs.users = append(cs.users, r.user())
		case kindFeatures:
			f, err := r.features()
			if err != nil {
				return nil, err
			}
			cs.features = &f
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(cs.users, func(a, b billing.User) int { return strings.Compare(a.ID, b.ID) })
	return cs, nil
}

// best returns the subscription a user's plan comes from among a
// customer's subscriptions, as [billing.SyncStore] derives it: the highest
// plan, the greatest id among those of that plan; nil if there are none.
func best(subs []billing.Subscription) *billing.Subscription {
	var b *billing.Subscription
	for i := range subs {
		s := &subs[i]
		if b == nil || s.Plan.Rank() > b.Plan.Rank() || (s.Plan.Rank() == b.Plan.Rank() && s.ID > b.ID) {
			b = s
		}
	}
	return b
}

// derive returns u with the plan and subscription id derived from its
// customer's subscriptions, if it has any.
func derive(u billing.User, subs []billing.Subscription) billing.User {
	if b := best(subs); b != nil {
		u.Plan, u.SubscriptionID = b.Plan, b.ID
	}
	return u
}

// account returns the account of u, linked to a customer with these
// subscriptions and features.
func account(u billing.User, subs []billing.Subscription, features []string) billing.Account {
	a := billing.Account{User: u, Features: slices.Clone(features)}
	if b := best(subs); b != nil {
		sub := asStored(*b)
		a.Subscription = &sub
	}
	return a
}

// Account implements [billing.AccountStore]: the user, the subscription
// the plan comes from (the customer's stored subscription the derivation
// of [billing.SyncStore] picks) and the customer's features, read in one
// statement (one snapshot on PostgreSQL, one read transaction on SQLite).
// An unknown user returns found=false and a nil error.
func (s *Store) Account(ctx context.Context, userID string) (billing.Account, bool, error) {
	var (
		a     billing.Account
		found bool
	)
	err := s.retry(ctx, func() error {
		var err error
		a, found, err = s.readAccount(ctx, userID)
		if s.notAKey(err) {
			a, found, err = billing.Account{}, false, nil
		}
		return err
	})
	if err != nil {
		return billing.Account{}, false, fmt.Errorf("sqlstore: read account of user %s: %w", userID, err)
	}
	return a, found, nil
}

func (s *Store) readAccount(ctx context.Context, userID string) (billing.Account, bool, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, s.q.account, userID, userID, userID)
	if err != nil {
		return billing.Account{}, false, err
	}
	defer rows.Close()
	var (
		u        *billing.User
		subs     []billing.Subscription
		features []string
	)
	var r stateRow // Scan sets every field of each row
	dest := r.dest(true)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return billing.Account{}, false, err
		}
		switch r.kind {
		case kindUser:
			uu := r.user()
			u = &uu
		case kindSub:
			sub, err := r.subscription()
			if err != nil {
				return billing.Account{}, false, err
			}
			subs = append(subs, sub.sub)
		case kindFeatures:
			f, err := r.features()
			if err != nil {
				return billing.Account{}, false, err
			}
			features = f.keys
		}
	}
	if err := rows.Err(); err != nil {
		return billing.Account{}, false, err
	}
	if u == nil {
		return billing.Account{}, false, nil
	}
	return account(*u, subs, features), true, nil
}

// Subscription returns the stored state of a subscription, with its items
// and lifecycle facts (times in whole seconds, UTC); found=false and a nil
// error if the store has none. For diagnostics and tests.
func (s *Store) Subscription(ctx context.Context, id string) (billing.Subscription, bool, error) {
	var sub storedSub
	err := s.retry(ctx, func() error {
		var r stateRow
		if err := s.reader(ctx).QueryRowContext(ctx, s.q.subscription, id).Scan(r.dest(false)...); err != nil {
			return err
		}
		var err error
		sub, err = r.subscription()
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return billing.Subscription{}, false, nil
	}
	if err != nil {
		return billing.Subscription{}, false, fmt.Errorf("sqlstore: read subscription %s: %w", id, err)
	}
	return sub.sub, true, nil
}

// viewJSON is a [billing.View] in the outbox's before_view and after_view
// columns.
type viewJSON struct {
	Plan              billing.Plan `json:"plan"`
	Access            bool         `json:"access"`
	Status            string       `json:"status,omitempty"`
	RenewsAt          time.Time    `json:"renews_at,omitzero"`
	EndsAt            time.Time    `json:"ends_at,omitzero"`
	TrialEndsAt       time.Time    `json:"trial_ends_at,omitzero"`
	CancelAtPeriodEnd bool         `json:"cancel_at_period_end,omitempty"`
	PaymentProblem    bool         `json:"payment_problem,omitempty"`
	Features          []string     `json:"features,omitempty"`
}

func encodeView(v billing.View) string {
	b, _ := json.Marshal(viewJSON(v)) // strings, booleans and times: cannot fail
	return string(b)
}

func decodeView(s string) (billing.View, error) {
	var w viewJSON
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return billing.View{}, err
	}
	for _, t := range []*time.Time{&w.RenewsAt, &w.EndsAt, &w.TrialEndsAt} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	return billing.View(w), nil
}

// causeJSON is a [billing.Cause] in the outbox's cause column.
type causeJSON struct {
	Kind      billing.CauseKind `json:"kind"`
	EventID   string            `json:"event_id,omitempty"`
	EventType string            `json:"event_type,omitempty"`
}

func encodeCause(c billing.Cause) string {
	b, _ := json.Marshal(causeJSON(c))
	return string(b)
}

func decodeCause(s string) (billing.Cause, error) {
	var w causeJSON
	err := json.Unmarshal([]byte(s), &w)
	return billing.Cause(w), err
}
