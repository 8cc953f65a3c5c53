package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/testenv"
	"github.com/contafy/billing/ops"
	"github.com/contafy/billing/sqlstore"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/customer"
	"github.com/stripe/stripe-go/v76/subscription"
)

// TestOutage: the app's webhook endpoint is disabled while plans change in
// the emulator (upgrades, cancellations, a new subscription), then enabled
// again with webhook setup; the store still has the old plans. replay,
// and separately reconcile, each bring every plan right, and each user's
// plan changes once: one drift line per changed user, none for the
// others, none on a second run (and, once the SQL store keeps an outbox,
// one plan change per changed user delivered to a hook).
//
// A third outage is the app failing (500) while the endpoint is enabled:
// Stripe records the deliveries as failed, and replay -failed-only
// replays just those.
func TestOutage(t *testing.T) {
	for _, db := range databases {
		for _, repair := range []string{"replay", "reconcile", "replay-failed-only"} {
			t.Run(db.name+"/"+repair, func(t *testing.T) {
				t.Parallel()
				testOutage(t, db.dsn(t), repair)
			})
		}
	}
}

func testOutage(t *testing.T, dsn, repair string) {
	ctx := context.Background()
	s, environ := startCatalog(t, billingtest.EmulatorConfig{Webhooks: billingtest.DeliveryConfig{FirstRetry: time.Millisecond, MaxAttempts: 2}})
	store := openTestStore(t, dsn)
	app := startApp(t, s, environ, store)

	// Twelve users subscribe to BASIC while the endpoint works.
	b := backend(s)
	customers := &customer.Client{B: b, Key: billingtest.TestKey}
	subs := &subscription.Client{B: b, Key: billingtest.TestKey}
	const n = 12
	type user struct {
		id, customer, sub string
		want              billing.Plan
	}
	var users []*user
	for i := range n {
		c, err := customers.New(&stripe.CustomerParams{Email: stripe.String(fmt.Sprintf("u%02d@example.com", i))})
		if err != nil {
			t.Fatal(err)
		}
		u := &user{id: fmt.Sprintf("u_%02d", i), customer: c.ID, want: billing.Basic}
		if err := store.PutUser(ctx, billing.User{ID: u.id, Plan: billing.Free, StripeCustomerID: c.ID}); err != nil {
			t.Fatal(err)
		}
		if i < n-1 { // the last one subscribes during the outage
			u.sub = subscribe(t, subs, c.ID, billingtest.PriceBasic)
		} else {
			u.want = billing.Free
		}
		users = append(users, u)
	}
	waitDeliveries(t, s)
	for _, u := range users {
		if got := planOf(t, store, u.id); got != u.want {
			t.Fatalf("before the outage: %s has %s, want %s (deliveries: %+v)", u.id, got, u.want, s.Deliveries())
		}
	}
	app.changes() // forget the changes so far

	// The outage: the endpoint is disabled (or the app fails) while plans
	// change.
	if repair == "replay-failed-only" {
		app.down.Store(true)
	} else {
		updateEndpoint(t, s, &stripe.WebhookEndpointParams{Disabled: stripe.Bool(true)})
	}
	changed := map[string]billing.Plan{}
	for i, u := range users {
		switch {
		case i == n-1:
			u.sub = subscribe(t, subs, u.customer, billingtest.PricePro)
			u.want = billing.Pro
		case i%3 == 0:
			cur, err := subs.Get(u.sub, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := &stripe.SubscriptionParams{Items: []*stripe.SubscriptionItemsParams{{ID: stripe.String(cur.Items.Data[0].ID), Price: stripe.String(billingtest.PricePro)}}}
			if _, err := subs.Update(u.sub, p); err != nil {
				t.Fatal(err)
			}
			u.want = billing.Pro
		case i%3 == 1:
			if _, err := subs.Cancel(u.sub, nil); err != nil {
				t.Fatal(err)
			}
			u.want = billing.Free
		default:
			continue // unchanged
		}
		changed[u.id] = u.want
	}
	waitDeliveries(t, s) // delivered nowhere, or given up after the retries
	app.down.Store(false)
	out := mustRun(t, environ, "webhook", "setup", "-url", app.url)
	if !updatedLine.MatchString(out) {
		t.Fatalf("webhook setup after the outage printed %q, want the updated line (enabled again)", out)
	}
	stale := 0
	for _, u := range users {
		if planOf(t, store, u.id) != u.want {
			stale++
		}
	}
	if stale != len(changed) {
		t.Fatalf("after the outage %d users have a stale plan, want %d (every change made during it)", stale, len(changed))
	}

	// The repair.
	args := []string{repair, "-db", dsn, "-price-plans", standardPlans, "-json"}
	switch repair {
	case "replay":
		args = append(args, "-since", "1h")
	case "replay-failed-only":
		args = []string{"replay", "-db", dsn, "-price-plans", standardPlans, "-json", "-since", "1h", "-failed-only"}
	default:
		args = append(args, "-cursor", t.TempDir()+"/cursor")
		// A read in the second of an event is a Tie, dropped by design
		// (see billing.SubscriptionChange); a reconcile runs after the
		// outage, so let its second end.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	}
	out = mustRun(t, environ, args...)
	drift := driftOf(t, out)
	if repair == "replay-failed-only" {
		var rep ops.ReplayReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Duplicate != 0 || rep.Applied < len(changed) {
			t.Errorf("replay -failed-only: %s (%v), want only the failed events: none a duplicate", out, err)
		}
	}
	for _, u := range users {
		if got := planOf(t, store, u.id); got != u.want {
			t.Errorf("after %s: %s has %s, want %s", repair, u.id, got, u.want)
		}
	}
	if len(drift) != len(changed) {
		t.Errorf("%s reported %d plan changes, want %d: %v", repair, len(drift), len(changed), drift)
	}
	for _, d := range drift {
		if want, ok := changed[d.UserID]; !ok || d.To != want {
			t.Errorf("drift %+v, want only the changed users, each to its new plan (%v)", d, changed)
		}
		delete(changed, d.UserID) // a second line for a user fails the check above
	}
	app.checkChanges(t, drift)

	// A second run finds nothing to change.
	if again := driftOf(t, mustRun(t, environ, args...)); len(again) != 0 {
		t.Errorf("a second %s changed %v", repair, again)
	}
	app.checkChanges(t, nil)
}

// app is the app under test: its webhook endpoint (the real handler on
// the SQL store, with the secret webhook setup printed) and, when the store
// keeps an outbox, a Notifier that delivers its plan changes to a hook.
type app struct {
	url      string
	down     atomic.Bool // the endpoint answers 500
	store    *sqlstore.Store
	notifier *billing.Notifier // nil: the store keeps no outbox
	mu       sync.Mutex
	got      []billing.PlanChange
}

var secretLine = regexp.MustCompile(`(?m)^signing secret (whsec_\S+) `)

// startApp serves the app's webhook endpoint on store and registers it
// with webhook setup.
func startApp(t *testing.T, s *billingtest.Stripe, environ map[string]string, store *sqlstore.Store) *app {
	t.Helper()
	a := &app{store: store}
	if ob, ok := any(store).(billing.Outbox); ok {
		n, err := billing.NewNotifier(billing.NotifierConfig{Outbox: ob, Hook: billing.PlanChangeHookFunc(func(_ context.Context, c billing.PlanChange) error {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.got = append(a.got, c)
			return nil
		})})
		if err != nil {
			t.Fatal(err)
		}
		a.notifier = n
	}
	var h atomic.Pointer[billing.WebhookHandler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hh := h.Load(); hh != nil && r.URL.Path == billingtest.WebhookPath && !a.down.Load() {
			hh.ServeHTTP(w, r)
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL + billingtest.WebhookPath
	m := secretLine.FindStringSubmatch(mustRun(t, environ, "webhook", "setup", "-url", a.url))
	if m == nil {
		t.Fatal("webhook setup printed no signing secret")
	}
	hh, err := billing.NewWebhookHandler(billing.WebhookConfig{
		Secrets: []string{m[1]}, Store: store, Rules: billing.PlanRules{Prices: billingtest.Prices()},
		Subscriptions: &subscription.Client{B: backend(s), Key: billingtest.TestKey}, Notifier: a.notifier,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Store(hh)
	return a
}

// changes delivers what the store's outbox holds and returns the changes
// the hook received since the last call.
func (a *app) changes() []billing.PlanChange {
	if a.notifier != nil {
		_, _ = a.notifier.Deliver(context.Background())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	got := a.got
	a.got = nil
	return got
}

// checkChanges checks that the hook received exactly one plan change per
// drift line, and none for the other users.
func (a *app) checkChanges(t *testing.T, drift []ops.PlanDrift) {
	t.Helper()
	if a.notifier == nil {
		t.Fatal("the store keeps no outbox (billing.Outbox): the plan changes cannot be counted")
	}
	byUser := map[string]int{}
	for _, c := range a.changes() {
		if c.Before.Plan != c.After.Plan {
			byUser[c.UserID]++
		}
	}
	for _, d := range drift {
		if byUser[d.UserID] != 1 {
			t.Errorf("user %s: %d plan changes delivered, want 1", d.UserID, byUser[d.UserID])
		}
		delete(byUser, d.UserID)
	}
	for u, k := range byUser {
		t.Errorf("user %s: %d plan changes delivered, want none", u, k)
	}
}

func subscribe(t *testing.T, subs *subscription.Client, cus, price string) string {
	t.Helper()
	sub, err := subs.New(&stripe.SubscriptionParams{Customer: stripe.String(cus), Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price)}}})
	if err != nil {
		t.Fatal(err)
	}
	return sub.ID
}

func waitDeliveries(t *testing.T, s *billingtest.Stripe) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitDeliveries(ctx); err != nil {
		t.Fatal(err)
	}
}

func planOf(t *testing.T, store *sqlstore.Store, userID string) billing.Plan {
	t.Helper()
	u, ok, err := store.User(context.Background(), userID)
	if err != nil || !ok {
		t.Fatalf("user %s: %v, %v", userID, ok, err)
	}
	return u.Plan
}

// driftOf returns the drift of a reconcile or replay -json report.
func driftOf(t *testing.T, out string) []ops.PlanDrift {
	t.Helper()
	var rep struct {
		Drift []ops.PlanDrift `json:"drift"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Drift == nil {
		t.Fatalf("not a report with a drift list: %v\n%s", err, out)
	}
	return rep.Drift
}

// databases are the SQL stores the store-backed tests run on: a SQLite
// file, and a PostgreSQL database of internal/testenv (skipped, or failed
// under CI=true, without PostgreSQL).
var databases = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "billing.db") }},
	{"postgres", func(t testing.TB) string { return testenv.Postgres(t) }},
}

// openTestStore opens dsn as the command does, closed when t ends.
func openTestStore(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	st, closeStore, err := openStore(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeStore)
	return st
}
