package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/history"
)

// PropertyConfig configures [RunSyncProperty]. The zero value is the
// default run.
type PropertyConfig struct {
	// Histories is the number of subscription histories, one user and
	// customer each. Default 1000.
	Histories int
	// Workers is the number of concurrent deliverers. Default 8.
	Workers int
	// Duplicates is the share of events delivered a second time. Default
	// 0.2; negative for none.
	Duplicates float64
	// SameSecond is the share of events created in the same second as the
	// previous event of their history (ties the handler resolves by reading
	// the subscription from the property's fake Stripe). Default 0.15;
	// negative for none.
	SameSecond float64
	// Faults is the share of store writes and Stripe reads that fail
	// before doing anything (the handler answers 500 and the delivery is
	// retried later, as Stripe does). Default 0.05; negative for none.
	Faults float64
	// Reads is the share of histories that also get a read from Stripe in
	// their middle, applied as [billing.ReturnSync] applies it (no event
	// id, Created = the read's time, Seq = 0) at a random place among the
	// deliveries. Default 0.3; negative for none.
	Reads float64
	// Seed makes the histories and orders reproducible. Default: a seed
	// from the clock, logged so that a failure can be replayed.
	Seed uint64
	// Replicas, if 2 or more, spreads the store calls round-robin over
	// that many stores from [Harness.Replicas] sharing one database, as a
	// load balancer spreads webhook deliveries over an app's replicas; the
	// users are read back through another of them. It needs
	// Harness.Replicas. Default 0: one store from Harness.New.
	Replicas int
}

// PropertyStats are the figures of one [RunSyncProperty] run.
type PropertyStats struct {
	// Histories and Events generated, the latter without duplicates or
	// checkout events.
	Histories, Events int
	// Deliveries made, including duplicates and retries.
	Deliveries int
	// Duplicates delivered on purpose.
	Duplicates int
	// Retries: deliveries answered 500 because of an injected fault and
	// delivered again later.
	Retries int
	// StripeReads: subscriptions read from the fake Stripe (ties).
	StripeReads int
	// Reads applied as a return sync does, and how many of them the store
	// applied (the others were older than the stored state).
	Reads, ReadsApplied int
	// Outcomes counts the 200 replies by outcome.
	Outcomes map[string]int
	// Elapsed is the time of the deliveries.
	Elapsed time.Duration
}

// Exercised returns an error naming everything the run did not exercise:
// duplicates (at least one delivery in ten), duplicate, stale and linked
// outcomes, tie reads from Stripe, retries after injected faults, and
// return-sync reads both applied and stale; nil when it exercised all. A
// run with the defaults of [PropertyConfig] exercises all of them, so a
// caller fails its test on an error: a property that silently stopped
// exercising its cases would pass without checking them.
func (s PropertyStats) Exercised() error {
	var errs []error
	if s.Duplicates < s.Events/10 {
		errs = append(errs, fmt.Errorf("only %d duplicates for %d events", s.Duplicates, s.Events))
	}
	if s.Outcomes["duplicate"] == 0 || s.Outcomes["stale"] == 0 || s.Outcomes["linked"] == 0 {
		errs = append(errs, fmt.Errorf("outcomes %v lack duplicates, stale events or links", s.Outcomes))
	}
	if s.StripeReads == 0 || s.Retries == 0 {
		errs = append(errs, fmt.Errorf("no tie reads (%d) or no retries (%d)", s.StripeReads, s.Retries))
	}
	if s.ReadsApplied == 0 || s.ReadsApplied == s.Reads {
		errs = append(errs, fmt.Errorf("return-sync reads: %d of %d applied; want some applied and some stale", s.ReadsApplied, s.Reads))
	}
	if len(errs) > 0 {
		return fmt.Errorf("storetest: the property run exercised too little: %w", errors.Join(errs...))
	}
	return nil
}

