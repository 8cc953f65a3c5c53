package billing_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
)

type failingAccounts struct{}

func (failingAccounts) Account(context.Context, string) (billing.Account, bool, error) {
	return billing.Account{}, false, errors.New("pq: password authentication failed for user app")
}

func TestStatusHandler(t *testing.T) {
	store := billing.NewMemoryStore(
		billing.User{ID: "u_pro", Plan: billing.Free, StripeCustomerID: "cus_pro"},
		billing.User{ID: "u_free", Plan: billing.Free},
		billing.User{ID: "u_trial", Plan: billing.Free, StripeCustomerID: "cus_trial"},
	)
	ctx := context.Background()
	created := time.Unix(1_700_000_000, 0)
	mustApply(t, store, billing.SubscriptionChange{EventID: "evt_1", Created: created, Seq: 2, Subscription: billing.Subscription{
		ID: "sub_pro", CustomerID: "cus_pro", Status: "active", Plan: billing.Pro,
		CurrentPeriodStart: periodStart, CurrentPeriodEnd: periodEnd}})
	mustApply(t, store, billing.SubscriptionChange{EventID: "evt_2", Created: created, Seq: 2, Subscription: billing.Subscription{
		ID: "sub_trial", CustomerID: "cus_trial", Status: "trialing", Plan: billing.Basic, CancelAtPeriodEnd: true,
		CurrentPeriodEnd: periodEnd, TrialEnd: periodEnd}})
	if out, err := store.ApplyFeatures(ctx, billing.FeaturesChange{EventID: "evt_3", CustomerID: "cus_pro", Features: []string{"seats_10"}, Created: created, Seq: 1}, time.Hour); err != nil || out != billing.Applied {
		t.Fatal(out, err)
	}
	auth := billingtest.NewStaticAuth()
	auth.Add("t_pro", "u_pro")
	auth.Add("t_free", "u_free")
	auth.Add("t_trial", "u_trial")
	auth.Add("t_ghost", "u_ghost")
	var obs []billing.Observation
	h, err := billing.NewStatusHandler(billing.StatusConfig{Accounts: store, Auth: auth,
		Observer: billing.ObserverFunc(func(_ context.Context, o billing.Observation) { obs = append(obs, o) })})
	if err != nil {
		t.Fatal(err)
	}
	failing, _ := billing.NewStatusHandler(billing.StatusConfig{Accounts: failingAccounts{}, Auth: auth})

	tests := []struct {
		name, method, token string
		h                   http.Handler
		status              int
		body                string
		outcome             billing.Outcome
	}{
		{"pro", "GET", "t_pro", h, 200,
			`{"plan":"PRO","status":"active","renews_at":"2027-01-12T00:00:00Z","ends_at":null,"trial_ends_at":null,"cancel_at_period_end":false,"payment_problem":false,"features":["seats_10"]}`, billing.Served},
		{"free without subscription", "GET", "t_free", h, 200,
			`{"plan":"FREE","status":null,"renews_at":null,"ends_at":null,"trial_ends_at":null,"cancel_at_period_end":false,"payment_problem":false,"features":[]}`, billing.Served},
		{"trial canceling", "GET", "t_trial", h, 200,
			`{"plan":"BASIC","status":"trialing","renews_at":null,"ends_at":"2027-01-12T00:00:00Z","trial_ends_at":"2027-01-12T00:00:00Z","cancel_at_period_end":true,"payment_problem":false,"features":[]}`, billing.Served},
		{"no cookie", "GET", "", h, 401, `{"error":"Unauthorized","message":"Authentication required"}`, billing.Unauthorized},
		{"expired token", "GET", billingtest.TokenExpired, h, 401, `{"error":"Unauthorized","message":"Authentication required"}`, billing.Unauthorized},
		{"unknown user", "GET", "t_ghost", h, 401, `{"error":"Unauthorized","message":"Authentication required"}`, billing.Unauthorized},
		{"post", "POST", "t_pro", h, 405, `{"error":"Method Not Allowed","message":"Only GET is allowed"}`, billing.MethodNotAllowed},
		{"store down", "GET", "t_pro", failing, 500, `{"error":"Internal Server Error","message":"Failed to read subscription status"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/api/subscription", nil)
			if tt.token != "" {
				req.AddCookie(billingtest.Cookie(tt.token))
			}
			w := httptest.NewRecorder()
			n := len(obs)
			tt.h.ServeHTTP(w, req)
			if w.Code != tt.status || strings.TrimSpace(w.Body.String()) != tt.body {
				t.Fatalf("got %d %s\nwant %d %s", w.Code, w.Body, tt.status, tt.body)
			}
			for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.status == 405 && w.Header().Get("Allow") != "GET" {
				t.Errorf("Allow = %q, want GET", w.Header().Get("Allow"))
			}
			for _, secret := range []string{"cus_", "sub_", "http", "password"} {
				if strings.Contains(w.Body.String(), secret) {
					t.Errorf("reply shows %q: %s", secret, w.Body)
				}
			}
			if tt.outcome != "" && (len(obs) != n+1 || obs[n].Op != billing.OpStatus || obs[n].Outcome != tt.outcome) {
				t.Errorf("observations %+v, want one %s/%s", obs[n:], billing.OpStatus, tt.outcome)
			}
		})
	}
	if _, err := billing.NewStatusHandler(billing.StatusConfig{Auth: auth}); err == nil || !strings.Contains(err.Error(), "StatusConfig.Accounts is required") {
		t.Fatalf("err = %v", err)
	}
	if _, err := billing.NewStatusHandler(billing.StatusConfig{Accounts: store}); err == nil || !strings.Contains(err.Error(), "StatusConfig.Auth is required") {
		t.Fatalf("err = %v", err)
	}
}
