package billingtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
	"github.com/stripe/stripe-go/v76/subscription"
)

func newSession(t *testing.T, c *session.Client, customer string) (*stripe.BillingPortalSession, error) {
	t.Helper()
	p := &stripe.BillingPortalSessionParams{
		Customer:  stripe.String(customer),
		ReturnURL: stripe.String(billingtest.ReturnURL),
	}
	p.Context = context.Background()
	return c.New(p)
}

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

// TestFaults checks each fault's status as stripe-go reports it and the
// number of attempts stripe-go v76 makes (MaxNetworkRetries 2, so a
// retried fault is seen 3 times), with one Idempotency-Key for all of them.
func TestFaults(t *testing.T) {
	htmlOnPost := func(err error) bool {
		var se *stripe.Error
		return err != nil && !errors.As(err, &se) && strings.Contains(err.Error(), "502")
	}
	notStripe := func(err error) bool {
		var se *stripe.Error
		return err != nil && !errors.As(err, &se)
	}
	shouldRetry := func(f billingtest.Fault, v string) billingtest.Fault { f.ShouldRetry = v; return f }
	tests := []struct {
		name      string
		get       bool // GET /v1/subscriptions/sub_pro instead of POST a session
		fault     billingtest.Fault
		times     int // FailNext count; 0: every call
		wantCalls int
		// for a *stripe.Error:
		wantStatus int
		wantCode   stripe.ErrorCode
		// for any other error:
		check func(error) bool
		// wantOK: the call succeeds (the fault ran out before the retries did).
		wantOK bool
	}{
		{name: "500 json post", fault: billingtest.ServerError(500), wantCalls: 1, wantStatus: 500},
		{name: "502 json post", fault: billingtest.ServerError(502), wantCalls: 1, wantStatus: 502},
		{name: "503 json post", fault: billingtest.ServiceUnavailable(), wantCalls: 3, wantStatus: 503},
		{name: "502 html post", fault: billingtest.BadGateway(), wantCalls: 3, check: htmlOnPost},
		{name: "500 html post", fault: billingtest.HTMLError(500), wantCalls: 3, check: notStripe},
		{name: "429 rate_limit", fault: billingtest.RateLimit(), wantCalls: 1, wantStatus: 429, wantCode: stripe.ErrorCodeRateLimit},
		{name: "429 lock_timeout", fault: billingtest.LockTimeout(), wantCalls: 3, wantStatus: 429, wantCode: stripe.ErrorCodeLockTimeout},
		{name: "409 conflict", fault: billingtest.Conflict(), wantCalls: 3, wantStatus: 409, wantCode: "idempotency_key_in_use"},
		{name: "404 resource_missing", fault: billingtest.ResourceMissing("customer"), wantCalls: 1, wantStatus: 404, wantCode: stripe.ErrorCodeResourceMissing},
		{name: "dropped connection", fault: billingtest.Drop(), wantCalls: 3, check: notStripe},
		{name: "503 with Stripe-Should-Retry false", fault: shouldRetry(billingtest.ServiceUnavailable(), "false"), wantCalls: 1, wantStatus: 503},
		{name: "500 with Stripe-Should-Retry true", fault: shouldRetry(billingtest.ServerError(500), "true"), wantCalls: 3, wantStatus: 500},
		{name: "503 once then success", fault: billingtest.ServiceUnavailable(), times: 1, wantCalls: 2, wantOK: true},
		{name: "dropped once then success", fault: billingtest.Drop(), times: 1, wantCalls: 2, wantOK: true},
		{name: "slow then success", fault: billingtest.Slow(20 * time.Millisecond), wantCalls: 1, wantOK: true},
		{name: "500 json get", get: true, fault: billingtest.ServerError(500), wantCalls: 3, wantStatus: 500},
		{name: "429 rate_limit get", get: true, fault: billingtest.RateLimit(), wantCalls: 1, wantStatus: 429, wantCode: stripe.ErrorCodeRateLimit},
		{name: "dropped connection get", get: true, fault: billingtest.Drop(), wantCalls: 3, check: notStripe},
		{name: "404 get", get: true, fault: billingtest.ResourceMissing("id"), wantCalls: 1, wantStatus: 404, wantCode: stripe.ErrorCodeResourceMissing},
	}
	for _, warm := range []bool{false, true} {
		for _, tt := range tests {
			name := tt.name
			if warm {
				name += "/after a kept-alive call"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := billingtest.StartStripe(t)
				s.Seed()
				path := billingtest.PathPortalSessions
				call := func() error {
					_, err := newSession(t, s.SessionClient(), billingtest.CustomerPro)
					return err
				}
				if tt.get {
					path = billingtest.PathSubscriptions + "/" + billingtest.SubscriptionPro
					call = func() error {
						_, err := s.SubscriptionClient().Get(billingtest.SubscriptionPro, nil)
						return err
					}
				}
				if warm {
					if err := call(); err != nil {
						t.Fatalf("warm-up call: %v", err)
					}
					s.Reset()
				}
				if tt.times > 0 {
					s.FailNext(path, tt.times, tt.fault)
				} else {
					s.Fail(path, tt.fault)
				}

				err := call()

				calls := s.Calls()
				if len(calls) != tt.wantCalls {
					t.Errorf("fake saw %d calls, want %d: %+v", len(calls), tt.wantCalls, calls)
				}
				for _, c := range calls[1:] {
					if c.IdempotencyKey != calls[0].IdempotencyKey {
						t.Errorf("retry with Idempotency-Key %q, first attempt had %q", c.IdempotencyKey, calls[0].IdempotencyKey)
					}
				}
				if !tt.get && calls[0].IdempotencyKey == "" {
					t.Errorf("POST without Idempotency-Key")
				}
				if tt.wantOK {
					if err != nil {
						t.Fatalf("err = %v, want success", err)
					}
					return
				}
				if tt.check != nil {
					if !tt.check(err) {
						t.Errorf("err = %v (%T): not the expected kind", err, err)
					}
					return
				}
				var se *stripe.Error
				if !errors.As(err, &se) {
					t.Fatalf("err = %v (%T), want *stripe.Error", err, err)
				}
				if se.HTTPStatusCode != tt.wantStatus || se.Code != tt.wantCode {
					t.Errorf("stripe error status %d code %q, want %d %q", se.HTTPStatusCode, se.Code, tt.wantStatus, tt.wantCode)
				}
				if se.RequestID != calls[len(calls)-1].RequestID {
					t.Errorf("RequestID %q, want the last call's %q", se.RequestID, calls[len(calls)-1].RequestID)
				}
				if calls[0].Fault != tt.fault.String() {
					t.Errorf("Call.Fault = %q, want %q", calls[0].Fault, tt.fault.String())
				}
			})
		}
	}
}

