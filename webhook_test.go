package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/billingtest/storetest"
)

const (
	secret    = billingtest.WebhookSecret
	oldSecret = "whsec_old_secret_0000"
	user1     = "u1"
	cus1      = "cus_1"
	sub1      = "sub_1"
)

// t0 is the fixed "now" of the handler's clock in these tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testPlans(t testing.TB) billing.PriceTable {
	t.Helper()
	p, err := billing.ParsePriceTable("price_basic=BASIC,price_pro=PRO,lookup_key:pro_yearly=PRO,product:prod_team=PRO,metadata:plan")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lastRead returns the parameters of g's last read, nil before the first.
func lastRead(g *billingtest.SubscriptionGetter) *stripe.SubscriptionParams {
	reads := g.Reads()
	if len(reads) == 0 {
		return nil
	}
	return reads[len(reads)-1].Params
}

// flakyStore fails ApplySubscription and LinkCustomer while failing is set.
type flakyStore struct {
	*billing.MemoryStore
	mu      sync.Mutex
	failing bool
}

func (f *flakyStore) fail(on bool) { f.mu.Lock(); f.failing = on; f.mu.Unlock() }

func (f *flakyStore) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return errors.New("db: connection refused (password=hunter2)")
	}
	return nil
}

func (f *flakyStore) ApplySubscription(ctx context.Context, c billing.SubscriptionChange, retain time.Duration) (billing.Outcome, error) {
	if err := f.err(); err != nil {
		return "", err
	}
	return f.MemoryStore.ApplySubscription(ctx, c, retain)
}

func (f *flakyStore) LinkCustomer(ctx context.Context, userID, customerID string) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.MemoryStore.LinkCustomer(ctx, userID, customerID)
}

type whEnv struct {
	t     *testing.T
	store *flakyStore
	h     *billing.WebhookHandler
	logs  *billingtest.LogBuffer
	obs   *[]billing.Observation
	now   time.Time
	slept time.Duration // total wait before reads, on the fake clock
}

// newEnv returns a handler on a fresh store holding user1 (FREE, linked to
// cus1) with the handler's clock fixed at t0.
func newWHEnv(t *testing.T, mut ...func(*billing.WebhookConfig)) *whEnv {
	t.Helper()
	e := &whEnv{t: t, logs: &billingtest.LogBuffer{}, now: t0, obs: &[]billing.Observation{}}
	e.store = &flakyStore{MemoryStore: billing.NewMemoryStore(billing.User{ID: user1, Plan: billing.Free, StripeCustomerID: cus1})}
	var mu sync.Mutex
	cfg := billing.WebhookConfig{
		Secrets: []string{secret},
		Store:   e.store,
		Rules:   billing.PlanRules{Prices: testPlans(t)},
		Logger:  slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observer: billing.ObserverFunc(func(_ context.Context, o billing.Observation) {
			mu.Lock()
			*e.obs = append(*e.obs, o)
			mu.Unlock()
		}),
	}
	for _, m := range mut {
		m(&cfg)
	}
	h, err := billing.NewWebhookHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	billing.SetWebhookClock(h, func() time.Time { return e.now })
	billing.SetWebhookSleep(h, func(ctx context.Context, d time.Duration) error {
		e.now = e.now.Add(d)
		e.slept += d
		return ctx.Err()
	})
	e.h = h
	t.Cleanup(func() {
		for _, bad := range []string{secret, oldSecret, "hunter2", "No such subscription"} {
			if strings.Contains(e.logs.String(), bad) {
				t.Errorf("log holds %q:\n%s", bad, e.logs)
			}
		}
	})
	return e
}

