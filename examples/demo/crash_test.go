package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/testenv"
	"github.com/contafy/billing/sqlstore"
	"github.com/google/go-cmp/cmp"
)

var crashSeed = flag.Uint64("crash-seed", 0, "seed of TestDemoCrashRestart's histories and delivery order (default: from the clock, logged)")

// TestDemoCrashRestart is the proof that a demo on a database never
// regresses a plan that Stripe's events determine. On SQLite and on
// PostgreSQL, the demo binary runs with 40 users seeded FREE and webhook
// events of random subscription histories (created, updated, paused,
// resumed and deleted, varied statuses and prices, some in the same second,
// some users linked to their customer only by a checkout.session.completed,
// some linked by it to another customer than the seed's) are delivered from
// 8 goroutines in random order, a fifth of them twice, as Stripe delivers:
// a delivery counts only once answered 2xx. The demo is killed with
// SIGKILL while deliveries are in flight (after 40% are acknowledged) and
// started again with the same flags; every unacknowledged delivery is
// retried until acknowledged. Then every user must have the plan,
// subscription id and customer the histories determine, read from the
// database and through the demo; again after a clean stop and a start;
// again after a second demo has started on the same database; and when a
// demo is started with 4 more users in the -users file, whose customers'
// events came before them, those get the plans the events determine. The
// seed of a run is logged; replay it with -args -crash-seed=N.
func TestDemoCrashRestart(t *testing.T) {
	bin := buildDemo(t)
	for _, tc := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "billing.db") }},
		{"postgres", func(t *testing.T) string { return testenv.Postgres(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runCrashRestart(t, bin, tc.dsn(t))
		})
	}
}

