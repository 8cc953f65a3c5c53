// Package routetest drives the routes that a router example mounts over real
// HTTP, so that a change of the router (or of how the example mounts the
// handlers) that breaks them fails the example's test.
package routetest

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/google/go-cmp/cmp"
)

// Case is one request and what the router must answer.
type Case struct {
	Name   string
	Method string
	Path   string
	Token  string            // access_token cookie; empty for none
	Header map[string]string // request headers
	Body   string
	// Status is the expected status code.
	Status int
	// WantHeader lists headers the reply must carry with exactly these values.
	WantHeader map[string]string
	// JSON, if set, is the exact JSON body expected; a "url" is compared by
	// prefix only, since the portal URL differs per session.
	JSON map[string]any
	// Setup, if set, runs before the request, for example to change what
	// Stripe knows.
	Setup func(app *demo.App)
	// Check, if set, runs after the reply, for effects on the app.
	Check func(t *testing.T, app *demo.App)
}

// contractHeaders are the headers of every reply of the handlers.
var contractHeaders = map[string]string{
	"Content-Type":    "application/json",
	"Cache-Control":   "no-store",
	"Referrer-Policy": "no-referrer",
}

// PortalCases are the requests every router must route to the portal
// handler, with the contract's replies.
func PortalCases() []Case {
	created := map[string]any{"url": "https://billing.stripe.com/p/session/", "message": "Portal session created successfully"}
	unauthorized := map[string]any{"error": "Unauthorized", "message": "Authentication required"}
	return []Case{
		{Name: "portal created", Method: http.MethodPost, Path: demo.PortalPath, Token: billingtest.TokenPro,
			Status: http.StatusOK, WantHeader: contractHeaders, JSON: created},
		{Name: "portal created with a flow", Method: http.MethodPost, Path: demo.PortalPath, Token: billingtest.TokenBasic,
			Header: map[string]string{"Content-Type": "application/json"},
			Body:   `{"flow":{"type":"payment_method_update"}}`,
			Status: http.StatusOK, WantHeader: contractHeaders, JSON: created},
		{Name: "portal no cookie", Method: http.MethodPost, Path: demo.PortalPath,
			Status: http.StatusUnauthorized, WantHeader: contractHeaders, JSON: unauthorized},
		{Name: "portal bad token", Method: http.MethodPost, Path: demo.PortalPath, Token: "tok_forged",
			Status: http.StatusUnauthorized, WantHeader: contractHeaders, JSON: unauthorized},
		{Name: "portal free plan", Method: http.MethodPost, Path: demo.PortalPath, Token: billingtest.TokenFree,
			Status: http.StatusForbidden, WantHeader: contractHeaders,
			JSON: map[string]any{"error": "Forbidden", "message": "Customer portal is only available for paid subscriptions"}},
		{Name: "portal no customer", Method: http.MethodPost, Path: demo.PortalPath, Token: billingtest.TokenNoCustomer,
			Status: http.StatusNotFound, WantHeader: contractHeaders,
			JSON: map[string]any{"error": "Not Found", "message": "Stripe customer not found"}},
		{Name: "portal bad body", Method: http.MethodPost, Path: demo.PortalPath, Token: billingtest.TokenPro,
			Header: map[string]string{"Content-Type": "application/json"}, Body: `{"return_url":`,
			Status: http.StatusBadRequest, WantHeader: contractHeaders},
		{Name: "portal unknown path", Method: http.MethodPost, Path: demo.PortalPath + "X", Token: billingtest.TokenPro,
			Status: http.StatusNotFound},
	}
}

