package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Open opens the database a DSN names and returns its Store, migrated:
// PostgreSQL for a postgres:// (or postgresql://) URL, through the driver
// registered as "pgx" (import _ "github.com/jackc/pgx/v5/stdlib"); SQLite
// for a file path or a file: URI, through the driver registered as
// "sqlite" (import _ "modernc.org/sqlite"), with a 5 s busy timeout and WAL
// unless the DSN has parameters of its own. It is how the demo's and the
// billing command's -db flag open a store, so that both read one database
// the same way; for another driver, call sql.Open and [New] yourself.
// Close the returned *sql.DB when done. Errors start with "-db: " and say
// what was wrong with the DSN or the database.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, *sql.DB, error) {
	d := DialectOf(dsn)
	driver, source := "pgx", dsn
	if d == SQLite {
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
		return nil, nil, fmt.Errorf("-db: %w (import the %q driver)", err, driver)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("-db: cannot reach the %s database: %w", d, err)
	}
	s, err := New(db, d, opts...)
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("-db: %w", err)
	}
	return s, db, nil
}
