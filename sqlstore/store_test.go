package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest/storetest"
	"github.com/contafy/billing/sqlstore"
	"github.com/google/go-cmp/cmp"
)

// TestContractSQLiteDefaults runs the contract on a SQLite file opened
// without any option (rollback journal, no busy timeout): the store's own
// retries must cope with "database is locked".
func TestContractSQLiteDefaults(t *testing.T) {
	e := engine{name: "sqlite", dialect: sqlstore.SQLite, driver: "sqlite", database: func(t testing.TB) string {
		return filepath.Join(t.TempDir(), "plain.db")
	}}
	storetest.Run(t, e.harness(t))
}

// TestContractUsersTable runs the contract with the users in an
// application's own table (other column names, extra columns).
func TestContractUsersTable(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			var db *sql.DB
			if e.dialect == sqlstore.Postgres {
				db = e.open(t, e.database(t))
			}
			h := e.harness(t)
			newStores := func(t *testing.T, n int, users []billing.User) []storetest.Store {
				d := db
				if d == nil {
					d = e.open(t, e.database(t))
				}
				n0 := prefixSeq.Add(1)
				table := fmt.Sprintf("app_users_%d", n0)
				if _, err := d.Exec(fmt.Sprintf(`CREATE TABLE %s (
					id TEXT PRIMARY KEY,
					email TEXT NOT NULL DEFAULT '',
					tier TEXT NOT NULL DEFAULT 'FREE',
					stripe_cus TEXT,
					stripe_sub TEXT,
					created_at BIGINT NOT NULL DEFAULT 0)`, table)); err != nil {
					t.Fatal(err)
				}
				opts := []sqlstore.Option{
					sqlstore.WithTablePrefix(fmt.Sprintf("t%d_", n0)),
					sqlstore.WithUsersTable(sqlstore.UsersTable{Name: table, ID: "id", Plan: "tier", CustomerID: "stripe_cus", SubscriptionID: "stripe_sub"}),
				}
				stores := []storetest.Store{newStore(t, d, e.dialect, users, opts...)}
				for i := 1; i < n; i++ {
					stores = append(stores, newStore(t, d, e.dialect, nil, opts...))
				}
				return stores
			}
			h.New = func(t *testing.T, users []billing.User) storetest.Store { return newStores(t, 1, users)[0] }
			h.Replicas = nil
			storetest.Run(t, h)
		})
	}
}

