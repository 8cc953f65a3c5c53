package sqlstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/sqlstore"
)

// TestSyncProperty runs the webhook sync property of package billingtest
// (1,000 random histories through a real WebhookHandler, shuffled, 20%
// duplicates, same-second ties read from a fake Stripe, injected faults,
// 8 concurrent workers) on PostgreSQL and SQLite, and on PostgreSQL again
// with every store call spread over 3 store instances, each with its own
// *sql.DB, as 3 replicas behind a load balancer would.
func TestSyncProperty(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t, e.database(t))
			stats := billingtest.RunSyncProperty(t, billingtest.PropertyConfig{
				NewStore: func(t testing.TB) (billing.SyncStore, billing.UserStore, func(billing.User)) {
					s := newStore(t, db, e.dialect, nil)
					return s, s, putUser(t, s)
				},
			})
			checkPropertyStats(t, stats)
		})
	}
	t.Run("postgres/replicas", func(t *testing.T) {
		e := engines()[0]
		dsn := e.database(t)
		stats := billingtest.RunSyncProperty(t, billingtest.PropertyConfig{
			NewStore: func(t testing.TB) (billing.SyncStore, billing.UserStore, func(billing.User)) {
				rr := &roundRobin{}
				for range 3 {
					rr.stores = append(rr.stores, newStore(t, e.open(t, dsn), e.dialect, nil))
				}
				return rr, rr.stores[1], putUser(t, rr.stores[2])
			},
		})
		checkPropertyStats(t, stats)
	})
}

func putUser(t testing.TB, s *sqlstore.Store) func(billing.User) {
	return func(u billing.User) {
		if err := s.PutUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
}

// checkPropertyStats fails t if the run did not exercise what it claims.
func checkPropertyStats(t *testing.T, stats billingtest.PropertyStats) {
	t.Helper()
	switch {
	case stats.Histories != 1000:
		t.Errorf("histories = %d, want 1000", stats.Histories)
	case stats.Duplicates < stats.Events/10:
		t.Errorf("only %d duplicates for %d events", stats.Duplicates, stats.Events)
	case stats.Outcomes["duplicate"] == 0, stats.Outcomes["stale"] == 0, stats.Outcomes["linked"] == 0:
		t.Errorf("outcomes %v lack duplicates, stale events or links", stats.Outcomes)
	case stats.StripeReads == 0 || stats.Retries == 0:
		t.Errorf("no tie reads (%d) or no retries (%d)", stats.StripeReads, stats.Retries)
	}
}

// roundRobin sends each call to the next of several stores, as a load
// balancer spreads webhook deliveries over an app's replicas.
type roundRobin struct {
	stores []*sqlstore.Store
	n      atomic.Uint64
}

func (r *roundRobin) next() *sqlstore.Store {
	return r.stores[r.n.Add(1)%uint64(len(r.stores))]
}

func (r *roundRobin) UserByCustomer(ctx context.Context, customerID string) (billing.User, bool, error) {
	return r.next().UserByCustomer(ctx, customerID)
}

func (r *roundRobin) ApplySubscription(ctx context.Context, c billing.SubscriptionChange, retain time.Duration) (billing.Outcome, error) {
	return r.next().ApplySubscription(ctx, c, retain)
}

func (r *roundRobin) LinkCustomer(ctx context.Context, userID, customerID string) (bool, error) {
	return r.next().LinkCustomer(ctx, userID, customerID)
}
