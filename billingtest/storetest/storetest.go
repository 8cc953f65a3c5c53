// Package storetest is the contract test of the billing stores: one table of
// cases that every implementation of [billing.UserStore] and
// [billing.SyncStore] must pass, whatever it keeps its data in. The
// in-memory store runs it in the billing module, the SQL stores run it on
// real PostgreSQL and SQLite, and an application with a store of its own can
// run it too:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			New: func(t *testing.T, users []billing.User) storetest.Store {
//				return newMyStore(t, users) // empty but for users
//			},
//		})
//	}
//
// The cases follow the doc comments of [billing.SyncStore] and
// [billing.SubscriptionChange]: outcomes Applied, Duplicate, Stale and Tie,
// terminal subscriptions never revived, the user's plan and subscription id
// derived as [billing.SyncStore] states (the highest plan among the
// customer's stored subscriptions, the greatest subscription id among that
// plan's: the cases check that tie-break too), subscriptions of unlinked
// customers kept until [billing.SyncStore.LinkCustomer]. The concurrent
// cases deliver shuffled and duplicated changes of random histories from
// many goroutines (and, with [Harness.Replicas], through several store
// instances sharing one database) and check that every event id is
// processed once and every user ends as the derivation says.
//
// The same harness runs two heavier checks through the library's real
// handlers: [RunSyncProperty], the webhook sync as a property over 1,000
// random histories, and [RunLoad], the portal and the webhook handler under
// load at once:
//
//	h := storetest.Harness{New: newMyStore}
//	storetest.Run(t, h)
//	storetest.RunSyncProperty(t, h, storetest.PropertyConfig{})
//	storetest.RunLoad(t, h, storetest.LoadConfig{})
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
)

// Store is what the contract covers: both store interfaces.
type Store interface {
	billing.UserStore
	billing.SyncStore
}

// Harness tells [Run] how to make the stores under test.
type Harness struct {
	// New returns a new store, independent of every other one New
	// returned, that holds exactly users (each linked to its
	// StripeCustomerID, if set) and no subscription or event id. It fails t
	// if it cannot. Required.
	New func(t *testing.T, users []billing.User) Store

	// Replicas, if set, returns n stores that share one new database
	// holding exactly users, as n replicas of an application would (each
	// with its own connections). Run then also runs the concurrent cases
	// across them. Default: nil, the concurrent cases use one store.
	Replicas func(t *testing.T, n int, users []billing.User) []Store

	// Subscription, if set, returns the stored state of a subscription, so
	// that the cases also check it (not only the users' plans). Default:
	// the store's own method Subscription(ctx, id) (billing.Subscription,
	// bool, error), if it has one, as [billing.MemoryStore] and
	// sqlstore.Store do; else the stored subscriptions are not checked.
	Subscription func(s Store, id string) (sub billing.Subscription, found bool, err error)

	// Scale multiplies the size of the concurrent cases (number of
	// histories). Default: 1.
	Scale int
}

// Run runs the contract on the stores of h: first the sequential table,
// then the concurrent cases.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("storetest: Harness.New is required")
	}
	if h.subscriptionOf(h.New(t, nil)) == nil {
		t.Log("storetest: stored subscriptions are not checked: set Harness.Subscription, or give the store a method Subscription(ctx, id) (billing.Subscription, bool, error)")
	}
	t.Run("Table", func(t *testing.T) { runTable(t, h) })
	t.Run("Errors", func(t *testing.T) { runErrors(t, h) })
	t.Run("Concurrent", func(t *testing.T) { runConcurrent(t, h) })
}

// The times of the changes of the table: whole seconds.
var (
	t100 = time.Unix(1_700_000_100, 0)
	t200 = time.Unix(1_700_000_200, 0)
	t300 = time.Unix(1_700_000_300, 0)
)

// retain is the event retention of the cases: long enough that nothing
// expires during a test.
const retain = 72 * time.Hour

// step is one call of a case: an ApplySubscription or a LinkCustomer.
type step struct {
	change *billing.SubscriptionChange
	want   billing.Outcome

	linkUser, linkCustomer string
	wantFound              bool
}

// apply is a step applying a change of subscription sub (of customer cus)
// with the given status and plan.
func apply(evt, sub, cus, status string, plan billing.Plan, created time.Time, seq int64, want billing.Outcome) step {
	return step{
		change: &billing.SubscriptionChange{
			EventID: evt,
			Subscription: billing.Subscription{
				ID: sub, CustomerID: cus, Status: status, Plan: plan, PriceID: "price_" + string(plan),
			},
			Created: created,
			Seq:     seq,
		},
		want: want,
	}
}

