package billing_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Benchmarks of the two handlers against a baseline of what an app would
// do with stripe-go alone.
//
// BenchmarkPortal interleaves its halves in one loop and reports the
// handler's own cost over bare. BenchmarkWebhook runs bare and memory as
// separate sub-benchmarks and reports x-bare, memory's time per op over
// bare's of the same run (the goal: <= 1.5). Run them with
//
//	go test -run '^$' -bench Portal -benchmem -count 10 .
//	go test -run '^$' -bench 'Webhook$' -benchmem -count 5 .
//
// and compare runs with benchstat (go run golang.org/x/perf/cmd/benchstat@latest).

// resetEvery is how many events BenchmarkWebhook signs at a time.
const resetEvery = 1024

// BenchmarkPortal measures what the portal handler adds to the Stripe call
// it makes. Each iteration makes one bare call, stripe-go's
// session.Client.New with the BillingPortalSessionParams and context an
// app would pass, and one request through PortalService.ServeHTTP (the
// access_token cookie through CookieAuthenticator, a MemoryStore lookup,
// the cross-origin check, the same Stripe call, the JSON reply and the
// record), alternating which goes first. Both use one session.Client on a
// [billing.NewBackend] whose APIURL is a local stub answering every call
// with the same portal session: it keeps no state, so neither a fake's
// growing records nor the order of runs moves the figures. Only the root
// package and stripe-go are used.
//
// Each half is timed on its own; the metrics are
//
//	bare-µs/op                    the bare call (median)
//	handler-over-bare-µs/op       the handler's own time per request: the
//	                              median of the iterations' differences
//	handler-over-bare-mean-µs/op  the difference of the halves' means
//	x-bare                        handler over bare, medians
//	bare-allocs/op                allocations of the bare call
//	handler-over-bare-allocs/op   the handler's own allocations per request
//
// The medians leave out the iterations in which one half was preempted
// (the machine may be shared) or hit by a garbage collection; the mean
// keeps them, and so moves with the machine's load; the allocation figures
// stand for the handler's share of the collector's work. The allocations
// are counted before the timed loop (runtime.MemStats over benchAllocRuns
// calls of each half): exact averages, not samples of the loop. ns/op, B/op
// and allocs/op are those of a whole iteration, both halves. The handler
// reuses one parsed request (net/http's work, not the library's) and
// answers to a fresh httptest.ResponseRecorder, standing for net/http's
// writer: the recorder's own 8 allocations are inside the handler's
// figures. The goal: at most 3 µs and 10 allocations over bare. Run it with
//
//	go test -run '^$' -bench Portal -benchmem -count 10 .
func BenchmarkPortal(b *testing.B) {
	pb := newPortalBench(b)
	bareAllocs := allocsPer(benchAllocRuns, pb.bare)
	handlerAllocs := allocsPer(benchAllocRuns, pb.handler)

	var bare, diff []time.Duration
	var bareSum, handlerSum time.Duration
	for b.Loop() {
		var db, dh time.Duration
		if len(bare)%2 == 0 {
			t0 := time.Now()
			pb.bare()
			t1 := time.Now()
			pb.handler()
			db, dh = t1.Sub(t0), time.Since(t1)
		} else {
			t0 := time.Now()
			pb.handler()
			t1 := time.Now()
			pb.bare()
			dh, db = t1.Sub(t0), time.Since(t1)
		}
		bare, diff = append(bare, db), append(diff, dh-db)
		bareSum, handlerSum = bareSum+db, handlerSum+dh
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	mb, md := median(bare), median(diff)
	b.ReportMetric(us(mb), "bare-µs/op")
	b.ReportMetric(us(md), "handler-over-bare-µs/op")
	b.ReportMetric(us(handlerSum-bareSum)/float64(len(bare)), "handler-over-bare-mean-µs/op")
	b.ReportMetric(float64(mb+md)/float64(mb), "x-bare")
	b.ReportMetric(bareAllocs, "bare-allocs/op")
	b.ReportMetric(handlerAllocs-bareAllocs, "handler-over-bare-allocs/op")
}

// median returns the median of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

// benchAllocRuns is how many calls of each half BenchmarkPortal counts
// allocations over.
const benchAllocRuns = 1000

// Fixed values of BenchmarkPortal's stub, user and request.
const (
	benchCustomer  = "cus_bench"
	benchReturnURL = "https://app.example.com/account"
	benchToken     = "tok_bench_0123456789abcdef"
	benchUser      = "u_bench"
	// benchSession is the stub's reply, a portal session as Stripe writes it.
	benchSession = `{
  "id": "bps_1OQzBenchBenchBenchBench",
  "object": "billing_portal.session",
  "configuration": "bpc_1OQzBenchBenchBenchBench",
  "created": 1700000000,
  "customer": "cus_bench",
  "flow": null,
  "livemode": false,
  "locale": null,
  "on_behalf_of": null,
  "return_url": "https://app.example.com/account",
  "url": "https://billing.stripe.com/p/session/test_YWNjdF8xT1F6QmVuY2hCZW5jaEJlbmNoLF9QYmVuY2hiZW5jaGJlbmNoYmVuY2g"
}`
)

// portalBench is BenchmarkPortal's setup: the two halves of an iteration.
type portalBench struct {
	tb  testing.TB
	sc  *session.Client
	h   *billing.PortalService
	r   *http.Request
	ctx context.Context
}

// newPortalBench starts the stateless stub and builds the client, the
// handler and the request. The stub is closed when tb ends.
func newPortalBench(tb testing.TB) *portalBench {
	tb.Helper()
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Request-Id"] = []string{"req_bench"}
		_, _ = io.WriteString(w, benchSession)
	}))
	client := billing.NewHTTPClient(10 * time.Second)
	tb.Cleanup(func() {
		client.CloseIdleConnections()
		stub.Close()
	})
	sc := &session.Client{B: billing.NewBackend(&stripe.BackendConfig{URL: stripe.String(stub.URL), HTTPClient: client}), Key: "sk_test_bench"}
	return &portalBench{tb: tb, sc: sc, h: newBenchPortal(tb, sc), r: benchPortalRequest(), ctx: context.Background()}
}

