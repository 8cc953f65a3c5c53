package billing_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// TestEventsDecodeWithStripeGo checks that the kit's events are what
// stripe-go's own webhook package and types accept.
func TestEventsDecodeWithStripeGo(t *testing.T) {
	payload := billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, Status: "past_due", PriceID: "price_pro", LookupKey: "pro_m"}, t0)
	ev, err := webhook.ConstructEventWithOptions(payload, billingtest.Sign(payload, secret, time.Now()), secret, webhook.ConstructEventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var s stripe.Subscription
	if err := json.Unmarshal(ev.Data.Raw, &s); err != nil {
		t.Fatal(err)
	}
	got := []string{string(ev.Type), s.ID, s.Customer.ID, string(s.Status), s.Items.Data[0].Price.ID, s.Items.Data[0].Price.LookupKey, s.Items.Data[0].Price.Product.ID}
	want := []string{"customer.subscription.updated", sub1, cus1, "past_due", "price_pro", "pro_m", "prod_price_pro"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("decoded (-want +got):\n%s", d)
	}
	cs := billingtest.CheckoutCompletedEvent(billingtest.CheckoutSpec{ClientReferenceID: user1, Customer: cus1}, t0)
	ev, err = webhook.ConstructEvent(cs, billingtest.Sign(cs, secret, time.Now()), secret)
	if err != nil {
		t.Fatal(err)
	}
	var sess stripe.CheckoutSession
	if err := json.Unmarshal(ev.Data.Raw, &sess); err != nil || sess.ClientReferenceID != user1 || sess.Customer.ID != cus1 {
		t.Fatalf("checkout session = %+v, %v", sess, err)
	}
	other := billingtest.WebhookRequest(payload, secret, billingtest.RequestOptions{Variant: billingtest.OtherAPIVersionSignature})
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(other.Body)
	if _, err := webhook.ConstructEvent(body.Bytes(), other.Header.Get("Stripe-Signature"), secret); err == nil || !strings.Contains(err.Error(), "API version") {
		t.Fatalf("stripe-go accepted the other API version: %v", err)
	}
}
