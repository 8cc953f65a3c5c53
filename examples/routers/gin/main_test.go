package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/contafy/billing/examples/routers/internal/routetest"
	"github.com/gin-gonic/gin"
)

func TestRoutes(t *testing.T) {
	gin.SetMode(gin.TestMode)
	app, err := demo.New(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewServer(routes(app))
	defer srv.Close()

	routetest.Run(t, srv, app, routetest.All(
		// HandleMethodNotAllowed: 405 with an Allow header, not gin's 404.
		routetest.Case{Name: "portal GET", Method: http.MethodGet, Path: demo.PortalPath, Token: billingtest.TokenPro,
			Status: http.StatusMethodNotAllowed, WantHeader: map[string]string{"Allow": "POST"}},
		routetest.Case{Name: "return POST", Method: http.MethodPost, Path: demo.ReturnPath,
			Status: http.StatusMethodNotAllowed, WantHeader: map[string]string{"Allow": "GET"}},
		routetest.Case{Name: "webhook GET", Method: http.MethodGet, Path: demo.WebhookPath,
			Status: http.StatusMethodNotAllowed, WantHeader: map[string]string{"Allow": "POST"}},
	))
}
