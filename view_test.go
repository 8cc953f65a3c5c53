package billing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
)

var (
	periodStart = time.Date(2026, 12, 12, 0, 0, 0, 0, time.UTC)
	periodEnd   = time.Date(2027, 1, 12, 0, 0, 0, 0, time.UTC)
	cancelAt    = time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
)

func TestAccountView(t *testing.T) {
	pro := billing.User{ID: "u1", Plan: billing.Pro, StripeCustomerID: "cus_1", SubscriptionID: "sub_1"}
	free := billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1", SubscriptionID: "sub_1"}
	sub := func(status string, mod func(*billing.Subscription)) *billing.Subscription {
		s := &billing.Subscription{ID: "sub_1", CustomerID: "cus_1", Status: status, Plan: billing.Pro,
			CurrentPeriodStart: periodStart, CurrentPeriodEnd: periodEnd}
		if mod != nil {
			mod(s)
		}
		return s
	}
	tests := []struct {
		name string
		a    billing.Account
		want billing.View
	}{
		{"no subscription", billing.Account{User: billing.User{ID: "u1", Plan: billing.Free}},
			billing.View{Plan: billing.Free}},
		{"active renews", billing.Account{User: pro, Subscription: sub("active", nil), Features: []string{"seats_10"}},
			billing.View{Plan: billing.Pro, Access: true, Status: "active", RenewsAt: periodEnd, Features: []string{"seats_10"}}},
		{"canceling at period end: paid until then", billing.Account{User: pro, Subscription: sub("active", func(s *billing.Subscription) { s.CancelAtPeriodEnd = true })},
			billing.View{Plan: billing.Pro, Access: true, Status: "active", EndsAt: periodEnd, CancelAtPeriodEnd: true}},
		{"cancel_at scheduled", billing.Account{User: pro, Subscription: sub("active", func(s *billing.Subscription) { s.CancelAt = cancelAt })},
			billing.View{Plan: billing.Pro, Access: true, Status: "active", EndsAt: cancelAt}},
		{"trialing", billing.Account{User: pro, Subscription: sub("trialing", func(s *billing.Subscription) { s.TrialEnd = periodEnd })},
			billing.View{Plan: billing.Pro, Access: true, Status: "trialing", RenewsAt: periodEnd, TrialEndsAt: periodEnd}},
		{"past_due keeps access, shows the problem", billing.Account{User: pro, Subscription: sub("past_due", nil)},
			billing.View{Plan: billing.Pro, Access: true, Status: "past_due", PaymentProblem: true}},
		{"unpaid", billing.Account{User: free, Subscription: sub("unpaid", nil)},
			billing.View{Plan: billing.Free, Status: "unpaid", PaymentProblem: true}},
		{"incomplete", billing.Account{User: free, Subscription: sub("incomplete", nil)},
			billing.View{Plan: billing.Free, Status: "incomplete", PaymentProblem: true}},
		{"canceled: no dates", billing.Account{User: free, Subscription: sub("canceled", func(s *billing.Subscription) { s.CancelAtPeriodEnd = true; s.EndedAt = periodEnd })},
			billing.View{Plan: billing.Free, Status: "canceled", CancelAtPeriodEnd: true}},
		{"features sorted and unique", billing.Account{User: free, Features: []string{"b", "a", "b"}},
			billing.View{Plan: billing.Free, Features: []string{"a", "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.a.View()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("View() (-want +got):\n%s", diff)
			}
			if !got.Equal(tt.want) {
				t.Fatal("Equal disagrees with cmp.Diff")
			}
		})
	}
	v := billing.View{Features: []string{"a", "seats_10"}}
	if !v.HasFeature("seats_10") || v.HasFeature("seats_5") {
		t.Fatal("HasFeature")
	}
}

// lifecycleEvent is a signed-ready subscription event with every lifecycle
// field, in the shape of API version 2023-10-16 or, with itemPeriods, of
// 2025-03-31 and later (the period on each item, not on the subscription).
type lifecycleSub struct {
	ID, Customer, Status, Price string
	CancelAtPeriodEnd           bool
	CancelAt, TrialEnd          time.Time
	ItemPeriods                 bool
	Quantity                    int64
}

func unixOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func (s lifecycleSub) object() map[string]any {
	item := map[string]any{"id": "si_" + s.ID, "object": "subscription_item", "quantity": max(s.Quantity, 1),
		"price": map[string]any{"id": s.Price, "object": "price", "lookup_key": nil, "product": "prod_" + s.Price}}
	obj := map[string]any{
		"id": s.ID, "object": "subscription", "customer": s.Customer, "status": s.Status,
		"cancel_at_period_end": s.CancelAtPeriodEnd, "cancel_at": unixOrNil(s.CancelAt),
		"canceled_at": nil, "ended_at": nil, "trial_end": unixOrNil(s.TrialEnd),
		"items": map[string]any{"object": "list", "data": []any{item}},
	}
	if s.ItemPeriods {
		item["current_period_start"], item["current_period_end"] = periodStart.Unix(), periodEnd.Unix()
	} else {
		obj["current_period_start"], obj["current_period_end"] = periodStart.Unix(), periodEnd.Unix()
	}
	return obj
}

var eventSeq atomic.Int64

// rawEvent is an event envelope around obj.
func rawEvent(typ string, created time.Time, obj map[string]any) []byte {
	b, err := json.Marshal(map[string]any{
		"id": fmt.Sprintf("evt_life_%d", eventSeq.Add(1)), "object": "event", "api_version": "2023-10-16",
		"created": created.Unix(), "livemode": false, "type": typ, "data": map[string]any{"object": obj},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// lifeEnv is a webhook handler on a MemoryStore with a recording hook.
type lifeEnv struct {
	t       *testing.T
	store   *billing.MemoryStore
	handler *billing.WebhookHandler
	changes []billing.PlanChange
}

func newLifeEnv(t *testing.T) *lifeEnv {
	t.Helper()
	e := &lifeEnv{t: t, store: billing.NewMemoryStore(billing.User{ID: "u1", Plan: billing.Free, StripeCustomerID: "cus_1"})}
	n, err := billing.NewNotifier(billing.NotifierConfig{Outbox: e.store, Hook: billing.PlanChangeHookFunc(func(_ context.Context, c billing.PlanChange) error {
		e.changes = append(e.changes, c)
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	e.handler, err = billing.NewWebhookHandler(billing.WebhookConfig{
		Secrets: []string{billingtest.WebhookSecret}, Store: e.store, Notifier: n,
		Rules: billing.PlanRules{Prices: billingtest.Prices()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// send delivers payload and checks the reply's outcome.
func (e *lifeEnv) send(payload []byte, want billing.Outcome) {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, billingtest.WebhookRequest(payload, billingtest.WebhookSecret, billingtest.RequestOptions{}))
	var rep struct{ Outcome billing.Outcome }
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || w.Code != 200 || rep.Outcome != want {
		e.t.Fatalf("reply %d %s, want 200 outcome %q", w.Code, w.Body, want)
	}
}

func (e *lifeEnv) view() billing.View {
	e.t.Helper()
	v, found, err := billing.ViewOf(context.Background(), e.store, "u1")
	if err != nil || !found {
		e.t.Fatalf("ViewOf: %v %v", found, err)
	}
	return v
}

func TestWebhookLifecycle(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	sub := lifecycleSub{ID: "sub_1", Customer: "cus_1", Status: "active", Price: "price_pro"}

	t.Run("cancel at period end keeps access until deleted", func(t *testing.T) {
		e := newLifeEnv(t)
		e.send(rawEvent("customer.subscription.created", at(0), sub.object()), billing.Applied)
		if v := e.view(); !v.Access || !v.RenewsAt.Equal(periodEnd) || !v.EndsAt.IsZero() {
			t.Fatalf("after created: %+v", v)
		}
		canceling := sub
		canceling.CancelAtPeriodEnd = true
		e.send(rawEvent("customer.subscription.updated", at(10), canceling.object()), billing.Applied)
		v := e.view()
		if !v.Access || v.Plan != billing.Pro || !v.EndsAt.Equal(periodEnd) || !v.RenewsAt.IsZero() || !v.CancelAtPeriodEnd {
			t.Fatalf("canceling: %+v, want PRO with access, ends_at %v", v, periodEnd)
		}
		// An older event, delivered late, changes nothing, not even a date.
		e.send(rawEvent("customer.subscription.updated", at(5), sub.object()), billing.Stale)
		if got := e.view(); !got.Equal(v) {
			t.Fatalf("a stale event changed the view: %+v", got)
		}
		deleted := canceling
		deleted.Status = "canceled"
		e.send(rawEvent("customer.subscription.deleted", at(20), deleted.object()), billing.Applied)
		if v := e.view(); v.Access || v.Plan != billing.Free || v.Status != "canceled" || !v.EndsAt.IsZero() {
			t.Fatalf("deleted: %+v", v)
		}
		if len(e.changes) != 3 {
			t.Fatalf("hook got %d changes, want 3 (created, canceling, deleted)", len(e.changes))
		}
	})

	t.Run("trialing shows trial_ends_at", func(t *testing.T) {
		e := newLifeEnv(t)
		tr := sub
		tr.Status, tr.TrialEnd = "trialing", periodEnd
		e.send(rawEvent("customer.subscription.created", at(0), tr.object()), billing.Applied)
		if v := e.view(); !v.TrialEndsAt.Equal(periodEnd) || !v.Access {
			t.Fatalf("trialing: %+v", v)
		}
	})

	t.Run("past_due shows payment_problem", func(t *testing.T) {
		e := newLifeEnv(t)
		e.send(rawEvent("customer.subscription.created", at(0), sub.object()), billing.Applied)
		pd := sub
		pd.Status = "past_due"
		e.send(rawEvent("customer.subscription.updated", at(10), pd.object()), billing.Applied)
		if v := e.view(); !v.PaymentProblem || !v.Access {
			t.Fatalf("past_due: %+v", v)
		}
	})

	t.Run("item-level period of API 2025-03-31 and later", func(t *testing.T) {
		e := newLifeEnv(t)
		it := sub
		it.ItemPeriods = true
		e.send(rawEvent("customer.subscription.created", at(0), it.object()), billing.Applied)
		if v := e.view(); !v.RenewsAt.Equal(periodEnd) {
			t.Fatalf("item period not read: %+v", v)
		}
		s, _, _ := e.store.Subscription(context.Background(), "sub_1")
		if !s.CurrentPeriodStart.Equal(periodStart) || len(s.Items) != 1 || s.Items[0].PriceID != "price_pro" || s.Items[0].Quantity != 1 {
			t.Fatalf("stored %+v", s)
		}
	})

	t.Run("a duplicate or stale delivery makes no hook call", func(t *testing.T) {
		e := newLifeEnv(t)
		first := rawEvent("customer.subscription.created", at(10), sub.object())
		e.send(first, billing.Applied)
		e.send(first, billing.Duplicate)
		e.send(rawEvent("customer.subscription.updated", at(5), sub.object()), billing.Stale)
		// An update that changes no fact of the view is no change either.
		e.send(rawEvent("customer.subscription.updated", at(20), sub.object()), billing.Applied)
		if len(e.changes) != 1 {
			t.Fatalf("hook got %d changes, want 1: %+v", len(e.changes), e.changes)
		}
		c := e.changes[0]
		if c.UserID != "u1" || c.Before.Plan != billing.Free || c.After.Plan != billing.Pro || c.Cause.Kind != billing.CauseWebhook ||
			c.Cause.EventType != "customer.subscription.created" || c.ID == "" {
			t.Fatalf("change %+v", c)
		}
	})
}

func TestEntitlements(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	summary := func(keys ...string) map[string]any {
		data := []any{}
		for _, k := range keys {
			data = append(data, map[string]any{"id": "ent_" + k, "object": "entitlements.active_entitlement", "feature": "feat_" + k, "lookup_key": k, "livemode": false})
		}
		return map[string]any{"object": "entitlements.active_entitlement_summary", "customer": "cus_1", "livemode": false,
			"entitlements": map[string]any{"object": "list", "data": data, "has_more": false, "url": "/v1/customer/cus_1/entitlements"}}
	}
	const typ = "entitlements.active_entitlement_summary.updated"
	e := newLifeEnv(t)
	e.send(rawEvent(typ, t0, summary("seats_10", "api")), billing.Applied)
	if v := e.view(); !cmp.Equal(v.Features, []string{"api", "seats_10"}) {
		t.Fatalf("features %q", v.Features)
	}
	if ok, err := billing.HasFeature(context.Background(), e.store, "u1", "seats_10"); !ok || err != nil {
		t.Fatalf("HasFeature = %v, %v", ok, err)
	}
	e.send(rawEvent(typ, t0.Add(-time.Second), summary()), billing.Stale)
	e.send(rawEvent(typ, t0, summary("other")), billing.TieKept) // same second, no lister: kept
	e.send(rawEvent(typ, t0.Add(time.Second), summary("seats_10")), billing.Applied)
	if v := e.view(); !cmp.Equal(v.Features, []string{"seats_10"}) {
		t.Fatalf("features %q", v.Features)
	}
	if len(e.changes) != 2 || !cmp.Equal(e.changes[1].After.Features, []string{"seats_10"}) {
		t.Fatalf("hook got %+v, want two feature changes", e.changes)
	}
	if ok, _ := billing.HasFeature(context.Background(), e.store, "u_nobody", "seats_10"); ok {
		t.Fatal("an unknown user has no feature")
	}
}
