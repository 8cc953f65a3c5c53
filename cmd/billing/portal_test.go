package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/configuration"
)

var portalLine = regexp.MustCompile(`^portal configuration (bpc_\S+) (created|updated)\n$`)

// TestPortalSetup: the first run creates a configuration with the six
// features, plan change among the table's products and prices and
// cancellation at the period end; a second run updates the same one.
func TestPortalSetup(t *testing.T) {
	s, environ := startCatalog(t, billingtest.EmulatorConfig{})
	out := mustRun(t, environ, "portal", "setup", "-price-plans", standardPlans, "-return-url", "https://app.example.com/account")
	m := portalLine.FindStringSubmatch(out)
	if m == nil || m[2] != "created" {
		t.Fatalf("first run printed %q, want the created line", out)
	}
	id := m[1]
	c := &configuration.Client{B: backend(s), Key: billingtest.TestKey}
	bc, err := c.Get(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := bc.Features
	switch {
	case !f.CustomerUpdate.Enabled, !f.InvoiceHistory.Enabled, !f.PaymentMethodUpdate.Enabled,
		!f.SubscriptionCancel.Enabled, f.SubscriptionCancel.Mode != "at_period_end",
		!f.SubscriptionUpdate.Enabled, !slices.Contains(f.SubscriptionUpdate.DefaultAllowedUpdates, "price"):
		t.Errorf("features %+v", f)
	}
	got := map[string][]string{}
	for _, p := range f.SubscriptionUpdate.Products {
		got[p.Product] = p.Prices
	}
	want := map[string][]string{billingtest.ProductBasic: {billingtest.PriceBasic}, billingtest.ProductPro: {billingtest.PricePro}}
	if len(got) != len(want) || !slices.Equal(got[billingtest.ProductBasic], want[billingtest.ProductBasic]) || !slices.Equal(got[billingtest.ProductPro], want[billingtest.ProductPro]) {
		t.Errorf("plan change offers %v, want %v", got, want)
	}
	if bc.DefaultReturnURL != "https://app.example.com/account" {
		t.Errorf("default return URL %q", bc.DefaultReturnURL)
	}

	out = mustRun(t, environ, "portal", "setup", "-price-plans", standardPlans, "-json")
	var res struct {
		ID      string `json:"id"`
		Created bool   `json:"created"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID != id || res.Created {
		t.Errorf("second run: %s (%v), want an update of %s", out, err, id)
	}
	n := 0
	it := c.List(&stripe.BillingPortalConfigurationListParams{})
	for it.Next() {
		n++
	}
	if it.Err() != nil || n != 2 { // the emulator's default configuration and ours
		t.Errorf("%d configurations (%v), want the default one and ours", n, it.Err())
	}
}

// TestPortalSetupUnknownPrices: a table none of whose prices exists is
// exit 1 with what to do.
func TestPortalSetupUnknownPrices(t *testing.T) {
	_, environ := startCatalog(t, billingtest.EmulatorConfig{})
	code, stdout, stderr := runEnv(t, t.Context(), environ, "portal", "setup", "-price-plans", "price_gone=PRO")
	if code != 1 || stdout != "" || !regexp.MustCompile(`no price of the table exists in the account`).MatchString(stderr) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
