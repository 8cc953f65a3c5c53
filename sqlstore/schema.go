package sqlstore

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// Dialect is the SQL engine behind the *sql.DB given to [New].
type Dialect int

// The supported dialects.
const (
	// Postgres is PostgreSQL 12 or later (ON CONFLICT, advisory locks).
	Postgres Dialect = iota + 1
	// SQLite is SQLite 3.35 or later (upserts and RETURNING).
	SQLite
)

// String returns the dialect's name: "postgres" or "sqlite".
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case SQLite:
		return "sqlite"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// DialectOf returns the dialect of a data source name as an application's
// -db flag or DATABASE_URL carries it: [Postgres] for a postgres:// or
// postgresql:// URL or a key=value string with host=, dbname= or user=,
// [SQLite] for anything else (a file path, a file: URI, ":memory:").
func DialectOf(dsn string) Dialect {
	l := strings.ToLower(strings.TrimSpace(dsn))
	if strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://") {
		return Postgres
	}
	for _, k := range []string{"host=", "dbname=", "user="} {
		if strings.HasPrefix(l, k) || strings.Contains(l, " "+k) {
			return Postgres
		}
	}
	return SQLite
}

// UsersTable describes the application's own users table, for
// [WithUsersTable]. The store reads and writes only these columns; other
// columns of the table are left alone (they need defaults if the store is to
// insert users with [Store.PutUser]).
type UsersTable struct {
	// Name is the table, optionally schema-qualified ("users",
	// "app.users"). Required.
	Name string
	// ID is the primary key column: the user id as the application's
	// authenticator returns it (a text or integer column). Required.
	ID string
	// Plan is a text column holding FREE, BASIC or PRO. Required.
	Plan string
	// CustomerID is a nullable text column holding the Stripe customer id
	// (cus_...); index it, the webhook sync looks users up by it. Required.
	CustomerID string
	// SubscriptionID is a nullable text column for the Stripe subscription
	// the plan comes from. Optional: empty means the table has none, and
	// users read from it have an empty SubscriptionID.
	SubscriptionID string
}

// ownUsers is the users table the store keeps itself (without a prefix).
var ownUsers = UsersTable{
	Name:           "users",
	ID:             "user_id",
	Plan:           "plan",
	CustomerID:     "stripe_customer_id",
	SubscriptionID: "subscription_id",
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// quoteIdent returns name (optionally schema.name) as a quoted SQL
// identifier, or an error if it is not a plain identifier. SQLite gets
// backquotes: a double-quoted name that matches no column would be read as
// a string literal there.
func quoteIdent(d Dialect, name string) (string, error) {
	q := `"`
	if d == SQLite {
		q = "`"
	}
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("sqlstore: %q is not a valid table or column name (want name or schema.name of letters, digits and _)", name)
	}
	for i, p := range parts {
		if !identRE.MatchString(p) {
			return "", fmt.Errorf("sqlstore: %q is not a valid table or column name (want name or schema.name of letters, digits and _)", name)
		}
		parts[i] = q + p + q
	}
	return strings.Join(parts, "."), nil
}

