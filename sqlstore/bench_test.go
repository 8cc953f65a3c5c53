package sqlstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/sqlstore"
)

// BenchmarkApply measures the webhook sync's write path on each database:
// ApplySubscription of a new, newer event (outcome Applied: event id
// claimed, customer locked, subscription written, user's plan recomputed),
// over 100 customers with linked users, from one goroutine. It reports
// events per second.
func BenchmarkApply(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s := benchStore(b, e)
			var n atomic.Int64
			b.ResetTimer()
			for b.Loop() {
				benchApply(b, s, n.Add(1))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkApplyParallel is BenchmarkApply from 8 goroutines per CPU at
// once, as a webhook endpoint under a burst of events is.
func BenchmarkApplyParallel(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s := benchStore(b, e)
			var n atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchApply(b, s, n.Add(1))
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

const benchCustomers = 100

func benchStore(b *testing.B, e engine) *sqlstore.Store {
	users := make([]billing.User, benchCustomers)
	for i := range users {
		users[i] = billing.User{ID: fmt.Sprintf("u%d", i), Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_%d", i)}
	}
	return newStore(b, e.open(b, e.database(b)), e.dialect, users)
}

var benchPlans = []billing.Plan{billing.Basic, billing.Pro}

func benchApply(b *testing.B, s *sqlstore.Store, i int64) {
	c := i % benchCustomers
	change := billing.SubscriptionChange{
		EventID: fmt.Sprintf("evt_bench_%d", i),
		Subscription: billing.Subscription{
			ID: fmt.Sprintf("sub_%d", c), CustomerID: fmt.Sprintf("cus_%d", c),
			Status: "active", Plan: benchPlans[i%2],
		},
		Created: time.Unix(1_700_000_000+i, 0),
	}
	out, err := s.ApplySubscription(context.Background(), change, 72*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	if out != billing.Applied && out != billing.Stale {
		b.Fatalf("outcome %v", out)
	}
}
