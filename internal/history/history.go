// Package history generates random Stripe subscription histories, the one
// generator behind the test kit's runs that deliver many of them (storetest's
// concurrent cases, [storetest.RunSyncProperty] and [storetest.RunLoad]) and
// the SQL store's replica test. A history is one customer's subscriptions
// as Stripe's events show them: creation (active, trialing or incomplete),
// upgrades, downgrades and renewals, past_due and recovery, unpaid, pause and
// resume, cancelation, an incomplete payment that expires, a resubscription
// after a cancelation or a second subscription at once, some events in the
// same second as the previous one (ties), and a user linked to the customer
// from the start, only later (a checkout.session.completed event or a
// LinkCustomer call) or never.
//
// [History.Want] is the one rule for the user a history ends with; it follows
// the derivation that [billing.SyncStore] states.
//
// [storetest.RunSyncProperty]: https://pkg.go.dev/github.com/contafy/billing/billingtest/storetest#RunSyncProperty
// [storetest.RunLoad]: https://pkg.go.dev/github.com/contafy/billing/billingtest/storetest#RunLoad
package history

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
)

// Link says how a history's user gets linked to its customer.
type Link int

const (
	// AtStart: the seeded user carries the customer id.
	AtStart Link = iota
	// Later: the seeded user has no customer id; a
	// checkout.session.completed event ([History.Checkout]) or a
	// LinkCustomer call links it while the events arrive.
	Later
	// Never: the user is never linked; it must end as seeded.
	Never
)

// Config shapes the histories of [Generate]. The zero value gives 1 or 2
// subscriptions of 1 to 7 changes each, no ties, every user linked at
// start.
type Config struct {
	// Prefix names history i's objects: user "u_<Prefix><i>", customer
	// "cus_<Prefix><i>", subscription k "sub_<Prefix><i>_<k>", event n
	// "evt_<Prefix><i>_<n>".
	Prefix string
	// Subs is the most subscriptions of one customer (each history has 1
	// to Subs). Default 2.
	Subs int
	// Steps is the most changes of one subscription after its creation
	// (1 to Steps, fewer when it ends sooner). Default 7.
	Steps int
	// Exact gives every subscription exactly Steps changes after its
	// creation: it can end (canceled, incomplete_expired) only at its last
	// change. Default false.
	Exact bool
	// SameSecond is the share of events in the same second as the previous
	// event of their subscription. Default 0.
	SameSecond float64
	// Later and Never are the shares of users linked later and never
	// (the others are linked at start). Default 0.
	Later, Never float64
}

// History is one customer's life.
type History struct {
	// User is the user as seeded: BASIC, with the customer id if Link is
	// AtStart.
	User billing.User
	// Customer is the Stripe customer id.
	Customer string
	// Link says how User gets linked to Customer.
	Link Link
	// Events are the subscription events in Stripe's order: by time, and
	// in the order they were made within a second.
	Events []Event
}

// Event is one Stripe subscription event.
type Event struct {
	// ID is the event id (evt_...).
	ID string
	// Type is customer.subscription.created, .updated, .paused, .resumed
	// or .deleted.
	Type string
	// Sub is the subscription's state after the event; Plan is what the
	// state grants ([Grants]).
	Sub billing.Subscription
	// Created is the event's time, in whole seconds.
	Created time.Time
}

// Grants returns the plan a subscription in status with price grants under
// the webhook handler's default rules and the kit's standard prices
// ([billingtest.Prices]): the price's plan while active, trialing or
// past_due, FREE otherwise.
func Grants(status, price string) billing.Plan {
	switch status {
	case "active", "trialing", "past_due":
		if p, ok := billingtest.Prices().Prices[price]; ok {
			return p
		}
	}
	return billing.Free
}

