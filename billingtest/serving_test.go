package billingtest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

func TestSessionSuccess(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	c := s.SessionClient()

	ps, err := newSession(t, c, billingtest.CustomerPro)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !strings.HasPrefix(ps.URL, "https://billing.stripe.com/p/session/test_") || !strings.HasPrefix(ps.ID, "bps_") {
		t.Errorf("session id %q url %q: want bps_... and a Stripe portal URL", ps.ID, ps.URL)
	}
	if ps.Customer != billingtest.CustomerPro || ps.ReturnURL != billingtest.ReturnURL || ps.Object != "billing_portal.session" {
		t.Errorf("decoded session = %+v", ps)
	}
	if ps.LastResponse == nil || !strings.HasPrefix(ps.LastResponse.RequestID, "req_") {
		t.Errorf("LastResponse.RequestID missing: %+v", ps.LastResponse)
	}

	ps2, err := newSession(t, c, billingtest.CustomerPro)
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	if ps2.URL == ps.URL || ps2.ID == ps.ID {
		t.Errorf("two sessions share url or id: %q %q", ps.URL, ps2.URL)
	}

	calls := s.Calls()
	if len(calls) != 2 {
		t.Fatalf("recorded %d calls, want 2", len(calls))
	}
	got := calls[0]
	if got.Method != http.MethodPost || got.Path != billingtest.PathPortalSessions {
		t.Errorf("call = %s %s", got.Method, got.Path)
	}
	if diff := cmp.Diff(map[string][]string{"customer": {billingtest.CustomerPro}, "return_url": {billingtest.ReturnURL}}, map[string][]string(got.Form)); diff != "" {
		t.Errorf("form (-want +got):\n%s", diff)
	}
	if got.IdempotencyKey == "" || got.IdempotencyKey == calls[1].IdempotencyKey {
		t.Errorf("idempotency keys %q, %q: want set and distinct per call", got.IdempotencyKey, calls[1].IdempotencyKey)
	}
	if got.StripeVersion != stripe.APIVersion || got.Status != 200 || got.RequestID != ps.LastResponse.RequestID {
		t.Errorf("call = %+v", got)
	}
	sessions := s.Sessions()
	if len(sessions) != 2 || sessions[0].URL != ps.URL || sessions[0].Customer != billingtest.CustomerPro {
		t.Errorf("Sessions() = %+v", sessions)
	}
	if calls[1].Conn != calls[0].Conn || s.Connections() != 1 {
		t.Errorf("two sequential calls used connections %d and %d (%d opened), want one reused", calls[0].Conn, calls[1].Conn, s.Connections())
	}
}

