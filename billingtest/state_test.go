package billingtest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

func TestSubscriptionJSON(t *testing.T) {
	s := billingtest.StartStripe(t)
	sub := billingtest.StripeSubscription{ID: "sub_j", Customer: "cus_j", Status: "trialing", PriceID: billingtest.PricePro,
		LookupKey: billingtest.LookupKeyPro, ProductID: billingtest.ProductPro, Created: time.Unix(1700000000, 0)}
	s.PutSubscription(sub)
	var fromJSON stripe.Subscription
	if err := json.Unmarshal(sub.JSON(), &fromJSON); err != nil {
		t.Fatalf("decode JSON(): %v", err)
	}
	fromAPI, err := s.SubscriptionClient().Get("sub_j", nil)
	if err != nil {
		t.Fatal(err)
	}
	fromAPI.LastResponse = nil
	if diff := cmp.Diff(fromAPI, &fromJSON); diff != "" {
		t.Errorf("JSON() differs from the API's reply (-api +json):\n%s", diff)
	}
	if fromJSON.Customer.ID != "cus_j" || fromJSON.Items.Data[0].Price.Product.ID != billingtest.ProductPro || fromJSON.Status != "trialing" {
		t.Errorf("decoded = %+v", fromJSON)
	}
}
