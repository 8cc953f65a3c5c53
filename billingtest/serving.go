package billingtest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// ServeHTTP implements http.Handler; the fake's server calls it. It is
// exported so that a fake can also be mounted on a server of your own.
func (s *Stripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := NewID("req")
	w.Header().Set("Request-Id", reqID)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	formErr := r.ParseForm()

	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	if ci == nil { // mounted on a server of the caller's
		ci = &connInfo{}
	}
	reused := ci.requests.Add(1) > 1
	s.mu.Lock()
	idx, gen := len(s.calls), s.callsGen
	s.calls = append(s.calls, Call{
		Method:         r.Method,
		Path:           r.URL.Path,
		Form:           cloneValues(r.Form),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		StripeVersion:  r.Header.Get("Stripe-Version"),
		StripeAccount:  r.Header.Get("Stripe-Account"),
		Conn:           ci.n,
		RequestID:      reqID,
		Time:           time.Now(),
	})
	close(s.callAdded)
	s.callAdded = make(chan struct{})
	s.mu.Unlock()
	rw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		if s.callsGen == gen { // not forgotten by a Reset meanwhile
			s.calls[idx].Status = rw.status
		}
		s.mu.Unlock()
	}()

	if f, ok := s.takeFault(r.Method, r.URL.Path); ok {
		s.mu.Lock()
		if s.callsGen == gen {
			s.calls[idx].Fault = f.String()
		}
		s.mu.Unlock()
		if !s.inject(rw, r, f, reused) {
			return
		}
	}
	if formErr != nil {
		writeError(rw, http.StatusBadRequest, apiError{Type: "invalid_request_error", Message: "Invalid request body."})
		return
	}
	if !authorized(r) {
		writeError(rw, http.StatusUnauthorized, apiError{Type: "invalid_request_error",
			Message: "Invalid API Key provided. The fake accepts test-mode keys (sk_test_... or rk_test_...)."})
		return
	}
	s.mux.ServeHTTP(rw, r)
}

// authorized reports whether r carries a test-mode key, as a Bearer token
// or as the user of basic auth.
func authorized(r *http.Request) bool {
	key, ok := "", false
	if user, _, basic := r.BasicAuth(); basic {
		key, ok = user, true
	} else if b, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		key, ok = strings.TrimSpace(b), true
	}
	return ok && (strings.HasPrefix(key, "sk_test_") || strings.HasPrefix(key, "rk_test_"))
}

// routes returns the fake's endpoints, one net/http pattern each (see
// [Stripe]). Any other method or path is answered by unrecognized.
func (s *Stripe) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathPortalSessions, s.createSession)
	mux.HandleFunc("GET "+PathSubscriptions, s.listSubscriptions)
	mux.HandleFunc("GET "+PathSubscriptions+"/{id}", s.getSubscription)
	mux.HandleFunc("POST "+PathCustomers, s.createCustomer)
	mux.HandleFunc("GET "+PathCustomers+"/{id}", s.customer)
	mux.HandleFunc("POST "+PathCustomers+"/{id}", s.customer)
	// "/" matches every method and path, so the mux never answers 405 or
	// 404 itself: a wrong method gets Stripe's JSON too.
	mux.HandleFunc("/", unrecognized)
	return mux
}

// unrecognized answers Stripe's 404 for a URL it does not serve.
func unrecognized(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, apiError{Type: "invalid_request_error",
		Message: fmt.Sprintf("Unrecognized request URL (%s: %s). The billingtest fake serves only part of Stripe's API.", r.Method, r.URL.Path)})
}

func (s *Stripe) createSession(w http.ResponseWriter, r *http.Request) {
	cus := r.PostForm.Get("customer")
	if cus == "" {
		writeError(w, http.StatusBadRequest, missingParam("customer"))
		return
	}
	s.mu.Lock()
	_, known := s.customers[cus]
	def := s.defaultReturn
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, noSuch("customer", "customer", cus))
		return
	}
	ret := r.PostForm.Get("return_url")
	if ret == "" {
		ret = def
	}
	if ret == "" {
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "parameter_missing", Param: "return_url",
			Message: "You must provide a return_url or set a default return URL in the portal configuration."})
		return
	}
	if !validURL(ret) {
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "url_invalid", Param: "return_url", Message: "Not a valid URL"})
		return
	}
	flow, status, e := s.checkFlow(r.PostForm, cus)
	if e != nil {
		writeError(w, status, *e)
		return
	}
	ps := PortalSession{
		ID:            NewID("bps"),
		URL:           "https://billing.stripe.com/p/session/" + NewID("test"),
		Customer:      cus,
		ReturnURL:     ret,
		Configuration: r.PostForm.Get("configuration"),
		Locale:        r.PostForm.Get("locale"),
		OnBehalfOf:    r.PostForm.Get("on_behalf_of"),
		FlowData:      flow,
		Created:       time.Now(),
	}
	s.mu.Lock()
	s.sessions = append(s.sessions, ps)
	s.mu.Unlock()
	body := map[string]any{
		"id":            ps.ID,
		"object":        "billing_portal.session",
		"configuration": orNil(ps.Configuration),
		"created":       ps.Created.Unix(),
		"customer":      ps.Customer,
		"flow":          flowJSON(flow),
		"livemode":      false,
		"locale":        orNil(ps.Locale),
		"on_behalf_of":  orNil(ps.OnBehalfOf),
		"return_url":    ps.ReturnURL,
		"url":           ps.URL,
	}
	if ps.Configuration == "" {
		body["configuration"] = "bpc_billingtest_default"
	}
	writeJSON(w, http.StatusOK, body)
}

