package ops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/contafy/billing"
	"github.com/contafy/billing/internal/testenv"
	"github.com/contafy/billing/ops"
)

// TestStripeMockAcceptsSetupAndDoctor: every request the account setup and
// the doctor make has a shape Stripe's own mock accepts (stripe-mock is
// stateless: the outcomes are checked against the emulator elsewhere).
func TestStripeMockAcceptsSetupAndDoctor(t *testing.T) {
	s := ops.StripeAPI{B: billing.NewBackend(testenv.StripeMockBackendConfig(t)), Key: "sk_test_stripemock"}
	ctx := context.Background()
	prices, err := billing.ParsePriceTable("price_basic=BASIC,lookup_key:pro_monthly=PRO,product:prod_team=PRO")
	if err != nil {
		t.Fatal(err)
	}
	const url = "https://app.example.com/api/subscription/webhook"
	we, err := ops.SetupWebhookEndpoint(ctx, s, url)
	if err != nil || we.ID == "" {
		t.Fatalf("SetupWebhookEndpoint: %+v, %v", we, err)
	}
	pc, err := ops.SetupPortalConfiguration(ctx, s, prices, "https://app.example.com/account")
	if err != nil || pc.ID == "" {
		t.Fatalf("SetupPortalConfiguration: %+v, %v", pc, err)
	}
	rep, err := ops.Doctor(ctx, s, ops.DoctorConfig{Prices: prices, WebhookURL: url, PricePlans: "price_basic=BASIC"})
	if err != nil || len(rep.Checks) < 5 {
		t.Fatalf("Doctor: %+v, %v", rep, err)
	}
	for _, c := range rep.Checks {
		line := c.String()
		if !strings.HasPrefix(line, "ok   ") && !strings.HasPrefix(line, "FAIL ") || strings.Contains(line, "sk_test_") {
			t.Errorf("check line %q", line)
		}
		if !c.OK && c.Fix == "" {
			t.Errorf("failed check %q says no fix", c.Name)
		}
	}
	if rep.Checks[0].Name != "key mode" || !rep.Checks[0].OK || rep.Checks[0].Detail != "test" {
		t.Errorf("first check %+v, want key mode ok test", rep.Checks[0])
	}
}

func TestSetupRejectsMissingSettings(t *testing.T) {
	ctx := context.Background()
	if _, err := ops.SetupWebhookEndpoint(ctx, ops.StripeAPI{}, "https://x"); err == nil || !strings.Contains(err.Error(), "StripeAPI needs a backend and a key") {
		t.Errorf("err = %v", err)
	}
	s := ops.StripeAPI{B: billing.NewBackend(nil), Key: "sk_test_x"}
	if _, err := ops.SetupWebhookEndpoint(ctx, s, ""); err == nil || !strings.Contains(err.Error(), "URL is required") {
		t.Errorf("err = %v", err)
	}
	if _, err := ops.Doctor(ctx, s, ops.DoctorConfig{}); err == nil || !strings.Contains(err.Error(), "WebhookURL is required") {
		t.Errorf("err = %v", err)
	}
}
