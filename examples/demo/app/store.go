package app

import (
	"context"

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
	s, db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, nil, nil, err
	}
	return s, s.PutUser, func() { db.Close() }, nil
}
