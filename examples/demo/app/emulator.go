package app

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/ops"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/customer"
	"github.com/stripe/stripe-go/v76/paymentmethod"
	"github.com/stripe/stripe-go/v76/subscription"
)

// The in-process emulator is set up like a Stripe account would be, in
// three parts (see [catalog], [setUpAccount], [subscribe]):
//
//  1. the catalog: a product per plan and a monthly price per entry of
//     -price-plans (price_basic and price_pro by default), and the customers
//     the users name; what Stripe's API cannot do (choose a price's or a
//     customer's id) goes through the emulator's Go API;
//  2. the account, through stripe-go against the emulator's API, as
//     `billing portal setup` and `billing webhook setup` do it for a real
//     account: a portal configuration (plan change among the table's
//     prices, cancellation at the period end) and the demo's own webhook
//     endpoint, whose generated signing secret the webhook handler takes;
//  3. once the demo serves, a subscription per paid user with a customer,
//     created through the API, whose webhooks reach the demo.

// unitAmounts are the demo prices, in cents a month.
var unitAmounts = map[billing.Plan]int64{billing.Free: 0, billing.Basic: 900, billing.Pro: 2900}

// planProduct is the product id of a plan's prices in the catalog.
func planProduct(p billing.Plan) string { return "prod_" + strings.ToLower(string(p)) }

// catalog adds the products and prices of plans and the users' customers
// to emu, and returns, for each plan, the price a seeded user of that plan
// subscribes to.
func catalog(emu *billingtest.Stripe, plans billing.PriceTable, users []User) map[billing.Plan]string {
	product := func(id string, p billing.Plan) {
		emu.AddProduct(billingtest.StripeProduct{ID: id, Name: "Demo " + string(p), Metadata: map[string]string{"plan": string(p)}})
	}
	for _, p := range []billing.Plan{billing.Free, billing.Basic, billing.Pro} {
		product(planProduct(p), p)
	}
	subscribeTo := map[billing.Plan]string{}
	add := func(price billingtest.StripePrice, p billing.Plan) {
		price.UnitAmount, price.Nickname = unitAmounts[p], "Demo "+string(p)+" monthly"
		price = emu.AddPrice(price)
		if _, ok := subscribeTo[p]; !ok {
			subscribeTo[p] = price.ID
		}
	}
	// Sorted, so that the price a plan's users get does not depend on map
	// order: the first price id, else the first lookup key, else product.
	for _, id := range slices.Sorted(maps.Keys(plans.Prices)) {
		add(billingtest.StripePrice{ID: id, Product: planProduct(plans.Prices[id])}, plans.Prices[id])
	}
	for _, key := range slices.Sorted(maps.Keys(plans.LookupKeys)) {
		add(billingtest.StripePrice{Product: planProduct(plans.LookupKeys[key]), LookupKey: key}, plans.LookupKeys[key])
	}
	for _, id := range slices.Sorted(maps.Keys(plans.Products)) {
		product(id, plans.Products[id])
		add(billingtest.StripePrice{Product: id}, plans.Products[id])
	}
	for _, u := range users {
		if u.StripeCustomerID != "" {
			emu.AddCustomer(u.StripeCustomerID)
		}
	}
	return subscribeTo
}

// account is what setUpAccount made.
type account struct {
	portalConfiguration string // bpc_...
	webhookSecret       string // whsec_...
}

// setUpAccount creates the portal configuration and the demo's webhook
// endpoint (webhookURL) through the API.
func setUpAccount(ctx context.Context, api ops.StripeAPI, plans billing.PriceTable, webhookURL, returnURL string) (account, error) {
	pc, err := ops.SetupPortalConfiguration(ctx, api, plans, returnURL)
	if err != nil {
		return account{}, fmt.Errorf("emulator: %w", err)
	}
	we, err := ops.SetupWebhookEndpoint(ctx, api, webhookURL)
	if err != nil {
		return account{}, fmt.Errorf("emulator: %w", err)
	}
	if we.Secret == "" {
		return account{}, fmt.Errorf("emulator: webhook endpoint %s has no signing secret", we.ID)
	}
	return account{portalConfiguration: pc.ID, webhookSecret: we.Secret}, nil
}

// subscribe gives each paid user with a customer an email, a default
// payment method (a test Visa) and an active subscription to their plan's
// price, through the API. Its events are
// delivered to the demo's webhook endpoint; subscribe returns once they
// have been.
func subscribe(ctx context.Context, emu *billingtest.Stripe, api ops.StripeAPI, users []User, prices map[billing.Plan]string) error {
	customers := customer.Client{B: api.B, Key: api.Key}
	subs := subscription.Client{B: api.B, Key: api.Key}
	methods := paymentmethod.Client{B: api.B, Key: api.Key}
	for _, u := range users {
		plan, _ := billing.ParsePlan(u.Plan) // checked by seed
		if u.StripeCustomerID == "" || !plan.Paid() {
			continue
		}
		pp := &stripe.PaymentMethodAttachParams{Customer: stripe.String(u.StripeCustomerID)}
		pp.Context = ctx
		pm, err := methods.Attach("pm_card_visa", pp) // Stripe's test Visa, 4242
		if err != nil {
			return fmt.Errorf("emulator: payment method of %s: %w", u.ID, err)
		}
		cp := &stripe.CustomerParams{
			Email: stripe.String(u.ID + "@example.com"), Name: stripe.String(u.ID),
			InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(pm.ID)},
		}
		cp.Context = ctx
		if _, err := customers.Update(u.StripeCustomerID, cp); err != nil {
			return fmt.Errorf("emulator: customer %s: %w", u.StripeCustomerID, err)
		}
		sp := &stripe.SubscriptionParams{
			Customer: stripe.String(u.StripeCustomerID),
			Items:    []*stripe.SubscriptionItemsParams{{Price: stripe.String(prices[plan])}},
		}
		sp.Context = ctx
		sp.AddMetadata("demo_user", u.ID)
		if _, err := subs.New(sp); err != nil {
			return fmt.Errorf("emulator: subscription of %s: %w", u.ID, err)
		}
	}
	if err := emu.WaitDeliveries(ctx); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	return nil
}

// afterDeliveries runs next once the emulator has no webhook delivery
// pending, waiting at most 5 s. It is the return URL's handler with the
// in-process emulator: Stripe delivers webhooks asynchronously, and the
// return sync's read of Stripe counts as older than an event of the same
// second (see billing.SubscriptionChange), so a user who comes back within
// the second of a change could see the account page before either wrote
// it. Locally the wait is a few milliseconds, or up to a second when the
// webhook handler resolves a tie of one second by reading Stripe.
func afterDeliveries(emu *billingtest.Stripe, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		_ = emu.WaitDeliveries(ctx) // on a timeout the return sync still runs
		cancel()
		next.ServeHTTP(w, r)
	})
}
