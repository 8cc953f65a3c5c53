package sqlstore_test

import (
	"testing"

	"github.com/contafy/billing/billingtest/storetest"
)

// TestSyncProperty runs storetest's webhook sync property (1,000 random
// histories through a real WebhookHandler, shuffled, 20% duplicates,
// same-second ties read from a fake Stripe, injected faults, 8 concurrent
// workers) on PostgreSQL and SQLite with the contract's harness, and on
// PostgreSQL again with every store call spread over 3 store instances,
// each with its own *sql.DB, as 3 replicas behind a load balancer would.
func TestSyncProperty(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			checkPropertyStats(t, storetest.RunSyncProperty(t, e.harness(t), storetest.PropertyConfig{}))
		})
	}
	t.Run("postgres/replicas", func(t *testing.T) {
		e := engines()[0]
		checkPropertyStats(t, storetest.RunSyncProperty(t, e.harness(t), storetest.PropertyConfig{Replicas: 3}))
	})
}

// checkPropertyStats fails t if the run did not exercise what it claims.
func checkPropertyStats(t *testing.T, stats storetest.PropertyStats) {
	t.Helper()
	if stats.Histories != 1000 {
		t.Errorf("histories = %d, want 1000", stats.Histories)
	}
	if err := stats.Exercised(); err != nil {
		t.Error(err)
	}
}
