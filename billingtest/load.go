package billingtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
)

// LoadConfig configures [RunLoad].
type LoadConfig struct {
	// NewStore returns a fresh, empty store under test: its SyncStore and
	// UserStore sides (usually the same value) and a function that adds a
	// user, as for [RunSyncProperty]. Required.
	NewStore func(t testing.TB) (billing.SyncStore, billing.UserStore, func(billing.User))
	// Workers is the number of goroutines sending to each endpoint: the
	// portal and the webhook handler run Workers goroutines each, at once.
	// Default 100.
	Workers int
	// Requests is how many requests each goroutine sends. Default 100.
	Requests int
	// Users is the number of users (one customer and one subscription
	// each) the requests and events are spread over. Default 50.
	Users int
	// Seed makes the histories and the delivery order reproducible.
	// Default: a seed from the clock, logged so that a failure can be
	// replayed.
	Seed uint64
}

// LoadStats are the figures of one [RunLoad] run.
type LoadStats struct {
	// Portal counts the portal's replies by status code.
	Portal map[int]int
	// Webhook counts the webhook's replies: the outcome of a 200
	// ("applied", "duplicate", "stale", ...) or the status code of an error
	// ("400", ...).
	Webhook map[string]int
	// Events is the number of distinct subscription events delivered, each
	// at least once.
	Events int
	// StripeCalls is the number of calls the fake Stripe received.
	StripeCalls int
	// Elapsed is the wall time of the concurrent phase.
	Elapsed time.Duration
}