// Rank is the Seq the webhook handler gives an event of a subscription in
// status, as the order of [billing.SubscriptionChange] says: 1 for
// incomplete, 3 for canceled and incomplete_expired, 2 for any other.
func Rank(status string) int64 {
	switch status {
	case "incomplete":
		return 1
	case "canceled", "incomplete_expired":
		return 3
	}
	return 2
}

// Change returns the event as the webhook handler applies it: the event's
// id and time, Seq its status's [Rank].
func (e Event) Change() billing.SubscriptionChange {
	return billing.SubscriptionChange{EventID: e.ID, Subscription: e.Sub, Created: e.Created, Seq: Rank(e.Sub.Status)}
}

// Spec returns the state after the event as the kit's subscription spec,
// for a fake Stripe or an event.
func (e Event) Spec() billingtest.SubscriptionSpec {
	return billingtest.SubscriptionSpec{ID: e.Sub.ID, Customer: e.Sub.CustomerID, Status: e.Sub.Status, PriceID: e.Sub.PriceID}
}

// Payload returns the event as Stripe sends it, ready to sign: its id, type
// and time, the subscription rendered by [billingtest.SubscriptionObject].
func (e Event) Payload() []byte {
	return billingtest.Event{ID: e.ID, Type: e.Type, Created: e.Created, Object: billingtest.SubscriptionObject(e.Spec(), e.Created)}.JSON()
}

// Checkout returns the checkout.session.completed event that links the
// user to the customer, at the time of the first event, for a Later
// history.
func (h History) Checkout() []byte {
	return billingtest.CheckoutCompletedEvent(billingtest.CheckoutSpec{ClientReferenceID: h.User.ID, Customer: h.Customer}, h.Events[0].Created)
}

// Finals returns the last event of each subscription, in the order the
// subscriptions were created: Stripe's state at the end, what a read from
// Stripe returns once every event happened.
func (h History) Finals() []Event {
	last := map[string]int{}
	var order []string
	for i, e := range h.Events {
		if _, ok := last[e.Sub.ID]; !ok {
			order = append(order, e.Sub.ID)
		}
		last[e.Sub.ID] = i
	}
	out := make([]Event, len(order))
	for i, id := range order {
		out[i] = h.Events[last[id]]
	}
	return out
}

// Final returns the last event of subscription id.
func (h History) Final(id string) Event {
	for _, e := range h.Finals() {
		if e.Sub.ID == id {
			return e
		}
	}
	return Event{}
}

// Want returns the user as it must be once every event is applied: for a
// history whose user is linked (at start or later), the derivation that
// [billing.SyncStore] states: Plan the highest plan among the final states
// of the customer's subscriptions, SubscriptionID the greatest id (as a
// string) among the subscriptions of that plan; for a user never linked,
// the user as seeded.
func (h History) Want() billing.User {
	if h.Link == Never {
		return h.User
	}
	plan, id := billing.Free, ""
	for i, e := range h.Finals() {
		if r, best := e.Sub.Plan.Rank(), plan.Rank(); i == 0 || r > best || (r == best && e.Sub.ID > id) {
			plan, id = e.Sub.Plan, e.Sub.ID
		}
	}
	return billing.User{ID: h.User.ID, Plan: plan, StripeCustomerID: h.Customer, SubscriptionID: id}
}

