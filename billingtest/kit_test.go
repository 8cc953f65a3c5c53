package billingtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
)

func TestPortalService(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	svc := billingtest.NewPortalService(t, s, nil)

	got, err := svc.CreateSession(context.Background(), billingtest.UserPro, billing.SessionOptions{})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	sessions := s.Sessions()
	if len(sessions) != 1 || got.URL != sessions[0].URL || got.ID != sessions[0].ID {
		t.Fatalf("CreateSession = %+v, fake created %+v", got, sessions)
	}
	calls := s.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	if diff := cmp.Diff(map[string][]string{"customer": {billingtest.CustomerPro}, "return_url": {billingtest.ReturnURL}}, map[string][]string(calls[0].Form)); diff != "" {
		t.Errorf("form (-want +got):\n%s", diff)
	}
	if got.StripeRequestID != calls[0].RequestID {
		t.Errorf("StripeRequestID = %q, want %q", got.StripeRequestID, calls[0].RequestID)
	}

	tests := []struct {
		name      string
		user      string
		opts      billing.SessionOptions
		fault     *billingtest.Fault
		want      error
		wantCalls int
	}{
		{name: "free user", user: billingtest.UserFree, want: billing.ErrNotPaid},
		{name: "no customer", user: billingtest.UserNoCustomer, want: billing.ErrCustomerNotFound},
		{name: "unknown user", user: "u_unknown", want: billing.ErrUnauthorized},
		{name: "customer deleted in Stripe", user: "u_gone", want: billing.ErrCustomerNotFound, wantCalls: 1},
		{name: "stripe down", user: billingtest.UserBasic, fault: ptr(billingtest.ServiceUnavailable()), want: billing.ErrInternal, wantCalls: 3},
		{name: "resource_missing fault", user: billingtest.UserBasic, fault: ptr(billingtest.ResourceMissing("customer")), want: billing.ErrCustomerNotFound, wantCalls: 1},
		{name: "allowed return url", user: billingtest.UserBasic, opts: billing.SessionOptions{ReturnURL: "https://app.example.com/billing"}, wantCalls: 1},
		{name: "cancel flow on own subscription read from Stripe", user: billingtest.UserBasic,
			opts: billing.SessionOptions{Flow: &billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: billingtest.SubscriptionBasic}}, wantCalls: 2},
		{name: "cancel flow on someone else's subscription", user: billingtest.UserBasic,
			opts: billing.SessionOptions{Flow: &billing.Flow{Type: billing.FlowSubscriptionCancel, Subscription: billingtest.SubscriptionPro}}, want: billing.ErrBadRequest, wantCalls: 1},
	}
	store := billingtest.NewStore(append(billingtest.Users(), billing.User{ID: "u_gone", Plan: billing.Pro, StripeCustomerID: "cus_gone"})...)
	svc = billingtest.NewPortalService(t, s, store)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Reset()
			if tt.fault != nil {
				s.Fail("*", *tt.fault)
			}
			_, err := svc.CreateSession(context.Background(), tt.user, tt.opts)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if n := len(s.Calls()); n != tt.wantCalls {
				t.Errorf("%d Stripe calls, want %d", n, tt.wantCalls)
			}
		})
	}

	t.Run("config hook", func(t *testing.T) {
		s.Reset()
		svc := billingtest.NewPortalService(t, s, nil, func(c *billing.PortalConfig) { c.Locale = "de"; c.Configuration = "bpc_custom" })
		if _, err := svc.CreateSession(context.Background(), billingtest.UserPro, billing.SessionOptions{}); err != nil {
			t.Fatal(err)
		}
		f := s.Calls()[0].Form
		if f.Get("locale") != "de" || f.Get("configuration") != "bpc_custom" {
			t.Errorf("form = %v", f)
		}
	})
}

