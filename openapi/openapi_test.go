package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/openapi"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

const (
	portalPath = "/api/subscription/create-portal-session"
	// server is the document's server: requests are built with its URL so
	// that the router finds their operation.
	server = "https://api.contafy.com"
)

// loadDoc loads and validates the document (its examples included).
func loadDoc(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.YAML)
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.yaml is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3.1 document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// portalCase is one request to the portal handler.
type portalCase struct {
	name   string
	method string
	token  string
	body   string
	ctype  string             // Content-Type of the body; default application/json
	header map[string]string  // extra request headers
	store  billing.UserStore  // default: the kit's standard users
	fault  *billingtest.Fault // what Stripe answers; nil is a session
	// timeout, if set, is the request's deadline.
	timeout time.Duration
	// status is the reply's status.
	status int
	// docAccepts says whether the document accepts the request itself: false
	// for a request the document already tells clients not to send (no
	// cookie, a body outside the schema). A request the document accepts
	// but the handler refuses (a return_url off the allowlist) is true.
	docAccepts bool
	// requestUnchecked skips the request check where the validator cannot
	// tell (it decodes only the first of several JSON values).
	requestUnchecked bool
}

func portalCases() []portalCase {
	failing := billing.UserStoreFunc(func(context.Context, string) (billing.User, bool, error) {
		return billing.User{}, false, errors.New("db down")
	})
	fault := func(f billingtest.Fault) *billingtest.Fault { return &f }
	big := `{"return_url":"https://app.example.com/billing/` + strings.Repeat("a", 9000) + `"}`
	pro, basic := billingtest.TokenPro, billingtest.TokenBasic
	return []portalCase{
		{name: "created", token: pro, status: 200, docAccepts: true},
		{name: "created basic", token: basic, status: 200, docAccepts: true},
		{name: "created empty object", token: pro, body: `{}`, status: 200, docAccepts: true},
		{name: "created return_url and locale", token: pro, body: `{"return_url":"https://app.example.com/billing/x","locale":"fr-CA"}`, status: 200, docAccepts: true},
		{name: "created payment method flow", token: basic, body: `{"flow":{"type":"payment_method_update","after_completion":{"type":"hosted_confirmation","message":"Thanks!"}}}`, status: 200, docAccepts: true},
		{name: "created update flow", token: pro, body: `{"flow":{"type":"subscription_update","subscription":"sub_pro"}}`, status: 200, docAccepts: true},
		{name: "created update confirm flow with quantity", token: pro, body: `{"flow":{"type":"subscription_update_confirm","items":[{"id":"si_1","quantity":3}],"discounts":[{"promotion_code":"promo_1"}],"after_completion":{"type":"portal_homepage"}}}`, status: 200, docAccepts: true},

		{name: "no cookie", status: 401, docAccepts: false},
		{name: "bad token", token: "tok_forged", status: 401, docAccepts: true},
		{name: "expired token", token: billingtest.TokenExpired, status: 401, docAccepts: true},
		{name: "unknown user", token: billingtest.TokenUnknownUser, status: 401, docAccepts: true},

		{name: "free plan", token: billingtest.TokenFree, status: 403, docAccepts: true},
		{name: "cross origin", token: pro, header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, status: 403, docAccepts: true},

		{name: "no stripe customer", token: billingtest.TokenNoCustomer, status: 404, docAccepts: true},
		{name: "stripe resource_missing", token: pro, fault: fault(billingtest.ResourceMissing("customer")), status: 404, docAccepts: true},

		{name: "GET", method: http.MethodGet, token: pro, status: 405, docAccepts: false},
		{name: "PUT", method: http.MethodPut, token: pro, body: `{}`, status: 405, docAccepts: false},

		{name: "malformed JSON", token: pro, body: `{"return_url":`, status: 400, docAccepts: false},
		{name: "unknown field", token: pro, body: `{"customer":"cus_other"}`, status: 400, docAccepts: false},
		{name: "two JSON values", token: pro, body: `{} {}`, status: 400, requestUnchecked: true},
		{name: "not JSON content type", token: pro, body: `return_url=x`, ctype: "application/x-www-form-urlencoded", status: 400, docAccepts: false},
		{name: "return_url off the allowlist", token: pro, body: `{"return_url":"https://evil.example/"}`, status: 400, docAccepts: true},
		{name: "unsupported locale", token: pro, body: `{"locale":"xx"}`, status: 400, docAccepts: false},
		{name: "unknown flow type", token: pro, body: `{"flow":{"type":"delete_everything"}}`, status: 400, docAccepts: false},
		{name: "flow field of another type", token: pro, body: `{"flow":{"type":"subscription_cancel","items":[{"id":"si_1","price":"price_1"}]}}`, status: 400, docAccepts: false},
		{name: "update confirm with two items", token: pro, body: `{"flow":{"type":"subscription_update_confirm","items":[{"id":"si_1","price":"p1"},{"id":"si_2","price":"p2"}]}}`, status: 400, docAccepts: false},
		{name: "discount with coupon and promotion code", token: pro, body: `{"flow":{"type":"subscription_update_confirm","items":[{"id":"si_1","price":"p1"}],"discounts":[{"coupon":"c","promotion_code":"promo_1"}]}}`, status: 400, docAccepts: false},
		{name: "redirect without return_url", token: pro, body: `{"flow":{"type":"subscription_cancel","after_completion":{"type":"redirect"}}}`, status: 400, docAccepts: false},
		{name: "flow on someone else's subscription", token: pro, body: `{"flow":{"type":"subscription_cancel","subscription":"sub_basic"}}`, status: 400, docAccepts: true},

		{name: "body too large", token: pro, body: big, status: 413, docAccepts: false},

		{name: "store failure", token: pro, store: failing, status: 500, docAccepts: true},
		{name: "stripe failure", token: pro, fault: fault(billingtest.ServerError(500)), status: 500, docAccepts: true},
		{name: "stripe unreachable", token: pro, fault: fault(billingtest.Drop()), status: 500, docAccepts: true},
		{name: "stripe timeout", token: pro, fault: fault(billingtest.Slow(5 * time.Second)), timeout: 100 * time.Millisecond, status: 500, docAccepts: true},
	}
}

