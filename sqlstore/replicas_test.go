package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/sqlstore"
)

// replica is one instance of an application: its own *sql.DB, store,
// webhook handler and portal service.
type replica struct {
	store   *sqlstore.Store
	webhook *billing.WebhookHandler
	portal  *billing.PortalService
}

// outcomeLog records the store outcomes of every replica by event id.
type outcomeLog struct {
	mu sync.Mutex
	m  map[string][]billing.Outcome
}

func (l *outcomeLog) add(evt string, o billing.Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[evt] = append(l.m[evt], o)
}

// countingStore logs the outcome of every ApplySubscription.
type countingStore struct {
	billing.SyncStore
	log *outcomeLog
}

func (c countingStore) ApplySubscription(ctx context.Context, ch billing.SubscriptionChange, retain time.Duration) (billing.Outcome, error) {
	out, err := c.SyncStore.ApplySubscription(ctx, ch, retain)
	if err == nil {
		c.log.add(ch.EventID, out)
	}
	return out, err
}

// replicaHistory is one customer's events, as Stripe sends them.
type replicaHistory struct {
	user, customer string
	linked         bool // the seeded user carries the customer id
	events         [][]byte
	want           billing.Plan
}

var replicaPrices = map[string]billing.Plan{"price_basic": billing.Basic, "price_pro": billing.Pro}

// genReplicaHistory makes history i: a subscription created (active,
// trialing or incomplete), then 1 to 7 changes (upgrade, downgrade,
// past_due, unpaid, paused, resumed, canceled), a quarter of them in the
// same second as the previous one (ties the handlers resolve by reading
// the subscription from the fake Stripe); after a cancelation, sometimes a
// second subscription. Stripe's final state of each subscription goes to
// the fake. A quarter of the users are linked only by a
// checkout.session.completed event.
func genReplicaHistory(r *rand.Rand, i int, fake *billingtest.Stripe) replicaHistory {
	h := replicaHistory{
		user:     fmt.Sprintf("rep_u%d", i),
		customer: fmt.Sprintf("cus_rep%d", i),
		linked:   r.IntN(4) != 0,
	}
	now := time.Unix(1_700_000_000+int64(r.IntN(1_000_000)), 0)
	var last struct{ status, price string }
	for k := 0; k < 2; k++ {
		id := fmt.Sprintf("sub_rep%d_%d", i, k)
		price := []string{"price_basic", "price_pro"}[r.IntN(2)]
		status := []string{"active", "active", "trialing", "incomplete"}[r.IntN(4)]
		emit := func(typ string) {
			ev := billingtest.SubscriptionEvent(typ, billingtest.SubscriptionSpec{ID: id, Customer: h.customer, Status: status, PriceID: price}, now)
			h.events = append(h.events, ev)
			last.status, last.price = status, price
		}
		emit("customer.subscription.created")
		for n := 1 + r.IntN(7); n > 0 && status != "canceled" && status != "incomplete_expired"; n-- {
			if r.IntN(4) != 0 {
				now = now.Add(time.Duration(1+r.IntN(3600)) * time.Second)
			}
			typ := "customer.subscription.updated"
			switch x := r.IntN(10); {
			case status == "incomplete":
				status = []string{"active", "incomplete_expired"}[min(x/8, 1)]
			case status == "paused":
				status, typ = "active", "customer.subscription.resumed"
			case x < 4:
				status, price = "active", map[string]string{"price_basic": "price_pro", "price_pro": "price_basic"}[price]
			case x < 5:
				status = "past_due"
			case x < 6:
				status = "unpaid"
			case x < 7:
				status, typ = "paused", "customer.subscription.paused"
			case x < 8:
				status = "active"
			default:
				status, typ = "canceled", "customer.subscription.deleted"
			}
			emit(typ)
		}
		fake.PutSubscription(billingtest.SubscriptionSpec{ID: id, Customer: h.customer, Status: status, PriceID: price})
		if (status != "canceled" && status != "incomplete_expired") || r.IntN(2) == 0 {
			break
		}
		now = now.Add(time.Duration(1+r.IntN(3600)) * time.Second)
	}
	h.want = billing.Free
	switch last.status {
	case "active", "trialing", "past_due":
		h.want = replicaPrices[last.price]
	}
	if !h.linked {
		h.events = append(h.events, billingtest.CheckoutCompletedEvent(billingtest.CheckoutSpec{ClientReferenceID: h.user, Customer: h.customer}, now))
	}
	return h
}

