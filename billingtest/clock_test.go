package billingtest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

func TestClock(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name    string
		params  *stripe.SubscriptionParams
		advance time.Duration
		// after the advance
		wantStatus  string
		wantEvents  []string
		wantPeriods int // renewals (invoices with billing_reason subscription_cycle)
	}{
		{"renewal", &stripe.SubscriptionParams{}, 30 * day, "active",
			[]string{"customer.subscription.updated", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"}, 1},
		{"three renewals in one advance", &stripe.SubscriptionParams{}, 95 * day, "active", nil, 3},
		{"nothing due yet", &stripe.SubscriptionParams{}, 29 * day, "active", nil, 0},
		{"cancel at period end", &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)}, 31 * day, "canceled",
			[]string{"customer.subscription.deleted"}, 0},
		{"cancel_at before the period end", &stripe.SubscriptionParams{CancelAt: stripe.Int64(0)}, 11 * day, "canceled",
			[]string{"customer.subscription.deleted"}, 0},
		{"trial ends", &stripe.SubscriptionParams{TrialPeriodDays: stripe.Int64(7)}, 8 * day, "active",
			[]string{"customer.subscription.updated", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"}, 1},
		{"trial ends, canceling", &stripe.SubscriptionParams{TrialPeriodDays: stripe.Int64(7), CancelAtPeriodEnd: stripe.Bool(true)}, 8 * day, "canceled",
			[]string{"customer.subscription.deleted"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := billingtest.StartStripe(t)
			s.SeedCatalog()
			s.AddCustomer("cus_clock")
			p := tt.params
			p.Customer = stripe.String("cus_clock")
			p.Items = []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PriceBasic)}}
			if p.CancelAt != nil {
				p.CancelAt = stripe.Int64(s.Now().Add(10 * day).Unix())
			}
			sub, err := s.API().Subscriptions.New(p)
			if err != nil {
				t.Fatal(err)
			}
			start := s.Now()
			n := len(s.Events())
			if err := s.AdvanceClock(context.Background(), tt.advance); err != nil {
				t.Fatal(err)
			}
			if got := s.Now().Sub(start); got < tt.advance || got > tt.advance+time.Minute {
				t.Errorf("the clock moved %s, want %s", got, tt.advance)
			}
			got, err := s.API().Subscriptions.Get(sub.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Status) != tt.wantStatus {
				t.Errorf("status %s, want %s", got.Status, tt.wantStatus)
			}
			renewals := 0
			for _, inv := range s.Invoices("cus_clock") {
				if inv.BillingReason == "subscription_cycle" {
					renewals++
				}
			}
			if renewals != tt.wantPeriods {
				t.Errorf("%d renewal invoices, want %d", renewals, tt.wantPeriods)
			}
			if tt.wantEvents != nil {
				if diff := cmp.Diff(tt.wantEvents, eventTypes(s, n)); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			}
			// Periods follow on from each other; events carry the time
			// they fell due.
			if tt.wantStatus == "active" && tt.wantPeriods > 0 {
				end := sub.CurrentPeriodEnd
				if got.CurrentPeriodStart != end+int64(tt.wantPeriods-1)*30*24*3600 || got.CurrentPeriodEnd-got.CurrentPeriodStart != 30*24*3600 {
					t.Errorf("period %d..%d after %d renewals of a period ending %d", got.CurrentPeriodStart, got.CurrentPeriodEnd, tt.wantPeriods, end)
				}
				ev := decodeEvent(t, s.Events("customer.subscription.updated")[0])
				if ev.Created != end || ev.Data.PreviousAttributes["current_period_end"] != float64(end) {
					t.Errorf("first renewal event created %d, previous_attributes %v; want the period end %d", ev.Created, ev.Data.PreviousAttributes, end)
				}
			}
			if tt.wantStatus == "canceled" {
				ev := lastEvent(t, s, "customer.subscription.deleted")
				if ev.Created != got.EndedAt || ev.Created > s.Now().Unix() {
					t.Errorf("deleted at %d, ended_at %d", ev.Created, got.EndedAt)
				}
			}
		})
	}
	t.Run("a spec canceling at period end", func(t *testing.T) {
		s := billingtest.StartStripe(t)
		s.PutSubscription(billingtest.SubscriptionSpec{ID: "sub_spec", Customer: "cus_spec", CancelAtPeriodEnd: true,
			CurrentPeriodEnd: s.Now().Add(time.Hour)})
		if err := s.AdvanceClock(context.Background(), 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		if sub, _ := s.Subscription("sub_spec"); sub.Status != "canceled" || len(s.Events("customer.subscription.deleted")) != 1 {
			t.Errorf("after its period end: %+v, events %v", sub, eventTypes(s, 0))
		}
	})
	t.Run("backwards", func(t *testing.T) {
		s := billingtest.StartStripe(t)
		if err := s.AdvanceClock(context.Background(), -time.Hour); err == nil {
			t.Error("AdvanceClock(-1h) = nil, want an error")
		}
	})
}

// TestClockHTTP drives the clock through POST /emulator/clock/advance: the
// reply comes once the webhooks of what fell due were attempted.
func TestClockHTTP(t *testing.T) {
	s := billingtest.StartEmulator(t, fastRetries(3))
	s.Seed()
	rc := newReceiver(t, nil)
	rc.register(t, s, "customer.subscription.updated")
	post := func(query string) (int, map[string]any) {
		resp, err := s.HTTPClient().Post(s.URL()+billingtest.PathClockAdvance+query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
		return resp.StatusCode, m
	}
	before := s.Now()
	status, body := post("?by=720h")
	if status != 200 || body["advanced_by"] != "720h0m0s" {
		t.Fatalf("advance = %d %v", status, body)
	}
	if now := int64(body["now"].(float64)); now < before.Add(720*time.Hour).Unix() {
		t.Errorf("now = %d, want at least %d", now, before.Add(720*time.Hour).Unix())
	}
	// Both seeded subscriptions renewed, and the endpoint has both
	// events already.
	if got := rc.events(); len(got) != 2 {
		t.Errorf("%d events at the endpoint when the advance answered, want 2", len(got))
	}
	for _, q := range []string{"", "?by=yesterday", "?by=-1h"} {
		status, body := post(q)
		if param, msg := errorOf(body); status != 400 || param != "by" || !strings.Contains(msg, "720h") {
			t.Errorf("advance%s = %d %v", q, status, body)
		}
	}
	resp, err := s.HTTPClient().Get(s.URL() + "/emulator/clock")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /emulator/clock = %d", resp.StatusCode)
	}
}
