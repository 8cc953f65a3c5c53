// Package app is the billing demo (examples/demo) as a Go API: [Start]
// runs it in-process and hands back what a test needs to look at (its URL,
// its store, its in-process Stripe). The command's documentation
// (examples/demo's package comment) describes the flags, pages and
// endpoints; the command is [Run] on os.Args. The end-to-end tests of the
// repository (e2e/) drive a real browser through it.
package app

import (
	"context"
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
	"strings"
	"sync"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/ops"
	"github.com/contafy/billing/sqlstore"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
	"github.com/stripe/stripe-go/v76/subscription"
)

// User is one entry of the -users file.
type User struct {
	ID               string    `json:"id"`
	Plan             string    `json:"plan"`
	StripeCustomerID string    `json:"stripe_customer_id"`
	Token            string    `json:"token"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// DefaultUsers are seeded when no -users file is given. Do not modify.
var DefaultUsers = []User{
	{ID: "user_free", Plan: "FREE", Token: "tok_free"},
	{ID: "user_basic", Plan: "BASIC", StripeCustomerID: "cus_demo_basic", Token: "tok_basic"},
	{ID: "user_pro", Plan: "PRO", StripeCustomerID: "cus_demo_pro", Token: "tok_pro"},
	{ID: "user_pro_nocustomer", Plan: "PRO", Token: "tok_pro_nocustomer"},
}

// Demo is a running demo, from [Start].
type Demo struct {
	// URL is the demo's base URL, http://HOST:PORT.
	URL string
	// Store is the demo's store: a *billing.MemoryStore, or with -db a
	// *sqlstore.Store.
	Store Store
	// Stripe is the in-process Stripe (the test kit's emulator) when no
	// Stripe is configured; nil otherwise.
	Stripe *billingtest.Stripe

	done chan error
}

// Wait waits until the demo has stopped (its context is done, or its
// server failed) and returns why: nil for a clean stop.
func (d *Demo) Wait() error { return <-d.done }

// Run runs the demo with the command line args (without the program name),
// the environment getenv and the output out until ctx is done.
func Run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	d, err := Start(ctx, args, getenv, out)
	if err != nil {
		return err
	}
	return d.Wait()
}

// Start starts the demo as [Run] does and returns once it accepts
// connections (it has printed "listening on http://HOST:PORT"). It stops
// when ctx is done; [Demo.Wait] waits for that.
func Start(ctx context.Context, args []string, getenv func(string) string, out io.Writer) (_ *Demo, err error) {
	ctx, stop := context.WithCancel(ctx) // also stops the delivery loop when the server fails
	cleanups := []func(){stop}           // run in reverse when the demo stops, or now on an error
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	serving := false // from then on the server's goroutine cleans up
	defer func() {
		if err != nil && !serving {
			cleanup()
		}
	}()

	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address HOST:PORT")
	stripeURL := fs.String("stripe-url", getenv("STRIPE_API_URL"), "Stripe API base URL, e.g. a stripe-mock (default $STRIPE_API_URL)")
	emulatorAddr := fs.String("emulator-addr", "127.0.0.1:0", "listen address HOST:PORT of the in-process Stripe emulator, used without -stripe-url and STRIPE_SECRET_KEY (port 0: any free port)")
	usersFile := fs.String("users", "", "JSON array of {\"id\",\"plan\",\"stripe_customer_id\",\"token\",\"expires_at\"} to seed: users the store does not hold yet are added, the others (a -db from an earlier run or another replica) are left as they are")
	returnURL := fs.String("return-url", "", "default return URL (default http://ADDR/billing/return)")
	allowed := fs.String("allowed-return", "", "comma-separated origins or URL prefixes allowed as return_url")
	webhookSecret := fs.String("webhook-secret", getenv("STRIPE_WEBHOOK_SECRET"), "Stripe webhook signing secret, whsec_... (default $STRIPE_WEBHOOK_SECRET)")
	dsn := fs.String("db", "", "postgres:// URL or SQLite file path for the SQL store (default: in memory)")
	pricePlans := fs.String("price-plans", "price_basic=BASIC,price_pro=PRO", "comma-separated price_id=PLAN pairs mapping Stripe prices to plans")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}

	users := DefaultUsers
	if *usersFile != "" {
		var err error
		if users, err = readUsers(*usersFile); err != nil {
			return nil, err
		}
	}

	plans, err := billing.ParsePriceTable(*pricePlans)
	if err != nil {
		return nil, fmt.Errorf("-price-plans: %w", err)
	}
	rules := billing.PlanRules{Prices: plans} // one value for the webhook handler and the return sync
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", *addr, err)
	}
	cleanups = append(cleanups, func() { ln.Close() })
	base := "http://" + ln.Addr().String()
	if *returnURL == "" {
		*returnURL = base + "/billing/return"
	}

	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	store, put, closeStore, err := openStore(ctx, *dsn)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, closeStore)
	auth := newTokenAuth()
	seeded, err := seed(ctx, store, put, users)
	if err != nil {
		return nil, err
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

	// Stripe: the real API (or a stripe-mock, or a billing emulator) when
	// configured, else the test kit's emulator, in-process.
	key := getenv("STRIPE_SECRET_KEY")
	var (
		backend     stripe.Backend
		clk         clock                   // the emulator's test clock, if it has one
		clockOf     string                  // what clk is, for the account page
		emu         *billingtest.Stripe     // the in-process Stripe, if any
		acct        account                 // what setUpAccount made on emu
		subscribeTo map[billing.Plan]string // the price of each plan's seeded users, on emu
	)
	switch {
	case *stripeURL == "" && key == "":
		emu, err = billingtest.NewEmulator(billingtest.EmulatorConfig{Addr: *emulatorAddr, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("-emulator-addr: %w", err)
		}
		cleanups = append(cleanups, emu.Close)
		backend, key = emu.Backend(), billingtest.TestKey
		subscribeTo = catalog(emu, plans, users)
		if acct, err = setUpAccount(ctx, ops.StripeAPI{B: backend, Key: key}, plans, base+"/api/subscription/webhook", *returnURL); err != nil {
			return nil, err
		}
		clk, clockOf = emu, "the in-process emulator's clock"
		fmt.Fprintf(out, "no STRIPE_SECRET_KEY or -stripe-url: using the test kit's Stripe emulator in-process at %s (its API, hosted portal pages, webhooks and test clock)\n", emu.URL())
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
	// The deep links' after-completion redirect goes to the return URL.
	allow = append(allow, *returnURL)
	svc, err := billing.NewPortalService(billing.PortalConfig{
		Stripe:            &session.Client{B: backend, Key: key},
		Subscriptions:     &subscription.Client{B: backend, Key: key}, // proves a flow's subscription is the user's
		Users:             store,
		Auth:              auth,
		ReturnURL:         *returnURL,
		AllowedReturnURLs: allow,
		Configuration:     acct.portalConfiguration, // empty: the account's default
		Logger:            log,
	})
	if err != nil {
		return nil, err
	}

	subs := &subscription.Client{B: backend, Key: key}
	mux := http.NewServeMux()
	mux.Handle("/api/subscription/create-portal-session", svc)
	notifier, err := newNotifier(store, out, getenv("BILLING_DEMO_EXIT_BEFORE_HOOK") == "1")
	if err != nil {
		return nil, err
	}
	if accounts, ok := store.(billing.AccountStore); ok {
		status, err := billing.NewStatusHandler(billing.StatusConfig{Accounts: accounts, Auth: auth, Logger: log})
		if err != nil {
			return nil, err
		}
		mux.Handle("/api/subscription", status)
	}
	var secrets []string // -webhook-secret's, and the one the emulator generated for the demo's endpoint
	for _, s := range []string{*webhookSecret, acct.webhookSecret} {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) > 0 {
		wh, err := billing.NewWebhookHandler(billing.WebhookConfig{
			Secrets:       secrets,
			Store:         store,
			Rules:         rules,
			Subscriptions: subs,
			LinkCheckout:  true,
			Notifier:      notifier,
			Logger:        log,
		})
		if err != nil {
			return nil, err
		}
		mux.Handle("/api/subscription/webhook", wh)
		if acct.webhookSecret != "" {
			fmt.Fprintln(out, "webhook: POST /api/subscription/webhook, registered with the emulator (its signing secret generated by the emulator)")
		} else {
			fmt.Fprintln(out, "webhook: POST /api/subscription/webhook (test-mode events)")
		}
	} else {
		fmt.Fprintln(out, "webhook: off (set -webhook-secret or STRIPE_WEBHOOK_SECRET to serve POST /api/subscription/webhook)")
	}
	rs, err := billing.NewReturnSync(billing.ReturnSyncConfig{
		Auth: auth, Users: store, Store: store, Subscriptions: subs, Rules: rules,
		Redirect: "/account", Notifier: notifier, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	if emu != nil {
		mux.Handle("GET /billing/return", afterDeliveries(emu, rs))
	} else {
		mux.Handle("GET /billing/return", rs)
	}
	(&pages{
		auth: auth, store: store, portal: svc, subs: subs, prices: priceList(plans),
		returnURL: *returnURL, clock: clk, clockOf: clockOf, log: log,
	}).register(mux)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	d := &Demo{URL: base, Store: store, Stripe: emu, done: make(chan error, 1)}
	serving = true
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var wg sync.WaitGroup
	if notifier != nil {
		// What an earlier run committed but did not deliver, then retries.
		wg.Go(func() { deliverLoop(ctx, notifier, log) })
	}
	go func() {
		defer cleanup()
		select {
		case err := <-errc:
			stop()
			wg.Wait()
			d.done <- err
			return
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			// Connections still busy after the grace period, or opened and
			// never used (net/http counts those as busy for 5 s): close
			// them; the stop itself went as asked.
			log.Warn("demo: closing connections still open after 5 s of shutdown")
			srv.Close()
		}
		wg.Wait()
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			d.done <- err
			return
		}
		d.done <- nil
	}()
	if emu != nil {
		// The seeded users' subscriptions, now that the webhook is served.
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := subscribe(sctx, emu, ops.StripeAPI{B: backend, Key: key}, users, subscribeTo)
		cancel()
		if err != nil {
			stop()
			_ = d.Wait()
			return nil, err
		}
	}
	if *usersFile == "" {
		fmt.Fprintln(out, "seeded users (open a link in a browser to sign in, or try the curl):")
		for _, u := range users {
			fmt.Fprintf(out, "  %-20s %-5s  %s/login?token=%s\n", u.ID, u.Plan, base, url.QueryEscape(u.Token))
			fmt.Fprintf(out, "  %-20s %-5s  curl -s -X POST %s/api/subscription/create-portal-session -H 'Cookie: access_token=%s'\n", "", "", base, u.Token)
		}
	}
	fmt.Fprintf(out, "listening on %s\n", base)
	return d, nil
}

// newNotifier returns the demo's plan-change notifier, whose hook prints one
// line per change; nil when the store keeps no outbox. With exitBeforeHook
// the process exits right after a change is claimed, before the hook: a
// crash between the commit and the hook, for the restart test.
func newNotifier(s Store, out io.Writer, exitBeforeHook bool) (*billing.Notifier, error) {
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
func seed(ctx context.Context, store billing.UserStore, put func(context.Context, billing.User) error, users []User) (int, error) {
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

func readUsers(path string) ([]User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read -users: %w", err)
	}
	var users []User
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
