// Command gin mounts the billing handlers on a github.com/gin-gonic/gin
// engine through gin.WrapH:
//
//	r.POST("/api/subscription/create-portal-session", gin.WrapH(portal))
//	r.POST("/api/subscription/webhook", gin.WrapH(webhook))
//	r.GET("/billing/return", gin.WrapH(returnSync)) // the portal's return URL
//
// The handlers read the request body themselves (the webhook's signature
// covers the raw bytes): mount them before any middleware that consumes or
// rewrites it. Gin answers other methods 404 unless HandleMethodNotAllowed
// is set, as here, which makes it answer 405.
//
// Run it offline (the test kit's fake Stripe and standard users) and try it:
//
//	go run ./gin
//	curl -X POST -b access_token=tok_pro localhost:8080/api/subscription/create-portal-session
package main

import (
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/gin-gonic/gin"
)

// routes mounts the app's handlers.
func routes(app *demo.App) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery())
	r.HandleMethodNotAllowed = true
	api := r.Group("/api/subscription")
	api.POST("/create-portal-session", gin.WrapH(app.Portal))
	api.POST("/webhook", gin.WrapH(app.Webhook))
	r.GET(demo.ReturnPath, gin.WrapH(app.Return))
	return r
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	gin.SetMode(gin.ReleaseMode)
	app, err := demo.New(demo.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	defer app.Close()
	srv := &http.Server{Addr: "localhost:8080", Handler: routes(app), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s", srv.Addr)
	return srv.ListenAndServe()
}
