package billing_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
)

// TestConnectionReuse sends 1,000 portal requests from 64 goroutines at
// once through the handler and counts the TCP connections the fake Stripe
// accepted. With billing.NewBackend (and so billing.NewHTTPClient, which
// keeps 64 idle connections per host) at most 64 connections serve them
// all: one per concurrent request, each reused. Against the real Stripe
// every new connection is a TCP and TLS handshake, two to three round trips
// (tens of milliseconds) before the request is even sent, on every portal
// click once the pool is too small.
//
// For contrast (logged, not asserted: it depends on scheduling) the same
// load through an http.Client whose transport keeps Go's default of 2 idle
// connections per host: every request beyond two that finds no idle
// connection dials a new one and most are closed again after one use.
func TestConnectionReuse(t *testing.T) {
	const workers, requests = 64, 1000
	run := func(t *testing.T, newBackend func(url string) (stripe.Backend, *http.Client)) int {
		fake := billingtest.StartStripe(t)
		fake.Seed()
		backend, client := newBackend(fake.URL())
		defer client.CloseIdleConnections()
		sc := &session.Client{B: backend, Key: billingtest.TestKey}
		h := billingtest.NewPortalService(t, fake, nil, func(c *billing.PortalConfig) { c.Stripe = sc })
		before := fake.Connections()
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= requests {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, portalRequest(billingtest.TokenPro, ""))
					if w.Code != http.StatusOK {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if n := failed.Load(); n != 0 {
			t.Fatalf("%d of %d requests failed", n, requests)
		}
		if n := fake.CallCount(billingtest.PathPortalSessions); n != requests {
			t.Fatalf("Stripe received %d calls, want %d", n, requests)
		}
		return fake.Connections() - before
	}

	var ours int
	t.Run("NewBackend", func(t *testing.T) {
		ours = run(t, func(url string) (stripe.Backend, *http.Client) {
			b := billing.NewBackend(&stripe.BackendConfig{URL: stripe.String(url)})
			bi, ok := b.(*stripe.BackendImplementation)
			if !ok {
				t.Fatalf("billing.NewBackend returned %T, want *stripe.BackendImplementation", b)
			}
			return b, bi.HTTPClient
		})
		t.Logf("billing.NewBackend: %d connections for %d requests from %d goroutines", ours, requests, workers)
		if ours > workers || ours == 0 {
			t.Errorf("%d connections opened for %d requests, want 1 to %d (one per concurrent request)", ours, requests, workers)
		}
	})
	t.Run("MaxIdleConnsPerHost=2", func(t *testing.T) {
		n := run(t, func(url string) (stripe.Backend, *http.Client) {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = 2 // Go's default (http.DefaultMaxIdleConnsPerHost)
			c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
			return stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
				URL: stripe.String(url), HTTPClient: c, LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
			}), c
		})
		t.Logf("contrast, MaxIdleConnsPerHost=2 (Go's default): %d connections for %d requests from %d goroutines (billing.NewBackend: %d)", n, requests, workers, ours)
	})
}
