// Command servemux mounts the billing handlers on the standard library's
// http.ServeMux with Go 1.22 method patterns:
//
//	mux.Handle("POST /api/subscription/create-portal-session", portal)
//
// With a method in the pattern the mux itself answers other methods (405,
// "Allow: POST", plain text). Mount without the method ("/api/...") to let
// the portal handler answer them in the contract's JSON instead.
//
// Run it offline (a stand-in for Stripe, demo users) and try it:
//
//	go run ./servemux
//	curl -X POST -b access_token=tok_pro localhost:8080/api/subscription/create-portal-session
package main

import (
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/contafy/billing/examples/routers/internal/demo"
)

// routes mounts the app's handlers.
func routes(app *demo.App) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+demo.PortalPath, app.Portal)
	return mux
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
