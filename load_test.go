package billing_test

import (
	"net/http"
	"testing"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest/storetest"
)

// memoryHarness is storetest's harness of the MemoryStore, for the load and
// the sync property (storetest runs the contract on it).
var memoryHarness = storetest.Harness{
	New: func(_ *testing.T, users []billing.User) storetest.Store { return billing.NewMemoryStore(users...) },
}

// TestLoad runs 100 goroutines x 100 requests on the portal endpoint and
// 100 x 100 deliveries on the webhook handler at once, on the MemoryStore
// (the SQL stores run the same storetest.RunLoad in the sqlstore module).
// Under -short: 20 x 20 each.
func TestLoad(t *testing.T) {
	var cfg storetest.LoadConfig
	if testing.Short() {
		cfg.Workers, cfg.Requests = 20, 20
	}
	st := storetest.RunLoad(t, memoryHarness, cfg)
	t.Logf("%d portal requests %v and %d webhook deliveries %v (%d distinct events) in %v, %d Stripe calls",
		sum(st.Portal), st.Portal, sum(st.Webhook), st.Webhook, st.Events, st.Elapsed, st.StripeCalls)
	if st.Portal[http.StatusOK] == 0 || st.Webhook["applied"] == 0 || st.Webhook["duplicate"] == 0 {
		t.Errorf("the load exercised too little: %v %v", st.Portal, st.Webhook)
	}
}

func sum[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
