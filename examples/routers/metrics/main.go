// Command metrics wires a [billing.Observer] to Prometheus: every portal
// request (and, mounted the same way, every webhook event) counts in
// billing_requests_total{op,outcome} and lands in the latency histogram
// billing_request_duration_seconds{op,outcome}. Prometheus scrapes them at
// /metrics.
//
// The user id of an observation is not a label: one series per user would
// grow without bound. Log it instead (the handlers' slog records carry it).
//
//	go run ./metrics
//	curl -X POST -b access_token=tok_pro localhost:8080/api/subscription/create-portal-session
//	curl localhost:8080/metrics
package main

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// promObserver counts observations and records their latency.
type promObserver struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

var _ billing.Observer = (*promObserver)(nil)

// newPromObserver registers the billing metrics with reg.
func newPromObserver(reg prometheus.Registerer) (*promObserver, error) {
	o := &promObserver{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billing_requests_total",
			Help: "Portal requests and webhook events handled, by operation and outcome.",
		}, []string{"op", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "billing_request_duration_seconds",
			Help: "Time spent handling portal requests and webhook events, Stripe calls included.",
			// From a rejected request (microseconds) to a slow Stripe call.
			Buckets: []float64{.001, .005, .025, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op", "outcome"}),
	}
	for _, c := range []prometheus.Collector{o.requests, o.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Observe implements [billing.Observer]. It is quick and safe for concurrent
// use, as the interface asks.
func (o *promObserver) Observe(_ context.Context, ob billing.Observation) {
	op, outcome := string(ob.Op), string(ob.Outcome)
	o.requests.WithLabelValues(op, outcome).Inc()
	o.latency.WithLabelValues(op, outcome).Observe(ob.Latency.Seconds())
}

// routes mounts the app's handlers and the metrics endpoint.
func routes(app *demo.App, reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+demo.PortalPath, app.Portal)
	mux.Handle("POST "+demo.WebhookPath, app.Webhook)
	mux.Handle("GET "+demo.ReturnPath, app.Return)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	reg := prometheus.NewRegistry()
	obs, err := newPromObserver(reg)
	if err != nil {
		return err
	}
	app, err := demo.New(demo.Options{
		Logger:   slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		Observer: obs,
	})
	if err != nil {
		return err
	}
	defer app.Close()
	srv := &http.Server{Addr: "localhost:8080", Handler: routes(app, reg), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s (metrics at /metrics)", srv.Addr)
	return srv.ListenAndServe()
}
