package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/contafy/billing"
	"github.com/contafy/billing/internal/redact"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/configuration"
	"github.com/stripe/stripe-go/v76/price"
	"github.com/stripe/stripe-go/v76/webhookendpoint"
)

// Check is one line of a [Doctor] report.
type Check struct {
	// Name says what was checked, for example "webhook endpoint events".
	Name string `json:"name"`
	// OK reports whether the check passed.
	OK bool `json:"ok"`
	// Detail says what was found, for a failure what is wrong.
	Detail string `json:"detail,omitempty"`
	// Fix says what to do about a failure.
	Fix string `json:"fix,omitempty"`
}

// String returns "ok   NAME: DETAIL" or "FAIL NAME: DETAIL; fix: FIX".
func (c Check) String() string {
	s := "ok   " + c.Name
	if !c.OK {
		s = "FAIL " + c.Name
	}
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	if !c.OK && c.Fix != "" {
		s += "; fix: " + c.Fix
	}
	return s
}

// DoctorConfig says what [Doctor] checks the account against.
type DoctorConfig struct {
	// Prices is the app's price table. Required.
	Prices billing.PriceTable
	// WebhookURL is the app's webhook endpoint URL. Required.
	WebhookURL string
	// PricePlans is the table as the -price-plans flag spells it, for the
	// fixes the report proposes. Default: "LIST".
	PricePlans string
}

// DoctorReport is the result of [Doctor].
type DoctorReport struct {
	// Checks, in order.
	Checks []Check `json:"checks"`
}

// OK reports whether every check passed.
func (r DoctorReport) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Doctor checks that a Stripe account is set up for the app, and says what
// to do for each problem: the key's mode; the webhook endpoint for
// cfg.WebhookURL exists, is enabled, listens to every handled event and has
// stripe-go's API version; a portal configuration (the one
// [SetupPortalConfiguration] made, else the default one) turns on the
// portal's features and allows every mapped price; every price the table
// names exists, is active and recurring; and no active recurring price of
// those products is left unmapped. The error is for a failure to read the
// account, not for a failed check.
func Doctor(ctx context.Context, s StripeAPI, cfg DoctorConfig) (DoctorReport, error) {
	var rep DoctorReport
	if err := s.check(); err != nil {
		return rep, err
	}
	if cfg.WebhookURL == "" {
		return rep, errors.New("billing: DoctorConfig.WebhookURL is required (the app's webhook endpoint, for example https://app.example.com/api/subscription/webhook)")
	}
	if err := cfg.Prices.Validate(); err != nil {
		return rep, err
	}
	plans := cfg.PricePlans
	if plans == "" {
		plans = "LIST"
	}
	add := func(name string, ok bool, detail, fix string) {
		rep.Checks = append(rep.Checks, Check{Name: name, OK: ok, Detail: detail, Fix: fix})
	}

	switch mode := keyMode(s.Key); mode {
	case "":
		add("key mode", false, "the key is not a Stripe secret or restricted key", "set STRIPE_SECRET_KEY to the account's sk_test_... or sk_live_... key")
	default:
		add("key mode", true, mode, "")
	}

	setupHook := "billing webhook setup -url " + cfg.WebhookURL
	we, err := findEndpoint(ctx, webhookendpoint.Client{B: s.B, Key: s.Key}, cfg.WebhookURL)
	if err != nil {
		return rep, err
	}
	if we == nil {
		add("webhook endpoint", false, "no endpoint for "+cfg.WebhookURL, setupHook)
	} else {
		add("webhook endpoint", true, we.ID, "")
		add("webhook endpoint enabled", we.Status == "enabled", "status "+we.Status, "enable it in the dashboard, or "+setupHook)
		var missing []string
		if !slices.Contains(we.EnabledEvents, "*") {
			for _, e := range HandledEvents {
				if !slices.Contains(we.EnabledEvents, e) {
					missing = append(missing, e)
				}
			}
		}
		detail := "every handled event"
		if len(missing) > 0 {
			detail = fmt.Sprintf("missing %v", missing)
		}
		add("webhook endpoint events", len(missing) == 0, detail, setupHook)
		add("webhook endpoint api version", we.APIVersion == stripe.APIVersion, "api_version "+orNone(we.APIVersion)+", want "+stripe.APIVersion,
			"create a new endpoint with API version "+stripe.APIVersion+" (the version cannot be changed): delete this one, then "+setupHook)
	}

	mapped, err := resolvePrices(ctx, s, cfg.Prices)
	if err != nil {
		return rep, err
	}
	doctorPortal(ctx, s, mapped, plans, add)

	products := map[string]bool{}
	for _, m := range mapped {
		name := "price " + m.ref
		switch {
		case !m.found:
			add(name, false, "not found in the account", "create it, or remove it from -price-plans")
		case !m.price.Active:
			add(name, false, m.price.ID+" is archived", "reactivate it in the dashboard, or map its replacement in -price-plans")
		case m.price.Recurring == nil:
			add(name, false, m.price.ID+" is not recurring", "map a recurring price instead")
		default:
			add(name, true, m.price.ID+" active, recurring", "")
		}
		if m.found && m.price.Product != nil {
			products[m.price.Product.ID] = true
		}
	}
	pc := price.Client{B: s.B, Key: s.Key}
	for _, id := range slices.Sorted(mapsKeys(products)) {
		p := &stripe.PriceListParams{Product: stripe.String(id), Active: stripe.Bool(true)}
		p.Context = ctx
		p.AddExpand("data.product")
		var unmapped []string
		it := pc.List(p)
		for it.Next() {
			pr := it.Price()
			if pr == nil || pr.Recurring == nil {
				continue
			}
			if _, ok := cfg.Prices.Plan(pr); !ok {
				unmapped = append(unmapped, pr.ID)
			}
		}
		if err := it.Err(); err != nil {
			return rep, fmt.Errorf("billing: list prices of product %s: %w", id, err)
		}
		sort.Strings(unmapped)
		detail := "every active recurring price mapped"
		if len(unmapped) > 0 {
			detail = fmt.Sprintf("unmapped active recurring prices %v", unmapped)
		}
		add("product "+id+" prices mapped", len(unmapped) == 0, detail,
			"add them to -price-plans (a subscriber to an unmapped price keeps no plan), or archive them")
	}
	return rep, nil
}

