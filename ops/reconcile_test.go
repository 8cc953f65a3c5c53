package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/event"
	"github.com/stripe/stripe-go/v76/form"
	"github.com/stripe/stripe-go/v76/subscription"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/testenv"
	"github.com/contafy/billing/ops"
)

// pagedSubscriptions is an in-memory SubscriptionLister paging like
// Stripe's list (limit, starting_after, has_more) that answers 429 for the
// pages listed in limited (by page number, once each).
type pagedSubscriptions struct {
	mu      sync.Mutex
	subs    []*stripe.Subscription
	limited map[int]bool
	calls   int
	params  []*stripe.SubscriptionListParams
}

func (l *pagedSubscriptions) List(p *stripe.SubscriptionListParams) *subscription.Iter {
	l.mu.Lock()
	l.calls++
	call := l.calls
	l.params = append(l.params, p)
	l.mu.Unlock()
	return &subscription.Iter{Iter: stripe.GetIter(p, func(*stripe.Params, *form.Values) ([]interface{}, stripe.ListContainer, error) {
		list := &stripe.SubscriptionList{}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.limited[call] {
			return nil, list, &stripe.Error{HTTPStatusCode: 429, Code: stripe.ErrorCodeRateLimit, RequestID: "req_429"}
		}
		start := 0
		if p.StartingAfter != nil {
			start = -1
			for i, s := range l.subs {
				if s.ID == *p.StartingAfter {
					start = i + 1
				}
			}
			if start < 0 {
				return nil, list, &stripe.Error{HTTPStatusCode: 400, Code: stripe.ErrorCodeResourceMissing}
			}
		}
		end := min(start+int(*p.Limit), len(l.subs))
		var out []interface{}
		for _, s := range l.subs[start:end] {
			out = append(out, s)
			list.Data = append(list.Data, s)
		}
		list.HasMore = end < len(l.subs)
		return out, list, nil
	})}
}

// periodEnd is the period end of the subscriptions the tests read.
var periodEnd = time.Date(2027, 1, 12, 0, 0, 0, 0, time.UTC)

func stripeSub(id, cus, status, price string) *stripe.Subscription {
	return &stripe.Subscription{ID: id, Customer: &stripe.Customer{ID: cus}, Status: stripe.SubscriptionStatus(status),
		CurrentPeriodEnd: periodEnd.Unix(),
		Items:            &stripe.SubscriptionItemList{Data: []*stripe.SubscriptionItem{{ID: "si_" + id, Quantity: 1, Price: &stripe.Price{ID: price}}}}}
}

