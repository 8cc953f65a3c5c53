// Command demo serves the portal endpoint of package billing on one machine,
// offline, as a clickable app: with no Stripe settings it runs the test
// kit's Stripe emulator in-process (a Stripe-shaped API, hosted portal
// pages, webhooks, a test clock), with -stripe-url it talks to a
// `billing emulator`, a stripe-mock or any Stripe API.
//
//	go run ./examples/demo                       # then open a printed /login link
//	go run ./examples/demo -stripe-url http://127.0.0.1:12111
//	go run ./examples/demo -users users.json -allowed-return https://app.example.com
//
// Flags (environment fallbacks in brackets):
//
//	-addr HOST:PORT        listen address (127.0.0.1:8080)
//	-stripe-url URL        Stripe API base [STRIPE_API_URL]; key from STRIPE_SECRET_KEY
//	-emulator-addr HOST:PORT  the in-process emulator's address, without -stripe-url
//	                       and STRIPE_SECRET_KEY (127.0.0.1:0, any free port)
//	-users FILE            JSON array of {"id","plan","stripe_customer_id","token","expires_at"};
//	                       users the store already holds are left as they are (see Seeding)
//	-return-url URL        default return URL (http://HOST:PORT/billing/return)
//	-allowed-return LIST   comma-separated origins or URL prefixes allowed as return_url
//	-webhook-secret SECRET Stripe webhook signing secret [STRIPE_WEBHOOK_SECRET];
//	                       without it (and without the in-process emulator)
//	                       POST /api/subscription/webhook is not served
//	-price-plans LIST      price_id=PLAN pairs (price_basic=BASIC,price_pro=PRO)
//	-db DSN                a postgres:// URL or a SQLite file path: keep users,
//	                       subscriptions and event ids there (package sqlstore)
//	                       instead of in memory; the schema is created if missing
//
// # The in-process emulator
//
// Without -stripe-url and STRIPE_SECRET_KEY the demo starts the emulator of
// package billingtest and sets it up as an account would be: a product per
// plan and a monthly price per -price-plans entry (price_basic and
// price_pro by default; those ids, and the users' customer ids, through the
// emulator's Go API, since Stripe's API chooses ids itself), a portal
// configuration allowing a plan change among those prices and cancellation
// at the period end (ops.SetupPortalConfiguration), and the demo's own
// webhook endpoint (ops.SetupWebhookEndpoint, through stripe-go's
// webhookendpoint client), whose generated signing secret the webhook
// handler accepts (beside -webhook-secret, if given). Then, once it serves,
// each paid user with a customer gets a subscription to their plan's price
// through the API; the demo prints its listening line once the webhooks of
// those have been delivered. The emulator lives as long as the demo: a
// -db from an earlier run keeps subscriptions the new emulator does not
// know, so run a `billing emulator` (-stripe-url) across restarts.
//
// The demo is a module of its own (it imports the database drivers, which
// the library's root module must not require); the repository's go.work
// makes `go run ./examples/demo` work from the repository root.
// The program is package app (examples/demo/app), so that the end-to-end
// tests (e2e/) can run it in-process and look at its store.
//
// It serves POST /api/subscription/create-portal-session, POST
// /api/subscription/webhook (with a secret; besides the subscription
// events it links the customer of a checkout.session.completed to the user
// its client_reference_id names), GET /api/subscription (the signed-in
// user's plan, dates, payment problem and features as JSON), and GET
// /billing/return, the default return URL, which syncs the user's plan from
// Stripe and redirects to /account. It prints "listening on
// http://HOST:PORT" once it accepts connections.
//
// # Pages
//
// The demo is a clickable app too: it prints a sign-in link per default
// user, and these pages work in any browser, with or without JavaScript:
//
//	GET  /login?token=TOKEN       sets the access_token cookie (demo only:
//	                              HttpOnly, SameSite=Lax, Path=/), 303 to /account
//	GET  /logout                  clears it
//	GET  /account                 #plan (FREE, BASIC or PRO), the lifecycle facts
//	                              of billing.ViewOf (#renews-on, #ends-on,
//	                              #trial-ends, #payment-problem, #features) and
//	                              the buttons below; 401 when not signed in
//	POST /billing/portal          "Manage billing" without JavaScript: a portal
//	                              session through PortalService.CreateSession,
//	                              303 to its URL; the form field flow
//	                              (payment_method_update, subscription_cancel,
//	                              subscription_update, subscription_update_confirm
//	                              with price) deep-links into one step
//	POST /billing/advance-clock   "Advance clock by a period": the emulator's
//	                              test clock forward by 721h, 303 to /account
//
// With JavaScript, "Manage billing" posts to the JSON endpoint and follows
// the url it answers. The portal's return URL is /billing/return (with the
// in-process emulator it first waits, at most 5 s, for the emulator's
// pending webhook deliveries, so that the account page shows what was just
// done in the portal). The deep links end both of the portal's ways: the
// payment method update and the plan change on its hosted confirmation,
// the update confirm and the cancellation by a redirect to the return URL
// (which is therefore always among the allowed return URLs). Each form on
// the account page has an id: #manage-billing, #flow-payment-method-update,
// #flow-subscription-update, #flow-update-confirm-PRICE,
// #flow-subscription-cancel, #advance-clock. The two
// POST routes refuse cross-origin requests (net/http's
// CrossOriginProtection). The clock button shows only when the Stripe in use
// may have a test clock: the in-process emulator, or a -stripe-url (a
// `billing emulator` has one; stripe-mock answers 404, shown as an error).
//
// # Plan changes
//
// The demo registers a plan-change hook that prints one line per change of
// a user's billing view, whatever wrote it (a webhook, the return sync, a
// checkout linking a customer):
//
//	plan change: user=ID from=PLAN to=PLAN cause=CAUSE id=CHANGEID
//
// Changes are delivered right after their commit and, for what is left (a
// run that died in between), at start and every 2 seconds. For the restart
// test, BILLING_DEMO_EXIT_BEFORE_HOOK=1 makes the process exit (status 3)
// right after a change is committed and claimed, before its hook runs.
//
// # Seeding
//
// At every start the demo adds the -users entries (or its default users)
// that the store does not hold yet, with PutUser, and leaves alone those it
// already holds (a -db database from an earlier run, or one that another
// replica seeded): a restart, or a second demo started on the same -db,
// never undoes what the webhook sync wrote, neither a plan nor the customer
// that a checkout.session.completed linked. The tokens of the file are valid
// either way. A seeded user's plan is the seed's only while the store has
// no subscription of its customer; with some, PutUser derives it from them
// in the same transaction, as [billing.SyncStore] says. Two demos seeding
// the same absent user at once both write the same seed, which is harmless.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/contafy/billing/examples/demo/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run is the demo (package app); it returns when ctx is done or the server
// fails.
func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	return app.Run(ctx, args, getenv, out)
}

// demoUser is one entry of the -users file; defaultUsers are the users
// seeded without one.
type demoUser = app.User

var defaultUsers = app.DefaultUsers
