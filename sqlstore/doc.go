// Package sqlstore keeps the users, the Stripe subscription state and the
// plan changes of package billing in a SQL database through database/sql:
// a [Store] implements [billing.UserStore] (for the portal),
// [billing.SyncStore] and [billing.FeatureStore] (for the webhook sync and
// the return sync), [billing.AccountStore] (for the status endpoint and
// [billing.ViewOf]) and [billing.Outbox] (for a [billing.Notifier]), so
// that several replicas of an application sharing one database see the
// same plans, apply every Stripe event once, in order, and deliver every
// plan change to the app's hook at least once.
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
// The store keeps six tables, named with a prefix ([WithTablePrefix],
// default "billing_"):
//
//   - billing_users: the app's user id, plan, Stripe customer id and the
//     subscription the plan comes from. [WithUsersTable] points the store at
//     the application's own users table instead (column names configurable).
//   - billing_subscriptions: each subscription's state, its items (a JSON
//     array), its lifecycle facts (cancel_at_period_end, cancel_at,
//     canceled_at, ended_at, current_period_start, current_period_end,
//     trial_end: unix seconds, NULL when not set) and the order key of the
//     newest change applied to it (event created second, seq, event id).
//   - billing_events: the processed Stripe event ids with their expiry.
//   - billing_features: each customer's active features (the lookup keys,
//     a JSON array) with the order key of the change that set them.
//   - billing_outbox: the plan changes not yet delivered: the change's
//     number (the id is "chg_" and it), the user, the views before and
//     after and the cause (JSON), the commit time, and the delivery state
//     (claim token, claimed until, retry at, attempts).
//   - billing_schema_version: the schema versions applied.
//
// [Store.Migrate] brings any database to the current schema: it creates
// the tables in an empty one, and upgrades a database made by an earlier
// version of this package in place, keeping every row (version 1, before
// the facts, the features and the outbox, gains the new columns with their
// defaults and the new tables; its subscriptions read as subscriptions
// without facts until their next event). It runs in one transaction under
// a lock (PostgreSQL: a transaction-scoped advisory lock; SQLite: BEGIN
// IMMEDIATE), records the versions it applied, and is safe to run at every
// start, from every replica at once. [Store.Schema] returns the statements
// of every version, for teams that run their migrations themselves. With
// [WithUsersTable] the application's table is never created or altered.
// During a rolling upgrade, replicas still running version 1 of this
// package keep applying events but store no facts and record no plan
// changes; each subscription's facts are complete again with its next
// event applied by an upgraded replica.
//
// # Atomicity, isolation and locking
//
// Every write ([Store.ApplySubscription], [Store.ApplyFeatures],
// [Store.LinkCustomer], [Store.PutUser]) is one transaction whose
// decisions are taken on rows the transaction holds locked, never on a
// read that another writer could change before the write:
//
//   - PostgreSQL, READ COMMITTED: the event id is claimed with INSERT ...
//     ON CONFLICT, which makes a concurrent delivery of the same event wait
//     and then see it (Duplicate), and in the same statement, once the id
//     is claimed, a transaction-scoped advisory lock on the Stripe customer
//     id (pg_advisory_xact_lock) is taken: it serializes every write that
//     touches the customer's subscriptions, its features, its link to a
//     user and that user's plan. Then one statement reads, in the snapshot
//     taken after the lock, the subscription's row FOR UPDATE, the
//     customer's other subscriptions, the linked users' rows FOR UPDATE and
//     the customer's features. The store compares the change with the
//     stored order key and computes in Go the users' plans and their views
//     before and after ([billing.Account.View]); one statement then writes
//     the subscription, the users' plans and a plan change per user whose
//     view differs, and the transaction commits, releasing the locks. Five
//     round trips per applied event (BEGIN, claim and lock, read, write,
//     COMMIT). A Tie or a Duplicate rolls the transaction back, so a tie's
//     event id is not remembered.
//   - SQLite: a transaction takes the database's single write lock with its
//     first statement (the claim, or a write that changes nothing), before
//     any read, so writers run one at a time (readers go on in WAL mode);
//     the decisions are those of PostgreSQL. The statements are prepared
//     once per connection: SQLite would otherwise parse each one again,
//     which costs more than running it.
//
// Lock order is always event id, then customers (in the order of their
// lock keys, when a link touches two), then subscription, then user rows,
// so writers do not deadlock in normal use. Deadlocks and serialization
// failures (SQLSTATE 40P01, 40001) are retried a bounded number of times
// ([WithRetries]); SQLITE_BUSY is retried with backoff for a bounded time
// ([WithBusyTimeout]). A returned error means the transaction was rolled
// back and nothing was written: a context canceled during the statements
// rolls back; once they are done, the COMMIT is no longer cut short by the
// context (only a connection lost during the COMMIT itself leaves the
// outcome unknown, as with any database).
//
// # The outbox
//
// A plan change is recorded in the transaction that changes a user's view
// ([billing.View]: plan, access, status, dates, payment problem,
// features): ApplySubscription and ApplyFeatures for the users linked to
// the customer, LinkCustomer for the user linked and for the user the
// customer was taken from. A duplicate, stale or tied change, or one that
// leaves every view as it was, records none; PutUser (seeding) records
// none. So a committed change is never lost, and none is recorded for a
// write that was rolled back.
//
// Every write recording a change for a user holds that user's row lock
// until it commits, so a user's changes are numbered (change_seq, a
// sequence) in commit order. [Store.ClaimChanges] claims, in one
// statement, for each user only the lowest-numbered pending change, and
// only when it is due (retry_at passed) and under no live claim; it sets a
// random claim token, claimed_until = now + lease and attempts + 1. On
// PostgreSQL the candidate rows are taken FOR UPDATE SKIP LOCKED: replicas
// claiming at once never get the same change nor wait for each other, and
// a user's next change stays unclaimable while the earlier one exists
// (NOT EXISTS an earlier change of the user), claimed or not. So each
// user's changes go out one at a time, in commit order, across all
// replicas. [Store.CompleteChange] deletes the change and
// [Store.ReleaseChange] unclaims it with a retry time, both only if the
// token still matches: a claim whose lease expired and was taken by
// another replica is no longer the caller's, and its complete or release
// does nothing. Times are the database's (now()) on PostgreSQL, one clock
// for every replica, and the store's clock ([WithClock]) on SQLite.
//
// Changes wait in billing_outbox until a [billing.Notifier] delivers them
// (the webhook handler and the return sync deliver right after their
// commit when configured with one; call [billing.Notifier.Deliver] from a
// worker of yours for what is left): an application without a hook never
// claims them, and they accumulate, one row per plan change.
// [Store.PendingChanges] lists them.
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
// writing transactions in process, since SQLite has one writer at a time,
// and keeps its statements prepared on the connections of db: make one
// Store per database for the life of the application ([Store.Close]
// releases them).
//
// A ":memory:" database is per connection: give it db.SetMaxOpenConns(1)
// or use a file.
package sqlstore