// TestReconcile: every subscription of 250 (3 pages), one 429 on the way
// that backs off and continues, drift counted, a stale read never
// overwrites a newer stored state, the hook fired once per change, and a
// killed run resumed from its cursor ends with every plan right.
func TestReconcile(t *testing.T) {
	const n = 250
	var users []billing.User
	lister := &pagedSubscriptions{limited: map[int]bool{2: true}}
	for i := range n {
		cus := fmt.Sprintf("cus_%03d", i)
		users = append(users, billing.User{ID: fmt.Sprintf("u_%03d", i), Plan: billing.Free, StripeCustomerID: cus})
		price := billingtest.PricePro
		if i%2 == 0 {
			price = billingtest.PriceBasic
		}
		status := "active"
		if i%5 == 0 {
			status = "canceled"
		}
		lister.subs = append(lister.subs, stripeSub(fmt.Sprintf("sub_%03d", i), cus, status, price))
	}
	users = append(users, billing.User{ID: "u_newer", Plan: billing.Free, StripeCustomerID: "cus_newer"})
	lister.subs = append(lister.subs, stripeSub("sub_newer", "cus_newer", "active", billingtest.PricePro))
	store := billing.NewMemoryStore(users...)
	// A newer state stored for sub_newer (an event after the reconcile's read).
	if out, err := store.ApplySubscription(context.Background(), billing.SubscriptionChange{EventID: "evt_newer", Created: time.Now().Add(time.Hour), Seq: 3,
		Subscription: billing.Subscription{ID: "sub_newer", CustomerID: "cus_newer", Status: "canceled", Plan: billing.Free}}, time.Hour); err != nil || out != billing.Applied {
		t.Fatalf("ApplySubscription = %v, %v", out, err)
	}
	var hooked []billing.PlanChange
	notifier, _ := billing.NewNotifier(billing.NotifierConfig{Outbox: store, Hook: billing.PlanChangeHookFunc(func(_ context.Context, c billing.PlanChange) error {
		hooked = append(hooked, c)
		return nil
	})})
	_, _ = notifier.Deliver(context.Background()) // the setup's own change

	// A first run, killed (ctx canceled) after its first page.
	ctx, cancel := context.WithCancel(context.Background())
	var pages []ops.ReconcileReport
	cfg := ops.ReconcileConfig{Store: store, Subscriptions: lister, Rules: billing.PlanRules{Prices: billingtest.Prices()},
		Notifier: notifier, RatePerSecond: 1000, MaxBackoff: 5 * time.Millisecond,
		OnPage: func(r ops.ReconcileReport) { pages = append(pages, r); cancel() }}
	rep, err := ops.Reconcile(ctx, cfg)
	if !errors.Is(err, context.Canceled) || rep.Done || rep.Read != 100 || rep.Cursor != "sub_099" {
		t.Fatalf("killed run: %+v, %v; want 100 read, cursor sub_099, canceled", rep, err)
	}
	// Resumed from the cursor: the rest, with a 429 that backs off.
	cfg.Cursor, cfg.OnPage = rep.Cursor, func(r ops.ReconcileReport) { pages = append(pages, r) }
	rest, err := ops.Reconcile(context.Background(), cfg)
	if err != nil || !rest.Done {
		t.Fatalf("resumed run: %+v, %v", rest, err)
	}
	if rest.Read != n+1-100 || rest.RateLimited != 1 || rest.Pages != 2 || rest.Stale != 1 {
		t.Fatalf("resumed run %+v: want %d read, 1 rate limited, 2 pages, 1 stale", rest, n+1-100)
	}
	if got := lister.calls; got != 1+3 {
		t.Fatalf("%d list calls for %d subscriptions, want 4 (3 pages and one retried 429)", got, n+1)
	}
	for _, p := range lister.params {
		if p.Status == nil || *p.Status != "all" || *p.Limit != 100 {
			t.Fatalf("list params %+v: want status=all, limit=100", p)
		}
	}
	drift := len(rep.Drift) + len(rest.Drift)
	want := 0
	for i, u := range users[:n] {
		got, _, _ := store.User(context.Background(), u.ID)
		wantPlan := billing.Pro
		switch {
		case i%5 == 0:
			wantPlan = billing.Free
		case i%2 == 0:
			wantPlan = billing.Basic
		}
		if wantPlan != billing.Free {
			want++
		}
		if got.Plan != wantPlan {
			t.Fatalf("%s plan %s, want %s", u.ID, got.Plan, wantPlan)
		}
	}
	if got, _, _ := store.User(context.Background(), "u_newer"); got.Plan != billing.Free {
		t.Fatalf("the reconcile's read overwrote a newer stored state: %s", got.Plan)
	}
	if drift != want {
		t.Fatalf("drift %d users, want %d", drift, want)
	}
	// Every user's view changed (its subscription's status appeared; for
	// want of them the plan too), plus the setup's own change.
	if len(hooked) != n+1 {
		t.Fatalf("hook fired %d times, want once per change (%d)", len(hooked), n+1)
	}
	for _, c := range hooked[1:] {
		if c.Cause.Kind != billing.CauseReconcile {
			t.Fatalf("change %+v: cause %q, want reconcile", c, c.Cause.Kind)
		}
	}
	// A second reconcile finds no drift and fires nothing.
	again, err := ops.Reconcile(context.Background(), ops.ReconcileConfig{Store: store, Subscriptions: &pagedSubscriptions{subs: lister.subs}, Rules: cfg.Rules, Notifier: notifier, RatePerSecond: 1000})
	if err != nil || len(again.Drift) != 0 || len(hooked) != n+1 {
		t.Fatalf("second run: %+v, %v, hook calls %d", again, err, len(hooked))
	}
}

