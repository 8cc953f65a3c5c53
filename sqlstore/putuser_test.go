package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/sqlstore"
	"github.com/google/go-cmp/cmp"
)

// putStore is what the PutUser tests use of a store: sqlstore.Store and
// billing.MemoryStore both have it.
type putStore interface {
	billing.UserStore
	billing.SyncStore
	PutUser(ctx context.Context, u billing.User) error
}

var (
	_ putStore = (*sqlstore.Store)(nil)
	_ putStore = (*billing.MemoryStore)(nil)
)

// putTarget makes stores for the PutUser tests.
type putTarget struct {
	// noSubColumn: the users table has no subscription id column, so users
	// read back have an empty SubscriptionID.
	noSubColumn bool
	// stores returns n stores on one new, empty set of data, as n
	// replicas of an application see it (the memory store: the same store
	// n times).
	stores func(t *testing.T, n int) []putStore
}

// runPutTargets runs f as a subtest for each kind of store: billing.MemoryStore,
// then PostgreSQL and SQLite, each with the store's own users table and
// with an application's table that has no subscription id column. One
// PostgreSQL database serves all of f's cases, each with its own table
// prefix; SQLite gets a file per case.
func runPutTargets(t *testing.T, f func(t *testing.T, tg putTarget)) {
	t.Run("memory", func(t *testing.T) {
		f(t, putTarget{stores: func(t *testing.T, n int) []putStore {
			m := billing.NewMemoryStore()
			out := make([]putStore, n)
			for i := range out {
				out[i] = m
			}
			return out
		}})
	})
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			dsn := func(t *testing.T) string { return e.database(t) }
			if e.dialect == sqlstore.Postgres {
				shared := e.database(t)
				dsn = func(*testing.T) string { return shared }
			}
			replicas := func(t *testing.T, n int, appTable bool) []putStore {
				d := dsn(t)
				n0 := prefixSeq.Add(1)
				opts := []sqlstore.Option{sqlstore.WithTablePrefix(fmt.Sprintf("t%d_", n0))}
				dbs := make([]*sql.DB, n)
				for i := range dbs {
					dbs[i] = e.open(t, d)
				}
				if appTable {
					table := fmt.Sprintf("app_users_%d", n0)
					if _, err := dbs[0].Exec(fmt.Sprintf(`CREATE TABLE %s (
					id TEXT PRIMARY KEY,
					tier TEXT NOT NULL DEFAULT 'FREE',
					stripe_cus TEXT)`, table)); err != nil {
						t.Fatal(err)
					}
					opts = append(opts, sqlstore.WithUsersTable(sqlstore.UsersTable{Name: table, ID: "id", Plan: "tier", CustomerID: "stripe_cus"}))
				}
				out := make([]putStore, n)
				for i, db := range dbs {
					out[i] = newStore(t, db, e.dialect, nil, opts...)
				}
				return out
			}
			t.Run("store-table", func(t *testing.T) {
				f(t, putTarget{stores: func(t *testing.T, n int) []putStore { return replicas(t, n, false) }})
			})
			t.Run("app-table-without-subscription-column", func(t *testing.T) {
				f(t, putTarget{noSubColumn: true, stores: func(t *testing.T, n int) []putStore { return replicas(t, n, true) }})
			})
		})
	}
}

// putT0 is the Created time of the first subscription change of a case.
var putT0 = time.Unix(1_700_000_000, 0)

// applyAll applies subs to s in order, one second apart, each as a new
// event, and fails t unless each is Applied.
func applyAll(t *testing.T, s putStore, subs []billing.Subscription) {
	t.Helper()
	for i, sub := range subs {
		c := billing.SubscriptionChange{
			EventID:      fmt.Sprintf("evt_put_%d_%s", i, sub.ID),
			Subscription: sub,
			Created:      putT0.Add(time.Duration(i) * time.Second),
			Seq:          2,
		}
		out, err := s.ApplySubscription(context.Background(), c, time.Hour)
		if err != nil || out != billing.Applied {
			t.Fatalf("ApplySubscription(%s %s) = %v, %v; want Applied", sub.ID, sub.Status, out, err)
		}
	}
}

func putSub(id, customer, status string, plan billing.Plan) billing.Subscription {
	return billing.Subscription{ID: id, CustomerID: customer, Status: status, Plan: plan, PriceID: "price_" + string(plan)}
}

