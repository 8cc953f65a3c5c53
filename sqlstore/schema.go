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
// indexes, each ending with a semicolon, in the store's dialect and with its
// table names: what [Store.Migrate] runs, for teams that run their
// migrations themselves. With [WithUsersTable] it does not create the users
// table; a comment names the columns the store needs in it.
func (s *Store) Schema() string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- github.com/contafy/billing/sqlstore schema (%s)\n", s.dialect)
	if !s.ownUsers {
		u := s.cfg.users
		fmt.Fprintf(&b, "-- Users are the application's table %s: the store reads and writes its columns\n", s.t.users)
		fmt.Fprintf(&b, "-- %s (key), %s (text: FREE, BASIC, PRO), %s (text, nullable, indexed)", u.ID, u.Plan, u.CustomerID)
		if u.SubscriptionID != "" {
			fmt.Fprintf(&b, ", %s (text, nullable)", u.SubscriptionID)
		}
		b.WriteString(".\n")
	}
	for _, st := range s.schema() {
		b.WriteString(st)
		b.WriteString(";\n")
	}
	return b.String()
}

// schema returns the statements of [Store.Schema], without semicolons.
func (s *Store) schema() []string {
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

// Migrate creates the store's tables and indexes if they do not exist. It is
// idempotent and safe to call from several replicas at once (on PostgreSQL
// it holds an advisory lock while it runs; on SQLite the write lock). With
// [WithUsersTable] it checks that the application's table has the
// configured columns instead of creating it.
func (s *Store) Migrate(ctx context.Context) error {
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, func(q querier) (bool, error) {
			if s.dialect == Postgres {
				if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, s.cfg.lockSpace); err != nil {
					return false, err
				}
			}
			for _, st := range s.schema() {
				if _, err := q.ExecContext(ctx, st); err != nil {
					return false, err
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	if !s.ownUsers {
		rows, err := s.db.QueryContext(ctx, s.q.checkUsers)
		if err != nil {
			return fmt.Errorf("sqlstore: the users table %s lacks a configured column (see WithUsersTable): %w", s.cfg.users.Name, err)
		}
		rows.Close()
	}
	return nil
}
