package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/sqlstore"
	"github.com/google/go-cmp/cmp"
)

// schemaV1 is the schema of version 1 (sqlstore before the lifecycle
// facts, the features and the outbox), as Store.Schema printed it, with
// the tables named prefix+users and so on; without the users table when
// ownUsers is false (WithUsersTable). Kept here, unchanged, so that the
// migration is tested from what databases of that version hold.
func schemaV1(d sqlstore.Dialect, prefix string, ownUsers bool) string {
	q := func(name string) string {
		if d == sqlstore.SQLite {
			return "`" + prefix + name + "`"
		}
		return `"` + prefix + name + `"`
	}
	var b strings.Builder
	if ownUsers {
		fmt.Fprintf(&b, `CREATE TABLE IF NOT EXISTS %s (
    user_id            TEXT PRIMARY KEY,
    plan               TEXT NOT NULL DEFAULT 'FREE',
    stripe_customer_id TEXT UNIQUE,
    subscription_id    TEXT
);
`, q("users"))
	}
	fmt.Fprintf(&b, `CREATE TABLE IF NOT EXISTS %[1]s (
    subscription_id TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    status          TEXT NOT NULL,
    plan            TEXT NOT NULL,
    price_id        TEXT NOT NULL DEFAULT '',
    event_created   BIGINT NOT NULL,            -- Stripe event created, unix seconds
    event_seq       BIGINT NOT NULL,            -- order within that second
    event_id        TEXT NOT NULL DEFAULT '',   -- event of the stored state, '' for a read
    updated_at      BIGINT NOT NULL             -- when it was applied, unix milliseconds
);
CREATE INDEX IF NOT EXISTS %[2]s ON %[1]s (customer_id);
CREATE TABLE IF NOT EXISTS %[3]s (
    event_id   TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL                  -- unix milliseconds
);
CREATE INDEX IF NOT EXISTS %[4]s ON %[3]s (expires_at);
`, q("subscriptions"), q("subscriptions_customer_id_idx"), q("events"), q("events_expires_at_idx"))
	return b.String()
}

// v1Rows are the rows a database of version 1 holds in the test: users
// synced to subscriptions, a user without a customer, a subscription of a
// customer no user is linked to yet, a canceled one, event ids remembered
// and one expired.
func v1Rows(prefix, users string, ownUsers bool) []string {
	var st []string
	if ownUsers {
		st = append(st, fmt.Sprintf(`INSERT INTO %s (user_id, plan, stripe_customer_id, subscription_id) VALUES
('u1', 'PRO', 'cus_1', 'sub_1'), ('u2', 'BASIC', NULL, NULL), ('u3', 'FREE', 'cus_3', 'sub_3')`, users))
	}
	return append(st,
		fmt.Sprintf(`INSERT INTO %ssubscriptions (subscription_id, customer_id, status, plan, price_id, event_created, event_seq, event_id, updated_at) VALUES
('sub_1', 'cus_1', 'active', 'PRO', 'price_pro', 1700000100, 2, 'evt_1', 1700000100123),
('sub_3', 'cus_3', 'canceled', 'FREE', 'price_basic', 1700000200, 3, 'evt_3', 1700000200456),
('sub_9', 'cus_9', 'trialing', 'BASIC', 'price_basic', 1700000300, 0, '', 1700000300789)`, prefix),
		fmt.Sprintf(`INSERT INTO %sevents (event_id, expires_at) VALUES ('evt_1', 4102444800000), ('evt_3', 4102444800000), ('evt_old', 1000)`, prefix),
	)
}

