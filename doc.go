// Package billing serves Stripe's Customer Portal to the paid users of a Go
// web app, and keeps each user's plan in step with Stripe afterwards.
//
// Mount the portal endpoint (POST /api/subscription/create-portal-session)
// on any router:
//
//	sc := &session.Client{B: billing.NewBackend(nil), Key: os.Getenv("STRIPE_SECRET_KEY")}
//	svc, err := billing.NewPortalService(billing.PortalConfig{
//		Stripe:    sc,    // stripe-go's billingportal/session client
//		Users:     users, // your billing.UserStore
//		Auth:      billing.NewCookieAuthenticator(billing.TokenVerifierFunc(verifyToken)),
//		ReturnURL: "https://app.example.com/account",
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux.Handle("POST /api/subscription/create-portal-session", svc)
//
// The handler answers in the endpoint's documented JSON: 200 with the portal
// URL for a BASIC or PRO user, 401 without valid credentials, 403 for a FREE
// user, 404 when the user has no Stripe customer, 500 when the store or
// Stripe fails; and 400, 405, 413 and a cross-origin 403 for malformed
// requests. A request refused by these checks creates no session at
// Stripe. openapi/openapi.yaml in the repository describes every reply.
//
// # Parts
//
//   - [PortalService] creates the sessions ([PortalService.CreateSession],
//     usable without HTTP) and serves them ([PortalService.ServeHTTP]); its
//     [PortalConfig] holds the authenticator, the return URL allowlist, the
//     portal configuration and locale, and the logger and [Observer].
//   - [SessionOptions] and [Flow] choose a return URL, a locale, or a
//     deep link into one portal flow (payment method update, cancelation
//     with a retention coupon, plan change and its confirmation).
//   - [Authenticator] tells who sends a request; [CookieAuthenticator] reads
//     the access_token cookie and hands it to the app's [TokenVerifier].
//   - [UserStore] loads users for the portal; [SyncStore] applies
//     subscription changes atomically for the sync. [MemoryStore] is both,
//     in memory; the sqlstore module holds them in PostgreSQL or SQLite,
//     shared by many replicas.
//   - [WebhookHandler] applies Stripe's customer.subscription.* events
//     through [PlanRules] (a [PriceTable] that maps prices to plans, and the
//     past-due policy), each event at most once and never over newer state,
//     in the order that [SubscriptionChange] explains.
//   - [ReturnSync], mounted at the portal's return URL, reads the user's
//     subscriptions from Stripe when they come back, for the user who changed
//     plan and came back before the webhook.
//   - Every failure is an *[Error] that matches exactly one of the
//     sentinels ([ErrUnauthorized], [ErrNotPaid], [ErrCustomerNotFound],
//     [ErrInternal], ...) with [errors.Is]; [WriteError] writes it as JSON.
//   - [Outcome] and [Op] are the one vocabulary of replies, log records
//     and [Observation]s.
//   - [ViewOf] gives a user's [View] (plan, access, renews/ends/trial
//     dates, payment problem, features) from an [AccountStore];
//     [StatusHandler] serves it at GET /api/subscription.
//   - A [PlanChangeHook] receives each change of a user's view at least
//     once, in order per user, from the store's [Outbox] through a
//     [Notifier].
//
// The three endpoints are built alike: [PortalConfig] → [NewPortalService],
// [WebhookConfig] → [NewWebhookHandler], [ReturnSyncConfig] →
// [NewReturnSync], each result an http.Handler with its core operation
// beside it (CreateSession, Handle, Sync). The portal and the return sync
// take the same Authenticator; the webhook handler and the return sync take
// the same [PlanRules] value; all three take a Logger, an Observer and a
// WriteError.
//
// Stripe is always reached through injected stripe-go clients
// ([SessionCreator], [SubscriptionGetter], [SubscriptionLister]), never
// through stripe-go's global key or backend. [NewBackend] builds a backend
// with timeouts fit for a user waiting on a button.
//
// Package github.com/contafy/billing/billingtest is the test kit: a fake
// Stripe with fault injection, signed webhook events, standard users and a
// static authenticator, for the tests of apps that use this package.
//
// # Webhook events
//
// [WebhookHandler] checks each request, in order: method (405 unless POST);
// body read under the size cap (413); Stripe-Signature checked against
// every secret with stripe-go's webhook package (400 when missing,
// malformed or matching no secret); timestamp within Tolerance of the
// handler's clock in both directions (400); event JSON (400); livemode
// against Mode (400). Nothing is written for a 4xx.
//
// Events of any API version are accepted. stripe-go v76 refuses events not
// of its version (2023-10-16) by default, so an endpoint pinned to another
// version would fail every delivery and lose all of them after Stripe's
// three days of retries. The handler reads only fields that have kept their
// shape across API versions (the event's id, type, created and livemode;
// the subscription's id, customer, status and items.data[].price id,
// lookup key and product; the checkout session's client_reference_id and
// customer), decoded on their own rather than into stripe-go's structs,
// some of whose fields changed type between versions; an event whose object
// lacks them is answered 400. The event's api_version is logged when it
// differs from stripe-go's. Reads from Stripe (ties, product metadata, the
// return sync) use stripe-go's own version.
//
// Handled events: customer.subscription.created, .updated, .deleted,
// .paused, .resumed, .pending_update_applied and .pending_update_expired
// apply the subscription in the event; checkout.session.completed links a
// customer when LinkCheckout is set;
// entitlements.active_entitlement_summary.updated replaces the customer's
// active features when the store is a [FeatureStore]. Every other event
// type, including
// customer.subscription.trial_will_end (a reminder, not a change), is
// acknowledged with 200 and outcome [Ignored].
//
// A subscription event becomes a [SubscriptionChange] with the event id,
// the event's created time and a Seq from its status, in the order of
// changes that [SubscriptionChange] describes. Its Plan is the highest
// plan among the items' mapped prices when the status grants access
// (active, trialing, and past_due unless [PlanRules].PastDueRevokesAccess),
// else FREE. When the status grants access and no price maps to a plan
// (after reading the product from Stripe if the table maps product
// metadata and Subscriptions is set), the event is acknowledged with
// outcome [UnknownPrice] and a warning naming the price ids, and nothing is
// applied: the stored subscription and the user's plan stay as they were.
//
// The store's answer decides the reply: [Applied], [Duplicate] and [Stale]
// are 200; a [Tie] makes the handler read the subscription from Stripe
// (Subscriptions), waiting first for the event's second to end (at most
// 1 s), and apply the read as [SubscriptionChange] says. A store error, or
// a Stripe error during that read, is 500 ([ErrWebhookFailed]): the event
// is not remembered and Stripe delivers it again. An event for a customer
// no user is linked to yet is applied all the same (the store keeps it), so
// the user gets the right plan when the customer is linked, in either
// order.
//
// Replies: 200 {"received":true,"outcome":"applied"} (or "duplicate",
// "stale", "tie_kept", "unknown_price", "linked", "unknown_user",
// "ignored": the [Outcome] words); errors in the JSON of [WriteError].
//
// # Logging and metrics
//
// With an endpoint's Logger set, each request yields one [log/slog] record with
// the outcome, the status, the latency, the user id and Stripe's request id
// when Stripe was called. No record and no reply ever holds the secret key,
// a cookie or token, a portal URL or Stripe's error text. An [Observer]
// receives the same facts as an [Observation], for metrics and traces.
package billing