func TestSessionRejections(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	tests := []struct {
		name       string
		params     *stripe.BillingPortalSessionParams
		wantStatus int
		wantCode   stripe.ErrorCode
		wantParam  string
	}{
		{"unknown customer", &stripe.BillingPortalSessionParams{Customer: stripe.String("cus_nobody"), ReturnURL: stripe.String(billingtest.ReturnURL)},
			404, stripe.ErrorCodeResourceMissing, "customer"},
		{"no customer", &stripe.BillingPortalSessionParams{ReturnURL: stripe.String(billingtest.ReturnURL)},
			400, stripe.ErrorCodeParameterMissing, "customer"},
		{"no return url and no default", &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro)},
			400, stripe.ErrorCodeParameterMissing, "return_url"},
		{"bad return url", &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro), ReturnURL: stripe.String("javascript:alert(1)")},
			400, stripe.ErrorCodeURLInvalid, "return_url"},
		{"flow on another customer's subscription", &stripe.BillingPortalSessionParams{
			Customer: stripe.String(billingtest.CustomerPro), ReturnURL: stripe.String(billingtest.ReturnURL),
			FlowData: &stripe.BillingPortalSessionFlowDataParams{Type: stripe.String("subscription_cancel"),
				SubscriptionCancel: &stripe.BillingPortalSessionFlowDataSubscriptionCancelParams{Subscription: stripe.String(billingtest.SubscriptionBasic)}}},
			400, "", "flow_data[subscription_cancel][subscription]"},
		{"flow on unknown subscription", &stripe.BillingPortalSessionParams{
			Customer: stripe.String(billingtest.CustomerPro), ReturnURL: stripe.String(billingtest.ReturnURL),
			FlowData: &stripe.BillingPortalSessionFlowDataParams{Type: stripe.String("subscription_update"),
				SubscriptionUpdate: &stripe.BillingPortalSessionFlowDataSubscriptionUpdateParams{Subscription: stripe.String("sub_nope")}}},
			404, stripe.ErrorCodeResourceMissing, "flow_data[subscription_update][subscription]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Reset()
			_, err := s.SessionClient().New(tt.params)
			var se *stripe.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *stripe.Error", err)
			}
			if se.HTTPStatusCode != tt.wantStatus || se.Code != tt.wantCode || se.Param != tt.wantParam || se.Type != stripe.ErrorTypeInvalidRequest {
				t.Errorf("error status %d code %q param %q type %q, want %d %q %q invalid_request_error",
					se.HTTPStatusCode, se.Code, se.Param, se.Type, tt.wantStatus, tt.wantCode, tt.wantParam)
			}
			if !strings.HasPrefix(se.RequestID, "req_") {
				t.Errorf("RequestID = %q", se.RequestID)
			}
			if n := s.CallCount(billingtest.PathPortalSessions); n != 1 {
				t.Errorf("%d calls, want 1 (not retried)", n)
			}
		})
	}

	t.Run("default return url", func(t *testing.T) {
		s.SetDefaultReturnURL("https://app.example.com/default")
		defer s.SetDefaultReturnURL("")
		ps, err := s.SessionClient().New(&stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerBasic)})
		if err != nil || ps.ReturnURL != "https://app.example.com/default" {
			t.Fatalf("New = %+v, %v; want the default return url", ps, err)
		}
	})
}

