// Command echo mounts the billing handlers on a github.com/labstack/echo/v4
// server through echo.WrapHandler:
//
//	e.POST("/api/subscription/create-portal-session", echo.WrapHandler(portal))
//	e.POST("/api/subscription/webhook", echo.WrapHandler(webhook))
//	e.GET("/billing/return", echo.WrapHandler(returnSync)) // the portal's return URL
//
// The handlers write their own replies and never return an error to echo,
// so echo's HTTPErrorHandler does not rewrite the contract's JSON; keep
// body-reading middleware (BodyDump, BodyLimit with a lower cap) off the
// webhook route, whose signature covers the raw body. For other methods
// echo answers 405 itself.
//
// Run it offline (the test kit's fake Stripe and standard users) and try it:
//
//	go run ./echo
//	curl -X POST -b access_token=tok_pro localhost:8080/api/subscription/create-portal-session
package main

import (
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routes mounts the app's handlers.
func routes(app *demo.App) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Use(middleware.Recover())
	api := e.Group("/api/subscription")
	api.POST("/create-portal-session", echo.WrapHandler(app.Portal))
	api.POST("/webhook", echo.WrapHandler(app.Webhook))
	e.GET(demo.ReturnPath, echo.WrapHandler(app.Return))
	return e
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	app, err := demo.New(demo.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	defer app.Close()
	srv := &http.Server{Addr: "localhost:8080", Handler: routes(app), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s", srv.Addr)
	return srv.ListenAndServe()
}