func TestReconcileConfig(t *testing.T) {
	store := billing.NewMemoryStore()
	for _, tc := range []struct {
		cfg  ops.ReconcileConfig
		want string
	}{
		{ops.ReconcileConfig{Subscriptions: &pagedSubscriptions{}}, "ReconcileConfig.Store is required"},
		{ops.ReconcileConfig{Store: store}, "ReconcileConfig.Subscriptions is required"},
		{ops.ReconcileConfig{Store: store, Subscriptions: &pagedSubscriptions{}}, "ReconcileConfig.Rules.Prices"},
	} {
		if _, err := ops.Reconcile(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

// pagedEvents is an in-memory EventLister, newest first like Stripe's.
type pagedEvents struct {
	events []*stripe.Event // newest first
	params []*stripe.EventListParams
}

func (l *pagedEvents) List(p *stripe.EventListParams) *event.Iter {
	l.params = append(l.params, p)
	return &event.Iter{Iter: stripe.GetIter(p, func(*stripe.Params, *form.Values) ([]interface{}, stripe.ListContainer, error) {
		list := &stripe.EventList{}
		start := 0
		if p.StartingAfter != nil {
			for i, e := range l.events {
				if e.ID == *p.StartingAfter {
					start = i + 1
				}
			}
		}
		end := min(start+int(*p.Limit), len(l.events))
		var out []interface{}
		for _, e := range l.events[start:end] {
			out = append(out, e)
			list.Data = append(list.Data, e)
		}
		list.HasMore = end < len(l.events)
		return out, list, nil
	})}
}

// TestReplay: missed events applied oldest first through the handler,
// the ones already applied are duplicates, the hook fires once per change.
func TestReplay(t *testing.T) {
	e := newReplayEnv(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	var raws [][]byte
	for i, price := range []string{"price_basic", "price_pro", "price_basic", "price_pro"} {
		typ := "customer.subscription.updated"
		if i == 0 {
			typ = "customer.subscription.created"
		}
		sub := billingtest.SubscriptionSpec{ID: "sub_1", Customer: "cus_1", Status: "active", PriceID: price, Created: t0}
		raws = append(raws, billingtest.SubscriptionEvent(typ, sub, t0.Add(time.Duration(i)*time.Minute)))
	}
	// The endpoint was down: only the first event arrived.
	e.send(raws[0], billing.Applied)
	lister := &pagedEvents{}
	for i := len(raws) - 1; i >= 0; i-- { // newest first
		var ev stripe.Event
		if err := json.Unmarshal(raws[i], &ev); err != nil {
			t.Fatal(err)
		}
		lister.events = append(lister.events, &ev)
	}
	rep, err := ops.Replay(context.Background(), ops.ReplayConfig{Events: lister, Store: e.store, Handler: e.handler, Since: t0.Add(-time.Minute), FailedOnly: true, RatePerSecond: 1000})
	if err != nil || rep.Total != 4 || rep.Duplicate != 1 || rep.Applied != 3 || rep.Errors != 0 {
		t.Fatalf("replay %+v, %v: want 4 events, 1 duplicate, 3 applied", rep, err)
	}
	if p := e.plan(); p != billing.Pro {
		t.Fatalf("plan after the replay %s, want PRO (the newest event's)", p)
	}
	if len(e.changes) != 4 || len(rep.Drift) != 3 {
		t.Fatalf("hook calls %d (want 4: FREE→BASIC before, then BASIC→PRO→BASIC→PRO), drift %d (want 3)", len(e.changes), len(rep.Drift))
	}
	p := lister.params[0]
	if p.DeliverySuccess == nil || *p.DeliverySuccess || p.CreatedRange == nil || p.CreatedRange.GreaterThanOrEqual != t0.Add(-time.Minute).Unix() || len(p.Types) != len(ops.HandledEvents) {
		t.Fatalf("list params %+v", p)
	}
	// Again: every event is a duplicate now.
	rep, err = ops.Replay(context.Background(), ops.ReplayConfig{Events: lister, Store: e.store, Handler: e.handler, Since: t0, RatePerSecond: 1000})
	if err != nil || rep.Duplicate != 4 || len(e.changes) != 4 {
		t.Fatalf("second replay %+v, %v, hook calls %d", rep, err, len(e.changes))
	}
}

// replayEnv is a webhook handler on a MemoryStore holding u1 (FREE,
// cus_1), with a hook that records the plan changes.
type replayEnv struct {
	t       *testing.T
	store   *billing.MemoryStore
	handler *billing.WebhookHandler
	changes []billing.PlanChange
}

func newReplayEnv(t *testing.T) *replayEnv {
	t.Helper()
	e := &replayEnv{t: t, store: billing.NewMemoryStore(billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"})}
	n, err := billing.NewNotifier(billing.NotifierConfig{Outbox: e.store, Hook: billing.PlanChangeHookFunc(func(_ context.Context, c billing.PlanChange) error {
		e.changes = append(e.changes, c)
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	e.handler, err = billing.NewWebhookHandler(billing.WebhookConfig{
		Secrets: []string{billingtest.WebhookSecret}, Store: e.store, Notifier: n,
		Rules: billing.PlanRules{Prices: billingtest.Prices()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// send delivers payload and checks the reply's outcome.
func (e *replayEnv) send(payload []byte, want billing.Outcome) {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, billingtest.WebhookRequest(payload, billingtest.WebhookSecret, billingtest.RequestOptions{}))
	var rep struct{ Outcome billing.Outcome }
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || w.Code != 200 || rep.Outcome != want {
		e.t.Fatalf("reply %d %s, want 200 outcome %q", w.Code, w.Body, want)
	}
}

// plan is u1's plan.
func (e *replayEnv) plan() billing.Plan {
	e.t.Helper()
	u, found, err := e.store.User(context.Background(), "u1")
	if err != nil || !found {
		e.t.Fatalf("User: %v %v", found, err)
	}
	return u.Plan
}

// TestStripeMockAcceptsReconcileAndReplay: the list calls of a reconcile
// and of a replay have shapes Stripe's own mock accepts.
func TestStripeMockAcceptsReconcileAndReplay(t *testing.T) {
	b := billing.NewBackend(testenv.StripeMockBackendConfig(t))
	store := billing.NewMemoryStore()
	rules := billing.PlanRules{Prices: billing.PriceTable{Prices: billingtest.Prices().Prices, ProductMetadataKey: "plan"}}
	rep, err := ops.Reconcile(context.Background(), ops.ReconcileConfig{Store: store, Rules: rules,
		Subscriptions: &subscription.Client{B: b, Key: "sk_test_stripemock"}})
	if err != nil || !rep.Done || rep.Read == 0 {
		t.Fatalf("Reconcile against stripe-mock: %+v, %v", rep, err)
	}
	h, err := billing.NewWebhookHandler(billing.WebhookConfig{Secrets: []string{billingtest.WebhookSecret}, Store: store, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ops.Replay(context.Background(), ops.ReplayConfig{Events: &event.Client{B: b, Key: "sk_test_stripemock"},
		Store: store, Handler: h, Since: time.Now().Add(-72 * time.Hour), FailedOnly: true})
	if err != nil || r.Pages == 0 {
		t.Fatalf("Replay against stripe-mock: %+v, %v", r, err)
	}
}
