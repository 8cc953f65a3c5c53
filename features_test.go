package billing_test

import (
	"context"
	"testing"

	"github.com/stripe/stripe-go/v76/entitlements/activeentitlement"
	"github.com/stripe/stripe-go/v76/subscription"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/testenv"
)

// TestStripeMockAcceptsEntitlementList: the return sync's read of the
// active entitlements list has a shape Stripe's own mock accepts, and its
// features reach the store.
func TestStripeMockAcceptsEntitlementList(t *testing.T) {
	b := billing.NewBackend(testenv.StripeMockBackendConfig(t))
	store := billing.NewMemoryStore(billing.User{ID: "u1", StripeCustomerID: "cus_1"})
	rs, err := billing.NewReturnSync(billing.ReturnSyncConfig{
		Auth: billingtest.NewStaticAuth(), Users: store, Store: store, Redirect: "/account",
		Subscriptions: &subscription.Client{B: b, Key: "sk_test_stripemock"},
		Entitlements:  &activeentitlement.Client{B: b, Key: "sk_test_stripemock"},
		Rules:         billing.PlanRules{Prices: billingtest.Prices()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Sync(context.Background(), "u1"); err != nil {
		t.Fatalf("Sync against stripe-mock: %v", err)
	}
	a, _, _ := store.Account(context.Background(), "u1")
	if len(a.Features) == 0 {
		t.Fatalf("no features stored from stripe-mock's entitlement list: %+v", a)
	}
}
