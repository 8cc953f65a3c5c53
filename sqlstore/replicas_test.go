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
	"github.com/contafy/billing/internal/history"
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

// replicaHistories shapes the histories of TestReplicas (internal/history):
// a subscription created (active, trialing or incomplete), then 1 to 7
// changes (upgrade, downgrade, past_due, unpaid, paused, resumed,
// canceled), a quarter of them in the same second as the previous one (ties
// the handlers resolve by reading the subscription from the fake Stripe);
// sometimes a second subscription, after a cancelation or beside the
// first. A quarter of the users are linked only by a
// checkout.session.completed event.
var replicaHistories = history.Config{Prefix: "rep", Subs: 2, Steps: 7, SameSecond: 0.25, Later: 0.25}

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
					Rules:         billing.PlanRules{Prices: billingtest.Prices()},
					Subscriptions: fake.SubscriptionClient(),
					LinkCheckout:  true,
				})
				if err != nil {
					t.Fatal(err)
				}
				reps[i].portal = billingtest.NewPortalService(t, fake, s)
			}
			wg.Wait()

			hists := make([]history.History, histories)
			type delivery struct {
				hist    int
				payload []byte
			}
			var queue []delivery
			events, dups := 0, 0
			for i := range hists {
				hists[i] = history.Generate(r, i, replicaHistories)
				for _, f := range hists[i].Finals() {
					fake.PutSubscription(f.Spec()) // Stripe's state at the end
				}
				if err := reps[i%replicas].store.PutUser(ctx, hists[i].User); err != nil {
					t.Fatal(err)
				}
				payloads := make([][]byte, 0, len(hists[i].Events)+1)
				for _, ev := range hists[i].Events {
					payloads = append(payloads, ev.Payload())
				}
				if hists[i].Link == history.Later {
					payloads = append(payloads, hists[i].Checkout())
				}
				for _, p := range payloads {
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
				want := h.Want()
				for k, rep := range reps {
					u, found, err := rep.store.User(ctx, want.ID)
					if err != nil || !found || u != want {
						if wrong++; wrong <= 10 {
							t.Errorf("history %d on replica %d: user %+v (found %v, %v), want %+v", i, k, u, found, err, want)
						}
						continue
					}
					_, err = rep.portal.CreateSession(ctx, want.ID, billing.SessionOptions{})
					if want.Plan.Paid() != (err == nil) || (!want.Plan.Paid() && !errors.Is(err, billing.ErrNotPaid)) {
						if wrong++; wrong <= 10 {
							t.Errorf("history %d on replica %d: portal session for a %s user: %v", i, k, want.Plan, err)
						}
					}
				}
			}
			t.Logf("%d replicas (own *sql.DB each), %d histories, %d events, %d deliveries (%d duplicates) spread %v, %d workers, %v: %d applied, %d stale, %d ties read from Stripe; %d events not processed once, %d wrong plans",
				replicas, histories, events, len(queue), dups, perRep, workers, elapsed.Round(time.Millisecond), applied, stale, ties, notOnce, wrong)
		})
	}
}
