package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/contafy/billing/examples/routers/internal/routetest"
)

func TestRoutes(t *testing.T) {
	app, err := demo.New(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewServer(routes(app))
	defer srv.Close()

	routetest.Run(t, srv, app, routetest.All(
		// The method pattern makes the mux answer, with an Allow header.
		routetest.Case{Name: "portal GET", Method: http.MethodGet, Path: demo.PortalPath, Token: billingtest.TokenPro,
			Status: http.StatusMethodNotAllowed, WantHeader: map[string]string{"Allow": "POST"}},
		routetest.Case{Name: "return POST", Method: http.MethodPost, Path: demo.ReturnPath,
			Status: http.StatusMethodNotAllowed, WantHeader: map[string]string{"Allow": "GET, HEAD"}},
		routetest.Case{Name: "webhook GET", Method: http.MethodGet, Path: demo.WebhookPath,
			Status: http.StatusMethodNotAllowed, WantHeader: map[string]string{"Allow": "POST"}},
	))
}
