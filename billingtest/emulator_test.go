package billingtest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
)

// TestEmulatorWithLibrary runs the documented usage flow against the
// emulator with the library's own portal service and webhook handler: open
// the portal, change BASIC to PRO on the hosted page, see PRO in the store
// through the webhooks; cancel, pass the period's end, see FREE.
func TestEmulatorWithLibrary(t *testing.T) {
	s := billingtest.StartEmulator(t, billingtest.EmulatorConfig{})
	s.Seed()
	store := billingtest.NewStore()
	var h http.Handler
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer app.Close()
	we := s.AddWebhookEndpoint(app.URL+billingtest.WebhookPath, "customer.subscription.created", "customer.subscription.updated",
		"customer.subscription.deleted", "entitlements.active_entitlement_summary.updated", "invoice.paid")
	wh, err := billing.NewWebhookHandler(billing.WebhookConfig{Secrets: []string{we.Secret}, Store: store,
		Rules: billing.PlanRules{Prices: billingtest.Prices()}, Subscriptions: s.SubscriptionClient()})
	if err != nil {
		t.Fatal(err)
	}
	h = wh
	svc := billingtest.NewPortalService(t, s, store)
	plan := func() billing.Plan {
		t.Helper()
		u, ok, err := store.User(context.Background(), billingtest.UserBasic)
		if err != nil || !ok {
			t.Fatalf("User = %v, %v", ok, err)
		}
		return u.Plan
	}
	open := func() page {
		t.Helper()
		sess, err := svc.CreateSession(context.Background(), billingtest.UserBasic, billing.SessionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sess.URL, s.URL()+"/p/session/") {
			t.Fatalf("session URL %q is not the emulator's", sess.URL)
		}
		return newBrowser(t, s).get(sess.URL)
	}
	b := newBrowser(t, s)

	home := open()
	b.follow(b.submit(b.follow(b.submit(home, "change-plan", map[string]string{"price": billingtest.PricePro})), "confirm", nil))
	waitDeliveries(t, s)
	if got := plan(); got != billing.Pro {
		t.Fatalf("after the plan change on the hosted page: %s, want PRO", got)
	}

	home = open()
	b.follow(b.submit(b.follow(b.submit(home, "cancel", nil)), "confirm", nil))
	waitDeliveries(t, s)
	if got := plan(); got != billing.Pro {
		t.Fatalf("canceling at period end: %s, want PRO until the period ends", got)
	}
	if err := s.AdvanceClock(context.Background(), 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := plan(); got != billing.Free {
		t.Fatalf("after the period end: %s, want FREE", got)
	}
	for _, a := range s.Deliveries() {
		if !a.OK {
			t.Errorf("a delivery failed: %+v", a)
		}
	}
}

func TestNewEmulatorConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  billingtest.EmulatorConfig
		want string // in the error; "" for none
	}{
		{"zero value", billingtest.EmulatorConfig{}, ""},
		{"any interface", billingtest.EmulatorConfig{Addr: ":0"}, ""},
		{"bad address", billingtest.EmulatorConfig{Addr: "nowhere:-1"}, "listen on nowhere:-1"},
		{"bad public URL", billingtest.EmulatorConfig{PublicURL: "localhost:1"}, "PublicURL"},
		{"negative idle timeout", billingtest.EmulatorConfig{PortalIdleTimeout: -time.Second}, "PortalIdleTimeout"},
		{"chaos out of range", billingtest.EmulatorConfig{Webhooks: billingtest.DeliveryConfig{Chaos: &billingtest.Chaos{Duplicate: 2}}}, "Chaos"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := billingtest.NewEmulator(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
					t.Errorf("URL = %s", s.URL())
				}
				resp, err := s.HTTPClient().Get(s.URL() + "/emulator/clock")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("NewEmulator(%+v) = nil error, want one naming %q", tt.cfg, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "billingtest: ") {
				t.Errorf("err = %v, want a billingtest: error naming %q", err, tt.want)
			}
		})
	}
	t.Run("public URL in the URLs handed out", func(t *testing.T) {
		s := billingtest.StartEmulator(t, billingtest.EmulatorConfig{PublicURL: "http://billing.test:8080/"})
		s.Seed()
		ps, err := newSession(t, s.SessionClient(), billingtest.CustomerPro)
		if err != nil || !strings.HasPrefix(ps.URL, "http://billing.test:8080/p/session/test_") {
			t.Errorf("session = %+v, %v", ps, err)
		}
	})
}
