package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/sqlstore"
)

// A store on a SQLite file: migrate, seed a user, apply a subscription
// change as the webhook handler does, read the user as the portal does.
func Example() {
	dir, _ := os.MkdirTemp("", "sqlstore-example")
	defer os.RemoveAll(dir)
	// modernc.org/sqlite, imported for its driver "sqlite".
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if err := store.PutUser(ctx, billing.User{ID: "42", Plan: billing.Free, StripeCustomerID: "cus_123"}); err != nil {
		log.Fatal(err)
	}
	out, err := store.ApplySubscription(ctx, billing.SubscriptionChange{
		EventID:      "evt_1",
		Subscription: billing.Subscription{ID: "sub_1", CustomerID: "cus_123", Status: "active", Plan: billing.Pro},
		Created:      time.Unix(1_700_000_000, 0),
	}, billing.DefaultRetain)
	if err != nil {
		log.Fatal(err)
	}
	u, _, err := store.User(ctx, "42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out, u.Plan, u.SubscriptionID)
	// Output: applied PRO sub_1
}

// The schema for teams that run their migrations themselves, here for
// PostgreSQL with the default table prefix. New does not connect.
func ExampleStore_Schema() {
	db, _ := sql.Open("pgx", "postgres://localhost/app")
	defer db.Close()
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(store.Schema())
	// Output:
	// -- github.com/contafy/billing/sqlstore schema (postgres), version 2
	// -- version 1: users, subscriptions, processed event ids
	// CREATE TABLE IF NOT EXISTS "billing_users" (
	//     user_id            TEXT PRIMARY KEY,
	//     plan               TEXT NOT NULL DEFAULT 'FREE',
	//     stripe_customer_id TEXT UNIQUE,
	//     subscription_id    TEXT
	// );
	// CREATE TABLE IF NOT EXISTS "billing_subscriptions" (
	//     subscription_id TEXT PRIMARY KEY,
	//     customer_id     TEXT NOT NULL,
	//     status          TEXT NOT NULL,
	//     plan            TEXT NOT NULL,
	//     price_id        TEXT NOT NULL DEFAULT '',
	//     event_created   BIGINT NOT NULL,            -- Stripe event created, unix seconds
	//     event_seq       BIGINT NOT NULL,            -- order within that second
	//     event_id        TEXT NOT NULL DEFAULT '',   -- event of the stored state, '' for a read
	//     updated_at      BIGINT NOT NULL             -- when it was applied, unix milliseconds
	// );
	// CREATE INDEX IF NOT EXISTS "billing_subscriptions_customer_id_idx" ON "billing_subscriptions" (customer_id);
	// CREATE TABLE IF NOT EXISTS "billing_events" (
	//     event_id   TEXT PRIMARY KEY,
	//     expires_at BIGINT NOT NULL                  -- unix milliseconds
	// );
	// CREATE INDEX IF NOT EXISTS "billing_events_expires_at_idx" ON "billing_events" (expires_at);
	// -- version 2: lifecycle facts and items of subscriptions, customers' features, the plan-change outbox
	// ALTER TABLE "billing_subscriptions" ADD COLUMN items                TEXT;
	// ALTER TABLE "billing_subscriptions" ADD COLUMN cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE;
	// ALTER TABLE "billing_subscriptions" ADD COLUMN cancel_at            BIGINT;
	// ALTER TABLE "billing_subscriptions" ADD COLUMN canceled_at          BIGINT;
	// ALTER TABLE "billing_subscriptions" ADD COLUMN ended_at             BIGINT;
	// ALTER TABLE "billing_subscriptions" ADD COLUMN current_period_start BIGINT;
	// ALTER TABLE "billing_subscriptions" ADD COLUMN current_period_end   BIGINT;
	// ALTER TABLE "billing_subscriptions" ADD COLUMN trial_end            BIGINT;
	// CREATE TABLE IF NOT EXISTS "billing_features" (
	//     customer_id   TEXT PRIMARY KEY,
	//     features      TEXT NOT NULL,                -- JSON array of lookup keys, sorted
	//     event_created BIGINT NOT NULL,              -- order key, as for subscriptions
	//     event_seq     BIGINT NOT NULL,
	//     event_id      TEXT NOT NULL DEFAULT '',
	//     updated_at    BIGINT NOT NULL               -- unix milliseconds
	// );
	// CREATE TABLE IF NOT EXISTS "billing_outbox" (
	//     change_seq    BIGSERIAL PRIMARY KEY, -- the change id is 'chg_' and this number; per user, commit order
	//     user_id       TEXT NOT NULL,
	//     before_view   TEXT NOT NULL,                -- JSON
	//     after_view    TEXT NOT NULL,                -- JSON
	//     cause         TEXT NOT NULL,                -- JSON
	//     committed_at  BIGINT NOT NULL,              -- unix milliseconds
	//     claim_token   TEXT,                         -- the live claim's, if any
	//     claimed_until BIGINT,                       -- unix milliseconds
	//     retry_at      BIGINT NOT NULL DEFAULT 0,    -- unix milliseconds: not due before
	//     attempts      INTEGER NOT NULL DEFAULT 0
	// );
	// CREATE INDEX IF NOT EXISTS "billing_outbox_user_id_idx" ON "billing_outbox" (user_id, change_seq);
	// -- the schema version, which Migrate reads
	// CREATE TABLE IF NOT EXISTS "billing_schema_version" (
	//     version    INTEGER PRIMARY KEY,
	//     applied_at BIGINT NOT NULL                  -- unix milliseconds, 0 when applied by hand
	// );
	// INSERT INTO "billing_schema_version" (version, applied_at) VALUES (1, 0), (2, 0) ON CONFLICT (version) DO NOTHING;
}

// An application's own users table, keyed by an integer id.
func ExampleWithUsersTable() {
	db, _ := sql.Open("pgx", "postgres://localhost/app")
	defer db.Close()
	store, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithUsersTable(sqlstore.UsersTable{
		Name:           "public.accounts",
		ID:             "id",
		Plan:           "plan",
		CustomerID:     "stripe_customer_id",
		SubscriptionID: "stripe_subscription_id",
	}))
	if err != nil {
		log.Fatal(err)
	}
	// The schema leaves the app's table alone and says what it needs.
	schema := store.Schema()
	fmt.Print(schema[:strings.Index(schema, "CREATE")])
	// Output:
	// -- github.com/contafy/billing/sqlstore schema (postgres), version 2
	// -- Users are the application's table "public"."accounts": the store reads and writes its columns
	// -- id (key), plan (text: FREE, BASIC, PRO), stripe_customer_id (text, nullable, indexed), stripe_subscription_id (text, nullable).
	// -- version 1: users, subscriptions, processed event ids
}
