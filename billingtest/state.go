package billingtest

import (
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
// the defaults of [SubscriptionSpec] (Created: now), and adds its customer
// if unknown.
// It panics if sub.ID or sub.Customer is empty, a mistake in the test.
func (s *Stripe) PutSubscription(sub SubscriptionSpec) {
	if sub.ID == "" || sub.Customer == "" {
		panic("billingtest: PutSubscription needs ID and Customer")
	}
	sub = sub.withDefaults(time.Now())
	sub.Metadata = cloneMap(sub.Metadata)
	sub.ProductMetadata = cloneMap(sub.ProductMetadata)
	s.AddCustomer(sub.Customer)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[sub.ID] = &sub
}

// Subscription returns the stored subscription with the given id.
func (s *Stripe) Subscription(id string) (SubscriptionSpec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		return SubscriptionSpec{}, false
	}
	c := *sub
	c.Metadata = cloneMap(sub.Metadata)
	c.ProductMetadata = cloneMap(sub.ProductMetadata)
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
	return cloneEach(s.sessions, func(ps PortalSession) PortalSession { ps.FlowData = cloneValues(ps.FlowData); return ps })
}