// TestPutUser checks that PutUser, the seeding write, never sets a plan
// over the stored subscriptions: a user whose customer has stored
// subscriptions gets the plan and subscription id they determine (the
// highest plan, the greatest id among that plan's subscriptions) whatever
// the seed says, in the same transaction; a user whose customer has none,
// or who has no customer, gets the plan the seed gives; and a customer put
// on another user is unlinked from the first. On PostgreSQL, SQLite (the
// store's users table and an application's table without a subscription
// column) and billing.MemoryStore.
func TestPutUser(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		before []billing.User         // put first
		subs   []billing.Subscription // then applied, in order
		put    billing.User           // the write under test
		want   []billing.User         // User(id) afterwards
		// unlinked users must have no customer afterwards (their plan is
		// left alone, as LinkCustomer leaves it).
		unlinked []string
		// linked maps customer ids to the user UserByCustomer must
		// return afterwards ("": none).
		linked map[string]string
	}{{
		name: "seed of a customer with subscriptions gets the derived plan",
		subs: []billing.Subscription{
			putSub("sub_a", "cus_1", "active", billing.Basic),
			putSub("sub_b", "cus_1", "active", billing.Pro),
			putSub("sub_c", "cus_1", "past_due", billing.Pro),
			putSub("sub_z", "cus_1", "canceled", billing.Free),
			putSub("sub_x", "cus_other", "active", billing.Basic),
		},
		put:    billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"},
		want:   []billing.User{{ID: "u1", Plan: billing.Pro, StripeCustomerID: "cus_1", SubscriptionID: "sub_c"}},
		linked: map[string]string{"cus_1": "u1", "cus_other": ""},
	}, {
		name:   "seeding a synced user again keeps the synced plan",
		before: []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"}},
		subs:   []billing.Subscription{putSub("sub_a", "cus_1", "active", billing.Pro)},
		put:    billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"},
		want:   []billing.User{{ID: "u1", Plan: billing.Pro, StripeCustomerID: "cus_1", SubscriptionID: "sub_a"}},
		linked: map[string]string{"cus_1": "u1"},
	}, {
		name: "a seed that says more than the subscriptions gets what they grant",
		subs: []billing.Subscription{
			putSub("sub_a", "cus_1", "canceled", billing.Free),
			putSub("sub_b", "cus_1", "unpaid", billing.Free),
		},
		put:  billing.User{ID: "u1", Plan: billing.Pro, StripeCustomerID: "cus_1", SubscriptionID: "sub_seed"},
		want: []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1", SubscriptionID: "sub_b"}},
	}, {
		name: "equal plans: the greatest subscription id",
		subs: []billing.Subscription{
			putSub("sub_b", "cus_1", "active", billing.Basic),
			putSub("sub_a", "cus_1", "trialing", billing.Basic),
		},
		put:  billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"},
		want: []billing.User{{ID: "u1", Plan: billing.Basic, StripeCustomerID: "cus_1", SubscriptionID: "sub_b"}},
	}, {
		name:   "customer without stored subscriptions: the given plan",
		subs:   []billing.Subscription{putSub("sub_x", "cus_other", "active", billing.Pro)},
		put:    billing.User{ID: "u1", Plan: billing.Basic, StripeCustomerID: "cus_1", SubscriptionID: "sub_given"},
		want:   []billing.User{{ID: "u1", Plan: billing.Basic, StripeCustomerID: "cus_1", SubscriptionID: "sub_given"}},
		linked: map[string]string{"cus_1": "u1", "cus_other": ""},
	}, {
		name: "user without a customer: the given plan",
		subs: []billing.Subscription{putSub("sub_x", "cus_other", "active", billing.Basic)},
		put:  billing.User{ID: "u1", Plan: billing.Pro},
		want: []billing.User{{ID: "u1", Plan: billing.Pro}},
	}, {
		name:     "a customer put on another user is unlinked from the first",
		before:   []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"}},
		subs:     []billing.Subscription{putSub("sub_a", "cus_1", "active", billing.Pro)},
		put:      billing.User{ID: "u2", Plan: billing.Free, StripeCustomerID: "cus_1"},
		want:     []billing.User{{ID: "u2", Plan: billing.Pro, StripeCustomerID: "cus_1", SubscriptionID: "sub_a"}},
		unlinked: []string{"u1"},
		linked:   map[string]string{"cus_1": "u2"},
	}, {
		name:   "a user put with another customer gets that customer's plan",
		before: []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"}},
		subs: []billing.Subscription{
			putSub("sub_a", "cus_1", "active", billing.Pro),
			putSub("sub_b", "cus_2", "active", billing.Basic),
		},
		put:    billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_2"},
		want:   []billing.User{{ID: "u1", Plan: billing.Basic, StripeCustomerID: "cus_2", SubscriptionID: "sub_b"}},
		linked: map[string]string{"cus_1": "", "cus_2": "u1"},
	}, {
		name:   "a user put with a customer without subscriptions: the given plan",
		before: []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"}},
		subs:   []billing.Subscription{putSub("sub_a", "cus_1", "active", billing.Pro)},
		put:    billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_new"},
		want:   []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_new"}},
		linked: map[string]string{"cus_1": "", "cus_new": "u1"},
	}, {
		name:   "a user put without its customer: the given plan, customer unlinked",
		before: []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"}},
		subs:   []billing.Subscription{putSub("sub_a", "cus_1", "active", billing.Pro)},
		put:    billing.User{ID: "u1", Plan: billing.Basic},
		want:   []billing.User{{ID: "u1", Plan: billing.Basic}},
		linked: map[string]string{"cus_1": ""},
	}}
	runPutTargets(t, func(t *testing.T, tg putTarget) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := tg.stores(t, 1)[0]
				for _, u := range tc.before {
					if err := s.PutUser(ctx, u); err != nil {
						t.Fatal(err)
					}
				}
				applyAll(t, s, tc.subs)
				if err := s.PutUser(ctx, tc.put); err != nil {
					t.Fatalf("PutUser(%+v): %v", tc.put, err)
				}
				for _, want := range tc.want {
					if tg.noSubColumn {
						want.SubscriptionID = ""
					}
					got, found, err := s.User(ctx, want.ID)
					if err != nil || !found {
						t.Fatalf("User(%s) = %v, %v", want.ID, found, err)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("User(%s) after PutUser(%+v) (-want +got):\n%s", want.ID, tc.put, diff)
					}
				}
				for _, id := range tc.unlinked {
					if got, _, err := s.User(ctx, id); err != nil || got.StripeCustomerID != "" {
						t.Errorf("User(%s) = %+v, %v; want it unlinked (no customer)", id, got, err)
					}
				}
				for cus, want := range tc.linked {
					got, found, err := s.UserByCustomer(ctx, cus)
					switch {
					case err != nil:
						t.Errorf("UserByCustomer(%s): %v", cus, err)
					case want == "" && found:
						t.Errorf("UserByCustomer(%s) = %s, want none", cus, got.ID)
					case want != "" && (!found || got.ID != want):
						t.Errorf("UserByCustomer(%s) = %q (found=%v), want %s", cus, got.ID, found, want)
					}
				}
			})
		}
	})
}