// newBenchPortal returns BenchmarkPortal's handler on sc: a
// CookieAuthenticator whose verifier knows benchToken, a MemoryStore
// holding its PRO user, ReturnURL benchReturnURL, no logger, no observer.
func newBenchPortal(tb testing.TB, sc billing.SessionCreator) *billing.PortalService {
	tb.Helper()
	verify := billing.TokenVerifierFunc(func(_ context.Context, token string) (string, error) {
		if token != benchToken {
			return "", billing.ErrTokenInvalid
		}
		return benchUser, nil
	})
	h, err := billing.NewPortalService(billing.PortalConfig{
		Stripe:    sc,
		Users:     billing.NewMemoryStore(billing.User{ID: benchUser, Plan: billing.Pro, StripeCustomerID: benchCustomer}),
		Auth:      billing.NewCookieAuthenticator(verify),
		ReturnURL: benchReturnURL,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// benchPortalRequest returns BenchmarkPortal's request: a same-origin
// fetch from a browser that holds two more cookies than access_token.
func benchPortalRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, portalPath, nil)
	r.Header.Set("Origin", "https://example.com")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Cookie", "theme=dark; "+billing.DefaultCookieName+"="+benchToken+"; _ga=GA1.1.1234567890.1700000000")
	return r
}

// bare is an app's own call.
func (pb *portalBench) bare() {
	s, err := bareSession(pb.ctx, pb.sc)
	if err != nil || s.URL == "" {
		pb.tb.Fatalf("bare call: %v", err)
	}
}

// bareSession is what an app does with stripe-go alone: the params of a
// session for benchCustomer, with ctx, and one call.
func bareSession(ctx context.Context, sc billing.SessionCreator) (*stripe.BillingPortalSession, error) {
	p := &stripe.BillingPortalSessionParams{
		Customer:  stripe.String(benchCustomer),
		ReturnURL: stripe.String(benchReturnURL),
	}
	p.Context = ctx
	return sc.New(p)
}

// handler is one request through the portal handler, answered to a fresh
// recorder.
func (pb *portalBench) handler() {
	w := httptest.NewRecorder()
	pb.h.ServeHTTP(w, pb.r)
	if w.Code != http.StatusOK {
		pb.tb.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// allocsPer returns the average number of heap allocations of f over n
// calls, after one call to warm up.
func allocsPer(n int, f func()) float64 {
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n)
}

// BenchmarkWebhook: bare is stripe-go's webhook.ConstructEventWithOptions
// alone on signed customer.subscription.updated events; memory is the
// webhook handler through ServeHTTP applying the same events to a
// MemoryStore (signature, timestamp, decoding, price mapping, the
// conditional write, the user lookup for the log, the JSON reply). Every
// event is new (fresh id, later created time), so each one is applied.
func BenchmarkWebhook(b *testing.B) {
	const users = 1024
	var payloads [][]byte
	var headers []string
	seq := 0
	// batch signs resetEvery fresh events, outside the timer.
	batch := func() {
		payloads, headers = payloads[:0], headers[:0]
		now := time.Now()
		for j := range resetEvery {
			price := billingtest.PriceBasic
			if j%2 == 0 {
				price = billingtest.PricePro
			}
			seq++
			p := billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{
				ID: fmt.Sprintf("sub_b%d", j%users), Customer: fmt.Sprintf("cus_b%d", j%users), PriceID: price,
			}, now.Add(-time.Hour).Add(time.Duration(seq)*time.Second))
			payloads = append(payloads, p)
			headers = append(headers, billingtest.Sign(p, billingtest.WebhookSecret, now))
		}
	}
	var bare benchTotal
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if i%resetEvery == 0 {
				b.StopTimer()
				batch()
				b.StartTimer()
			}
			ev, err := webhook.ConstructEventWithOptions(payloads[i%resetEvery], headers[i%resetEvery], billingtest.WebhookSecret, webhook.ConstructEventOptions{})
			if err != nil || ev.ID == "" {
				b.Fatal(err)
			}
		}
		bare.add(b)
	})
	b.Run("memory", func(b *testing.B) {
		store := billing.NewMemoryStore()
		for j := range users {
			store.PutUser(context.Background(), billing.User{ID: fmt.Sprintf("u_b%d", j), Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_b%d", j)})
		}
		h, err := billing.NewWebhookHandler(billing.WebhookConfig{Secrets: []string{billingtest.WebhookSecret}, Store: store, Rules: billing.PlanRules{Prices: webhookPlans(b)}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if i%resetEvery == 0 {
				b.StopTimer()
				batch()
				b.StartTimer()
			}
			r := httptest.NewRequest(http.MethodPost, billingtest.WebhookPath, bytes.NewReader(payloads[i%resetEvery]))
			r.Header.Set("Stripe-Signature", headers[i%resetEvery])
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
		reportRatio(b, bare)
	})
}

// benchTotal sums the runs of a baseline: go test runs a sub-benchmark
// several times (b.N = 1, then growing to fill -benchtime, and again for
// each -count), so the baseline's time per op is the total time over the
// total ops of all its runs, dominated by the long ones.
type benchTotal struct {
	d time.Duration
	n int
}

func (t *benchTotal) add(b *testing.B) { t.d += b.Elapsed(); t.n += b.N }

// reportRatio reports b's time per op over the baseline's as the metric
// x-bare.
func reportRatio(b *testing.B, bare benchTotal) {
	if bare.n == 0 || bare.d == 0 || b.N == 0 {
		return
	}
	perOp := float64(b.Elapsed()) / float64(b.N)
	b.ReportMetric(perOp/(float64(bare.d)/float64(bare.n)), "x-bare")
}
