package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contafy/billing"
)

// Store is a [billing.UserStore] and [billing.SyncStore] in a SQL database.
// It is safe for concurrent use, and several Stores (in one process or in
// many) may share one database: see the package documentation for the
// locking rule. Create it with [New].
type Store struct {
	db       *sql.DB
	dialect  Dialect
	cfg      config
	ownUsers bool
	t        tables
	q        queries
	writes   atomic.Uint64 // for the opportunistic cleanup of event ids
	writeMu  sync.Mutex    // SQLite: one writing transaction at a time
}

var (
	_ billing.UserStore = (*Store)(nil)
	_ billing.SyncStore = (*Store)(nil)
)

type config struct {
	prefix       string
	users        UsersTable
	cleanupEvery int
	retries      int
	busyTimeout  time.Duration
	lockSpace    int32
	now          func() time.Time
}

// An Option configures a [Store] in [New].
type Option func(*config)

// WithTablePrefix sets the prefix of the store's table and index names.
// Default: "billing_" (tables billing_users, billing_subscriptions,
// billing_events, billing_features, billing_outbox and
// billing_schema_version). It must be letters, digits and underscores.
func WithTablePrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithUsersTable makes the store read and write users in the application's
// own table instead of keeping its own billing_users table. [Store.Migrate]
// then leaves that table alone and only checks that it has the columns.
// Default: the store's own table, keyed by the application's user id.
func WithUsersTable(t UsersTable) Option {
	return func(c *config) { c.users = t }
}

// WithCleanupEvery makes one in every n writes of a Store also delete a
// batch of expired event ids (at most 1,000), after its own transaction.
// Default: 500. Zero or less disables it; the application then calls
// [Store.Cleanup] itself.
func WithCleanupEvery(n int) Option {
	return func(c *config) { c.cleanupEvery = n }
}

// WithRetries sets how many times a write that failed with a PostgreSQL
// deadlock or serialization failure is tried again. Default: 10.
func WithRetries(n int) Option {
	return func(c *config) { c.retries = max(n, 0) }
}

// WithBusyTimeout sets how long a write that SQLite refuses with
// "database is locked" is tried again, with backoff. Default: 10s. A
// busy_timeout set on the connection makes SQLite itself wait first.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithLockSpace sets the first key of the PostgreSQL advisory locks the
// store takes (pg_advisory_xact_lock(space, hash of the customer id)), in
// case the application uses two-key advisory locks with the same first key.
// Default: 0x62696c6c ("bill").
func WithLockSpace(space int32) Option {
	return func(c *config) { c.lockSpace = space }
}

// WithClock sets the clock used for event id expiry. Default: time.Now.
// For tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// tables are the quoted table and index names.
type tables struct {
	users, subs, events, features, outbox, version string
	subsIdx, eventsIdx, outboxIdx                  string
	uID, uPlan, uCustomer, uSub                    string // quoted users columns; uSub "" if none
}

// queries are the statements, built once in New in the dialect's
// placeholder style.
type queries struct {
	user, userByCustomer, checkUsers string
	claim                            string
	lockCustomer                     string
	selectSub, insertSub, updateSub  string
	customerSubs, setPlan            string
	lockUser, unlinkOthers, linkUser string
	upsertUser                       string
	subscription                     string
	cleanupBatch, cleanupAll         string
	schemaVersion, recordVersion     string
}

// New returns a Store on db, whose engine is d. It checks the options but
// does not touch the database: call [Store.Migrate] (or run [Store.Schema]
// yourself) before use.
func New(db *sql.DB, d Dialect, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New: db is nil; open it with your driver (sql.Open) and pass it in")
	}
	if d != Postgres && d != SQLite {
		return nil, fmt.Errorf("sqlstore: New: unknown dialect %v; use sqlstore.Postgres or sqlstore.SQLite", d)
	}
	cfg := config{
		prefix:       "billing_",
		cleanupEvery: 500,
		retries:      10,
		busyTimeout:  10 * time.Second,
		lockSpace:    0x62696c6c,
		now:          time.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	s := &Store{db: db, dialect: d, cfg: cfg}
	if cfg.prefix != "" && !identRE.MatchString(cfg.prefix) {
		return nil, fmt.Errorf("sqlstore: New: table prefix %q must be letters, digits and _", cfg.prefix)
	}
	var err error
	name := func(n string) string {
		var q string
		if err == nil {
			q, err = quoteIdent(d, n)
		}
		return q
	}
	if cfg.users == (UsersTable{}) {
		s.ownUsers = true
		u := ownUsers
		u.Name = cfg.prefix + u.Name
		s.cfg.users = u
	} else {
		u := cfg.users
		if u.Name == "" || u.ID == "" || u.Plan == "" || u.CustomerID == "" {
			return nil, errors.New("sqlstore: New: WithUsersTable needs Name, ID, Plan and CustomerID")
		}
	}
	u := s.cfg.users
	s.t = tables{
		users:     name(u.Name),
		subs:      name(cfg.prefix + "subscriptions"),
		events:    name(cfg.prefix + "events"),
		features:  name(cfg.prefix + "features"),
		outbox:    name(cfg.prefix + "outbox"),
		version:   name(cfg.prefix + "schema_version"),
		subsIdx:   name(cfg.prefix + "subscriptions_customer_id_idx"),
		eventsIdx: name(cfg.prefix + "events_expires_at_idx"),
		outboxIdx: name(cfg.prefix + "outbox_user_id_idx"),
		uID:       name(u.ID),
		uPlan:     name(u.Plan),
		uCustomer: name(u.CustomerID),
	}
	if u.SubscriptionID != "" {
		s.t.uSub = name(u.SubscriptionID)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: New: %w", err)
	}
	s.q = s.buildQueries()
	return s, nil
}

