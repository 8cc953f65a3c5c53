package main

import (
	"context"
	"fmt"

	"github.com/contafy/billing/ops"
)

const portalUsage = `
Usage: billing portal setup -price-plans LIST [-return-url URL] [-stripe-url URL] [-json]

Creates a Stripe customer portal configuration, or updates the one it
created before (marked with metadata managed_by=contafy-billing), with the
portal's six features on: subscription and invoice history, payment method
update, plan change among the products and prices of the price table (each
product with its mapped prices), cancellation at the period end, and billing
information update. -return-url, if set, is its default return URL. Every
price of the table must exist in the account (run billing doctor to check).

It prints the configuration's id, to put in billing.PortalConfig.Configuration:

	portal configuration bpc_... created
	portal configuration bpc_... updated

With -json: {"id":"bpc_...","created":true}. The key is read from
STRIPE_SECRET_KEY.
`

// runPortal is `billing portal SUBCOMMAND`: only setup, for now.
func runPortal(ctx context.Context, e *env, args []string) error {
	_, rest, err := subverb("portal", args, "setup")
	if err != nil {
		return err
	}
	f := newFlags(e, "portal setup", portalUsage)
	plans := f.String("price-plans", "", "the app's price table, comma-separated `LIST` of price_id=PLAN, lookup_key:KEY=PLAN or product:ID=PLAN (required)")
	returnURL := f.String("return-url", "", "the configuration's default return `URL`, for example https://app.example.com/account (default: none)")
	sf := addStripeFlags(f)
	if err := f.parse(rest); err != nil {
		return err
	}
	prices, err := parsePricePlans(*plans)
	if err != nil {
		return err
	}
	api, err := sf.api(e)
	if err != nil {
		return err
	}
	res, err := ops.SetupPortalConfiguration(ctx, api, prices, *returnURL)
	if err != nil {
		return redacted(err, api.Key)
	}
	if *sf.json {
		return writeJSON(e.Stdout, res)
	}
	verb := "updated"
	if res.Created {
		verb = "created"
	}
	fmt.Fprintf(e.Stdout, "portal configuration %s %s\n", res.ID, verb)
	return nil
}