func link(user, cus string, found bool) step {
	return step{linkUser: user, linkCustomer: cus, wantFound: found}
}

func (s step) String() string {
	if s.change != nil {
		c := s.change
		return fmt.Sprintf("apply(%s %s/%s %s %s @%d/%d)", c.EventID, c.Subscription.CustomerID, c.Subscription.ID,
			c.Subscription.Status, c.Subscription.Plan, c.Created.Unix(), c.Seq)
	}
	return fmt.Sprintf("link(%s, %s)", s.linkUser, s.linkCustomer)
}

const (
	applied   = billing.Applied
	duplicate = billing.Duplicate
	stale     = billing.Stale
	tie       = billing.Tie
)

const (
	free  = billing.Free
	basic = billing.Basic
	pro   = billing.Pro
)

type tableCase struct {
	name  string
	users []billing.User
	steps []step
	// wantUsers are the users (by id) after the steps; a user not listed
	// must not exist.
	wantUsers []billing.User
	// missing are user ids that must not be found.
	missing []string
	// wantByCustomer maps customer ids to the id of the linked user ("" for
	// none).
	wantByCustomer map[string]string
	// wantSubs are subscriptions' stored states (checked when the harness
	// can read them).
	wantSubs []billing.Subscription
}

func sub(id, cus, status string, plan billing.Plan) billing.Subscription {
	return billing.Subscription{ID: id, CustomerID: cus, Status: status, Plan: plan, PriceID: "price_" + string(plan)}
}