func TestHandlerWithStaticAuth(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	h := billingtest.NewPortalService(t, s, nil)
	tests := []struct {
		name       string
		token      string
		wantStatus int
	}{
		{"pro", billingtest.TokenPro, 200},
		{"basic", billingtest.TokenBasic, 200},
		{"free", billingtest.TokenFree, 403},
		{"no customer", billingtest.TokenNoCustomer, 404},
		{"expired", billingtest.TokenExpired, 401},
		{"unknown token", "tok_forged", 401},
		{"unknown user", billingtest.TokenUnknownUser, 401},
		{"no cookie", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Reset()
			req := httptest.NewRequest(http.MethodPost, "/api/subscription/create-portal-session", nil)
			if tt.token != "" {
				req.AddCookie(billingtest.Cookie(tt.token))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			wantCalls := 0
			if tt.wantStatus == 200 {
				wantCalls = 1
				var body struct{ URL string }
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.URL != s.Sessions()[len(s.Sessions())-1].URL {
					t.Errorf("body %s: want the fake's session url", rec.Body)
				}
			}
			if n := len(s.Calls()); n != wantCalls {
				t.Errorf("%d Stripe calls, want %d", n, wantCalls)
			}
		})
	}
}

func TestStaticAuth(t *testing.T) {
	a := billingtest.NewStaticAuth()
	a.AddExpiring("tok_later", "u_later", time.Now().Add(time.Hour))
	a.Add("tok_removed", "u_x")
	a.Remove("tok_removed")
	tests := []struct {
		name    string
		cookie  *http.Cookie
		wantID  string
		wantErr error
	}{
		{"valid", billingtest.Cookie(billingtest.TokenPro), billingtest.UserPro, nil},
		{"expires later", billingtest.Cookie("tok_later"), "u_later", nil},
		{"expired", billingtest.Cookie(billingtest.TokenExpired), "", billing.ErrTokenExpired},
		{"unknown", billingtest.Cookie("tok_nope"), "", billing.ErrTokenInvalid},
		{"removed", billingtest.Cookie("tok_removed"), "", billing.ErrTokenInvalid},
		{"other cookie name", &http.Cookie{Name: "session", Value: billingtest.TokenPro}, "", billing.ErrNoToken},
		{"none", nil, "", billing.ErrNoToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", nil)
			if tt.cookie != nil {
				req.AddCookie(tt.cookie)
			}
			id, err := a.Authenticate(req)
			if id != tt.wantID || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Authenticate = %q, %v; want %q, %v", id, err, tt.wantID, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "tok_") {
				t.Errorf("error %q names the token", err)
			}
		})
	}
	if c := billingtest.Cookie("x"); c.Name != "access_token" || c.Value != "x" {
		t.Errorf("Cookie = %+v", c)
	}
}

func TestAddUsers(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.AddUsers(billingtest.Users()...)
	s.AddUsers(billing.User{ID: "u_b", Plan: billing.Basic, StripeCustomerID: "cus_b", SubscriptionID: "sub_b"})
	for _, id := range []string{billingtest.CustomerBasic, billingtest.CustomerPro, "cus_b"} {
		if _, ok := s.Customer(id); !ok {
			t.Errorf("customer %s missing", id)
		}
	}
	if sub, ok := s.Subscription(billingtest.SubscriptionPro); !ok || sub.PriceID != billingtest.PricePro || sub.Status != "active" {
		t.Errorf("sub_pro = %+v, %v", sub, ok)
	}
	if sub, ok := s.Subscription("sub_b"); !ok || sub.PriceID != billingtest.PriceBasic || sub.Customer != "cus_b" {
		t.Errorf("sub_b = %+v, %v", sub, ok)
	}
	if _, ok := s.Subscription(billingtest.SubscriptionBasic); ok {
		t.Errorf("AddUsers made sub_basic, which no user names")
	}
}

func TestStaticAuthZeroAndClock(t *testing.T) {
	var a billingtest.StaticAuth
	if _, err := a.VerifyToken(context.Background(), billingtest.TokenPro); !errors.Is(err, billing.ErrTokenInvalid) {
		t.Errorf("zero StaticAuth accepted a standard token: %v", err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a.Now = func() time.Time { return now }
	a.AddExpiring("t", "u", now.Add(time.Second))
	if id, err := a.VerifyToken(context.Background(), "t"); id != "u" || err != nil {
		t.Errorf("before expiry: %q, %v", id, err)
	}
	now = now.Add(time.Second)
	if _, err := a.VerifyToken(context.Background(), "t"); !errors.Is(err, billing.ErrTokenExpired) {
		t.Errorf("at expiry: %v, want ErrTokenExpired", err)
	}
}
