// Package billingtest is the test kit of package billing, for the tests of
// apps that use it (and for the library's own): a Stripe emulator with
// fault injection, seeded users and stores, and a static authenticator.
//
// [Stripe] is an in-memory emulator of the part of Stripe's API a billing
// app uses, with a hosted portal page, webhook delivery and a test clock.
// stripe-go's real clients talk to it over HTTP, so a test exercises the
// same encoding, decoding, error mapping and retries as production. It
// records every call, counts connections, and can be told to fail: 5xx
// with JSON or HTML bodies, 429 rate_limit and lock_timeout, 409,
// resource_missing, slow replies, dropped connections. Each fault's doc
// says whether stripe-go v76 retries it, so tests can assert exact call
// counts.
//
// [NewPortalService] wires a [billing.PortalService] to an emulator;
// [Users], [NewStore] and [Stripe.Seed] give four standard users (FREE,
// BASIC, PRO, PRO without a Stripe customer) on both sides; [NewStaticAuth]
// and [Cookie] authenticate requests with fixed tokens through the
// access_token cookie. [SubscriptionSpec] is the one description of a
// subscription, for the signed events ([SubscriptionEvent],
// [WebhookRequest]), the emulator and [SubscriptionGetter] (Stripe's reads
// without HTTP); [Prices] is the price table of the standard prices;
// [LogBuffer] collects logs from many goroutines. The contract, property
// and load runs of a store are in package storetest.
//
// A test of an app's portal endpoint:
//
//	func TestPortal(t *testing.T) {
//		s := billingtest.StartStripe(t)
//		s.Seed()
//		h := billingtest.NewPortalService(t, s, nil)
//
//		req := httptest.NewRequest("POST", "/api/subscription/create-portal-session", nil)
//		req.AddCookie(billingtest.Cookie(billingtest.TokenPro))
//		rec := httptest.NewRecorder()
//		h.ServeHTTP(rec, req)
//		if rec.Code != 200 || s.CallCount(billingtest.PathPortalSessions) != 1 {
//			t.Fatalf("status %d, %d Stripe calls", rec.Code, s.CallCount(billingtest.PathPortalSessions))
//		}
//
//		s.Fail(billingtest.PathPortalSessions, billingtest.ServiceUnavailable())
//		rec = httptest.NewRecorder()
//		h.ServeHTTP(rec, req)
//		// 500, after stripe-go's 2 retries: 1 + 3 calls in all.
//	}
//
// The kit never touches stripe-go's globals (stripe.Key, stripe.SetBackend):
// every client it builds carries its own backend.
//
// # The emulator
//
// This section is the emulator's test contract: other tests (a browser
// test, a command's, an app's) drive it by what it lists, and it stays
// stable.
//
// Starting it. [StartStripe] and [NewStripe] serve on an httptest server
// on 127.0.0.1, with portal session URLs of the historical form
// https://billing.stripe.com/p/session/test_... (which lead nowhere; the
// page itself is at [Stripe.URL] plus that path). [StartEmulator] and
// [NewEmulator] serve on [EmulatorConfig].Addr (default 127.0.0.1:0) and
// hand out session URLs that open the hosted page: this is the form to run
// it as a server (go run ./cmd/billing emulator -addr 127.0.0.1:12111) or
// to click through the portal. Both are the same emulator; Close stops
// every goroutine it started.
//
// The API. Any test-mode key (sk_test_... or rk_test_..., as a Bearer
// token or basic-auth user) is accepted on /v1/; form-encoded bodies as
// stripe-go, curl and Stripe's other clients send them (lists as a[0] or
// a[]; nested a[b]); JSON replies in Stripe's shape with a Request-Id
// header. Lists are newest first, paginated like Stripe's (limit 1..100,
// default 10; starting_after; ending_before) and take expand[] (data.x for
// lists). Malformed or missing parameters answer Stripe's 400 error JSON
// naming the parameter; unknown ids 404 resource_missing; any other path
// or method 404 "Unrecognized request URL". Served:
//
//	POST   /v1/products, GET /v1/products (?active, ids[]), GET|POST /v1/products/{id}
//	GET|POST /v1/products/{id}/features, GET|DELETE /v1/products/{id}/features/{id}
//	POST   /v1/prices (product or product_data[name], currency, unit_amount, recurring[interval|interval_count],
//	       lookup_key, transfer_lookup_key, nickname), GET /v1/prices (?lookup_keys[], product, type, active, currency),
//	       GET|POST /v1/prices/{id}
//	POST   /v1/customers, GET /v1/customers (?email), GET|POST /v1/customers/{id}
//	       (email, name, phone, description, address[...], invoice_settings[default_payment_method], metadata)
//	GET    /v1/customers/{id}/payment_methods
//	POST   /v1/subscriptions (customer, items[0][price], items[0][quantity], trial_period_days, trial_end,
//	       cancel_at_period_end, cancel_at, default_payment_method, metadata)
//	GET    /v1/subscriptions (?customer, price, status incl. all and ended), GET /v1/subscriptions/{id}
//	POST   /v1/subscriptions/{id} (items[0][id|price|quantity], cancel_at_period_end, cancel_at, trial_end
//	       (a time or now), default_payment_method, proration_behavior, metadata)
//	DELETE /v1/subscriptions/{id} (canceled at once)
//	GET    /v1/invoices (?customer, subscription, status), GET /v1/invoices/{id}
//	POST   /v1/payment_methods (type=card, card[token]=tok_visa|tok_mastercard|tok_amex), GET /v1/payment_methods
//	       (?customer), GET /v1/payment_methods/{id}, POST /v1/payment_methods/{id}/attach (pm_card_visa, ...
//	       attach a new one), POST /v1/payment_methods/{id}/detach
//	POST   /v1/billing_portal/sessions (customer, return_url, configuration, locale, on_behalf_of, flow_data)
//	POST   /v1/billing_portal/configurations, GET /v1/billing_portal/configurations (?active, is_default),
//	       GET|POST /v1/billing_portal/configurations/{id}
//	POST   /v1/webhook_endpoints (url, enabled_events, api_version, description, metadata),
//	       GET /v1/webhook_endpoints, GET|POST|DELETE /v1/webhook_endpoints/{id} (POST: url, enabled_events, disabled)
//	GET    /v1/events (?type (a trailing * matches a prefix), types[], created, created[gt|gte|lt|lte],
//	       delivery_success), GET /v1/events/{id}
//	POST   /v1/entitlements/features, GET /v1/entitlements/features, GET|POST /v1/entitlements/features/{id}
//	GET    /v1/entitlements/active_entitlements?customer=, GET /v1/entitlements/active_entitlements/{id}
//
// Behaviour. A new subscription is active (as in test mode with a test
// card), or trialing with trial_period_days or a future trial_end; each
// subscription has one item. A new subscription, a plan change (price or
// quantity; proration_behavior=none skips it) and every renewal make an
// invoice, paid at once: the full amount, 0 for a trial, or for a change
// within a period the prorated difference (a credit line for the old
// price, a charge line for the new, as always_invoice does). A month is 30
// days and a year 365, so that advancing 720h passes a monthly period's
// end. Active entitlements are the active features of the products of the
// customer's active, trialing and past_due subscriptions.
//
// Ids and URLs. Ids are prefix_ plus a per-process random part plus a
// counter (cus_, sub_, si_ + the subscription's suffix, prod_, price_, in_,
// il_, pm_, bpc_, bps_, we_, evt_, feat_, prodft_, ent_, req_; [NewID]).
// [DefaultPortalConfiguration] is bpc_billingtest_default. A portal
// session's url is PortalURL + "/p/session/" + token, the token being
// test_... (not the bps_ id). An invoice's hosted_invoice_url is
// PublicURL + "/i/" + id and its invoice_pdf that + "/pdf"; both are
// served (HTML and a one-page PDF) without a key.
//
// Events. Every change, whoever makes it (the API, the hosted page, the
// clock), emits events like Stripe's: customer.created, customer.updated,
// product.created|updated, price.created|updated,
// customer.subscription.created|updated|deleted, invoice.created,
// invoice.finalized, invoice.paid, invoice.payment_succeeded,
// payment_method.attached|detached,
// billing_portal.configuration.created|updated and
// entitlements.active_entitlement_summary.updated (when a customer's set
// of active features changes). Each has an evt_ id, api_version
// 2023-10-16, created on the emulator's clock (for what the clock ran, the
// time it fell due), request.id set when an API request caused it, and for
// an update data.previous_attributes holding the changed fields' old
// values (nested objects with only their changed keys, as Stripe does). A
// change that changes nothing emits nothing. The kit's own methods
// ([Stripe.PutSubscription], [Stripe.AddCustomer], [Stripe.Seed],
// [Stripe.AddPrice], ...) emit none. [Stripe.Events] lists them too.
//
// Webhooks. Each event goes to every enabled endpoint whose
// enabled_events list its type or "*", asynchronously, POSTed with
// Content-Type application/json and Stripe-Signature t=...,v1=... signed
// with that endpoint's whsec_ secret (returned only by the create call, as
// Stripe does; [Stripe.WebhookEndpoints] has it) at the wall clock's time,
// carrying the endpoint's api_version if it set one (the object stays in
// 2023-10-16's shape). A non-2xx reply, a connection error or a timeout is
// retried with doubling backoff up to a bound ([DeliveryConfig]: 50 ms, 8
// attempts, 10 s per attempt by default). At most one delivery per
// endpoint is in flight, so that without retries and chaos an endpoint
// receives events in the order they happened. [Stripe.Deliveries] lists
// every attempt; the events list's delivery_success and pending_webhooks
// follow them (an event sent to no endpoint matches neither
// delivery_success filter). [Chaos] duplicates, reorders and delays
// deliveries, seeded; [Stripe.WaitDeliveries] returns when nothing is
// pending or in flight.
//
// The clock. The emulator's clock ([Stripe.Now]) starts at the wall
// clock's time and moves with it; [Stripe.AdvanceClock] and
// POST /emulator/clock/advance?by=DURATION (a Go duration such as 720h, no
// key needed; GET /emulator/clock reads it) move it forward, then run
// what fell due, earliest first: a period's end renews (new period, paid
// invoice, customer.subscription.updated) or, with cancel_at_period_end or
// a passed cancel_at, deletes the subscription (status canceled,
// customer.subscription.deleted); a trial's end makes it active with its
// first paid invoice. The call answers (200 with the clock's time) once
// every webhook delivery is done.
//
// The hosted portal. A session's url opens a server-rendered HTML page
// that works without JavaScript. It honours the session's configuration
// (an unknown configuration id behaves as the default one), return URL,
// locale (<html lang>, "en" for auto) and deep-link flow. Its elements:
//
//	#subscription     the current subscription: its price id (#subscription-price) and status (#subscription-status)
//	#payment-methods  the customer's cards, and form#payment-method (input card: visa, mastercard, amex)
//	                  that attaches one and makes it the default (payment_method_update)
//	#invoices         each invoice with a link to its page and a.download to its PDF (invoice_history)
//	#change-plan      a form with one radio input name="price" per price a change may pick (the
//	                  configuration's products' prices, or every active recurring price when it lists
//	                  none), and name="quantity" if quantity changes are allowed (subscription_update)
//	#cancel           a form: cancels at period end, or at once with mode immediately (subscription_cancel);
//	                  #renew instead undoes a cancellation at period end
//	#billing-info     a form with the allowed updates: email, name, phone, address[line1|line2|city|state|
//	                  postal_code|country] (customer_update)
//	#return           a link through the emulator (/p/session/<token>/return): marks the session used and
//	                  answers 303 to the return URL
//
// A submitted form answers 303 to the next page. Changing the plan and
// canceling have a confirm step: one more page with form#confirm (and
// #summary). A completed change shows a confirmation page (#confirmation,
// with #return and #home). A deep-link flow opens on its step
// (payment_method_update: #payment-methods; subscription_cancel: the
// cancel confirm step; subscription_update: #change-plan;
// subscription_update_confirm: the confirm step with the flow's items);
// after it, after_completion redirect answers 303 to its return_url (and
// marks the session used), hosted_confirmation shows the confirmation with
// its custom message (#custom-message), portal_homepage goes to the
// portal's home (#notice). The URL is single-use and expires: once the
// user went back (#return or a flow's redirect), or after
// [EmulatorConfig].PortalIdleTimeout without a request (default 5 minutes,
// on the emulator's clock), every page of the session answers 410 with
// #expired; an unknown token 404.
//
// Left out, compared with Stripe: subscriptions with several items,
// schedules, pauses, pending updates, usage-based and tiered prices,
// coupons, promotion codes, taxes, payment intents, charges, refunds,
// declines and 3-D Secure (every test card pays), incomplete and past_due
// flows (set them with [Stripe.PutSubscription]), dunning and Smart
// Retries, trial_will_end and upcoming-invoice events,
// billing_portal.session.created (the event would carry the portal URL),
// the portal's retention offers, cancellation reasons kept on the
// subscription, login page, checkout sessions, Connect (Stripe-Account is
// recorded, not used), idempotency-key replay, test clock objects
// (/v1/test_helpers; the emulator has one global clock), objects rendered
// in other API versions, Stripe's three-day retry schedule and
// automatic endpoint disabling, search endpoints, and rate limits (inject
// them as faults). Unknown parameters are ignored, where Stripe answers
// 400.
package billingtest