// TestIntegerUserIDs uses an application table keyed by a BIGINT, without a
// subscription column.
func TestIntegerUserIDs(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t, e.database(t))
			if _, err := db.Exec(`CREATE TABLE accounts (id BIGINT PRIMARY KEY, plan TEXT NOT NULL DEFAULT 'FREE', customer TEXT, name TEXT NOT NULL DEFAULT 'x')`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO accounts (id, plan) VALUES (7, 'BASIC')`); err != nil {
				t.Fatal(err)
			}
			s := newStore(t, db, e.dialect, []billing.User{{ID: "42", Plan: billing.Free, StripeCustomerID: "cus_42"}},
				sqlstore.WithUsersTable(sqlstore.UsersTable{Name: "accounts", ID: "id", Plan: "plan", CustomerID: "customer"}))
			change := billing.SubscriptionChange{EventID: "evt_1", Subscription: billing.Subscription{ID: "sub_1", CustomerID: "cus_42", Status: "active", Plan: billing.Pro}, Created: time.Unix(1_700_000_000, 0)}
			if out, err := s.ApplySubscription(ctx, change, time.Hour); err != nil || out != billing.Applied {
				t.Fatalf("ApplySubscription = %v, %v", out, err)
			}
			if found, err := s.LinkCustomer(ctx, "7", "cus_7"); err != nil || !found {
				t.Fatalf("LinkCustomer(7) = %v, %v", found, err)
			}
			for _, want := range []billing.User{
				{ID: "42", Plan: billing.Pro, StripeCustomerID: "cus_42"},
				{ID: "7", Plan: billing.Basic, StripeCustomerID: "cus_7"},
			} {
				got, found, err := s.User(ctx, want.ID)
				if err != nil || !found {
					t.Fatalf("User(%s) = found %v, %v", want.ID, found, err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("User(%s) (-want +got):\n%s", want.ID, diff)
				}
			}
			// An id that is no integer is an unknown user, not an error.
			if got, found, err := s.User(ctx, "abc"); err != nil || found {
				t.Errorf("User(abc) = %+v, %v, %v; want not found, nil error", got, found, err)
			}
			if found, err := s.LinkCustomer(ctx, "abc", "cus_x"); err != nil || found {
				t.Errorf("LinkCustomer(abc) = %v, %v; want not found, nil error", found, err)
			}
			if got, found, err := s.UserByCustomer(ctx, "cus_7"); err != nil || !found || got.ID != "7" {
				t.Errorf("UserByCustomer(cus_7) = %+v, %v, %v", got, found, err)
			}
			if !strings.Contains(s.Schema(), "accounts") || strings.Contains(s.Schema(), "CREATE TABLE IF NOT EXISTS \"accounts\"") || strings.Contains(s.Schema(), "CREATE TABLE IF NOT EXISTS `accounts`") {
				t.Errorf("Schema() should name the app's table but not create it:\n%s", s.Schema())
			}
		})
	}
}

// TestMigrate checks that Migrate is idempotent and safe from several
// replicas at once, that the printed schema is what it runs, and that a
// misnamed column of the app's users table is reported.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			dsn := e.database(t)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			var stores []*sqlstore.Store
			for range 4 {
				s, err := sqlstore.New(e.open(t, dsn), e.dialect)
				if err != nil {
					t.Fatal(err)
				}
				stores = append(stores, s)
			}
			for _, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- s.Migrate(ctx)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("concurrent Migrate: %v", err)
				}
			}
			if err := stores[0].Migrate(ctx); err != nil {
				t.Errorf("Migrate again: %v", err)
			}
			if err := stores[0].PutUser(ctx, billing.User{ID: "u1", Plan: billing.Basic}); err != nil {
				t.Fatal(err)
			}
			if u, found, err := stores[3].User(ctx, "u1"); err != nil || !found || u.Plan != billing.Basic {
				t.Errorf("User(u1) through another store = %+v, %v, %v", u, found, err)
			}

			// The printed schema, run as one script by hand, makes a working
			// store; Migrate after it changes nothing.
			db := e.open(t, dsn)
			s, err := sqlstore.New(db, e.dialect, sqlstore.WithTablePrefix("manual_"))
			if err != nil {
				t.Fatal(err)
			}
			schema := s.Schema()
			for _, name := range []string{"manual_users", "manual_subscriptions", "manual_events"} {
				if !strings.Contains(schema, name) {
					t.Errorf("Schema() lacks %s:\n%s", name, schema)
				}
			}
			if _, err := db.ExecContext(ctx, schema); err != nil {
				t.Fatalf("running Schema(): %v\n%s", err, schema)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Errorf("Migrate after the schema: %v", err)
			}
			if err := s.PutUser(ctx, billing.User{ID: "u1", Plan: billing.Pro}); err != nil {
				t.Fatal(err)
			}

			bad, err := sqlstore.New(db, e.dialect, sqlstore.WithUsersTable(sqlstore.UsersTable{Name: "manual_users", ID: "user_id", Plan: "tier", CustomerID: "stripe_customer_id"}))
			if err != nil {
				t.Fatal(err)
			}
			if err := bad.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "WithUsersTable") {
				t.Errorf("Migrate with a missing column = %v, want an error naming WithUsersTable", err)
			}
		})
	}
}

// TestEventExpiry checks that event ids are remembered for the retention
// and no longer, and that expired ids are deleted by Cleanup and by the
// writes themselves.
func TestEventExpiry(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t, e.database(t))
			var (
				mu  sync.Mutex
				now = t0
			)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			set := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = t0.Add(d) }
			change := func(evt, sub string) billing.SubscriptionChange {
				return billing.SubscriptionChange{EventID: evt, Subscription: billing.Subscription{ID: sub, CustomerID: "cus_1", Status: "active", Plan: billing.Pro}, Created: t0}
			}
			apply := func(s *sqlstore.Store, c billing.SubscriptionChange, retain time.Duration, want billing.Outcome) {
				t.Helper()
				if got, err := s.ApplySubscription(ctx, c, retain); err != nil || got != want {
					t.Errorf("%s at %v: ApplySubscription = %v, %v; want %v", c.EventID, clock().Sub(t0), got, err, want)
				}
			}
			s := newStore(t, db, e.dialect, nil, sqlstore.WithClock(clock), sqlstore.WithTablePrefix("a_"), sqlstore.WithCleanupEvery(0))
			apply(s, change("evt_1", "sub_1"), time.Hour, billing.Applied)
			apply(s, change("evt_2", "sub_2"), time.Hour, billing.Applied)
			apply(s, change("evt_3", "sub_3"), 5*time.Hour, billing.Applied)
			set(59 * time.Minute)
			apply(s, change("evt_1", "sub_1"), time.Hour, billing.Duplicate)
			set(2 * time.Hour)
			if n, err := s.Cleanup(ctx); err != nil || n != 2 {
				t.Errorf("Cleanup at 2h = %d, %v; want 2 (evt_1, evt_2)", n, err)
			}
			// Forgotten: the same delivery is processed again (stale, as
			// its state is already stored).
			apply(s, change("evt_1", "sub_1"), time.Hour, billing.Stale)
			apply(s, change("evt_1", "sub_1"), time.Hour, billing.Duplicate)
			apply(s, change("evt_3", "sub_3"), time.Hour, billing.Duplicate)
			if n, err := s.Cleanup(ctx); err != nil || n != 0 {
				t.Errorf("Cleanup again = %d, %v; want 0", n, err)
			}

			// An expired id not yet deleted is forgotten all the same.
			set(10 * time.Hour)
			apply(s, change("evt_3", "sub_3"), time.Hour, billing.Stale)

			// With WithCleanupEvery(1) each write deletes expired ids.
			set(0)
			s2 := newStore(t, db, e.dialect, nil, sqlstore.WithClock(clock), sqlstore.WithTablePrefix("b_"), sqlstore.WithCleanupEvery(1))
			for i := range 5 {
				apply(s2, change(fmt.Sprintf("evt_%d", i), fmt.Sprintf("sub_%d", i)), time.Minute, billing.Applied)
			}
			set(time.Hour)
			apply(s2, change("evt_new", "sub_new"), time.Minute, billing.Applied)
			var n int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM b_events`).Scan(&n); err != nil || n != 1 {
				t.Errorf("event ids left after a write with expired ones = %d, %v; want 1", n, err)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name string
		db   *sql.DB
		d    sqlstore.Dialect
		opts []sqlstore.Option
		want string
	}{
		{"nil db", nil, sqlstore.SQLite, nil, "db is nil"},
		{"no dialect", db, 0, nil, "unknown dialect"},
		{"bad prefix", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithTablePrefix("x; DROP TABLE users; --")}, "prefix"},
		{"incomplete users table", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithUsersTable(sqlstore.UsersTable{Name: "users", ID: "id"})}, "needs Name, ID, Plan and CustomerID"},
		{"bad table name", db, sqlstore.Postgres, []sqlstore.Option{sqlstore.WithUsersTable(sqlstore.UsersTable{Name: `users"; --`, ID: "id", Plan: "plan", CustomerID: "c"})}, "not a valid table or column name"},
		{"bad column name", db, sqlstore.Postgres, []sqlstore.Option{sqlstore.WithUsersTable(sqlstore.UsersTable{Name: "a.b.c", ID: "id", Plan: "plan", CustomerID: "c"})}, "not a valid table or column name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlstore.New(tc.db, tc.d, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sqlstore: ") {
				t.Errorf("New = %v, %v; want an error containing %q", s, err, tc.want)
			}
		})
	}
	if _, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithUsersTable(sqlstore.UsersTable{Name: "app.users", ID: "id", Plan: "plan", CustomerID: "cus"})); err != nil {
		t.Errorf("New with a schema-qualified users table: %v", err)
	}
}

