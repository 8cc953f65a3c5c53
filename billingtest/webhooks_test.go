package billingtest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// receiver is an app's webhook endpoint: it checks each delivery's
// signature with stripe-go and records the events, answering as reply
// says.
type receiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	secret string
	n      int                              // requests received
	reply  func(n int, r *http.Request) int // status of the n-th request (from 1); nil: 200
	got    []stripe.Event                   // accepted, in arrival order
	bad    []string                         // signature failures
}

func newReceiver(t *testing.T, reply func(n int, r *http.Request) int) *receiver {
	rc := &receiver{reply: reply}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.n++
		n, secret, reply := rc.n, rc.secret, rc.reply
		rc.mu.Unlock()
		status := http.StatusOK
		if reply != nil {
			status = reply(n, r)
		}
		if status == http.StatusOK {
			ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), secret,
				webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
			rc.mu.Lock()
			if err != nil {
				rc.bad = append(rc.bad, err.Error())
				status = http.StatusBadRequest
			} else {
				rc.got = append(rc.got, ev)
			}
			rc.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setSecret(s string) { rc.mu.Lock(); rc.secret = s; rc.mu.Unlock() }

func (rc *receiver) events() []stripe.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func (rc *receiver) ids() []string {
	var out []string
	for _, e := range rc.events() {
		out = append(out, e.ID)
	}
	return out
}

// register registers rc with the emulator through the API.
func (rc *receiver) register(t *testing.T, s *billingtest.Stripe, events ...string) *stripe.WebhookEndpoint {
	t.Helper()
	if len(events) == 0 {
		events = []string{"*"}
	}
	we, err := s.API().WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String(rc.srv.URL + "/hook"), EnabledEvents: stripe.StringSlice(events)})
	if err != nil {
		t.Fatal(err)
	}
	rc.setSecret(we.Secret)
	return we
}

func waitDeliveries(t *testing.T, s *billingtest.Stripe) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitDeliveries(ctx); err != nil {
		t.Fatal(err)
	}
}

func fastRetries(attempts int) billingtest.EmulatorConfig {
	return billingtest.EmulatorConfig{Webhooks: billingtest.DeliveryConfig{FirstRetry: 10 * time.Millisecond, MaxAttempts: attempts, Timeout: 200 * time.Millisecond}}
}