func TestFaultQueueAndHeal(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	c := &session.Client{B: s.NewBackend(billingtest.BackendConfig{MaxNetworkRetries: stripe.Int64(0)}), Key: billingtest.TestKey}
	s.FailNext(billingtest.PathPortalSessions, 1, billingtest.RateLimit())
	s.FailNext(billingtest.PathPortalSessions, 2, billingtest.ServerError(500))
	s.Fail("*", billingtest.Conflict())
	want := []int{429, 500, 500, 409, 409}
	var got []int
	for range want {
		_, err := newSession(t, c, billingtest.CustomerPro)
		var se *stripe.Error
		if !errors.As(err, &se) {
			t.Fatalf("err = %v", err)
		}
		got = append(got, se.HTTPStatusCode)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	s.Heal("*")
	if _, err := newSession(t, c, billingtest.CustomerPro); err != nil {
		t.Errorf("after Heal: %v", err)
	}
	// A method in the pattern limits the fault to that method.
	s.Fail("GET /v1/customers/", billingtest.ServerError(500))
	if _, err := newSession(t, c, billingtest.CustomerPro); err != nil {
		t.Errorf("POST session with a GET-only fault armed: %v", err)
	}
	if _, err := s.CustomerClient().Get(billingtest.CustomerPro, nil); err == nil {
		t.Errorf("GET customer succeeded with a fault armed")
	}
	s.Reset()
	if _, err := s.CustomerClient().Get(billingtest.CustomerPro, nil); err != nil {
		t.Errorf("GET customer after Reset: %v", err)
	}
	if n := s.CallCount("GET /v1/customers/"); n != 1 {
		t.Errorf("CallCount after Reset = %d, want 1", n)
	}
}

func TestSlowReply(t *testing.T) {
	t.Run("client timeout is retried", func(t *testing.T) {
		s := billingtest.StartStripe(t)
		s.Seed()
		// http.Client.Timeout does not cancel the request's context, so
		// stripe-go sees a connection error and retries it.
		hc := billing.NewHTTPClient(50 * time.Millisecond)
		c := &session.Client{B: s.NewBackend(billingtest.BackendConfig{HTTPClient: hc}), Key: billingtest.TestKey}
		s.Fail(billingtest.PathPortalSessions, billingtest.Slow(time.Hour))
		_, err := newSession(t, c, billingtest.CustomerPro)
		var se *stripe.Error
		if err == nil || errors.As(err, &se) {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if n := s.CallCount(billingtest.PathPortalSessions); n != 3 {
			t.Errorf("%d calls, want 3", n)
		}
	})
	t.Run("cancel once the call reached Stripe", func(t *testing.T) {
		s := billingtest.StartStripe(t)
		s.Seed()
		s.Fail(billingtest.PathPortalSessions, billingtest.Slow(time.Hour))
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			_ = s.WaitCalls(ctx, billingtest.PathPortalSessions, 1)
			cancel()
		}()
		p := &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro), ReturnURL: stripe.String(billingtest.ReturnURL)}
		p.Context = ctx
		if _, err := s.SessionClient().New(p); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n := s.CallCount("*"); n != 1 {
			t.Errorf("%d calls, want 1 (no retry after cancel)", n)
		}
		wctx, wcancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer wcancel()
		if err := s.WaitCalls(wctx, "*", 2); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitCalls for a call that never comes = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("context deadline is not retried", func(t *testing.T) {
		s := billingtest.StartStripe(t)
		s.Seed()
		s.Fail(billingtest.PathPortalSessions, billingtest.Slow(time.Hour))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		p := &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro), ReturnURL: stripe.String(billingtest.ReturnURL)}
		p.Context = ctx
		_, err := s.SessionClient().New(p)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if n := s.CallCount(billingtest.PathPortalSessions); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
		// The fake records no reply for a call whose client went away.
		if st := s.Calls()[0].Status; st != 0 {
			t.Errorf("status of the abandoned call = %d, want 0", st)
		}
	})
	t.Run("Close ends a pending slow reply", func(t *testing.T) {
		s := billingtest.NewStripe()
		s.Seed()
		s.Fail(billingtest.PathPortalSessions, billingtest.Slow(time.Hour))
		c := &session.Client{B: s.NewBackend(billingtest.BackendConfig{MaxNetworkRetries: stripe.Int64(0)}), Key: billingtest.TestKey}
		done := make(chan error, 1)
		go func() {
			_, err := newSession(t, c, billingtest.CustomerPro)
			done <- err
		}()
		if err := s.WaitCalls(context.Background(), billingtest.PathPortalSessions, 1); err != nil {
			t.Fatal(err)
		}
		s.Close() // must return although a reply is pending
		if err := s.WaitCalls(context.Background(), "*", 2); err == nil {
			t.Errorf("WaitCalls on a closed fake returned nil")
		}
		if err := <-done; err == nil {
			t.Errorf("call pending at Close succeeded")
		}
		s.Close() // twice is fine
	})
}

