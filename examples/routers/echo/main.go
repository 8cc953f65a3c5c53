// Command echo mounts the billing handlers on a github.com/labstack/echo/v4
// server through echo.WrapHandler:
//
//	e.POST("/api/subscription/create-portal-session", echo.WrapHandler(portal))
//
// The handlers write their own replies and never return an error to echo,
// so echo's HTTPErrorHandler does not rewrite the contract's JSON. For other
// methods echo answers 405 itself.
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
	return e
}

func main() {
	app, err := demo.New(demo.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: "localhost:8080", Handler: routes(app), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s", srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
