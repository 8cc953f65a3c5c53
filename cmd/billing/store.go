package main

import (
	"context"

	"github.com/contafy/billing/sqlstore"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx", for -db postgres://...
	_ "modernc.org/sqlite"             // driver "sqlite", for -db FILE
)

// openStore opens the SQL store of a -db DSN, migrated, as examples/demo's
// -db opens it ([sqlstore.Open]). The returned func closes the database.
func openStore(ctx context.Context, dsn string) (*sqlstore.Store, func(), error) {
	s, db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { db.Close() }, nil
}