// Schema returns the SQL statements that create the store's tables and
// indexes in an empty database, each ending with a semicolon, in the
// store's dialect and with its table names: what [Store.Migrate] runs
// there, for teams that run their migrations themselves. The statements
// come in the schema's versions, each under a comment naming it, and end
// with the rows of the schema version table that Migrate reads: a database
// made by an earlier version's schema is upgraded by the statements of the
// later versions and their version rows (or by Migrate). With
// [WithUsersTable] it does not create the users table; a comment names the
// columns the store needs in it.
func (s *Store) Schema() string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- github.com/contafy/billing/sqlstore schema (%s), version %d\n", s.dialect, len(s.migrations()))
	if !s.ownUsers {
		u := s.cfg.users
		fmt.Fprintf(&b, "-- Users are the application's table %s: the store reads and writes its columns\n", s.t.users)
		fmt.Fprintf(&b, "-- %s (key), %s (text: FREE, BASIC, PRO), %s (text, nullable, indexed)", u.ID, u.Plan, u.CustomerID)
		if u.SubscriptionID != "" {
			fmt.Fprintf(&b, ", %s (text, nullable)", u.SubscriptionID)
		}
		b.WriteString(".\n")
	}
	for _, m := range s.migrations() {
		fmt.Fprintf(&b, "-- version %d: %s\n", m.version, m.what)
		for _, st := range m.statements {
			b.WriteString(st)
			b.WriteString(";\n")
		}
	}
	b.WriteString("-- the schema version, which Migrate reads\n")
	b.WriteString(s.versionTable())
	b.WriteString(";\n")
	fmt.Fprintf(&b, "INSERT INTO %s (version, applied_at) VALUES ", s.t.version)
	for i, m := range s.migrations() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d, 0)", m.version)
	}
	b.WriteString(" ON CONFLICT (version) DO NOTHING;\n")
	return b.String()
}

// migration is one version of the schema: the statements that take a
// database of the previous version to it.
type migration struct {
	version    int
	what       string
	statements []string
}

// migrations returns the schema's versions in order. A version's
// statements never change once released: a change of the schema is a new
// version.
func (s *Store) migrations() []migration {
	return []migration{
		{1, "users, subscriptions, processed event ids", s.schemaV1()},
		{2, "lifecycle facts and items of subscriptions, customers' features, the plan-change outbox", s.schemaV2()},
	}
}

// versionTable is the statement creating the table of applied versions.
func (s *Store) versionTable() string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
    version    INTEGER PRIMARY KEY,
    applied_at BIGINT NOT NULL                  -- unix milliseconds, 0 when applied by hand
)`, s.t.version)
}

// schemaV1 is the schema of the first release: every statement creates a
// table or an index if it does not exist.
func (s *Store) schemaV1() []string {
	var st []string
	if s.ownUsers {
		st = append(st, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
    user_id            TEXT PRIMARY KEY,
    plan               TEXT NOT NULL DEFAULT 'FREE',
    stripe_customer_id TEXT UNIQUE,
    subscription_id    TEXT
)`, s.t.users))
	}
	st = append(st,
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
    subscription_id TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    status          TEXT NOT NULL,
    plan            TEXT NOT NULL,
    price_id        TEXT NOT NULL DEFAULT '',
    event_created   BIGINT NOT NULL,            -- Stripe event created, unix seconds
    event_seq       BIGINT NOT NULL,            -- order within that second
    event_id        TEXT NOT NULL DEFAULT '',   -- event of the stored state, '' for a read
    updated_at      BIGINT NOT NULL             -- when it was applied, unix milliseconds
)`, s.t.subs),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (customer_id)`, s.t.subsIdx, s.t.subs),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
    event_id   TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL                  -- unix milliseconds
)`, s.t.events),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (expires_at)`, s.t.eventsIdx, s.t.events),
	)
	return st
}