// RunSyncProperty checks the webhook sync against the stores of h as a
// property: it generates random subscription histories (internal/history:
// creation, incomplete payments, upgrades, downgrades, past_due and
// recovery, unpaid, pause and resume, cancelation, a resubscription or a
// second subscription at once), some events in the same second as the
// previous one, some users linked to their customer only by a
// checkout.session.completed event, and some reads from Stripe in the
// middle of a history applied as the return sync applies them. Every event
// is signed and delivered through a real [billing.WebhookHandler] (with
// [billingtest.SubscriptionGetter] holding Stripe's final states for tie
// reads) in a random global order, with duplicates and transient faults,
// by concurrent workers, to one store from h.New (or, with cfg.Replicas,
// several from h.Replicas). At the end every user must be what its
// history's [history.History.Want] says: the derivation that
// [billing.SyncStore] states (highest plan among the final states, the
// greatest subscription id among that plan's). It fails t, naming the
// history and the order of its deliveries, otherwise, and returns the run's
// figures.
//
// A store author runs it with the contract's harness:
//
//	storetest.RunSyncProperty(t, harness, storetest.PropertyConfig{})
func RunSyncProperty(t *testing.T, h Harness, cfg PropertyConfig) PropertyStats {
	t.Helper()
	if h.New == nil {
		t.Fatal("storetest: RunSyncProperty: Harness.New is required")
	}
	if cfg.Replicas >= 2 && h.Replicas == nil {
		t.Fatal("storetest: RunSyncProperty: PropertyConfig.Replicas needs Harness.Replicas (or set Replicas to 0)")
	}
	if cfg.Histories <= 0 {
		cfg.Histories = 1000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	def := func(v *float64, d float64) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&cfg.Duplicates, 0.2)
	def(&cfg.SameSecond, 0.15)
	def(&cfg.Faults, 0.05)
	def(&cfg.Reads, 0.3)
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	t.Logf("storetest: RunSyncProperty seed %d (set PropertyConfig.Seed to replay)", cfg.Seed)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))

	faults := &faultRNG{r: rand.New(rand.NewPCG(cfg.Seed, 0xfa17)), p: cfg.Faults}
	stripeFake := &billingtest.SubscriptionGetter{Fail: func(string) error {
		if faults.fail() {
			return &stripe.Error{Type: stripe.ErrorTypeAPI, HTTPStatusCode: 500, Msg: "injected"}
		}
		return nil
	}}
	hist := make([]*propertyHistory, cfg.Histories)
	users := make([]billing.User, cfg.Histories)
	stats := PropertyStats{Histories: cfg.Histories, Outcomes: make(map[string]int)}
	var queue []propDelivery
	for i := range hist {
		h := &propertyHistory{History: history.Generate(rng, i, history.Config{
			Prefix: "prop", Subs: 2, Steps: 7, SameSecond: cfg.SameSecond, Later: 0.25,
		}), readK: -1}
		hist[i] = h
		users[i] = h.User
		stats.Events += len(h.Events)
		for _, f := range h.Finals() {
			stripeFake.Put(f.Spec())
		}
		payloads := make([][]byte, 0, len(h.Events)+1)
		for _, ev := range h.Events {
			payloads = append(payloads, ev.Payload())
		}
		if h.Link == history.Later {
			payloads = append(payloads, h.Checkout())
		}
		if rng.Float64() < cfg.Reads {
			queue = append(queue, propDelivery{hist: i, event: -1, read: h.readAt(rng)})
			stats.Reads++
		}
		for j, p := range payloads {
			queue = append(queue, propDelivery{hist: i, event: j, payload: p})
			if rng.Float64() < cfg.Duplicates {
				queue = append(queue, propDelivery{hist: i, event: j, payload: p, dup: true})
				stats.Duplicates++
			}
		}
	}
	rng.Shuffle(len(queue), func(a, b int) { queue[a], queue[b] = queue[b], queue[a] })

	var store billing.SyncStore
	var reader billing.UserStore
	if cfg.Replicas >= 2 {
		rr := &roundRobin{stores: h.Replicas(t, cfg.Replicas, users)}
		store, reader = rr, rr.stores[1]
	} else {
		s := h.New(t, users)
		store, reader = s, s
	}
	faulty := faultyStore{SyncStore: store, f: faults}
	var omu sync.Mutex
	handler, err := billing.NewWebhookHandler(billing.WebhookConfig{
		Secrets:       []string{billingtest.WebhookSecret},
		Store:         faulty,
		Rules:         billing.PlanRules{Prices: billingtest.Prices()},
		Subscriptions: stripeFake,
		LinkCheckout:  true,
		Observer: billing.ObserverFunc(func(_ context.Context, o billing.Observation) {
			if o.Status == 200 {
				omu.Lock()
				stats.Outcomes[string(o.Outcome)]++
				omu.Unlock()
			}
		}),
	})
	if err != nil {
		t.Fatalf("storetest: RunSyncProperty: %v", err)
	}

	q := &deliveryQueue{items: queue, pending: len(queue), rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e))}
	q.cond = sync.NewCond(&q.mu)
	start := time.Now()
	var wg sync.WaitGroup
	var bad []string
	var bmu sync.Mutex
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, ok := q.pop()
				if !ok {
					return
				}
				if d.read != nil {
					// A return sync: applied once, lost if the store fails.
					out, err := faulty.ApplySubscription(context.Background(), *d.read, 0)
					o := string(out)
					if err != nil {
						o = "error"
					}
					hist[d.hist].record(d, o)
					q.applied(out == billing.Applied)
					continue
				}
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, billingtest.WebhookRequest(d.payload, billingtest.WebhookSecret, billingtest.RequestOptions{}))
				out := fmt.Sprint(w.Code)
				if w.Code == 200 {
					out = strings.TrimSpace(w.Body.String())
					if i := strings.Index(out, `"outcome":"`); i >= 0 {
						out = strings.TrimSuffix(out[i+len(`"outcome":"`):], `"}`)
					}
				}
				hist[d.hist].record(d, out)
				switch {
				case w.Code == 200:
					q.done()
				case w.Code >= 500:
					q.retry(d)
				default:
					bmu.Lock()
					bad = append(bad, fmt.Sprintf("history %d event %d: status %d %s", d.hist, d.event, w.Code, w.Body.String()))
					bmu.Unlock()
					q.done()
				}
			}
		}()
	}
	wg.Wait()
	stats.Elapsed = time.Since(start)
	stats.Deliveries, stats.Retries, stats.ReadsApplied = q.popped, q.retries, q.readsApplied
	stats.StripeReads = stripeFake.Calls()
	for _, b := range bad {
		t.Errorf("storetest: RunSyncProperty: delivery refused: %s", b)
	}

	failures := 0
	for i, h := range hist {
		want := h.Want()
		u, found, err := reader.User(context.Background(), want.ID)
		switch {
		case err != nil:
			t.Fatalf("storetest: RunSyncProperty: User(%q): %v", want.ID, err)
		case !found:
			t.Fatalf("storetest: RunSyncProperty: user %q vanished from the store", want.ID)
		}
		if u != want {
			failures++
			if failures <= 5 {
				t.Errorf("storetest: RunSyncProperty: history %d: user\n got %+v\nwant %+v (seed %d)\n%s", i, u, want, cfg.Seed, h.describe())
			}
		}
	}
	if failures > 5 {
		t.Errorf("storetest: RunSyncProperty: %d of %d histories ended in the wrong state", failures, len(hist))
	}
	t.Logf("storetest: RunSyncProperty: %d histories, %d events, %d deliveries (%d duplicates, %d retries after injected faults, %d return-sync reads of which %d applied), %d tie reads from Stripe, outcomes %v, %v",
		stats.Histories, stats.Events, stats.Deliveries, stats.Duplicates, stats.Retries, stats.Reads, stats.ReadsApplied, stats.StripeReads, stats.Outcomes, stats.Elapsed.Round(time.Millisecond))
	return stats
}