func tableCases() []tableCase {
	u := func(id string, plan billing.Plan, cus, subID string) billing.User {
		return billing.User{ID: id, Plan: plan, StripeCustomerID: cus, SubscriptionID: subID}
	}
	return []tableCase{
		{
			name:      "applied to the linked user",
			users:     []billing.User{u("u1", free, "cus_1", "")},
			steps:     []step{apply("evt_1", "sub_1", "cus_1", "active", pro, t100, 1, applied)},
			wantUsers: []billing.User{u("u1", pro, "cus_1", "sub_1")},
			wantSubs:  []billing.Subscription{sub("sub_1", "cus_1", "active", pro)},
		},
		{
			name:  "duplicate event id changes nothing, even with other content",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "active", basic, t100, 1, applied),
				apply("evt_1", "sub_1", "cus_1", "active", basic, t100, 1, duplicate),
				apply("evt_1", "sub_1", "cus_1", "active", pro, t200, 1, duplicate),
			},
			wantUsers: []billing.User{u("u1", basic, "cus_1", "sub_1")},
			wantSubs:  []billing.Subscription{sub("sub_1", "cus_1", "active", basic)},
		},
		{
			name:  "newer change replaces older",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "active", basic, t100, 1, applied),
				apply("evt_2", "sub_1", "cus_1", "active", pro, t200, 1, applied),
			},
			wantUsers: []billing.User{u("u1", pro, "cus_1", "sub_1")},
			wantSubs:  []billing.Subscription{sub("sub_1", "cus_1", "active", pro)},
		},
		{
			name:  "older change is stale and its event id remembered",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_2", "sub_1", "cus_1", "active", pro, t200, 1, applied),
				apply("evt_1", "sub_1", "cus_1", "active", basic, t100, 1, stale),
				apply("evt_1", "sub_1", "cus_1", "active", basic, t300, 1, duplicate),
			},
			wantUsers: []billing.User{u("u1", pro, "cus_1", "sub_1")},
			wantSubs:  []billing.Subscription{sub("sub_1", "cus_1", "active", pro)},
		},
		{
			name:  "same second, higher seq applies",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "active", pro, t100, 1, applied),
				apply("evt_2", "sub_1", "cus_1", "past_due", basic, t100.Add(900*time.Millisecond), 2, applied),
			},
			wantUsers: []billing.User{u("u1", basic, "cus_1", "sub_1")},
			wantSubs:  []billing.Subscription{sub("sub_1", "cus_1", "past_due", basic)},
		},
		{
			name:  "same second and seq from another event is a tie, not remembered",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "active", pro, t100, 2, applied),
				apply("evt_2", "sub_1", "cus_1", "active", basic, t100, 2, tie),
				apply("evt_3", "sub_1", "cus_1", "active", basic, t100, 1, tie),
				// The caller re-reads Stripe and applies with the same
				// event id and the time of the read as Seq: not a
				// duplicate, since a tie is not remembered.
				apply("evt_2", "sub_1", "cus_1", "active", basic, t100, 1_700_000_400_000, applied),
				apply("evt_2", "sub_1", "cus_1", "active", basic, t100, 1_700_000_400_000, duplicate),
			},
			wantUsers: []billing.User{u("u1", basic, "cus_1", "sub_1")},
			wantSubs:  []billing.Subscription{sub("sub_1", "cus_1", "active", basic)},
		},
		{
			name:  "same key from the same event without a remembered id is stale, not a tie",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("", "sub_1", "cus_1", "active", pro, t100, 1, applied),
				apply("", "sub_1", "cus_1", "active", pro, t100, 1, stale),
				apply("", "sub_1", "cus_1", "active", basic, t200, 1, applied),
				apply("", "sub_1", "cus_1", "active", basic, t200, 1, stale),
			},
			wantUsers: []billing.User{u("u1", basic, "cus_1", "sub_1")},
		},
		{
			name:  "canceled subscription is never revived",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "active", pro, t100, 1, applied),
				apply("evt_3", "sub_1", "cus_1", "canceled", free, t200, 1, applied),
				apply("evt_4", "sub_1", "cus_1", "active", pro, t300, 1, stale),
				apply("evt_2", "sub_1", "cus_1", "active", pro, t100, 5, stale),
			},
			wantUsers: []billing.User{u("u1", free, "cus_1", "sub_1")},
			wantSubs:  []billing.Subscription{sub("sub_1", "cus_1", "canceled", free)},
		},
		{
			name:  "terminal state replaced only by a newer terminal state",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "incomplete_expired", free, t200, 1, applied),
				apply("evt_2", "sub_1", "cus_1", "canceled", free, t100, 1, stale),
				apply("evt_3", "sub_1", "cus_1", "canceled", free, t300, 1, applied),
			},
			wantUsers: []billing.User{u("u1", free, "cus_1", "sub_1")},
			wantSubs:  []billing.Subscription{sub("sub_1", "cus_1", "canceled", free)},
		},
		{
			name:  "highest plan among the customer's subscriptions",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_a", "cus_1", "active", basic, t100, 1, applied),
				apply("evt_2", "sub_b", "cus_1", "active", pro, t100, 1, applied),
				apply("evt_3", "sub_c", "cus_1", "active", basic, t200, 1, applied),
			},
			wantUsers: []billing.User{u("u1", pro, "cus_1", "sub_b")},
		},
		{
			// The tie-break [billing.SyncStore] states: among subscriptions
			// of the highest plan, the greatest id, not the newest.
			name:  "equal plans: the greatest subscription id",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_b", "cus_1", "active", pro, t100, 1, applied),
				apply("evt_2", "sub_a", "cus_1", "active", pro, t200, 1, applied),
				apply("evt_3", "sub_c", "cus_1", "active", basic, t300, 1, applied),
			},
			wantUsers: []billing.User{u("u1", pro, "cus_1", "sub_b")},
		},
		{
			name:  "all canceled: FREE, the greatest subscription id",
			users: []billing.User{u("u1", pro, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_b", "cus_1", "canceled", free, t100, 1, applied),
				apply("evt_2", "sub_a", "cus_1", "canceled", free, t200, 1, applied),
			},
			wantUsers: []billing.User{u("u1", free, "cus_1", "sub_b")},
		},
		{
			name:  "canceling the highest falls back to the next",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_a", "cus_1", "active", basic, t100, 1, applied),
				apply("evt_2", "sub_b", "cus_1", "active", pro, t100, 1, applied),
				apply("evt_3", "sub_b", "cus_1", "canceled", free, t200, 1, applied),
			},
			wantUsers: []billing.User{u("u1", basic, "cus_1", "sub_a")},
		},
		{
			name:  "all subscriptions canceled: free",
			users: []billing.User{u("u1", pro, "cus_1", "sub_a")},
			steps: []step{
				apply("evt_1", "sub_a", "cus_1", "canceled", free, t100, 1, applied),
			},
			wantUsers: []billing.User{u("u1", free, "cus_1", "sub_a")},
		},
		{
			name: "other customers' subscriptions leave a user alone",
			users: []billing.User{
				u("u1", basic, "cus_1", ""),
				u("u2", free, "cus_2", ""),
			},
			steps: []step{
				apply("evt_1", "sub_2", "cus_2", "active", pro, t100, 1, applied),
			},
			wantUsers: []billing.User{
				u("u1", basic, "cus_1", ""),
				u("u2", pro, "cus_2", "sub_2"),
			},
			wantByCustomer: map[string]string{"cus_1": "u1", "cus_2": "u2", "cus_3": ""},
		},
		{
			name:  "subscription of an unlinked customer is kept and applied on link",
			users: []billing.User{u("u1", free, "", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "active", basic, t100, 1, applied),
				apply("evt_2", "sub_1", "cus_1", "active", pro, t200, 1, applied),
				apply("evt_0", "sub_1", "cus_1", "active", basic, t100, 0, stale),
				link("u1", "cus_1", true),
			},
			wantUsers:      []billing.User{u("u1", pro, "cus_1", "sub_1")},
			wantByCustomer: map[string]string{"cus_1": "u1"},
			wantSubs:       []billing.Subscription{sub("sub_1", "cus_1", "active", pro)},
		},
		{
			name:  "unlinked customer: user found only after the link",
			users: []billing.User{u("u1", basic, "", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "active", pro, t100, 1, applied),
			},
			wantUsers:      []billing.User{u("u1", basic, "", "")},
			wantByCustomer: map[string]string{"cus_1": ""},
		},
		{
			name:  "link without subscriptions keeps the plan",
			users: []billing.User{u("u1", basic, "", "")},
			steps: []step{
				link("u1", "cus_1", true),
			},
			wantUsers:      []billing.User{u("u1", basic, "cus_1", "")},
			wantByCustomer: map[string]string{"cus_1": "u1"},
		},
		{
			name:  "link of an unknown user",
			users: []billing.User{u("u1", free, "", "")},
			steps: []step{
				link("nobody", "cus_1", false),
			},
			wantUsers:      []billing.User{u("u1", free, "", "")},
			missing:        []string{"nobody"},
			wantByCustomer: map[string]string{"cus_1": ""},
		},
		{
			name:  "linking the same pair again is a no-op",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "active", pro, t100, 1, applied),
				link("u1", "cus_1", true),
				link("u1", "cus_1", true),
			},
			wantUsers:      []billing.User{u("u1", pro, "cus_1", "sub_1")},
			wantByCustomer: map[string]string{"cus_1": "u1"},
		},
		{
			name:  "user linked to another customer follows the new one",
			users: []billing.User{u("u1", free, "cus_1", "")},
			steps: []step{
				apply("evt_1", "sub_1", "cus_1", "active", pro, t100, 1, applied),
				apply("evt_2", "sub_2", "cus_2", "active", basic, t100, 1, applied),
				link("u1", "cus_2", true),
				apply("evt_3", "sub_1", "cus_1", "active", pro, t200, 1, applied),
			},
			wantUsers:      []billing.User{u("u1", basic, "cus_2", "sub_2")},
			wantByCustomer: map[string]string{"cus_1": "", "cus_2": "u1"},
		},
		{
			name: "customer linked to another user",
			users: []billing.User{
				u("u1", free, "cus_1", ""),
				u("u2", free, "", ""),
			},
			steps: []step{
				link("u2", "cus_1", true),
				apply("evt_1", "sub_1", "cus_1", "active", pro, t100, 1, applied),
			},
			wantUsers:      []billing.User{u("u2", pro, "cus_1", "sub_1")},
			wantByCustomer: map[string]string{"cus_1": "u2"},
		},
		{
			name:    "unknown user is not found",
			users:   []billing.User{u("u1", pro, "cus_1", "sub_1")},
			missing: []string{"u2", ""},
			wantUsers: []billing.User{
				u("u1", pro, "cus_1", "sub_1"),
			},
		},
	}
}