func TestWebhookDelivery(t *testing.T) {
	tests := []struct {
		name        string
		attempts    int
		reply       func(n int, r *http.Request) int
		wantStatus  []int // of the attempts
		wantTimeout bool  // the first attempt timed out
		wantOK      bool
	}{
		{"delivered at once", 8, nil, []int{200}, false, true},
		{"retried after 500 and 503", 8, func(n int, _ *http.Request) int { return map[int]int{1: 500, 2: 503}[n] }, []int{500, 503, 200}, false, true},
		{"retried after a 3xx", 8, func(n int, _ *http.Request) int {
			if n == 1 {
				return http.StatusFound
			}
			return 0
		}, []int{302, 200}, false, true},
		{"retried after a timeout", 8, func(n int, r *http.Request) int {
			if n == 1 {
				<-r.Context().Done() // longer than the 200 ms timeout
				return http.StatusServiceUnavailable
			}
			return 0
		}, []int{0, 200}, true, true},
		{"given up after MaxAttempts", 3, func(int, *http.Request) int { return 500 }, []int{500, 500, 500}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := tt.reply
			if reply != nil {
				inner := reply
				reply = func(n int, r *http.Request) int {
					if st := inner(n, r); st != 0 {
						return st
					}
					return http.StatusOK
				}
			}
			s := billingtest.StartEmulator(t, fastRetries(tt.attempts))
			rc := newReceiver(t, reply)
			we := rc.register(t, s)
			if _, err := s.API().Customers.New(&stripe.CustomerParams{Email: stripe.String("hook@example.com")}); err != nil {
				t.Fatal(err)
			}
			waitDeliveries(t, s)
			ev := s.Events()[0]
			var statuses []int
			attempts := s.Deliveries()
			for i, a := range attempts {
				statuses = append(statuses, a.Status)
				if a.EventID != ev.ID || a.EventType != "customer.created" || a.Endpoint != we.ID || a.Attempt != i+1 || a.Final != (i == len(attempts)-1) {
					t.Errorf("attempt %d = %+v", i, a)
				}
				if i > 0 && a.Time.Sub(attempts[i-1].Time) < 10*time.Millisecond<<(i-1) {
					t.Errorf("attempt %d came %s after the one before, want at least %s (doubling backoff)", i+1, a.Time.Sub(attempts[i-1].Time), 10*time.Millisecond<<(i-1))
				}
			}
			if diff := cmp.Diff(tt.wantStatus, statuses); diff != "" {
				t.Errorf("attempt statuses (-want +got):\n%s", diff)
			}
			if tt.wantTimeout && !strings.Contains(attempts[0].Err, "timed out") {
				t.Errorf("first attempt's error %q, want a timeout", attempts[0].Err)
			}
			got := rc.events()
			if tt.wantOK != (len(got) == 1) || (tt.wantOK && (got[0].ID != ev.ID || got[0].Type != "customer.created")) {
				t.Errorf("received %v", rc.ids())
			}
			// The events API's delivery_success filter follows the attempts.
			var ok, failed []string
			for it := s.API().Events.List(&stripe.EventListParams{DeliverySuccess: stripe.Bool(true)}); it.Next(); {
				ok = append(ok, it.Event().ID)
			}
			for it := s.API().Events.List(&stripe.EventListParams{DeliverySuccess: stripe.Bool(false)}); it.Next(); {
				failed = append(failed, it.Event().ID)
				if it.Event().PendingWebhooks != 1 {
					t.Errorf("pending_webhooks = %d, want 1", it.Event().PendingWebhooks)
				}
			}
			if tt.wantOK && (len(ok) != 1 || len(failed) != 0) || !tt.wantOK && (len(ok) != 0 || len(failed) != 1) {
				t.Errorf("delivery_success=true lists %v, false lists %v", ok, failed)
			}
		})
	}
}