func (s *Store) buildQueries() queries {
	t := s.t
	sub := "NULL"
	if t.uSub != "" {
		sub = t.uSub
	}
	userCols := fmt.Sprintf("%s, %s, %s, %s", t.uID, t.uPlan, t.uCustomer, sub)
	forUpdate := ""
	if s.dialect == Postgres {
		forUpdate = " FOR UPDATE"
	}
	setPlan := fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ?", t.users, t.uPlan, t.uCustomer)
	upsert := fmt.Sprintf("INSERT INTO %[1]s (%[2]s, %[3]s, %[4]s) VALUES (?, ?, ?) ON CONFLICT (%[2]s) DO UPDATE SET %[3]s = excluded.%[3]s, %[4]s = excluded.%[4]s",
		t.users, t.uID, t.uPlan, t.uCustomer)
	if t.uSub != "" {
		setPlan = fmt.Sprintf("UPDATE %s SET %s = ?, %s = ? WHERE %s = ?", t.users, t.uPlan, t.uSub, t.uCustomer)
		upsert = fmt.Sprintf("INSERT INTO %[1]s (%[2]s, %[3]s, %[4]s, %[5]s) VALUES (?, ?, ?, ?) ON CONFLICT (%[2]s) DO UPDATE SET %[3]s = excluded.%[3]s, %[4]s = excluded.%[4]s, %[5]s = excluded.%[5]s",
			t.users, t.uID, t.uPlan, t.uCustomer, t.uSub)
	}
	q := queries{
		user:           fmt.Sprintf("SELECT %s FROM %s WHERE %s = ?", userCols, t.users, t.uID),
		userByCustomer: fmt.Sprintf("SELECT %s FROM %s WHERE %s = ? ORDER BY %s LIMIT 1", userCols, t.users, t.uCustomer, t.uID),
		checkUsers:     fmt.Sprintf("SELECT %s FROM %s WHERE 1 = 0", userCols, t.users),
		claim: fmt.Sprintf(`INSERT INTO %[1]s (event_id, expires_at) VALUES (?, ?)
ON CONFLICT (event_id) DO UPDATE SET expires_at = excluded.expires_at WHERE %[1]s.expires_at < ?
RETURNING event_id`, t.events),
		lockCustomer: "SELECT pg_advisory_xact_lock(?, ?)",
		selectSub: fmt.Sprintf("SELECT customer_id, status, event_created, event_seq, event_id FROM %s WHERE subscription_id = ?%s",
			t.subs, forUpdate),
		insertSub: fmt.Sprintf(`INSERT INTO %s (subscription_id, customer_id, status, plan, price_id, event_created, event_seq, event_id, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (subscription_id) DO NOTHING`, t.subs),
		updateSub: fmt.Sprintf(`UPDATE %s SET customer_id = ?, status = ?, plan = ?, price_id = ?, event_created = ?, event_seq = ?, event_id = ?, updated_at = ?
WHERE subscription_id = ?`, t.subs),
		customerSubs: fmt.Sprintf("SELECT subscription_id, plan FROM %s WHERE customer_id = ?", t.subs),
		setPlan:      setPlan,
		lockUser:     fmt.Sprintf("SELECT %s FROM %s WHERE %s = ?%s", t.uCustomer, t.users, t.uID, forUpdate),
		unlinkOthers: fmt.Sprintf("UPDATE %s SET %s = NULL WHERE %s = ? AND %s <> ?", t.users, t.uCustomer, t.uCustomer, t.uID),
		linkUser:     fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ?", t.users, t.uCustomer, t.uID),
		upsertUser:   upsert,
		subscription: fmt.Sprintf("SELECT customer_id, status, plan, price_id FROM %s WHERE subscription_id = ?", t.subs),
		cleanupBatch: fmt.Sprintf("DELETE FROM %[1]s WHERE event_id IN (SELECT event_id FROM %[1]s WHERE expires_at < ? LIMIT 1000)", t.events),
		cleanupAll:   fmt.Sprintf("DELETE FROM %s WHERE expires_at < ?", t.events),

		schemaVersion: fmt.Sprintf("SELECT COALESCE(MAX(version), 0) FROM %s", t.version),
		recordVersion: fmt.Sprintf("INSERT INTO %s (version, applied_at) VALUES (?, ?)", t.version),
	}
	if s.dialect == Postgres {
		for _, p := range []*string{&q.user, &q.userByCustomer, &q.claim, &q.lockCustomer, &q.selectSub, &q.insertSub, &q.updateSub,
			&q.customerSubs, &q.setPlan, &q.lockUser, &q.unlinkOthers, &q.linkUser, &q.upsertUser, &q.subscription,
			&q.cleanupBatch, &q.cleanupAll, &q.recordVersion} {
			*p = numbered(*p)
		}
	}
	return q
}

