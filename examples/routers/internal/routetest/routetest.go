// Package routetest drives the routes that a router example mounts over real
// HTTP, so that a change of the router (or of how the example mounts the
// handlers) that breaks them fails the example's test.
package routetest

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/google/go-cmp/cmp"
)

// Case is one request and what the router must answer.
type Case struct {
	Name   string
	Method string
	Path   string
	Token  string // access_token cookie; empty for none
	Body   string
	// Status is the expected status code.
	Status int
	// Header lists headers the reply must carry with exactly these values.
	Header map[string]string
	// JSON, if set, is the exact JSON body expected (keys "url" compared by
	// prefix only, since the portal URL differs per session).
	JSON map[string]string
}

// contractHeaders are the headers of every reply of the portal handler.
var contractHeaders = map[string]string{
	"Content-Type":    "application/json",
	"Cache-Control":   "no-store",
	"Referrer-Policy": "no-referrer",
}

// PortalCases are the requests every router must route to the portal
// handler, with the contract's replies.
func PortalCases() []Case {
	return []Case{
		{
			Name: "created", Method: http.MethodPost, Path: demo.PortalPath, Token: "tok_pro",
			Status: http.StatusOK, Header: contractHeaders,
			JSON: map[string]string{"url": "https://billing.stripe.com/p/session/", "message": "Portal session created successfully"},
		},
		{
			Name: "created with body", Method: http.MethodPost, Path: demo.PortalPath, Token: "tok_basic",
			Body:   `{"flow":{"type":"payment_method_update"}}`,
			Status: http.StatusOK, Header: contractHeaders,
			JSON: map[string]string{"url": "https://billing.stripe.com/p/session/", "message": "Portal session created successfully"},
		},
		{
			Name: "no cookie", Method: http.MethodPost, Path: demo.PortalPath,
			Status: http.StatusUnauthorized, Header: contractHeaders,
			JSON: map[string]string{"error": "Unauthorized", "message": "Authentication required"},
		},
		{
			Name: "bad token", Method: http.MethodPost, Path: demo.PortalPath, Token: "tok_forged",
			Status: http.StatusUnauthorized, Header: contractHeaders,
			JSON: map[string]string{"error": "Unauthorized", "message": "Authentication required"},
		},
		{
			Name: "free plan", Method: http.MethodPost, Path: demo.PortalPath, Token: "tok_free",
			Status: http.StatusForbidden, Header: contractHeaders,
			JSON: map[string]string{"error": "Forbidden", "message": "Customer portal is only available for paid subscriptions"},
		},
		{
			Name: "bad body", Method: http.MethodPost, Path: demo.PortalPath, Token: "tok_pro",
			Body:   `{"return_url":`,
			Status: http.StatusBadRequest, Header: contractHeaders,
		},
		{
			Name: "unknown path", Method: http.MethodPost, Path: "/api/subscription/create-portal-sessionX", Token: "tok_pro",
			Status: http.StatusNotFound,
		},
	}
}

// Run sends each case to srv and checks the reply.
func Run(t *testing.T, srv *httptest.Server, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			var body io.Reader
			if c.Body != "" {
				body = strings.NewReader(c.Body)
			}
			req, err := http.NewRequest(c.Method, srv.URL+c.Path, body)
			if err != nil {
				t.Fatal(err)
			}
			if c.Body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.Token != "" {
				req.AddCookie(&http.Cookie{Name: "access_token", Value: c.Token})
			}
			res, err := srv.Client().Do(req)
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
			for k, want := range c.Header {
				if got := res.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if c.JSON == nil {
				return
			}
			var got map[string]string
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("body %q is not a JSON object of strings: %v", raw, err)
			}
			want := c.JSON
			if u, ok := want["url"]; ok {
				if !strings.HasPrefix(got["url"], u) {
					t.Errorf("url %q, want prefix %q", got["url"], u)
				}
				want = maps.Clone(want)
				want["url"] = got["url"]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}
