package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
)

// Values that must never reach a log line.
const (
	logToken       = "tok-SECRET-7f3a9c"                            // the access_token cookie's value
	logStripeText  = "No such customer: cus_pro; sk_test_leak12345" // Stripe's error message
	logStoreText   = "dial tcp db.internal:5432: password=hunter2"  // a driver's error text
	logBodySecret  = "https://evil.example/billing/?session=LEAK"
	logSigningSalt = billingtest.WebhookSecret
)

// logRecords decodes the JSON lines of buf.
func logRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// checkRecord compares the keys of want with rec (reason, cause, user_id
// and detail must be absent unless wanted), and checks the latency and the
// Stripe request id.
func checkRecord(t *testing.T, rec map[string]any, want map[string]any, wantStripeID bool) {
	t.Helper()
	got := map[string]any{}
	for k := range want {
		if v, ok := rec[k]; ok {
			got[k] = v
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record %v (-want +got):\n%s", rec, diff)
	}
	for _, k := range []string{"reason", "cause", "user_id", "detail"} {
		if _, wanted := want[k]; !wanted && rec[k] != nil {
			t.Errorf("record has %s=%v, want none", k, rec[k])
		}
	}
	if l, ok := rec["latency"].(float64); !ok || l <= 0 {
		t.Errorf("record has no positive latency: %v", rec)
	}
	id, has := rec["stripe_request_id"].(string)
	switch {
	case wantStripeID && (!has || !strings.HasPrefix(id, "req_")):
		t.Errorf("record lacks Stripe's request id: %v", rec)
	case !wantStripeID && has:
		t.Errorf("record has a Stripe request id though Stripe was not called: %v", rec)
	}
}

// TestPortalLogging runs the portal handler with a JSON slog handler: each
// request yields exactly one record with the outcome, the status, the
// latency, the user id once known and Stripe's request id when Stripe was
// called; no record holds the token, a key, a portal URL, Stripe's error
// text, a store's error text or the request body.
func TestPortalLogging(t *testing.T) {
	stripeFault := billingtest.Fault{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_empty", Message: logStripeText}
	missing := billingtest.Fault{Status: 404, Type: "invalid_request_error", Code: "resource_missing", Param: "customer", Message: logStripeText}
	tests := []struct {
		name     string
		method   string
		noCookie bool
		token    string // default logToken (u_pro)
		body     string
		store    billing.UserStore
		fault    *billingtest.Fault
		want     map[string]any
		stripeID bool
	}{
		{name: "created", want: map[string]any{"level": "INFO", "outcome": "created", "status": 200.0, "user_id": "u_pro"}, stripeID: true},
		{name: "no cookie", noCookie: true, want: map[string]any{"level": "INFO", "outcome": "unauthorized", "status": 401.0, "reason": "no_token"}},
		{name: "expired token", token: billingtest.TokenExpired, want: map[string]any{"level": "INFO", "outcome": "unauthorized", "status": 401.0, "reason": "token_expired"}},
		{name: "forged token", token: logToken + "x", want: map[string]any{"level": "INFO", "outcome": "unauthorized", "status": 401.0, "reason": "token_invalid"}},
		{name: "free plan", token: billingtest.TokenFree, want: map[string]any{"level": "INFO", "outcome": "not_paid", "status": 403.0, "user_id": "u_free"}},
		{name: "unknown user", token: billingtest.TokenUnknownUser, want: map[string]any{"level": "INFO", "outcome": "unauthorized", "status": 401.0, "user_id": "u_unknown", "reason": "unknown_user"}},
		{name: "no customer", token: billingtest.TokenNoCustomer, want: map[string]any{"level": "INFO", "outcome": "customer_not_found", "status": 404.0, "user_id": "u_nocust", "reason": "no_customer"}},
		{name: "method", method: http.MethodGet, want: map[string]any{"level": "INFO", "outcome": "method_not_allowed", "status": 405.0, "reason": "method"}},
		{name: "bad body", body: `{"return_url":"` + logBodySecret + `","x":1}`, want: map[string]any{"level": "INFO", "outcome": "bad_request", "status": 400.0, "user_id": "u_pro",
			"reason": "body", "detail": "request body is not valid JSON of return_url, locale and flow"}},
		{name: "return_url refused", body: `{"return_url":"` + logBodySecret + `"}`, want: map[string]any{"level": "INFO", "outcome": "bad_request", "status": 400.0, "user_id": "u_pro",
			"reason": "options", "detail": "return_url is not allowed"}},
		{name: "store failure", store: billing.UserStoreFunc(func(context.Context, string) (billing.User, bool, error) {
			return billing.User{}, false, errors.New(logStoreText)
		}), want: map[string]any{"level": "ERROR", "outcome": "error", "status": 500.0, "user_id": "u_pro", "cause": "load_user failed"}},
		{name: "stripe resource_missing", fault: &missing, want: map[string]any{"level": "INFO", "outcome": "customer_not_found", "status": 404.0, "user_id": "u_pro",
			"cause": "stripe type=invalid_request_error code=resource_missing http_status=404"}, stripeID: true},
		{name: "stripe failure", fault: &stripeFault, want: map[string]any{"level": "ERROR", "outcome": "error", "status": 500.0, "user_id": "u_pro",
			"cause": "stripe type=invalid_request_error code=parameter_invalid_empty http_status=400"}, stripeID: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := billingtest.StartStripe(t)
			fake.Seed()
			if tt.fault != nil {
				fake.Fail(billingtest.PathPortalSessions, *tt.fault)
			}
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			auth := billingtest.NewStaticAuth()
			auth.Add(logToken, billingtest.UserPro)
			svc := billingtest.NewPortalService(t, fake, tt.store, func(c *billing.PortalConfig) { c.Logger, c.Auth = logger, auth })

			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/api/subscription/create-portal-session", strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if !tt.noCookie {
				token := tt.token
				if token == "" {
					token = logToken
				}
				req.AddCookie(billingtest.Cookie(token))
			}
			rec := httptest.NewRecorder()
			svc.ServeHTTP(rec, req)

			recs := logRecords(t, &buf)
			if len(recs) != 1 {
				t.Fatalf("%d log records, want 1:\n%s", len(recs), buf.String())
			}
			if int(recs[0]["status"].(float64)) != rec.Code {
				t.Errorf("logged status %v, replied %d", recs[0]["status"], rec.Code)
			}
			checkRecord(t, recs[0], tt.want, tt.stripeID)

			never := []string{logToken, "sk_", logStripeText, "hunter2", "db.internal", "LEAK", "billing.stripe.com", "access_token"}
			for _, s := range fake.Sessions() {
				never = append(never, s.URL, s.ID)
			}
			for _, s := range never {
				if strings.Contains(buf.String(), s) {
					t.Errorf("log holds %q:\n%s", s, buf.String())
				}
			}
		})
	}
}

