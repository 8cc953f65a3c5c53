package app

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/contafy/billing"
	"github.com/contafy/billing/sqlstore"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx", for -db postgres://...
	_ "modernc.org/sqlite"             // driver "sqlite", for -db FILE
)

// Store is what the demo needs of a store: the portal's and the sync's.
// [billing.MemoryStore] and [sqlstore.Store] are both.
type Store interface {
	billing.UserStore
	billing.SyncStore
}

// openStore returns the memory store, or with a DSN the SQL store on
// PostgreSQL (postgres:// URL) or SQLite (file path), migrated; put adds or
// replaces a user (PutUser, which derives the plan of a customer with
// stored subscriptions).
func openStore(ctx context.Context, dsn string) (Store, func(context.Context, billing.User) error, func(), error) {
	if dsn == "" {
		m := billing.NewMemoryStore()
		return m, func(ctx context.Context, u billing.User) error { return m.PutUser(ctx, u) }, func() {}, nil
	}
	d := sqlstore.DialectOf(dsn)
	driver, source := "pgx", dsn
	if d == sqlstore.SQLite {
		driver = "sqlite"
		if !strings.HasPrefix(dsn, "file:") {
			source = "file:" + dsn
		}
		if !strings.Contains(source, "?") {
			source += "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
		}
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("-db: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("-db: cannot reach the %s database: %w", d, err)
	}
	s, err := sqlstore.New(db, d)
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("-db: %w", err)
	}
	return s, s.PutUser, func() { db.Close() }, nil
}
