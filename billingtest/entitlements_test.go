package billingtest_test

import (
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

// productFeatureParams are POST /v1/products/{id}/features's, which
// stripe-go v76 has no client for.
type productFeatureParams struct {
	stripe.Params      `form:"*"`
	EntitlementFeature *string `form:"entitlement_feature"`
}

type productFeature struct {
	stripe.APIResource
	ID                 string                      `json:"id"`
	Object             string                      `json:"object"`
	Deleted            bool                        `json:"deleted"`
	EntitlementFeature *stripe.EntitlementsFeature `json:"entitlement_feature"`
}

func TestEntitlements(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.SeedCatalog()
	s.AddCustomer("cus_ent")
	api := s.API()
	b := s.Backend()

	export, err := api.EntitlementsFeatures.New(&stripe.EntitlementsFeatureParams{Name: stripe.String("Export"), LookupKey: stripe.String("export")})
	if err != nil {
		t.Fatal(err)
	}
	seats, err := api.EntitlementsFeatures.New(&stripe.EntitlementsFeatureParams{Name: stripe.String("Seats"), LookupKey: stripe.String("seats")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.EntitlementsFeatures.New(&stripe.EntitlementsFeatureParams{Name: stripe.String("Again"), LookupKey: stripe.String("export")}); !isCode(err, 400, "") {
		t.Errorf("duplicate lookup key: %v, want 400", err)
	}
	attach := func(product, feature string) productFeature {
		t.Helper()
		var pf productFeature
		if err := b.Call("POST", "/v1/products/"+product+"/features", billingtest.TestKey,
			&productFeatureParams{EntitlementFeature: stripe.String(feature)}, &pf); err != nil {
			t.Fatalf("attach %s to %s: %v", feature, product, err)
		}
		return pf
	}
	attach(billingtest.ProductBasic, export.ID)
	proSeats := attach(billingtest.ProductPro, seats.ID)
	attach(billingtest.ProductPro, export.ID)
	if proSeats.Object != "product_feature" || proSeats.EntitlementFeature.LookupKey != "seats" {
		t.Errorf("product feature = %+v", proSeats)
	}

	active := func() []string {
		var keys []string
		it := api.EntitlementsActiveEntitlements.List(&stripe.EntitlementsActiveEntitlementListParams{Customer: stripe.String("cus_ent")})
		for it.Next() {
			keys = append(keys, it.EntitlementsActiveEntitlement().LookupKey)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	summaries := func() int { return len(s.Events("entitlements.active_entitlement_summary.updated")) }
	lastSummary := func() []string {
		ev := lastEvent(t, s, "entitlements.active_entitlement_summary.updated")
		var keys []string
		for _, e := range ev.Data.Object["entitlements"].(map[string]any)["data"].([]any) {
			keys = append(keys, e.(map[string]any)["lookup_key"].(string))
		}
		return keys
	}
	if got := active(); len(got) != 0 || summaries() != 0 {
		t.Fatalf("before any subscription: %v, %d summaries", got, summaries())
	}

	sub, err := api.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String("cus_ent"),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PriceBasic)}}})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		do     func() error
		want   []string
		events int // summary events emitted by the step
	}{
		{"basic", func() error { return nil }, []string{"export"}, 0},
		{"upgrade to pro", func() error {
			_, err := api.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{Items: []*stripe.SubscriptionItemsParams{{ID: stripe.String(sub.Items.Data[0].ID), Price: stripe.String(billingtest.PricePro)}}})
			return err
		}, []string{"seats", "export"}, 1},
		{"cancel at period end keeps them", func() error {
			_, err := api.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)})
			return err
		}, []string{"seats", "export"}, 0},
		{"archived feature", func() error {
			_, err := api.EntitlementsFeatures.Update(seats.ID, &stripe.EntitlementsFeatureParams{Active: stripe.Bool(false)})
			return err
		}, []string{"export"}, 1},
		{"detached from the product", func() error {
			var pf productFeature
			return b.Call("DELETE", "/v1/products/"+billingtest.ProductPro+"/features/"+proSeats.ID, billingtest.TestKey, nil, &pf)
		}, []string{"export"}, 0},
		{"canceled", func() error { _, err := api.Subscriptions.Cancel(sub.ID, nil); return err }, nil, 1},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := summaries()
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(st.want, active()); diff != "" {
				t.Errorf("active entitlements (-want +got):\n%s", diff)
			}
			if n := summaries() - before; n != st.events && i > 0 {
				t.Errorf("%d summary events, want %d", n, st.events)
			}
			if st.events > 0 {
				if diff := cmp.Diff(st.want, lastSummary()); diff != "" {
					t.Errorf("summary event (-want +got):\n%s", diff)
				}
			}
		})
	}
	it := api.EntitlementsActiveEntitlements.List(&stripe.EntitlementsActiveEntitlementListParams{Customer: stripe.String("cus_nope")})
	if it.Next() || !isCode(it.Err(), 404, stripe.ErrorCodeResourceMissing) {
		t.Errorf("unknown customer: %v", it.Err())
	}
}
