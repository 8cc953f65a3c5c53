package billing_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
)

// TestLoad runs 100 goroutines x 100 requests on the portal endpoint and
// 100 x 100 deliveries on the webhook handler at once, on the MemoryStore
// (the SQL stores run the same billingtest.RunLoad in the sqlstore module).
// Under -short: 20 x 20 each.
func TestLoad(t *testing.T) {
	cfg := billingtest.LoadConfig{NewStore: func(testing.TB) (billing.SyncStore, billing.UserStore, func(billing.User)) {
		s := billing.NewMemoryStore()
		return s, s, func(u billing.User) { _ = s.PutUser(context.Background(), u) }
	}}
	if testing.Short() {
		cfg.Workers, cfg.Requests = 20, 20
	}
	st := billingtest.RunLoad(t, cfg)
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
