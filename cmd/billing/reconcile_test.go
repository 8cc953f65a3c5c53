package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/ops"
	"github.com/contafy/billing/sqlstore"
)

// manySubscriptions puts n active subscriptions into s without events
// (sub_00000..., customers cus_00000...; even ones PRO, odd ones BASIC)
// and the n users linked to their customers into store, all FREE: every
// plan has drifted. It returns the plan each user should have. The two
// sides are seeded at once (under the race detector each takes seconds).
func manySubscriptions(t testing.TB, s *billingtest.Stripe, store *sqlstore.Store, n int) map[string]billing.Plan {
	t.Helper()
	price := func(i int) (string, billing.Plan) {
		if i%2 == 0 {
			return billingtest.PricePro, billing.Pro
		}
		return billingtest.PriceBasic, billing.Basic
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			p, _ := price(i)
			s.PutSubscription(billingtest.SubscriptionSpec{ID: fmt.Sprintf("sub_%05d", i), Customer: fmt.Sprintf("cus_%05d", i), PriceID: p,
				ProductID: "prod_" + strings.TrimPrefix(p, "price_")})
		}
	}()
	want := make(map[string]billing.Plan, n)
	var err error
	for i := range n {
		id := fmt.Sprintf("u_%05d", i)
		_, want[id] = price(i)
		if err == nil {
			err = store.PutUser(context.Background(), billing.User{ID: id, Plan: billing.Free, StripeCustomerID: fmt.Sprintf("cus_%05d", i)})
		}
	}
	<-done
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// TestReconcileKilledAndResumed: a reconcile of 10,000 subscriptions, with
// 429s injected on the list before and during the run, is killed with
// SIGKILL at about 60% and started again with the same command line: it
// resumes after the cursor file's subscription and ends with every plan
// right, having read no subscription on its own and each page once (the
// page the kill cut short twice). Under the race detector it runs 2,500
// (25 pages): seeding 10,000 users into SQLite alone takes 12 s of CPU
// there, and the emulator, in this process, renders every subscription for
// each page it lists.
func TestReconcileKilledAndResumed(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 subscriptions")
	}
	t.Parallel()
	n := 10_000
	if raceEnabled {
		n = 2_500
	}
	s, environ := startCatalog(t, billingtest.EmulatorConfig{})
	dir := t.TempDir()
	// synchronous=NORMAL (sqlstore's advice for WAL mode): 20,000 synced
	// commits would take most of the time.
	dsn := filepath.Join(dir, "billing.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	store := openTestStore(t, dsn)
	want := manySubscriptions(t, s, store, n)
	cursor := filepath.Join(dir, "billing.db.reconcile-cursor") // the default
	const list = "GET " + billingtest.PathSubscriptions
	s.FailNext(list, 2, billingtest.RateLimit())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // more 429s a third of the way
		if s.WaitCalls(ctx, list, 2+n/300) == nil {
			s.FailNext(list, 3, billingtest.RateLimit())
		}
	}()

	// Both runs are the built binary (without the race detector, which
	// would make them take a minute).
	args := []string{"reconcile", "-db", dsn, "-price-plans", standardPlans, "-rate", "1000", "-max-backoff", "20ms", "-json"}
	command := func() *exec.Cmd {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = append(os.Environ(), "STRIPE_API_URL="+environ["STRIPE_API_URL"], "STRIPE_SECRET_KEY="+environ["STRIPE_SECRET_KEY"])
		return cmd
	}
	cmd := command()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var st reconcileState
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no cursor at 60%% within 60 s; stderr:\n%s", &stderr)
		}
		if b, err := os.ReadFile(cursor); err == nil && json.Unmarshal(b, &st) == nil && st.Report.Read >= n*6/10 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first run: %v, want killed; stderr:\n%s", err, &stderr)
	}
	killed, err := loadReconcileState(cursor)
	if err != nil || killed.Report.Read < n*6/10 || killed.Report.Read >= n || killed.Report.Done {
		t.Fatalf("after the kill the cursor file holds %+v (%v), want a run stopped after 60%%", killed.Report, err)
	}
	// A sample of the users (reading all 10,000 takes seconds under the
	// race detector): about the share read is right, not all.
	right, sample := 0, 0
	for i := 0; i < n; i += 10 {
		id := fmt.Sprintf("u_%05d", i)
		sample++
		if planOf(t, store, id) == want[id] {
			right++
		}
	}
	if share, read := float64(right)/float64(sample), float64(killed.Report.Read)/float64(n); share < read-0.05 || share == 1 {
		t.Fatalf("after the kill %d of %d sampled plans are right, want about %.0f%% and not all", right, sample, 100*read)
	}

	cmd = command()
	stderr.Reset()
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("resumed run: %v\n%s\n%s", err, stdout, &stderr)
	}
	if !strings.Contains(stderr.String(), "reconcile: resuming after "+killed.Report.Cursor) {
		t.Errorf("stderr lacks the resume line:\n%s", &stderr)
	}
	var rep ops.ReconcileReport
	if err := json.Unmarshal(stdout, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Done || rep.Read != n || rep.Applied != n || rep.Errors != 0 || rep.RateLimited < 5 || rep.Pages != n/100 {
		t.Errorf("report %+v, want done, %d read and applied in %d pages, at least 5 rate-limited", withoutDrift(rep), n, n/100)
	}
	// The drift lines of the page the kill cut short are lost with it
	// (their changes are in the store, and in its outbox once it has one).
	if len(rep.Drift) > n || len(rep.Drift) < n-100 {
		t.Errorf("%d drift lines, want %d less at most one page", len(rep.Drift), n)
	}
	for id, p := range want {
		if got := planOf(t, store, id); got != p {
			t.Fatalf("%s has %s, want %s", id, got, p)
		}
	}
	if _, err := os.Stat(cursor); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cursor file is still there after a complete run: %v", err)
	}

	// Requests: one list call per page of 100, the cut page twice, the
	// 429s, and no read of a subscription on its own.
	lists, limited := s.CallCount(list), 0
	for _, c := range s.Calls() {
		if c.Status == 429 {
			limited++
		}
	}
	if reads := s.CallCount("GET " + billingtest.PathSubscriptions + "/"); reads != 0 {
		t.Errorf("%d subscriptions read on their own, want 0", reads)
	}
	if ok := lists - limited; ok < n/100 || ok > n/100+1 {
		t.Errorf("%d list calls answered (%d with 429), want %d pages and at most the cut page again", ok, limited, n/100)
	}
	t.Logf("list calls: %d answered + %d rate-limited for %d subscriptions: %.3f per 100 (429s excluded: %.3f)",
		lists-limited, limited, n, float64(lists)*100/float64(n), float64(lists-limited)*100/float64(n))
}

