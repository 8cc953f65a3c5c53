package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/sqlstore"
)

// BenchmarkApply measures the webhook sync's write path on each database:
// ApplySubscription of a new, newer event that changes the user's plan
// (outcome Applied: event id claimed, customer locked, subscription
// written, user's plan recomputed and, where the store has an outbox, a
// plan change recorded), over 100 customers with linked users, from one
// goroutine. It reports events per second, and beside them the database's
// floor: the rate of the smallest durable write through the same pool (one
// transaction holding one INSERT, framed as the store frames its writes:
// BEGIN, or BEGIN IMMEDIATE on SQLite, then INSERT and COMMIT), measured in
// the same loop, one floor write after each apply, so that both see the
// same machine and the same moment. apply/floor is the ratio of the two
// rates: how close the apply path comes to the cheapest write the database
// can commit. The ns/op covers both halves.
func BenchmarkApply(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s, f := benchStore(b, e)
			var (
				n                    int64
				applyTime, floorTime time.Duration
			)
			b.ResetTimer()
			for b.Loop() {
				n++
				t0 := time.Now()
				benchApply(b, s, n)
				t1 := time.Now()
				f.write(b, n)
				floorTime += time.Since(t1)
				applyTime += t1.Sub(t0)
			}
			reportFloor(b, n, applyTime, floorTime)
		})
	}
}

// BenchmarkApplyParallel is BenchmarkApply from 8 goroutines per CPU at
// once, as a webhook endpoint under a burst of events is. The floor is
// measured from as many goroutines, in a phase of its own just before the
// applies (interleaved, each half would slow the other down).
func BenchmarkApplyParallel(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s, f := benchStore(b, e)
			var (
				n, m                 atomic.Int64
				applyTime, floorTime time.Duration
			)
			b.SetParallelism(8)
			b.ResetTimer()
			// b.Loop cannot drive RunParallel; the benchmark function is
			// called again with a growing b.N, and each call runs both
			// phases with b.N operations.
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f.write(b, m.Add(1))
				}
			})
			floorTime = time.Since(start)
			start = time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchApply(b, s, n.Add(1))
				}
			})
			applyTime = time.Since(start)
			reportFloor(b, int64(b.N), applyTime, floorTime)
		})
	}
}

// reportFloor reports n applies in applyTime and n floor writes in
// floorTime as rates and their ratio.
func reportFloor(b *testing.B, n int64, applyTime, floorTime time.Duration) {
	if n == 0 || applyTime <= 0 || floorTime <= 0 {
		return
	}
	b.ReportMetric(float64(n)/applyTime.Seconds(), "events/s")
	b.ReportMetric(float64(n)/floorTime.Seconds(), "floor-commits/s")
	b.ReportMetric(floorTime.Seconds()/applyTime.Seconds(), "apply/floor")
}

const benchCustomers = 100

// benchStore returns a store on a new database with benchCustomers linked
// users, and the floor writer on the same pool.
func benchStore(b *testing.B, e engine) (*sqlstore.Store, *floor) {
	users := make([]billing.User, benchCustomers)
	for i := range users {
		users[i] = billing.User{ID: fmt.Sprintf("u%d", i), Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_%d", i)}
	}
	db := e.open(b, e.database(b))
	s := newStore(b, db, e.dialect, users)
	f := &floor{db: db, dialect: e.dialect}
	if _, err := db.Exec(`CREATE TABLE bench_floor (id BIGINT PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	f.insert = `INSERT INTO bench_floor (id, v) VALUES (?, 'x')`
	if e.dialect == sqlstore.Postgres {
		f.insert = `INSERT INTO bench_floor (id, v) VALUES ($1, 'x')`
	}
	return s, f
}

// floor makes the smallest durable write of the database: one transaction
// with one INSERT, on the store's pool.
type floor struct {
	db      *sql.DB
	dialect sqlstore.Dialect
	insert  string
	mu      sync.Mutex // SQLite: one writer at a time, as the store queues them
}

func (f *floor) write(b *testing.B, i int64) {
	ctx := context.Background()
	if f.dialect == sqlstore.Postgres {
		tx, err := f.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, f.insert, i); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	conn, err := f.db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for _, st := range []string{"BEGIN IMMEDIATE", f.insert, "COMMIT"} {
		var args []any
		if st == f.insert {
			args = []any{i}
		}
		if _, err := conn.ExecContext(ctx, st, args...); err != nil {
			b.Fatal(err)
		}
	}
}

var benchPlans = []billing.Plan{billing.Basic, billing.Pro}

// benchApply applies event i: customer i%benchCustomers's subscription,
// one second later than its previous event, on the other plan than that
// event's and with the next period, so that every applied event changes
// the user's plan and view (the write path at its longest: the user's
// plan set, and a plan change recorded where the store has an outbox).
func benchApply(b *testing.B, s *sqlstore.Store, i int64) {
	c := i % benchCustomers
	created := time.Unix(1_700_000_000+i, 0)
	change := billing.SubscriptionChange{
		EventID: fmt.Sprintf("evt_bench_%d", i),
		Subscription: billing.Subscription{
			ID: fmt.Sprintf("sub_%d", c), CustomerID: fmt.Sprintf("cus_%d", c),
			Status: "active", Plan: benchPlans[(i/benchCustomers)%2], PriceID: "price_bench",
			Items:              []billing.SubscriptionItem{{PriceID: "price_bench", Quantity: 1}},
			CurrentPeriodStart: created, CurrentPeriodEnd: created.Add(30 * 24 * time.Hour),
		},
		Created: created,
		Seq:     2,
		Cause:   billing.Cause{Kind: billing.CauseWebhook, EventID: fmt.Sprintf("evt_bench_%d", i), EventType: "customer.subscription.updated"},
	}
	out, err := s.ApplySubscription(context.Background(), change, 72*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	if out != billing.Applied && out != billing.Stale {
		b.Fatalf("outcome %v", out)
	}
}
