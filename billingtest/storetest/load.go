package storetest

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
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/history"
)

// LoadConfig configures [RunLoad]. The zero value is the default run.
type LoadConfig struct {
	// Workers is the number of goroutines sending to each endpoint: the
	// portal and the webhook handler run Workers goroutines each, at once.
	// Default 100.
	Workers int
	// Requests is how many requests each goroutine sends. Default 100.
	Requests int
	// Users is the number of users (one customer and one subscription
	// each, linked from the start) the requests and events are spread
	// over. Default 50.
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

// RunLoad runs the portal handler and the webhook handler at once on one
// store from h.New, each from cfg.Workers goroutines sending cfg.Requests
// requests, and fails t unless every reply is an expected one and the final
// state is right. Run it under -race.
//
// Portal requests go to a fake Stripe, spread over the users: every tenth
// carries an unknown token (401 expected), every 25th otherwise the token
// of a PRO user without a Stripe customer (404); the others are 200, or 403
// while their user's subscription grants no plan (incomplete, unpaid,
// paused, canceled). Each 200 made exactly one Stripe call, for its user's
// customer; no refused request made any.
//
// Webhook deliveries are subscription histories (internal/history, with
// every event of a subscription in a second of its own, so no tie needs a
// read from Stripe), each event delivered once or more in a shuffled
// order, with one delivery in 20 signed with a wrong secret (400
// expected). Each event is processed exactly once (applied or stale, the
// other deliveries duplicate) and every user ends as its history's
// [history.History.Want] says.
func RunLoad(t *testing.T, h Harness, cfg LoadConfig) LoadStats {
	t.Helper()
	if h.New == nil {
		t.Fatal("storetest: RunLoad: Harness.New is required")
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
	t.Logf("storetest: RunLoad seed %d (set LoadConfig.Seed to replay)", cfg.Seed)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x10ad))

	fake := billingtest.StartStripe(t)
	auth := &billingtest.StaticAuth{}
	const badToken, noCustToken = "tok_load_bad", "tok_load_nocust"
	users := []billing.User{{ID: "u_load_nocust", Plan: billing.Pro}}
	auth.Add(noCustToken, "u_load_nocust")
	// Half of the valid deliveries are distinct events, the rest repeats.
	requests := cfg.Workers * cfg.Requests
	perUser := max(2, (requests-requests/20)/2/cfg.Users)
	hists := make([]history.History, cfg.Users)
	customers := map[string]int{} // customer -> user index
	for i := range hists {
		hists[i] = history.Generate(rng, i, history.Config{Prefix: "load", Subs: 1, Steps: perUser - 1, Exact: true})
		u := hists[i].User
		users = append(users, u)
		fake.AddCustomer(u.StripeCustomerID)
		auth.Add(loadToken(i), u.ID)
		customers[u.StripeCustomerID] = i
	}
	store := h.New(t, users)
	portal := billingtest.NewPortalService(t, fake, store, func(c *billing.PortalConfig) { c.Auth = auth })
	hook, err := billing.NewWebhookHandler(billing.WebhookConfig{Secrets: []string{billingtest.WebhookSecret}, Store: store,
		Rules: billing.PlanRules{Prices: billingtest.Prices()}, Subscriptions: fake.SubscriptionClient()})
	if err != nil {
		t.Fatal(err)
	}

	deliveries, events := loadDeliveries(rng, hists, requests)

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
				r.AddCookie(billingtest.Cookie(tok))
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
				secret := billingtest.WebhookSecret
				if d.forged {
					secret = "whsec_load_wrong"
				}
				w := httptest.NewRecorder()
				hook.ServeHTTP(w, billingtest.WebhookRequest(d.payload, secret, billingtest.RequestOptions{}))
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
			t.Errorf("user %s: %d sessions created in Stripe for %d replies 200", hists[i].User.ID, sessions[i], n)
		}
	}
	if n := fake.CallCount(billingtest.PathPortalSessions); n != st.Portal[http.StatusOK] {
		t.Errorf("%d portal session calls for %d replies 200", n, st.Portal[http.StatusOK])
	}
	if n := fake.CallCount(billingtest.PathSubscriptions + "/"); n != 0 {
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
	for _, hs := range hists {
		want := hs.Want()
		u, found, err := store.User(t.Context(), want.ID)
		if err != nil || !found || u != want {
			t.Errorf("user %s: %+v (found %t, err %v), want %+v", want.ID, u, found, err, want)
		}
	}
	return st
}

func loadToken(i int) string { return fmt.Sprintf("tok_load_%d", i) }

type loadDelivery struct {
	payload []byte
	forged  bool
}

// loadDeliveries returns total shuffled deliveries of the histories' events
// (each at least once, one in 20 forged) and the number of distinct events.
func loadDeliveries(rng *rand.Rand, hists []history.History, total int) ([]loadDelivery, int) {
	forged := total / 20
	var out []loadDelivery
	for _, h := range hists {
		for _, e := range h.Events {
			out = append(out, loadDelivery{payload: e.Payload()})
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
	return out, events
}