// WebhookCases are the requests every router must route to the webhook
// handler: a signed event that upgrades u_basic to PRO, and refused ones.
func WebhookCases() []Case {
	now := time.Now()
	upgrade := string(billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{
		ID: billingtest.SubscriptionBasic, Customer: billingtest.CustomerBasic, PriceID: billingtest.PricePro,
	}, now))
	signed := func(payload string) map[string]string {
		return map[string]string{
			"Content-Type":     "application/json; charset=utf-8",
			"Stripe-Signature": billingtest.Sign([]byte(payload), demo.WebhookSecret, now),
		}
	}
	plan := func(want billing.Plan) func(*testing.T, *demo.App) { return planOf(billingtest.UserBasic, want) }
	return []Case{
		{Name: "webhook unsigned", Method: http.MethodPost, Path: demo.WebhookPath, Body: upgrade,
			Header: map[string]string{"Content-Type": "application/json"},
			Status: http.StatusBadRequest, WantHeader: contractHeaders, Check: plan(billing.Basic)},
		{Name: "webhook signed with another secret", Method: http.MethodPost, Path: demo.WebhookPath, Body: upgrade,
			Header: map[string]string{"Stripe-Signature": billingtest.Sign([]byte(upgrade), "whsec_other", now)},
			Status: http.StatusBadRequest, WantHeader: contractHeaders, Check: plan(billing.Basic)},
		{Name: "webhook signed", Method: http.MethodPost, Path: demo.WebhookPath, Body: upgrade, Header: signed(upgrade),
			Status: http.StatusOK, WantHeader: contractHeaders,
			JSON:  map[string]any{"received": true, "outcome": "applied"},
			Check: plan(billing.Pro)},
		{Name: "webhook duplicate", Method: http.MethodPost, Path: demo.WebhookPath, Body: upgrade, Header: signed(upgrade),
			Status: http.StatusOK, JSON: map[string]any{"received": true, "outcome": "duplicate"}},
	}
}

// planOf returns a check that the user's stored plan is want.
func planOf(userID string, want billing.Plan) func(*testing.T, *demo.App) {
	return func(t *testing.T, app *demo.App) {
		t.Helper()
		u, ok, err := app.Store.User(context.Background(), userID)
		if err != nil || !ok || u.Plan != want {
			t.Errorf("%s: %+v, found %v, err %v; want plan %s", userID, u, ok, err, want)
		}
	}
}

// ReturnCases are the requests every router must route to the return
// sync: the PRO user downgraded to BASIC in the portal comes back before
// the webhook, and sees BASIC at once.
func ReturnCases() []Case {
	back := map[string]string{"Location": demo.AccountPath, "Cache-Control": "no-store"}
	return []Case{
		{Name: "return without credentials still redirects", Method: http.MethodGet, Path: demo.ReturnPath,
			Status: http.StatusSeeOther, WantHeader: back, Check: planOf(billingtest.UserPro, billing.Pro)},
		{Name: "return syncs the plan from Stripe", Method: http.MethodGet, Path: demo.ReturnPath, Token: billingtest.TokenPro,
			Setup: func(app *demo.App) {
				// What the portal did: sub_pro now on the BASIC price.
				app.Stripe.PutSubscription(billingtest.SubscriptionSpec{
					ID: billingtest.SubscriptionPro, Customer: billingtest.CustomerPro,
					PriceID: billingtest.PriceBasic, LookupKey: billingtest.LookupKeyBasic, ProductID: billingtest.ProductBasic,
				})
			},
			Status: http.StatusSeeOther, WantHeader: back, Check: planOf(billingtest.UserPro, billing.Basic)},
	}
}

// Run sends each case, in order, to srv (which serves app) and checks the
// reply.
func Run(t *testing.T, srv *httptest.Server, app *demo.App, cases []Case) {
	t.Helper()
	client := *srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.Setup != nil {
				c.Setup(app)
			}
			var body io.Reader
			if c.Body != "" {
				body = strings.NewReader(c.Body)
			}
			req, err := http.NewRequest(c.Method, srv.URL+c.Path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.Header {
				req.Header.Set(k, v)
			}
			if c.Token != "" {
				req.AddCookie(billingtest.Cookie(c.Token))
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != c.Status {
				t.Fatalf("%s %s: status %d, want %d; body %q", c.Method, c.Path, res.StatusCode, c.Status, raw)
			}
			for k, want := range c.WantHeader {
				if got := res.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if c.JSON != nil {
				var got map[string]any
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatalf("body %q is not a JSON object: %v", raw, err)
				}
				want := c.JSON
				if u, ok := want["url"].(string); ok {
					if g, _ := got["url"].(string); !strings.HasPrefix(g, u) {
						t.Errorf("url %q, want prefix %q", g, u)
					}
					want = maps.Clone(want)
					want["url"] = got["url"]
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			if c.Check != nil {
				c.Check(t, app)
			}
		})
	}
}

// All returns the portal, webhook and return cases followed by extra.
func All(extra ...Case) []Case {
	return slices.Concat(PortalCases(), WebhookCases(), ReturnCases(), extra)
}