func TestSubscriptions(t *testing.T) {
	s := billingtest.StartStripe(t)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.PutSubscription(billingtest.StripeSubscription{ID: "sub_a", Customer: "cus_a", Status: "past_due",
		PriceID: "price_x", LookupKey: "x_monthly", ProductID: "prod_x", Created: created, Metadata: map[string]string{"k": "v"}})
	s.PutSubscription(billingtest.StripeSubscription{ID: "sub_b", Customer: "cus_a", Status: "canceled",
		PriceID: "price_y", Created: created.Add(time.Hour)})
	s.PutSubscription(billingtest.StripeSubscription{ID: "sub_c", Customer: "cus_c", PriceID: "price_x", Created: created})

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

func TestConcurrent(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	const workers, each = 16, 20
	s.FailNext(billingtest.PathPortalSessions, 10, billingtest.ServiceUnavailable())
	var wg sync.WaitGroup
	urls := make(chan string, workers*each)
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.SessionClient()
			for range each {
				ps, err := newSession(t, c, billingtest.CustomerBasic)
				if err != nil {
					errs <- err
					continue
				}
				urls <- ps.URL
				_ = s.Calls()
				_ = s.Connections()
				s.AddCustomer("cus_extra")
			}
		}()
	}
	wg.Wait()
	close(urls)
	close(errs)
	failed := 0
	for err := range errs {
		// A call can draw 3 of the 10 queued 503s and give up.
		if !isCode(err, 503, "") {
			t.Errorf("call failed: %v", err)
		}
		failed++
	}
	seen := map[string]bool{}
	for u := range urls {
		if seen[u] {
			t.Errorf("portal url handed out twice")
		}
		seen[u] = true
	}
	if len(seen) != workers*each-failed || len(s.Sessions()) != len(seen) {
		t.Errorf("%d sessions (fake: %d), want %d", len(seen), len(s.Sessions()), workers*each-failed)
	}
	// Every call is a session or one of the 10 503s.
	if n := s.CallCount(billingtest.PathPortalSessions); n != len(seen)+10 {
		t.Errorf("%d calls, want %d", n, len(seen)+10)
	}
	// A worker may dial while another's connection is on its way back to
	// the pool, so the count is not exact; without reuse it would be about
	// one per call.
	if n := s.Connections(); n > 2*workers {
		t.Errorf("%d connections for %d workers and %d calls: the shared client should reuse them", n, workers, workers*each)
	}
}

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

