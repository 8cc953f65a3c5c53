package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/examples/demo/app"
	"github.com/contafy/billing/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

func TestMain(m *testing.M) {
	testenv.Main(m)
}

// syncBuffer is an io.Writer safe for the server's goroutines that also
// signals each line.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	for _, l := range strings.SplitAfter(string(p), "\n") {
		if strings.HasSuffix(l, "\n") {
			select {
			case b.lines <- strings.TrimSpace(l):
			default:
			}
		}
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listening = regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)$`)

// startDemo runs the demo with args and returns its base URL and output.
func startDemo(t *testing.T, env map[string]string, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{lines: make(chan string, 1000)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo exited with %v", err)
		}
	})
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-out.lines:
			if m := listening.FindStringSubmatch(l); m != nil {
				return m[1], out
			}
		case err := <-done:
			t.Fatalf("demo exited early: %v\n%s", err, out)
		case <-timeout:
			t.Fatalf("no listening line:\n%s", out)
		}
	}
}

// startApp runs the demo in-process as startDemo does, through app.Start,
// and returns it, for a test that looks at its store or its emulator.
func startApp(t *testing.T, env map[string]string, args ...string) (*app.Demo, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{lines: make(chan string, 1000)}
	d, err := app.Start(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, out)
	if err != nil {
		cancel()
		t.Fatalf("demo: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		cancel()
		if err := d.Wait(); err != nil {
			t.Errorf("demo exited with %v", err)
		}
	})
	return d, out
}

// subscriptionOf returns the id of the subscription the demo's store has
// for the user.
func subscriptionOf(t *testing.T, d *app.Demo, userID string) string {
	t.Helper()
	u, found, err := d.Store.User(context.Background(), userID)
	if err != nil || !found || u.SubscriptionID == "" {
		t.Fatalf("store: user %s = %+v, %v, %v; want one with a subscription", userID, u, found, err)
	}
	return u.SubscriptionID
}

type row struct {
	token  string
	status int
	body   map[string]string // url checked by prefix
}

func call(t *testing.T, base, token, body string) (int, map[string]string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/subscription/create-portal-session", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Cookie", "access_token="+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("reply %q is not the contract's JSON: %v", raw, err)
	}
	return resp.StatusCode, m, resp.Header
}

var (
	created      = map[string]string{"message": "Portal session created successfully"}
	unauthorized = map[string]string{"error": "Unauthorized", "message": "Authentication required"}
	forbidden    = map[string]string{"error": "Forbidden", "message": "Customer portal is only available for paid subscriptions"}
	notFound     = map[string]string{"error": "Not Found", "message": "Stripe customer not found"}
	internal     = map[string]string{"error": "Internal Server Error", "message": "Failed to create portal session"}
)

func checkRows(t *testing.T, base string, rows []row) {
	t.Helper()
	for _, r := range rows {
		status, body, hdr := call(t, base, r.token, "")
		if status != r.status {
			t.Errorf("token %q: status %d, want %d (%v)", r.token, status, r.status, body)
		}
		if u, ok := body["url"]; ok && status == 200 {
			if !strings.HasPrefix(u, "http") {
				t.Errorf("token %q: url %q", r.token, u)
			}
			delete(body, "url")
		}
		if diff := cmp.Diff(r.body, body); diff != "" {
			t.Errorf("token %q: body (-want +got):\n%s", r.token, diff)
		}
		if hdr.Get("Cache-Control") != "no-store" || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("token %q: headers %v", r.token, hdr)
		}
	}
}

var defaultRows = []row{
	{"", 401, unauthorized},
	{"tok_nope", 401, unauthorized},
	{"tok_free", 403, forbidden},
	{"tok_basic", 200, created},
	{"tok_pro", 200, created},
	{"tok_pro_nocustomer", 404, notFound},
}

func TestDemoWithEmulator(t *testing.T) {
	base, out := startDemo(t, nil)
	if !strings.Contains(out.String(), "Stripe emulator in-process") {
		t.Errorf("demo does not say it runs the emulator:\n%s", out)
	}
	for _, u := range defaultUsers {
		want := fmt.Sprintf("curl -s -X POST %s/api/subscription/create-portal-session -H 'Cookie: access_token=%s'", base, u.Token)
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing curl line for %s", u.ID)
		}
	}
	checkRows(t, base, defaultRows)
	_, logs, _ := strings.Cut(out.String(), "listening on "+base+"\n")
	if !strings.Contains(logs, "billing: portal request") {
		t.Errorf("no request log lines:\n%s", logs)
	}
	for _, secret := range []string{"tok_", "access_token", "/p/session/", "sk_test"} {
		if strings.Contains(logs, secret) {
			t.Errorf("%q reached the log:\n%s", secret, logs)
		}
	}
}

func TestDemoWithStripeMock(t *testing.T) {
	mock := testenv.StripeMock(t)
	base, out := startDemo(t, map[string]string{"STRIPE_API_URL": mock})
	if !strings.Contains(out.String(), "using Stripe at "+mock) {
		t.Errorf("demo does not say where Stripe is:\n%s", out)
	}
	checkRows(t, base, defaultRows)
}

func TestDemoStripeDownIs500(t *testing.T) {
	base, _ := startDemo(t, nil, "-stripe-url", "http://127.0.0.1:1")
	checkRows(t, base, []row{{"tok_pro", 500, internal}, {"tok_free", 403, forbidden}})
}

func TestDemoUsersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	users := `[
	 {"id":"a","plan":"PRO","stripe_customer_id":"cus_a","token":"ta"},
	 {"id":"b","plan":"PRO","stripe_customer_id":"cus_b","token":"tb","expires_at":"2001-01-01T00:00:00Z"},
	 {"id":"c","plan":"BASIC","stripe_customer_id":"cus_c","token":"tc","expires_at":"2999-01-01T00:00:00Z"},
	 {"id":"d","plan":"FREE","token":"td"}]`
	if err := os.WriteFile(path, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	base, out := startDemo(t, nil, "-users", path, "-allowed-return", "https://app.example.com/billing/, https://other.example.com",
		"-return-url", "https://app.example.com/account")
	if strings.Contains(out.String(), "seeded users") {
		t.Error("with -users the demo must not print the default users")
	}
	checkRows(t, base, []row{{"ta", 200, created}, {"tb", 401, unauthorized}, {"tc", 200, created}, {"td", 403, forbidden}})

	if status, body, _ := call(t, base, "ta", `{"return_url":"https://other.example.com/x"}`); status != 200 {
		t.Errorf("allowed return_url: %d %v", status, body)
	}
	if status, body, _ := call(t, base, "ta", `{"return_url":"https://evil.example/"}`); status != 400 {
		t.Errorf("hostile return_url: %d %v", status, body)
	}
}

func TestDemoRejectsBadUsersFile(t *testing.T) {
	for name, content := range map[string]string{
		"not json":     `{`,
		"unknown plan": `[{"id":"a","plan":"GOLD","token":"t"}]`,
		"no token":     `[{"id":"a","plan":"PRO"}]`,
		"extra field":  `[{"id":"a","plan":"PRO","token":"t","admin":true}]`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users.json")
			os.WriteFile(path, []byte(content), 0o600)
			err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-users", path}, func(string) string { return "" }, io.Discard)
			if err == nil {
				t.Fatal("bad -users file accepted")
			}
		})
	}
}

// TestDemoBinaryListens builds nothing: it checks the listening line format
// that other tools wait for, through a bufio scan of the real output.
func TestDemoListeningLine(t *testing.T) {
	_, out := startDemo(t, nil)
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	n := 0
	for sc.Scan() {
		if listening.MatchString(sc.Text()) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d listening lines, want 1:\n%s", n, out)
	}
}

func postWebhook(t *testing.T, base string, payload []byte, sig string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/subscription/webhook", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestDemoWebhookCancelsPro is issue 3's acceptance check through the demo:
// a forged customer.subscription.deleted changes nothing, a signed one turns
// the PRO user's next portal request into a 403.
func TestDemoWebhookCancelsPro(t *testing.T) {
	const secret = "whsec_demo_test_secret"
	// The secret is accepted beside the one the emulator generated for the
	// demo's own endpoint; the event deletes the PRO user's real subscription.
	d, out := startApp(t, map[string]string{"STRIPE_WEBHOOK_SECRET": secret})
	base := d.URL
	checkRows(t, base, []row{{"tok_pro", 200, created}})

	ev := billingtest.SubscriptionEvent("customer.subscription.deleted",
		billingtest.SubscriptionSpec{ID: subscriptionOf(t, d, "user_pro"), Customer: "cus_demo_pro", Status: "canceled", PriceID: "price_pro"}, time.Now())

	forged := []string{
		"", // no signature
		billingtest.Sign(ev, "whsec_wrong", time.Now()),                              // wrong secret
		billingtest.Sign(ev, secret, time.Now().Add(-10*time.Minute)),                // stale
		billingtest.Sign(ev, secret, time.Now().Add(10*time.Minute)),                 // future
		strings.Replace(billingtest.Sign(ev, secret, time.Now()), "v1=", "v1=00", 1), // tampered
	}
	for i, sig := range forged {
		if code := postWebhook(t, base, ev, sig); code != http.StatusBadRequest {
			t.Errorf("forged event %d: status %d, want 400", i, code)
		}
		checkRows(t, base, []row{{"tok_pro", 200, created}})
	}
	// A tampered body with a signature of the original.
	sig := billingtest.Sign(ev, secret, time.Now())
	tampered := bytes.Replace(ev, []byte("cus_demo_pro"), []byte("cus_demo_bas"), 1)
	if code := postWebhook(t, base, tampered, sig); code != http.StatusBadRequest {
		t.Errorf("tampered body: status %d, want 400", code)
	}

	if code := postWebhook(t, base, ev, sig); code != http.StatusOK {
		t.Fatalf("signed event: status %d, want 200\n%s", code, out)
	}
	checkRows(t, base, []row{{"tok_pro", 403, forbidden}, {"tok_basic", 200, created}})
	// The same event again is a duplicate: still 200, still FREE.
	if code := postWebhook(t, base, ev, sig); code != http.StatusOK {
		t.Fatalf("duplicate: status %d, want 200", code)
	}
	checkRows(t, base, []row{{"tok_pro", 403, forbidden}})
	if strings.Contains(out.String(), secret) {
		t.Error("the webhook secret reached the output")
	}
}

func TestDemoWebhookOffWithoutSecret(t *testing.T) {
	// Another Stripe than the in-process emulator (with which the demo
	// registers an endpoint of its own) and no secret: no webhook.
	fake := billingtest.StartStripe(t)
	base, out := startDemo(t, map[string]string{"STRIPE_API_URL": fake.URL(), "STRIPE_SECRET_KEY": billingtest.TestKey})
	if !strings.Contains(out.String(), "webhook: off") {
		t.Errorf("demo does not say the webhook is off:\n%s", out)
	}
	if code := postWebhook(t, base, []byte(`{}`), ""); code != http.StatusNotFound {
		t.Errorf("webhook without a secret: status %d, want 404", code)
	}
}

func TestDemoRejectsBadPricePlans(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-price-plans", "price_x=GOLD"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-price-plans") {
		t.Fatalf("err = %v, want a -price-plans error", err)
	}
}

// TestDemoFlowAndReturnSync: a deep-link cancel flow for the PRO user's own
// subscription (proven through the emulator), then the return URL syncs
// and redirects to /account, which shows the plan.
func TestDemoFlowAndReturnSync(t *testing.T) {
	d, _ := startApp(t, nil)
	base := d.URL
	flow := func(sub string) string { return `{"flow":{"type":"subscription_cancel","subscription":"` + sub + `"}}` }
	if status, body, _ := call(t, base, "tok_pro", flow(subscriptionOf(t, d, "user_pro"))); status != 200 {
		t.Fatalf("own subscription flow: %d %v", status, body)
	}
	if status, body, _ := call(t, base, "tok_pro", flow(subscriptionOf(t, d, "user_basic"))); status != 400 {
		t.Fatalf("someone else's subscription flow: %d %v, want 400", status, body)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/billing/return", nil)
	req.Header.Set("Cookie", "access_token=tok_pro")
	resp, err := http.DefaultClient.Do(req) // follows the 303
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if plan, _ := planOf(string(page)); resp.Request.URL.Path != "/account" || plan != "PRO" {
		t.Fatalf("return sync ended at %s with %q", resp.Request.URL, page)
	}
}

// TestDemoSQLStore runs two demos on one database (-db): a webhook applied
// through one is what the other's portal endpoint sees, on SQLite and on
// PostgreSQL.
func TestDemoSQLStore(t *testing.T) {
	const secret = "whsec_demo_sql"
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "billing.db") },
		"postgres": func(t *testing.T) string { return testenv.Postgres(t) },
	} {
		t.Run(name, func(t *testing.T) {
			db := dsn(t)
			// Both demos use one Stripe, as replicas do.
			fake := billingtest.StartStripe(t)
			fake.AddCustomer("cus_demo_basic", "cus_demo_pro")
			env := map[string]string{"STRIPE_WEBHOOK_SECRET": secret, "STRIPE_API_URL": fake.URL(), "STRIPE_SECRET_KEY": billingtest.TestKey}
			a, outA := startDemo(t, env, "-db", db)
			b, _ := startDemo(t, env, "-db", db)
			if !strings.Contains(outA.String(), "(sqlstore)") {
				t.Errorf("demo does not say it uses the SQL store:\n%s", outA)
			}
			checkRows(t, a, defaultRows)
			checkRows(t, b, defaultRows)
			ev := billingtest.SubscriptionEvent("customer.subscription.deleted",
				billingtest.SubscriptionSpec{ID: "sub_demo_pro", Customer: "cus_demo_pro", Status: "canceled", PriceID: "price_pro"}, time.Now())
			if code := postWebhook(t, a, ev, billingtest.Sign(ev, secret, time.Now())); code != http.StatusOK {
				t.Fatalf("signed event: %d", code)
			}
			checkRows(t, b, []row{{"tok_pro", 403, forbidden}, {"tok_basic", 200, created}})
			if code := postWebhook(t, b, ev, billingtest.Sign(ev, secret, time.Now())); code != http.StatusOK {
				t.Fatalf("duplicate through the other demo: %d", code)
			}
			checkRows(t, a, []row{{"tok_pro", 403, forbidden}})
		})
	}
}

func TestDemoBadDB(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-db") {
		t.Fatalf("err = %v, want a -db error", err)
	}
}
