package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/ops"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/customer"
	"github.com/stripe/stripe-go/v76/subscription"
)

// TestReplayOutput: three users subscribe while the app has no endpoint;
// replay -since applies the events oldest first, within a second too (a summary line and a
// drift line per changed plan on stdout, a plain progress line every
// -progress-every events on stderr); a span that holds none replays
// nothing; a Stripe failure stops the run with exit 1.
func TestReplayOutput(t *testing.T) {
	s, environ := startCatalog(t, billingtest.EmulatorConfig{})
	dsn := filepath.Join(t.TempDir(), "billing.db")
	store := openTestStore(t, dsn)
	b := backend(s)
	customers := &customer.Client{B: b, Key: billingtest.TestKey}
	subs := &subscription.Client{B: b, Key: billingtest.TestKey}
	for i := range 3 {
		c, err := customers.New(&stripe.CustomerParams{})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutUser(context.Background(), billing.User{ID: fmt.Sprintf("u_%d", i), Plan: billing.Free, StripeCustomerID: c.ID}); err != nil {
			t.Fatal(err)
		}
		subscribe(t, subs, c.ID, billingtest.PricePro)
	}
	handled := len(s.Events(ops.HandledEvents...))

	code, stdout, stderr := runEnv(t, context.Background(), environ, "replay", "-db", dsn, "-since", "10m", "-price-plans", standardPlans, "-progress-every", "2")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	summary := regexp.MustCompile(fmt.Sprintf(`^replay done: %d of %d events in 1 pages \(0 rate-limited\), applied 3, duplicate 0, stale 0, other \d+, errors 0, plans changed 3$`, handled, handled))
	// Oldest first also within one second (the three events share one):
	// the users in the order they subscribed.
	if code != 0 || len(lines) != 4 || !summary.MatchString(lines[0]) ||
		strings.Join(lines[1:], "\n") != "drift: user=u_0 from=FREE to=PRO\ndrift: user=u_1 from=FREE to=PRO\ndrift: user=u_2 from=FREE to=PRO" {
		t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if n := strings.Count(stderr, "\n"); n != handled/2 || !strings.HasPrefix(stderr, fmt.Sprintf("replay: 2 of %d events", handled)) {
		t.Errorf("stderr has %d lines, want %d progress lines:\n%s", n, handled/2, stderr)
	}

	code, _, stderr = runEnv(t, context.Background(), environ, "replay", "-db", dsn, "-since", "1000h", "-price-plans", standardPlans)
	if code != 0 || !strings.HasPrefix(stderr, "replay: Stripe keeps 30 days of events: those before ") {
		t.Errorf("-since 1000h: exit %d, stderr %q; want 0 and the note on the 30 days", code, stderr)
	}

	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	out := mustRun(t, environ, "replay", "-db", dsn, "-since", future, "-price-plans", standardPlans)
	if !strings.HasPrefix(out, "replay done: 0 of 0 events in 1 pages") {
		t.Errorf("-since %s: %s", future, out)
	}

	s.Fail(billingtest.PathEvents, billingtest.ServerError(500))
	code, stdout, stderr = runEnv(t, context.Background(), environ, "replay", "-db", dsn, "-since", "10m", "-price-plans", standardPlans)
	if code != 1 || !strings.HasPrefix(stdout, "replay stopped: 0 of 0 events") || !strings.Contains(stderr, "billing replay: billing: replay: list events") {
		t.Errorf("a failing events list: exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
