package main

import (
	"bytes"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/testenv"
)

// TestDemoHookAfterCrash: a process that dies between the commit of a plan
// change and its hook (BILLING_DEMO_EXIT_BEFORE_HOOK=1 makes the demo exit
// right there) loses nothing: after a restart, with two replicas on the
// same database, the change reaches the hook exactly once between them,
// with its id; Stripe's retry of the unacknowledged delivery is a
// duplicate. On SQLite and on PostgreSQL.
func TestDemoHookAfterCrash(t *testing.T) {
	bin := buildDemo(t)
	for _, tc := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "billing.db") }},
		{"postgres", func(t *testing.T) string { return testenv.Postgres(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := tc.dsn(t)
			fake := billingtest.StartStripe(t)
			users := writeUsers(t, []demoUser{{ID: "u_crash", Plan: "FREE", StripeCustomerID: "cus_crash", Token: "tok_crash"}})
			args := []string{"-addr", "127.0.0.1:0", "-db", dsn, "-users", users, "-stripe-url", fake.URL(), "-price-plans", "price_basic=BASIC,price_pro=PRO"}

			crashing := startDemoProcess(t, bin, append(crashEnv(), "BILLING_DEMO_EXIT_BEFORE_HOOK=1"), args)
			ev := billingtest.SubscriptionEvent("customer.subscription.created",
				billingtest.SubscriptionSpec{ID: "sub_crash", Customer: "cus_crash", PriceID: "price_pro"}, time.Now())
			post := func(base string) (int, error) {
				req, _ := http.NewRequest(http.MethodPost, base+"/api/subscription/webhook", bytes.NewReader(ev))
				req.Header.Set("Stripe-Signature", billingtest.Sign(ev, crashSecret, time.Now()))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return 0, err
				}
				resp.Body.Close()
				return resp.StatusCode, nil
			}
			if code, err := post(crashing.base); err == nil {
				t.Fatalf("the delivery was answered %d; the demo should have died before replying", code)
			}
			select {
			case <-crashing.exited:
			case <-time.After(15 * time.Second):
				t.Fatal("the demo did not exit at its crash point")
			}
			if code := crashing.cmd.ProcessState.ExitCode(); code != 3 || !strings.Contains(crashing.out.String(), "exiting before the plan-change hook") {
				t.Fatalf("exit %d:\n%s", code, crashing.out)
			}
			if n := strings.Count(crashing.out.String(), "plan change:"); n != 0 {
				t.Fatalf("the crashed process printed %d hook lines", n)
			}

			// Two replicas start on the database; Stripe retries.
			a := startDemoProcess(t, bin, crashEnv(), args)
			b := startDemoProcess(t, bin, crashEnv(), args)
			if code, err := post(a.base); err != nil || code != 200 {
				t.Fatalf("the retried delivery: %d, %v", code, err)
			}
			lines := func() []string {
				var out []string
				for _, p := range []*demoProcess{a, b} {
					for _, l := range strings.Split(p.out.String(), "\n") {
						if strings.HasPrefix(l, "plan change:") {
							out = append(out, l)
						}
					}
				}
				return out
			}
			deadline := time.Now().Add(30 * time.Second) // the crashed claim's lease (5 s), then a delivery round (2 s)
			for len(lines()) == 0 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(3 * time.Second) // a second round of both replicas: no second line
			got := lines()
			if len(got) != 1 {
				t.Fatalf("%d hook lines across the replicas, want exactly 1: %q\nA:\n%s\nB:\n%s", len(got), got, a.out, b.out)
			}
			m := hookLine.FindStringSubmatch(got[0])
			if m == nil || m[1] != "u_crash" || m[2] != "FREE" || m[3] != "PRO" || m[4] != "webhook" || !strings.HasPrefix(m[5], "chg_") {
				t.Fatalf("hook line %q, want u_crash FREE→PRO by webhook with a chg_ id", got[0])
			}
			t.Logf("delivered after the crash: %s", got[0])
			a.stop()
			b.stop()
		})
	}
}