func isCode(err error, status int, code stripe.ErrorCode) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.HTTPStatusCode == status && se.Code == code
}

func ptr[T any](v T) *T { return &v }

var _ billing.SessionCreator = (*session.Client)(nil)
var _ billing.SubscriptionGetter = (*subscription.Client)(nil)

func TestSubscriptionJSON(t *testing.T) {
	s := billingtest.StartStripe(t)
	sub := billingtest.StripeSubscription{ID: "sub_j", Customer: "cus_j", Status: "trialing", PriceID: billingtest.PricePro,
		LookupKey: billingtest.LookupKeyPro, ProductID: billingtest.ProductPro, Created: time.Unix(1700000000, 0)}
	s.PutSubscription(sub)
	var fromJSON stripe.Subscription
	if err := json.Unmarshal(sub.JSON(), &fromJSON); err != nil {
		t.Fatalf("decode JSON(): %v", err)
	}
	fromAPI, err := s.SubscriptionClient().Get("sub_j", nil)
	if err != nil {
		t.Fatal(err)
	}
	fromAPI.LastResponse = nil
	if diff := cmp.Diff(fromAPI, &fromJSON); diff != "" {
		t.Errorf("JSON() differs from the API's reply (-api +json):\n%s", diff)
	}
	if fromJSON.Customer.ID != "cus_j" || fromJSON.Items.Data[0].Price.Product.ID != billingtest.ProductPro || fromJSON.Status != "trialing" {
		t.Errorf("decoded = %+v", fromJSON)
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

// TestNoGoroutineLeak checks that a closed fake leaves no goroutine
// behind, after slow, dropped and normal calls.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	s := billingtest.NewStripe()
	s.Seed()
	s.FailNext(billingtest.PathPortalSessions, 1, billingtest.Drop())
	s.FailNext(billingtest.PathPortalSessions, 1, billingtest.ServiceUnavailable())
	for range 3 {
		_, _ = newSession(t, s.SessionClient(), billingtest.CustomerPro)
	}
	s.Fail(billingtest.PathPortalSessions, billingtest.Slow(time.Hour))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = newSession(t, s.SessionClient(), billingtest.CustomerPro)
	}()
	if err := s.WaitCalls(context.Background(), billingtest.PathPortalSessions, 6); err != nil {
		t.Fatal(err)
	}
	s.Close()
	<-done
	// Goroutines end asynchronously after Close; wait for them a while.
	var after int
	for range 200 {
		if after = runtime.NumGoroutine(); after <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines before, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
}

// BenchmarkStripe measures a stripe-go call against the fake (client and
// server in this process), the floor under any portal benchmark that uses
// it.
func BenchmarkStripe(b *testing.B) {
	s := billingtest.StartStripe(b)
	s.Seed()
	b.Run("session", func(b *testing.B) {
		c := s.SessionClient()
		b.ReportAllocs()
		for b.Loop() {
			p := &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro), ReturnURL: stripe.String(billingtest.ReturnURL)}
			if _, err := c.New(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("subscription", func(b *testing.B) {
		c := s.SubscriptionClient()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(billingtest.SubscriptionPro, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
