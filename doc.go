// Package billing serves Stripe's Customer Portal to the paid users of a Go
// web app, and keeps each user's plan in step with Stripe afterwards.
//
// Mount the portal endpoint (POST /api/subscription/create-portal-session)
// on any router:
//
//	sc := &session.Client{B: billing.NewBackend(nil), Key: os.Getenv("STRIPE_SECRET_KEY")}
//	svc, err := billing.NewPortalService(billing.Config{
//		Stripe:    sc,     // stripe-go's billingportal/session client
//		Users:     users,  // your billing.UserStore
//		ReturnURL: "https://app.example.com/account",
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	auth := billing.NewCookieAuthenticator(billing.TokenVerifierFunc(verifyToken))
//	mux.Handle("POST /api/subscription/create-portal-session", svc.Handler(auth))
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
//     usable without HTTP) and serves them ([PortalService.Handler]); its
//     [Config] holds the return URL allowlist, the portal configuration and
//     locale, and the logger and [Observer].
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
//     through a [PriceTable] that maps prices to plans, each event at most
//     once and never over newer state.
//   - [ReturnSync], mounted at the portal's return URL, reads the user's
//     subscriptions from Stripe when they come back, for the user who changed
//     plan and came back before the webhook.
//   - Every failure is an *[Error] that matches one of the sentinels
//     ([ErrUnauthorized], [ErrNotPaid], [ErrCustomerNotFound],
//     [ErrInternal], ...) with [errors.Is]; [WriteError] writes it as JSON.
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
// # Logging and metrics
//
// With Config.Logger set, each request yields one [log/slog] record with
// the outcome, the status, the latency, the user id and Stripe's request id
// when Stripe was called. No record and no reply ever holds the secret key,
// a cookie or token, a portal URL or Stripe's error text. An [Observer]
// receives the same facts as an [Observation], for metrics and traces.
package billing