// numbered turns the ? placeholders of query into PostgreSQL's $1, $2, ...
// (the statements hold no other question mark).
func numbered(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Dialect returns the dialect the store was created with.
func (s *Store) Dialect() Dialect { return s.dialect }

// scanUser reads a row of the user columns.
func scanUser(row interface{ Scan(...any) error }) (billing.User, error) {
	var (
		id              string
		plan, cus, subs sql.NullString
	)
	if err := row.Scan(&id, &plan, &cus, &subs); err != nil {
		return billing.User{}, err
	}
	u := billing.User{ID: id, Plan: billing.Plan(plan.String), StripeCustomerID: cus.String, SubscriptionID: subs.String}
	if !plan.Valid {
		u.Plan = billing.Free
	}
	return u, nil
}

// User implements [billing.UserStore]: the user with the given id;
// found=false and a nil error if there is none.
func (s *Store) User(ctx context.Context, id string) (billing.User, bool, error) {
	return s.userBy(ctx, s.q.user, id)
}

// UserByCustomer implements [billing.SyncStore]: the user linked to a
// Stripe customer id; found=false and a nil error if none is.
func (s *Store) UserByCustomer(ctx context.Context, customerID string) (billing.User, bool, error) {
	if customerID == "" {
		return billing.User{}, false, ctx.Err()
	}
	return s.userBy(ctx, s.q.userByCustomer, customerID)
}

func (s *Store) userBy(ctx context.Context, query, key string) (billing.User, bool, error) {
	var (
		u     billing.User
		found bool
	)
	err := s.retry(ctx, func() error {
		var err error
		u, err = scanUser(s.db.QueryRowContext(ctx, query, key))
		if errors.Is(err, sql.ErrNoRows) || s.notAKey(err) {
			found = false
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return billing.User{}, false, fmt.Errorf("sqlstore: read user: %w", err)
	}
	return u, found, nil
}

// notAKey reports whether err says that a user id cannot be a key of the
// users table (PostgreSQL: "abc" for an integer column, SQLSTATE 22P02 or
// 22003): such a user does not exist.
func (s *Store) notAKey(err error) bool {
	if err == nil || s.dialect != Postgres {
		return false
	}
	var e interface{ SQLState() string }
	return errors.As(err, &e) && (e.SQLState() == "22P02" || e.SQLState() == "22003")
}

// Subscription returns the stored state of a subscription; found=false and
// a nil error if the store has none. For diagnostics and tests.
func (s *Store) Subscription(ctx context.Context, id string) (billing.Subscription, bool, error) {
	sub := billing.Subscription{ID: id}
	var plan string
	err := s.retry(ctx, func() error {
		return s.db.QueryRowContext(ctx, s.q.subscription, id).Scan(&sub.CustomerID, &sub.Status, &plan, &sub.PriceID)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return billing.Subscription{}, false, nil
	}
	if err != nil {
		return billing.Subscription{}, false, fmt.Errorf("sqlstore: read subscription %s: %w", id, err)
	}
	sub.Plan = billing.Plan(plan)
	return sub, true, nil
}

// storedSub is the locked row of a subscription: what the order check needs.
type storedSub struct {
	customer, status string
	created, seq     int64
	eventID          string
}

func (o storedSub) terminal() bool {
	return billing.Subscription{Status: o.status}.Terminal()
}

// ApplySubscription implements [billing.SyncStore]: it applies c in one
// transaction, with the outcomes and the order rule of the interface's
// documentation (see the package documentation for the locking). retain is
// how long the event id is remembered. A returned error means nothing was
// written.
func (s *Store) ApplySubscription(ctx context.Context, c billing.SubscriptionChange, retain time.Duration) (billing.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if c.Subscription.ID == "" || c.Subscription.CustomerID == "" {
		return "", errors.New("sqlstore: ApplySubscription: subscription id and customer id are required")
	}
	var out billing.Outcome
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, func(q querier) (bool, error) {
			var err error
			out, err = s.apply(ctx, q, c, retain)
			return err == nil && out != billing.Duplicate && out != billing.Tie, err
		})
	})
	if err != nil {
		return "", fmt.Errorf("sqlstore: apply subscription %s (event %q): %w", c.Subscription.ID, c.EventID, err)
	}
	s.wrote(ctx)
	return out, nil
}

// apply is the body of ApplySubscription's transaction. Its result decides
// the commit: Applied and Stale commit, Duplicate and Tie roll back.
func (s *Store) apply(ctx context.Context, q querier, c billing.SubscriptionChange, retain time.Duration) (billing.Outcome, error) {
	now := s.cfg.now()
	// 1. Claim the event id. A concurrent claim of the same id waits for
	// the other transaction: if it commits we see a conflict (Duplicate),
	// if it rolls back (a Tie, an error) we get the id.
	if c.EventID != "" {
		var got string
		err := q.QueryRowContext(ctx, s.q.claim, c.EventID, now.Add(retain).UnixMilli(), now.UnixMilli()).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			return billing.Duplicate, nil
		}
		if err != nil {
			return "", err
		}
	}
	// 2. Serialize the writers of this customer.
	if err := s.lockCustomer(ctx, q, c.Subscription.CustomerID); err != nil {
		return "", err
	}
	// 3. The subscription's row, locked.
	created := c.Created.Unix()
	var old storedSub
	err := q.QueryRowContext(ctx, s.q.selectSub, c.Subscription.ID).Scan(&old.customer, &old.status, &old.created, &old.seq, &old.eventID)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if exists {
		switch {
		case old.terminal() && !(c.Subscription.Terminal() && newer(created, c.Seq, old.created, old.seq)):
			return billing.Stale, nil
		case created == old.created && c.Seq <= old.seq && c.EventID != old.eventID:
			return billing.Tie, nil
		case !newer(created, c.Seq, old.created, old.seq):
			return billing.Stale, nil
		}
	}
	// 4. Write it.
	sub := c.Subscription
	if exists {
		if _, err := q.ExecContext(ctx, s.q.updateSub, sub.CustomerID, sub.Status, string(sub.Plan), sub.PriceID, created, c.Seq, c.EventID, now.UnixMilli(), sub.ID); err != nil {
			return "", err
		}
	} else {
		res, err := q.ExecContext(ctx, s.q.insertSub, sub.ID, sub.CustomerID, sub.Status, string(sub.Plan), sub.PriceID, created, c.Seq, c.EventID, now.UnixMilli())
		if err != nil {
			return "", err
		}
		if n, err := res.RowsAffected(); err != nil {
			return "", err
		} else if n == 0 {
			// Another transaction inserted it after our read (possible
			// only if it came with another customer id): start over.
			return "", errRetry
		}
	}
	// 5. The plan of the user linked to the customer, in the same
	// transaction.
	if err := s.recompute(ctx, q, sub.CustomerID); err != nil {
		return "", err
	}
	return billing.Applied, nil
}

