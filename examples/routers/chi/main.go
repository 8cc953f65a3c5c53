// Command chi mounts the billing handlers on a github.com/go-chi/chi/v5
// router:
//
//	r.Method(http.MethodPost, "/api/subscription/create-portal-session", portal)
//	r.Method(http.MethodPost, "/api/subscription/webhook", webhook)
//	r.Method(http.MethodGet, "/billing/return", returnSync) // the portal's return URL
//
// Middleware such as chi's middleware.RequestID or a rate limiter wraps the
// handlers as it wraps any other; keep body-rewriting middleware (such as
// compression of request bodies) off the webhook route, whose signature
// covers the raw body. For other methods chi answers 405 itself.
//
// Run it offline (the test kit's fake Stripe and standard users) and try it:
//
//	go run ./chi
//	curl -X POST -b access_token=tok_pro localhost:8080/api/subscription/create-portal-session
package main

import (
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/go-chi/chi/v5"
)

// routes mounts the app's handlers.
func routes(app *demo.App) http.Handler {
	r := chi.NewRouter()
	r.Route("/api/subscription", func(r chi.Router) {
		r.Method(http.MethodPost, "/create-portal-session", app.Portal)
		r.Method(http.MethodPost, "/webhook", app.Webhook)
	})
	r.Method(http.MethodGet, demo.ReturnPath, app.Return)
	return r
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