func runTable(t *testing.T, h Harness) {
	for _, tc := range tableCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := h.New(t, tc.users)
			for i, st := range tc.steps {
				if st.change != nil {
					got, err := s.ApplySubscription(ctx, *st.change, retain)
					if err != nil {
						t.Fatalf("step %d %v: %v", i, st, err)
					}
					if got != st.want {
						t.Errorf("step %d %v = %v, want %v", i, st, got, st.want)
					}
					continue
				}
				found, err := s.LinkCustomer(ctx, st.linkUser, st.linkCustomer)
				if err != nil {
					t.Fatalf("step %d %v: %v", i, st, err)
				}
				if found != st.wantFound {
					t.Errorf("step %d %v = found %v, want %v", i, st, found, st.wantFound)
				}
			}
			for _, want := range tc.wantUsers {
				got, found, err := s.User(ctx, want.ID)
				if err != nil || !found {
					t.Errorf("User(%q) = found %v, err %v; want found", want.ID, found, err)
					continue
				}
				if got != want {
					t.Errorf("User(%q)\n got %+v\nwant %+v", want.ID, got, want)
				}
			}
			for _, id := range tc.missing {
				if got, found, err := s.User(ctx, id); found || err != nil {
					t.Errorf("User(%q) = %+v, found %v, err %v; want not found, nil error", id, got, found, err)
				}
			}
			for cus, wantID := range tc.wantByCustomer {
				got, found, err := s.UserByCustomer(ctx, cus)
				if err != nil {
					t.Errorf("UserByCustomer(%q): %v", cus, err)
					continue
				}
				if found != (wantID != "") || got.ID != wantID {
					t.Errorf("UserByCustomer(%q) = %q, found %v; want %q", cus, got.ID, found, wantID)
				}
				if found && got.StripeCustomerID != cus {
					t.Errorf("UserByCustomer(%q) returned a user with StripeCustomerID %q", cus, got.StripeCustomerID)
				}
			}
			if read := h.subscriptionOf(s); read != nil {
				for _, want := range tc.wantSubs {
					got, found, err := read(want.ID)
					if err != nil || !found {
						t.Errorf("Subscription(%q) = found %v, err %v; want found", want.ID, found, err)
						continue
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("Subscription(%q)\n got %+v\nwant %+v", want.ID, got, want)
					}
				}
			}
		})
	}
}

