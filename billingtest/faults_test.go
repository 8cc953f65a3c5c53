package billingtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
)

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
