package storetest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
)

// workers is the number of goroutines delivering changes at once.
const workers = 8

// replicas is the number of store instances of the replica cases.
const replicas = 3

func runConcurrent(t *testing.T, h Harness) {
	scale := h.Scale
	if scale < 1 {
		scale = 1
	}
	t.Run("SameEvent", func(t *testing.T) {
		users := []billing.User{{ID: "u1", Plan: free, StripeCustomerID: "cus_1"}}
		runSameEvent(t, []Store{h.New(t, users)})
	})
	t.Run("Histories", func(t *testing.T) {
		runHistories(t, h, 40*scale, func(users []billing.User) []Store { return []Store{h.New(t, users)} })
	})
	if h.Replicas == nil {
		return
	}
	t.Run("Replicas/SameEvent", func(t *testing.T) {
		users := []billing.User{{ID: "u1", Plan: free, StripeCustomerID: "cus_1"}}
		runSameEvent(t, h.Replicas(t, replicas, users))
	})
	t.Run("Replicas/Histories", func(t *testing.T) {
		runHistories(t, h, 40*scale, func(users []billing.User) []Store { return h.Replicas(t, replicas, users) })
	})
}

// runSameEvent delivers one change from many goroutines at once: exactly one
// delivery is Applied, the others are Duplicate.
func runSameEvent(t *testing.T, stores []Store) {
	const n = 16
	c := billing.SubscriptionChange{EventID: "evt_same", Subscription: sub("sub_1", "cus_1", "active", pro), Created: t100, Seq: 1}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		outs  outcomes
		errs  = make(chan error, n)
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(s Store) {
			defer wg.Done()
			<-start
			out, err := s.ApplySubscription(context.Background(), c, retain)
			if err != nil {
				errs <- err
				return
			}
			outs.add(c.EventID, out)
		}(stores[i%len(stores)])
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("ApplySubscription: %v", err)
	}
	want := map[billing.Outcome]int{applied: 1, duplicate: n - 1}
	if got := outs.m[c.EventID]; !maps.Equal(got, want) {
		t.Errorf("outcomes of %d concurrent deliveries of one event = %v, want %v", n, got, want)
	}
	u, _, err := stores[0].User(context.Background(), "u1")
	if err != nil || u.Plan != pro {
		t.Errorf("User(u1) = %+v, %v; want PRO", u, err)
	}
}

// history is the life of one customer: its user, its subscriptions (each
// a sequence of changes with strictly increasing order keys, so that no two
// changes tie) and how the user gets linked to the customer.
type history struct {
	user     billing.User // as seeded
	customer string
	link     linkMode
	subs     [][]billing.SubscriptionChange
}

type linkMode int

const (
	linkedAtStart linkMode = iota // the seeded user carries the customer id
	linkedLater                   // a LinkCustomer call races the changes
	neverLinked                   // the user must stay as seeded
)

// want returns the user as it must be once every change is delivered.
func (h history) want() billing.User {
	if h.link == neverLinked {
		return h.user
	}
	finals := make([]billing.Subscription, len(h.subs))
	for i, changes := range h.subs {
		finals[i] = changes[len(changes)-1].Subscription
	}
	plan, id := best(finals)
	return billing.User{ID: h.user.ID, Plan: plan, StripeCustomerID: h.customer, SubscriptionID: id}
}

// genHistory makes a random customer history: 1 to 3 subscriptions, each
// 2 to 8 changes (create, upgrades, downgrades, past_due, unpaid, paused,
// resumed, maybe a final cancel), a third of the changes in the same
// second as the previous one with a higher Seq.
func genHistory(r *rand.Rand, i int) history {
	h := history{customer: fmt.Sprintf("cus_%04d", i), link: linkedAtStart}
	switch x := r.IntN(10); {
	case x >= 8:
		h.link = neverLinked // 20%
	case x >= 4:
		h.link = linkedLater // 40%
	}
	h.user = billing.User{ID: fmt.Sprintf("u%04d", i), Plan: basic}
	if h.link == linkedAtStart {
		h.user.StripeCustomerID = h.customer
	}
	plans := []billing.Plan{basic, pro}
	for s := 0; s < 1+r.IntN(3); s++ {
		subID := fmt.Sprintf("sub_%04d_%d", i, s)
		created := int64(1_700_000_000 + r.IntN(1000))
		seq := int64(r.IntN(4))
		plan := plans[r.IntN(2)]
		var changes []billing.SubscriptionChange
		n := 2 + r.IntN(7)
		for k := 0; k < n; k++ {
			status, granted := "active", plan
			switch {
			case k == 0 && r.IntN(4) == 0:
				status = "trialing"
			case k == n-1 && r.IntN(3) == 0:
				status, granted = "canceled", free
			case k > 0:
				switch r.IntN(6) {
				case 0:
					status = "past_due"
				case 1:
					status, granted = "unpaid", free
				case 2:
					status, granted = "paused", free
				default:
					plan = plans[r.IntN(2)] // upgrade, downgrade or renewal
					granted = plan
				}
			}
			if k > 0 {
				if r.IntN(3) == 0 {
					seq += 1 + int64(r.IntN(3))
				} else {
					created += 1 + int64(r.IntN(100))
					seq = int64(r.IntN(4))
				}
			}
			changes = append(changes, billing.SubscriptionChange{
				EventID: fmt.Sprintf("evt_%04d_%d_%d", i, s, k),
				Subscription: billing.Subscription{
					ID: subID, CustomerID: h.customer, Status: status, Plan: granted, PriceID: "price_" + string(plan),
				},
				Created: time.Unix(created, int64(r.IntN(1e9))),
				Seq:     seq,
			})
		}
		h.subs = append(h.subs, changes)
	}
	return h
}

