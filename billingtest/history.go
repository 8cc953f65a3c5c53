package billingtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/contafy/billing"
)

// PropertyConfig configures [RunSyncProperty]. NewStore is required.
type PropertyConfig struct {
	// NewStore returns a fresh, empty store under test: its SyncStore and
	// UserStore sides (usually the same value) and a function that adds a
	// user to it (with or without a Stripe customer id; it should fail t on
	// error). Required.
	NewStore func(t testing.TB) (billing.SyncStore, billing.UserStore, func(billing.User))
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

// RunSyncProperty checks the webhook sync against a store as a property:
// it generates random subscription histories (creation, incomplete
// payments, upgrades, downgrades, past_due and recovery, unpaid, pause and
// resume, cancelation, a new subscription after a cancelation), some
// events in the same second as the previous one, some users linked to
// their customer only by a checkout.session.completed event, and some
// reads from Stripe in the middle of a history applied as the return sync
// applies them. Every event
// is signed and delivered through a real [billing.WebhookHandler] (with a
// fake Stripe for tie reads) in a random global order, with duplicates and
// transient faults, by concurrent workers. At the end every user's plan
// must be the plan of their history's last event (the highest plan among
// their subscriptions' final states). It fails t, naming the history and
// the order of its deliveries, otherwise, and returns the run's figures.
//
// A SQL store runs the same property as the memory store:
//
//	billingtest.RunSyncProperty(t, billingtest.PropertyConfig{
//		NewStore: func(t testing.TB) (billing.SyncStore, billing.UserStore, func(billing.User)) {
//			s := newTestStore(t)
//			return s, s, func(u billing.User) { putUser(t, s, u) }
//		},
//	})
func RunSyncProperty(t testing.TB, cfg PropertyConfig) PropertyStats {
	t.Helper()
	if cfg.NewStore == nil {
		t.Fatal("billingtest: RunSyncProperty: PropertyConfig.NewStore is required")
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
	t.Logf("billingtest: RunSyncProperty seed %d (set PropertyConfig.Seed to replay)", cfg.Seed)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))

	store, users, seed := cfg.NewStore(t)
	stripeFake := &propertyStripe{subs: make(map[string]*stripe.Subscription)}
	hist := make([]*history, cfg.Histories)
	stats := PropertyStats{Histories: cfg.Histories, Outcomes: make(map[string]int)}
	var queue []delivery
	for i := range hist {
		h := genHistory(rng, i, cfg.SameSecond)
		hist[i] = h
		stats.Events += len(h.events)
		u := billing.User{ID: h.user, Plan: billing.Free}
		if h.linked {
			u.StripeCustomerID = h.customer
		}
		seed(u)
		for id, s := range h.final {
			stripeFake.subs[id] = s
		}
		payloads := make([][]byte, 0, len(h.events)+1)
		for _, ev := range h.events {
			payloads = append(payloads, ev.payload)
		}
		if !h.linked {
			payloads = append(payloads, CheckoutCompletedEvent(CheckoutSpec{ClientReferenceID: h.user, Customer: h.customer}, h.events[0].created))
		}
		if rng.Float64() < cfg.Reads {
			queue = append(queue, delivery{hist: i, event: -1, read: h.readAt(rng)})
			stats.Reads++
		}
		for j, p := range payloads {
			queue = append(queue, delivery{hist: i, event: j, payload: p})
			if rng.Float64() < cfg.Duplicates {
				queue = append(queue, delivery{hist: i, event: j, payload: p, dup: true})
				stats.Duplicates++
			}
		}
	}
	rng.Shuffle(len(queue), func(a, b int) { queue[a], queue[b] = queue[b], queue[a] })

	faults := &faultRNG{r: rand.New(rand.NewPCG(cfg.Seed, 0xfa17)), p: cfg.Faults}
	stripeFake.faults = faults
	faulty := faultyStore{SyncStore: store, f: faults}
	var omu sync.Mutex
	handler, err := billing.NewWebhookHandler(billing.WebhookConfig{
		Secrets:       []string{WebhookSecret},
		Store:         faulty,
		Rules:         billing.PlanRules{Prices: billing.PriceTable{Prices: map[string]billing.Plan{"price_basic": billing.Basic, "price_pro": billing.Pro}}},
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
		t.Fatalf("billingtest: RunSyncProperty: %v", err)
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
				handler.ServeHTTP(w, WebhookRequest(d.payload, WebhookSecret, RequestOptions{}))
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
	stats.StripeReads = stripeFake.reads()
	for _, b := range bad {
		t.Errorf("billingtest: RunSyncProperty: delivery refused: %s", b)
	}

	failures := 0
	for i, h := range hist {
		u, found, err := users.User(context.Background(), h.user)
		switch {
		case err != nil:
			t.Fatalf("billingtest: RunSyncProperty: User(%q): %v", h.user, err)
		case !found:
			t.Fatalf("billingtest: RunSyncProperty: user %q vanished from the store", h.user)
		}
		if u.Plan != h.want {
			failures++
			if failures <= 5 {
				t.Errorf("billingtest: RunSyncProperty: history %d: user %s has plan %s, want %s (seed %d)\n%s", i, h.user, u.Plan, h.want, cfg.Seed, h.describe())
			}
		}
	}
	if failures > 5 {
		t.Errorf("billingtest: RunSyncProperty: %d of %d histories ended in the wrong plan", failures, len(hist))
	}
	t.Logf("billingtest: RunSyncProperty: %d histories, %d events, %d deliveries (%d duplicates, %d retries after injected faults, %d return-sync reads of which %d applied), %d tie reads from Stripe, outcomes %v, %v",
		stats.Histories, stats.Events, stats.Deliveries, stats.Duplicates, stats.Retries, stats.Reads, stats.ReadsApplied, stats.StripeReads, stats.Outcomes, stats.Elapsed.Round(time.Millisecond))
	return stats
}

// history is one customer's generated events and Stripe's final state.
type history struct {
	user, customer string
	linked         bool
	events         []histEvent
	final          map[string]*stripe.Subscription
	want           billing.Plan
	readK          int // the event a read follows, -1 for none

	mu  sync.Mutex
	log []string // deliveries in the order they were answered
}

type histEvent struct {
	typ, sub, status, price string
	created                 time.Time
	payload                 []byte
}

func (h *history) record(d delivery, outcome string) {
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

func (h *history) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  user %s customer %s linked=%v\n", h.user, h.customer, h.linked)
	t0 := h.events[0].created
	for i, e := range h.events {
		fmt.Fprintf(&b, "  #%d +%ds %s %s %s %s\n", i, int(e.created.Sub(t0)/time.Second), e.typ, e.sub, e.status, e.price)
	}
	if !h.linked {
		fmt.Fprintf(&b, "  #%d checkout.session.completed\n", len(h.events))
	}
	h.mu.Lock()
	fmt.Fprintf(&b, "  deliveries: %s", strings.Join(h.log, " "))
	h.mu.Unlock()
	return b.String()
}

var propertyPlans = map[string]billing.Plan{"price_basic": billing.Basic, "price_pro": billing.Pro}

// genHistory generates history i: one subscription, or two when the first
// is canceled and the customer subscribes again.
func genHistory(r *rand.Rand, i int, sameSecond float64) *history {
	h := &history{
		user:     fmt.Sprintf("prop_u%d", i),
		customer: fmt.Sprintf("cus_prop%d", i),
		linked:   r.IntN(4) != 0,
		final:    make(map[string]*stripe.Subscription),
	}
	now := time.Unix(1_700_000_000+int64(r.IntN(1_000_000)), 0)
	advance := func() {
		if r.Float64() >= sameSecond {
			now = now.Add(time.Duration(1+r.IntN(3600)) * time.Second)
		}
	}
	pickPrice := func() string {
		if r.IntN(2) == 0 {
			return "price_basic"
		}
		return "price_pro"
	}
	nsubs := 1
	if r.IntN(4) == 0 {
		nsubs = 2
	}
	for k := range nsubs {
		id := fmt.Sprintf("sub_prop%d_%d", i, k)
		price := pickPrice()
		var status string
		emit := func(typ string) {
			h.events = append(h.events, histEvent{
				typ: typ, sub: id, status: status, price: price, created: now,
				payload: SubscriptionEvent(typ, SubscriptionSpec{ID: id, Customer: h.customer, Status: status, PriceID: price}, now),
			})
		}
		switch n := r.IntN(10); {
		case n < 3:
			status = "incomplete"
		case n < 8:
			status = "active"
		default:
			status = "trialing"
		}
		emit("customer.subscription.created")
		steps := 1 + r.IntN(7)
		if k < nsubs-1 {
			steps = 20 // until canceled below
		}
		for s := 0; s < steps && status != "canceled" && status != "incomplete_expired"; s++ {
			advance()
			typ := "customer.subscription.updated"
			n := r.IntN(10)
			switch status {
			case "incomplete":
				status = "active"
				if n < 2 {
					status = "incomplete_expired"
				}
			case "active", "trialing":
				switch {
				case n < 4:
					price, status = otherPrice(price), "active"
				case n < 6:
					status = "past_due"
				case n < 7:
					status, typ = "paused", "customer.subscription.paused"
				case n < 8 && status == "trialing":
					status = "active"
				default:
					status, typ = "canceled", "customer.subscription.deleted"
				}
			case "past_due":
				switch {
				case n < 5:
					status = "active"
				case n < 8:
					status = "unpaid"
				default:
					status, typ = "canceled", "customer.subscription.deleted"
				}
			case "unpaid":
				if n < 5 {
					status = "active"
				} else {
					status, typ = "canceled", "customer.subscription.deleted"
				}
			case "paused":
				if n < 7 {
					status, typ = "active", "customer.subscription.resumed"
				} else {
					status, typ = "canceled", "customer.subscription.deleted"
				}
			}
			emit(typ)
		}
		if k < nsubs-1 && status != "canceled" && status != "incomplete_expired" {
			advance()
			status = "canceled"
			emit("customer.subscription.deleted")
		}
		h.final[id] = &stripe.Subscription{
			ID: id, Customer: &stripe.Customer{ID: h.customer}, Status: stripe.SubscriptionStatus(status),
			Items: &stripe.SubscriptionItemList{Data: []*stripe.SubscriptionItem{{Price: &stripe.Price{ID: price, Product: &stripe.Product{ID: "prod_" + price}}}}},
		}
		advance()
	}
	// The last event's plan is the user's: every earlier subscription ended.
	last := h.events[len(h.events)-1]
	h.want = planOf(last.status, last.price)
	h.readK = -1
	return h
}

func otherPrice(p string) string {
	if p == "price_basic" {
		return "price_pro"
	}
	return "price_basic"
}

type delivery struct {
	hist, event int // event -1: a read
	payload     []byte
	dup         bool
	read        *billing.SubscriptionChange
}

// readAt returns a read from Stripe made just after a random event k of h,
// in k's second: the state after event k (later events of that second come
// after the read), applied as ReturnSync applies it.
func (h *history) readAt(r *rand.Rand) *billing.SubscriptionChange {
	k := r.IntN(len(h.events))
	ev := h.events[k]
	at := ev.created.Add(time.Duration(r.Int64N(int64(time.Second))))
	h.readK = k
	return &billing.SubscriptionChange{
		Subscription: billing.Subscription{ID: ev.sub, CustomerID: h.customer, Status: ev.status, Plan: planOf(ev.status, ev.price), PriceID: ev.price},
		Created:      at,
		Seq:          0,
	}
}

// planOf is the plan a state grants with the handler's defaults.
func planOf(status, price string) billing.Plan {
	if status == "active" || status == "trialing" || status == "past_due" {
		return propertyPlans[price]
	}
	return billing.Free
}

// deliveryQueue hands deliveries to the workers; a retried delivery goes
// back at a random later place.
type deliveryQueue struct {
	mu           sync.Mutex
	items        []delivery
	pending      int // deliveries not yet answered 2xx/4xx
	popped       int
	retries      int
	readsApplied int
	rng          *rand.Rand
	cond         *sync.Cond
}

func (q *deliveryQueue) pop() (delivery, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 {
		if q.pending == 0 {
			return delivery{}, false
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

func (q *deliveryQueue) retry(d delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.retries++
	at := q.rng.IntN(len(q.items) + 1)
	q.items = append(q.items, delivery{})
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

var errInjected = errors.New("billingtest: injected transient fault")

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

// propertyStripe answers subscription reads with Stripe's final state.
type propertyStripe struct {
	subs   map[string]*stripe.Subscription // read-only once deliveries start
	faults *faultRNG
	mu     sync.Mutex
	n      int
}

func (p *propertyStripe) Get(id string, _ *stripe.SubscriptionParams) (*stripe.Subscription, error) {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	if p.faults.fail() {
		return nil, &stripe.Error{Type: stripe.ErrorTypeAPI, HTTPStatusCode: 500, Msg: "injected"}
	}
	s, ok := p.subs[id]
	if !ok {
		return nil, &stripe.Error{Code: stripe.ErrorCodeResourceMissing, HTTPStatusCode: 404}
	}
	c := *s
	return &c, nil
}

func (p *propertyStripe) reads() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
