package billing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
)

// proChange is an applied change that moves customer cus's user to the
// given plan at second s.
func planChange(cus string, s int, plan billing.Plan) billing.SubscriptionChange {
	status := "active"
	if plan == billing.Free {
		status = "canceled"
	}
	return billing.SubscriptionChange{
		EventID:      fmt.Sprintf("evt_%s_%d", cus, s),
		Subscription: billing.Subscription{ID: "sub_" + cus, CustomerID: cus, Status: status, Plan: plan},
		Created:      time.Unix(1_700_000_000+int64(s), 0), Seq: 2,
		Cause: billing.Cause{Kind: billing.CauseWebhook, EventID: fmt.Sprintf("evt_%s_%d", cus, s)},
	}
}

func mustApply(t *testing.T, s billing.SyncStore, c billing.SubscriptionChange) {
	t.Helper()
	if out, err := s.ApplySubscription(context.Background(), c, time.Hour); err != nil || out != billing.Applied {
		t.Fatalf("ApplySubscription = %v, %v", out, err)
	}
}

func TestNotifierConfig(t *testing.T) {
	store := billing.NewMemoryStore()
	hook := billing.PlanChangeHookFunc(func(context.Context, billing.PlanChange) error { return nil })
	for _, tc := range []struct {
		cfg  billing.NotifierConfig
		want string
	}{
		{billing.NotifierConfig{Hook: hook}, "NotifierConfig.Outbox is required"},
		{billing.NotifierConfig{Outbox: store}, "NotifierConfig.Hook is required"},
		{billing.NotifierConfig{Outbox: store, Hook: hook, Lease: -1}, "must not be negative"},
	} {
		if _, err := billing.NewNotifier(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

// TestHookAtLeastOnce: a committed change reaches the hook even when the
// process dies between the commit and the hook (the crash point), and when
// the hook fails; a redelivery carries the same change id; per user the
// changes arrive in commit order.
func TestHookAtLeastOnce(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	store := billing.NewMemoryStore(billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"})
	store.SetClock(clock)
	mustApply(t, store, planChange("cus_1", 1, billing.Basic))
	mustApply(t, store, planChange("cus_1", 2, billing.Pro))

	// Process A dies right after claiming the first change.
	var got []billing.PlanChange
	hook := billing.PlanChangeHookFunc(func(_ context.Context, c billing.PlanChange) error {
		got = append(got, c)
		return nil
	})
	crashed, err := billing.NewNotifier(billing.NotifierConfig{Outbox: store, Hook: hook, Crash: func(billing.PlanChange) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := crashed.Deliver(context.Background()); n != 0 || err == nil {
		t.Fatalf("crashed Deliver = %d, %v; want 0 and the crash", n, err)
	}
	// Process B (a restart, or another replica) cannot take it while A's
	// claim is live...
	b, _ := billing.NewNotifier(billing.NotifierConfig{Outbox: store, Hook: hook})
	if n, err := b.Deliver(context.Background()); n != 0 || err != nil || len(got) != 0 {
		t.Fatalf("Deliver during the lease = %d, %v, hook calls %d; want nothing", n, err, len(got))
	}
	// ...and delivers both, in order, once the lease has expired.
	advance(31 * time.Second)
	if n, err := b.Deliver(context.Background()); n != 2 || err != nil {
		t.Fatalf("Deliver after the lease = %d, %v", n, err)
	}
	if len(got) != 2 || got[0].After.Plan != billing.Basic || got[1].Before.Plan != billing.Basic || got[1].After.Plan != billing.Pro {
		t.Fatalf("hook got %+v, want FREE→BASIC then BASIC→PRO", got)
	}
	pending, _ := store.PendingChanges(context.Background())
	if len(pending) != 0 {
		t.Fatalf("%d changes still pending", len(pending))
	}

	// A failing hook: retried with the same id until it succeeds.
	mustApply(t, store, planChange("cus_1", 3, billing.Free))
	var ids []string
	fail := 2
	flaky, _ := billing.NewNotifier(billing.NotifierConfig{Outbox: store, Backoff: func(int) time.Duration { return time.Minute },
		Hook: billing.PlanChangeHookFunc(func(_ context.Context, c billing.PlanChange) error {
			ids = append(ids, c.ID)
			if fail > 0 {
				fail--
				return errors.New("mail server down")
			}
			return nil
		})})
	for i := 0; i < 3; i++ {
		n, err := flaky.Deliver(context.Background())
		if i < 2 && (n != 0 || err == nil || !strings.Contains(err.Error(), "mail server down")) {
			t.Fatalf("attempt %d: Deliver = %d, %v; want the hook's error", i, n, err)
		}
		if i == 2 && (n != 1 || err != nil) {
			t.Fatalf("attempt 3: Deliver = %d, %v", n, err)
		}
		if n2, _ := flaky.Deliver(context.Background()); n2 != 0 {
			t.Fatal("a failed change was redelivered before its backoff")
		}
		advance(time.Minute)
	}
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("deliveries carried ids %q, want one id three times", ids)
	}
}

// TestHookOneAtATimePerUser: several notifiers (replicas) deliver at once;
// each change is delivered, a user's changes never overlap and arrive in
// commit order.
func TestHookOneAtATimePerUser(t *testing.T) {
	const users, changes, replicas = 20, 6, 4
	var seed []billing.User
	for u := range users {
		seed = append(seed, billing.User{ID: fmt.Sprintf("u%d", u), Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_%d", u)})
	}
	store := billing.NewMemoryStore(seed...)
	plans := []billing.Plan{billing.Basic, billing.Pro}
	for c := range changes {
		for u := range users {
			mustApply(t, store, planChange(fmt.Sprintf("cus_%d", u), c, plans[c%2]))
		}
	}
	var (
		mu       sync.Mutex
		inFlight = map[string]bool{}
		seen     = map[string][]billing.PlanChange{}
		overlap  int
	)
	hook := billing.PlanChangeHookFunc(func(_ context.Context, c billing.PlanChange) error {
		mu.Lock()
		if inFlight[c.UserID] {
			overlap++
		}
		inFlight[c.UserID] = true
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		mu.Lock()
		inFlight[c.UserID] = false
		seen[c.UserID] = append(seen[c.UserID], c)
		mu.Unlock()
		return nil
	})
	var wg sync.WaitGroup
	for range replicas {
		n, err := billing.NewNotifier(billing.NotifierConfig{Outbox: store, Hook: hook, Batch: 3})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := n.Deliver(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if overlap != 0 {
		t.Fatalf("%d deliveries overlapped another of the same user", overlap)
	}
	for u := range users {
		id := fmt.Sprintf("u%d", u)
		got := seen[id]
		if len(got) != changes {
			t.Fatalf("%s got %d changes, want %d", id, len(got), changes)
		}
		for i, c := range got {
			if c.After.Plan != plans[i%2] || (i > 0 && c.Before.Plan != got[i-1].After.Plan) {
				t.Fatalf("%s change %d out of order: %+v", id, i, c)
			}
		}
	}
}

// TestHookLinkCustomer: linking a customer whose subscriptions are stored
// is a change with cause customer_linked; seeding records none.
func TestHookLinkCustomer(t *testing.T) {
	store := billing.NewMemoryStore(billing.User{ID: "u1", Plan: billing.Free})
	mustApply(t, store, planChange("cus_1", 1, billing.Pro))
	if err := store.PutUser(context.Background(), billing.User{ID: "u2", Plan: billing.Free}); err != nil {
		t.Fatal(err)
	}
	if found, err := store.LinkCustomer(context.Background(), "u1", "cus_1"); !found || err != nil {
		t.Fatal(found, err)
	}
	if found, _ := store.LinkCustomer(context.Background(), "u1", "cus_1"); !found {
		t.Fatal("relink")
	}
	pending, _ := store.PendingChanges(context.Background())
	if len(pending) != 1 || pending[0].Cause.Kind != billing.CauseCustomerLinked || pending[0].After.Plan != billing.Pro {
		t.Fatalf("pending %+v, want one customer_linked change to PRO", pending)
	}
}
