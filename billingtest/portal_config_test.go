package billingtest_test

import (
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

func TestPortalConfigurations(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	api := s.API()

	def, err := api.BillingPortalConfigurations.Get(billingtest.DefaultPortalConfiguration, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := def.Features
	if !def.IsDefault || !def.Active || !f.CustomerUpdate.Enabled || !f.InvoiceHistory.Enabled || !f.PaymentMethodUpdate.Enabled ||
		!f.SubscriptionCancel.Enabled || f.SubscriptionCancel.Mode != "at_period_end" || !f.SubscriptionUpdate.Enabled {
		t.Errorf("default configuration = %+v", def)
	}

	c, err := api.BillingPortalConfigurations.New(&stripe.BillingPortalConfigurationParams{
		DefaultReturnURL: stripe.String("https://app.example.com/back"),
		BusinessProfile:  &stripe.BillingPortalConfigurationBusinessProfileParams{Headline: stripe.String("Acme")},
		Features: &stripe.BillingPortalConfigurationFeaturesParams{
			CustomerUpdate: &stripe.BillingPortalConfigurationFeaturesCustomerUpdateParams{Enabled: stripe.Bool(true),
				AllowedUpdates: stripe.StringSlice([]string{"email", "address"})},
			InvoiceHistory: &stripe.BillingPortalConfigurationFeaturesInvoiceHistoryParams{Enabled: stripe.Bool(false)},
			SubscriptionCancel: &stripe.BillingPortalConfigurationFeaturesSubscriptionCancelParams{Enabled: stripe.Bool(true),
				Mode: stripe.String("immediately")},
			SubscriptionUpdate: &stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateParams{Enabled: stripe.Bool(true),
				DefaultAllowedUpdates: stripe.StringSlice([]string{"price", "quantity"}),
				Products: []*stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateProductParams{
					{Product: stripe.String(billingtest.ProductPro), Prices: stripe.StringSlice([]string{billingtest.PricePro})}}},
		},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	type view struct {
		Return, Headline, CancelMode     string
		Allowed, PlanUpdates             []string
		Invoices, PaymentMethods, Update bool
		Products                         []*stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateProduct
		Default                          bool
	}
	viewOf := func(c *stripe.BillingPortalConfiguration) view {
		v := view{Return: c.DefaultReturnURL, Headline: c.BusinessProfile.Headline, CancelMode: string(c.Features.SubscriptionCancel.Mode),
			Invoices: c.Features.InvoiceHistory.Enabled, PaymentMethods: c.Features.PaymentMethodUpdate.Enabled,
			Update: c.Features.SubscriptionUpdate.Enabled, Products: c.Features.SubscriptionUpdate.Products, Default: c.IsDefault}
		for _, a := range c.Features.CustomerUpdate.AllowedUpdates {
			v.Allowed = append(v.Allowed, string(a))
		}
		for _, a := range c.Features.SubscriptionUpdate.DefaultAllowedUpdates {
			v.PlanUpdates = append(v.PlanUpdates, string(a))
		}
		return v
	}
	want := view{Return: "https://app.example.com/back", Headline: "Acme", CancelMode: "immediately", Allowed: []string{"email", "address"},
		PlanUpdates: []string{"price", "quantity"}, Update: true,
		Products: []*stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateProduct{{Product: billingtest.ProductPro, Prices: []string{billingtest.PricePro}}}}
	if diff := cmp.Diff(want, viewOf(c)); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}

	// Update only what is sent; the rest stays.
	c, err = api.BillingPortalConfigurations.Update(c.ID, &stripe.BillingPortalConfigurationParams{
		Features: &stripe.BillingPortalConfigurationFeaturesParams{
			SubscriptionCancel: &stripe.BillingPortalConfigurationFeaturesSubscriptionCancelParams{Mode: stripe.String("at_period_end")},
			SubscriptionUpdate: &stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateParams{
				Products: []*stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateProductParams{
					{Product: stripe.String(billingtest.ProductBasic), Prices: stripe.StringSlice([]string{billingtest.PriceBasic})},
					{Product: stripe.String(billingtest.ProductPro), Prices: stripe.StringSlice([]string{billingtest.PricePro})}}},
		}})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want.CancelMode = "at_period_end"
	want.Products = []*stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateProduct{
		{Product: billingtest.ProductBasic, Prices: []string{billingtest.PriceBasic}}, {Product: billingtest.ProductPro, Prices: []string{billingtest.PricePro}}}
	if diff := cmp.Diff(want, viewOf(c)); diff != "" {
		t.Errorf("updated (-want +got):\n%s", diff)
	}
	got, err := api.BillingPortalConfigurations.Get(c.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, viewOf(got)); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if ev := lastEvent(t, s, "billing_portal.configuration.updated"); ev.Data.PreviousAttributes["features"] == nil {
		t.Errorf("configuration.updated previous_attributes = %v", ev.Data.PreviousAttributes)
	}

	var ids []string
	it := api.BillingPortalConfigurations.List(&stripe.BillingPortalConfigurationListParams{IsDefault: stripe.Bool(false)})
	for it.Next() {
		ids = append(ids, it.BillingPortalConfiguration().ID)
	}
	if diff := cmp.Diff([]string{c.ID}, ids); diff != "" || it.Err() != nil {
		t.Errorf("non-default configurations (-want +got):\n%s %v", diff, it.Err())
	}

	// A session takes the configuration and its default return URL.
	ps, err := s.SessionClient().New(&stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro), Configuration: stripe.String(c.ID)})
	if err != nil || ps.ReturnURL != "https://app.example.com/back" || ps.Configuration.ID != c.ID {
		t.Errorf("session = %+v, %v", ps, err)
	}
	if _, err := api.BillingPortalConfigurations.Update(c.ID, &stripe.BillingPortalConfigurationParams{Active: stripe.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionClient().New(&stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro), Configuration: stripe.String(c.ID)}); !isCode(err, 400, "") {
		t.Errorf("session with an inactive configuration: %v, want 400", err)
	}
	if _, err := api.BillingPortalConfigurations.Update(billingtest.DefaultPortalConfiguration, &stripe.BillingPortalConfigurationParams{Active: stripe.Bool(false)}); !isCode(err, 400, "") {
		t.Errorf("deactivating the default: %v, want 400", err)
	}
	if _, err := api.BillingPortalConfigurations.Get("bpc_nope", nil); !isCode(err, 404, stripe.ErrorCodeResourceMissing) {
		t.Errorf("Get unknown: %v", err)
	}
}
