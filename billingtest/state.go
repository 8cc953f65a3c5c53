package billingtest

import (
	"math/rand/v2"
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
	// Phone and Description are the customer's, as set by POST
	// /v1/customers.
	Phone, Description string
	// Address is the customer's billing address.
	Address Address
	// DefaultPaymentMethod is invoice_settings.default_payment_method, the
	// id of a payment method attached to the customer (pm_...).
	DefaultPaymentMethod string
	// Created is when the customer was added.
	Created time.Time
}

// Address is a postal address, as Stripe's customer.address holds it.
type Address struct {
	// Line1, Line2, City, State, PostalCode and Country (a two-letter ISO
	// code) are the address's parts; any may be empty.
	Line1, Line2, City, State, PostalCode, Country string
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

// initState makes the empty state of a new emulator.
func (s *Stripe) initState() {
	s.catalog = catalog{products: map[string]*productRec{}, prices: map[string]*priceRec{}}
	s.billing = billingState{invoices: map[string]*invoiceRec{}, methods: map[string]*methodRec{}}
	s.portal = portalState{configs: map[string]*portalConfig{}, pages: map[string]*portalPage{}}
	s.portal.configs[defaultConfigID] = defaultPortalConfig(s.now(), s.nextSeq())
	s.ent = entitlementState{features: map[string]*featureRec{}, attached: map[string][]*productFeature{},
		active: map[string][]string{}, ids: map[string]string{}}
	s.log = eventLog{byID: map[string]*eventRec{}}
	s.hooks = webhookState{endpoints: map[string]*endpointRec{}, inflight: map[string]bool{}, changed: make(chan struct{}),
		wake: make(chan struct{}, 1)}
	if c := s.cfg.Webhooks.Chaos; c != nil {
		s.hooks.rng = rand.New(rand.NewPCG(uint64(c.Seed), 0x62696c6c696e67))
	}
}

// nextSeq numbers the objects in creation order, which lists follow
// (newest first). Call it with s.mu held.
func (s *Stripe) nextSeq() int64 { s.seq++; return s.seq }

// AddCustomer makes the fake know the customer ids; adding a known one
// again changes nothing.
func (s *Stripe) AddCustomer(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, ok := s.customers[id]; !ok {
			s.customers[id] = &StripeCustomer{ID: id, Created: s.now()}
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
// the defaults of [SubscriptionSpec] (Created: the emulator's now), and
// adds its customer if unknown. It is a test's way in: it emits no event
// and creates no invoice (the customer's entitlements are taken as they
// now are, without an event either); the API and the hosted page do both.
// It panics if sub.ID or sub.Customer is empty, a mistake in the test.
func (s *Stripe) PutSubscription(sub SubscriptionSpec) {
	if sub.ID == "" || sub.Customer == "" {
		panic("billingtest: PutSubscription needs ID and Customer")
	}
	sub = sub.withDefaults(s.now())
	sub.Metadata = cloneMap(sub.Metadata)
	sub.ProductMetadata = cloneMap(sub.ProductMetadata)
	s.AddCustomer(sub.Customer)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[sub.ID] = &sub
	s.ent.active[sub.Customer] = s.activeFeaturesLocked(sub.Customer)
}

// Subscription returns the stored subscription with the given id.
func (s *Stripe) Subscription(id string) (SubscriptionSpec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		return SubscriptionSpec{}, false
	}
	return sub.clone(), true
}

// Subscriptions returns the subscriptions of customer (every customer's
// when customer is empty), canceled ones included, newest first.
func (s *Stripe) Subscriptions(customer string) []SubscriptionSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SubscriptionSpec
	for _, sub := range s.sortedSubsLocked() {
		if customer == "" || sub.Customer == customer {
			out = append(out, sub.clone())
		}
	}
	return out
}

// SetDefaultReturnURL sets the default_return_url of the default portal
// configuration ([DefaultPortalConfiguration]): the return URL that a
// portal session without return_url gets. Default: none, such a request is
// answered 400 parameter_missing.
func (s *Stripe) SetDefaultReturnURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.portal.configs[defaultConfigID].defaultReturnURL = u
}

// Sessions returns the portal sessions created so far, oldest first.
func (s *Stripe) Sessions() []PortalSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneEach(s.sessions, func(ps PortalSession) PortalSession { ps.FlowData = cloneValues(ps.FlowData); return ps })
}