// newer reports whether (c1, s1) > (c2, s2) lexicographically.
func newer(c1, s1, c2, s2 int64) bool {
	return c1 > c2 || (c1 == c2 && s1 > s2)
}

// lockCustomer takes the transaction-scoped lock of a customer id
// (PostgreSQL; SQLite's transaction already holds the write lock).
func (s *Store) lockCustomer(ctx context.Context, q querier, customerID string) error {
	if s.dialect != Postgres {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(customerID))
	_, err := q.ExecContext(ctx, s.q.lockCustomer, s.cfg.lockSpace, int32(h.Sum32()))
	return err
}

// planRank orders plans: FREE (and anything unknown) < BASIC < PRO.
func planRank(p billing.Plan) int {
	switch p {
	case billing.Basic:
		return 1
	case billing.Pro:
		return 2
	}
	return 0
}

// recompute sets the plan (and subscription) of the user linked to
// customerID to the highest plan among the customer's stored subscriptions
// (the highest subscription id among equals), if it has any. The caller
// holds the customer's lock.
func (s *Store) recompute(ctx context.Context, q querier, customerID string) error {
	rows, err := q.QueryContext(ctx, s.q.customerSubs, customerID)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		best, bestID string
		seen         bool
	)
	for rows.Next() {
		var id, plan string
		if err := rows.Scan(&id, &plan); err != nil {
			return err
		}
		r, br := planRank(billing.Plan(plan)), planRank(billing.Plan(best))
		if !seen || r > br || (r == br && id > bestID) {
			best, bestID, seen = plan, id, true
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	if !seen {
		return nil
	}
	if s.t.uSub != "" {
		_, err = q.ExecContext(ctx, s.q.setPlan, best, bestID, customerID)
	} else {
		_, err = q.ExecContext(ctx, s.q.setPlan, best, customerID)
	}
	return err
}

// LinkCustomer implements [billing.SyncStore]: it links the Stripe
// customer to the user and sets the user's plan from the customer's stored
// subscriptions, if any, in one transaction. A user previously linked to
// the customer is unlinked (its customer id set to NULL; its plan is left
// alone). Linking the same pair again changes nothing. An unknown user
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
		return s.inTx(ctx, func(q querier) (bool, error) {
			found = false
			if err := s.lockCustomer(ctx, q, customerID); err != nil {
				return false, err
			}
			var current sql.NullString
			err := q.QueryRowContext(ctx, s.q.lockUser, userID).Scan(&current)
			if errors.Is(err, sql.ErrNoRows) || s.notAKey(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			found = true
			if current.String != customerID {
				if _, err := q.ExecContext(ctx, s.q.unlinkOthers, customerID, userID); err != nil {
					return false, err
				}
				if _, err := q.ExecContext(ctx, s.q.linkUser, customerID, userID); err != nil {
					return false, err
				}
			}
			return true, s.recompute(ctx, q, customerID)
		})
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: link customer %s to user %s: %w", customerID, userID, err)
	}
	s.wrote(ctx)
	return found, nil
}

