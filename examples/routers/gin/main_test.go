package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

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
	srv := httptest.NewServer(routes(app))
	defer srv.Close()

	cases := append(routetest.PortalCases(), routetest.Case{
		// HandleMethodNotAllowed: 405 with an Allow header, not gin's 404.
		Name: "GET", Method: http.MethodGet, Path: demo.PortalPath, Token: "tok_pro",
		Status: http.StatusMethodNotAllowed, Header: map[string]string{"Allow": "POST"},
	})
	routetest.Run(t, srv, cases)
}
