package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/contafy/billing"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/configuration"
	"github.com/stripe/stripe-go/v76/price"
	"github.com/stripe/stripe-go/v76/webhookendpoint"
)

// HandledEvents are the event types the webhook handler acts on: what
// [SetupWebhookEndpoint] subscribes an endpoint to, what [Doctor] checks,
// and what [Replay] reads by default.
var HandledEvents = []string{
	"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
	"customer.subscription.paused", "customer.subscription.resumed",
	"customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired",
	"checkout.session.completed", "entitlements.active_entitlement_summary.updated",
}

// managedBy marks the Stripe objects the setup functions created, so that
// a second run updates them instead of creating more.
const managedBy = "contafy-billing"

// StripeAPI is a Stripe account to set up or check: a stripe-go backend
// (for example [billing.NewBackend] with a URL for the emulator or stripe-mock) and
// the secret key. It never logs or returns the key.
type StripeAPI struct {
	// B is the backend. Required.
	B stripe.Backend
	// Key is the secret key (sk_test_..., sk_live_...). Required.
	Key string
}

func (s StripeAPI) check() error {
	if s.B == nil || s.Key == "" {
		return errors.New("billing: StripeAPI needs a backend and a key (for example billing.StripeAPI{B: billing.NewBackend(nil), Key: os.Getenv(\"STRIPE_SECRET_KEY\")})")
	}
	return nil
}

// WebhookEndpointSetup is what [SetupWebhookEndpoint] did.
type WebhookEndpointSetup struct {
	// ID is the endpoint's id (we_...).
	ID string `json:"id"`
	// Created reports whether the endpoint is new; otherwise it was updated.
	Created bool `json:"created"`
	// Secret is the new endpoint's signing secret (whsec_...), which Stripe
	// shows only once; empty for an updated endpoint.
	Secret string `json:"secret,omitempty"`
}

// SetupWebhookEndpoint creates the webhook endpoint for url, or updates the
// one that exists for that url: exactly [HandledEvents], API version
// 2023-10-16 (stripe-go v76's, [stripe.APIVersion]; only set on creation, as
// Stripe allows), enabled.
func SetupWebhookEndpoint(ctx context.Context, s StripeAPI, url string) (WebhookEndpointSetup, error) {
	if err := s.check(); err != nil {
		return WebhookEndpointSetup{}, err
	}
	if url == "" {
		return WebhookEndpointSetup{}, errors.New("billing: SetupWebhookEndpoint: the endpoint URL is required (for example https://app.example.com/api/subscription/webhook)")
	}
	c := webhookendpoint.Client{B: s.B, Key: s.Key}
	existing, err := findEndpoint(ctx, c, url)
	if err != nil {
		return WebhookEndpointSetup{}, err
	}
	if existing != nil {
		p := &stripe.WebhookEndpointParams{EnabledEvents: stripe.StringSlice(HandledEvents), Disabled: stripe.Bool(false)}
		p.Context = ctx
		p.AddMetadata("managed_by", managedBy)
		if _, err := c.Update(existing.ID, p); err != nil {
			return WebhookEndpointSetup{}, fmt.Errorf("billing: update webhook endpoint %s: %w", existing.ID, err)
		}
		return WebhookEndpointSetup{ID: existing.ID}, nil
	}
	p := &stripe.WebhookEndpointParams{URL: stripe.String(url), EnabledEvents: stripe.StringSlice(HandledEvents), APIVersion: stripe.String(stripe.APIVersion)}
	p.Context = ctx
	p.AddMetadata("managed_by", managedBy)
	we, err := c.New(p)
	if err != nil {
		return WebhookEndpointSetup{}, fmt.Errorf("billing: create webhook endpoint: %w", err)
	}
	return WebhookEndpointSetup{ID: we.ID, Created: true, Secret: we.Secret}, nil
}

