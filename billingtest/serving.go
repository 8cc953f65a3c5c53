package billingtest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
	if strings.HasPrefix(r.URL.Path, "/v1/") && !authorized(r) {
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

// routes returns the emulator's endpoints, one net/http pattern each (the
// package documentation lists them). Any other method or path is answered
// by unrecognized.
func (s *Stripe) routes() *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(methods, path string, h http.HandlerFunc) {
		for _, m := range strings.Fields(methods) {
			mux.HandleFunc(m+" "+path, h)
		}
	}
	handle("POST", PathPortalSessions, s.createSession)
	handle("GET", PathPortalConfigurations, s.listConfigs)
	handle("POST", PathPortalConfigurations, s.createConfig)
	handle("GET POST", PathPortalConfigurations+"/{id}", s.config)

	handle("GET", PathProducts, s.listProducts)
	handle("POST", PathProducts, s.createProduct)
	handle("GET POST", PathProducts+"/{id}", s.product)
	handle("GET", PathProducts+"/{id}/features", s.listProductFeatures)
	handle("POST", PathProducts+"/{id}/features", s.attachProductFeature)
	handle("GET DELETE", PathProducts+"/{id}/features/{pf}", s.productFeature)
	handle("GET", PathPrices, s.listPrices)
	handle("POST", PathPrices, s.createPrice)
	handle("GET POST", PathPrices+"/{id}", s.price)

	handle("GET", PathCustomers, s.listCustomers)
	handle("POST", PathCustomers, s.createCustomer)
	handle("GET POST", PathCustomers+"/{id}", s.customer)
	handle("GET", PathCustomers+"/{id}/payment_methods", s.listMethods)

	handle("GET", PathSubscriptions, s.listSubscriptions)
	handle("POST", PathSubscriptions, s.createSubscription)
	handle("GET", PathSubscriptions+"/{id}", s.getSubscription)
	handle("POST", PathSubscriptions+"/{id}", s.updateSubscription)
	handle("DELETE", PathSubscriptions+"/{id}", s.cancelSubscription)

	handle("GET", PathInvoices, s.listInvoices)
	handle("GET", PathInvoices+"/{id}", s.getInvoice)

	handle("GET", PathPaymentMethods, s.listMethods)
	handle("POST", PathPaymentMethods, s.createMethod)
	handle("GET", PathPaymentMethods+"/{id}", s.getMethod)
	handle("POST", PathPaymentMethods+"/{id}/attach", s.attachMethod)
	handle("POST", PathPaymentMethods+"/{id}/detach", s.detachMethod)

	handle("GET", PathWebhookEndpoints, s.listEndpoints)
	handle("POST", PathWebhookEndpoints, s.createEndpoint)
	handle("GET POST DELETE", PathWebhookEndpoints+"/{id}", s.endpoint)

	handle("GET", PathEvents, s.listEvents)
	handle("GET", PathEvents+"/{id}", s.getEvent)

	handle("GET", PathFeatures, s.listFeatures)
	handle("POST", PathFeatures, s.createFeature)
	handle("GET POST", PathFeatures+"/{id}", s.feature)
	handle("GET", PathActiveEntitlements, s.listActiveEntitlements)
	handle("GET", PathActiveEntitlements+"/{id}", s.getActiveEntitlement)

	handle("GET", "/emulator/clock", s.clockHandler)
	handle("POST", PathClockAdvance, s.clockHandler)
	handle("GET", "/i/{id}", s.invoiceHTML)
	handle("GET", "/i/{id}/pdf", s.invoicePDF)
	s.pageRoutes(handle)

	// "/" matches every method and path, so the mux never answers 405 or
	// 404 itself: a wrong method gets Stripe's JSON too.
	mux.HandleFunc("/", unrecognized)
	return mux
}

// unrecognized answers Stripe's 404 for a URL it does not serve.
func unrecognized(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, apiError{Type: "invalid_request_error",
		Message: fmt.Sprintf("Unrecognized request URL (%s: %s). The billingtest emulator serves only part of Stripe's API (see the package documentation of github.com/contafy/billing/billingtest).", r.Method, r.URL.Path)})
}

// POST /v1/billing_portal/sessions
func (s *Stripe) createSession(w http.ResponseWriter, r *http.Request) {
	cus := r.PostForm.Get("customer")
	if cus == "" {
		writeError(w, http.StatusBadRequest, missingParam("customer"))
		return
	}
	confID := r.PostForm.Get("configuration")
	s.mu.Lock()
	_, known := s.customers[cus]
	// A configuration id the emulator does not know behaves as the
	// default configuration (the fake always took any id; Stripe answers
	// 404).
	conf, confOK := s.portal.configs[confID]
	if !confOK {
		conf = s.portal.configs[defaultConfigID]
	}
	def, active := conf.defaultReturnURL, conf.active
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, noSuch("customer", "customer", cus))
		return
	}
	switch {
	case !active:
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Param: "configuration",
			Message: fmt.Sprintf("The configuration %s is not active; activate it or use another.", confID)})
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
	token := NewID("test")
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := PortalSession{
		ID:            NewID("bps"),
		URL:           s.cfg.PortalURL + pagePrefix + token,
		Customer:      cus,
		ReturnURL:     ret,
		Configuration: confID,
		Locale:        r.PostForm.Get("locale"),
		OnBehalfOf:    r.PostForm.Get("on_behalf_of"),
		FlowData:      flow,
		Created:       s.now(),
	}
	s.sessions = append(s.sessions, ps)
	pageConfig := defaultConfigID
	if confOK {
		pageConfig = confID
	}
	s.portal.pages[token] = &portalPage{token: token, session: ps.ID, customer: cus, config: pageConfig,
		returnURL: ret, locale: ps.Locale, flow: flow, lastSeen: ps.Created}
	body := map[string]any{
		"id":            ps.ID,
		"object":        "billing_portal.session",
		"configuration": orDefault(confID, defaultConfigID),
		"created":       ps.Created.Unix(),
		"customer":      ps.Customer,
		"flow":          flowJSON(flow),
		"livemode":      false,
		"locale":        orNil(ps.Locale),
		"on_behalf_of":  orNil(ps.OnBehalfOf),
		"return_url":    ps.ReturnURL,
		"url":           ps.URL,
	}
	s.expandLocked(body, newForm(r).expand())
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
	switch flow.Get("flow_data[after_completion][type]") {
	case "", "portal_homepage", "hosted_confirmation":
	case "redirect":
		const param = "flow_data[after_completion][redirect][return_url]"
		if u := flow.Get(param); u == "" {
			m := missingParam(param)
			return nil, http.StatusBadRequest, &m
		} else if !validURL(u) {
			return nil, http.StatusBadRequest, &apiError{Type: "invalid_request_error", Code: "url_invalid", Param: param, Message: "Not a valid URL"}
		}
	default:
		return nil, http.StatusBadRequest, &apiError{Type: "invalid_request_error", Code: "parameter_invalid_string", Param: "flow_data[after_completion][type]",
			Message: "Invalid flow_data[after_completion][type]: use redirect, hosted_confirmation or portal_homepage."}
	}
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
