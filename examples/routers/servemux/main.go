// Command servemux mounts the billing handlers on the standard library's
// http.ServeMux with Go 1.22 method patterns:
//
//	mux.Handle("POST /api/subscription/create-portal-session", portal)
//	mux.Handle("POST /api/subscription/webhook", webhook)
//	mux.Handle("GET /billing/return", returnSync) // the portal's return URL
//
// With a method in the pattern the mux itself answers other methods (405,
// "Allow: POST", plain text). Mount without the method ("/api/...") to let
// the handlers answer them in the contract's JSON instead.
//
// Run it offline (the test kit's fake Stripe and standard users) and try it:
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
	mux.Handle("POST "+demo.WebhookPath, app.Webhook)
	mux.Handle("GET "+demo.ReturnPath, app.Return)
	return mux
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