// buildDemo builds the demo binary (without -race: it is the program under
// test, not the test) into t's temp dir.
func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build of the demo: %v\n%s", err, out)
	}
	t.Logf("built the demo in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

const (
	crashUsers   = 40
	crashLate    = 4
	crashWorkers = 8
	crashSecret  = "whsec_demo_crash_test_secret"
)

// crashPlans is the demo's -price-plans, and what the test expects of it.
var crashPlans = map[string]billing.Plan{"price_basic": billing.Basic, "price_pro": billing.Pro}

// crashSub is the final state of one generated subscription.
type crashSub struct {
	id, customer, status, price string
}

func (s crashSub) plan() billing.Plan {
	switch s.status {
	case "active", "trialing", "past_due": // past_due keeps the plan by default
		return crashPlans[s.price]
	}
	return billing.Free
}

// crashWorld is what the test generates: the users of the -users file,
// every event to deliver, and the final state of every subscription.
type crashWorld struct {
	seeds  []demoUser
	events [][]byte
	subs   []crashSub
	want   map[string]billing.User // by user id
	// late users are added to the -users file at the end: their
	// customers' events are delivered with the others, before the users
	// exist.
	late     []demoUser
	lateWant map[string]billing.User
	// sameSecond counts the changes in the second of the previous one.
	sameSecond int
}

// genCrashWorld generates the users and their histories. User i is, by
// i%10: 0-6 seeded with customer cus_cI; 7 seeded without a customer and
// linked to cus_cI by a checkout.session.completed; 8 seeded with
// customer cus_sI (which has a history too) and moved to cus_cI by a
// checkout.session.completed; 9 without any customer. Every cus_c
// customer has one or two subscriptions, and so has the customer cus_lI
// of each late user lI.
func genCrashWorld(r *rand.Rand) crashWorld {
	w := crashWorld{want: map[string]billing.User{}, lateWant: map[string]billing.User{}}
	custSubs := map[string][]crashSub{}
	history := func(customer string) {
		t := time.Unix(1_700_000_000+int64(r.IntN(1_000_000)), 0)
		nsubs := 1 + r.IntN(2)
		for k := range nsubs {
			t = t.Add(time.Duration(1+r.IntN(600)) * time.Second)
			evs, final, same := genCrashSub(r, fmt.Sprintf("sub_%s_%d", customer, k), customer, t, k < nsubs-1 && r.IntN(2) == 0)
			w.sameSecond += same
			w.events = append(w.events, evs...)
			w.subs = append(w.subs, final)
			custSubs[customer] = append(custSubs[customer], final)
		}
	}
	derive := func(want *billing.User) {
		// The highest plan among the customer's subscriptions, and the
		// greatest id among that plan's.
		for _, s := range custSubs[want.StripeCustomerID] {
			if want.SubscriptionID == "" || rank(s.plan()) > rank(want.Plan) || (s.plan() == want.Plan && s.id > want.SubscriptionID) {
				want.Plan, want.SubscriptionID = s.plan(), s.id
			}
		}
	}
	for i := range crashUsers {
		id := fmt.Sprintf("u%02d", i)
		seed := demoUser{ID: id, Plan: "FREE", Token: "tok_" + id}
		final := fmt.Sprintf("cus_c%02d", i)
		switch i % 10 {
		case 7:
			w.events = append(w.events, billingtest.CheckoutCompletedEvent(billingtest.CheckoutSpec{ClientReferenceID: id, Customer: final}, time.Now()))
		case 8:
			seed.StripeCustomerID = fmt.Sprintf("cus_s%02d", i)
			history(seed.StripeCustomerID)
			w.events = append(w.events, billingtest.CheckoutCompletedEvent(billingtest.CheckoutSpec{ClientReferenceID: id, Customer: final}, time.Now()))
		case 9:
			final = ""
		default:
			seed.StripeCustomerID = final
		}
		w.seeds = append(w.seeds, seed)
		want := billing.User{ID: id, Plan: billing.Free, StripeCustomerID: final}
		if final != "" {
			history(final)
			derive(&want)
		}
		w.want[id] = want
	}
	for i := range crashLate {
		id, cus := fmt.Sprintf("l%02d", i), fmt.Sprintf("cus_l%02d", i)
		history(cus)
		w.late = append(w.late, demoUser{ID: id, Plan: "FREE", StripeCustomerID: cus, Token: "tok_" + id})
		want := billing.User{ID: id, Plan: billing.Free, StripeCustomerID: cus}
		derive(&want)
		w.lateWant[id] = want
	}
	return w
}

func rank(p billing.Plan) int {
	return map[billing.Plan]int{billing.Basic: 1, billing.Pro: 2}[p]
}

// genCrashSub generates the events of one subscription from its creation
// at t: 1 to 6 changes after the created event, a quarter of them in the
// same second as the previous one, canceled at the end if cancel. It
// returns the payloads, the final state and how many changes were in the
// second of the previous one.
func genCrashSub(r *rand.Rand, id, customer string, t time.Time, cancel bool) (evs [][]byte, s crashSub, sameSecond int) {
	s = crashSub{id: id, customer: customer, price: "price_basic"}
	if r.IntN(2) == 0 {
		s.price = "price_pro"
	}
	switch n := r.IntN(10); {
	case n < 2:
		s.status = "incomplete"
	case n < 7:
		s.status = "active"
	default:
		s.status = "trialing"
	}
	emit := func(typ string) {
		evs = append(evs, billingtest.SubscriptionEvent(typ, billingtest.SubscriptionSpec{ID: id, Customer: customer, Status: s.status, PriceID: s.price}, t))
	}
	terminal := func() bool { return s.status == "canceled" || s.status == "incomplete_expired" }
	emit("customer.subscription.created")
	for range 1 + r.IntN(6) {
		if terminal() {
			break
		}
		if r.IntN(4) != 0 {
			t = t.Add(time.Duration(1+r.IntN(3600)) * time.Second)
		} else {
			sameSecond++
		}
		typ, n := "customer.subscription.updated", r.IntN(10)
		switch s.status {
		case "incomplete":
			s.status = "active"
			if n < 3 {
				s.status = "incomplete_expired"
			}
		case "active", "trialing":
			switch {
			case n < 4:
				s.status = "active"
				if s.price == "price_basic" {
					s.price = "price_pro"
				} else {
					s.price = "price_basic"
				}
			case n < 6:
				s.status = "past_due"
			case n < 7:
				s.status, typ = "paused", "customer.subscription.paused"
			case n < 8 && s.status == "trialing":
				s.status = "active"
			default:
				s.status, typ = "canceled", "customer.subscription.deleted"
			}
		case "past_due":
			switch {
			case n < 5:
				s.status = "active"
			case n < 8:
				s.status = "unpaid"
			default:
				s.status, typ = "canceled", "customer.subscription.deleted"
			}
		case "unpaid", "paused":
			if n < 6 {
				if s.status == "paused" {
					typ = "customer.subscription.resumed"
				}
				s.status = "active"
			} else {
				s.status, typ = "canceled", "customer.subscription.deleted"
			}
		}
		emit(typ)
	}
	if cancel && !terminal() {
		t = t.Add(time.Duration(1+r.IntN(3600)) * time.Second)
		s.status = "canceled"
		emit("customer.subscription.deleted")
	}
	return evs, s, sameSecond
}

// demoProcess is one run of the demo binary.
type demoProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *syncBuffer
	base   string
	exited chan struct{}
}

