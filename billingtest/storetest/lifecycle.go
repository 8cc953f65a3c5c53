package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
)

// LifecycleStore is what [RunLifecycle] covers: a [Store] that also keeps
// lifecycle facts and features, reads accounts and records plan changes in
// an outbox, as [billing.MemoryStore] and sqlstore.Store do.
type LifecycleStore interface {
	Store
	billing.FeatureStore
	billing.AccountStore
	billing.Outbox
}

// RunLifecycle runs the contract of the subscription lifecycle on the
// stores of h, which must be [LifecycleStore]s:
//
//   - Facts: a subscription's items and lifecycle facts are stored with its
//     state and obey its order (a stale or tied change never overwrites
//     them); [billing.AccountStore].Account returns them.
//   - Features: [billing.FeatureStore].ApplyFeatures answers Duplicate,
//     Stale, Tie and Applied in the order of changes, keyed by customer,
//     and keeps the features of a customer no user is linked to yet.
//   - Account: the user, the subscription the plan comes from and the
//     customer's features; none of them for an unknown user.
//   - Outbox: one [billing.PlanChange] per effective change of a user's
//     view (none for a duplicate, stale or no-op change, none for
//     seeding), with the views before and after and the cause; claims per
//     user oldest first, leases that expire, releases that wait,
//     completions, and a lost claim whose complete or release does
//     nothing.
//   - Replicas: several claimers (on the stores of [Harness.Replicas] when
//     set, else on one store) deliver every change once, one at a time per
//     user, in commit order, while the changes are being applied.
//
// Times are whole seconds in UTC, as Stripe's events carry them; a store
// may keep no finer resolution. The lease and retry cases wait on the
// wall clock (under a second each): the stores' clocks must be real time.
func RunLifecycle(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("storetest: Harness.New is required")
	}
	newStore := func(t *testing.T, users []billing.User) LifecycleStore {
		t.Helper()
		s := h.New(t, users)
		ls, ok := s.(LifecycleStore)
		if !ok {
			t.Fatalf("storetest: RunLifecycle needs a store that is also a billing.FeatureStore, billing.AccountStore and billing.Outbox; %T is not", s)
		}
		return ls
	}
	readSub := func(t *testing.T, s Store, id string) (billing.Subscription, bool) {
		t.Helper()
		var (
			sub   billing.Subscription
			found bool
			err   error
		)
		r, ok := s.(interface {
			Subscription(ctx context.Context, id string) (billing.Subscription, bool, error)
		})
		switch {
		case h.Subscription != nil:
			sub, found, err = h.Subscription(s, id)
		case ok:
			sub, found, err = r.Subscription(context.Background(), id)
		default:
			t.Skip("storetest: the stored subscriptions cannot be read: set Harness.Subscription")
		}
		if err != nil {
			t.Fatalf("Subscription(%s): %v", id, err)
		}
		return sub, found
	}
	t.Run("Facts", func(t *testing.T) { lcFacts(t, newStore, readSub) })
	t.Run("Features", func(t *testing.T) { lcFeatures(t, newStore) })
	t.Run("Account", func(t *testing.T) { lcAccount(t, newStore) })
	t.Run("Outbox/Changes", func(t *testing.T) { lcChanges(t, newStore) })
	t.Run("Outbox/Claims", func(t *testing.T) { lcClaims(t, newStore) })
	t.Run("Outbox/Replicas", func(t *testing.T) {
		stores := func(t *testing.T, n int, users []billing.User) []LifecycleStore {
			if h.Replicas == nil {
				s := newStore(t, users)
				out := make([]LifecycleStore, n)
				for i := range out {
					out[i] = s
				}
				return out
			}
			var out []LifecycleStore
			for _, s := range h.Replicas(t, n, users) {
				ls, ok := s.(LifecycleStore)
				if !ok {
					t.Fatalf("storetest: Harness.Replicas returned a %T, not a LifecycleStore", s)
				}
				out = append(out, ls)
			}
			return out
		}
		lcReplicas(t, stores)
	})
}

// lcT0 is the base time of the lifecycle cases, in whole seconds.
var lcT0 = time.Unix(1_700_000_000, 0).UTC()

// lcAt is lcT0 plus n seconds.
func lcAt(n int) time.Time { return lcT0.Add(time.Duration(n) * time.Second) }