func TestDialectOf(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want sqlstore.Dialect
	}{
		{"postgres://u:p@localhost:5432/app?sslmode=disable", sqlstore.Postgres},
		{"postgresql://localhost/app", sqlstore.Postgres},
		{"POSTGRES://localhost/app", sqlstore.Postgres},
		{"host=localhost dbname=app user=u", sqlstore.Postgres},
		{"dbname=app", sqlstore.Postgres},
		{"billing.db", sqlstore.SQLite},
		{"/var/lib/app/billing.db", sqlstore.SQLite},
		{"file:billing.db?_pragma=busy_timeout(5000)", sqlstore.SQLite},
		{":memory:", sqlstore.SQLite},
	} {
		if got := sqlstore.DialectOf(tc.dsn); got != tc.want {
			t.Errorf("DialectOf(%q) = %v, want %v", tc.dsn, got, tc.want)
		}
	}
	if sqlstore.Postgres.String() != "postgres" || sqlstore.SQLite.String() != "sqlite" {
		t.Errorf("dialect names %q, %q", sqlstore.Postgres, sqlstore.SQLite)
	}
}

// TestCanceledWrite checks that a write cut short by its context leaves
// nothing behind and the store usable (the SQLite connection is rolled
// back before it returns to the pool).
func TestCanceledWrite(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t, e.database(t))
			s := newStore(t, db, e.dialect, []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"}})
			c := billing.SubscriptionChange{EventID: "evt_1", Subscription: billing.Subscription{ID: "sub_1", CustomerID: "cus_1", Status: "active", Plan: billing.Pro}, Created: time.Unix(1_700_000_000, 0)}
			// Deadlines from 0 up: the first ones cut the write at every
			// step of its transaction, a later one lets it through.
			done := false
			var err error
			for d := time.Duration(0); d < 10*time.Second && !done; d += d/8 + 50*time.Microsecond {
				ctx, cancel := context.WithTimeout(context.Background(), d)
				var out billing.Outcome
				out, err = s.ApplySubscription(ctx, c, time.Hour)
				cancel()
				if err == nil {
					if out != billing.Applied {
						t.Fatalf("first completed ApplySubscription = %v", out)
					}
					done = true
				}
			}
			if !done {
				t.Fatalf("no ApplySubscription completed within 10s; last error: %v", err)
			}
			out, err := s.ApplySubscription(context.Background(), c, time.Hour)
			if err != nil || out != billing.Duplicate {
				t.Errorf("after the canceled attempts: ApplySubscription = %v, %v; want duplicate (applied once)", out, err)
			}
			if u, _, err := s.User(context.Background(), "u1"); err != nil || u.Plan != billing.Pro {
				t.Errorf("User(u1) = %+v, %v; want PRO", u, err)
			}
		})
	}
}
