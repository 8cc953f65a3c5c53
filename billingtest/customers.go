package billingtest

import (
	"fmt"
	"net/http"
	"sort"
)

func customerJSON(c *StripeCustomer) map[string]any {
	var addr any
	if c.Address != (Address{}) {
		a := c.Address
		addr = map[string]any{"line1": orNil(a.Line1), "line2": orNil(a.Line2), "city": orNil(a.City), "state": orNil(a.State),
			"postal_code": orNil(a.PostalCode), "country": orNil(a.Country)}
	}
	return map[string]any{
		"id": c.ID, "object": "customer", "created": c.Created.Unix(), "livemode": false,
		"email": orNil(c.Email), "name": orNil(c.Name), "metadata": orEmpty(c.Metadata),
		"phone": orNil(c.Phone), "description": orNil(c.Description), "address": addr,
		"balance": 0, "currency": nil, "default_source": nil, "delinquent": false, "discount": nil,
		"invoice_prefix": "EMU", "preferred_locales": []string{}, "shipping": nil, "tax_exempt": "none",
		"invoice_settings": map[string]any{"custom_fields": nil, "default_payment_method": orNil(c.DefaultPaymentMethod),
			"footer": nil, "rendering_options": nil},
	}
}

// addressFields are the form names of an address's parts, in Address's
// order.
var addressFields = []string{"line1", "line2", "city", "state", "postal_code", "country"}

// applyAddress sets the parts of a sent under prefix ("address") and
// reports whether any was sent; prefix="" empties the address.
func applyAddress(f *form, prefix string, a *Address) bool {
	if v, ok := f.opt(prefix); ok && v == "" {
		*a = Address{}
		return true
	}
	parts := []*string{&a.Line1, &a.Line2, &a.City, &a.State, &a.PostalCode, &a.Country}
	sent := false
	for i, name := range addressFields {
		if v, ok := f.opt(prefix + "[" + name + "]"); ok {
			*parts[i] = v
			sent = true
		}
	}
	return sent
}

// applyCustomerLocked sets what f sends on c; an error if the default
// payment method is not c's.
func (s *Stripe) applyCustomerLocked(c *StripeCustomer, f *form) *apiError {
	if v, ok := f.opt("invoice_settings[default_payment_method]"); ok && v != "" {
		m, found := s.billing.methods[v]
		if !found || m.Customer != c.ID {
			return &apiError{Type: "invalid_request_error", Code: "resource_missing", Param: "invoice_settings[default_payment_method]",
				Message: fmt.Sprintf("No such PaymentMethod: '%s'. Attach it to the customer first (POST /v1/payment_methods/%s/attach).", v, v)}
		}
	}
	for key, dst := range map[string]*string{"email": &c.Email, "name": &c.Name, "phone": &c.Phone, "description": &c.Description,
		"invoice_settings[default_payment_method]": &c.DefaultPaymentMethod} {
		if v, ok := f.opt(key); ok {
			*dst = v
		}
	}
	applyAddress(f, "address", &c.Address)
	c.Metadata = f.metadata("metadata", c.Metadata)
	return nil
}

// POST /v1/customers
func (s *Stripe) createCustomer(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &StripeCustomer{ID: NewID("cus"), Created: s.now()}
	if e := s.applyCustomerLocked(c, f); e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	s.customers[c.ID] = c
	body := customerJSON(c)
	s.emitLocked("customer.created", body, nil, originOf(w, r))
	writeJSON(w, http.StatusOK, body)
}

// GET and POST /v1/customers/{id}
func (s *Stripe) customer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := newForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "customer", id))
		return
	}
	if r.Method == http.MethodPost {
		old := customerJSON(c)
		next := *c
		next.Metadata = cloneMap(c.Metadata)
		if e := s.applyCustomerLocked(&next, f); e != nil {
			status := http.StatusBadRequest
			if e.Code == "resource_missing" {
				status = http.StatusNotFound
			}
			writeError(w, status, *e)
			return
		}
		*c = next
		s.emitChangeLocked("customer.updated", old, customerJSON(c), originOf(w, r))
	}
	body := customerJSON(c)
	s.expandLocked(body, f.expand())
	writeJSON(w, http.StatusOK, body)
}

// GET /v1/customers
func (s *Stripe) listCustomers(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	email := f.str("email")
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []*StripeCustomer
	for _, c := range s.customers {
		if email == "" || c.Email == email {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if !cs[i].Created.Equal(cs[j].Created) {
			return cs[i].Created.After(cs[j].Created)
		}
		return cs[i].ID > cs[j].ID
	})
	ids, objs := make([]string, len(cs)), make([]map[string]any, len(cs))
	for i, c := range cs {
		ids[i], objs[i] = c.ID, customerJSON(c)
	}
	writeList(w, f, PathCustomers, ids, objs)
}