// PutUser adds or replaces a user, for seeding (tests, demos, an app's
// sign-up). A non-empty StripeCustomerID links that customer to the user
// (unlinking any other user from it) and, when the store holds
// subscriptions of that customer, the user's plan and subscription id are
// derived from them in the same transaction, as the [billing.SyncStore]
// contract says, not taken from u: seeding the same users at every start,
// from any replica, never resets a synced plan. Otherwise plan and
// subscription id are stored as given. With [WithUsersTable], the table's
// other columns need defaults for a new user.
func (s *Store) PutUser(ctx context.Context, u billing.User) error {
	if u.ID == "" {
		return errors.New("sqlstore: PutUser: user id is required")
	}
	nullable := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	args := []any{u.ID, string(u.Plan), nullable(u.StripeCustomerID)}
	if s.t.uSub != "" {
		args = append(args, nullable(u.SubscriptionID))
	}
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, func(q querier) (bool, error) {
			if u.StripeCustomerID != "" {
				if err := s.lockCustomer(ctx, q, u.StripeCustomerID); err != nil {
					return false, err
				}
				if _, err := q.ExecContext(ctx, s.q.unlinkOthers, u.StripeCustomerID, u.ID); err != nil {
					return false, err
				}
			}
			if _, err := q.ExecContext(ctx, s.q.upsertUser, args...); err != nil {
				return false, err
			}
			if u.StripeCustomerID != "" {
				if err := s.recompute(ctx, q, u.StripeCustomerID); err != nil {
					return false, err
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("sqlstore: put user %s: %w", u.ID, err)
	}
	return nil
}

// Cleanup deletes every expired event id and returns how many it deleted.
// The store already does this in small batches as it writes (see
// [WithCleanupEvery]); call Cleanup from the application's own schedule if
// that is disabled or writes are rare.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	var n int64
	err := s.retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, s.q.cleanupAll, s.cfg.now().UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: cleanup of expired event ids: %w", err)
	}
	return n, nil
}

// wrote counts a committed write and, every cleanupEvery writes, deletes a
// batch of expired event ids. Its failure is ignored: the next batch or
// Cleanup deletes them.
func (s *Store) wrote(ctx context.Context) {
	if s.cfg.cleanupEvery <= 0 || s.writes.Add(1)%uint64(s.cfg.cleanupEvery) != 0 {
		return
	}
	_, _ = s.db.ExecContext(ctx, s.q.cleanupBatch, s.cfg.now().UnixMilli())
}
