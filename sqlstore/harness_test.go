package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest/storetest"
	"github.com/contafy/billing/internal/testenv"
	"github.com/contafy/billing/sqlstore"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"
)

// engine opens databases of one dialect for the tests.
type engine struct {
	name    string
	dialect sqlstore.Dialect
	// database returns the data source name of a new, empty database.
	database func(t testing.TB) string
	driver   string
}

func engines() []engine {
	return []engine{
		{name: "postgres", dialect: sqlstore.Postgres, driver: "pgx", database: testenv.Postgres},
		{name: "sqlite", dialect: sqlstore.SQLite, driver: "sqlite", database: sqliteFile},
	}
}

// sqliteFile returns the DSN of a new SQLite file in t's temp dir, with a
// busy timeout and WAL as the package documentation recommends.
func sqliteFile(t testing.TB) string {
	return "file:" + filepath.Join(t.TempDir(), "billing.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
}

// open opens dsn with the engine's driver and closes it when t ends.
func (e engine) open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(e.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("%s: %v", e.name, err)
	}
	return db
}

// newStore returns a migrated store on db holding users.
func newStore(t testing.TB, db *sql.DB, d sqlstore.Dialect, users []billing.User, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(db, d, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := s.PutUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

var prefixSeq atomic.Int64

// harness returns the storetest harness of an engine: one database for the
// whole run, a table prefix per store (PostgreSQL: creating a database per
// case would cost more than the case), a file per store (SQLite); replicas
// are stores with their own *sql.DB on one database.
func (e engine) harness(t *testing.T) storetest.Harness {
	var (
		once   sync.Once
		shared *sql.DB
		dsn    string
	)
	sharedDB := func(t *testing.T) (*sql.DB, string) {
		once.Do(func() {
			dsn = e.database(t)
			shared = e.open(t, dsn)
		})
		return shared, dsn
	}
	if e.dialect == sqlstore.SQLite {
		sharedDB = func(t *testing.T) (*sql.DB, string) {
			dsn := e.database(t)
			return e.open(t, dsn), dsn
		}
	}
	// The shared database must outlive the subtests: open it now, on t.
	if e.dialect == sqlstore.Postgres {
		sharedDB(t)
	}
	return storetest.Harness{
		New: func(t *testing.T, users []billing.User) storetest.Store {
			db, _ := sharedDB(t)
			prefix := fmt.Sprintf("t%d_", prefixSeq.Add(1))
			return newStore(t, db, e.dialect, users, sqlstore.WithTablePrefix(prefix))
		},
		Replicas: func(t *testing.T, n int, users []billing.User) []storetest.Store {
			_, dsn := sharedDB(t)
			prefix := fmt.Sprintf("t%d_", prefixSeq.Add(1))
			stores := make([]storetest.Store, n)
			for i := range stores {
				stores[i] = newStore(t, e.open(t, dsn), e.dialect, nil, sqlstore.WithTablePrefix(prefix))
			}
			for _, u := range users {
				if err := stores[0].(*sqlstore.Store).PutUser(context.Background(), u); err != nil {
					t.Fatal(err)
				}
			}
			return stores
		},
	}
}

// TestContract runs the stores' contract on PostgreSQL and SQLite.
func TestContract(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			storetest.Run(t, e.harness(t))
		})
	}
}
