package billing_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Benchmarks of the two handlers, each paired with its baseline in the
// same run: bare is what an app would do with stripe-go alone, the other
// sub-benchmark the library's full handler doing the same work. The second
// sub-benchmark reports x-bare, its time per op over bare's of the same run
// (the goals: portal <= 1.05 and at most 40 more allocs/op; webhook <=
// 1.5). Run them with
//
//	go test -run '^$' -bench 'Portal|Webhook$' -benchmem -count 5 .

// resetEvery bounds the fake's memory: it records every call and session
// until Reset.
const resetEvery = 1024

// BenchmarkPortal: bare is stripe-go's billing portal session call alone
// (session.Client.New with BillingPortalSessionParams) against the kit's
// fake Stripe; handler is the portal handler through ServeHTTP (cookie,
// StaticAuth, MemoryStore, the same Stripe call on the same fake and
// client, the JSON reply).
func BenchmarkPortal(b *testing.B) {
	fake := billingtest.StartStripe(b)
	fake.Seed()
	sc := fake.SessionClient()
	var bare benchTotal
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if i%resetEvery == resetEvery-1 {
				b.StopTimer()
				fake.Reset()
				b.StartTimer()
			}
			p := &stripe.BillingPortalSessionParams{
				Customer:  stripe.String(billingtest.CustomerPro),
				ReturnURL: stripe.String(billingtest.ReturnURL),
			}
			if _, err := sc.New(p); err != nil {
				b.Fatal(err)
			}
		}
		bare.add(b)
	})
	h := billingtest.NewPortalService(b, fake, nil, func(c *billing.PortalConfig) { c.Stripe = sc })
	// One request, as net/http would have parsed it before any handler
	// runs (the handler only reads it: the cookie is parsed anew each
	// time); a fresh recorder per request stands for net/http's writer.
	r := portalRequest(billingtest.TokenPro, "")
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if i%resetEvery == resetEvery-1 {
				b.StopTimer()
				fake.Reset()
				b.StartTimer()
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
		reportRatio(b, bare)
	})
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