// TestWebhookLogging: each delivery yields one record with the event id and
// type, the outcome, the status and the latency; never the signing secret,
// the signature or the payload.
func TestWebhookLogging(t *testing.T) {
	now := time.Now()
	event := billingtest.Event{ID: "evt_log_1", Type: "customer.subscription.updated", Created: now,
		Object: billingtest.SubscriptionObject(billingtest.SubscriptionSpec{
			ID: billingtest.SubscriptionBasic, Customer: billingtest.CustomerBasic, PriceID: billingtest.PricePro,
		}, now)}.JSON()
	tests := []struct {
		name    string
		variant billingtest.Variant
		want    map[string]any
	}{
		{"applied", billingtest.Valid, map[string]any{"level": "INFO", "outcome": "applied", "status": 200.0,
			"event_id": "evt_log_1", "event_type": "customer.subscription.updated", "user_id": billingtest.UserBasic}},
		{"bad signature", billingtest.BadSignature, map[string]any{"level": "INFO", "outcome": "rejected", "status": 400.0, "reason": "bad_signature"}},
		{"unsigned", billingtest.Unsigned, map[string]any{"level": "INFO", "outcome": "rejected", "status": 400.0, "reason": "no_signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h, err := billing.NewWebhookHandler(billing.WebhookConfig{
				Secrets: []string{logSigningSalt},
				Store:   billingtest.NewStore(),
				Rules:   billing.PlanRules{Prices: billing.PriceTable{Prices: map[string]billing.Plan{billingtest.PricePro: billing.Pro, billingtest.PriceBasic: billing.Basic}}},
				Logger:  slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			req := billingtest.WebhookRequest(event, logSigningSalt, billingtest.RequestOptions{Variant: tt.variant, Time: now})
			sig := req.Header.Get("Stripe-Signature")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			recs := logRecords(t, &buf)
			if len(recs) != 1 {
				t.Fatalf("%d log records, want 1:\n%s", len(recs), buf.String())
			}
			checkRecord(t, recs[0], tt.want, false)
			never := []string{"whsec_", "price_pro", `"items"`}
			if sig != "" {
				never = append(never, sig, strings.SplitN(sig, "v1=", 2)[1])
			}
			for _, s := range never {
				if strings.Contains(buf.String(), s) {
					t.Errorf("log holds %q:\n%s", s, buf.String())
				}
			}
		})
	}
}