// newRequest builds the request of c against the document's server.
func (c portalCase) newRequest() *http.Request {
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(method, server+portalPath, body)
	if c.body != "" {
		ct := c.ctype
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	if c.token != "" {
		r.AddCookie(&http.Cookie{Name: "access_token", Value: c.token})
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	return r
}

// securityCheck is the document's security schemes as a client sees them:
// the cookie or the signature header is there (whether it is valid only the
// server knows).
func securityCheck(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch in.SecuritySchemeName {
	case "accessToken":
		if c, err := r.Cookie("access_token"); err != nil || c.Value == "" {
			return errors.New("no access_token cookie")
		}
	case "stripeSignature":
		if r.Header.Get("Stripe-Signature") == "" {
			return errors.New("no Stripe-Signature header")
		}
	default:
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	return nil
}

// TestPortalReplies sends every row of the contract through the real
// portal handler and validates the request and the reply (status, headers,
// body) against the document. Every status the document lists must be
// produced by some row, and every status produced must be listed.
func TestPortalReplies(t *testing.T) {
	doc, router := loadDoc(t)
	seen := map[int]bool{}
	for _, c := range portalCases() {
		t.Run(c.name, func(t *testing.T) {
			fake := billingtest.StartStripe(t)
			fake.Seed()
			if c.fault != nil {
				fake.Fail(billingtest.PathPortalSessions, *c.fault)
			}
			svc := billingtest.NewPortalService(t, fake, c.store)
			req := c.newRequest()
			// The handler consumes the body; keep a copy for the request check.
			var reqBody []byte
			if req.Body != nil {
				reqBody, _ = io.ReadAll(req.Body)
				req.Body = io.NopCloser(bytes.NewReader(reqBody))
			}
			if c.timeout > 0 {
				ctx, cancel := context.WithTimeout(req.Context(), c.timeout)
				defer cancel()
				req = req.WithContext(ctx)
			}
			w := httptest.NewRecorder()
			svc.ServeHTTP(w, req)
			res := w.Result()
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", res.StatusCode, c.status, w.Body)
			}
			if n := fake.CallCount(billingtest.PathPortalSessions); res.StatusCode >= 400 && res.StatusCode < 500 && c.fault == nil && n > 0 {
				t.Errorf("a rejected request made %d Stripe calls", n)
			}
			seen[res.StatusCode] = true

			check := req.Clone(context.Background())
			check.Body = io.NopCloser(bytes.NewReader(reqBody))
			want := rejects
			switch {
			case c.requestUnchecked:
				want = unchecked
			case c.docAccepts:
				want = accepts
			}
			if err := validate(doc, router, check, res, w.Body.Bytes(), want); err != nil {
				t.Error(err)
			}
		})
	}
	checkCoverage(t, doc, portalPath, seen)
}

// checkCoverage fails unless the rows produced exactly the statuses the
// document lists for POST path.
func checkCoverage(t *testing.T, doc *openapi3.T, path string, seen map[int]bool) {
	t.Helper()
	checkOpCoverage(t, doc, http.MethodPost, path, seen)
}

// checkOpCoverage fails unless the rows produced exactly the statuses the
// document lists for the operation method path.
func checkOpCoverage(t *testing.T, doc *openapi3.T, method, path string, seen map[int]bool) {
	t.Helper()
	if rowsFiltered() {
		t.Log("some rows filtered out by -run: status coverage not checked")
		return
	}
	documented := documentedStatuses(t, doc, method, path)
	var produced []int
	for s := range seen {
		produced = append(produced, s)
	}
	sort.Ints(produced)
	if !slices.Equal(documented, produced) {
		t.Errorf("%s %s: statuses documented %v, produced by the rows %v", method, path, documented, produced)
	}
}

// rowsFiltered reports whether -run selects subtests, so that some rows of
// a table may not have run.
func rowsFiltered() bool {
	f := flag.Lookup("test.run")
	return f != nil && strings.Contains(f.Value.String(), "/")
}

// verdict is what the document must say of a request.
type verdict int

const (
	accepts verdict = iota
	rejects
	unchecked
)

// validate checks a request and its reply against the POST operation of
// the request's path (see validateOp).
func validate(doc *openapi3.T, router routers.Router, req *http.Request, res *http.Response, body []byte, want verdict) error {
	return validateOp(doc, router, http.MethodPost, req, res, body, want)
}

// validateOp checks a request and its reply against the document's
// operation method of the request's path. A request of another method (its
// reply a 405) is not checked, and its reply is checked against that
// operation, where the document lists it.
func validateOp(doc *openapi3.T, router routers.Router, method string, req *http.Request, res *http.Response, body []byte, want verdict) error {
	lookup := req
	if req.Method != method {
		lookup = req.Clone(context.Background())
		lookup.Method = method
	}
	route, params, err := router.FindRoute(lookup)
	if err != nil {
		return fmt.Errorf("no operation in the document for %s %s: %v", lookup.Method, lookup.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:                securityCheck,
			RejectWhenRequestBodyNotSpecified: true,
			MultiError:                        true,
		},
	}
	if req.Method == method && want != unchecked {
		reqErr := openapi3filter.ValidateRequest(context.Background(), in)
		switch {
		case want == accepts && reqErr != nil:
			return fmt.Errorf("the document rejects a request the row says it accepts: %v", reqErr)
		case want == rejects && reqErr == nil:
			return errors.New("the document accepts a request the row says it rejects: tighten the schema or the row")
		}
	}
	in.Options = &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Options:                in.Options,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("reply %d %s does not match the document: %v", res.StatusCode, body, err)
	}
	return nil
}

// documentedStatuses returns the statuses the document lists for the
// operation method path.
func documentedStatuses(t *testing.T, doc *openapi3.T, method, path string) []int {
	t.Helper()
	item := doc.Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil {
		t.Fatalf("the document has no operation %s %s", method, path)
	}
	op := item.GetOperation(method)
	var out []int
	for code := range op.Responses.Map() {
		n, err := strconv.Atoi(code)
		if err != nil {
			t.Fatalf("response %q of %s %s is not a status code", code, method, path)
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// TestValidatorRejectsDrift makes sure the checks above can fail: replies
// that differ from the contract in one way each must be refused.
func TestValidatorRejectsDrift(t *testing.T) {
	doc, router := loadDoc(t)
	good := http.Header{
		"Content-Type":           {"application/json"},
		"Cache-Control":          {"no-store"},
		"Referrer-Policy":        {"no-referrer"},
		"X-Content-Type-Options": {"nosniff"},
	}
	without := func(k string) http.Header { h := good.Clone(); h.Del(k); return h }
	with := func(k, v string) http.Header { h := good.Clone(); h.Set(k, v); return h }
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
	}{
		{"other message", 401, good, `{"error":"Unauthorized","message":"Token expired"}`},
		{"extra field", 401, good, `{"error":"Unauthorized","message":"Authentication required","detail":"jwt exp"}`},
		{"error word of another status", 404, good, `{"error":"Forbidden","message":"Stripe customer not found"}`},
		{"no Cache-Control", 401, without("Cache-Control"), `{"error":"Unauthorized","message":"Authentication required"}`},
		{"cacheable", 200, with("Cache-Control", "private"), `{"url":"https://billing.stripe.com/p/session/x","message":"Portal session created successfully"}`},
		{"no Referrer-Policy", 200, without("Referrer-Policy"), `{"url":"https://billing.stripe.com/p/session/x","message":"Portal session created successfully"}`},
		{"no url", 200, good, `{"message":"Portal session created successfully"}`},
		{"http url", 200, good, `{"url":"http://billing.stripe.com/p/session/x","message":"Portal session created successfully"}`},
		{"500 with Stripe's text", 500, good, `{"error":"Internal Server Error","message":"No such customer: cus_1"}`},
		{"405 without Allow", 405, good, `{"error":"Method Not Allowed","message":"Only POST is allowed"}`},
		{"text body", 400, with("Content-Type", "text/plain"), `bad request`},
		{"undocumented status", 429, good, `{"error":"Too Many Requests","message":"slow down"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := portalCase{token: "tok_pro"}.newRequest()
			res := &http.Response{StatusCode: tt.status, Header: tt.header}
			if err := validate(doc, router, req, res, []byte(tt.body), accepts); err == nil {
				t.Errorf("reply %d %s with %v passed the document", tt.status, tt.body, tt.header)
			}
		})
	}
}

// TestExamples validates every example of the document against its schema,
// and sends every request example to the handler, which must accept it.
// Every operation must give examples of its replies.
func TestExamples(t *testing.T) {
	doc, router := loadDoc(t)
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			replyExamples := 0
			if op.RequestBody != nil {
				for ct, mt := range op.RequestBody.Value.Content {
					for name, v := range examples(mt) {
						n++
						t.Run(fmt.Sprintf("%s %s request %s %s", method, path, ct, name), func(t *testing.T) {
							if err := doc.ValidateSchemaJSON(mt.Schema.Value, v, openapi3.EnableJSONSchema2020()); err != nil {
								t.Errorf("example does not match its schema: %v", err)
							}
						})
					}
				}
			}
			for code, rr := range op.Responses.Map() {
				for ct, mt := range rr.Value.Content {
					for name, v := range examples(mt) {
						n++
						replyExamples++
						t.Run(fmt.Sprintf("%s %s %s %s %s", method, path, code, ct, name), func(t *testing.T) {
							if err := doc.ValidateSchemaJSON(mt.Schema.Value, v, openapi3.EnableJSONSchema2020()); err != nil {
								t.Errorf("example does not match its schema: %v", err)
							}
						})
					}
				}
			}
			if replyExamples == 0 {
				t.Errorf("%s %s gives no example of its replies", method, path)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d examples found; the document lost its examples", n)
	}

	// A wrong example must be caught by the same check.
	mt := doc.Paths.Value(portalPath).Post.Responses.Status(401).Value.Content.Get("application/json")
	bad := map[string]any{"error": "Unauthorized", "message": "Token expired"}
	if err := doc.ValidateSchemaJSON(mt.Schema.Value, bad, openapi3.EnableJSONSchema2020()); err == nil {
		t.Error("a 401 example with another message passed its schema")
	}

	// Every request example is a request the handler accepts.
	reqMT := doc.Paths.Value(portalPath).Post.RequestBody.Value.Content.Get("application/json")
	for name := range examples(reqMT) {
		ex := reqMT.Examples[name].Value.Value
		t.Run("handler accepts request example "+name, func(t *testing.T) {
			body, err := json.Marshal(ex)
			if err != nil {
				t.Fatal(err)
			}
			c := portalCase{token: "tok_pro", body: string(body), status: 200, docAccepts: true}
			fake := billingtest.StartStripe(t)
			fake.Seed()
			svc := billingtest.NewPortalService(t, fake, nil)
			w := httptest.NewRecorder()
			svc.ServeHTTP(w, c.newRequest())
			if w.Code != http.StatusOK {
				t.Fatalf("example %s: status %d, body %s", body, w.Code, w.Body)
			}
			if err := validate(doc, router, c.newRequest(), w.Result(), w.Body.Bytes(), accepts); err != nil {
				t.Error(err)
			}
		})
	}
}

// examples returns the example values of a media type by name.
func examples(mt *openapi3.MediaType) map[string]any {
	out := map[string]any{}
	if mt.Example != nil {
		out["example"] = mt.Example
	}
	for name, ex := range mt.Examples {
		out[name] = ex.Value.Value
	}
	return out
}