type whReply struct {
	Received bool   `json:"received,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	Error    string `json:"error,omitempty"`
	Message  string `json:"message,omitempty"`
}

// send delivers payload signed with secret at the env's clock (unless opts
// says otherwise) and returns the status and decoded reply.
func (e *whEnv) send(payload []byte, opts billingtest.RequestOptions) (int, whReply) {
	e.t.Helper()
	if opts.Time.IsZero() {
		opts.Time = e.now
	}
	return e.sendReq(billingtest.WebhookRequest(payload, secret, opts))
}

func (e *whEnv) sendReq(r *http.Request) (int, whReply) {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("Content-Type = %q, want application/json", ct)
	}
	body := w.Body.String()
	for _, bad := range []string{secret, oldSecret, "hunter2", "No such"} {
		if strings.Contains(body, bad) {
			e.t.Errorf("reply holds %q: %s", bad, body)
		}
	}
	var rep whReply
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		e.t.Fatalf("reply %q is not the expected JSON: %v", body, err)
	}
	return w.Code, rep
}

// expect sends payload and checks the status and outcome (or error word).
func (e *whEnv) expect(payload []byte, wantStatus int, wantOutcome string) {
	e.t.Helper()
	code, rep := e.send(payload, billingtest.RequestOptions{})
	got := rep.Outcome
	if code != http.StatusOK {
		got = rep.Error
	}
	if code != wantStatus || got != wantOutcome {
		e.t.Fatalf("reply = %d %+v, want %d %q\nlogs:\n%s", code, rep, wantStatus, wantOutcome, e.logs)
	}
}

func (e *whEnv) plan(userID string) billing.Plan {
	e.t.Helper()
	u, ok, err := e.store.User(context.Background(), userID)
	if err != nil || !ok {
		e.t.Fatalf("User(%q) = %v, %v", userID, ok, err)
	}
	return u.Plan
}

func (e *whEnv) wantPlan(userID string, want billing.Plan) {
	e.t.Helper()
	if got := e.plan(userID); got != want {
		e.t.Fatalf("plan of %s = %s, want %s\nlogs:\n%s", userID, got, want, e.logs)
	}
}

func (e *whEnv) wantStored(id, status string, plan billing.Plan) {
	e.t.Helper()
	s, ok := storedSub(e.store.MemoryStore, id)
	if !ok {
		e.t.Fatalf("subscription %s not stored", id)
	}
	if s.Status != status || s.Plan != plan {
		e.t.Fatalf("stored %s = %s/%s, want %s/%s", id, s.Status, s.Plan, status, plan)
	}
}

func subEvent(typ, status, price string, created time.Time) []byte {
	return billingtest.SubscriptionEvent(typ, billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, Status: status, PriceID: price}, created)
}

func TestNewWebhookHandlerConfig(t *testing.T) {
	plans := testPlans(t)
	store := billing.NewMemoryStore()
	tests := []struct {
		name string
		cfg  billing.WebhookConfig
		want string // substring of the error; empty: no error
	}{
		{"ok", billing.WebhookConfig{Secrets: []string{secret}, Store: store, Rules: billing.PlanRules{Prices: plans}}, ""},
		{"no secrets", billing.WebhookConfig{Store: store, Rules: billing.PlanRules{Prices: plans}}, "Secrets is required"},
		{"empty secret", billing.WebhookConfig{Secrets: []string{secret, " "}, Store: store, Rules: billing.PlanRules{Prices: plans}}, "Secrets[1] is empty"},
		{"no store", billing.WebhookConfig{Secrets: []string{secret}, Rules: billing.PlanRules{Prices: plans}}, "Store is required"},
		{"no plans", billing.WebhookConfig{Secrets: []string{secret}, Store: store}, "price table is empty"},
		{"bad plan", billing.WebhookConfig{Secrets: []string{secret}, Store: store, Rules: billing.PlanRules{Prices: billing.PriceTable{Prices: map[string]billing.Plan{"p": "GOLD"}}}}, `maps "p" to "GOLD"`},
		{"short retain", billing.WebhookConfig{Secrets: []string{secret}, Store: store, Rules: billing.PlanRules{Prices: plans}, Retain: time.Hour}, "shorter than Stripe's three days"},
		{"negative tolerance", billing.WebhookConfig{Secrets: []string{secret}, Store: store, Rules: billing.PlanRules{Prices: plans}, Tolerance: -time.Second}, "Tolerance must not be negative"},
		{"bad mode", billing.WebhookConfig{Secrets: []string{secret}, Store: store, Rules: billing.PlanRules{Prices: plans}, Mode: 7}, "Mode 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := billing.NewWebhookHandler(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.want == "" && h == nil:
				t.Fatal("nil handler")
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "billing: ")):
				t.Fatalf("err = %v, want billing: ...%q...", err, tt.want)
			}
		})
	}
}

func TestWebhookSignature(t *testing.T) {
	payload := subEvent("customer.subscription.created", "active", "price_pro", t0.Add(-time.Minute))
	signed := func(secrets ...string) string {
		var parts []string
		parts = append(parts, fmt.Sprintf("t=%d", t0.Unix()))
		for _, s := range secrets {
			parts = append(parts, fmt.Sprintf("v1=%x", webhook.ComputeSignature(t0, payload, s)))
		}
		return strings.Join(parts, ",")
	}
	tests := []struct {
		name    string
		secrets []string // handler's; default {secret}
		req     func() *http.Request
		want    int
		reason  string // the log's reason for a 400
	}{
		{name: "valid", req: func() *http.Request { return req(payload, billingtest.Valid, t0) }, want: 200},
		{name: "missing header", req: func() *http.Request { return req(payload, billingtest.Unsigned, t0) }, want: 400, reason: "no_signature"},
		{name: "bad hex", req: func() *http.Request { return req(payload, billingtest.MalformedSignature, t0) }, want: 400, reason: "bad_signature"},
		{name: "wrong secret", req: func() *http.Request { return req(payload, billingtest.BadSignature, t0) }, want: 400, reason: "bad_signature"},
		{name: "garbled header", req: func() *http.Request { return withHeader(payload, "t=1=2,v1=00") }, want: 400, reason: "bad_signature_header"},
		{name: "no timestamp", req: func() *http.Request {
			return withHeader(payload, fmt.Sprintf("v1=%x", webhook.ComputeSignature(time.Time{}, payload, secret)))
		}, want: 400, reason: "bad_timestamp"},
		{name: "body changed after signing", req: func() *http.Request {
			r := req(payload, billingtest.Valid, t0)
			return withHeader(append(bytes.Clone(payload[:len(payload)-1]), ' ', '}'), r.Header.Get("Stripe-Signature"))
		}, want: 400, reason: "bad_signature"},
		{name: "rolled secret: new one", secrets: []string{oldSecret, secret}, req: func() *http.Request { return withHeader(payload, signed(secret)) }, want: 200},
		{name: "rolled secret: old one", secrets: []string{secret, oldSecret}, req: func() *http.Request { return withHeader(payload, signed(oldSecret)) }, want: 200},
		{name: "rolled secret: header with both signatures", secrets: []string{secret}, req: func() *http.Request { return withHeader(payload, signed("whsec_other", secret)) }, want: 200},
		{name: "old secret removed", secrets: []string{secret}, req: func() *http.Request { return withHeader(payload, signed(oldSecret)) }, want: 400, reason: "bad_signature"},
		{name: "300s old: accepted", req: func() *http.Request { return req(payload, billingtest.Valid, t0.Add(-300*time.Second)) }, want: 200},
		{name: "301s old: refused", req: func() *http.Request { return req(payload, billingtest.Valid, t0.Add(-301*time.Second)) }, want: 400, reason: "timestamp_too_old"},
		{name: "300s ahead: accepted", req: func() *http.Request { return req(payload, billingtest.Valid, t0.Add(300*time.Second)) }, want: 200},
		{name: "301s ahead: refused", req: func() *http.Request { return req(payload, billingtest.Valid, t0.Add(301*time.Second)) }, want: 400, reason: "timestamp_in_future"},
		{name: "stale variant", req: func() *http.Request { return req(payload, billingtest.Stale, t0) }, want: 400, reason: "timestamp_too_old"},
		{name: "future variant", req: func() *http.Request { return req(payload, billingtest.Future, t0) }, want: 400, reason: "timestamp_in_future"},
		{name: "a year ahead", req: func() *http.Request { return req(payload, billingtest.Valid, t0.AddDate(1, 0, 0)) }, want: 400, reason: "timestamp_in_future"},
		{name: "other API version", req: func() *http.Request { return req(payload, billingtest.OtherAPIVersionSignature, t0) }, want: 200},
		{name: "newer API version", req: func() *http.Request {
			return billingtest.WebhookRequest(payload, secret, billingtest.RequestOptions{Variant: billingtest.OtherAPIVersionSignature, APIVersion: "2025-03-31.basil", Time: t0})
		}, want: 200},
		{name: "pre-2017 API version: request is a string", req: func() *http.Request {
			old := bytes.Replace(payload, []byte(`"request":{"id":null,"idempotency_key":null}`), []byte(`"request":"req_old"`), 1)
			if bytes.Equal(old, payload) {
				panic("payload has no request object")
			}
			return billingtest.WebhookRequest(old, secret, billingtest.RequestOptions{Variant: billingtest.OtherAPIVersionSignature, APIVersion: "2015-10-16", Time: t0})
		}, want: 200},
		{name: "not JSON", req: func() *http.Request { return signedReq([]byte("not json"), t0) }, want: 400, reason: "bad_event_json"},
		{name: "event without id", req: func() *http.Request {
			return signedReq([]byte(`{"object":"event","type":"customer.subscription.updated","data":{"object":{}}}`), t0)
		}, want: 400, reason: "bad_event_json"},
		{name: "subscription without customer", req: func() *http.Request {
			return signedReq(billingtest.Event{Type: "customer.subscription.updated", Object: map[string]any{"id": sub1, "object": "subscription", "status": "active"}}.JSON(), t0)
		}, want: 400, reason: "bad_subscription_object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWHEnv(t, func(c *billing.WebhookConfig) {
				if tt.secrets != nil {
					c.Secrets = tt.secrets
				}
			})
			code, rep := e.sendReq(tt.req())
			if code != tt.want {
				t.Fatalf("status = %d (%+v), want %d\nlogs:\n%s", code, rep, tt.want, e.logs)
			}
			_, stored := storedSub(e.store.MemoryStore, sub1)
			if tt.want == 200 {
				if !stored || rep.Outcome != "applied" {
					t.Fatalf("reply %+v, stored %v: want applied", rep, stored)
				}
				e.wantPlan(user1, billing.Pro)
				return
			}
			if stored {
				t.Fatal("a refused event was written")
			}
			e.wantPlan(user1, billing.Free)
			if rep.Error != "Bad Request" || rep.Message == "" {
				t.Fatalf("reply = %+v, want a Bad Request error", rep)
			}
			if !strings.Contains(e.logs.String(), `"reason":"`+tt.reason+`"`) {
				t.Fatalf("log lacks reason %q:\n%s", tt.reason, e.logs)
			}
		})
	}
}

func req(payload []byte, v billingtest.Variant, at time.Time) *http.Request {
	return billingtest.WebhookRequest(payload, secret, billingtest.RequestOptions{Variant: v, Time: at})
}

func signedReq(payload []byte, at time.Time) *http.Request {
	return req(payload, billingtest.Valid, at)
}

func withHeader(payload []byte, header string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, billingtest.WebhookPath, bytes.NewReader(payload))
	r.Header.Set("Stripe-Signature", header)
	return r
}

func TestWebhookLivemode(t *testing.T) {
	live := billingtest.SubscriptionEvent("customer.subscription.created", billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, PriceID: "price_pro", Livemode: true}, t0)
	test := subEvent("customer.subscription.created", "active", "price_pro", t0)
	tests := []struct {
		mode    billing.EventMode
		payload []byte
		want    int
	}{
		{billing.TestEvents, test, 200},
		{billing.TestEvents, live, 400},
		{billing.LiveEvents, live, 200},
		{billing.LiveEvents, test, 400},
		{billing.AllEvents, live, 200},
		{billing.AllEvents, test, 200},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s handler, livemode %t", tt.mode, bytes.Contains(tt.payload, []byte(`"livemode":true`)))
		t.Run(name, func(t *testing.T) {
			e := newWHEnv(t, func(c *billing.WebhookConfig) { c.Mode = tt.mode })
			code, rep := e.send(tt.payload, billingtest.RequestOptions{})
			if code != tt.want {
				t.Fatalf("status = %d %+v, want %d", code, rep, tt.want)
			}
			if _, stored := storedSub(e.store.MemoryStore, sub1); stored != (tt.want == 200) {
				t.Fatalf("stored = %v after a %d", stored, code)
			}
			if tt.want == 400 && !strings.Contains(e.logs.String(), `"level":"ERROR"`) {
				t.Fatalf("a mode mismatch is not logged as an error:\n%s", e.logs)
			}
		})
	}
}

func TestWebhookHTTPErrors(t *testing.T) {
	t.Run("GET", func(t *testing.T) {
		e := newWHEnv(t)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != 405 || w.Header().Get("Allow") != "POST" {
			t.Fatalf("got %d Allow=%q, want 405 Allow=POST", w.Code, w.Header().Get("Allow"))
		}
	})
	t.Run("too large", func(t *testing.T) {
		e := newWHEnv(t, func(c *billing.WebhookConfig) { c.MaxBodyBytes = 1024 })
		big := billingtest.Event{Type: "invoice.created", Object: map[string]string{"pad": strings.Repeat("x", 2000)}}.JSON()
		code, rep := e.send(big, billingtest.RequestOptions{})
		if code != 413 || rep.Error != "Request Entity Too Large" {
			t.Fatalf("got %d %+v, want 413", code, rep)
		}
	})
	t.Run("default cap takes a large real event", func(t *testing.T) {
		e := newWHEnv(t)
		meta := map[string]string{}
		for i := range 50 {
			meta[fmt.Sprintf("key%02d", i)] = strings.Repeat("v", 500)
		}
		obj := billingtest.SubscriptionObject(billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, PriceID: "price_pro"}, t0)
		obj["metadata"] = meta
		code, rep := e.send(billingtest.Event{Type: "customer.subscription.created", Created: t0, Object: obj}.JSON(), billingtest.RequestOptions{})
		if code != 200 || rep.Outcome != "applied" {
			t.Fatalf("got %d %+v, want 200 applied", code, rep)
		}
	})
}

// TestWebhookEventTypes walks one subscription through every handled event
// type, checking the reply, the stored status and the user's plan.
func TestWebhookEventTypes(t *testing.T) {
	steps := []struct {
		typ, status, price string
		outcome            string
		plan               billing.Plan
	}{
		{"customer.subscription.created", "incomplete", "price_pro", "applied", billing.Free},
		{"customer.subscription.updated", "active", "price_pro", "applied", billing.Pro},
		{"customer.subscription.trial_will_end", "active", "price_basic", "ignored", billing.Pro},
		{"customer.subscription.updated", "active", "price_basic", "applied", billing.Basic},
		{"customer.subscription.pending_update_applied", "active", "price_pro", "applied", billing.Pro},
		{"customer.subscription.updated", "past_due", "price_pro", "applied", billing.Pro},
		{"customer.subscription.updated", "unpaid", "price_pro", "applied", billing.Free},
		{"customer.subscription.resumed", "active", "price_pro", "applied", billing.Pro},
		{"customer.subscription.paused", "paused", "price_pro", "applied", billing.Free},
		{"customer.subscription.resumed", "trialing", "price_basic", "applied", billing.Basic},
		{"customer.subscription.pending_update_expired", "active", "price_basic", "applied", billing.Basic},
		{"invoice.paid", "active", "price_pro", "ignored", billing.Basic},
		{"customer.subscription.deleted", "canceled", "price_basic", "applied", billing.Free},
	}
	e := newWHEnv(t)
	status := ""
	for i, s := range steps {
		t.Run(fmt.Sprintf("%02d %s %s", i, s.typ, s.status), func(t *testing.T) {
			e.t = t
			e.expect(subEvent(s.typ, s.status, s.price, t0.Add(time.Duration(i)*time.Minute)), 200, s.outcome)
			e.wantPlan(user1, s.plan)
			if s.outcome == "applied" {
				status = s.status
			}
			e.wantStored(sub1, status, s.plan)
		})
	}
}

func TestWebhookPastDue(t *testing.T) {
	for _, revoke := range []bool{false, true} {
		t.Run(fmt.Sprintf("revoke=%v", revoke), func(t *testing.T) {
			e := newWHEnv(t, func(c *billing.WebhookConfig) { c.Rules.PastDueRevokesAccess = revoke })
			e.expect(subEvent("customer.subscription.created", "active", "price_pro", t0), 200, "applied")
			e.expect(subEvent("customer.subscription.updated", "past_due", "price_pro", t0.Add(time.Second)), 200, "applied")
			want := billing.Pro
			if revoke {
				want = billing.Free
			}
			e.wantPlan(user1, want)
		})
	}
}

func TestWebhookPriceTable(t *testing.T) {
	tests := []struct {
		name string
		spec billingtest.SubscriptionSpec
		get  bool // handler has a getter that knows the product metadata
		want billing.Plan
		out  string
	}{
		{"price id", billingtest.SubscriptionSpec{PriceID: "price_basic"}, false, billing.Basic, "applied"},
		{"lookup key", billingtest.SubscriptionSpec{PriceID: "price_x", LookupKey: "pro_yearly"}, false, billing.Pro, "applied"},
		{"product id", billingtest.SubscriptionSpec{PriceID: "price_y", ProductID: "prod_team"}, false, billing.Pro, "applied"},
		{"expanded product metadata", billingtest.SubscriptionSpec{PriceID: "price_z", ProductMetadata: map[string]string{"plan": "basic"}}, false, billing.Basic, "applied"},
		{"product metadata read from Stripe", billingtest.SubscriptionSpec{PriceID: "price_meta"}, true, billing.Pro, "applied"},
		{"unknown price", billingtest.SubscriptionSpec{PriceID: "price_unknown"}, false, billing.Basic, "unknown_price"},
		{"unknown price, metadata not a plan", billingtest.SubscriptionSpec{PriceID: "price_z", ProductMetadata: map[string]string{"plan": "gold"}}, false, billing.Basic, "unknown_price"},
		{"unknown price but canceled", billingtest.SubscriptionSpec{PriceID: "price_unknown", Status: "canceled"}, false, billing.Free, "applied"},
		{"unknown price but canceled: no read needed", billingtest.SubscriptionSpec{PriceID: "price_unknown", Status: "canceled"}, true, billing.Free, "applied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &billingtest.SubscriptionGetter{}
			e := newWHEnv(t, func(c *billing.WebhookConfig) {
				if tt.get {
					c.Subscriptions = g
				}
			})
			g.Put(billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, PriceID: "price_meta", ProductID: "prod_meta", ProductMetadata: map[string]string{"plan": "PRO"}})
			// The user starts on BASIC from an earlier event.
			e.expect(subEvent("customer.subscription.created", "active", "price_basic", t0.Add(-time.Hour)), 200, "applied")
			tt.spec.ID, tt.spec.Customer = sub1, cus1
			e.expect(billingtest.SubscriptionEvent("customer.subscription.updated", tt.spec, t0), 200, tt.out)
			e.wantPlan(user1, tt.want)
			if tt.out == "unknown_price" {
				e.wantStored(sub1, "active", billing.Basic)
				if !strings.Contains(e.logs.String(), "price_ids="+tt.spec.PriceID) {
					t.Fatalf("the unknown price is not logged:\n%s", e.logs)
				}
			}
			if tt.get && tt.spec.Status == "canceled" {
				if g.Calls() != 0 {
					t.Fatalf("getter calls = %d for a canceled subscription, want 0", g.Calls())
				}
			} else if tt.get {
				if g.Calls() != 1 || lastRead(g) == nil || len(lastRead(g).Expand) != 1 || *lastRead(g).Expand[0] != "items.data.price.product" {
					t.Fatalf("getter calls = %d, params %+v; want one read expanding items.data.price.product", g.Calls(), lastRead(g))
				}
			}
		})
	}
}

func TestWebhookOrdering(t *testing.T) {
	t.Run("duplicate applied once", func(t *testing.T) {
		e := newWHEnv(t)
		ev := subEvent("customer.subscription.created", "active", "price_pro", t0)
		e.expect(ev, 200, "applied")
		// A newer event, then the duplicate of the first: the duplicate
		// must not bring PRO back.
		e.expect(subEvent("customer.subscription.updated", "active", "price_basic", t0.Add(time.Second)), 200, "applied")
		e.expect(ev, 200, "duplicate")
		e.wantPlan(user1, billing.Basic)
	})
	t.Run("older event is stale", func(t *testing.T) {
		e := newWHEnv(t)
		e.expect(subEvent("customer.subscription.updated", "active", "price_basic", t0), 200, "applied")
		e.expect(subEvent("customer.subscription.created", "active", "price_pro", t0.Add(-time.Second)), 200, "stale")
		e.wantPlan(user1, billing.Basic)
	})
	t.Run("canceled is never revived", func(t *testing.T) {
		e := newWHEnv(t)
		e.expect(subEvent("customer.subscription.deleted", "canceled", "price_pro", t0), 200, "applied")
		e.expect(subEvent("customer.subscription.updated", "active", "price_pro", t0.Add(time.Hour)), 200, "stale")
		e.wantPlan(user1, billing.Free)
		e.wantStored(sub1, "canceled", billing.Free)
	})
	t.Run("cancel beats an update of the same second, in both orders", func(t *testing.T) {
		for _, cancelFirst := range []bool{false, true} {
			e := newWHEnv(t)
			upd := subEvent("customer.subscription.updated", "active", "price_pro", t0)
			del := subEvent("customer.subscription.deleted", "canceled", "price_pro", t0)
			if cancelFirst {
				e.expect(del, 200, "applied")
				e.expect(upd, 200, "stale")
			} else {
				e.expect(upd, 200, "applied")
				e.expect(del, 200, "applied")
			}
			e.wantPlan(user1, billing.Free)
		}
	})
	t.Run("incomplete then active in one second, in both orders, without a getter", func(t *testing.T) {
		for _, activeFirst := range []bool{false, true} {
			e := newWHEnv(t)
			inc := subEvent("customer.subscription.created", "incomplete", "price_pro", t0)
			act := subEvent("customer.subscription.updated", "active", "price_pro", t0)
			if activeFirst {
				e.expect(act, 200, "applied")
				// The store answers Tie; without a getter the stored
				// (higher-ranked, hence later) state is kept.
				e.expect(inc, 200, "tie_kept")
			} else {
				e.expect(inc, 200, "applied")
				e.expect(act, 200, "applied")
			}
			e.wantPlan(user1, billing.Pro)
		}
	})
}

// TestWebhookTie proves how two events of one subscription in the same
// second resolve.
func TestWebhookTie(t *testing.T) {
	// Stripe's truth: PRO, then BASIC, both at t0. They arrive reversed.
	pro := subEvent("customer.subscription.updated", "active", "price_pro", t0)
	basic := subEvent("customer.subscription.updated", "active", "price_basic", t0)

	t.Run("resolved by reading Stripe", func(t *testing.T) {
		g := &billingtest.SubscriptionGetter{}
		g.Put(billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, Status: "active", PriceID: "price_basic"})
		e := newWHEnv(t, func(c *billing.WebhookConfig) { c.Subscriptions = g })
		e.expect(basic, 200, "applied")
		e.now = t0.Add(400 * time.Millisecond)
		e.expect(pro, 200, "applied") // tie, read, Stripe's state applied
		e.wantPlan(user1, billing.Basic)
		if g.Calls() != 1 {
			t.Fatalf("getter calls = %d, want 1", g.Calls())
		}
		// The event is of the current second: the read waited for the next
		// one, so that it reflects every event of t0's second.
		if e.slept != 600*time.Millisecond {
			t.Fatalf("waited %v before the read, want 600ms", e.slept)
		}
		if lastRead(g).Context == nil {
			t.Fatal("the read does not carry the request's context")
		}
		// The read state keeps the event's id: a redelivery is a duplicate.
		e.expect(pro, 200, "duplicate")
		// A later second still wins over the read state.
		e.expect(subEvent("customer.subscription.updated", "active", "price_pro", t0.Add(time.Second)), 200, "applied")
		e.wantPlan(user1, billing.Pro)
		// An event of the tie's second, from before the read, is now stale.
		e.expect(subEvent("customer.subscription.updated", "trialing", "price_basic", t0), 200, "stale")
		e.wantPlan(user1, billing.Pro)
	})
	t.Run("an old event's tie reads at once", func(t *testing.T) {
		g := &billingtest.SubscriptionGetter{}
		g.Put(billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, Status: "active", PriceID: "price_basic"})
		e := newWHEnv(t, func(c *billing.WebhookConfig) { c.Subscriptions = g })
		e.now = t0.Add(time.Minute) // a retry, a minute later
		e.expect(basic, 200, "applied")
		e.expect(pro, 200, "applied")
		if e.slept != 0 || g.Calls() != 1 {
			t.Fatalf("waited %v, %d reads; want no wait, 1 read", e.slept, g.Calls())
		}
	})
	t.Run("a later event of the tie's second delivered before the read loses to it", func(t *testing.T) {
		// The read comes after the second is over, so it is newer than
		// every event of that second: here Stripe ended on PRO.
		g := &billingtest.SubscriptionGetter{}
		g.Put(billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, Status: "active", PriceID: "price_pro"})
		e := newWHEnv(t, func(c *billing.WebhookConfig) { c.Subscriptions = g })
		e.expect(pro, 200, "applied")
		e.expect(basic, 200, "applied") // tie: read PRO
		e.wantPlan(user1, billing.Pro)
		// Another event of that second ties again; Stripe still says PRO.
		e.now = t0.Add(2 * time.Second)
		e.expect(subEvent("customer.subscription.updated", "past_due", "price_basic", t0), 200, "applied")
		e.wantPlan(user1, billing.Pro)
		e.wantStored(sub1, "active", billing.Pro)
	})
	t.Run("without a getter the stored state is kept", func(t *testing.T) {
		e := newWHEnv(t)
		e.expect(basic, 200, "applied")
		e.expect(pro, 200, "tie_kept")
		e.wantPlan(user1, billing.Basic)
		if !strings.Contains(e.logs.String(), `"level":"WARN"`) || !strings.Contains(e.logs.String(), "WebhookConfig.Subscriptions") {
			t.Fatalf("no warning naming the fix:\n%s", e.logs)
		}
	})
	t.Run("Stripe failure during the read is 500 and the event is retried", func(t *testing.T) {
		var down atomic.Bool
		down.Store(true)
		g := &billingtest.SubscriptionGetter{Fail: func(string) error {
			if down.Load() {
				return &stripe.Error{Type: stripe.ErrorTypeAPI, HTTPStatusCode: 503, Msg: "No such luck: sk_test_123", RequestID: "req_503"}
			}
			return nil
		}}
		g.Put(billingtest.SubscriptionSpec{ID: sub1, Customer: cus1, Status: "active", PriceID: "price_basic"})
		e := newWHEnv(t, func(c *billing.WebhookConfig) { c.Subscriptions = g })
		e.expect(basic, 200, "applied")
		e.expect(pro, 500, "Internal Server Error")
		if strings.Contains(e.logs.String(), "sk_test_123") || !strings.Contains(e.logs.String(), "req_503") {
			t.Fatalf("log must name the request id and not Stripe's text:\n%s", e.logs)
		}
		down.Store(false)
		e.expect(pro, 200, "applied") // not remembered: retried for real
		e.wantPlan(user1, billing.Basic)
	})
	t.Run("subscription missing in Stripe is acknowledged", func(t *testing.T) {
		g := &billingtest.SubscriptionGetter{}
		e := newWHEnv(t, func(c *billing.WebhookConfig) { c.Subscriptions = g })
		e.expect(basic, 200, "applied")
		e.expect(pro, 200, "ignored")
		e.wantPlan(user1, billing.Basic)
	})
	t.Run("read of another customer's subscription is refused", func(t *testing.T) {
		g := &billingtest.SubscriptionGetter{}
		g.Put(billingtest.SubscriptionSpec{ID: sub1, Customer: "cus_other", Status: "active", PriceID: "price_pro"})
		e := newWHEnv(t, func(c *billing.WebhookConfig) { c.Subscriptions = g })
		e.expect(basic, 200, "applied")
		e.expect(pro, 500, "Internal Server Error")
		e.wantPlan(user1, billing.Basic)
	})
}

func TestWebhookStoreFailure(t *testing.T) {
	e := newWHEnv(t)
	ev := subEvent("customer.subscription.created", "active", "price_pro", t0)
	e.store.fail(true)
	e.expect(ev, 500, "Internal Server Error")
	e.wantPlan(user1, billing.Free)
	if !strings.Contains(e.logs.String(), `"cause":"apply_subscription failed"`) {
		t.Fatalf("log lacks the failed operation:\n%s", e.logs)
	}
	e.store.fail(false)
	e.expect(ev, 200, "applied") // not remembered by the failed attempt
	e.wantPlan(user1, billing.Pro)
}

func TestWebhookCheckoutLink(t *testing.T) {
	const user2, cus2 = "u2", "cus_2"
	sub := billingtest.SubscriptionEvent("customer.subscription.created", billingtest.SubscriptionSpec{ID: "sub_2", Customer: cus2, PriceID: "price_pro"}, t0)
	checkout := billingtest.CheckoutCompletedEvent(billingtest.CheckoutSpec{ClientReferenceID: user2, Customer: cus2, Subscription: "sub_2"}, t0)
	link := func(c *billing.WebhookConfig) { c.LinkCheckout = true }
	newUser2 := func(e *whEnv) { e.store.PutUser(context.Background(), billing.User{ID: user2, Plan: billing.Free}) }

	t.Run("subscription first, then checkout", func(t *testing.T) {
		e := newWHEnv(t, link)
		newUser2(e)
		e.expect(sub, 200, "applied")
		e.wantPlan(user2, billing.Free)
		e.expect(checkout, 200, "linked")
		e.wantPlan(user2, billing.Pro)
	})
	t.Run("checkout first, then subscription", func(t *testing.T) {
		e := newWHEnv(t, link)
		newUser2(e)
		e.expect(checkout, 200, "linked")
		e.wantPlan(user2, billing.Free)
		e.expect(sub, 200, "applied")
		e.wantPlan(user2, billing.Pro)
	})
	t.Run("app links the customer itself", func(t *testing.T) {
		e := newWHEnv(t)
		newUser2(e)
		e.expect(sub, 200, "applied")
		if _, err := e.store.LinkCustomer(context.Background(), user2, cus2); err != nil {
			t.Fatal(err)
		}
		e.wantPlan(user2, billing.Pro)
	})
	t.Run("LinkCheckout off", func(t *testing.T) {
		e := newWHEnv(t)
		newUser2(e)
		e.expect(checkout, 200, "ignored")
		if _, found, _ := e.store.UserByCustomer(context.Background(), cus2); found {
			t.Fatal("customer linked with LinkCheckout off")
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		e := newWHEnv(t, link)
		e.expect(checkout, 200, "unknown_user")
	})
	t.Run("no client_reference_id", func(t *testing.T) {
		e := newWHEnv(t, link)
		e.expect(billingtest.CheckoutCompletedEvent(billingtest.CheckoutSpec{Customer: cus2}, t0), 200, "ignored")
	})
	t.Run("store failure", func(t *testing.T) {
		e := newWHEnv(t, link)
		newUser2(e)
		e.store.fail(true)
		e.expect(checkout, 500, "Internal Server Error")
	})
}

func TestWebhookObservation(t *testing.T) {
	e := newWHEnv(t)
	e.expect(subEvent("customer.subscription.created", "active", "price_pro", t0), 200, "applied")
	e.send(subEvent("customer.subscription.created", "active", "price_pro", t0), billingtest.RequestOptions{Variant: billingtest.BadSignature})
	got := *e.obs
	for i := range got {
		got[i].Latency = 0
	}
	want := []billing.Observation{
		{Op: "webhook", Outcome: "applied", Status: 200, UserID: user1, EventType: "customer.subscription.created"},
		{Op: "webhook", Outcome: "rejected", Status: 400},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("observations (-want +got):\n%s", d)
	}
}

// TestSyncProperty runs the webhook sync property on the MemoryStore: 1,000
// random histories delivered in random orders, 20% duplicates, same-second
// ties, return-sync reads, injected faults, 8 concurrent workers.
func TestSyncProperty(t *testing.T) {
	stats := storetest.RunSyncProperty(t, memoryHarness, storetest.PropertyConfig{})
	// The run must have exercised what it claims to.
	if stats.Histories != 1000 {
		t.Errorf("histories = %d, want 1000", stats.Histories)
	}
	if err := stats.Exercised(); err != nil {
		t.Error(err)
	}
}

// BenchmarkWebhookEvent measures one signed subscription event through the
// handler on the MemoryStore: signature check (against the second of two
// secrets), decoding, mapping, an applied write and the user lookup for the
// log.
func BenchmarkWebhookEvent(b *testing.B) {
	store := billing.NewMemoryStore()
	for j := range 1024 {
		store.PutUser(context.Background(), billing.User{ID: fmt.Sprintf("u_b%d", j), StripeCustomerID: fmt.Sprintf("cus_b%d", j)})
	}
	h, err := billing.NewWebhookHandler(billing.WebhookConfig{Secrets: []string{oldSecret, secret}, Store: store, Rules: billing.PlanRules{Prices: testPlans(b)}})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1024
	var payloads [][]byte
	var headers []string
	base := time.Now().Add(-time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == 0 {
			b.StopTimer()
			payloads, headers = payloads[:0], headers[:0]
			now := time.Now()
			for j := range batch {
				price := "price_basic"
				if j%2 == 0 {
					price = "price_pro"
				}
				p := billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{ID: fmt.Sprintf("sub_b%d", j), Customer: fmt.Sprintf("cus_b%d", j), PriceID: price}, base.Add(time.Duration(i)*time.Second))
				payloads = append(payloads, p)
				headers = append(headers, billingtest.Sign(p, secret, now))
			}
			b.StartTimer()
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(payloads[i%batch]))
		r.Header.Set("Stripe-Signature", headers[i%batch])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// storedSub reads a subscription from a MemoryStore (whose only error is
// the context's).
func storedSub(s *billing.MemoryStore, id string) (billing.Subscription, bool) {
	sub, ok, _ := s.Subscription(context.Background(), id)
	return sub, ok
}