// TestPutUserWhileSyncing re-seeds a user (plan FREE) from three replicas
// in a loop while subscription changes of its customer are applied through
// them: after each change the user's plan must be the one the change
// grants, whatever seeding happened meanwhile. A PutUser that set the
// seed's plan and derived it in a separate step, or not at all, leaves
// FREE visible.
func TestPutUserWhileSyncing(t *testing.T) {
	ctx := context.Background()
	changes := 30
	if raceDetector {
		changes = 15
	}
	seed := billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"}
	runPutTargets(t, func(t *testing.T, tg putTarget) {
		stores := tg.stores(t, 3)
		if err := stores[0].PutUser(ctx, seed); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var (
			wg    sync.WaitGroup
			seeds [3]int
			errc  = make(chan error, len(stores))
		)
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					if err := s.PutUser(ctx, seed); err != nil {
						errc <- err
						return
					}
					seeds[i]++
					time.Sleep(time.Millisecond)
				}
			}()
		}
		for i := range changes {
			plan := billing.Basic
			if i%2 == 1 {
				plan = billing.Pro
			}
			c := billing.SubscriptionChange{
				EventID:      fmt.Sprintf("evt_sync_%d", i),
				Subscription: putSub("sub_1", "cus_1", "active", plan),
				Created:      putT0.Add(time.Duration(i) * time.Second),
				Seq:          2,
			}
			if out, err := stores[i%3].ApplySubscription(ctx, c, time.Hour); err != nil || out != billing.Applied {
				t.Fatalf("change %d: %v, %v; want Applied", i, out, err)
			}
			want := billing.User{ID: "u1", Plan: plan, StripeCustomerID: "cus_1", SubscriptionID: "sub_1"}
			if tg.noSubColumn {
				want.SubscriptionID = ""
			}
			// Let some seeding happen after the change.
			time.Sleep(3 * time.Millisecond)
			got, _, err := stores[(i+1)%3].User(ctx, "u1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after change %d (%s), with seeding going on (-want +got):\n%s", i, plan, diff)
			}
		}
		close(done)
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Errorf("PutUser while syncing: %v", err)
		}
		if n := seeds[0] + seeds[1] + seeds[2]; n < changes {
			t.Errorf("only %d seeds ran during %d changes: the test did not exercise seeding", n, changes)
		}
	})
}