// doctorPortal checks the portal configuration.
func doctorPortal(ctx context.Context, s StripeAPI, mapped []mappedPrice, plans string, add func(name string, ok bool, detail, fix string)) {
	setup := "billing portal setup -price-plans " + plans
	c := configuration.Client{B: s.B, Key: s.Key}
	bc, err := findConfiguration(ctx, c)
	if err == nil && bc == nil {
		p := &stripe.BillingPortalConfigurationListParams{IsDefault: stripe.Bool(true)}
		p.Context = ctx
		it := c.List(p)
		for it.Next() && bc == nil {
			bc = it.BillingPortalConfiguration()
		}
		err = it.Err()
	}
	switch {
	case err != nil:
		add("portal configuration", false, "cannot be read: "+redact.Cause(err), "check the key's permissions (billing portal: read)")
		return
	case bc == nil || bc.Features == nil:
		add("portal configuration", false, "none", setup)
		return
	}
	add("portal configuration", true, bc.ID, "")
	f := bc.Features
	var off []string
	if f.CustomerUpdate == nil || !f.CustomerUpdate.Enabled {
		off = append(off, "customer_update")
	}
	if f.InvoiceHistory == nil || !f.InvoiceHistory.Enabled {
		off = append(off, "invoice_history")
	}
	if f.PaymentMethodUpdate == nil || !f.PaymentMethodUpdate.Enabled {
		off = append(off, "payment_method_update")
	}
	if f.SubscriptionCancel == nil || !f.SubscriptionCancel.Enabled {
		off = append(off, "subscription_cancel")
	}
	if f.SubscriptionUpdate == nil || !f.SubscriptionUpdate.Enabled {
		off = append(off, "subscription_update")
	}
	detail := "every feature on"
	if len(off) > 0 {
		detail = fmt.Sprintf("off: %v", off)
	}
	add("portal configuration features", len(off) == 0, detail, setup)
	allowed := map[string]bool{}
	if f.SubscriptionUpdate != nil {
		for _, p := range f.SubscriptionUpdate.Products {
			for _, id := range p.Prices {
				allowed[id] = true
			}
		}
	}
	var missing []string
	for _, m := range mapped {
		if m.found && !allowed[m.price.ID] {
			missing = append(missing, m.price.ID)
		}
	}
	detail = "every mapped price"
	if len(missing) > 0 {
		detail = fmt.Sprintf("plan change does not offer %v", missing)
	}
	add("portal configuration prices", len(missing) == 0, detail, setup)
}

// keyMode returns "test" or "live" for a Stripe secret or restricted key,
// "" otherwise. It never returns the key.
func keyMode(key string) string {
	for _, p := range []struct{ prefix, mode string }{{"sk_test_", "test"}, {"rk_test_", "test"}, {"sk_live_", "live"}, {"rk_live_", "live"}} {
		if len(key) > len(p.prefix) && key[:len(p.prefix)] == p.prefix {
			return p.mode
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
