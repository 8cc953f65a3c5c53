// Package ops is the operator's side of package billing: what a person
// runs against a Stripe account and the app's store, rather than what the
// app mounts. The `billing` command (github.com/contafy/billing/cmd/billing)
// is a thin layer over it; a job or an admin page of the app can call it
// directly.
//
//   - [SetupWebhookEndpoint] and [SetupPortalConfiguration] set an account
//     up, and running them again updates what they created.
//   - [Doctor] checks an account against the app's settings, a line per
//     check with the fix for each failure.
//   - [Reconcile] reads every subscription and applies it to the store:
//     what repairs plans after webhooks were lost for longer than Stripe
//     retries them.
//   - [Replay] hands the events Stripe still keeps (30 days) to the
//     app's [billing.WebhookHandler], oldest first: duplicates change
//     nothing, missed events are applied.
//
// Reconcile and Replay write through the same ordered path as the webhooks
// ([billing.SyncStore]), pace their requests under Stripe's rate limit
// ([DefaultRatePerSecond]), back off on 429, and never log a key or
// Stripe's error text.
package ops