const lcRetain = 72 * time.Hour

// lcDay is a day.
const lcDay = 24 * time.Hour

type lcNewStore func(t *testing.T, users []billing.User) LifecycleStore

// lcApply applies c and fails t unless the outcome is want.
func lcApply(t *testing.T, s LifecycleStore, c billing.SubscriptionChange, want billing.Outcome) {
	t.Helper()
	got, err := s.ApplySubscription(context.Background(), c, lcRetain)
	if err != nil {
		t.Fatalf("ApplySubscription(%s %s %s @%d/%d): %v", c.EventID, c.Subscription.ID, c.Subscription.Status, c.Created.Unix(), c.Seq, err)
	}
	if got != want {
		t.Errorf("ApplySubscription(%s %s %s @%d/%d) = %v, want %v", c.EventID, c.Subscription.ID, c.Subscription.Status, c.Created.Unix(), c.Seq, got, want)
	}
}

// lcApplyFeatures applies c and fails t unless the outcome is want.
func lcApplyFeatures(t *testing.T, s LifecycleStore, c billing.FeaturesChange, want billing.Outcome) {
	t.Helper()
	got, err := s.ApplyFeatures(context.Background(), c, lcRetain)
	if err != nil {
		t.Fatalf("ApplyFeatures(%s %s %v @%d/%d): %v", c.EventID, c.CustomerID, c.Features, c.Created.Unix(), c.Seq, err)
	}
	if got != want {
		t.Errorf("ApplyFeatures(%s %s %v @%d/%d) = %v, want %v", c.EventID, c.CustomerID, c.Features, c.Created.Unix(), c.Seq, got, want)
	}
}

// lcChange is a change of subscription sub at second n (Seq 2, as an
// event of an active status).
func lcChange(evt string, sub billing.Subscription, n int) billing.SubscriptionChange {
	return billing.SubscriptionChange{
		EventID: evt, Subscription: sub, Created: lcAt(n), Seq: 2,
		Cause: billing.Cause{Kind: billing.CauseWebhook, EventID: evt, EventType: "customer.subscription.updated"},
	}
}

// lcSameSub reports whether two subscriptions are the same state (times
// compared with Equal, no items and empty items alike).
func lcSameSub(a, b billing.Subscription) bool {
	return a.ID == b.ID && a.CustomerID == b.CustomerID && a.Status == b.Status && a.Plan == b.Plan && a.PriceID == b.PriceID &&
		slices.Equal(a.Items, b.Items) && a.CancelAtPeriodEnd == b.CancelAtPeriodEnd &&
		a.CancelAt.Equal(b.CancelAt) && a.CanceledAt.Equal(b.CanceledAt) && a.EndedAt.Equal(b.EndedAt) &&
		a.CurrentPeriodStart.Equal(b.CurrentPeriodStart) && a.CurrentPeriodEnd.Equal(b.CurrentPeriodEnd) && a.TrialEnd.Equal(b.TrialEnd)
}

// lcAccountOf returns the account of userID, failing t if it is unknown.
func lcAccountOf(t *testing.T, s LifecycleStore, userID string) billing.Account {
	t.Helper()
	a, found, err := s.Account(context.Background(), userID)
	if err != nil || !found {
		t.Fatalf("Account(%s) = found %v, %v; want found", userID, found, err)
	}
	return a
}

