package main

import (
	"context"
	"fmt"

	"github.com/contafy/billing/ops"
	"github.com/stripe/stripe-go/v76"
)

const webhookUsage = `
Usage: billing webhook setup -url URL [-stripe-url URL] [-json]

Creates the Stripe webhook endpoint for URL, or updates the one that exists
for that URL: exactly the events the webhook handler acts on
(ops.HandledEvents), enabled, with API version 2023-10-16 (stripe-go
v76's; set when the endpoint is created, since Stripe cannot change it).

It prints one line with the endpoint's id:

	webhook endpoint we_... created: 9 events, enabled, API version 2023-10-16
	webhook endpoint we_... updated: 9 events, enabled (API version unchanged)

and, only when it creates the endpoint, the signing secret, which Stripe
shows this once:

	signing secret whsec_... (shown once: give it to the handler's WebhookConfig.Secrets, e.g. as STRIPE_WEBHOOK_SECRET)

With -json: {"id":"we_...","created":true,"secret":"whsec_..."} (no secret
for an update). The key is read from STRIPE_SECRET_KEY.
`

// runWebhook is `billing webhook SUBCOMMAND`: only setup, for now.
func runWebhook(ctx context.Context, e *env, args []string) error {
	_, rest, err := subverb("webhook", args, "setup")
	if err != nil {
		return err
	}
	f := newFlags(e, "webhook setup", webhookUsage)
	hookURL := f.String("url", "", "the app's webhook endpoint `URL`, for example https://app.example.com/api/subscription/webhook (required)")
	sf := addStripeFlags(f)
	if err := f.parse(rest); err != nil {
		return err
	}
	if *hookURL == "" {
		return usagef("-url is required (the app's webhook endpoint, for example -url https://app.example.com/api/subscription/webhook)")
	}
	api, err := sf.api(e)
	if err != nil {
		return err
	}
	res, err := ops.SetupWebhookEndpoint(ctx, api, *hookURL)
	if err != nil {
		return redacted(err, api.Key)
	}
	if *sf.json {
		return writeJSON(e.Stdout, res)
	}
	if !res.Created {
		fmt.Fprintf(e.Stdout, "webhook endpoint %s updated: %d events, enabled (API version unchanged)\n", res.ID, len(ops.HandledEvents))
		return nil
	}
	fmt.Fprintf(e.Stdout, "webhook endpoint %s created: %d events, enabled, API version %s\n", res.ID, len(ops.HandledEvents), stripe.APIVersion)
	fmt.Fprintf(e.Stdout, "signing secret %s (shown once: give it to the handler's WebhookConfig.Secrets, e.g. as STRIPE_WEBHOOK_SECRET)\n", res.Secret)
	return nil
}

// subverb reads the verb of `billing GROUP VERB [flags]` from args and
// returns it with the arguments after it: a usage error for none or a verb
// not listed. -h on the group is -h on its first verb.
func subverb(group string, args []string, verbs ...string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, usagef("missing the subcommand: billing %s %s", group, verbs[0])
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return verbs[0], []string{"-h"}, nil
	}
	for _, v := range verbs {
		if args[0] == v {
			return v, args[1:], nil
		}
	}
	return "", nil, usagef("unknown subcommand %q: billing %s %s", args[0], group, verbs[0])
}
