package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/contafy/billing/sqlstore"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx", for -db postgres://...
	_ "modernc.org/sqlite"             // driver "sqlite", for -db FILE
)

// openStore opens the SQL store of a -db DSN, migrated: PostgreSQL for a
// postgres:// (or postgresql://) URL, SQLite for a file path (or a file:
// URI), exactly as examples/demo's -db opens it, so that the command and
// the app read the same database the same way. The returned func closes
// the database.
//
// This is a copy of examples/demo's openStore (less its memory store): a
// third user should move it to one shared place, for example a
// sqlstore.Open(ctx, dsn) that takes the driver names.
func openStore(ctx context.Context, dsn string) (*sqlstore.Store, func(), error) {
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
		return nil, nil, fmt.Errorf("-db: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("-db: cannot reach the %s database: %w", d, err)
	}
	s, err := sqlstore.New(db, d)
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("-db: %w", err)
	}
	return s, func() { db.Close() }, nil
}
