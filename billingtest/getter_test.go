package billingtest_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"

	"github.com/contafy/billing/billingtest"
)

func TestSubscriptionGetter(t *testing.T) {
	spec := billingtest.SubscriptionSpec{ID: "sub_g", Customer: "cus_g", Status: "past_due", PriceID: billingtest.PricePro,
		ProductMetadata: map[string]string{"plan": "PRO"}}
	g := billingtest.NewSubscriptionGetter(spec)
	p := &stripe.SubscriptionParams{}
	p.AddExpand("items.data.price.product")
	got, err := g.Get("sub_g", p)
	if err != nil {
		t.Fatal(err)
	}
	// What the fake Stripe answers for the same spec.
	s := billingtest.StartStripe(t)
	s.PutSubscription(billingtest.SubscriptionSpec{ID: "sub_g", Customer: "cus_g", Status: "past_due", PriceID: billingtest.PricePro,
		ProductMetadata: map[string]string{"plan": "PRO"}})
	api, err := s.SubscriptionClient().Get("sub_g", nil)
	if err != nil {
		t.Fatal(err)
	}
	api.LastResponse = nil
	ignoreTimes := cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".Created", ".StartDate", ".CurrentPeriodStart", ".CurrentPeriodEnd":
			return true
		}
		return false
	}, cmp.Ignore())
	if d := cmp.Diff(api, got, ignoreTimes); d != "" {
		t.Errorf("getter's subscription differs from the fake's (-fake +getter):\n%s", d)
	}
	got.Status = "mutated"
	if again, _ := g.Get("sub_g", nil); again.Status != "past_due" {
		t.Errorf("a read's copy is shared: status %q", again.Status)
	}

	_, err = g.Get("sub_none", nil)
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing || se.RequestID == "" {
		t.Errorf("unknown subscription: %v, want 404 resource_missing with a request id", err)
	}
	reads := g.Reads()
	if len(reads) != 3 || g.Calls() != 3 || reads[0].Params != p || reads[0].Err != nil || reads[2].ID != "sub_none" || reads[2].Err != err {
		t.Errorf("reads = %+v", reads)
	}

	down := errors.New("down")
	var mu sync.Mutex
	failing := true
	inner := billingtest.NewSubscriptionGetter(billingtest.SubscriptionSpec{ID: "sub_n", Customer: "cus_n"})
	rec := &billingtest.SubscriptionGetter{Next: inner, Fail: func(id string) error {
		mu.Lock()
		defer mu.Unlock()
		if failing && id == "sub_n" {
			return down
		}
		return nil
	}}
	if _, err := rec.Get("sub_n", nil); !errors.Is(err, down) {
		t.Errorf("Fail's error not returned: %v", err)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if sub, err := rec.Get("sub_n", nil); err != nil || sub.Customer.ID != "cus_n" {
		t.Errorf("Next's answer = %+v, %v", sub, err)
	}
	if rec.Calls() != 2 || inner.Calls() != 1 {
		t.Errorf("calls = %d (recorded) and %d (passed on), want 2 and 1", rec.Calls(), inner.Calls())
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.Put(billingtest.SubscriptionSpec{ID: "sub_c", Customer: "cus_c"})
			_, _ = g.Get("sub_c", nil)
			_ = g.Reads()
		}()
	}
	wg.Wait()
}
