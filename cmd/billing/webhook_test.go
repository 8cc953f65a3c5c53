package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/ops"
	"github.com/stripe/stripe-go/v76"
)

var (
	createdLine = regexp.MustCompile(`^webhook endpoint (we_\S+) created: 9 events, enabled, API version 2023-10-16\n` +
		`signing secret (whsec_\S+) \(shown once: give it to the handler's WebhookConfig.Secrets, e.g. as STRIPE_WEBHOOK_SECRET\)\n$`)
	updatedLine = regexp.MustCompile(`^webhook endpoint (we_\S+) updated: 9 events, enabled \(API version unchanged\)\n$`)
)

// TestWebhookSetup: the first run creates the endpoint with exactly the
// handled events and stripe-go's API version and prints its secret once;
// a second run updates that endpoint (events put back, enabled again) and
// prints no secret; another URL gets an endpoint of its own.
func TestWebhookSetup(t *testing.T) {
	s, environ := startCatalog(t, billingtest.EmulatorConfig{})
	out := mustRun(t, environ, "webhook", "setup", "-url", appWebhookURL)
	m := createdLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("first run printed\n%s\nwant the created and secret lines", out)
	}
	eps := s.WebhookEndpoints()
	if len(eps) != 1 {
		t.Fatalf("%d endpoints, want 1", len(eps))
	}
	ep := eps[0]
	if ep.ID != m[1] || ep.Secret != m[2] || ep.URL != appWebhookURL || ep.Disabled || ep.APIVersion != stripe.APIVersion {
		t.Errorf("endpoint %+v; printed id %s", ep, m[1])
	}
	if !slices.Equal(slices.Sorted(slices.Values(ep.EnabledEvents)), slices.Sorted(slices.Values(ops.HandledEvents))) {
		t.Errorf("events %v, want exactly %v", ep.EnabledEvents, ops.HandledEvents)
	}

	// Someone trims the events and disables the endpoint; setup repairs it.
	p := &stripe.WebhookEndpointParams{EnabledEvents: stripe.StringSlice([]string{"customer.subscription.updated"}), Disabled: stripe.Bool(true)}
	if _, err := (webhookEndpoints(s)).Update(ep.ID, p); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, environ, "webhook", "setup", "-url", appWebhookURL)
	if m := updatedLine.FindStringSubmatch(out); m == nil || m[1] != ep.ID {
		t.Fatalf("second run printed\n%s\nwant the updated line for %s", out, ep.ID)
	}
	if strings.Contains(out, "whsec_") {
		t.Error("an update printed a secret")
	}
	eps = s.WebhookEndpoints()
	if len(eps) != 1 || eps[0].Disabled || len(eps[0].EnabledEvents) != len(ops.HandledEvents) {
		t.Errorf("after the update: %+v", eps)
	}

	out = mustRun(t, environ, "webhook", "setup", "-url", "https://staging.example.com/hook", "-json")
	var res ops.WebhookEndpointSetup
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Created || !strings.HasPrefix(res.Secret, "whsec_") || res.ID == ep.ID {
		t.Errorf("-json for another URL: %s (%v)", out, err)
	}
	if n := len(s.WebhookEndpoints()); n != 2 {
		t.Errorf("%d endpoints, want 2", n)
	}
}

// TestWebhookSetupFails: a Stripe error is exit 1 with the reason, and
// never the key.
func TestWebhookSetupFails(t *testing.T) {
	s, environ := startCatalog(t, billingtest.EmulatorConfig{})
	s.Fail(billingtest.PathWebhookEndpoints, billingtest.ServerError(500))
	code, stdout, stderr := runEnv(t, t.Context(), environ, "webhook", "setup", "-url", appWebhookURL)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "billing webhook: billing: list webhook endpoints:") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and the list error", code, stdout, stderr)
	}
	if strings.Contains(stderr, billingtest.TestKey) {
		t.Error("the key was printed")
	}
}
