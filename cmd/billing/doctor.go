package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/contafy/billing/ops"
)

const doctorUsage = `
Usage: billing doctor -price-plans LIST -webhook-url URL [-stripe-url URL] [-json]

Checks that the Stripe account is set up for the app and says what to do
about each problem: the key's mode (test or live); the webhook endpoint for
-webhook-url exists, is enabled, listens to every event the handler needs
and has API version 2023-10-16; a portal configuration turns on the
portal's features and offers every mapped price; every price of the table
exists, is active and recurring; no active recurring price of those
products is left unmapped.

It prints one line per check, "ok" or "FAIL" with the fix:

	ok   webhook endpoint: we_...
	FAIL webhook endpoint events: missing [checkout.session.completed]; fix: billing webhook setup -url URL

and exits 0 when every check passes, 1 when any fails. With -json:
{"ok":false,"checks":[{"name":...,"ok":...,"detail":...,"fix":...}]}.
The key is read from STRIPE_SECRET_KEY.
`

// errChecksFailed is what doctor returns when a check failed (exit
// status 1), wrapped with how many did.
var errChecksFailed = errors.New("checks failed")

// doctorJSON is the -json output of billing doctor.
type doctorJSON struct {
	OK     bool        `json:"ok"`
	Checks []ops.Check `json:"checks"`
}

func runDoctor(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "doctor", doctorUsage)
	plans := f.String("price-plans", "", "the app's price table, comma-separated `LIST` of price_id=PLAN, lookup_key:KEY=PLAN or product:ID=PLAN (required)")
	hookURL := f.String("webhook-url", "", "the app's webhook endpoint `URL`, for example https://app.example.com/api/subscription/webhook (required)")
	sf := addStripeFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	prices, err := parsePricePlans(*plans)
	if err != nil {
		return err
	}
	if *hookURL == "" {
		return usagef("-webhook-url is required (the app's webhook endpoint, for example -webhook-url https://app.example.com/api/subscription/webhook)")
	}
	api, err := sf.api(e)
	if err != nil {
		return err
	}
	rep, err := ops.Doctor(ctx, api, ops.DoctorConfig{Prices: prices, WebhookURL: *hookURL, PricePlans: *plans})
	if err != nil {
		return redacted(err, api.Key)
	}
	if *sf.json {
		if err := writeJSON(e.Stdout, doctorJSON{OK: rep.OK(), Checks: rep.Checks}); err != nil {
			return err
		}
	} else {
		for _, c := range rep.Checks {
			fmt.Fprintln(e.Stdout, c.String())
		}
	}
	failed := 0
	for _, c := range rep.Checks {
		if !c.OK {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d %w", failed, len(rep.Checks), errChecksFailed)
	}
	return nil
}
