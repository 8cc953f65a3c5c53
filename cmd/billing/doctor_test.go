package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/ops"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/price"
)

// setUp runs webhook setup and portal setup against the emulator, as a new
// user would.
func setUp(t *testing.T, environ map[string]string, hookURL string) {
	t.Helper()
	mustRun(t, environ, "webhook", "setup", "-url", hookURL)
	mustRun(t, environ, "portal", "setup", "-price-plans", standardPlans)
}

// TestSetUpThenDoctor: after webhook setup and portal setup on a fresh
// account with the standard catalog, every check of doctor is ok: exit 0,
// one "ok" line per check, and the same in -json.
func TestSetUpThenDoctor(t *testing.T) {
	_, environ := startCatalog(t, billingtest.EmulatorConfig{})
	setUp(t, environ, appWebhookURL)
	out := mustRun(t, environ, "doctor", "-price-plans", standardPlans, "-webhook-url", appWebhookURL)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	wantNames := []string{"key mode", "webhook endpoint", "webhook endpoint enabled", "webhook endpoint events", "webhook endpoint api version",
		"portal configuration", "portal configuration features", "portal configuration prices",
		"price price_basic", "price price_pro", "product prod_basic prices mapped", "product prod_pro prices mapped"}
	if len(lines) != len(wantNames) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(wantNames), out)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "ok   "+wantNames[i]) {
			t.Errorf("line %d %q, want ok %s", i+1, l, wantNames[i])
		}
	}

	out = mustRun(t, environ, "doctor", "-price-plans", standardPlans, "-webhook-url", appWebhookURL, "-json")
	var rep struct {
		OK     bool        `json:"ok"`
		Checks []ops.Check `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.OK || len(rep.Checks) != len(wantNames) {
		t.Errorf("-json: %s (%v)", out, err)
	}
}

// TestDoctorFails: each way an account can be wrong is one FAIL line with
// its fix, exit 1; running the fix makes doctor pass again where the fix
// is a command of billing's.
func TestDoctorFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plans  string                                // -price-plans (default standardPlans)
		breakf func(*testing.T, *billingtest.Stripe) // what goes wrong after the setup
		fail   []string                              // the FAIL lines, exactly
		fix    []string                              // a command line that repairs it, if any
	}{
		{
			name:  "price missing",
			plans: standardPlans + ",price_gone=PRO",
			fail:  []string{"FAIL price price_gone: not found in the account; fix: create it, or remove it from -price-plans"},
		},
		{
			name: "price unmapped",
			breakf: func(t *testing.T, s *billingtest.Stripe) {
				s.AddPrice(billingtest.StripePrice{ID: "price_pro_yearly", Product: billingtest.ProductPro, Interval: "year", UnitAmount: 20000})
			},
			fail: []string{"FAIL product prod_pro prices mapped: unmapped active recurring prices [price_pro_yearly]; " +
				"fix: add them to -price-plans (a subscriber to an unmapped price keeps no plan), or archive them"},
		},
		{
			name: "price archived",
			breakf: func(t *testing.T, s *billingtest.Stripe) {
				c := &price.Client{B: backend(s), Key: billingtest.TestKey}
				if _, err := c.Update(billingtest.PricePro, &stripe.PriceParams{Active: stripe.Bool(false)}); err != nil {
					t.Fatal(err)
				}
			},
			fail: []string{"FAIL price price_pro: price_pro is archived; fix: reactivate it in the dashboard, or map its replacement in -price-plans"},
		},
		{
			name: "endpoint misses an event",
			breakf: func(t *testing.T, s *billingtest.Stripe) {
				events := slices.DeleteFunc(slices.Clone(ops.HandledEvents), func(e string) bool { return e == "checkout.session.completed" })
				updateEndpoint(t, s, &stripe.WebhookEndpointParams{EnabledEvents: stripe.StringSlice(events)})
			},
			fail: []string{"FAIL webhook endpoint events: missing [checkout.session.completed]; fix: billing webhook setup -url " + appWebhookURL},
			fix:  []string{"webhook", "setup", "-url", appWebhookURL},
		},
		{
			name: "endpoint disabled",
			breakf: func(t *testing.T, s *billingtest.Stripe) {
				updateEndpoint(t, s, &stripe.WebhookEndpointParams{Disabled: stripe.Bool(true)})
			},
			fail: []string{"FAIL webhook endpoint enabled: status disabled; fix: enable it in the dashboard, or billing webhook setup -url " +
				appWebhookURL},
			fix: []string{"webhook", "setup", "-url", appWebhookURL},
		},
		{
			name:   "no endpoint",
			breakf: func(t *testing.T, s *billingtest.Stripe) { deleteEndpoints(t, s) },
			fail:   []string{"FAIL webhook endpoint: no endpoint for " + appWebhookURL + "; fix: billing webhook setup -url " + appWebhookURL},
			fix:    []string{"webhook", "setup", "-url", appWebhookURL},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, environ := startCatalog(t, billingtest.EmulatorConfig{})
			setUp(t, environ, appWebhookURL)
			if tc.breakf != nil {
				tc.breakf(t, s)
			}
			plans := tc.plans
			if plans == "" {
				plans = standardPlans
			}
			code, stdout, stderr := runEnv(t, context.Background(), environ, "doctor", "-price-plans", plans, "-webhook-url", appWebhookURL)
			var fails []string
			for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
				if !strings.HasPrefix(l, "ok   ") {
					fails = append(fails, l)
				}
			}
			if code != 1 || !slices.Equal(fails, tc.fail) {
				t.Fatalf("exit %d, FAIL lines\n%s\nwant 1 and\n%s\nstdout:\n%s", code, strings.Join(fails, "\n"), strings.Join(tc.fail, "\n"), stdout)
			}
			if !strings.Contains(stderr, "billing doctor: 1 of ") || !strings.Contains(stderr, " checks failed") {
				t.Errorf("stderr %q, want the count of failed checks", stderr)
			}
			if tc.fix != nil {
				mustRun(t, environ, tc.fix...)
				mustRun(t, environ, "doctor", "-price-plans", plans, "-webhook-url", appWebhookURL)
			}
		})
	}
}

// updateEndpoint updates the emulator's one webhook endpoint.
func updateEndpoint(t *testing.T, s *billingtest.Stripe, p *stripe.WebhookEndpointParams) {
	t.Helper()
	eps := s.WebhookEndpoints()
	if len(eps) != 1 {
		t.Fatalf("%d endpoints, want 1", len(eps))
	}
	if _, err := webhookEndpoints(s).Update(eps[0].ID, p); err != nil {
		t.Fatal(err)
	}
}

// deleteEndpoints deletes every webhook endpoint of the emulator.
func deleteEndpoints(t *testing.T, s *billingtest.Stripe) {
	t.Helper()
	for _, ep := range s.WebhookEndpoints() {
		if _, err := webhookEndpoints(s).Del(ep.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNewUserAgainstEmulatorCommand: what the README's "Set up a Stripe
// account" shows, run as a new user would: `billing emulator` as a
// process, two prices created through its API (as curl would), then the
// built binary's webhook setup, portal setup and doctor, all exit 0, the
// table naming the prices by lookup key.
func TestNewUserAgainstEmulatorCommand(t *testing.T) {
	_, url, _ := startEmulator(t)
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(url),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}, MaxNetworkRetries: stripe.Int64(0)})
	prices := &price.Client{B: b, Key: "sk_test_newuser"}
	for _, p := range []struct {
		name, key string
		amount    int64
	}{{"Basic", "basic_monthly", 1000}, {"Pro", "pro_monthly", 2000}} {
		if _, err := prices.New(&stripe.PriceParams{ProductData: &stripe.PriceProductDataParams{Name: stripe.String(p.name)},
			Currency: stripe.String("usd"), UnitAmount: stripe.Int64(p.amount), LookupKey: stripe.String(p.key),
			Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}}); err != nil {
			t.Fatal(err)
		}
	}
	const plans = "lookup_key:basic_monthly=BASIC,lookup_key:pro_monthly=PRO"
	for _, args := range [][]string{
		{"webhook", "setup", "-url", appWebhookURL},
		{"portal", "setup", "-price-plans", plans, "-return-url", "https://app.example.com/account"},
		{"doctor", "-price-plans", plans, "-webhook-url", appWebhookURL},
	} {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = append(os.Environ(), "STRIPE_API_URL="+url, "STRIPE_SECRET_KEY=sk_test_newuser")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("billing %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "doctor" && strings.Contains(string(out), "FAIL") {
			t.Errorf("doctor:\n%s", out)
		}
	}
}