func withoutDrift(r ops.ReconcileReport) ops.ReconcileReport {
	r.Drift = nil
	return r
}

// TestReconcileOutput: without -json the report is a summary line and a
// drift line per changed plan on stdout; off a terminal the progress is a
// plain line every -progress-every pages on stderr; the cursor file sits
// beside the SQLite file while the run is unfinished, a run that stops
// says how to resume, and -restart starts over.
func TestReconcileOutput(t *testing.T) {
	s, environ := startCatalog(t, billingtest.EmulatorConfig{})
	dsn := filepath.Join(t.TempDir(), "billing.db")
	store := openTestStore(t, dsn)
	want := manySubscriptions(t, s, store, 250)
	const list = "GET " + billingtest.PathSubscriptions

	// The third page fails (not a 429): the run stops after two pages.
	s.FailNext(list, 2, billingtest.Fault{})
	s.FailNext(list, 1, billingtest.ResourceMissing("starting_after"))
	args := []string{"reconcile", "-db", dsn, "-price-plans", standardPlans, "-rate", "1000", "-progress-every", "1"}
	code, stdout, stderr := runEnv(t, context.Background(), environ, args...)
	cursor := dsn + ".reconcile-cursor"
	st, err := loadReconcileState(cursor)
	if code != 1 || err != nil || st.Report.Read != 200 {
		t.Fatalf("exit %d, cursor %+v (%v); stdout:\n%s\nstderr:\n%s", code, st.Report, err, stdout, stderr)
	}
	wantErr := "run the same command again to resume after " + st.Report.Cursor + " (the cursor is in " + cursor + ")"
	if !strings.HasPrefix(stdout, "reconcile stopped: read 200 in 2 pages (0 rate-limited), applied 200, stale 0, unknown price 0, errors 0, plans changed 200\n") ||
		!strings.Contains(stderr, wantErr) ||
		!strings.HasPrefix(stderr, "reconcile: read 100 in 1 pages (0 rate-limited), applied 100, stale 0, unknown price 0, errors 0, plans changed 100\n"+
			"reconcile: read 200 in 2 pages") {
		t.Errorf("stopped run: stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}

	// Started again it resumes; the report counts the whole run.
	code, stdout, stderr = runEnv(t, context.Background(), environ, args...)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if code != 0 || lines[0] != "reconcile done: read 250 in 3 pages (0 rate-limited), applied 250, stale 0, unknown price 0, errors 0, plans changed 250" ||
		len(lines) != 251 || !strings.HasPrefix(lines[1], "drift: user=u_") || !strings.Contains(stderr, "reconcile: resuming after "+st.Report.Cursor+", 200 subscriptions read so far") {
		t.Errorf("resumed run: exit %d; stdout:\n%.400s\nstderr:\n%s", code, stdout, stderr)
	}
	for id, p := range want {
		if got := planOf(t, store, id); got != p {
			t.Fatalf("%s has %s, want %s", id, got, p)
		}
	}

	// -restart ignores a cursor file; nothing drifted this time (a read in
	// the second of the last run's read of a subscription is stale).
	if err := saveReconcileState(cursor, st); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runEnv(t, context.Background(), environ, append(args, "-restart")...)
	if code != 0 || !strings.HasPrefix(stdout, "reconcile done: read 250 in 3 pages (0 rate-limited)") || !strings.HasSuffix(stdout, ", plans changed 0\n") ||
		strings.Contains(stderr, "resuming") {
		t.Errorf("-restart: exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// A cursor of another account is not used.
	other := st
	other.Account = "https://api.stripe.com (live mode)"
	if err := saveReconcileState(cursor, other); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runEnv(t, context.Background(), environ, args...)
	if code != 0 || !strings.Contains(stderr, "is for https://api.stripe.com (live mode), not "+environ["STRIPE_API_URL"]+" (test mode); starting from the first subscription") {
		t.Errorf("another account's cursor: exit %d; stderr:\n%s", code, stderr)
	}
}

func TestDefaultCursorFile(t *testing.T) {
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skip(err)
	}
	pg, err := defaultCursorFile("postgres://app:s3cret@db.example.com:5432/app?sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	pgOtherPassword, _ := defaultCursorFile("postgres://app:other@db.example.com:5432/app?sslmode=require")
	for _, tc := range []struct{ dsn, want string }{
		{"billing.db", "billing.db.reconcile-cursor"},
		{"/var/lib/app/billing.db", "/var/lib/app/billing.db.reconcile-cursor"},
		{"file:/var/lib/app/billing.db?_pragma=busy_timeout(5000)", "/var/lib/app/billing.db.reconcile-cursor"},
	} {
		if got, err := defaultCursorFile(tc.dsn); err != nil || got != tc.want {
			t.Errorf("defaultCursorFile(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
	}
	if filepath.Dir(pg) != filepath.Join(cache, "contafy-billing") || !strings.HasPrefix(filepath.Base(pg), "reconcile-") || strings.Contains(pg, "s3cret") {
		t.Errorf("PostgreSQL cursor file %q", pg)
	}
	if pg != pgOtherPassword {
		t.Errorf("the password changes the cursor file: %q, %q", pg, pgOtherPassword)
	}
	if mem, _ := defaultCursorFile(":memory:"); filepath.Dir(mem) != filepath.Join(cache, "contafy-billing") {
		t.Errorf("in-memory SQLite cursor file %q", mem)
	}
}

// TestReconcileInterrupted: a run interrupted (its context canceled, as
// SIGINT does) while it applies a page stops at once, saves the last
// subscription it applied as the cursor, and the resumed run applies the
// rest: every subscription read and applied once, none skipped, no error.
func TestReconcileInterrupted(t *testing.T) {
	s, environ := startCatalog(t, billingtest.EmulatorConfig{})
	dsn := filepath.Join(t.TempDir(), "billing.db") // synced commits: a page takes a while to apply
	store := openTestStore(t, dsn)
	want := manySubscriptions(t, s, store, 250)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, ok, _ := store.Subscription(context.Background(), "sub_00100"); ok { // within the second page (newest first: sub_00149 to sub_00050)
				return
			}
		}
	}()
	args := []string{"reconcile", "-db", dsn, "-price-plans", standardPlans, "-rate", "1000", "-json"}
	code, stdout, stderr := runEnv(t, ctx, environ, args...)
	var stopped ops.ReconcileReport
	if err := json.Unmarshal([]byte(stdout), &stopped); err != nil || code != 1 || stopped.Done || !strings.Contains(stderr, "context canceled") {
		t.Fatalf("interrupted run: exit %d (%v)\n%s\n%s", code, err, stdout, stderr)
	}
	st, err := loadReconcileState(dsn + ".reconcile-cursor")
	if err != nil || st.Report.Cursor != stopped.Cursor || st.Report.Read != stopped.Read || stopped.Errors != 0 {
		t.Fatalf("saved %+v (%v), want the stopped run's cursor and counts %+v, no error", withoutDrift(st.Report), err, withoutDrift(stopped))
	}
	if stopped.Read%100 == 0 {
		t.Logf("the run stopped between pages (%d read): the within-a-page case was not exercised this time", stopped.Read)
	}
	code, stdout, stderr = runEnv(t, context.Background(), environ, args...)
	var rep ops.ReconcileReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 {
		t.Fatalf("resumed run: exit %d (%v)\n%s\n%s", code, err, stdout, stderr)
	}
	if !rep.Done || rep.Read != 250 || rep.Applied != 250 || rep.Errors != 0 || len(rep.Drift) != 250 {
		t.Errorf("resumed report %+v with %d drift lines, want 250 read, applied and drifted once each", withoutDrift(rep), len(rep.Drift))
	}
	for id, p := range want {
		if got := planOf(t, store, id); got != p {
			t.Errorf("%s has %s, want %s", id, got, p)
		}
	}
}