var flowTypes = map[string]bool{
	"payment_method_update": true, "subscription_cancel": true,
	"subscription_update": true, "subscription_update_confirm": true,
}

// checkFlow returns the flow_data parameters, after the checks Stripe makes
// that matter to the billing library: a known type, and a subscription that
// exists (else 404 resource_missing, as for the customer) and belongs to the
// session's customer (else 400).
func (s *Stripe) checkFlow(form url.Values, cus string) (url.Values, int, *apiError) {
	var flow url.Values
	for k, v := range form {
		if strings.HasPrefix(k, "flow_data[") {
			if flow == nil {
				flow = url.Values{}
			}
			flow[k] = slices.Clone(v)
		}
	}
	if flow == nil {
		return nil, 0, nil
	}
	typ := flow.Get("flow_data[type]")
	if !flowTypes[typ] {
		return nil, http.StatusBadRequest, &apiError{Type: "invalid_request_error", Code: "parameter_invalid_string", Param: "flow_data[type]",
			Message: "Invalid flow_data[type]."}
	}
	if typ == "payment_method_update" {
		return flow, 0, nil
	}
	param := "flow_data[" + typ + "][subscription]"
	id := flow.Get(param)
	if id == "" {
		m := missingParam(param)
		return nil, http.StatusBadRequest, &m
	}
	s.mu.Lock()
	sub, ok := s.subs[id]
	owner := ""
	if ok {
		owner = sub.Customer
	}
	s.mu.Unlock()
	if !ok {
		e := noSuch(param, "subscription", id)
		return nil, http.StatusNotFound, &e
	}
	if owner != cus {
		return nil, http.StatusBadRequest, &apiError{Type: "invalid_request_error", Param: param,
			Message: "The subscription does not belong to the session's customer."}
	}
	return flow, 0, nil
}

func (s *Stripe) getSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	sub, ok := s.subs[id]
	var body map[string]any
	if ok {
		body = sub.object()
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "subscription", id))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Stripe) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	q := r.Form
	cus, status, price := q.Get("customer"), q.Get("status"), q.Get("price")
	s.mu.Lock()
	var subs []*SubscriptionSpec
	for _, sub := range s.subs {
		switch {
		case cus != "" && sub.Customer != cus,
			price != "" && sub.PriceID != price,
			status == "" && sub.Status == "canceled",
			status != "" && status != "all" && sub.Status != status:
			continue
		}
		subs = append(subs, sub)
	}
	sort.Slice(subs, func(i, j int) bool {
		if !subs[i].Created.Equal(subs[j].Created) {
			return subs[i].Created.After(subs[j].Created) // newest first, as Stripe lists
		}
		return subs[i].ID < subs[j].ID
	})
	data := make([]any, len(subs))
	for i, sub := range subs {
		data[i] = sub.object()
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false, "url": PathSubscriptions})
}

func (s *Stripe) createCustomer(w http.ResponseWriter, r *http.Request) {
	c := &StripeCustomer{ID: NewID("cus"), Created: time.Now()}
	applyCustomer(c, r.PostForm)
	s.mu.Lock()
	s.customers[c.ID] = c
	body := customerJSON(c)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (s *Stripe) customer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	c, ok := s.customers[id]
	var body map[string]any
	if ok {
		if r.Method == http.MethodPost {
			applyCustomer(c, r.PostForm)
		}
		body = customerJSON(c)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "customer", id))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func applyCustomer(c *StripeCustomer, form url.Values) {
	if v, ok := form["email"]; ok {
		c.Email = v[0]
	}
	if v, ok := form["name"]; ok {
		c.Name = v[0]
	}
	for k, v := range form {
		if key, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(key, "]") {
			if c.Metadata == nil {
				c.Metadata = map[string]string{}
			}
			key = strings.TrimSuffix(key, "]")
			if v[0] == "" {
				delete(c.Metadata, key)
			} else {
				c.Metadata[key] = v[0]
			}
		}
	}
}
