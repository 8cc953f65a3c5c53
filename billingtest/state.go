package billingtest

import (
	"encoding/json"
	"net/url"
	"time"
)

// StripeCustomer is a customer the fake knows.
type StripeCustomer struct {
	// ID is the customer id (cus_...).
	ID string
	// Email and Name are the customer's, as set by POST /v1/customers.
	Email, Name string
	// Metadata is the customer's metadata.
	Metadata map[string]string
	// Created is when the customer was added.
	Created time.Time
}

// StripeSubscription is a subscription the fake knows, with one item.
type StripeSubscription struct {
	// ID is the subscription id (sub_...). Required.
	ID string
	// Customer is the customer id (cus_...) it belongs to. Required; the
	// customer is added to the fake if it is not known.
	Customer string
	// Status is Stripe's status word. Default: "active".
	Status string
	// PriceID, LookupKey and ProductID describe the price of the
	// subscription's only item (items.data[0].price).
	PriceID, LookupKey, ProductID string
	// Created is the subscription's creation time. Default: when it was put.
	Created time.Time
	// CurrentPeriodEnd is the end of the current period. Default: Created
	// plus 30 days.
	CurrentPeriodEnd time.Time
	// CancelAtPeriodEnd is Stripe's cancel_at_period_end.
	CancelAtPeriodEnd bool
	// Metadata is the subscription's metadata.
	Metadata map[string]string
}

// JSON returns the subscription as Stripe's API renders it, with the
// defaults of [Stripe.PutSubscription] applied: what the fake answers to
// GET /v1/subscriptions/{id}, for example to build an event's
// data.object. stripe-go decodes it into a *stripe.Subscription.
func (sub StripeSubscription) JSON() []byte {
	sub = sub.withDefaults()
	b, err := json.Marshal(subscriptionJSON(&sub))
	if err != nil {
		panic("billingtest: " + err.Error()) // only maps of plain values are encoded
	}
	return b
}

func (sub StripeSubscription) withDefaults() StripeSubscription {
	if sub.Status == "" {
		sub.Status = "active"
	}
	if sub.Created.IsZero() {
		sub.Created = time.Now()
	}
	if sub.CurrentPeriodEnd.IsZero() {
		sub.CurrentPeriodEnd = sub.Created.Add(30 * 24 * time.Hour)
	}
	return sub
}

// PortalSession is a billing portal session the fake created.
type PortalSession struct {
	// ID is the session id (bps_...).
	ID string
	// URL is the portal URL the fake returned, unique per session.
	URL string
	// Customer, ReturnURL, Configuration, Locale and OnBehalfOf are the
	// parameters of the request (ReturnURL after the default was applied).
	Customer, ReturnURL, Configuration, Locale, OnBehalfOf string
	// FlowData holds the request's flow_data parameters as sent, keyed by
	// their form names, for example "flow_data[type]" or
	// "flow_data[subscription_cancel][subscription]". Nil without a flow.
	FlowData url.Values
	// Created is when the session was created.
	Created time.Time
}

// AddCustomer makes the fake know the customer ids; adding a known one
// again changes nothing.
func (s *Stripe) AddCustomer(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, ok := s.customers[id]; !ok {
			s.customers[id] = &StripeCustomer{ID: id, Created: time.Now()}
		}
	}
}

// Customer returns the customer with the given id, if the fake knows it.
func (s *Stripe) Customer(id string) (StripeCustomer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok {
		return StripeCustomer{}, false
	}
	return cloneCustomer(c), true
}

// DeleteCustomer forgets a customer, as if deleted in Stripe's dashboard:
// portal sessions for it are then answered 404 resource_missing. Its
// subscriptions stay.
func (s *Stripe) DeleteCustomer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.customers, id)
}

// PutSubscription stores sub (replacing one with the same ID), filling in
// the defaults of [StripeSubscription], and adds its customer if unknown.
// It panics if sub.ID or sub.Customer is empty, a mistake in the test.
func (s *Stripe) PutSubscription(sub StripeSubscription) {
	if sub.ID == "" || sub.Customer == "" {
		panic("billingtest: PutSubscription needs ID and Customer")
	}
	sub = sub.withDefaults()
	sub.Metadata = cloneMap(sub.Metadata)
	s.AddCustomer(sub.Customer)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[sub.ID] = &sub
}

// Subscription returns the stored subscription with the given id.
func (s *Stripe) Subscription(id string) (StripeSubscription, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		return StripeSubscription{}, false
	}
	c := *sub
	c.Metadata = cloneMap(sub.Metadata)
	return c, true
}

// SetDefaultReturnURL sets the return URL that a portal session without
// return_url gets, as a portal configuration's default_return_url does in
// Stripe. Default: none, such a request is answered 400 parameter_missing.
func (s *Stripe) SetDefaultReturnURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defaultReturn = u
}

// Sessions returns the portal sessions created so far, oldest first.
func (s *Stripe) Sessions() []PortalSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PortalSession, len(s.sessions))
	for i, ps := range s.sessions {
		ps.FlowData = cloneValues(ps.FlowData)
		out[i] = ps
	}
	return out
}