// TestWebhookRouting checks which endpoints get what: enabled_events,
// disabled and deleted endpoints, the endpoint's api_version, the
// signature with each endpoint's own secret.
func TestWebhookRouting(t *testing.T) {
	s := billingtest.StartEmulator(t, fastRetries(3))
	s.SeedCatalog()
	all, subs, off := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	all.register(t, s)
	subs.register(t, s, "customer.subscription.created", "customer.subscription.deleted")
	weOff := off.register(t, s)
	if _, err := s.API().WebhookEndpoints.Update(weOff.ID, &stripe.WebhookEndpointParams{Disabled: stripe.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	old, err := s.API().WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String(all.srv.URL + "/old"),
		EnabledEvents: stripe.StringSlice([]string{"customer.created"}), APIVersion: stripe.String(billingtest.OtherAPIVersion)})
	if err != nil {
		t.Fatal(err)
	}
	if all.secret == old.Secret {
		t.Fatal("two endpoints share a secret")
	}

	c, err := s.API().Customers.New(&stripe.CustomerParams{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.API().Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(c.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PriceBasic)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.API().Subscriptions.Cancel(sub.ID, nil); err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, s)

	types := func(evs []stripe.Event) []string {
		var out []string
		for _, e := range evs {
			out = append(out, string(e.Type))
		}
		return out
	}
	wantAll := eventTypes(s, 0)
	if diff := cmp.Diff(wantAll, types(all.events())); diff != "" {
		t.Errorf("\"*\" endpoint, in order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"customer.subscription.created", "customer.subscription.deleted"}, types(subs.events())); diff != "" {
		t.Errorf("subscription endpoint (-want +got):\n%s", diff)
	}
	if n := len(off.events()); n != 0 {
		t.Errorf("the disabled endpoint got %d events", n)
	}
	// The endpoint pinned to another version was signed with its own
	// secret (so "all" rejected it) and carries its api_version.
	var oldAttempt *billingtest.DeliveryAttempt
	for _, a := range s.Deliveries() {
		if a.Endpoint == old.ID {
			oldAttempt = &a
		}
	}
	if oldAttempt == nil || oldAttempt.Status != http.StatusBadRequest || len(all.bad) == 0 {
		t.Errorf("the pinned endpoint's attempt = %+v, signature failures at the receiver %v", oldAttempt, all.bad)
	}
}

func TestWebhookPayload(t *testing.T) {
	s := billingtest.StartEmulator(t, fastRetries(2))
	var mu sync.Mutex
	var body []byte
	var header http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		body, header = b, r.Header.Clone()
		mu.Unlock()
	}))
	defer srv.Close()
	we := s.AddWebhookEndpoint(srv.URL, "customer.created")
	if _, err := s.API().Customers.New(&stripe.CustomerParams{Email: stripe.String("p@example.com")}); err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, s)
	mu.Lock()
	defer mu.Unlock()
	ev, err := webhook.ConstructEvent(body, header.Get("Stripe-Signature"), we.Secret)
	if err != nil {
		t.Fatalf("stripe-go rejects the delivery: %v", err)
	}
	if ev.Type != "customer.created" || ev.APIVersion != stripe.APIVersion || ev.Data.Object["email"] != "p@example.com" ||
		ev.Request == nil || !strings.HasPrefix(ev.Request.ID, "req_") {
		t.Errorf("event = %+v", ev)
	}
	if _, err := webhook.ConstructEvent(body, header.Get("Stripe-Signature"), billingtest.WebhookSecret); !errors.Is(err, webhook.ErrNoValidSignature) {
		t.Errorf("another secret: %v, want ErrNoValidSignature", err)
	}
	if header.Get("Content-Type") != "application/json; charset=utf-8" || !strings.HasPrefix(header.Get("User-Agent"), "Stripe/1.0") {
		t.Errorf("headers = %v", header)
	}
}

func TestWebhookChaos(t *testing.T) {
	emit := func(t *testing.T, chaos billingtest.Chaos) (*billingtest.Stripe, *receiver) {
		cfg := fastRetries(3)
		cfg.Webhooks.Chaos = &chaos
		s := billingtest.StartEmulator(t, cfg)
		s.SeedCatalog()
		s.AddCustomer("cus_chaos")
		rc := newReceiver(t, nil)
		rc.register(t, s)
		for range 3 { // 5 events each, emitted at once
			if _, err := s.API().Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String("cus_chaos"),
				Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PricePro)}}}); err != nil {
				t.Fatal(err)
			}
		}
		waitDeliveries(t, s)
		return s, rc
	}
	emitted := func(s *billingtest.Stripe) []string {
		var out []string
		for _, e := range s.Events() {
			out = append(out, e.ID)
		}
		return out
	}
	t.Run("duplicate", func(t *testing.T) {
		s, rc := emit(t, billingtest.Chaos{Seed: 1, Duplicate: 1})
		want := emitted(s)
		got := rc.ids()
		counts := map[string]int{}
		for _, id := range got {
			counts[id]++
		}
		for _, id := range want {
			if counts[id] != 2 {
				t.Errorf("event %s received %d times, want 2", id, counts[id])
			}
		}
		if len(got) != 2*len(want) {
			t.Errorf("%d deliveries of %d events", len(got), len(want))
		}
	})
	t.Run("reorder, seeded", func(t *testing.T) {
		s1, rc1 := emit(t, billingtest.Chaos{Seed: 7, Reorder: 1})
		s2, rc2 := emit(t, billingtest.Chaos{Seed: 7, Reorder: 1})
		pos := func(s *billingtest.Stripe, ids []string) []int {
			idx := map[string]int{}
			for i, id := range emitted(s) {
				idx[id] = i
			}
			var out []int
			for _, id := range ids {
				out = append(out, idx[id])
			}
			return out
		}
		p1, p2 := pos(s1, rc1.ids()), pos(s2, rc2.ids())
		if len(p1) != 15 || slices.IsSorted(p1) {
			t.Errorf("arrival order %v: want all 15 events, out of order", p1)
		}
		if diff := cmp.Diff(p1, p2); diff != "" {
			t.Errorf("the same seed gave another order (-first +second):\n%s", diff)
		}
		sorted := slices.Clone(p1)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != 15 {
			t.Errorf("arrival order %v: an event is missing or doubled", p1)
		}
	})
	t.Run("delay", func(t *testing.T) {
		start := time.Now()
		s, rc := emit(t, billingtest.Chaos{Seed: 3, MaxDelay: 150 * time.Millisecond})
		if got, want := len(rc.ids()), len(emitted(s)); got != want {
			t.Errorf("%d of %d events delivered when WaitDeliveries returned", got, want)
		}
		var late bool
		for _, a := range s.Deliveries() {
			late = late || a.Time.Sub(start) > 20*time.Millisecond
		}
		if !late {
			t.Error("no delivery was delayed")
		}
	})
}