// RunLoad runs the portal handler and the webhook handler on one store at
// once, each from cfg.Workers goroutines sending cfg.Requests requests, and
// fails t unless every reply is an expected one and the final state is
// right. Run it under -race.
//
// Portal requests go to a fake Stripe, spread over the users: every tenth
// carries an unknown token (401 expected), every 25th otherwise the token
// of a PRO user without a Stripe customer (404); the others are 200, or 403
// while a cancelation makes their user FREE. Each 200 made exactly one
// Stripe call, for its user's customer; no refused request made any.
//
// Webhook deliveries are subscription histories (updates between the BASIC
// and PRO prices, one second apart, a third of them ending in a
// cancelation), each event delivered once or more in a shuffled order,
// with one delivery in 20 signed with a wrong secret (400 expected). Each
// event is processed exactly once (applied or stale, the other deliveries
// duplicate) and every user ends with the plan of the last event of its
// history.
func RunLoad(t testing.TB, cfg LoadConfig) LoadStats {
	t.Helper()
	if cfg.NewStore == nil {
		t.Fatal("billingtest: RunLoad: LoadConfig.NewStore is required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 100
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 100
	}
	if cfg.Users <= 0 {
		cfg.Users = 50
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	t.Logf("billingtest: RunLoad seed %d (set LoadConfig.Seed to replay)", cfg.Seed)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x10ad))

	fake := StartStripe(t)
	syncStore, users, put := cfg.NewStore(t)
	auth := &StaticAuth{}
	const badToken, noCustToken = "tok_load_bad", "tok_load_nocust"
	put(billing.User{ID: "u_load_nocust", Plan: billing.Pro})
	auth.Add(noCustToken, "u_load_nocust")
	customers := map[string]int{} // customer -> user index
	for i := range cfg.Users {
		u := billing.User{ID: loadUser(i), Plan: billing.Basic, StripeCustomerID: loadCustomer(i)}
		put(u)
		fake.AddCustomer(u.StripeCustomerID)
		auth.Add(loadToken(i), u.ID)
		customers[u.StripeCustomerID] = i
	}
	portal := NewPortalService(t, fake, users, func(c *billing.PortalConfig) { c.Auth = auth })
	plans, err := billing.ParsePriceTable(PriceBasic + "=BASIC," + PricePro + "=PRO")
	if err != nil {
		t.Fatal(err)
	}
	hook, err := billing.NewWebhookHandler(billing.WebhookConfig{Secrets: []string{WebhookSecret}, Store: syncStore,
		Rules: billing.PlanRules{Prices: plans}, Subscriptions: fake.SubscriptionClient()})
	if err != nil {
		t.Fatal(err)
	}

	deliveries, events, want := loadHistories(rng, cfg)

	st := LoadStats{Portal: map[int]int{}, Webhook: map[string]int{}, Events: events}
	var mu sync.Mutex
	okByUser := make([]int, cfg.Users)
	var nextPortal, nextHook, failures atomic.Int64
	// fail reports the first 20 unexpected replies, then only counts them.
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	total := int64(cfg.Workers * cfg.Requests)
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.Workers {
		wg.Add(2)
		go func() { // portal
			defer wg.Done()
			for {
				j := nextPortal.Add(1) - 1
				if j >= total {
					return
				}
				i, tok, want := int(j)%cfg.Users, loadToken(int(j)%cfg.Users), 0
				switch {
				case j%10 == 0:
					tok, want = badToken, http.StatusUnauthorized
				case j%25 == 0:
					tok, want = noCustToken, http.StatusNotFound
				}
				r := httptest.NewRequest(http.MethodPost, "/api/subscription/create-portal-session", nil)
				r.AddCookie(Cookie(tok))
				w := httptest.NewRecorder()
				portal.ServeHTTP(w, r)
				ok := w.Code == want || want == 0 && (w.Code == http.StatusOK || w.Code == http.StatusForbidden)
				if !ok {
					fail("portal request %d: status %d (%s), want %d", j, w.Code, bytes.TrimSpace(w.Body.Bytes()), want)
				}
				mu.Lock()
				st.Portal[w.Code]++
				if w.Code == http.StatusOK && want == 0 {
					okByUser[i]++
				}
				mu.Unlock()
			}
		}()
		go func() { // webhook
			defer wg.Done()
			for {
				j := nextHook.Add(1) - 1
				if j >= int64(len(deliveries)) {
					return
				}
				d := deliveries[j]
				secret := WebhookSecret
				if d.forged {
					secret = "whsec_load_wrong"
				}
				w := httptest.NewRecorder()
				hook.ServeHTTP(w, WebhookRequest(d.payload, secret, RequestOptions{}))
				key := fmt.Sprint(w.Code)
				if w.Code == http.StatusOK {
					var rep struct{ Outcome string }
					_ = json.Unmarshal(w.Body.Bytes(), &rep)
					key = rep.Outcome
				}
				if want := map[bool]int{true: http.StatusBadRequest, false: http.StatusOK}[d.forged]; w.Code != want {
					fail("webhook delivery %d: status %d (%s), want %d", j, w.Code, bytes.TrimSpace(w.Body.Bytes()), want)
				}
				mu.Lock()
				st.Webhook[key]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.Elapsed = time.Since(start)
	if n := failures.Load(); n > 20 {
		t.Errorf("%d unexpected replies in all (the first 20 are above)", n)
	}
	st.StripeCalls = len(fake.Calls())

	// Portal: one Stripe call per 200, for the right customer.
	sessions := map[int]int{}
	for _, s := range fake.Sessions() {
		i, ok := customers[s.Customer]
		if !ok {
			t.Errorf("portal session for unknown customer %q", s.Customer)
		}
		sessions[i]++
	}
	for i, n := range okByUser {
		if sessions[i] != n {
			t.Errorf("user %s: %d sessions created in Stripe for %d replies 200", loadUser(i), sessions[i], n)
		}
	}
	if n := fake.CallCount(PathPortalSessions); n != st.Portal[http.StatusOK] {
		t.Errorf("%d portal session calls for %d replies 200", n, st.Portal[http.StatusOK])
	}
	if n := fake.CallCount(PathSubscriptions + "/"); n != 0 {
		t.Errorf("%d subscription reads, want none (no ties, no flows)", n)
	}
	// Webhook: every event processed once.
	forged := 0
	for _, d := range deliveries {
		if d.forged {
			forged++
		}
	}
	valid := len(deliveries) - forged
	if got := st.Webhook["applied"] + st.Webhook["stale"]; got != events {
		t.Errorf("applied+stale = %d, want %d (each event processed once); outcomes %v", got, events, st.Webhook)
	}
	if got := st.Webhook["duplicate"]; got != valid-events {
		t.Errorf("duplicate = %d, want %d; outcomes %v", got, valid-events, st.Webhook)
	}
	if got := st.Webhook["400"]; got != forged {
		t.Errorf("400 = %d, want %d (forged deliveries)", got, forged)
	}
	// Final state.
	for i, p := range want {
		u, found, err := users.User(t.Context(), loadUser(i))
		if err != nil || !found || u.Plan != p {
			t.Errorf("user %s: plan %q (found %t, err %v), want %q", loadUser(i), u.Plan, found, err, p)
		}
	}
	return st
}

func loadUser(i int) string     { return fmt.Sprintf("u_load_%d", i) }
func loadCustomer(i int) string { return fmt.Sprintf("cus_load_%d", i) }
func loadToken(i int) string    { return fmt.Sprintf("tok_load_%d", i) }

type loadDelivery struct {
	payload []byte
	forged  bool
}

// loadHistories returns Workers*Requests shuffled deliveries of per-user
// subscription histories, the number of distinct events, and each user's
// final plan.
func loadHistories(rng *rand.Rand, cfg LoadConfig) ([]loadDelivery, int, []billing.Plan) {
	total := cfg.Workers * cfg.Requests
	forged := total / 20
	// Half of the valid deliveries are distinct events, the rest repeats.
	perUser := max(1, (total-forged)/2/cfg.Users)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var out []loadDelivery
	want := make([]billing.Plan, cfg.Users)
	for i := range cfg.Users {
		canceled := rng.IntN(3) == 0
		for k := range perUser {
			spec := SubscriptionSpec{ID: fmt.Sprintf("sub_load_%d", i), Customer: loadCustomer(i), PriceID: PriceBasic}
			want[i] = billing.Basic
			if rng.IntN(2) == 0 {
				spec.PriceID, want[i] = PricePro, billing.Pro
			}
			typ := "customer.subscription.updated"
			if canceled && k == perUser-1 {
				spec.Status, typ, want[i] = "canceled", "customer.subscription.deleted", billing.Free
			}
			out = append(out, loadDelivery{payload: SubscriptionEvent(typ, spec, base.Add(time.Duration(k)*time.Second))})
		}
	}
	events := len(out)
	for len(out) < total-forged {
		out = append(out, out[rng.IntN(events)])
	}
	for len(out) < total {
		out = append(out, loadDelivery{payload: out[rng.IntN(events)].payload, forged: true})
	}
	rng.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out, events, want
}