// runErrors checks the calls that must fail or be cut short.
func runErrors(t *testing.T, h Harness) {
	s := h.New(t, []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"}})
	ctx := context.Background()
	for _, c := range []billing.SubscriptionChange{
		{EventID: "evt_1", Subscription: billing.Subscription{CustomerID: "cus_1", Status: "active", Plan: pro}, Created: t100},
		{EventID: "evt_2", Subscription: billing.Subscription{ID: "sub_1", Status: "active", Plan: pro}, Created: t100},
	} {
		if out, err := s.ApplySubscription(ctx, c, retain); err == nil {
			t.Errorf("ApplySubscription(%+v) = %v, nil error; want an error (subscription and customer ids are required)", c, out)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	c := billing.SubscriptionChange{EventID: "evt_3", Subscription: sub("sub_1", "cus_1", "active", pro), Created: t100}
	if out, err := s.ApplySubscription(canceled, c, retain); err == nil {
		t.Errorf("ApplySubscription with a canceled context = %v, nil error", out)
	}
	// A failed call wrote nothing: the same event applies afterwards.
	if out, err := s.ApplySubscription(ctx, c, retain); err != nil || out != applied {
		t.Errorf("ApplySubscription after the failed calls = %v, %v; want applied", out, err)
	}
	if _, _, err := s.User(canceled, "u1"); err == nil {
		t.Error("User with a canceled context: nil error")
	}
	if _, _, err := s.UserByCustomer(canceled, "cus_1"); err == nil {
		t.Error("UserByCustomer with a canceled context: nil error")
	}
	if _, err := s.LinkCustomer(canceled, "u1", "cus_2"); err == nil {
		t.Error("LinkCustomer with a canceled context: nil error")
	}
	if got, _, err := s.User(ctx, "u1"); err != nil || got.Plan != pro || got.StripeCustomerID != "cus_1" {
		t.Errorf("User(u1) after the failed calls = %+v, %v; want PRO on cus_1", got, err)
	}
}

// subscriptionReader is the read of a stored subscription that
// [billing.MemoryStore] and sqlstore.Store have.
type subscriptionReader interface {
	Subscription(ctx context.Context, id string) (billing.Subscription, bool, error)
}

// subscriptionOf returns how the cases read the stored subscriptions of s
// ([Harness.Subscription] or s's own method), nil if they cannot.
func (h Harness) subscriptionOf(s Store) func(id string) (billing.Subscription, bool, error) {
	if h.Subscription != nil {
		return func(id string) (billing.Subscription, bool, error) { return h.Subscription(s, id) }
	}
	if r, ok := s.(subscriptionReader); ok {
		return func(id string) (billing.Subscription, bool, error) { return r.Subscription(context.Background(), id) }
	}
	return nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// outcomes counts outcomes per event id, safely from many goroutines.
type outcomes struct {
	mu sync.Mutex
	m  map[string]map[billing.Outcome]int
}

func (o *outcomes) add(evt string, out billing.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[string]map[billing.Outcome]int)
	}
	if o.m[evt] == nil {
		o.m[evt] = make(map[billing.Outcome]int)
	}
	o.m[evt][out]++
}

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1|1))
}