// propertyHistory is a generated history and the order its deliveries were
// answered in, for the failure report.
type propertyHistory struct {
	history.History
	readK int // the event a read follows, -1 for none

	mu  sync.Mutex
	log []string // deliveries in the order they were answered
}

func (h *propertyHistory) record(d propDelivery, outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tag := ""
	if d.dup {
		tag = " (dup)"
	}
	if d.read != nil {
		h.log = append(h.log, fmt.Sprintf("read-after-#%d→%s", h.readK, outcome))
		return
	}
	h.log = append(h.log, fmt.Sprintf("#%d%s→%s", d.event, tag, outcome))
}

func (h *propertyHistory) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  user %s customer %s link=%v\n", h.User.ID, h.Customer, h.Link)
	t0 := h.Events[0].Created
	for i, e := range h.Events {
		fmt.Fprintf(&b, "  #%d +%ds %s %s %s %s\n", i, int(e.Created.Sub(t0)/time.Second), e.Type, e.Sub.ID, e.Sub.Status, e.Sub.PriceID)
	}
	if h.Link == history.Later {
		fmt.Fprintf(&b, "  #%d checkout.session.completed\n", len(h.Events))
	}
	h.mu.Lock()
	fmt.Fprintf(&b, "  deliveries: %s", strings.Join(h.log, " "))
	h.mu.Unlock()
	return b.String()
}

