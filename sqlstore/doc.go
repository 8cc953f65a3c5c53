// Package sqlstore keeps the users and the Stripe subscription state of
// package billing in a SQL database through database/sql: a [Store]
// implements [billing.UserStore] (for the portal) and [billing.SyncStore]
// (for the webhook sync), so that several replicas of an application
// sharing one database see the same plans and apply every Stripe event
// once, in order.
//
// # Dialects
//
// One package serves PostgreSQL ([Postgres]) and SQLite ([SQLite]): the
// schema and the statements are the same but for the placeholders and the
// locking, so a [Dialect] value chosen in [New] is all that differs, and
// the two share one implementation and one contract test. The package
// imports no driver: the application opens its *sql.DB with the driver it
// already uses (for example github.com/jackc/pgx/v5/stdlib, lib/pq,
// modernc.org/sqlite or github.com/mattn/go-sqlite3) and passes it in:
//
//	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
//	...
//	store, err := sqlstore.New(db, sqlstore.Postgres)
//	...
//	if err := store.Migrate(ctx); err != nil { ... }
//
// # Schema
//
// [Store.Migrate] creates the tables if they do not exist (it is safe to run
// at every start, from every replica); [Store.Schema] returns the same
// statements for teams that run their migrations themselves. The store keeps
// three tables, named with a prefix ([WithTablePrefix], default "billing_"):
//
//   - billing_users: the app's user id, plan, Stripe customer id and the
//     subscription the plan comes from. [WithUsersTable] points the store at
//     the application's own users table instead (column names configurable).
//   - billing_subscriptions: each subscription's state and the order key of
//     the newest change applied to it (event created second, seq, event id).
//   - billing_events: the processed Stripe event ids with their expiry.
//
// # Atomicity, isolation and locking
//
// Every write ([Store.ApplySubscription], [Store.LinkCustomer],
// [Store.PutUser]) is one transaction whose decisions are taken on rows
// the transaction holds locked, never on a read that another writer could
// change before the write:
//
//   - PostgreSQL, READ COMMITTED: the event id is claimed first with
//     INSERT ... ON CONFLICT, which makes a concurrent delivery of the same
//     event wait and then see it (Duplicate). Then a transaction-scoped
//     advisory lock on the Stripe customer id (pg_advisory_xact_lock)
//     serializes every write that touches the customer's subscriptions, its
//     link to a user and that user's plan; then the subscription row is read
//     FOR UPDATE, compared with the change, written, and the user's plan
//     recomputed from the customer's stored subscriptions, all before the
//     commit releases the locks. A Tie rolls the transaction back, so its
//     event id is not remembered.
//   - SQLite: the transaction starts with BEGIN IMMEDIATE, which takes the
//     database's single write lock at once, so writers run one at a time
//     (readers go on in WAL mode).
//
// Lock order is always event id, then customer, then subscription, then
// user rows, so writers do not deadlock in normal use. Deadlocks and
// serialization failures (SQLSTATE 40P01, 40001) are retried a bounded
// number of times ([WithRetries]); SQLITE_BUSY is retried with backoff for
// a bounded time ([WithBusyTimeout]). A returned error means the
// transaction was rolled back and nothing was written: a context canceled
// during the statements rolls back; once they are done, the COMMIT is no
// longer cut short by the context (only a connection lost during the
// COMMIT itself leaves the outcome unknown, as with any database).
//
// # Event ids
//
// Event ids are remembered for the retention passed to
// [Store.ApplySubscription] (72 hours or more, as the webhook handler
// passes). Expired ids are deleted without a background goroutine: every
// few hundred writes one write also deletes a batch of them
// ([WithCleanupEvery]), and [Store.Cleanup] deletes them all when the
// application wants to (for example from its own cron).
//
// # SQLite notes
//
// Open the database with a busy timeout, in WAL mode and (for speed,
// safe in WAL mode) synchronous=NORMAL, for example with modernc.org/sqlite:
//
//	sql.Open("sqlite", "file:billing.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
//
// The store works without them (it retries "database is locked" itself for
// up to [WithBusyTimeout]), only slower. A Store also queues its own
// writing transactions in process, since SQLite has one writer at a time.
//
// A ":memory:" database is per connection: give it db.SetMaxOpenConns(1)
// or use a file.
package sqlstore
