// Command demo serves the portal endpoint of package billing on one machine,
// offline: with no Stripe settings it runs the test kit's fake Stripe
// in-process, with -stripe-url it talks to a stripe-mock (or any Stripe API).
//
//	go run ./examples/demo
//	go run ./examples/demo -stripe-url http://127.0.0.1:12111
//	go run ./examples/demo -users users.json -allowed-return https://app.example.com
//
// Flags (environment fallbacks in brackets):
//
//	-addr HOST:PORT        listen address (127.0.0.1:8080)
//	-stripe-url URL        Stripe API base [STRIPE_API_URL]; key from STRIPE_SECRET_KEY
//	-users FILE            JSON array of {"id","plan","stripe_customer_id","token","expires_at"};
//	                       users the store already holds are left as they are (see Seeding)
//	-return-url URL        default return URL (http://HOST:PORT/billing/return)
//	-allowed-return LIST   comma-separated origins or URL prefixes allowed as return_url
//	-webhook-secret SECRET Stripe webhook signing secret [STRIPE_WEBHOOK_SECRET];
//	                       without it POST /api/subscription/webhook is not served
//	-price-plans LIST      price_id=PLAN pairs (price_basic=BASIC,price_pro=PRO)
//	-db DSN                a postgres:// URL or a SQLite file path: keep users,
//	                       subscriptions and event ids there (package sqlstore)
//	                       instead of in memory; the schema is created if missing
//
// The demo is a module of its own (it imports the database drivers, which
// the library's root module must not require); the repository's go.work
// makes `go run ./examples/demo` work from the repository root.
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
// the url it answers. The portal's return URL is /billing/return. The two
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
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/sqlstore"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx", for -db postgres://...
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
	"github.com/stripe/stripe-go/v76/subscription"
	_ "modernc.org/sqlite" // driver "sqlite", for -db FILE
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// demoUser is one entry of the -users file.
type demoUser struct {
	ID               string    `json:"id"`
	Plan             string    `json:"plan"`
	StripeCustomerID string    `json:"stripe_customer_id"`
	Token            string    `json:"token"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// defaultUsers are seeded when no -users file is given.
var defaultUsers = []demoUser{
	{ID: "user_free", Plan: "FREE", Token: "tok_free"},
	{ID: "user_basic", Plan: "BASIC", StripeCustomerID: "cus_demo_basic", Token: "tok_basic"},
	{ID: "user_pro", Plan: "PRO", StripeCustomerID: "cus_demo_pro", Token: "tok_pro"},
	{ID: "user_pro_nocustomer", Plan: "PRO", Token: "tok_pro_nocustomer"},
}

// run is the demo; it returns when ctx is done or the server fails.
func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address HOST:PORT")
	stripeURL := fs.String("stripe-url", getenv("STRIPE_API_URL"), "Stripe API base URL, e.g. a stripe-mock (default $STRIPE_API_URL)")
	usersFile := fs.String("users", "", "JSON array of {\"id\",\"plan\",\"stripe_customer_id\",\"token\",\"expires_at\"} to seed: users the store does not hold yet are added, the others (a -db from an earlier run or another replica) are left as they are")
	returnURL := fs.String("return-url", "", "default return URL (default http://ADDR/account)")
	allowed := fs.String("allowed-return", "", "comma-separated origins or URL prefixes allowed as return_url")
	webhookSecret := fs.String("webhook-secret", getenv("STRIPE_WEBHOOK_SECRET"), "Stripe webhook signing secret, whsec_... (default $STRIPE_WEBHOOK_SECRET)")
	dsn := fs.String("db", "", "postgres:// URL or SQLite file path for the SQL store (default: in memory)")
	pricePlans := fs.String("price-plans", "price_basic=BASIC,price_pro=PRO", "comma-separated price_id=PLAN pairs mapping Stripe prices to plans")
	if err := fs.Parse(args); err != nil {
		return err
	}

	users := defaultUsers
	if *usersFile != "" {
		var err error
		if users, err = readUsers(*usersFile); err != nil {
			return err
		}
	}

	plans, err := billing.ParsePriceTable(*pricePlans)
	if err != nil {
		return fmt.Errorf("-price-plans: %w", err)
	}
	rules := billing.PlanRules{Prices: plans} // one value for the webhook handler and the return sync
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	base := "http://" + ln.Addr().String()
	if *returnURL == "" {
		*returnURL = base + "/billing/return"
	}

	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	store, put, closeStore, err := openStore(ctx, *dsn)
	if err != nil {
		return err
	}
	defer closeStore()
	auth := newTokenAuth()
	seeded, err := seed(ctx, store, put, users)
	if err != nil {
		return err
	}
	for _, u := range users {
		auth.add(u.Token, u.ID, u.ExpiresAt)
	}
	fmt.Fprintf(out, "users: %d seeded, %d already in the store and left as they are\n", seeded, len(users)-seeded)
	if *dsn != "" {
		fmt.Fprintf(out, "store: %s (sqlstore)\n", sqlstore.DialectOf(*dsn))
	} else {
		fmt.Fprintln(out, "store: memory")
	}

	// Stripe: the real API (or a stripe-mock) when configured, else the
	// test kit's fake, in-process.
	key := getenv("STRIPE_SECRET_KEY")
	var (
		backend stripe.Backend
		clk     clock  // the emulator's test clock, if it has one
		clockOf string // what clk is, for the account page
	)
	switch {
	case *stripeURL == "" && key == "":
		fake := billingtest.NewStripe()
		defer fake.Close()
		// Each paid user with a customer gets an active subscription to
		// the default price of their plan, so deep-link flows and the
		// return sync have something to act on.
		for _, u := range users {
			if u.StripeCustomerID == "" {
				continue
			}
			fake.AddCustomer(u.StripeCustomerID)
			switch strings.ToUpper(u.Plan) {
			case "BASIC":
				fake.PutSubscription(billingtest.SubscriptionSpec{ID: "sub_" + u.ID, Customer: u.StripeCustomerID, PriceID: "price_basic"})
			case "PRO":
				fake.PutSubscription(billingtest.SubscriptionSpec{ID: "sub_" + u.ID, Customer: u.StripeCustomerID, PriceID: "price_pro"})
			}
		}
		backend, key = fake.Backend(), billingtest.TestKey
		if c, ok := any(fake).(clock); ok {
			clk, clockOf = c, "the in-process emulator's clock"
		}
		fmt.Fprintf(out, "no STRIPE_SECRET_KEY or -stripe-url: using the test kit's fake Stripe in-process at %s\n", fake.URL())
	default:
		cfg := &stripe.BackendConfig{}
		if *stripeURL != "" {
			cfg.URL = stripe.String(strings.TrimRight(*stripeURL, "/"))
		}
		if key == "" {
			key = "sk_test_demo" // stripe-mock accepts any test key
		}
		backend = billing.NewBackend(cfg)
		where := "Stripe's API"
		if *stripeURL != "" {
			where = *stripeURL
			// Perhaps a `billing emulator`: its clock is an HTTP call away.
			clk = emulatorClock{base: strings.TrimRight(*stripeURL, "/"), client: &http.Client{Timeout: 2 * time.Minute}}
			clockOf = "the clock of the emulator at " + *stripeURL
		}
		fmt.Fprintf(out, "using Stripe at %s\n", where)
	}

	var allow []string
	for _, a := range strings.Split(*allowed, ",") {
		if a = strings.TrimSpace(a); a != "" {
			allow = append(allow, a)
		}
	}
	svc, err := billing.NewPortalService(billing.PortalConfig{
		Stripe:            &session.Client{B: backend, Key: key},
		Subscriptions:     &subscription.Client{B: backend, Key: key}, // proves a flow's subscription is the user's
		Users:             store,
		Auth:              auth,
		ReturnURL:         *returnURL,
		AllowedReturnURLs: allow,
		Logger:            log,
	})
	if err != nil {
		return err
	}

	subs := &subscription.Client{B: backend, Key: key}
	mux := http.NewServeMux()
	mux.Handle("/api/subscription/create-portal-session", svc)
	notifier, err := newNotifier(store, out, getenv("BILLING_DEMO_EXIT_BEFORE_HOOK") == "1")
	if err != nil {
		return err
	}
	if accounts, ok := store.(billing.AccountStore); ok {
		status, err := billing.NewStatusHandler(billing.StatusConfig{Accounts: accounts, Auth: auth, Logger: log})
		if err != nil {
			return err
		}
		mux.Handle("/api/subscription", status)
	}
	if *webhookSecret != "" {
		wh, err := billing.NewWebhookHandler(billing.WebhookConfig{
			Secrets:       []string{*webhookSecret},
			Store:         store,
			Rules:         rules,
			Subscriptions: subs,
			LinkCheckout:  true,
			Notifier:      notifier,
			Logger:        log,
		})
		if err != nil {
			return err
		}
		mux.Handle("/api/subscription/webhook", wh)
		fmt.Fprintln(out, "webhook: POST /api/subscription/webhook (test-mode events)")
	} else {
		fmt.Fprintln(out, "webhook: off (set -webhook-secret or STRIPE_WEBHOOK_SECRET to serve POST /api/subscription/webhook)")
	}
	rs, err := billing.NewReturnSync(billing.ReturnSyncConfig{
		Auth: auth, Users: store, Store: store, Subscriptions: subs, Rules: rules,
		Redirect: "/account", Notifier: notifier, Logger: log,
	})
	if err != nil {
		return err
	}
	mux.Handle("GET /billing/return", rs)
	(&pages{
		auth: auth, store: store, portal: svc, subs: subs, prices: priceList(plans),
		clock: clk, clockOf: clockOf, log: log,
	}).register(mux)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	if *usersFile == "" {
		fmt.Fprintln(out, "seeded users (open a link in a browser to sign in, or try the curl):")
		for _, u := range users {
			fmt.Fprintf(out, "  %-20s %-5s  %s/login?token=%s\n", u.ID, u.Plan, base, url.QueryEscape(u.Token))
			fmt.Fprintf(out, "  %-20s %-5s  curl -s -X POST %s/api/subscription/create-portal-session -H 'Cookie: access_token=%s'\n", "", "", base, u.Token)
		}
	}
	fmt.Fprintf(out, "listening on %s\n", base)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if notifier != nil {
		// What an earlier run committed but did not deliver, then retries.
		go deliverLoop(ctx, notifier, log)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			// Connections still busy after the grace period, or opened and
			// never used (net/http counts those as busy for 5 s): close
			// them; the stop itself went as asked.
			log.Warn("demo: closing connections still open after 5 s of shutdown")
			srv.Close()
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// newNotifier returns the demo's plan-change notifier, whose hook prints one
// line per change; nil when the store keeps no outbox. With exitBeforeHook
// the process exits right after a change is claimed, before the hook: a
// crash between the commit and the hook, for the restart test.
func newNotifier(s store, out io.Writer, exitBeforeHook bool) (*billing.Notifier, error) {
	outbox, ok := s.(billing.Outbox)
	if !ok {
		return nil, nil
	}
	var mu sync.Mutex
	cfg := billing.NotifierConfig{
		Outbox: outbox,
		Lease:  5 * time.Second,
		Hook: billing.PlanChangeHookFunc(func(_ context.Context, c billing.PlanChange) error {
			mu.Lock()
			defer mu.Unlock()
			_, err := fmt.Fprintf(out, "plan change: user=%s from=%s to=%s cause=%s id=%s\n", c.UserID, c.Before.Plan, c.After.Plan, c.Cause.Kind, c.ID)
			return err
		}),
	}
	if exitBeforeHook {
		cfg.Crash = func(billing.PlanChange) bool {
			fmt.Fprintln(out, "exiting before the plan-change hook (BILLING_DEMO_EXIT_BEFORE_HOOK=1)")
			os.Exit(3)
			return true
		}
	}
	return billing.NewNotifier(cfg)
}

// deliverLoop delivers pending plan changes at start and every 2 seconds
// until ctx is done.
func deliverLoop(ctx context.Context, n *billing.Notifier, log *slog.Logger) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if _, err := n.Deliver(ctx); err != nil && ctx.Err() == nil {
			log.Warn("demo: plan changes not all delivered; retried", "cause", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// seed adds the users that store does not hold yet with put, and leaves
// the others alone (see the package documentation's Seeding); it returns
// how many it added. Every plan is checked before anything is written.
func seed(ctx context.Context, store billing.UserStore, put func(context.Context, billing.User) error, users []demoUser) (int, error) {
	seeds := make([]billing.User, len(users))
	for i, u := range users {
		plan, err := billing.ParsePlan(u.Plan)
		if err != nil {
			return 0, fmt.Errorf("user %q: %w", u.ID, err)
		}
		seeds[i] = billing.User{ID: u.ID, Plan: plan, StripeCustomerID: u.StripeCustomerID}
	}
	n := 0
	for _, u := range seeds {
		_, found, err := store.User(ctx, u.ID)
		if err != nil {
			return n, fmt.Errorf("seed user %q: %w", u.ID, err)
		}
		if found {
			continue
		}
		if err := put(ctx, u); err != nil {
			return n, fmt.Errorf("seed user %q: %w", u.ID, err)
		}
		n++
	}
	return n, nil
}

func readUsers(path string) ([]demoUser, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read -users: %w", err)
	}
	var users []demoUser
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&users); err != nil {
		return nil, fmt.Errorf("-users %s: want a JSON array of {\"id\",\"plan\",\"stripe_customer_id\",\"token\",\"expires_at\"}: %w", path, err)
	}
	for i, u := range users {
		if u.ID == "" || u.Token == "" {
			return nil, fmt.Errorf("-users %s: entry %d needs an id and a token", path, i)
		}
	}
	return users, nil
}

// tokenAuth is the demo's stand-in for an app's session verification: a
// table of opaque tokens with optional expiry, read from the access_token
// cookie by billing.CookieAuthenticator.
type tokenAuth struct {
	mu     sync.RWMutex
	tokens map[string]tokenEntry
	*billing.CookieAuthenticator
}

type tokenEntry struct {
	userID  string
	expires time.Time
}

func newTokenAuth() *tokenAuth {
	a := &tokenAuth{tokens: map[string]tokenEntry{}}
	a.CookieAuthenticator = billing.NewCookieAuthenticator(billing.TokenVerifierFunc(a.verify))
	return a
}

func (a *tokenAuth) add(token, userID string, expires time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[token] = tokenEntry{userID, expires}
}

func (a *tokenAuth) verify(_ context.Context, token string) (string, error) {
	a.mu.RLock()
	e, ok := a.tokens[token]
	a.mu.RUnlock()
	switch {
	case !ok:
		return "", billing.ErrTokenInvalid
	case !e.expires.IsZero() && time.Now().After(e.expires):
		return "", billing.ErrTokenExpired
	}
	return e.userID, nil
}

// store is what the demo needs of a store: the portal's and the sync's.
type store interface {
	billing.UserStore
	billing.SyncStore
}

// openStore returns the memory store, or with a DSN the SQL store on
// PostgreSQL (postgres:// URL) or SQLite (file path), migrated; put adds or
// replaces a user (PutUser, which derives the plan of a customer with
// stored subscriptions).
func openStore(ctx context.Context, dsn string) (store, func(context.Context, billing.User) error, func(), error) {
	if dsn == "" {
		m := billing.NewMemoryStore()
		return m, func(ctx context.Context, u billing.User) error { return m.PutUser(ctx, u) }, func() {}, nil
	}
	d := sqlstore.DialectOf(dsn)
	driver, source := "pgx", dsn
	if d == sqlstore.SQLite {
		driver = "sqlite"
		if !strings.HasPrefix(dsn, "file:") {
			source = "file:" + dsn
		}
		if !strings.Contains(source, "?") {
			source += "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
		}
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("-db: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("-db: cannot reach the %s database: %w", d, err)
	}
	s, err := sqlstore.New(db, d)
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("-db: %w", err)
	}
	return s, s.PutUser, func() { db.Close() }, nil
}
