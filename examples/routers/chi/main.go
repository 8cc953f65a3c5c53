// Command chi mounts the billing handlers on a github.com/go-chi/chi/v5
// router:
//
//	r.Method(http.MethodPost, "/api/subscription/create-portal-session", portal)
//
// Middleware such as chi's middleware.RequestID or a rate limiter wraps the
// handlers as it wraps any other. For other methods chi answers 405 itself.
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
	})
	return r
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