func lcFacts(t *testing.T, newStore lcNewStore, readSub func(*testing.T, Store, string) (billing.Subscription, bool)) {
	s := newStore(t, []billing.User{{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"}})
	v1 := billing.Subscription{
		ID: "sub_1", CustomerID: "cus_1", Status: "trialing", Plan: billing.Pro, PriceID: "price_pro",
		Items: []billing.SubscriptionItem{
			{PriceID: "price_pro", LookupKey: "pro_monthly", ProductID: "prod_pro", Quantity: 1},
			{PriceID: "price_seat", ProductID: "prod_seat", Quantity: 3},
		},
		CurrentPeriodStart: lcT0, CurrentPeriodEnd: lcT0.Add(14 * lcDay), TrialEnd: lcT0.Add(14 * lcDay),
	}
	v2 := v1
	v2.Status, v2.Items = "active", v2.Items[:1]
	v2.TrialEnd = lcT0.Add(14 * lcDay)
	v2.CurrentPeriodStart, v2.CurrentPeriodEnd = lcT0.Add(14*lcDay), lcT0.Add(44*lcDay)
	v2.CancelAtPeriodEnd, v2.CancelAt, v2.CanceledAt = true, lcT0.Add(44*lcDay), lcT0.Add(20*lcDay)
	v3 := v2
	v3.Status, v3.Plan, v3.Items, v3.EndedAt = "canceled", billing.Free, nil, lcT0.Add(44*lcDay)
	older := v1
	older.Status, older.Plan, older.CurrentPeriodEnd, older.TrialEnd = "active", billing.Basic, lcT0.Add(99*lcDay), time.Time{}

	check := func(step string, want billing.Subscription) {
		t.Helper()
		got, found := readSub(t, s, want.ID)
		if !found || !lcSameSub(got, want) {
			t.Errorf("%s: Subscription(%s) = %+v (found %v)\nwant %+v", step, want.ID, got, found, want)
		}
		a := lcAccountOf(t, s, "u1")
		if a.Subscription == nil || !lcSameSub(*a.Subscription, want) {
			t.Errorf("%s: Account(u1).Subscription = %+v, want %+v", step, a.Subscription, want)
		}
		if wantView := (billing.Account{User: a.User, Subscription: &want}).View(); !a.View().Equal(wantView) {
			t.Errorf("%s: Account(u1).View() = %+v, want %+v", step, a.View(), wantView)
		}
	}
	lcApply(t, s, lcChange("evt_2", v1, 200), billing.Applied)
	check("trialing", v1)
	lcApply(t, s, lcChange("evt_1", older, 100), billing.Stale)
	check("after an older change", v1)
	tied := lcChange("evt_2b", older, 200)
	lcApply(t, s, tied, billing.Tie)
	check("after a tie", v1)
	lcApply(t, s, lcChange("evt_3", v2, 300), billing.Applied)
	check("canceling at the period end", v2)
	if v := lcAccountOf(t, s, "u1").View(); !v.EndsAt.Equal(v2.CurrentPeriodEnd) || !v.Access || !v.CancelAtPeriodEnd {
		t.Errorf("view of a subscription canceling at the period end = %+v; want access until %v", v, v2.CurrentPeriodEnd)
	}
	ended := lcChange("evt_4", v3, 400)
	ended.Seq = 3
	lcApply(t, s, ended, billing.Applied)
	check("ended", v3)
	lcApply(t, s, lcChange("evt_5", v2, 500), billing.Stale)
	check("after a newer change of an ended subscription", v3)
}

func lcFeatures(t *testing.T, newStore lcNewStore) {
	ctx := context.Background()
	s := newStore(t, []billing.User{
		{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"},
		{ID: "u2", Plan: billing.Free},
	})
	fc := func(evt, cus string, n int, seq int64, keys ...string) billing.FeaturesChange {
		return billing.FeaturesChange{EventID: evt, CustomerID: cus, Features: keys, Created: lcAt(n), Seq: seq,
			Cause: billing.Cause{Kind: billing.CauseWebhook, EventID: evt, EventType: "entitlements.active_entitlement_summary.updated"}}
	}
	features := func(user string, want ...string) {
		t.Helper()
		a := lcAccountOf(t, s, user)
		if !slices.Equal(a.Features, want) && !(len(a.Features) == 0 && len(want) == 0) {
			t.Errorf("Account(%s).Features = %q, want %q", user, a.Features, want)
		}
		if v := a.View(); !slices.Equal(v.Features, want) {
			t.Errorf("Account(%s).View().Features = %q, want %q", user, v.Features, want)
		}
	}
	// cus_2 has no user yet: stored all the same.
	lcApplyFeatures(t, s, fc("evt_f1", "cus_2", 100, 1, "b", "a", "a"), billing.Applied)
	lcApplyFeatures(t, s, fc("evt_f1", "cus_2", 100, 1, "b", "a", "a"), billing.Duplicate)
	lcApplyFeatures(t, s, fc("evt_f1", "cus_2", 300, 1, "z"), billing.Duplicate)
	lcApplyFeatures(t, s, fc("evt_f0", "cus_2", 50, 1, "old"), billing.Stale)
	lcApplyFeatures(t, s, fc("evt_f0", "cus_2", 300, 1, "old"), billing.Duplicate) // remembered though stale
	// Same second, same or lower seq, another event: a tie, not remembered.
	lcApplyFeatures(t, s, fc("evt_f2", "cus_2", 100, 1, "c"), billing.Tie)
	lcApplyFeatures(t, s, fc("evt_f3", "cus_2", 100, 0, "c"), billing.Tie)
	if found, err := s.LinkCustomer(ctx, "u2", "cus_2"); err != nil || !found {
		t.Fatalf("LinkCustomer(u2, cus_2) = %v, %v", found, err)
	}
	features("u2", "a", "b")
	// The tie resolved by a read: the same event id, Seq the read's time.
	lcApplyFeatures(t, s, fc("evt_f2", "cus_2", 100, lcAt(101).UnixNano(), "d", "c"), billing.Applied)
	lcApplyFeatures(t, s, fc("evt_f2", "cus_2", 100, lcAt(101).UnixNano(), "d", "c"), billing.Duplicate)
	features("u2", "c", "d")
	// A read (no event id) at a later second, twice: applied, then stale.
	lcApplyFeatures(t, s, fc("", "cus_2", 200, 0, "x"), billing.Applied)
	lcApplyFeatures(t, s, fc("", "cus_2", 200, 0, "y"), billing.Stale)
	features("u2", "x")
	// The whole list replaces the stored one, also with none.
	lcApplyFeatures(t, s, fc("evt_f4", "cus_2", 300, 1), billing.Applied)
	features("u2")
	features("u1")
	lcApplyFeatures(t, s, fc("evt_f5", "cus_1", 300, 1, "seats"), billing.Applied)
	features("u1", "seats")
	if _, err := s.ApplyFeatures(ctx, billing.FeaturesChange{EventID: "evt_f6", Features: []string{"x"}, Created: lcAt(400), Seq: 1}, lcRetain); err == nil {
		t.Error("ApplyFeatures without a customer id: nil error")
	}
}

func lcAccount(t *testing.T, newStore lcNewStore) {
	ctx := context.Background()
	s := newStore(t, []billing.User{
		{ID: "u0", Plan: billing.Basic},
		{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"},
		{ID: "u2", Plan: billing.Free},
	})
	if a, found, err := s.Account(ctx, "nobody"); err != nil || found {
		t.Errorf("Account(nobody) = %+v, %v, %v; want not found, nil error", a, found, err)
	}
	a := lcAccountOf(t, s, "u0")
	if a.User.ID != "u0" || a.User.Plan != billing.Basic || a.Subscription != nil || len(a.Features) != 0 {
		t.Errorf("Account(u0) = %+v; want the user only", a)
	}
	if v := a.View(); v.Plan != billing.Basic || !v.Access || v.Status != "" {
		t.Errorf("Account(u0).View() = %+v; want BASIC with access and no status", v)
	}
	sa := billing.Subscription{ID: "sub_a", CustomerID: "cus_1", Status: "active", Plan: billing.Basic, CurrentPeriodEnd: lcAt(1000)}
	sb := billing.Subscription{ID: "sub_b", CustomerID: "cus_1", Status: "active", Plan: billing.Pro, CurrentPeriodEnd: lcAt(2000)}
	sc := billing.Subscription{ID: "sub_c", CustomerID: "cus_1", Status: "past_due", Plan: billing.Pro, CurrentPeriodEnd: lcAt(3000)}
	for i, sub := range []billing.Subscription{sa, sb, sc} {
		lcApply(t, s, lcChange(fmt.Sprintf("evt_%d", i), sub, 100), billing.Applied)
	}
	lcApplyFeatures(t, s, billing.FeaturesChange{EventID: "evt_f", CustomerID: "cus_1", Features: []string{"api", "sso"}, Created: lcAt(100), Seq: 1}, billing.Applied)
	a = lcAccountOf(t, s, "u1")
	u, _, err := s.User(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if a.User != u || u.SubscriptionID != "sub_c" || a.Subscription == nil || !lcSameSub(*a.Subscription, sc) || !slices.Equal(a.Features, []string{"api", "sso"}) {
		t.Errorf("Account(u1) = %+v (subscription %+v); want user %+v, subscription sub_c (the highest plan, the greatest id), features api, sso", a, a.Subscription, u)
	}
	if v := a.View(); v.Plan != billing.Pro || !v.PaymentProblem || v.Status != "past_due" || !v.HasFeature("sso") {
		t.Errorf("Account(u1).View() = %+v; want PRO, past_due, a payment problem, feature sso", v)
	}
	// The customer moves to u2: u1 keeps its plan but no longer has the
	// subscription nor the features.
	if found, err := s.LinkCustomer(ctx, "u2", "cus_1"); err != nil || !found {
		t.Fatalf("LinkCustomer(u2, cus_1) = %v, %v", found, err)
	}
	a = lcAccountOf(t, s, "u1")
	if a.User.StripeCustomerID != "" || a.Subscription != nil || len(a.Features) != 0 {
		t.Errorf("Account(u1) after its customer moved = %+v; want no customer, subscription or features", a)
	}
	a = lcAccountOf(t, s, "u2")
	if a.User.Plan != billing.Pro || a.Subscription == nil || a.Subscription.ID != "sub_c" || !slices.Equal(a.Features, []string{"api", "sso"}) {
		t.Errorf("Account(u2) after the link = %+v; want PRO from sub_c with features api, sso", a)
	}
}

// lcDrain claims, records and completes changes until none is left to
// claim, and returns them in delivery order.
func lcDrain(t *testing.T, s LifecycleStore) []billing.PlanChange {
	t.Helper()
	var out []billing.PlanChange
	for range 100 {
		cs, err := s.ClaimChanges(context.Background(), 100, time.Minute)
		if err != nil {
			t.Fatalf("ClaimChanges: %v", err)
		}
		if len(cs) == 0 {
			return out
		}
		for _, c := range cs {
			out = append(out, c.PlanChange)
			if err := s.CompleteChange(context.Background(), c); err != nil {
				t.Fatalf("CompleteChange(%s): %v", c.ID, err)
			}
		}
	}
	t.Fatal("changes still claimable after 100 rounds")
	return nil
}

// lcWant is an expected plan change.
type lcWant struct {
	user          string
	before, after billing.View
	cause         billing.CauseKind
}

func lcChanges(t *testing.T, newStore lcNewStore) {
	ctx := context.Background()
	s := newStore(t, []billing.User{
		{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"},
		{ID: "u2", Plan: billing.Free},
		{ID: "u3", Plan: billing.Free, StripeCustomerID: "cus_3"},
	})
	sub1 := billing.Subscription{ID: "sub_1", CustomerID: "cus_1", Status: "active", Plan: billing.Pro, PriceID: "price_pro",
		CurrentPeriodStart: lcT0, CurrentPeriodEnd: lcT0.Add(30 * lcDay)}
	u1 := billing.User{ID: "u1", Plan: billing.Pro, StripeCustomerID: "cus_1", SubscriptionID: "sub_1"}
	free := billing.View{Plan: billing.Free}
	pro := billing.Account{User: u1, Subscription: &sub1}.View()
	proF := billing.Account{User: u1, Subscription: &sub1, Features: []string{"f1"}}.View()

	lcApply(t, s, lcChange("evt_1", sub1, 100), billing.Applied)   // u1: FREE -> PRO
	lcApply(t, s, lcChange("evt_1", sub1, 100), billing.Duplicate) // none
	older := sub1
	older.Plan = billing.Basic
	lcApply(t, s, lcChange("evt_0", older, 50), billing.Stale)                                                                                          // none
	lcApply(t, s, lcChange("evt_1b", older, 100), billing.Tie)                                                                                          // none
	lcApply(t, s, lcChange("evt_2", sub1, 200), billing.Applied)                                                                                        // the same state: none
	lcApply(t, s, lcChange("evt_9", billing.Subscription{ID: "sub_9", CustomerID: "cus_9", Status: "active", Plan: billing.Pro}, 100), billing.Applied) // no user: none
	if p, ok := s.(interface {
		PutUser(ctx context.Context, u billing.User) error
	}); ok {
		if err := p.PutUser(ctx, billing.User{ID: "u4", Plan: billing.Pro}); err != nil {
			t.Fatal(err)
		}
		if err := p.PutUser(ctx, billing.User{ID: "u3", Plan: billing.Basic, StripeCustomerID: "cus_3"}); err != nil {
			t.Fatal(err)
		}
	}
	feat := billing.FeaturesChange{EventID: "evt_f1", CustomerID: "cus_1", Features: []string{"f1"}, Created: lcAt(100), Seq: 1,
		Cause: billing.Cause{Kind: billing.CauseWebhook, EventID: "evt_f1", EventType: "entitlements.active_entitlement_summary.updated"}}
	lcApplyFeatures(t, s, feat, billing.Applied)   // u1: features
	lcApplyFeatures(t, s, feat, billing.Duplicate) // none
	// u2 takes cus_1: u2 gets PRO and the features, u1 loses the
	// subscription and the features but keeps its plan.
	if found, err := s.LinkCustomer(ctx, "u2", "cus_1"); err != nil || !found {
		t.Fatalf("LinkCustomer(u2, cus_1) = %v, %v", found, err)
	}
	if found, err := s.LinkCustomer(ctx, "u2", "cus_1"); err != nil || !found { // none
		t.Fatalf("LinkCustomer(u2, cus_1) again = %v, %v", found, err)
	}
	u2 := billing.User{ID: "u2", Plan: billing.Pro, StripeCustomerID: "cus_1", SubscriptionID: "sub_1"}
	wants := []lcWant{
		{"u1", free, pro, billing.CauseWebhook},
		{"u1", pro, proF, billing.CauseWebhook},
		{"u1", proF, billing.View{Plan: billing.Pro, Access: true}, billing.CauseCustomerLinked},
		{"u2", free, billing.Account{User: u2, Subscription: &sub1, Features: []string{"f1"}}.View(), billing.CauseCustomerLinked},
	}
	got := lcDrain(t, s)
	lcCheckChanges(t, got, wants)
	for _, c := range got {
		if c.Cause.Kind == billing.CauseWebhook && (c.Cause.EventID == "" || c.Cause.EventType == "") {
			t.Errorf("change %s: cause %+v lacks the event", c.ID, c.Cause)
		}
	}
}

// lcCheckChanges compares the delivered changes with wants, user by user in
// order: the views before and after, the cause's kind, a unique id and a
// commit time.
func lcCheckChanges(t *testing.T, got []billing.PlanChange, wants []lcWant) {
	t.Helper()
	byUser := map[string][]billing.PlanChange{}
	ids := map[string]bool{}
	for _, c := range got {
		byUser[c.UserID] = append(byUser[c.UserID], c)
		if c.ID == "" || ids[c.ID] {
			t.Errorf("change %+v: empty or repeated id", c)
		}
		ids[c.ID] = true
		if c.At.IsZero() {
			t.Errorf("change %s: no commit time", c.ID)
		}
	}
	wantBy := map[string][]lcWant{}
	for _, w := range wants {
		wantBy[w.user] = append(wantBy[w.user], w)
	}
	for user, ws := range wantBy {
		cs := byUser[user]
		if len(cs) != len(ws) {
			t.Errorf("user %s: %d changes, want %d:\n got %+v\nwant %+v", user, len(cs), len(ws), cs, ws)
			continue
		}
		for i, w := range ws {
			c := cs[i]
			if !c.Before.Equal(w.before) || !c.After.Equal(w.after) || c.Cause.Kind != w.cause {
				t.Errorf("user %s, change %d (%s):\n got %+v -> %+v (%s)\nwant %+v -> %+v (%s)", user, i, c.ID, c.Before, c.After, c.Cause, w.before, w.after, w.cause)
			}
		}
	}
	for user, cs := range byUser {
		if wantBy[user] == nil {
			t.Errorf("user %s: %d changes, want none: %+v", user, len(cs), cs)
		}
	}
}

func lcClaims(t *testing.T, newStore lcNewStore) {
	ctx := context.Background()
	var users []billing.User
	for i := 1; i <= 4; i++ {
		users = append(users, billing.User{ID: fmt.Sprintf("u%d", i), Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_%d", i)})
	}
	s := newStore(t, users)
	plans := []billing.Plan{billing.Basic, billing.Pro, billing.Basic}
	for k, p := range plans { // u1: three changes
		lcApply(t, s, lcChange(fmt.Sprintf("evt_1_%d", k), billing.Subscription{ID: "sub_1", CustomerID: "cus_1", Status: "active", Plan: p}, 100+k), billing.Applied)
	}
	for i := 2; i <= 4; i++ { // u2..u4: one each
		lcApply(t, s, lcChange(fmt.Sprintf("evt_%d", i), billing.Subscription{ID: fmt.Sprintf("sub_%d", i), CustomerID: fmt.Sprintf("cus_%d", i), Status: "active", Plan: billing.Pro}, 100), billing.Applied)
	}
	claim := func(step string, lease time.Duration, want ...string) map[string]billing.ClaimedChange {
		t.Helper()
		cs, err := s.ClaimChanges(ctx, 100, lease)
		if err != nil {
			t.Fatalf("%s: ClaimChanges: %v", step, err)
		}
		got := map[string]billing.ClaimedChange{}
		var users []string
		for _, c := range cs {
			if c.Token == "" {
				t.Errorf("%s: change %s claimed without a token", step, c.ID)
			}
			if _, dup := got[c.UserID]; dup {
				t.Errorf("%s: two changes of user %s claimed at once", step, c.UserID)
			}
			got[c.UserID] = c
			users = append(users, c.UserID)
		}
		slices.Sort(users)
		if !slices.Equal(users, want) {
			t.Errorf("%s: claimed the changes of users %q, want %q", step, users, want)
		}
		return got
	}
	complete := func(c billing.ClaimedChange) {
		t.Helper()
		if err := s.CompleteChange(ctx, c); err != nil {
			t.Fatalf("CompleteChange(%s): %v", c.ID, err)
		}
	}
	release := func(c billing.ClaimedChange, after time.Duration) {
		t.Helper()
		if err := s.ReleaseChange(ctx, c, after); err != nil {
			t.Fatalf("ReleaseChange(%s): %v", c.ID, err)
		}
	}
	planOf := func(c billing.ClaimedChange) billing.Plan { return c.After.Plan }

	// One change per user, each user's oldest.
	first := claim("first claim", time.Minute, "u1", "u2", "u3", "u4")
	if c := first["u1"]; planOf(c) != billing.Basic || c.Attempt != 1 {
		t.Errorf("u1's first claimed change = %+v (attempt %d); want its oldest (to BASIC), attempt 1", c.After, c.Attempt)
	}
	claim("while claimed", time.Minute)
	// Complete: the user's next change becomes claimable.
	complete(first["u1"])
	second := claim("after completing u1's first", time.Minute, "u1")
	if c := second["u1"]; planOf(c) != billing.Pro || c.ID == first["u1"].ID {
		t.Errorf("u1's second claimed change = %s to %s; want the next one (to PRO)", c.ID, planOf(c))
	}
	// A completed change is not delivered again.
	complete(first["u1"])
	claim("after completing a completed change", time.Minute)

	// Release without a wait, claim with a short lease, let it expire:
	// another claim takes the same change, and the expired claim's
	// complete and release do nothing.
	release(second["u1"], 0)
	short := claim("after a release without wait", 100*time.Millisecond, "u1")
	time.Sleep(400 * time.Millisecond)
	retaken := claim("after the lease expired", time.Minute, "u1")
	if s, r := short["u1"], retaken["u1"]; r.ID != s.ID || r.Token == s.Token || r.Attempt != 3 {
		t.Errorf("change retaken after its lease: %s (token %q, attempt %d); want %s again with a new token, attempt 3", r.ID, r.Token, r.Attempt, s.ID)
	}
	complete(short["u1"])
	release(short["u1"], 0)
	claim("after the lost claim's complete and release", time.Minute)
	complete(retaken["u1"])
	third := claim("after completing the retaken change", time.Minute, "u1")
	if c := third["u1"]; planOf(c) != billing.Basic || c.Attempt != 1 {
		t.Errorf("u1's third change = %s to %s (attempt %d); want to BASIC, attempt 1", c.ID, planOf(c), c.Attempt)
	}

	// Release with a wait: not due before it has passed.
	release(first["u3"], time.Hour)
	release(first["u4"], 200*time.Millisecond)
	time.Sleep(600 * time.Millisecond)
	again := claim("after the releases' waits", time.Minute, "u4")
	if c := again["u4"]; c.ID != first["u4"].ID || c.Attempt != 2 {
		t.Errorf("u4's change after its release = %s (attempt %d); want %s, attempt 2", c.ID, c.Attempt, first["u4"].ID)
	}
	complete(first["u2"])
	complete(third["u1"])
	complete(again["u4"])
	claim("with u3's change waiting an hour", time.Minute)
	if err := s.CompleteChange(ctx, billing.ClaimedChange{PlanChange: billing.PlanChange{ID: first["u3"].ID}, Token: "not-a-claim"}); err != nil {
		t.Errorf("CompleteChange with a token that is no claim: %v; want nil (nothing happens)", err)
	}
}

// lcReplicas applies several plan changes per user, each through a random
// store, while claimers on every store deliver: each change is delivered
// once, one at a time per user, in commit order.
func lcReplicas(t *testing.T, newStores func(t *testing.T, n int, users []billing.User) []LifecycleStore) {
	const (
		nUsers   = 12
		perUser  = 6
		claimers = 6
	)
	ctx := context.Background()
	var users []billing.User
	for i := range nUsers {
		users = append(users, billing.User{ID: fmt.Sprintf("u%02d", i), Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_%02d", i)})
	}
	stores := newStores(t, 3, users)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)

	var (
		mu        sync.Mutex
		inFlight  = map[string]bool{}
		delivered = map[string][]billing.PlanChange{}
		total     int
		done      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for i, u := range users {
		wg.Add(1)
		go func() { // the user's changes, one after the other
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			for k := range perUser {
				plan := []billing.Plan{billing.Basic, billing.Pro}[k%2]
				c := lcChange(fmt.Sprintf("evt_%s_%d", u.ID, k), billing.Subscription{ID: "sub_" + u.ID, CustomerID: u.StripeCustomerID, Status: "active", Plan: plan}, 100+k)
				if out, err := stores[r.IntN(len(stores))].ApplySubscription(ctx, c, lcRetain); err != nil || out != billing.Applied {
					t.Errorf("ApplySubscription(%s) = %v, %v", c.EventID, out, err)
				}
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	var cwg sync.WaitGroup
	for i := range claimers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			s := stores[i%len(stores)]
			for {
				select {
				case <-done:
					return
				default:
				}
				if time.Now().After(deadline) {
					return
				}
				cs, err := s.ClaimChanges(ctx, 3, time.Minute)
				if err != nil {
					t.Errorf("ClaimChanges: %v", err)
					return
				}
				if len(cs) == 0 {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				for _, c := range cs {
					mu.Lock()
					if inFlight[c.UserID] {
						t.Errorf("change %s of user %s delivered while another of the user's changes is", c.ID, c.UserID)
					}
					inFlight[c.UserID] = true
					mu.Unlock()
					time.Sleep(time.Millisecond) // the hook
					mu.Lock()
					inFlight[c.UserID] = false
					delivered[c.UserID] = append(delivered[c.UserID], c.PlanChange)
					total++
					if total == nUsers*perUser {
						close(done)
					}
					mu.Unlock()
					if err := s.CompleteChange(ctx, c); err != nil {
						t.Errorf("CompleteChange(%s): %v", c.ID, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	cwg.Wait()
	// Nothing is left, or delivered twice.
	if cs, err := stores[0].ClaimChanges(ctx, 100, time.Minute); err != nil || len(cs) != 0 {
		t.Errorf("after delivering every change: ClaimChanges = %d changes, %v; want none", len(cs), err)
	}
	for _, u := range users {
		cs := delivered[u.ID]
		if len(cs) != perUser {
			t.Errorf("user %s: %d changes delivered, want %d", u.ID, len(cs), perUser)
			continue
		}
		prev := billing.View{Plan: billing.Free}
		for k, c := range cs {
			want := []billing.Plan{billing.Basic, billing.Pro}[k%2]
			if !c.Before.Equal(prev) || c.After.Plan != want {
				t.Errorf("user %s: change %d (%s) %+v -> %+v; want from %+v to %s (commit order)", u.ID, k, c.ID, c.Before, c.After, prev, want)
			}
			prev = c.After
		}
	}
}
