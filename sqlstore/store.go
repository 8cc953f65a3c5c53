package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/contafy/billing"
)

// Store is a [billing.UserStore], [billing.SyncStore],
// [billing.FeatureStore], [billing.AccountStore] and [billing.Outbox] in a
// SQL database. It is safe for concurrent use, and several Stores (in one
// process or in many) may share one database: see the package
// documentation for the locking rule. Create it with [New].
type Store struct {
	db       *sql.DB
	dialect  Dialect
	cfg      config
	ownUsers bool
	t        tables
	q        queries
	writes   atomic.Uint64 // for the opportunistic cleanup of event ids
	writeMu  sync.Mutex    // SQLite: one writing transaction at a time

	// SQLite: the prepared statements, by query (see Store.prepare).
	stmtsMu sync.Mutex
	stmts   atomic.Pointer[map[string]*sql.Stmt]
	// PostgreSQL: the combined writes, by shape (see Store.combine).
	combined sync.Map
}

var (
	_ billing.UserStore    = (*Store)(nil)
	_ billing.SyncStore    = (*Store)(nil)
	_ billing.FeatureStore = (*Store)(nil)
	_ billing.AccountStore = (*Store)(nil)
	_ billing.Outbox       = (*Store)(nil)
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

// WithClock sets the store's clock: for event id expiry, and on SQLite
// also for the outbox (the time a change is committed, claim leases and
// retry times; PostgreSQL takes those from the database's now(), one clock
// for every replica). Default: time.Now. For tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// tables are the quoted table and index names.
type tables struct {
	users, subs, events, features, outbox, version string
	subsIdx, eventsIdx, outboxIdx                  string
	uID, uPlan, uCustomer, uSub                    string // quoted users columns; uSub "" if none
}

// queries are the statements, built once in New. Those used as they are
// have the dialect's placeholders; the steps of a write ([Store.write])
// keep ? placeholders, numbered for PostgreSQL when the write runs.
type queries struct {
	user, userByCustomer, checkUsers, userCustomer, lockUser string
	claim, claimLock, lockCustomer, lockFirst, writeLock     string
	readCustomer, account, subscription, customerSubs        string
	schemaVersion, recordVersion                             string
	upsertUser                                               string
	claimChanges, completeChange, releaseChange, pending     string
	cleanupBatch, cleanupAll                                 string

	// Steps of writes, with ? placeholders.
	updateSub, insertSub, setPlanStep, upsertFeatures string
	unlinkOthers, linkUser, insertChange              string
}

// sqlitePrepared returns the statements [Store.prepare] prepares on
// SQLite: every statement the store runs there.
func (q queries) sqlitePrepared() []string {
	return []string{
		q.user, q.userByCustomer, q.userCustomer, q.lockUser, q.claim, q.writeLock,
		q.readCustomer, q.account, q.subscription, q.customerSubs, q.upsertUser,
		q.claimChanges, q.completeChange, q.releaseChange, q.pending, q.cleanupBatch, q.cleanupAll,
		q.updateSub, q.insertSub, q.setPlanStep, q.upsertFeatures, q.unlinkOthers, q.linkUser, q.insertChange,
	}
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

// pgNow is PostgreSQL's clock in unix milliseconds: the transaction's
// start (the statement's, outside a transaction).
const pgNow = "CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)"

func (s *Store) buildQueries() queries {
	t := s.t
	sub := "NULL"
	if t.uSub != "" {
		sub = t.uSub
	}
	userCols := fmt.Sprintf("%s, %s, %s, %s", t.uID, t.uPlan, t.uCustomer, sub)
	forUpdate, forUpdateSkip := "", ""
	if s.dialect == Postgres {
		forUpdate, forUpdateSkip = " FOR UPDATE", " FOR UPDATE OF o SKIP LOCKED"
	}
	setPlan := fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ?", t.users, t.uPlan, t.uCustomer)
	upsert := fmt.Sprintf("INSERT INTO %[1]s (%[2]s, %[3]s, %[4]s) VALUES (?, ?, ?) ON CONFLICT (%[2]s) DO UPDATE SET %[3]s = excluded.%[3]s, %[4]s = excluded.%[4]s",
		t.users, t.uID, t.uPlan, t.uCustomer)
	if t.uSub != "" {
		setPlan = fmt.Sprintf("UPDATE %s SET %s = ?, %s = ? WHERE %s = ?", t.users, t.uPlan, t.uSub, t.uCustomer)
		upsert = fmt.Sprintf("INSERT INTO %[1]s (%[2]s, %[3]s, %[4]s, %[5]s) VALUES (?, ?, ?, ?) ON CONFLICT (%[2]s) DO UPDATE SET %[3]s = excluded.%[3]s, %[4]s = excluded.%[4]s, %[5]s = excluded.%[5]s",
			t.users, t.uID, t.uPlan, t.uCustomer, t.uSub)
	}

	// The rows of the state queries (see stateRow): a kind, then the
	// columns of a subscription; users and features fill some of them,
	// the others are typed NULLs (a UNION's column types are resolved
	// pair by pair on PostgreSQL).
	const (
		nText = "CAST(NULL AS TEXT)"
		nBool = "CAST(NULL AS BOOLEAN)"
		nInt  = "CAST(NULL AS BIGINT)"
	)
	nTimes := strings.Repeat(nInt+", ", 6)
	// A user row: id, customer, subscription, plan, then NULLs.
	userRow := func(a string) string {
		usub := nText
		if t.uSub != "" {
			usub = "CAST(" + a + "." + t.uSub + " AS TEXT)"
		}
		return fmt.Sprintf("CAST(%[1]s.%[2]s AS TEXT), CAST(%[1]s.%[3]s AS TEXT), %[4]s, CAST(%[1]s.%[5]s AS TEXT), %[6]s, %[6]s, %[7]s, %[8]s%[9]s, %[9]s, %[6]s",
			a, t.uID, t.uCustomer, usub, t.uPlan, nText, nBool, nTimes, nInt)
	}
	// A features row: customer, features (in the items column), order key.
	featRow := func(a string) string {
		return fmt.Sprintf("%[1]s.customer_id, %[2]s, %[2]s, %[2]s, %[2]s, %[1]s.features, %[3]s, %[4]s%[1]s.event_created, %[1]s.event_seq, %[1]s.event_id",
			a, nText, nBool, nTimes)
	}
	subRow := func(a string) string {
		return a + "." + strings.ReplaceAll(subCols, ", ", ", "+a+".")
	}
	// The customer's state: the target subscription and the users locked
	// (PostgreSQL), in this order.
	readCustomer := fmt.Sprintf(`WITH t AS (SELECT %[1]s FROM %[2]s WHERE subscription_id = ?%[3]s),
u AS (SELECT * FROM %[4]s WHERE %[5]s = ?%[3]s)
SELECT %[6]d, %[7]s FROM t t
UNION ALL SELECT %[8]d, %[9]s FROM %[2]s s WHERE s.customer_id = ? AND s.subscription_id <> ?
UNION ALL SELECT %[10]d, %[11]s FROM u u
UNION ALL SELECT %[12]d, %[13]s FROM %[14]s f WHERE f.customer_id = ?`,
		subCols, t.subs, forUpdate, t.users, t.uCustomer,
		kindTarget, subRow("t"),
		kindSub, subRow("s"),
		kindUser, userRow("u"),
		kindFeatures, featRow("f"), t.features)
	account := fmt.Sprintf(`SELECT %[1]d, %[2]s FROM %[3]s u WHERE u.%[4]s = ?
UNION ALL SELECT %[5]d, %[6]s FROM %[7]s s JOIN %[3]s u ON s.customer_id = u.%[8]s WHERE u.%[4]s = ?
UNION ALL SELECT %[9]d, %[10]s FROM %[11]s f JOIN %[3]s u ON f.customer_id = u.%[8]s WHERE u.%[4]s = ?`,
		kindUser, userRow("u"), t.users, t.uID,
		kindSub, subRow("s"), t.subs, t.uCustomer,
		kindFeatures, featRow("f"), t.features)

	// The outbox's clock: the database's on PostgreSQL, the store's (a
	// parameter, the first of the statement) on SQLite.
	clock := "WITH clock (now_ms) AS (SELECT " + pgNow + ")\n"
	changeValues := "(?, ?, ?, ?, " + pgNow + ")"
	if s.dialect == SQLite {
		clock = "WITH clock (now_ms) AS (SELECT CAST(? AS BIGINT))\n"
		changeValues = "(?, ?, ?, ?, ?)"
	}
	claim := fmt.Sprintf(`INSERT INTO %[1]s (event_id, expires_at) VALUES (?, ?)
ON CONFLICT (event_id) DO UPDATE SET expires_at = excluded.expires_at WHERE %[1]s.expires_at < ?`, t.events)
	changeCols := "change_seq, user_id, before_view, after_view, cause, committed_at, attempts"

	q := queries{
		user:           fmt.Sprintf("SELECT %s FROM %s WHERE %s = ?", userCols, t.users, t.uID),
		userByCustomer: fmt.Sprintf("SELECT %s FROM %s WHERE %s = ? ORDER BY %s LIMIT 1", userCols, t.users, t.uCustomer, t.uID),
		checkUsers:     fmt.Sprintf("SELECT %s FROM %s WHERE 1 = 0", userCols, t.users),
		userCustomer:   fmt.Sprintf("SELECT %s FROM %s WHERE %s = ?", t.uCustomer, t.users, t.uID),
		lockUser:       fmt.Sprintf("SELECT %s FROM %s WHERE %s = ?%s", userCols, t.users, t.uID, forUpdate),
		claim:          claim,
		claimLock:      "WITH c AS (" + claim + " RETURNING event_id) SELECT c.event_id, CAST(pg_advisory_xact_lock(?, ?) AS TEXT) FROM c",
		lockCustomer:   "SELECT pg_advisory_xact_lock(?, ?)",
		lockFirst:      "SELECT pg_advisory_xact_lock(?, ?)",
		writeLock:      fmt.Sprintf("UPDATE %s SET applied_at = applied_at WHERE version = 0", t.version),
		readCustomer:   readCustomer,
		account:        account,
		subscription:   fmt.Sprintf("SELECT %s FROM %s WHERE subscription_id = ?", subCols, t.subs),
		customerSubs:   fmt.Sprintf("SELECT subscription_id, plan FROM %s WHERE customer_id = ?", t.subs),
		schemaVersion:  fmt.Sprintf("SELECT COALESCE(MAX(version), 0) FROM %s", t.version),
		recordVersion:  fmt.Sprintf("INSERT INTO %s (version, applied_at) VALUES (?, ?)", t.version),
		upsertUser:     upsert,
		claimChanges: clock + fmt.Sprintf(`UPDATE %[1]s SET claim_token = ?, claimed_until = (SELECT now_ms FROM clock) + ?, attempts = attempts + 1
WHERE change_seq IN (SELECT o.change_seq FROM %[1]s o, clock
    WHERE (o.claimed_until IS NULL OR o.claimed_until <= clock.now_ms) AND o.retry_at <= clock.now_ms
      AND NOT EXISTS (SELECT 1 FROM %[1]s p WHERE p.user_id = o.user_id AND p.change_seq < o.change_seq)
    ORDER BY o.change_seq LIMIT ?%[2]s)
RETURNING %[3]s`, t.outbox, forUpdateSkip, changeCols),
		completeChange: fmt.Sprintf("DELETE FROM %s WHERE change_seq = ? AND claim_token = ?", t.outbox),
		releaseChange: clock + fmt.Sprintf(`UPDATE %s SET claim_token = NULL, claimed_until = NULL, retry_at = (SELECT now_ms FROM clock) + ?
WHERE change_seq = ? AND claim_token = ?`, t.outbox),
		pending:      fmt.Sprintf("SELECT %s FROM %s ORDER BY change_seq", changeCols, t.outbox),
		cleanupBatch: fmt.Sprintf("DELETE FROM %[1]s WHERE event_id IN (SELECT event_id FROM %[1]s WHERE expires_at < ? LIMIT 1000)", t.events),
		cleanupAll:   fmt.Sprintf("DELETE FROM %s WHERE expires_at < ?", t.events),

		updateSub: fmt.Sprintf(`UPDATE %s SET customer_id = ?, status = ?, plan = ?, price_id = ?, items = ?, cancel_at_period_end = ?,
cancel_at = ?, canceled_at = ?, ended_at = ?, current_period_start = ?, current_period_end = ?, trial_end = ?,
event_created = ?, event_seq = ?, event_id = ?, updated_at = ? WHERE subscription_id = ?`, t.subs),
		insertSub: fmt.Sprintf(`INSERT INTO %s (%s, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.subs, subCols),
		setPlanStep: setPlan,
		upsertFeatures: fmt.Sprintf(`INSERT INTO %s (customer_id, features, event_created, event_seq, event_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (customer_id) DO UPDATE SET features = excluded.features, event_created = excluded.event_created,
event_seq = excluded.event_seq, event_id = excluded.event_id, updated_at = excluded.updated_at`, t.features),
		unlinkOthers: fmt.Sprintf("UPDATE %s SET %s = NULL WHERE %s = ? AND %s <> ?", t.users, t.uCustomer, t.uCustomer, t.uID),
		linkUser:     fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ?", t.users, t.uCustomer, t.uID),
		insertChange: fmt.Sprintf("INSERT INTO %s (user_id, before_view, after_view, cause, committed_at) VALUES %s", t.outbox, changeValues),
	}
	if s.dialect == Postgres {
		// The steps keep ?: they are numbered when they run, alone or
		// combined (Store.combine).
		for _, p := range []*string{&q.claimLock, &q.lockFirst, &q.user, &q.userByCustomer, &q.userCustomer, &q.lockUser, &q.lockCustomer,
			&q.readCustomer, &q.account, &q.subscription, &q.customerSubs, &q.recordVersion,
			&q.claimChanges, &q.completeChange, &q.releaseChange, &q.cleanupBatch, &q.cleanupAll} {
			*p = numbered(*p)
		}
	}
	return q
}

// numbered turns the ? placeholders of query into PostgreSQL's $1, $2, ...
// (the statements hold no other question mark); a query without any is
// returned as it is.
func numbered(query string) string {
	if strings.IndexByte(query, '?') < 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
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
		u, err = scanUser(s.reader(ctx).QueryRowContext(ctx, query, key))
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

// PutUser adds or replaces a user, for seeding (tests, demos, an app's
// sign-up). A non-empty StripeCustomerID links that customer to the user
// (unlinking any other user from it) and, when the store holds
// subscriptions of that customer, the user's plan and subscription id are
// derived from them in the same transaction, as the [billing.SyncStore]
// contract says, not taken from u: seeding the same users at every start,
// from any replica, never resets a synced plan. Otherwise plan and
// subscription id are stored as given. It records no
// [billing.PlanChange]. With [WithUsersTable], the table's other columns
// need defaults for a new user.
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
		return s.inTx(ctx, nil, func(q querier, _ int64) ([]stmt, bool, error) {
			if u.StripeCustomerID == "" {
				return []stmt{{s.q.upsertUser, args}}, true, nil
			}
			if err := s.lockCustomers(ctx, q, u.StripeCustomerID); err != nil {
				return nil, false, err
			}
			if _, err := s.exec(ctx, q, stmt{s.q.unlinkOthers, []any{u.StripeCustomerID, u.ID}}); err != nil {
				return nil, false, err
			}
			if _, err := s.exec(ctx, q, stmt{s.q.upsertUser, args}); err != nil {
				return nil, false, err
			}
			final, err := s.recompute(ctx, q, u.StripeCustomerID)
			return final, err == nil, err
		})
	})
	if err != nil {
		return fmt.Errorf("sqlstore: put user %s: %w", u.ID, err)
	}
	return nil
}

// recompute returns the write that sets the plan (and subscription) of the
// user linked to customerID to the highest plan among the customer's
// stored subscriptions (the highest subscription id among equals), if it
// has any. The caller holds the customer's lock.
func (s *Store) recompute(ctx context.Context, q querier, customerID string) ([]stmt, error) {
	rows, err := q.QueryContext(ctx, s.q.customerSubs, customerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var subs []billing.Subscription
	for rows.Next() {
		var id, plan string
		if err := rows.Scan(&id, &plan); err != nil {
			return nil, err
		}
		subs = append(subs, billing.Subscription{ID: id, Plan: billing.Plan(plan)})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	b := best(subs)
	if b == nil {
		return nil, nil
	}
	return []stmt{s.setPlan(billing.User{Plan: b.Plan, SubscriptionID: b.ID}, customerID)}, nil
}

// Cleanup deletes every expired event id and returns how many it deleted.
// The store already does this in small batches as it writes (see
// [WithCleanupEvery]); call Cleanup from the application's own schedule if
// that is disabled or writes are rare.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	var n int64
	err := s.retry(ctx, func() error {
		res, err := s.reader(ctx).ExecContext(ctx, s.q.cleanupAll, s.cfg.now().UnixMilli())
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
	_, _ = s.reader(ctx).ExecContext(ctx, s.q.cleanupBatch, s.cfg.now().UnixMilli())
}