// TestReturnSyncLogging: each return yields one record with the outcome,
// the status, the latency, the user id (or why there is none) and Stripe's
// request id when Stripe was called; never the token.
func TestReturnSyncLogging(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		fault    *billingtest.Fault
		want     map[string]any
		stripeID bool
	}{
		{name: "synced", token: logToken, want: map[string]any{"level": "INFO", "outcome": "synced", "status": 303.0, "user_id": "u_pro"}, stripeID: true},
		{name: "no cookie", want: map[string]any{"level": "INFO", "outcome": "unauthorized", "status": 303.0, "reason": "no_token"}},
		{name: "stripe failure", token: logToken, fault: &billingtest.Fault{Status: 400, Type: "invalid_request_error", Code: "parameter_invalid_empty", Message: logStripeText},
			want: map[string]any{"level": "ERROR", "outcome": "error", "status": 303.0, "user_id": "u_pro",
				"cause": "stripe type=invalid_request_error code=parameter_invalid_empty http_status=400"}, stripeID: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := billingtest.StartStripe(t)
			fake.Seed()
			if tt.fault != nil {
				fake.Fail(billingtest.PathSubscriptions, *tt.fault)
			}
			var buf bytes.Buffer
			auth := billingtest.NewStaticAuth()
			auth.Add(logToken, billingtest.UserPro)
			store := billingtest.NewStore()
			rs, err := billing.NewReturnSync(billing.ReturnSyncConfig{
				Auth: auth, Users: store, Store: store, Subscriptions: fake.SubscriptionClient(),
				Rules:    billing.PlanRules{Prices: billing.PriceTable{Prices: map[string]billing.Plan{billingtest.PricePro: billing.Pro, billingtest.PriceBasic: billing.Basic}}},
				Redirect: "/account",
				Logger:   slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/billing/return", nil)
			if tt.token != "" {
				req.AddCookie(billingtest.Cookie(tt.token))
			}
			rec := httptest.NewRecorder()
			rs.ServeHTTP(rec, req)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("status %d, want 303", rec.Code)
			}
			recs := logRecords(t, &buf)
			if len(recs) != 1 {
				t.Fatalf("%d log records, want 1:\n%s", len(recs), buf.String())
			}
			checkRecord(t, recs[0], tt.want, tt.stripeID)
			for _, s := range []string{logToken, "sk_", logStripeText, "access_token"} {
				if strings.Contains(buf.String(), s) {
					t.Errorf("log holds %q:\n%s", s, buf.String())
				}
			}
		})
	}
}