// startDemoProcess starts the demo binary with env and args and waits for
// its listening line. The process is killed when t ends, if still running.
func startDemoProcess(t *testing.T, bin string, env, args []string) *demoProcess {
	t.Helper()
	p := &demoProcess{t: t, out: &syncBuffer{lines: make(chan string, 1000)}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.kill()
		}
	})
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-p.out.lines:
			if m := listening.FindStringSubmatch(l); m != nil {
				p.base = m[1]
				return p
			}
		case <-p.exited:
			t.Fatalf("demo exited before listening (%v):\n%s", p.cmd.ProcessState, p.out)
		case <-timeout:
			t.Fatalf("no listening line after 30 s:\n%s", p.out)
		}
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *demoProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop sends SIGTERM and fails t unless the demo shuts down cleanly.
func (p *demoProcess) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if !p.cmd.ProcessState.Success() {
			p.t.Errorf("demo stopped with %v:\n%s", p.cmd.ProcessState, p.out)
		}
	case <-time.After(15 * time.Second):
		p.kill()
		p.t.Errorf("demo did not stop within 15 s of SIGTERM")
	}
}

// deliverer posts webhook deliveries as Stripe does: each attempt signed
// anew, acknowledged only by a 2xx reply.
type deliverer struct {
	client *http.Client
	mu     sync.Mutex
	codes  map[string]int // replies and errors of failed attempts, for the report
}

func newDeliverer(t *testing.T) *deliverer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = crashWorkers
	t.Cleanup(tr.CloseIdleConnections)
	return &deliverer{client: &http.Client{Timeout: 20 * time.Second, Transport: tr}, codes: map[string]int{}}
}

func (d *deliverer) post(base string, payload []byte) bool {
	req, err := http.NewRequest(http.MethodPost, base+"/api/subscription/webhook", bytes.NewReader(payload))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", billingtest.Sign(payload, crashSecret, time.Now()))
	resp, err := d.client.Do(req)
	what := "transport error"
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return true
		}
		what = resp.Status
	}
	d.mu.Lock()
	d.codes[what]++
	d.mu.Unlock()
	return false
}

// deliverUntilKilled delivers ds from crashWorkers goroutines and kills p
// once killAfter of them are acknowledged. It returns the deliveries not
// acknowledged (in flight at the kill, or not tried) and how many were in
// flight when the kill began.
func (d *deliverer) deliverUntilKilled(p *demoProcess, ds [][]byte, killAfter int) (pending [][]byte, inFlight int64) {
	queue := make(chan []byte, len(ds))
	for _, x := range ds {
		queue <- x
	}
	close(queue)
	var (
		mu       sync.Mutex
		acked    atomic.Int64
		flying   atomic.Int64
		killed   atomic.Bool
		killOnce sync.Once
		wg       sync.WaitGroup
	)
	for range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := range queue {
				ok := false
				if !killed.Load() {
					flying.Add(1)
					ok = d.post(p.base, x)
					flying.Add(-1)
				}
				if !ok {
					mu.Lock()
					pending = append(pending, x)
					mu.Unlock()
					continue
				}
				if acked.Add(1) == int64(killAfter) {
					killOnce.Do(func() {
						killed.Store(true)
						inFlight = flying.Load()
						p.kill()
					})
				}
			}
		}()
	}
	wg.Wait()
	return pending, inFlight
}

