package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
)

var hookLine = regexp.MustCompile(`^plan change: user=(\S+) from=(FREE|BASIC|PRO) to=(FREE|BASIC|PRO) cause=(\S+) id=(\S+)$`)

// hookLines returns the demo's plan-change lines, parsed.
func hookLines(out *syncBuffer) [][]string {
	var got [][]string
	for _, l := range strings.Split(out.String(), "\n") {
		if m := hookLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			got = append(got, m[1:])
		} else if strings.HasPrefix(l, "plan change:") {
			got = append(got, []string{"malformed: " + l})
		}
	}
	return got
}

// waitLines waits until the demo printed n plan-change lines, then a
// little longer to catch extra ones.
func waitLines(t *testing.T, out *syncBuffer, n int) [][]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(hookLines(out)) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	got := hookLines(out)
	if len(got) != n {
		t.Fatalf("%d plan-change lines, want %d: %q\n%s", len(got), n, got, out)
	}
	return got
}

// TestDemoPlanChangeHook: the demo's hook prints one line per change, for
// a webhook and for a change the return sync found; a duplicate or stale
// delivery prints none; the status endpoint shows the synced plan.
func TestDemoPlanChangeHook(t *testing.T) {
	const secret = "whsec_demo_hook"
	fake := billingtest.StartStripe(t) // Stripe's side, which the test changes
	base, out := startDemo(t, map[string]string{
		"STRIPE_API_URL": fake.URL(), "STRIPE_SECRET_KEY": billingtest.TestKey, "STRIPE_WEBHOOK_SECRET": secret,
	})

	now := time.Now()
	up := billingtest.SubscriptionEvent("customer.subscription.created",
		billingtest.SubscriptionSpec{ID: "sub_up", Customer: "cus_demo_basic", PriceID: "price_pro"}, now)
	if code := postWebhook(t, base, up, billingtest.Sign(up, secret, now)); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	got := waitLines(t, out, 1)
	if l := got[0]; l[0] != "user_basic" || l[1] != "BASIC" || l[2] != "PRO" || l[3] != "webhook" {
		t.Fatalf("line %q, want user_basic BASIC→PRO by webhook", l)
	}
	// The same event again, and an older one: no line.
	if code := postWebhook(t, base, up, billingtest.Sign(up, secret, time.Now())); code != 200 {
		t.Fatalf("duplicate: %d", code)
	}
	old := billingtest.SubscriptionEvent("customer.subscription.updated",
		billingtest.SubscriptionSpec{ID: "sub_up", Customer: "cus_demo_basic", PriceID: "price_basic"}, now.Add(-time.Minute))
	if code := postWebhook(t, base, old, billingtest.Sign(old, secret, time.Now())); code != 200 {
		t.Fatalf("stale: %d", code)
	}
	waitLines(t, out, 1)

	// The PRO user downgraded in the portal; the return sync finds it first.
	fake.PutSubscription(billingtest.SubscriptionSpec{ID: "sub_down", Customer: "cus_demo_pro", PriceID: "price_basic"})
	req, _ := http.NewRequest(http.MethodGet, base+"/billing/return", nil)
	req.Header.Set("Cookie", "access_token=tok_pro")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if plan, _ := planOf(string(page)); plan != "BASIC" {
		t.Fatalf("account page after the return sync: %q", page)
	}
	got = waitLines(t, out, 2)
	if l := got[1]; l[0] != "user_pro" || l[1] != "PRO" || l[2] != "BASIC" || l[3] != "return_sync" || l[4] == got[0][4] {
		t.Fatalf("line %q, want user_pro PRO→BASIC by return_sync with its own id", l)
	}

	// The status endpoint shows what the hook announced.
	req, _ = http.NewRequest(http.MethodGet, base+"/api/subscription", nil)
	req.Header.Set("Cookie", "access_token=tok_basic")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Plan     string  `json:"plan"`
		Status   *string `json:"status"`
		RenewsAt *string `json:"renews_at"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 || st.Plan != "PRO" || st.Status == nil || *st.Status != "active" || st.RenewsAt == nil {
		t.Fatalf("GET /api/subscription: %d %+v %v", resp.StatusCode, st, err)
	}
	if strings.Contains(out.String(), secret) {
		t.Error("the webhook secret reached the output")
	}
}