// propDelivery is one delivery of the property: an event's payload, or a
// return-sync read.
type propDelivery struct {
	hist, event int // event -1: a read
	payload     []byte
	dup         bool
	read        *billing.SubscriptionChange
}

// readAt returns a read from Stripe made just after a random event k of h,
// in k's second: the state after event k (later events of that second come
// after the read), applied as ReturnSync applies it.
func (h *propertyHistory) readAt(r *rand.Rand) *billing.SubscriptionChange {
	k := r.IntN(len(h.Events))
	ev := h.Events[k]
	h.readK = k
	return &billing.SubscriptionChange{
		Subscription: ev.Sub,
		Created:      ev.Created.Add(time.Duration(r.Int64N(int64(time.Second)))),
		Seq:          0,
	}
}

// deliveryQueue hands deliveries to the workers; a retried delivery goes
// back at a random later place.
type deliveryQueue struct {
	mu           sync.Mutex
	items        []propDelivery
	pending      int // deliveries not yet answered 2xx/4xx
	popped       int
	retries      int
	readsApplied int
	rng          *rand.Rand
	cond         *sync.Cond
}

func (q *deliveryQueue) pop() (propDelivery, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 {
		if q.pending == 0 {
			return propDelivery{}, false
		}
		q.cond.Wait()
	}
	d := q.items[0]
	q.items = q.items[1:]
	q.popped++
	return d, true
}

// applied records a read's result and marks it done.
func (q *deliveryQueue) applied(ok bool) {
	q.mu.Lock()
	if ok {
		q.readsApplied++
	}
	q.mu.Unlock()
	q.done()
}

func (q *deliveryQueue) done() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending--
	if q.pending == 0 {
		q.cond.Broadcast()
	}
}

func (q *deliveryQueue) retry(d propDelivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.retries++
	at := q.rng.IntN(len(q.items) + 1)
	q.items = append(q.items, propDelivery{})
	copy(q.items[at+1:], q.items[at:])
	q.items[at] = d
	q.cond.Signal()
}

// faultRNG decides, safely for concurrent use, which calls fail.
type faultRNG struct {
	mu sync.Mutex
	r  *rand.Rand
	p  float64
}

var errInjected = errors.New("storetest: injected transient fault")

func (f *faultRNG) fail() bool {
	if f.p == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.r.Float64() < f.p
}

// faultyStore fails some writes before they reach the store.
type faultyStore struct {
	billing.SyncStore
	f *faultRNG
}

func (s faultyStore) ApplySubscription(ctx context.Context, c billing.SubscriptionChange, retain time.Duration) (billing.Outcome, error) {
	if s.f.fail() {
		return "", errInjected
	}
	return s.SyncStore.ApplySubscription(ctx, c, retain)
}

func (s faultyStore) LinkCustomer(ctx context.Context, userID, customerID string) (bool, error) {
	if s.f.fail() {
		return false, errInjected
	}
	return s.SyncStore.LinkCustomer(ctx, userID, customerID)
}

// roundRobin sends each call to the next of several stores, as a load
// balancer spreads webhook deliveries over an app's replicas.
type roundRobin struct {
	stores []Store
	n      atomic.Uint64
}

func (r *roundRobin) next() Store { return r.stores[r.n.Add(1)%uint64(len(r.stores))] }

func (r *roundRobin) UserByCustomer(ctx context.Context, customerID string) (billing.User, bool, error) {
	return r.next().UserByCustomer(ctx, customerID)
}

func (r *roundRobin) ApplySubscription(ctx context.Context, c billing.SubscriptionChange, retain time.Duration) (billing.Outcome, error) {
	return r.next().ApplySubscription(ctx, c, retain)
}

func (r *roundRobin) LinkCustomer(ctx context.Context, userID, customerID string) (bool, error) {
	return r.next().LinkCustomer(ctx, userID, customerID)
}
