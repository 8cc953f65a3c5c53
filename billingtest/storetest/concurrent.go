package storetest

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/internal/history"
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

// delivery is one call of the concurrent run.
type delivery struct {
	change *billing.SubscriptionChange
	final  billing.Subscription // the newest state of change's subscription
	link   *history.History
}

// concurrentHistories shapes the histories of the concurrent cases: 1 to 3
// subscriptions per customer (resubscriptions and subscriptions side by
// side), 1 to 7 changes each, a third of the events in the same second as
// the previous one, 40% of the users linked by a LinkCustomer call racing
// the changes, 20% never linked.
var concurrentHistories = history.Config{Subs: 3, Steps: 7, SameSecond: 1.0 / 3, Later: 0.4, Never: 0.2}

// runHistories delivers the changes of n random histories (see
// internal/history), shuffled, 20% of them twice, with the LinkCustomer
// calls of the late-linked users mixed in, over 8 goroutines spread over the
// stores. Each change is an event as the webhook handler applies it (Seq its
// status's rank), its Created moved within its second (the store must
// compare whole seconds). A Tie is resolved as the webhook handler does, by
// applying the subscription's newest state (what a read from Stripe
// returns) with the same event id. Then: every change was processed exactly
// once (one Applied or Stale outcome, the other deliveries Duplicate), every
// user is what [history.History.Want] says (the derivation that
// [billing.SyncStore] states, SubscriptionID tie-break included), and every
// subscription is stored in its newest state.
func runHistories(t *testing.T, h Harness, n int, newStores func([]billing.User) []Store) {
	r := newRand(t)
	hists := make([]history.History, n)
	users := make([]billing.User, n)
	for i := range hists {
		hists[i] = history.Generate(r, i, concurrentHistories)
		users[i] = hists[i].User
	}
	stores := newStores(users)

	var (
		ds         []delivery
		deliveries = map[string]int{}
		changes    int
	)
	for i := range hists {
		hs := &hists[i]
		if hs.Link == history.Later {
			ds = append(ds, delivery{link: hs})
			if r.IntN(5) == 0 {
				ds = append(ds, delivery{link: hs})
			}
		}
		for _, e := range hs.Events {
			c := e.Change()
			c.Created = c.Created.Add(time.Duration(r.IntN(1e9)))
			changes++
			d := delivery{change: &c, final: hs.Final(e.Sub.ID).Sub}
			ds = append(ds, d)
			deliveries[c.EventID]++
			if r.IntN(5) == 0 {
				ds = append(ds, d)
				deliveries[c.EventID]++
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
					found, err := s.LinkCustomer(ctx, d.link.User.ID, d.link.Customer)
					if err != nil || !found {
						fail(fmt.Errorf("LinkCustomer(%s, %s) = %v, %v", d.link.User.ID, d.link.Customer, found, err))
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
		want := hs.Want()
		got, found, err := stores[i%len(stores)].User(ctx, want.ID)
		if err != nil || !found {
			t.Errorf("User(%s) = found %v, %v", want.ID, found, err)
			continue
		}
		if got != want {
			if bad++; bad <= 10 {
				t.Errorf("User(%s) after %+v\n got %+v\nwant %+v", want.ID, hs.Events, got, want)
			}
		}
		byCus, found, err := stores[(i+1)%len(stores)].UserByCustomer(ctx, hs.Customer)
		if err != nil || found != (hs.Link != history.Never) || (found && byCus.ID != want.ID) {
			t.Errorf("UserByCustomer(%s) = %q, found %v, %v", hs.Customer, byCus.ID, found, err)
		}
		read := h.subscriptionOf(stores[0])
		if read == nil {
			continue
		}
		for _, e := range hs.Finals() {
			final := e.Sub
			got, found, err := read(final.ID)
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