// TestWaitDeliveries checks that WaitDeliveries gives up with ctx, and that
// Close ends a delivery in flight (the package's leak check sees the
// goroutines).
func TestWaitDeliveries(t *testing.T) {
	s, err := billingtest.NewEmulator(billingtest.EmulatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, func(_ int, r *http.Request) int { <-r.Context().Done(); return 500 })
	rc.register(t, s)
	if _, err := s.API().Customers.New(&stripe.CustomerParams{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitDeliveries(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 deliveries") {
		t.Errorf("WaitDeliveries = %v, want a deadline naming the pending delivery", err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the delivery in flight")
	}
	if n := len(rc.events()); n != 0 {
		t.Errorf("%d events accepted by a receiver that never answered", n)
	}
}
func TestWebhookEndpoints(t *testing.T) {
	s := billingtest.StartStripe(t)
	api := s.API()
	we, err := api.WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String("https://app.example.com/hook"),
		EnabledEvents: stripe.StringSlice([]string{"customer.subscription.updated", "customer.subscription.deleted"}),
		APIVersion:    stripe.String(stripe.APIVersion)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(we.ID, "we_") || !strings.HasPrefix(we.Secret, "whsec_") || we.Status != "enabled" || we.APIVersion != stripe.APIVersion {
		t.Errorf("created = %+v", we)
	}
	got, err := api.WebhookEndpoints.Get(we.ID, nil)
	if err != nil || got.Secret != "" || got.URL != we.URL {
		t.Errorf("Get = %+v, %v: want it without the secret", got, err)
	}
	got, err = api.WebhookEndpoints.Update(we.ID, &stripe.WebhookEndpointParams{Disabled: stripe.Bool(true),
		EnabledEvents: stripe.StringSlice([]string{"*"})})
	if err != nil || got.Status != "disabled" || len(got.EnabledEvents) != 1 || got.EnabledEvents[0] != "*" {
		t.Errorf("Update = %+v, %v", got, err)
	}
	if eps := s.WebhookEndpoints(); len(eps) != 1 || eps[0].Secret != we.Secret || !eps[0].Disabled {
		t.Errorf("WebhookEndpoints() = %+v", eps)
	}
	second := s.AddWebhookEndpoint("https://app.example.com/other")
	var ids []string
	it := api.WebhookEndpoints.List(nil)
	for it.Next() {
		ids = append(ids, it.WebhookEndpoint().ID)
	}
	if diff := cmp.Diff([]string{second.ID, we.ID}, ids); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	del, err := api.WebhookEndpoints.Del(we.ID, nil)
	if err != nil || !del.Deleted {
		t.Errorf("Del = %+v, %v", del, err)
	}
	if _, err := api.WebhookEndpoints.Get(we.ID, nil); !isCode(err, 404, stripe.ErrorCodeResourceMissing) {
		t.Errorf("Get deleted: %v", err)
	}
}