// snapshot returns the rows of query as strings, to compare a table before
// and after the migration.
func snapshot(t *testing.T, db *sql.DB, query string) [][]string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	out := [][]string{cols}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			row[i] = fmt.Sprintf("%T:%v", v, v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateFromV1 takes a database made by the schema of version 1, with
// its rows, to the current schema with Migrate run from several stores at
// once (each on its own *sql.DB, as replicas starting together): every row
// of version 1 is unchanged, the version is recorded, a second Migrate
// changes nothing, and the migrated database keeps facts, features and
// plan changes. With WithUsersTable the application's table is left as it
// was, columns and rows.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines() {
		for _, own := range []bool{true, false} {
			name := e.name + "/own users table"
			if !own {
				name = e.name + "/app users table"
			}
			t.Run(name, func(t *testing.T) {
				dsn := e.database(t)
				db := e.open(t, dsn)
				const prefix = "billing_"
				users := prefix + "users"
				var opts []sqlstore.Option
				if !own {
					users = "app_accounts"
					if _, err := db.Exec(`CREATE TABLE app_accounts (id TEXT PRIMARY KEY, email TEXT NOT NULL, tier TEXT NOT NULL DEFAULT 'FREE', cus TEXT, sub TEXT)`); err != nil {
						t.Fatal(err)
					}
					if _, err := db.Exec(`INSERT INTO app_accounts (id, email, tier, cus, sub) VALUES
('u1', 'a@example.com', 'PRO', 'cus_1', 'sub_1'), ('u2', 'b@example.com', 'BASIC', NULL, NULL), ('u3', 'c@example.com', 'FREE', 'cus_3', 'sub_3')`); err != nil {
						t.Fatal(err)
					}
					opts = append(opts, sqlstore.WithUsersTable(sqlstore.UsersTable{Name: "app_accounts", ID: "id", Plan: "tier", CustomerID: "cus", SubscriptionID: "sub"}))
				}
				if _, err := db.Exec(schemaV1(e.dialect, prefix, own)); err != nil {
					t.Fatalf("schema v1: %v", err)
				}
				for _, st := range v1Rows(prefix, users, own) {
					if _, err := db.Exec(st); err != nil {
						t.Fatalf("%s: %v", st, err)
					}
				}
				old := map[string]string{
					"users":         fmt.Sprintf("SELECT * FROM %s ORDER BY 1", users),
					"subscriptions": "SELECT subscription_id, customer_id, status, plan, price_id, event_created, event_seq, event_id, updated_at FROM billing_subscriptions ORDER BY subscription_id",
					"events":        "SELECT event_id, expires_at FROM billing_events ORDER BY event_id",
				}
				before := map[string][][]string{}
				for k, q := range old {
					before[k] = snapshot(t, db, q)
				}

				// Four replicas start at once.
				var (
					wg     sync.WaitGroup
					stores []*sqlstore.Store
					errs   = make([]error, 4)
				)
				for range 4 {
					s, err := sqlstore.New(e.open(t, dsn), e.dialect, opts...)
					if err != nil {
						t.Fatal(err)
					}
					stores = append(stores, s)
				}
				start := make(chan struct{})
				for i, s := range stores {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						errs[i] = s.Migrate(ctx)
					}()
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("Migrate on replica %d: %v", i, err)
					}
				}
				versions := snapshot(t, db, "SELECT version FROM billing_schema_version ORDER BY version")
				if err := stores[0].Migrate(ctx); err != nil {
					t.Errorf("Migrate again: %v", err)
				}
				if again := snapshot(t, db, "SELECT version, applied_at FROM billing_schema_version ORDER BY version"); len(again) != 3 || len(versions) != 3 {
					t.Errorf("schema versions after the migrations = %v, after one more = %v; want versions 1 and 2, once each", versions, again)
				}
				for k, q := range old {
					if diff := cmp.Diff(before[k], snapshot(t, db, q)); diff != "" {
						t.Errorf("%s rows changed by the migration (-before +after):\n%s", k, diff)
					}
				}
				checkMigrated(t, stores)
			})
		}
	}
}