// findEndpoint returns the endpoint with url, if any.
func findEndpoint(ctx context.Context, c webhookendpoint.Client, url string) (*stripe.WebhookEndpoint, error) {
	p := &stripe.WebhookEndpointListParams{}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	it := c.List(p)
	for it.Next() {
		if we := it.WebhookEndpoint(); we != nil && we.URL == url {
			return we, nil
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("billing: list webhook endpoints: %w", err)
	}
	return nil, nil
}

// PortalConfigurationSetup is what [SetupPortalConfiguration] did.
type PortalConfigurationSetup struct {
	// ID is the configuration's id (bpc_...): put it in
	// [PortalConfig].Configuration.
	ID string `json:"id"`
	// Created reports whether the configuration is new.
	Created bool `json:"created"`
}

// SetupPortalConfiguration creates, or updates the one it created before, a
// portal configuration with the six features of the portal: the
// subscription and invoice history, payment method update, plan change
// among the products and prices of prices (each product with its mapped
// prices), cancellation at the period end, and billing information update
// (email, address). returnURL, if set, is the configuration's default
// return URL.
func SetupPortalConfiguration(ctx context.Context, s StripeAPI, prices billing.PriceTable, returnURL string) (PortalConfigurationSetup, error) {
	if err := s.check(); err != nil {
		return PortalConfigurationSetup{}, err
	}
	if err := prices.Validate(); err != nil {
		return PortalConfigurationSetup{}, err
	}
	mapped, err := resolvePrices(ctx, s, prices)
	if err != nil {
		return PortalConfigurationSetup{}, err
	}
	byProduct := map[string][]string{}
	for _, p := range mapped {
		if p.found && p.price.Product != nil {
			byProduct[p.price.Product.ID] = append(byProduct[p.price.Product.ID], p.price.ID)
		}
	}
	if len(byProduct) == 0 {
		return PortalConfigurationSetup{}, errors.New("billing: SetupPortalConfiguration: no price of the table exists in the account (create them, or check -price-plans)")
	}
	var products []*stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateProductParams
	for _, id := range slices.Sorted(mapsKeys(byProduct)) {
		products = append(products, &stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateProductParams{
			Product: stripe.String(id), Prices: stripe.StringSlice(byProduct[id])})
	}
	p := &stripe.BillingPortalConfigurationParams{
		BusinessProfile: &stripe.BillingPortalConfigurationBusinessProfileParams{Headline: stripe.String("Manage your subscription")},
		Features: &stripe.BillingPortalConfigurationFeaturesParams{
			CustomerUpdate: &stripe.BillingPortalConfigurationFeaturesCustomerUpdateParams{
				Enabled: stripe.Bool(true), AllowedUpdates: stripe.StringSlice([]string{"email", "address", "name", "phone", "tax_id"})},
			InvoiceHistory:      &stripe.BillingPortalConfigurationFeaturesInvoiceHistoryParams{Enabled: stripe.Bool(true)},
			PaymentMethodUpdate: &stripe.BillingPortalConfigurationFeaturesPaymentMethodUpdateParams{Enabled: stripe.Bool(true)},
			SubscriptionCancel: &stripe.BillingPortalConfigurationFeaturesSubscriptionCancelParams{
				Enabled: stripe.Bool(true), Mode: stripe.String("at_period_end")},
			SubscriptionUpdate: &stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateParams{
				Enabled: stripe.Bool(true), DefaultAllowedUpdates: stripe.StringSlice([]string{"price"}), Products: products},
		},
	}
	p.Context = ctx
	p.AddMetadata("managed_by", managedBy)
	if returnURL != "" {
		p.DefaultReturnURL = stripe.String(returnURL)
	}
	c := configuration.Client{B: s.B, Key: s.Key}
	existing, err := findConfiguration(ctx, c)
	if err != nil {
		return PortalConfigurationSetup{}, err
	}
	if existing != nil {
		if _, err := c.Update(existing.ID, p); err != nil {
			return PortalConfigurationSetup{}, fmt.Errorf("billing: update portal configuration %s: %w", existing.ID, err)
		}
		return PortalConfigurationSetup{ID: existing.ID}, nil
	}
	cfg, err := c.New(p)
	if err != nil {
		return PortalConfigurationSetup{}, fmt.Errorf("billing: create portal configuration: %w", err)
	}
	return PortalConfigurationSetup{ID: cfg.ID, Created: true}, nil
}

// findConfiguration returns the portal configuration a setup created
// before, if any.
func findConfiguration(ctx context.Context, c configuration.Client) (*stripe.BillingPortalConfiguration, error) {
	p := &stripe.BillingPortalConfigurationListParams{}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	it := c.List(p)
	for it.Next() {
		if bc := it.BillingPortalConfiguration(); bc != nil && bc.Metadata["managed_by"] == managedBy {
			return bc, nil
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("billing: list portal configurations: %w", err)
	}
	return nil, nil
}

// mappedPrice is one price the table names, as the account has it.
type mappedPrice struct {
	ref   string // how the table names it: price id, lookup_key:K or product:ID
	price *stripe.Price
	found bool
}

// resolvePrices finds the prices the table names: by id, by lookup key,
// and the active prices of the table's products.
func resolvePrices(ctx context.Context, s StripeAPI, t billing.PriceTable) ([]mappedPrice, error) {
	pc := price.Client{B: s.B, Key: s.Key}
	var out []mappedPrice
	for _, id := range slices.Sorted(mapsKeys(t.Prices)) {
		p := &stripe.PriceParams{}
		p.Context = ctx
		p.AddExpand("product")
		pr, err := pc.Get(id, p)
		var se *stripe.Error
		switch {
		case errors.As(err, &se) && se.Code == stripe.ErrorCodeResourceMissing:
			out = append(out, mappedPrice{ref: id})
		case err != nil:
			return nil, fmt.Errorf("billing: read price %s: %w", id, err)
		default:
			out = append(out, mappedPrice{ref: id, price: pr, found: true})
		}
	}
	keys := slices.Sorted(mapsKeys(t.LookupKeys))
	for len(keys) > 0 {
		batch := keys[:min(10, len(keys))] // Stripe takes up to 10 lookup keys per list
		keys = keys[len(batch):]
		p := &stripe.PriceListParams{LookupKeys: stripe.StringSlice(batch)}
		p.Context = ctx
		p.AddExpand("data.product")
		found := map[string]*stripe.Price{}
		it := pc.List(p)
		for it.Next() {
			if pr := it.Price(); pr != nil {
				found[pr.LookupKey] = pr
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("billing: list prices by lookup key: %w", err)
		}
		for _, k := range batch {
			out = append(out, mappedPrice{ref: "lookup_key:" + k, price: found[k], found: found[k] != nil})
		}
	}
	for _, id := range slices.Sorted(mapsKeys(t.Products)) {
		p := &stripe.PriceListParams{Product: stripe.String(id), Active: stripe.Bool(true)}
		p.Context = ctx
		p.AddExpand("data.product")
		n := 0
		it := pc.List(p)
		for it.Next() {
			if pr := it.Price(); pr != nil {
				out = append(out, mappedPrice{ref: "product:" + id, price: pr, found: true})
				n++
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("billing: list prices of product %s: %w", id, err)
		}
		if n == 0 {
			out = append(out, mappedPrice{ref: "product:" + id})
		}
	}
	return out, nil
}

// mapsKeys returns m's keys (for slices.Sorted).
func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