// deliverAll delivers ds to base from crashWorkers goroutines, retrying
// each failed one after a short pause, until every one is acknowledged or
// the deadline passes.
func (d *deliverer) deliverAll(base string, ds [][]byte, deadline time.Duration) error {
	queue := make(chan []byte, len(ds))
	for _, x := range ds {
		queue <- x
	}
	var remaining atomic.Int64
	remaining.Store(int64(len(ds)))
	done := make(chan struct{})
	if len(ds) == 0 {
		close(done)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	for range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case x := <-queue:
					if d.post(base, x) {
						if remaining.Add(-1) == 0 {
							close(done)
						}
						continue
					}
					time.Sleep(10 * time.Millisecond)
					queue <- x
				}
			}
		}()
	}
	wg.Wait()
	if n := remaining.Load(); n > 0 {
		d.mu.Lock()
		defer d.mu.Unlock()
		return fmt.Errorf("%d of %d deliveries still not acknowledged after %v (failed attempts: %v)", n, len(ds), deadline, d.codes)
	}
	return nil
}

// crashEnv is the demo's environment: the test's, without Stripe settings
// but the webhook secret (kept out of the command line).
func crashEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRIPE_") {
			env = append(env, kv)
		}
	}
	return append(env, "STRIPE_WEBHOOK_SECRET="+crashSecret)
}

func runCrashRestart(t *testing.T, bin, dsn string) {
	start := time.Now()
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -args -crash-seed=%d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 0xdead))
	w := genCrashWorld(r)

	// Stripe's side, for the reads that resolve same-second ties: the
	// final state of every subscription.
	fake := billingtest.StartStripe(t)
	for _, s := range w.subs {
		fake.PutSubscription(billingtest.SubscriptionSpec{ID: s.id, Customer: s.customer, Status: s.status, PriceID: s.price})
	}

	usersFile := writeUsers(t, w.seeds)
	env := crashEnv()
	args := func(users string) []string {
		return []string{"-addr", "127.0.0.1:0", "-db", dsn, "-users", users,
			"-stripe-url", fake.URL(), "-price-plans", "price_basic=BASIC,price_pro=PRO"}
	}

	// Every event once, a fifth of them twice, in random order.
	var deliveries [][]byte
	for _, ev := range w.events {
		deliveries = append(deliveries, ev)
		if r.IntN(5) == 0 {
			deliveries = append(deliveries, ev)
		}
	}
	r.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

	db := openDB(t, dsn)
	d := newDeliverer(t)
	var procs []*demoProcess
	startDemo := func(users string, seeded, kept int) *demoProcess {
		t.Helper()
		p := startDemoProcess(t, bin, env, args(users))
		procs = append(procs, p)
		want := fmt.Sprintf("users: %d seeded, %d already in the store and left as they are", seeded, kept)
		if !strings.Contains(p.out.String(), want) {
			t.Errorf("start %d: no line %q:\n%s", len(procs), want, p.out)
		}
		return p
	}

	first := startDemo(usersFile, crashUsers, 0)
	pending, inFlight := d.deliverUntilKilled(first, deliveries, len(deliveries)*4/10)
	t.Logf("%d events (%d changes in the second of the previous one), %d deliveries: %d acknowledged before the SIGKILL, %d requests in flight when it came, %d to retry",
		len(w.events), w.sameSecond, len(deliveries), len(deliveries)-len(pending), inFlight, len(pending))
	if len(pending) == 0 || len(pending) == len(deliveries) {
		t.Fatalf("the kill came at the wrong time: %d of %d deliveries pending", len(pending), len(deliveries))
	}

	second := startDemo(usersFile, 0, crashUsers)
	if err := d.deliverAll(second.base, pending, 30*time.Second); err != nil {
		t.Fatalf("after the restart: %v\n%s", err, second.out)
	}
	checkCrashPlans(t, "after the crash, the restart and the retries", db, w.want, second)

	second.stop()
	third := startDemo(usersFile, 0, crashUsers)
	checkCrashPlans(t, "after a second restart", db, w.want, third)

	replica := startDemo(usersFile, 0, crashUsers)
	checkCrashPlans(t, "after a second demo started on the same database", db, w.want, third, replica)
	third.stop()
	replica.stop()

	// Users added to the file later, whose customers' events came before
	// them: seeded FREE, they get the plan the stored subscriptions grant.
	for _, u := range w.late {
		if _, found, err := db.User(context.Background(), u.ID); err != nil || found {
			t.Fatalf("late user %s in the database before it is seeded (%v, %v)", u.ID, found, err)
		}
	}
	all := maps.Clone(w.want)
	maps.Copy(all, w.lateWant)
	late := startDemo(writeUsers(t, append(slices.Clone(w.seeds), w.late...)), crashLate, crashUsers)
	checkCrashPlans(t, "after a demo seeded users whose customers have stored subscriptions", db, all, late)
	late.stop()

	for i, p := range procs {
		if strings.Contains(p.out.String(), crashSecret) {
			t.Errorf("start %d: the webhook secret reached the output", i+1)
		}
	}
	t.Logf("%v in all; failed delivery attempts by reply: %v; subscriptions read from Stripe (ties): %d",
		time.Since(start).Round(time.Millisecond), d.codes, fake.CallCount("GET /v1/subscriptions/"))
}

