package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/sqlstore"
)

// TestHookAtLeastOnce proves the plan-change hook's contract on real
// databases. Replica A (its own *sql.DB and Store) applies webhook events
// with a Notifier that dies at its crash point after every claim: each
// change is committed, the hook never runs. Replica B (another *sql.DB
// and Store on the same database) then delivers every change once A's
// leases have expired, with the ids the changes were committed with, in
// commit order per user; a hook that fails is called again, with backoff,
// until it succeeds, and the user's next change waits for it.
func TestHookAtLeastOnce(t *testing.T) {
	const lease = 300 * time.Millisecond
	ctx := context.Background()
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			dsn := e.database(t)
			var users []billing.User
			for i := 1; i <= 3; i++ {
				users = append(users, billing.User{ID: fmt.Sprintf("u%d", i), Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_%d", i)})
			}
			storeA := newStore(t, e.open(t, dsn), e.dialect, users)

			// Replica A: commits, then dies before every hook call.
			var (
				mu      sync.Mutex
				hookA   int
				crashes int
			)
			notifierA, err := billing.NewNotifier(billing.NotifierConfig{
				Outbox: storeA,
				Hook: billing.PlanChangeHookFunc(func(context.Context, billing.PlanChange) error {
					mu.Lock()
					defer mu.Unlock()
					hookA++
					return nil
				}),
				Lease: lease,
				Crash: func(billing.PlanChange) bool {
					mu.Lock()
					defer mu.Unlock()
					crashes++
					return true
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			webhookA, err := billing.NewWebhookHandler(billing.WebhookConfig{
				Secrets:  []string{billingtest.WebhookSecret},
				Store:    storeA,
				Rules:    billing.PlanRules{Prices: billingtest.Prices()},
				Notifier: notifierA,
			})
			if err != nil {
				t.Fatal(err)
			}
			// Per user: created on BASIC, upgraded to PRO, canceled at the
			// period end: three changes of the user's view.
			t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
			for k, spec := range []billingtest.SubscriptionSpec{
				{Status: "active", PriceID: billingtest.PriceBasic},
				{Status: "active", PriceID: billingtest.PricePro},
				{Status: "active", PriceID: billingtest.PricePro, CancelAtPeriodEnd: true},
			} {
				for _, u := range users {
					spec.ID, spec.Customer = "sub_"+u.ID, u.StripeCustomerID
					spec.Created, spec.CurrentPeriodEnd = t0, t0.Add(30*24*time.Hour)
					typ := "customer.subscription.updated"
					if k == 0 {
						typ = "customer.subscription.created"
					}
					w := httptest.NewRecorder()
					webhookA.ServeHTTP(w, billingtest.WebhookRequest(billingtest.SubscriptionEvent(typ, spec, t0.Add(time.Duration(k)*time.Minute)), billingtest.WebhookSecret, billingtest.RequestOptions{}))
					if w.Code != 200 {
						t.Fatalf("event %d of %s: %d %s", k, u.ID, w.Code, w.Body)
					}
				}
			}
			mu.Lock()
			if hookA != 0 || crashes == 0 {
				t.Errorf("replica A: hook called %d times, crash point reached %d times; want 0 and at least 1", hookA, crashes)
			}
			mu.Unlock()

			// Replica B: its own pool and store on the same database.
			storeB, err := sqlstore.New(e.open(t, dsn), e.dialect)
			if err != nil {
				t.Fatal(err)
			}
			if err := storeB.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			committed, err := storeB.PendingChanges(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(committed) != 3*len(users) {
				t.Fatalf("%d changes committed by replica A, want %d: %+v", len(committed), 3*len(users), committed)
			}
			wantIDs := map[string][]string{}
			for _, c := range committed {
				wantIDs[c.UserID] = append(wantIDs[c.UserID], c.ID)
			}
			failing := wantIDs["u2"][1] // u2's upgrade: the hook fails twice on it
			var (
				calls     = map[string]int{}
				delivered = map[string][]string{}
				after     = map[string][]billing.View{}
			)
			notifierB, err := billing.NewNotifier(billing.NotifierConfig{
				Outbox: storeB,
				Hook: billing.PlanChangeHookFunc(func(_ context.Context, c billing.PlanChange) error {
					mu.Lock()
					defer mu.Unlock()
					calls[c.ID]++
					if c.ID == failing && calls[c.ID] <= 2 {
						return errors.New("CRM unavailable")
					}
					delivered[c.UserID] = append(delivered[c.UserID], c.ID)
					after[c.UserID] = append(after[c.UserID], c.After)
					return nil
				}),
				Lease:   lease,
				Backoff: func(int) time.Duration { return 50 * time.Millisecond },
			})
			if err != nil {
				t.Fatal(err)
			}
			// Before A's leases expire, B may deliver only what A never
			// claimed; after them, everything.
			time.Sleep(lease + 100*time.Millisecond)
			deadline := time.Now().Add(20 * time.Second)
			for {
				n, err := notifierB.Deliver(ctx)
				mu.Lock()
				total := 0
				for _, ids := range delivered {
					total += len(ids)
				}
				mu.Unlock()
				if total == len(committed) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 20s: %d of %d changes delivered (last Deliver: %d, %v)", total, len(committed), n, err)
				}
				time.Sleep(60 * time.Millisecond)
			}
			for _, u := range users {
				if got, want := delivered[u.ID], wantIDs[u.ID]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("user %s: delivered %v, want the committed %v in order", u.ID, got, want)
				}
				var plans []string
				for _, v := range after[u.ID] {
					plans = append(plans, fmt.Sprintf("%s cancel=%v", v.Plan, v.CancelAtPeriodEnd))
				}
				if want := "[BASIC cancel=false PRO cancel=false PRO cancel=true]"; fmt.Sprint(plans) != want {
					t.Errorf("user %s: views delivered %v, want %s", u.ID, plans, want)
				}
			}
			for id, n := range calls {
				want := 1
				if id == failing {
					want = 3
				}
				if n != want {
					t.Errorf("change %s: hook called %d times, want %d", id, n, want)
				}
			}
			if left, err := storeA.PendingChanges(ctx); err != nil || len(left) != 0 {
				t.Errorf("changes left after delivery: %v, %v", left, err)
			}
			mu.Lock()
			if hookA != 0 {
				t.Errorf("replica A's hook called %d times", hookA)
			}
			mu.Unlock()
		})
	}
}