// Generate returns history i, drawn from r.
func Generate(r *rand.Rand, i int, cfg Config) History {
	if cfg.Subs <= 0 {
		cfg.Subs = 2
	}
	if cfg.Steps <= 0 {
		cfg.Steps = 7
	}
	h := History{Customer: fmt.Sprintf("cus_%s%d", cfg.Prefix, i), Link: AtStart}
	switch x := r.Float64(); {
	case x < cfg.Never:
		h.Link = Never
	case x < cfg.Never+cfg.Later:
		h.Link = Later
	}
	h.User = billing.User{ID: fmt.Sprintf("u_%s%d", cfg.Prefix, i), Plan: billing.Basic}
	if h.Link == AtStart {
		h.User.StripeCustomerID = h.Customer
	}

	start := time.Unix(1_700_000_000+int64(r.IntN(1_000_000)), 0)
	var events []Event
	end := start // when the previous subscription's last event happened
	prevEnded := false
	for k := range 1 + r.IntN(cfg.Subs) {
		// A resubscription after the previous one ended, or a subscription
		// of its own beside the others.
		at := start.Add(time.Duration(r.IntN(3600)) * time.Second)
		if k > 0 && prevEnded && r.IntN(2) == 0 {
			at = end.Add(time.Duration(1+r.IntN(3600)) * time.Second)
		}
		sub := genSubscription(r, fmt.Sprintf("sub_%s%d_%d", cfg.Prefix, i, k), h.Customer, at, cfg)
		events = append(events, sub...)
		last := sub[len(sub)-1]
		end, prevEnded = last.Created, last.Sub.Terminal()
	}
	// Stripe's order: by time, in the order made within a second.
	sort.SliceStable(events, func(a, b int) bool { return events[a].Created.Before(events[b].Created) })
	for n := range events {
		events[n].ID = fmt.Sprintf("evt_%s%d_%d", cfg.Prefix, i, n)
	}
	h.Events = events
	return h
}

// genSubscription returns the events of one subscription created at at.
func genSubscription(r *rand.Rand, id, customer string, at time.Time, cfg Config) []Event {
	prices := []string{billingtest.PriceBasic, billingtest.PricePro}
	price := prices[r.IntN(2)]
	var status string
	switch n := r.IntN(10); {
	case n < 3:
		status = "incomplete"
	case n < 8:
		status = "active"
	default:
		status = "trialing"
	}
	now := at
	var out []Event
	emit := func(typ string) {
		out = append(out, Event{Type: typ, Created: now, Sub: billing.Subscription{
			ID: id, CustomerID: customer, Status: status, Plan: Grants(status, price), PriceID: price,
		}})
	}
	emit("customer.subscription.created")
	steps := 1 + r.IntN(cfg.Steps)
	if cfg.Exact {
		steps = cfg.Steps
	}
	for s := steps; s > 0 && status != "canceled" && status != "incomplete_expired"; s-- {
		if r.Float64() >= cfg.SameSecond {
			now = now.Add(time.Duration(1+r.IntN(3600)) * time.Second)
		}
		typ := "customer.subscription.updated"
		n := r.IntN(10)
		switch status {
		case "incomplete":
			status = "active"
			if n < 2 {
				status = "incomplete_expired"
			}
		case "active", "trialing":
			switch {
			case n < 3: // upgrade or downgrade
				price, status = otherPrice(price), "active"
			case n < 4: // renewal, or the trial's end
				status = "active"
			case n < 6:
				status = "past_due"
			case n < 7:
				status = "unpaid"
			case n < 8:
				status, typ = "paused", "customer.subscription.paused"
			default:
				status, typ = "canceled", "customer.subscription.deleted"
			}
		case "past_due":
			switch {
			case n < 5:
				status = "active"
			case n < 8:
				status = "unpaid"
			default:
				status, typ = "canceled", "customer.subscription.deleted"
			}
		case "unpaid":
			if n < 5 {
				status = "active"
			} else {
				status, typ = "canceled", "customer.subscription.deleted"
			}
		case "paused":
			if n < 7 {
				status, typ = "active", "customer.subscription.resumed"
			} else {
				status, typ = "canceled", "customer.subscription.deleted"
			}
		}
		if cfg.Exact && s > 1 && (status == "canceled" || status == "incomplete_expired") {
			status, typ = "active", "customer.subscription.updated" // not the last change: it goes on
		}
		emit(typ)
	}
	return out
}

func otherPrice(p string) string {
	if p == billingtest.PriceBasic {
		return billingtest.PricePro
	}
	return billingtest.PriceBasic
}
