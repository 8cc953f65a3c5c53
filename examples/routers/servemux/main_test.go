package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/contafy/billing/examples/routers/internal/routetest"
)

func TestRoutes(t *testing.T) {
	app, err := demo.New(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(routes(app))
	defer srv.Close()

	cases := append(routetest.PortalCases(), routetest.Case{
		// The method pattern makes the mux answer, with an Allow header.
		Name: "GET", Method: http.MethodGet, Path: demo.PortalPath, Token: "tok_pro",
		Status: http.StatusMethodNotAllowed, Header: map[string]string{"Allow": "POST"},
	})
	routetest.Run(t, srv, cases)
}
