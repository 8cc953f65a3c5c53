package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/ops"
	"github.com/stripe/stripe-go/v76/subscription"
)

// BenchmarkReconcile reconciles 10,000 subscriptions of the emulator (100
// pages) per iteration and reports subscriptions per second, and list calls
// and all calls per 100 subscriptions:
//
//   - memory: ops.Reconcile into a MemoryStore, the emulator's and the
//     library's share of the time;
//   - sqlite: `billing reconcile -db FILE` in-process, as an operator runs
//     it (every subscription one SQLite transaction, synced: the demo's
//     DSN defaults);
//   - sqlite-normal: the same with synchronous=NORMAL, which sqlstore
//     recommends for WAL mode (commits are not synced one by one).
//
// The first iteration applies every subscription (all plans drifted); the
// later ones apply reads that change no plan.
//
//	go test -run '^$' -bench Reconcile -benchtime 3x ./cmd/billing
func BenchmarkReconcile(b *testing.B) {
	const n = 10_000
	s, environ := startCatalog(b, billingtest.EmulatorConfig{})
	for i := range n {
		price := billingtest.PriceBasic
		if i%2 == 0 {
			price = billingtest.PricePro
		}
		s.PutSubscription(billingtest.SubscriptionSpec{ID: fmt.Sprintf("sub_%05d", i), Customer: fmt.Sprintf("cus_%05d", i), PriceID: price})
	}
	// report reads the emulator's recorded calls: the list calls, and every
	// call (a per-subscription read would show there).
	report := func(b *testing.B) {
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "subs/s")
		b.ReportMetric(float64(s.CallCount("GET "+billingtest.PathSubscriptions))*100/float64(n*b.N), "lists/100subs")
		b.ReportMetric(float64(s.CallCount("*"))*100/float64(n*b.N), "calls/100subs")
		b.ReportMetric(0, "ns/op")
	}

	b.Run("memory", func(b *testing.B) {
		store := billing.NewMemoryStore()
		for i := range n {
			_ = store.PutUser(context.Background(), billing.User{ID: fmt.Sprintf("u_%05d", i), Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_%05d", i)})
		}
		s.Reset()
		b.ResetTimer()
		for range b.N {
			rep, err := ops.Reconcile(context.Background(), ops.ReconcileConfig{Store: store,
				Subscriptions: &subscription.Client{B: backend(s), Key: billingtest.TestKey},
				Rules:         billing.PlanRules{Prices: billingtest.Prices()}, RatePerSecond: 1e6})
			if err != nil || rep.Read != n {
				b.Fatalf("%+v, %v", withoutDrift(rep), err)
			}
		}
		report(b)
	})
	for _, tc := range []struct{ name, query string }{
		{"sqlite", ""},
		{"sqlite-normal", "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "billing.db") + tc.query
			store := openTestStore(b, dsn)
			for i := range n {
				if err := store.PutUser(context.Background(), billing.User{ID: fmt.Sprintf("u_%05d", i), Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_%05d", i)}); err != nil {
					b.Fatal(err)
				}
			}
			s.Reset()
			b.ResetTimer()
			for range b.N {
				code, _, stderr := runEnv(b, context.Background(), environ, "reconcile", "-db", dsn, "-price-plans", standardPlans, "-rate", "1000000", "-json")
				if code != 0 {
					b.Fatalf("exit %d: %s", code, stderr)
				}
			}
			report(b)
		})
	}
}
