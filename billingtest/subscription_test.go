package billingtest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

// TestSubscriptionJSON checks that the one renderer serves both sides: a
// spec read from the fake, the same spec as an event's data.object and
// [billingtest.SubscriptionObject] decode to the same *stripe.Subscription.
func TestSubscriptionJSON(t *testing.T) {
	created := time.Unix(1700000000, 0)
	tests := []billingtest.SubscriptionSpec{
		{ID: "sub_j", Customer: "cus_j", Status: "trialing", PriceID: billingtest.PricePro,
			LookupKey: billingtest.LookupKeyPro, ProductID: billingtest.ProductPro, Created: created},
		{ID: "sub_k", Customer: "cus_j", Status: "canceled", Created: created, CanceledAt: created.Add(time.Hour),
			Metadata: map[string]string{"k": "v"}},
		{ID: "sub_l", Customer: "cus_j", PriceID: "price_x", Created: created, ProductMetadata: map[string]string{"plan": "PRO"}},
	}
	s := billingtest.StartStripe(t)
	for _, sub := range tests {
		t.Run(sub.ID, func(t *testing.T) {
			s.PutSubscription(sub)
			var fromJSON stripe.Subscription
			if err := json.Unmarshal(mustJSON(t, billingtest.SubscriptionObject(sub, time.Now())), &fromJSON); err != nil {
				t.Fatalf("decode SubscriptionObject: %v", err)
			}
			fromAPI, err := s.SubscriptionClient().Get(sub.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			fromAPI.LastResponse = nil
			if diff := cmp.Diff(fromAPI, &fromJSON); diff != "" {
				t.Errorf("SubscriptionObject differs from the API's reply (-api +object):\n%s", diff)
			}
			var ev struct {
				Data struct{ Object stripe.Subscription }
			}
			if err := json.Unmarshal(billingtest.SubscriptionEvent("customer.subscription.updated", sub, created.Add(time.Minute)), &ev); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fromAPI, &ev.Data.Object); diff != "" {
				t.Errorf("the event's data.object differs from the API's reply (-api +event):\n%s", diff)
			}
			if fromJSON.Customer.ID != "cus_j" || fromJSON.Items.Data[0].Price.ID != stored(t, s, sub.ID).PriceID || fromJSON.Status != stripe.SubscriptionStatus(stored(t, s, sub.ID).Status) {
				t.Errorf("decoded = %+v", fromJSON)
			}
		})
	}
	if got := billingtest.SubscriptionObject(tests[0], created)["items"].(map[string]any)["data"].([]any)[0].(map[string]any)["price"].(map[string]any)["product"]; got != billingtest.ProductPro {
		t.Errorf("product = %v, want the id %s", got, billingtest.ProductPro)
	}
}

func stored(t *testing.T, s *billingtest.Stripe, id string) billingtest.SubscriptionSpec {
	t.Helper()
	sub, ok := s.Subscription(id)
	if !ok {
		t.Fatalf("Subscription(%s) not found", id)
	}
	return sub
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
