package history_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/history"
)

func TestGenerate(t *testing.T) {
	cfg := history.Config{Prefix: "t", Subs: 3, Steps: 7, SameSecond: 0.3, Later: 0.3, Never: 0.2}
	r := rand.New(rand.NewPCG(1, 2))
	kinds := map[string]int{}
	links := map[history.Link]int{}
	ids := map[string]bool{}
	for i := range 500 {
		h := history.Generate(r, i, cfg)
		links[h.Link]++
		if (h.User.StripeCustomerID != "") != (h.Link == history.AtStart) || h.User.Plan != billing.Basic {
			t.Fatalf("history %d: seeded user %+v with link %v", i, h.User, h.Link)
		}
		ended := map[string]bool{}
		for n, e := range h.Events {
			if ids[e.ID] {
				t.Fatalf("event id %s twice", e.ID)
			}
			ids[e.ID] = true
			if n > 0 && e.Created.Before(h.Events[n-1].Created) {
				t.Fatalf("history %d: events out of time order at #%d", i, n)
			}
			if n > 0 && e.Created.Equal(h.Events[n-1].Created) && e.Sub.ID == h.Events[n-1].Sub.ID {
				kinds["same second"]++
			}
			if ended[e.Sub.ID] {
				t.Fatalf("history %d: %s has an event after it ended", i, e.Sub.ID)
			}
			ended[e.Sub.ID] = e.Sub.Terminal()
			if e.Sub.Plan != history.Grants(e.Sub.Status, e.Sub.PriceID) || e.Sub.CustomerID != h.Customer {
				t.Fatalf("history %d: event %+v", i, e)
			}
			kinds[e.Type]++
			kinds[e.Sub.Status]++
			if c := e.Change(); c.EventID != e.ID || c.Seq != history.Rank(e.Sub.Status) || !c.Created.Equal(e.Created) {
				t.Fatalf("Change() = %+v for %+v", c, e)
			}
		}
		if len(h.Finals()) > 1 {
			kinds["several subscriptions"]++
		}
		want := h.Want()
		if h.Link == history.Never && want != h.User {
			t.Fatalf("never linked: Want %+v, seeded %+v", want, h.User)
		}
	}
	for _, k := range []string{"customer.subscription.created", "customer.subscription.updated", "customer.subscription.paused",
		"customer.subscription.resumed", "customer.subscription.deleted", "incomplete", "incomplete_expired", "trialing",
		"active", "past_due", "unpaid", "paused", "canceled", "same second", "several subscriptions"} {
		if kinds[k] == 0 {
			t.Errorf("no %q in 500 histories: %v", k, kinds)
		}
	}
	if links[history.AtStart] == 0 || links[history.Later] == 0 || links[history.Never] == 0 {
		t.Errorf("links %v", links)
	}
}

func TestWant(t *testing.T) {
	ev := func(sub, status, price string) history.Event {
		return history.Event{Sub: billing.Subscription{ID: sub, CustomerID: "cus_1", Status: status, PriceID: price, Plan: history.Grants(status, price)}}
	}
	tests := []struct {
		name     string
		events   []history.Event
		plan     billing.Plan
		subID    string
		linkedAt history.Link
	}{
		{"last state of each subscription", []history.Event{ev("sub_a", "active", billingtest.PricePro), ev("sub_a", "canceled", billingtest.PricePro)}, billing.Free, "sub_a", history.AtStart},
		{"highest plan", []history.Event{ev("sub_b", "active", billingtest.PriceBasic), ev("sub_a", "past_due", billingtest.PricePro)}, billing.Pro, "sub_a", history.Later},
		{"equal plans: greatest id", []history.Event{ev("sub_b", "active", billingtest.PricePro), ev("sub_c", "canceled", billingtest.PricePro), ev("sub_a", "trialing", billingtest.PricePro)}, billing.Pro, "sub_b", history.AtStart},
		{"all free: greatest id", []history.Event{ev("sub_b", "unpaid", billingtest.PricePro), ev("sub_a", "paused", billingtest.PricePro)}, billing.Free, "sub_b", history.AtStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := history.History{User: billing.User{ID: "u1", Plan: billing.Basic}, Customer: "cus_1", Link: tt.linkedAt, Events: tt.events}
			want := billing.User{ID: "u1", Plan: tt.plan, StripeCustomerID: "cus_1", SubscriptionID: tt.subID}
			if got := h.Want(); got != want {
				t.Errorf("Want() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestPayload(t *testing.T) {
	e := history.Event{ID: "evt_x", Type: "customer.subscription.paused", Created: time.Unix(1_700_000_000, 0),
		Sub: billing.Subscription{ID: "sub_x", CustomerID: "cus_x", Status: "paused", PriceID: billingtest.PricePro}}
	var got struct {
		ID, Type string
		Created  int64
		Data     struct {
			Object struct {
				ID, Customer, Status string
				Items                struct {
					Data []struct{ Price struct{ ID string } }
				}
			}
		}
	}
	if err := json.Unmarshal(e.Payload(), &got); err != nil {
		t.Fatal(err)
	}
	o := got.Data.Object
	if got.ID != "evt_x" || got.Type != e.Type || got.Created != e.Created.Unix() || o.ID != "sub_x" || o.Customer != "cus_x" ||
		o.Status != "paused" || len(o.Items.Data) != 1 || o.Items.Data[0].Price.ID != billingtest.PricePro {
		t.Errorf("payload decodes to %+v", got)
	}
}

func TestGenerateExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		h := history.Generate(r, i, history.Config{Subs: 1, Steps: 5, Exact: true})
		if len(h.Events) != 6 {
			t.Fatalf("history %d: %d events, want the creation and exactly 5 changes", i, len(h.Events))
		}
		for _, e := range h.Events[:5] {
			if e.Sub.Terminal() {
				t.Fatalf("history %d ends before its last change: %+v", i, h.Events)
			}
		}
	}
}