// delivery is one call of the concurrent run.
type delivery struct {
	change *billing.SubscriptionChange
	final  billing.Subscription // the newest state of change's subscription
	link   *history
}

// runHistories delivers the changes of n random histories, shuffled, 20% of
// them twice, with the LinkCustomer calls of the late-linked users mixed in,
// over 8 goroutines spread over the stores. A Tie is resolved as the
// webhook handler does, by applying the subscription's newest state (what a
// read from Stripe returns) with the same event id. Then: every change was
// processed exactly once (one Applied or Stale outcome, the other deliveries
// Duplicate), every user has the plan of its customer's newest states, and
// every subscription is stored in its newest state.
func runHistories(t *testing.T, h Harness, n int, newStores func([]billing.User) []Store) {
	r := newRand(t)
	hists := make([]history, n)
	users := make([]billing.User, n)
	for i := range hists {
		hists[i] = genHistory(r, i)
		users[i] = hists[i].user
	}
	stores := newStores(users)

	var (
		ds         []delivery
		deliveries = map[string]int{}
		changes    int
	)
	for i := range hists {
		hs := &hists[i]
		if hs.link == linkedLater {
			ds = append(ds, delivery{link: hs})
			if r.IntN(5) == 0 {
				ds = append(ds, delivery{link: hs})
			}
		}
		for _, cs := range hs.subs {
			final := cs[len(cs)-1].Subscription
			for k := range cs {
				c := &cs[k]
				changes++
				ds = append(ds, delivery{change: c, final: final})
				deliveries[c.EventID]++
				if r.IntN(5) == 0 {
					ds = append(ds, delivery{change: c, final: final})
					deliveries[c.EventID]++
				}
			}
		}
	}
	r.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	t.Logf("%d histories, %d changes, %d deliveries, %d workers, %d store instances", n, changes, len(ds), workers, len(stores))

	var (
		ties      atomic.Int64
		readClock atomic.Int64 // the "time" of the reads from Stripe
		outs      outcomes
		wg        sync.WaitGroup
		work      = make(chan delivery)
		mu        sync.Mutex
		errs      []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	readClock.Store(1 << 40)
	ctx := context.Background()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(s Store) {
			defer wg.Done()
			for d := range work {
				if d.link != nil {
					found, err := s.LinkCustomer(ctx, d.link.user.ID, d.link.customer)
					if err != nil || !found {
						fail(fmt.Errorf("LinkCustomer(%s, %s) = %v, %v", d.link.user.ID, d.link.customer, found, err))
					}
					continue
				}
				c := *d.change
				out, err := s.ApplySubscription(ctx, c, retain)
				for err == nil && out == tie {
					// What the webhook handler does on a tie: read the
					// subscription from Stripe (its newest state, the
					// last of the history) and apply that with the same
					// event id and the time of the read as Seq.
					ties.Add(1)
					c.Subscription = d.final
					c.Seq = readClock.Add(1)
					out, err = s.ApplySubscription(ctx, c, retain)
				}
				if err != nil {
					fail(fmt.Errorf("ApplySubscription(%s): %v", c.EventID, err))
					continue
				}
				outs.add(c.EventID, out)
			}
		}(stores[w%len(stores)])
	}
	for _, d := range ds {
		work <- d
	}
	close(work)
	wg.Wait()
	for i, err := range errs {
		if i == 10 {
			t.Errorf("... and %d more errors", len(errs)-10)
			break
		}
		t.Error(err)
	}
	if len(errs) > 0 {
		return
	}

	bad := 0
	for _, evt := range sortedKeys(deliveries) {
		got := outs.m[evt]
		if got[applied]+got[stale] != 1 || got[tie] != 0 || got[duplicate] != deliveries[evt]-1 {
			if bad++; bad <= 10 {
				t.Errorf("event %s delivered %d times: outcomes %v; want one applied or stale, the rest duplicate", evt, deliveries[evt], got)
			}
		}
	}
	appliedN := 0
	for _, m := range outs.m {
		appliedN += m[applied]
	}
	t.Logf("%d applied, %d ties resolved by a read, %d events not processed once", appliedN, ties.Load(), bad)

	bad = 0
	for i := range hists {
		hs := hists[i]
		want := hs.want()
		got, found, err := stores[i%len(stores)].User(ctx, want.ID)
		if err != nil || !found {
			t.Errorf("User(%s) = found %v, %v", want.ID, found, err)
			continue
		}
		if got != want {
			if bad++; bad <= 10 {
				t.Errorf("User(%s) after %v\n got %+v\nwant %+v", want.ID, hs.subs, got, want)
			}
		}
		byCus, found, err := stores[(i+1)%len(stores)].UserByCustomer(ctx, hs.customer)
		if err != nil || found != (hs.link != neverLinked) || (found && byCus.ID != want.ID) {
			t.Errorf("UserByCustomer(%s) = %q, found %v, %v", hs.customer, byCus.ID, found, err)
		}
		if h.Subscription == nil {
			continue
		}
		for _, cs := range hs.subs {
			final := cs[len(cs)-1].Subscription
			got, found, err := h.Subscription(stores[0], final.ID)
			if err != nil || !found {
				t.Errorf("Subscription(%s) = found %v, %v", final.ID, found, err)
				continue
			}
			if !reflect.DeepEqual(got, final) {
				t.Errorf("Subscription(%s)\n got %+v\nwant %+v", final.ID, got, final)
			}
		}
	}
}