// TestReplicas runs several application replicas on one database: each
// with its own *sql.DB, store, webhook handler and portal service. The
// events of random subscription histories are shuffled, 20% duplicated, and
// delivered by 8 concurrent workers, each delivery to a random replica (a
// load balancer). Then every event id was applied at most once and
// processed (applied or stale) exactly once, and every replica's portal
// sees every user's right plan.
func TestReplicas(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			const (
				replicas  = 3
				histories = 300
				workers   = 8
			)
			ctx := context.Background()
			dsn := e.database(t)
			fake := billingtest.StartStripe(t)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			r := rand.New(rand.NewPCG(seed, 1))

			log := &outcomeLog{m: make(map[string][]billing.Outcome)}
			reps := make([]replica, replicas)
			var wg sync.WaitGroup
			for i := range reps {
				db := e.open(t, dsn)
				db.SetMaxOpenConns(workers)
				s, err := sqlstore.New(db, e.dialect)
				if err != nil {
					t.Fatal(err)
				}
				reps[i].store = s
				wg.Add(1)
				go func() { // the replicas start at once
					defer wg.Done()
					if err := s.Migrate(ctx); err != nil {
						t.Error(err)
					}
				}()
				reps[i].webhook, err = billing.NewWebhookHandler(billing.WebhookConfig{
					Secrets:       []string{billingtest.WebhookSecret},
					Store:         countingStore{SyncStore: s, log: log},
					Rules:         billing.PlanRules{Prices: billing.PriceTable{Prices: replicaPrices}},
					Subscriptions: fake.SubscriptionClient(),
					LinkCheckout:  true,
				})
				if err != nil {
					t.Fatal(err)
				}
				reps[i].portal = billingtest.NewPortalService(t, fake, s)
			}
			wg.Wait()

			hists := make([]replicaHistory, histories)
			type delivery struct {
				hist    int
				payload []byte
			}
			var queue []delivery
			events, dups := 0, 0
			for i := range hists {
				hists[i] = genReplicaHistory(r, i, fake)
				u := billing.User{ID: hists[i].user, Plan: billing.Free}
				if hists[i].linked {
					u.StripeCustomerID = hists[i].customer
				}
				if err := reps[i%replicas].store.PutUser(ctx, u); err != nil {
					t.Fatal(err)
				}
				for _, p := range hists[i].events {
					events++
					queue = append(queue, delivery{i, p})
					if r.IntN(5) == 0 {
						dups++
						queue = append(queue, delivery{i, p})
					}
				}
			}
			r.Shuffle(len(queue), func(a, b int) { queue[a], queue[b] = queue[b], queue[a] })
			routes := make([]int, len(queue))
			for i := range routes {
				routes[i] = r.IntN(replicas)
			}

			var (
				mu     sync.Mutex
				next   int
				failed []string
				perRep = make([]int, replicas)
			)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						if next == len(queue) {
							mu.Unlock()
							return
						}
						d, rep := queue[next], routes[next]
						next++
						perRep[rep]++
						mu.Unlock()
						w := httptest.NewRecorder()
						reps[rep].webhook.ServeHTTP(w, billingtest.WebhookRequest(d.payload, billingtest.WebhookSecret, billingtest.RequestOptions{}))
						if w.Code != 200 {
							mu.Lock()
							failed = append(failed, fmt.Sprintf("history %d, replica %d: %d %s", d.hist, rep, w.Code, w.Body))
							mu.Unlock()
						}
					}
				}()
			}
			start := time.Now()
			wg.Wait()
			elapsed := time.Since(start)
			for _, f := range failed {
				t.Errorf("delivery answered: %s", f)
			}

			// Every event id applied at most once, processed once.
			var applied, stale, ties, notOnce int
			ids := make([]string, 0, len(log.m))
			for id := range log.m {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				n := map[billing.Outcome]int{}
				for _, o := range log.m[id] {
					n[o]++
				}
				applied += n[billing.Applied]
				stale += n[billing.Stale]
				ties += n[billing.Tie]
				if n[billing.Applied] > 1 || n[billing.Applied]+n[billing.Stale] > 1 || (n[billing.Applied]+n[billing.Stale] == 0 && n[billing.Tie] == 0) {
					if notOnce++; notOnce <= 10 {
						t.Errorf("event %s: outcomes %v; want one applied or stale", id, log.m[id])
					}
				}
			}

			// Every replica sees every user's plan, in its store and its
			// portal.
			wrong := 0
			for i, h := range hists {
				for k, rep := range reps {
					u, found, err := rep.store.User(ctx, h.user)
					if err != nil || !found || u.Plan != h.want || u.StripeCustomerID != h.customer {
						if wrong++; wrong <= 10 {
							t.Errorf("history %d on replica %d: user %+v (found %v, %v), want plan %s on %s", i, k, u, found, err, h.want, h.customer)
						}
						continue
					}
					_, err = rep.portal.CreateSession(ctx, h.user, billing.SessionOptions{})
					if h.want.Paid() != (err == nil) || (!h.want.Paid() && !errors.Is(err, billing.ErrNotPaid)) {
						if wrong++; wrong <= 10 {
							t.Errorf("history %d on replica %d: portal session for a %s user: %v", i, k, h.want, err)
						}
					}
				}
			}
			t.Logf("%d replicas (own *sql.DB each), %d histories, %d events, %d deliveries (%d duplicates) spread %v, %d workers, %v: %d applied, %d stale, %d ties read from Stripe; %d events not processed once, %d wrong plans",
				replicas, histories, events, len(queue), dups, perRep, workers, elapsed.Round(time.Millisecond), applied, stale, ties, notOnce, wrong)
		})
	}
}