// writeUsers writes users as a -users file and returns its path.
func writeUsers(t *testing.T, users []demoUser) string {
	t.Helper()
	b, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openDB opens dsn as the demo does, with the drivers the demo imports.
func openDB(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	d := sqlstore.DialectOf(dsn)
	driver, source := "pgx", dsn
	if d == sqlstore.SQLite {
		driver, source = "sqlite", "file:"+dsn+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := sqlstore.New(db, d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkCrashPlans compares every user in the database with want (plan,
// subscription id, customer), and every plan the demos show on /account.
func checkCrashPlans(t *testing.T, when string, s *sqlstore.Store, want map[string]billing.User, demos ...*demoProcess) {
	t.Helper()
	ids := slices.Sorted(maps.Keys(want))
	var diffs []string
	plans := 0
	for _, id := range ids {
		got, found, err := s.User(context.Background(), id)
		if err != nil || !found {
			t.Fatalf("%s: User(%s) = %v, %v", when, id, found, err)
		}
		if got.Plan != want[id].Plan {
			plans++
		}
		if diff := cmp.Diff(want[id], got); diff != "" {
			diffs = append(diffs, fmt.Sprintf("%s (-want +got):\n%s", id, diff))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%s: in the database %d of %d plans wrong, %d of %d users differ:\n%s",
			when, plans, len(want), len(diffs), len(want), strings.Join(diffs, "\n"))
	}
	for i, p := range demos {
		var wrong []string
		for _, id := range ids {
			if got := accountPlan(t, p.base, "tok_"+id); got != string(want[id].Plan) {
				wrong = append(wrong, fmt.Sprintf("%s %s (want %s)", id, got, want[id].Plan))
			}
		}
		if len(wrong) > 0 {
			t.Errorf("%s: demo %d shows %d of %d plans wrong: %s", when, i+1, len(wrong), len(want), strings.Join(wrong, ", "))
		}
	}
}

// accountPlan returns the plan GET /account shows the user of token.
func accountPlan(t *testing.T, base, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/account", nil)
	req.Header.Set("Cookie", "access_token="+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	plan, ok := planOf(string(page))
	if !ok {
		return fmt.Sprintf("none (%d %q)", resp.StatusCode, page)
	}
	return plan
}
