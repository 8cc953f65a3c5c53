package billingtest_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
	"github.com/stripe/stripe-go/v76/subscription"
)

func newSession(t *testing.T, c *session.Client, customer string) (*stripe.BillingPortalSession, error) {
	t.Helper()
	p := &stripe.BillingPortalSessionParams{
		Customer:  stripe.String(customer),
		ReturnURL: stripe.String(billingtest.ReturnURL),
	}
	p.Context = context.Background()
	return c.New(p)
}

func isCode(err error, status int, code stripe.ErrorCode) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.HTTPStatusCode == status && se.Code == code
}

func ptr[T any](v T) *T { return &v }

var _ billing.SessionCreator = (*session.Client)(nil)
var _ billing.SubscriptionGetter = (*subscription.Client)(nil)

func TestConcurrent(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	const workers, each = 16, 20
	s.FailNext(billingtest.PathPortalSessions, 10, billingtest.ServiceUnavailable())
	var wg sync.WaitGroup
	urls := make(chan string, workers*each)
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.SessionClient()
			for range each {
				ps, err := newSession(t, c, billingtest.CustomerBasic)
				if err != nil {
					errs <- err
					continue
				}
				urls <- ps.URL
				_ = s.Calls()
				_ = s.Connections()
				s.AddCustomer("cus_extra")
			}
		}()
	}
	wg.Wait()
	close(urls)
	close(errs)
	failed := 0
	for err := range errs {
		// A call can draw 3 of the 10 queued 503s and give up.
		if !isCode(err, 503, "") {
			t.Errorf("call failed: %v", err)
		}
		failed++
	}
	seen := map[string]bool{}
	for u := range urls {
		if seen[u] {
			t.Errorf("portal url handed out twice")
		}
		seen[u] = true
	}
	if len(seen) != workers*each-failed || len(s.Sessions()) != len(seen) {
		t.Errorf("%d sessions (fake: %d), want %d", len(seen), len(s.Sessions()), workers*each-failed)
	}
	// Every call is a session or one of the 10 503s.
	if n := s.CallCount(billingtest.PathPortalSessions); n != len(seen)+10 {
		t.Errorf("%d calls, want %d", n, len(seen)+10)
	}
	// A worker may dial while another's connection is on its way back to
	// the pool, so the count is not exact; without reuse it would be about
	// one per call.
	if n := s.Connections(); n > 2*workers {
		t.Errorf("%d connections for %d workers and %d calls: the shared client should reuse them", n, workers, workers*each)
	}
}

// TestNoGoroutineLeak checks that a closed fake leaves no goroutine
// behind, after slow, dropped and normal calls.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	s := billingtest.NewStripe()
	s.Seed()
	s.FailNext(billingtest.PathPortalSessions, 1, billingtest.Drop())
	s.FailNext(billingtest.PathPortalSessions, 1, billingtest.ServiceUnavailable())
	for range 3 {
		_, _ = newSession(t, s.SessionClient(), billingtest.CustomerPro)
	}
	s.Fail(billingtest.PathPortalSessions, billingtest.Slow(time.Hour))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = newSession(t, s.SessionClient(), billingtest.CustomerPro)
	}()
	if err := s.WaitCalls(context.Background(), billingtest.PathPortalSessions, 6); err != nil {
		t.Fatal(err)
	}
	s.Close()
	<-done
	// Goroutines end asynchronously after Close; wait for them a while.
	var after int
	for range 200 {
		if after = runtime.NumGoroutine(); after <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines before, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
}

// BenchmarkStripe measures a stripe-go call against the fake (client and
// server in this process), the floor under any portal benchmark that uses
// it.
func BenchmarkStripe(b *testing.B) {
	s := billingtest.StartStripe(b)
	s.Seed()
	b.Run("session", func(b *testing.B) {
		c := s.SessionClient()
		b.ReportAllocs()
		for b.Loop() {
			p := &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro), ReturnURL: stripe.String(billingtest.ReturnURL)}
			if _, err := c.New(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("subscription", func(b *testing.B) {
		c := s.SubscriptionClient()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(billingtest.SubscriptionPro, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
