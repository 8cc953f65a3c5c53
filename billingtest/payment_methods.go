package billingtest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// StripePaymentMethod is a card payment method the emulator holds.
type StripePaymentMethod struct {
	// ID is the payment method id (pm_...).
	ID string
	// Customer is the customer it is attached to; empty if none.
	Customer string
	// Brand (visa, mastercard, amex) and Last4 describe the test card.
	Brand, Last4 string
	// Created is when it was created, on the emulator's clock.
	Created time.Time
}

type methodRec struct {
	StripePaymentMethod
	seq int64
}

// testCard is one of Stripe's test cards, as tok_<name> and pm_card_<name>
// name them.
type testCard struct{ brand, last4 string }

// testCards are the test cards the emulator accepts, by the name in
// Stripe's test tokens (card[token]=tok_visa) and payment method ids
// (pm_card_visa): visa (4242), mastercard (4444) and amex (8431). Every
// payment succeeds; declines are not emulated.
var testCards = map[string]testCard{"visa": {"visa", "4242"}, "mastercard": {"mastercard", "4444"}, "amex": {"amex", "8431"}}

// testCardNames lists testCards' names in a stable order.
var testCardNames = []string{"visa", "mastercard", "amex"}

func (m *methodRec) object() map[string]any {
	exp := m.Created.AddDate(3, 0, 0)
	return map[string]any{
		"id": m.ID, "object": "payment_method", "type": "card", "created": m.Created.Unix(), "customer": orNil(m.Customer),
		"livemode": false, "metadata": map[string]string{},
		"billing_details": map[string]any{"address": map[string]any{"city": nil, "country": nil, "line1": nil, "line2": nil, "postal_code": nil, "state": nil},
			"email": nil, "name": nil, "phone": nil},
		"card": map[string]any{"brand": m.Brand, "last4": m.Last4, "exp_month": int(exp.Month()), "exp_year": exp.Year(),
			"country": "US", "funding": "credit", "display_brand": m.Brand, "fingerprint": "emu" + m.Last4,
			"checks":   map[string]any{"address_line1_check": nil, "address_postal_code_check": nil, "cvc_check": "pass"},
			"networks": map[string]any{"available": []string{m.Brand}, "preferred": nil}, "three_d_secure_usage": map[string]any{"supported": true},
			"wallet": nil, "generated_from": nil},
	}
}

// newMethodLocked creates a payment method for the named test card.
func (s *Stripe) newMethodLocked(card string) *methodRec {
	c := testCards[card]
	m := &methodRec{StripePaymentMethod: StripePaymentMethod{ID: NewID("pm"), Brand: c.brand, Last4: c.last4, Created: s.now()}, seq: s.nextSeq()}
	s.billing.methods[m.ID] = m
	return m
}

// attachLocked attaches m to the customer and emits
// payment_method.attached.
func (s *Stripe) attachLocked(m *methodRec, customer string, o origin) {
	m.Customer = customer
	s.emitLocked("payment_method.attached", m.object(), nil, o)
}

// setDefaultMethodLocked makes m the customer's
// invoice_settings.default_payment_method and emits customer.updated.
func (s *Stripe) setDefaultMethodLocked(c *StripeCustomer, m *methodRec, o origin) {
	old := customerJSON(c)
	c.DefaultPaymentMethod = m.ID
	s.emitChangeLocked("customer.updated", old, customerJSON(c), o)
}

// PaymentMethods returns the payment methods attached to customer, newest
// first.
func (s *Stripe) PaymentMethods(customer string) []StripePaymentMethod {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StripePaymentMethod
	for _, m := range s.sortedMethodsLocked(customer) {
		out = append(out, m.StripePaymentMethod)
	}
	return out
}

func (s *Stripe) sortedMethodsLocked(customer string) []*methodRec {
	var out []*methodRec
	for _, m := range s.billing.methods {
		if m.Customer == customer {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq > out[j].seq })
	return out
}

func unknownCard(param, v string) apiError {
	return apiError{Type: "invalid_request_error", Code: "resource_missing", Param: param,
		Message: fmt.Sprintf("No such token: '%s'. The emulator takes Stripe's test cards: tok_visa, tok_mastercard, tok_amex (or pm_card_visa, ... to attach).", v)}
}

// POST /v1/payment_methods
func (s *Stripe) createMethod(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	f.oneOf("type", "card", "card")
	if f.str("type") == "" {
		f.fail(missingParam("type"))
	}
	tok := f.require("card[token]")
	if f.answerBad(w) {
		return
	}
	name, ok := strings.CutPrefix(tok, "tok_")
	if _, known := testCards[name]; !ok || !known {
		writeError(w, http.StatusBadRequest, unknownCard("card[token]", tok))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.newMethodLocked(name).object())
}

// GET /v1/payment_methods/{id}
func (s *Stripe) getMethod(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.billing.methods[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "PaymentMethod", id))
		return
	}
	writeJSON(w, http.StatusOK, m.object())
}

// POST /v1/payment_methods/{id}/attach
func (s *Stripe) attachMethod(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := newForm(r)
	cus := f.require("customer")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.customers[cus]; !ok {
		writeError(w, http.StatusNotFound, noSuch("customer", "customer", cus))
		return
	}
	m, ok := s.billing.methods[id]
	if card, magic := strings.CutPrefix(id, "pm_card_"); !ok && magic {
		if _, known := testCards[card]; known {
			m, ok = s.newMethodLocked(card), true // Stripe's test ids attach a new payment method
		}
	}
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, noSuch("payment_method", "PaymentMethod", id))
		return
	case m.Customer == cus:
	case m.Customer != "":
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Param: "payment_method",
			Message: fmt.Sprintf("The payment method %s is attached to another customer; detach it first.", id)})
		return
	default:
		s.attachLocked(m, cus, originOf(w, r))
	}
	writeJSON(w, http.StatusOK, m.object())
}

// POST /v1/payment_methods/{id}/detach
func (s *Stripe) detachMethod(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.billing.methods[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "PaymentMethod", id))
		return
	}
	if m.Customer == "" {
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Param: "payment_method",
			Message: fmt.Sprintf("The payment method %s is not attached to a customer.", id)})
		return
	}
	o := originOf(w, r)
	if c, ok := s.customers[m.Customer]; ok && c.DefaultPaymentMethod == id {
		old := customerJSON(c)
		c.DefaultPaymentMethod = ""
		s.emitChangeLocked("customer.updated", old, customerJSON(c), o)
	}
	prev := m.object()
	m.Customer = ""
	s.emitLocked("payment_method.detached", m.object(), map[string]any{"customer": prev["customer"]}, o)
	writeJSON(w, http.StatusOK, m.object())
}

// GET /v1/payment_methods and GET /v1/customers/{id}/payment_methods
func (s *Stripe) listMethods(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	cus := r.PathValue("id")
	if cus == "" {
		cus = f.require("customer")
	}
	f.oneOf("type", "card", "card")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.customers[cus]; !ok {
		writeError(w, http.StatusNotFound, noSuch("customer", "customer", cus))
		return
	}
	var ids []string
	var objs []map[string]any
	for _, m := range s.sortedMethodsLocked(cus) {
		ids, objs = append(ids, m.ID), append(objs, m.object())
	}
	writeList(w, f, PathPaymentMethods, ids, objs)
}