// schemaV2 adds the lifecycle facts and items to the subscriptions (new
// columns with defaults: the rows of version 1 keep their values and read
// as subscriptions without facts), the customers' features and the
// outbox of plan changes.
func (s *Store) schemaV2() []string {
	serial := "BIGSERIAL PRIMARY KEY"
	if s.dialect == SQLite {
		// AUTOINCREMENT: an id is never used again, even after the row
		// with the highest id is deleted (a change id must stay unique).
		serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
	}
	var st []string
	for _, col := range []string{
		"items                TEXT", // JSON array of the items, NULL for none
		"cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE",
		"cancel_at            BIGINT", // times: unix seconds, NULL when not set
		"canceled_at          BIGINT",
		"ended_at             BIGINT",
		"current_period_start BIGINT",
		"current_period_end   BIGINT",
		"trial_end            BIGINT",
	} {
		st = append(st, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", s.t.subs, col))
	}
	st = append(st,
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
    customer_id   TEXT PRIMARY KEY,
    features      TEXT NOT NULL,                -- JSON array of lookup keys, sorted
    event_created BIGINT NOT NULL,              -- order key, as for subscriptions
    event_seq     BIGINT NOT NULL,
    event_id      TEXT NOT NULL DEFAULT '',
    updated_at    BIGINT NOT NULL               -- unix milliseconds
)`, s.t.features),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
    change_seq    %s, -- the change id is 'chg_' and this number; per user, commit order
    user_id       TEXT NOT NULL,
    before_view   TEXT NOT NULL,                -- JSON
    after_view    TEXT NOT NULL,                -- JSON
    cause         TEXT NOT NULL,                -- JSON
    committed_at  BIGINT NOT NULL,              -- unix milliseconds
    claim_token   TEXT,                         -- the live claim's, if any
    claimed_until BIGINT,                       -- unix milliseconds
    retry_at      BIGINT NOT NULL DEFAULT 0,    -- unix milliseconds: not due before
    attempts      INTEGER NOT NULL DEFAULT 0
)`, s.t.outbox, serial),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (user_id, change_seq)`, s.t.outboxIdx, s.t.outbox),
	)
	return st
}

// Migrate brings the database to the store's schema: it creates the tables
// in an empty database, and upgrades one made by an earlier version of
// this package (for example version 1, before the lifecycle facts, the
// features and the outbox) in place, keeping every row: new columns get
// defaults, new tables start empty. The versions applied are recorded in
// the table billing_schema_version (with the prefix of [WithTablePrefix]).
// All of it is one transaction, so a failure changes nothing; it is
// idempotent and safe to call from several replicas at once: on
// PostgreSQL it holds a transaction-scoped advisory lock while it runs
// (the others wait, then find the schema current), on SQLite the write
// lock (BEGIN IMMEDIATE). A database of a later version than this
// package's is left alone. With [WithUsersTable] it never touches the
// application's table: it checks that the table has the configured
// columns.
func (s *Store) Migrate(ctx context.Context) error {
	migrate := func(q querier) error {
		if s.dialect == Postgres {
			if _, err := q.ExecContext(ctx, s.q.lockCustomer, s.cfg.lockSpace, 0); err != nil {
				return err
			}
		}
		if _, err := q.ExecContext(ctx, s.versionTable()); err != nil {
			return err
		}
		var current int
		if err := q.QueryRowContext(ctx, s.q.schemaVersion).Scan(&current); err != nil {
			return err
		}
		for _, m := range s.migrations() {
			if m.version <= current {
				continue
			}
			for _, st := range m.statements {
				if _, err := q.ExecContext(ctx, st); err != nil {
					return fmt.Errorf("version %d: %w", m.version, err)
				}
			}
			if _, err := q.ExecContext(ctx, s.q.recordVersion, m.version, s.cfg.now().UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	}
	err := s.retry(ctx, func() error {
		if s.dialect == SQLite {
			// The write lock before the first read (the version).
			return s.inImmediateTx(ctx, func(q querier) (bool, error) {
				err := migrate(q)
				return err == nil, err
			})
		}
		return s.inTx(ctx, nil, func(q querier, _ int64) ([]stmt, bool, error) {
			err := migrate(q)
			return nil, err == nil, err
		})
	})
	if err != nil {
		return fmt.Errorf("sqlstore: migrate (nothing was changed; check that the database user may create and alter tables): %w", err)
	}
	if !s.ownUsers {
		rows, err := s.db.QueryContext(ctx, s.q.checkUsers)
		if err != nil {
			return fmt.Errorf("sqlstore: the users table %s lacks a configured column (see WithUsersTable): %w", s.cfg.users.Name, err)
		}
		rows.Close()
	}
	s.prepare(ctx)
	return nil
}
