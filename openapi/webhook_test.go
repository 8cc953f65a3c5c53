package openapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
)

// failingSync is a SyncStore whose writes fail.
type failingSync struct{ *billing.MemoryStore }

func (failingSync) ApplySubscription(context.Context, billing.SubscriptionChange, time.Duration) (billing.Outcome, error) {
	return "", errors.New("db down")
}

// webhookCase is one delivery to the webhook handler.
type webhookCase struct {
	name    string
	method  string
	payload []byte
	variant billingtest.Variant
	before  [][]byte // payloads delivered (validly signed) first
	store   billing.SyncStore
	link    bool // WebhookConfig.LinkCheckout
	status  int
	outcome string // the 200 reply's outcome
	// docAccepts: as for the portal rows.
	docAccepts bool
}

func webhookCases() []webhookCase {
	now := time.Now()
	upgrade := func(created time.Time) []byte {
		return billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{
			ID: billingtest.SubscriptionBasic, Customer: billingtest.CustomerBasic, PriceID: billingtest.PricePro,
		}, created)
	}
	ev := upgrade(now)
	huge := billingtest.Event{Type: "customer.subscription.updated", Object: map[string]any{
		"id": "sub_big", "object": "subscription", "metadata": map[string]string{"note": strings.Repeat("x", 300<<10)},
	}}.JSON()
	return []webhookCase{
		{name: "applied", payload: ev, status: 200, outcome: "applied", docAccepts: true},
		{name: "duplicate", payload: ev, before: [][]byte{ev}, status: 200, outcome: "duplicate", docAccepts: true},
		{name: "stale", payload: upgrade(now.Add(-time.Minute)), before: [][]byte{ev}, status: 200, outcome: "stale", docAccepts: true},
		{name: "ignored", payload: billingtest.Event{Type: "invoice.paid", Object: map[string]any{"id": "in_1", "object": "invoice"}}.JSON(),
			status: 200, outcome: "ignored", docAccepts: true},
		{name: "unknown price", payload: billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{
			ID: billingtest.SubscriptionBasic, Customer: billingtest.CustomerBasic, PriceID: "price_other",
		}, now), status: 200, outcome: "unknown_price", docAccepts: true},
		{name: "checkout linked", link: true, payload: billingtest.CheckoutCompletedEvent(billingtest.CheckoutSpec{
			ClientReferenceID: billingtest.UserFree, Customer: "cus_new",
		}, now), status: 200, outcome: "linked", docAccepts: true},

		{name: "unsigned", payload: ev, variant: billingtest.Unsigned, status: 400, docAccepts: false},
		{name: "signed with another secret", payload: ev, variant: billingtest.BadSignature, status: 400, docAccepts: true},
		{name: "malformed signature", payload: ev, variant: billingtest.MalformedSignature, status: 400, docAccepts: true},
		{name: "signature too old", payload: ev, variant: billingtest.Stale, status: 400, docAccepts: true},
		{name: "live event on a test endpoint", payload: billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{
			ID: billingtest.SubscriptionBasic, Customer: billingtest.CustomerBasic, PriceID: billingtest.PricePro, Livemode: true,
		}, now), status: 400, docAccepts: true},
		{name: "not JSON", payload: []byte(`{"id":`), status: 400, docAccepts: false},
		{name: "event without data", payload: []byte(`{"id":"evt_1","object":"event","type":"customer.subscription.updated","created":1700000000}`), status: 400, docAccepts: false},

		{name: "GET", method: http.MethodGet, payload: ev, status: 405, docAccepts: false},
		{name: "body too large", payload: huge, status: 413, docAccepts: true},

		{name: "store failure", payload: ev, store: failingSync{billingtest.NewStore()}, status: 500, docAccepts: true},
	}
}

// TestWebhookReplies sends signed (and badly signed) events through the
// real webhook handler and validates each request and reply against the
// document, as TestPortalReplies does for the portal.
func TestWebhookReplies(t *testing.T) {
	doc, router := loadDoc(t)
	seen := map[int]bool{}
	for _, c := range webhookCases() {
		t.Run(c.name, func(t *testing.T) {
			fake := billingtest.StartStripe(t)
			fake.Seed()
			store := c.store
			if store == nil {
				store = billingtest.NewStore()
			}
			h, err := billing.NewWebhookHandler(billing.WebhookConfig{
				Secrets: []string{billingtest.WebhookSecret},
				Store:   store,
				Rules: billing.PlanRules{Prices: billing.PriceTable{Prices: map[string]billing.Plan{
					billingtest.PriceBasic: billing.Basic, billingtest.PricePro: billing.Pro,
				}}},
				Subscriptions: fake.SubscriptionClient(),
				LinkCheckout:  c.link,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range c.before {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, billingtest.WebhookRequest(p, billingtest.WebhookSecret, billingtest.RequestOptions{}))
				if w.Code != http.StatusOK {
					t.Fatalf("earlier delivery: status %d, body %s", w.Code, w.Body)
				}
			}
			req := billingtest.WebhookRequest(c.payload, billingtest.WebhookSecret, billingtest.RequestOptions{
				Variant: c.variant, Target: server + billingtest.WebhookPath,
			})
			if c.method != "" {
				req.Method = c.method
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			res := w.Result()
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", res.StatusCode, c.status, w.Body)
			}
			if c.outcome != "" && !strings.Contains(w.Body.String(), `"outcome":"`+c.outcome+`"`) {
				t.Errorf("body %s, want outcome %q", w.Body, c.outcome)
			}
			seen[res.StatusCode] = true

			check := billingtest.WebhookRequest(c.payload, billingtest.WebhookSecret, billingtest.RequestOptions{
				Variant: c.variant, Target: server + billingtest.WebhookPath,
			})
			check.Method = req.Method
			check.Body = io.NopCloser(bytes.NewReader(c.payload))
			want := rejects
			if c.docAccepts {
				want = accepts
			}
			if err := validate(doc, router, check, res, w.Body.Bytes(), want); err != nil {
				t.Error(err)
			}
		})
	}
	checkCoverage(t, doc, billingtest.WebhookPath, seen)
}