// checkMigrated checks the stores on a database migrated from version 1:
// the old rows read as before (without facts), old event ids are still
// remembered, and the new writes keep facts, features and plan changes.
func checkMigrated(t *testing.T, stores []*sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	s, other := stores[0], stores[1]
	got, found, err := s.Subscription(ctx, "sub_1")
	if want := (billing.Subscription{ID: "sub_1", CustomerID: "cus_1", Status: "active", Plan: billing.Pro, PriceID: "price_pro"}); err != nil || !found || !cmp.Equal(got, want) {
		t.Errorf("Subscription(sub_1) of version 1 = %+v, %v, %v; want %+v", got, found, err, want)
	}
	a, found, err := s.Account(ctx, "u1")
	if err != nil || !found || a.User.Plan != billing.Pro || a.Subscription == nil || a.Subscription.ID != "sub_1" {
		t.Errorf("Account(u1) = %+v, %v, %v; want PRO from sub_1", a, found, err)
	}
	before := a.View()
	old := billing.SubscriptionChange{EventID: "evt_1", Subscription: billing.Subscription{ID: "sub_1", CustomerID: "cus_1", Status: "canceled", Plan: billing.Free}, Created: time.Unix(1_700_000_900, 0), Seq: 3}
	if out, err := other.ApplySubscription(ctx, old, time.Hour); err != nil || out != billing.Duplicate {
		t.Errorf("an event id remembered by version 1: ApplySubscription = %v, %v; want duplicate", out, err)
	}
	end := time.Unix(1_702_592_100, 0).UTC()
	c := billing.SubscriptionChange{
		EventID: "evt_2",
		Subscription: billing.Subscription{ID: "sub_1", CustomerID: "cus_1", Status: "active", Plan: billing.Pro, PriceID: "price_pro",
			Items:             []billing.SubscriptionItem{{PriceID: "price_pro", LookupKey: "pro", ProductID: "prod_1", Quantity: 1}},
			CancelAtPeriodEnd: true, CurrentPeriodStart: time.Unix(1_700_000_100, 0).UTC(), CurrentPeriodEnd: end, CanceledAt: time.Unix(1_700_000_500, 0).UTC()},
		Created: time.Unix(1_700_000_500, 0), Seq: 2,
		Cause: billing.Cause{Kind: billing.CauseWebhook, EventID: "evt_2", EventType: "customer.subscription.updated"},
	}
	if out, err := other.ApplySubscription(ctx, c, time.Hour); err != nil || out != billing.Applied {
		t.Fatalf("ApplySubscription(evt_2) = %v, %v", out, err)
	}
	if got, _, err := s.Subscription(ctx, "sub_1"); err != nil || !cmp.Equal(got, c.Subscription) {
		t.Errorf("Subscription(sub_1) after a change with facts (-want +got):\n%s", cmp.Diff(c.Subscription, got))
	}
	if out, err := s.ApplyFeatures(ctx, billing.FeaturesChange{EventID: "evt_f", CustomerID: "cus_1", Features: []string{"sso"}, Created: time.Unix(1_700_000_600, 0), Seq: 1, Cause: billing.Cause{Kind: billing.CauseWebhook}}, time.Hour); err != nil || out != billing.Applied {
		t.Fatalf("ApplyFeatures = %v, %v", out, err)
	}
	if found, err := s.LinkCustomer(ctx, "u2", "cus_9"); err != nil || !found {
		t.Fatalf("LinkCustomer(u2, cus_9) = %v, %v", found, err)
	}
	pending, err := other.PendingChanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got2 []string
	for _, p := range pending {
		got2 = append(got2, fmt.Sprintf("%s %s %s->%s renews=%v ends=%v features=%v", p.UserID, p.Cause.Kind, p.Before.Plan, p.After.Plan,
			!p.After.RenewsAt.IsZero(), p.After.EndsAt.Equal(end), p.After.Features))
	}
	want := []string{
		"u1 webhook PRO->PRO renews=false ends=true features=[]",
		"u1 webhook PRO->PRO renews=false ends=true features=[sso]",
		"u2 customer_linked BASIC->BASIC renews=false ends=false features=[]",
	}
	if diff := cmp.Diff(want, got2); diff != "" {
		t.Errorf("plan changes recorded on the migrated database (-want +got):\n%s", diff)
	}
	if len(pending) > 0 && !pending[0].Before.Equal(before) {
		t.Errorf("first change's Before = %+v, want the view of version 1's state %+v", pending[0].Before, before)
	}
	if u, _, err := other.User(ctx, "u2"); err != nil || u.Plan != billing.Basic || u.StripeCustomerID != "cus_9" || u.SubscriptionID != "sub_9" {
		t.Errorf("User(u2) after linking the customer of version 1's orphan subscription = %+v, %v; want BASIC from sub_9", u, err)
	}
}
