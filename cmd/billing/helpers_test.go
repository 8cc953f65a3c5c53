package main

import (
	"context"
	"strings"
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhookendpoint"
)

// standardPlans is the -price-plans of the emulator's standard catalog
// (billingtest's SeedCatalog).
const standardPlans = billingtest.PriceBasic + "=BASIC," + billingtest.PricePro + "=PRO"

// appWebhookURL is the app's webhook endpoint in tests that need no app.
const appWebhookURL = "https://app.example.com/api/subscription/webhook"

// startCatalog starts an emulator in-process with the standard catalog
// and returns it with the environment that points the command at it.
func startCatalog(t testing.TB, cfg billingtest.EmulatorConfig) (*billingtest.Stripe, map[string]string) {
	t.Helper()
	s := billingtest.StartEmulator(t, cfg)
	s.SeedCatalog()
	return s, map[string]string{"STRIPE_API_URL": s.URL(), "STRIPE_SECRET_KEY": billingtest.TestKey}
}

// mustRun runs the command line in-process and fails the test unless it
// exits 0; it returns stdout.
func mustRun(t *testing.T, environ map[string]string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runEnv(t, context.Background(), environ, args...)
	if code != 0 {
		t.Fatalf("billing %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// backend returns a stripe-go backend to s without retries, for the
// test's own calls.
func backend(s *billingtest.Stripe) stripe.Backend {
	return s.NewBackend(billingtest.BackendConfig{MaxNetworkRetries: stripe.Int64(0)})
}

// webhookEndpoints returns stripe-go's webhook endpoint client for s.
func webhookEndpoints(s *billingtest.Stripe) *webhookendpoint.Client {
	return &webhookendpoint.Client{B: backend(s), Key: billingtest.TestKey}
}