func TestSubscriptions(t *testing.T) {
	s := billingtest.StartStripe(t)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.PutSubscription(billingtest.SubscriptionSpec{ID: "sub_a", Customer: "cus_a", Status: "past_due",
		PriceID: "price_x", LookupKey: "x_monthly", ProductID: "prod_x", Created: created, Metadata: map[string]string{"k": "v"}})
	s.PutSubscription(billingtest.SubscriptionSpec{ID: "sub_b", Customer: "cus_a", Status: "canceled",
		PriceID: "price_y", Created: created.Add(time.Hour)})
	s.PutSubscription(billingtest.SubscriptionSpec{ID: "sub_c", Customer: "cus_c", PriceID: "price_x", Created: created})

	sub, err := s.SubscriptionClient().Get("sub_a", nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	type view struct {
		ID, Customer, Status, Price, LookupKey, Product string
		Created, PeriodEnd                              int64
		Metadata                                        map[string]string
	}
	got := view{ID: sub.ID, Status: string(sub.Status), Created: sub.Created, PeriodEnd: sub.CurrentPeriodEnd, Metadata: sub.Metadata}
	if sub.Customer != nil {
		got.Customer = sub.Customer.ID
	}
	if sub.Items != nil && len(sub.Items.Data) == 1 && sub.Items.Data[0].Price != nil {
		p := sub.Items.Data[0].Price
		got.Price, got.LookupKey = p.ID, p.LookupKey
		if p.Product != nil {
			got.Product = p.Product.ID
		}
	}
	want := view{ID: "sub_a", Customer: "cus_a", Status: "past_due", Price: "price_x", LookupKey: "x_monthly", Product: "prod_x",
		Created: created.Unix(), PeriodEnd: created.Add(30 * 24 * time.Hour).Unix(), Metadata: map[string]string{"k": "v"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded subscription (-want +got):\n%s", diff)
	}

	if _, err := s.SubscriptionClient().Get("sub_nope", nil); !isCode(err, 404, stripe.ErrorCodeResourceMissing) {
		t.Errorf("Get unknown: %v, want 404 resource_missing", err)
	}

	list := func(p *stripe.SubscriptionListParams) []string {
		var ids []string
		it := s.SubscriptionClient().List(p)
		for it.Next() {
			ids = append(ids, it.Subscription().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("List: %v", err)
		}
		return ids
	}
	tests := []struct {
		name   string
		params *stripe.SubscriptionListParams
		want   []string
	}{
		{"customer, status all, newest first", &stripe.SubscriptionListParams{Customer: stripe.String("cus_a"), Status: stripe.String("all")}, []string{"sub_b", "sub_a"}},
		{"customer, default hides canceled", &stripe.SubscriptionListParams{Customer: stripe.String("cus_a")}, []string{"sub_a"}},
		{"status canceled", &stripe.SubscriptionListParams{Status: stripe.String("canceled")}, []string{"sub_b"}},
		{"price", &stripe.SubscriptionListParams{Price: stripe.String("price_x")}, []string{"sub_a", "sub_c"}},
		{"unknown customer", &stripe.SubscriptionListParams{Customer: stripe.String("cus_none")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, list(tt.params)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
	calls := s.Calls()
	last := calls[len(calls)-1]
	if last.Method != http.MethodGet || last.Path != billingtest.PathSubscriptions || last.Form.Get("customer") != "cus_none" {
		t.Errorf("last call = %+v", last)
	}
}

func TestCustomers(t *testing.T) {
	s := billingtest.StartStripe(t)
	cc := s.CustomerClient()
	c, err := cc.New(&stripe.CustomerParams{Email: stripe.String("a@example.com")})
	if err != nil || !strings.HasPrefix(c.ID, "cus_") || c.Email != "a@example.com" {
		t.Fatalf("New = %+v, %v", c, err)
	}
	p := &stripe.CustomerParams{Name: stripe.String("Ada")}
	p.AddMetadata("user_id", "u_1")
	if _, err := cc.Update(c.ID, p); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, err := cc.Get(c.ID, nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Name != "Ada" || got.Email != "a@example.com" || got.Metadata["user_id"] != "u_1" {
		t.Errorf("customer = %+v", got)
	}
	if fc, ok := s.Customer(c.ID); !ok || fc.Name != "Ada" {
		t.Errorf("Customer(%q) = %+v, %v", c.ID, fc, ok)
	}
	// A customer created through the API can open the portal.
	if _, err := newSession(t, s.SessionClient(), c.ID); err != nil {
		t.Errorf("session for a created customer: %v", err)
	}
	s.DeleteCustomer(c.ID)
	if _, err := cc.Get(c.ID, nil); !isCode(err, 404, stripe.ErrorCodeResourceMissing) {
		t.Errorf("Get deleted: %v", err)
	}
}

func TestRawHTTP(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	tests := []struct {
		name, method, path, auth string
		wantStatus               int
		wantType                 string
	}{
		{"unknown path", "GET", "/v1/charges", "Bearer " + billingtest.TestKey, 404, "invalid_request_error"},
		{"wrong method", "DELETE", "/v1/billing_portal/sessions", "Bearer " + billingtest.TestKey, 404, "invalid_request_error"},
		{"no key", "GET", "/v1/customers/cus_pro", "", 401, "invalid_request_error"},
		{"live key", "GET", "/v1/customers/cus_pro", "Bearer sk_live_nope", 401, "invalid_request_error"},
		{"basic auth", "GET", "/v1/customers/cus_pro", "basic", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.URL()+tt.path, nil)
			switch tt.auth {
			case "basic":
				req.SetBasicAuth(billingtest.TestKey, "")
			case "":
			default:
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := s.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.HasPrefix(resp.Header.Get("Request-Id"), "req_") {
				t.Errorf("status %d request id %q, want %d req_...", resp.StatusCode, resp.Header.Get("Request-Id"), tt.wantStatus)
			}
			if tt.wantType != "" {
				var e struct {
					Error struct{ Type, Message string }
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Type != tt.wantType || e.Error.Message == "" {
					t.Errorf("body %s: want Stripe error JSON of type %s", body, tt.wantType)
				}
			}
			if strings.Contains(string(body), "sk_live_nope") {
				t.Errorf("reply echoes the key: %s", body)
			}
		})
	}
	for _, c := range s.Calls() {
		if strings.Contains(c.Form.Encode(), "sk_") {
			t.Errorf("call records a key: %+v", c)
		}
	}
}
