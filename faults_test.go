package billing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76/billingportal/session"
)

// How a fault row sends its request.
const (
	sendPlain      = iota // ServeHTTP with a background context
	sendDeadline          // the request's context has a deadline (an app's server timeout)
	sendCancel            // the request's context is canceled once the Stripe call arrived
	sendCanceled          // the request's context is canceled before ServeHTTP
	sendDisconnect        // over a real connection that the client closes during the Stripe call
)

// TestFaultMatrix drives the portal handler against the test kit's fake
// Stripe under every fault the issue names, with stripe-go v76's real
// backend (2 retries, as in production; no sleep between retries unless
// the row says so). Each row asserts the status, the body, the number of
// calls Stripe received, that every attempt carried the same
// Idempotency-Key, that no call arrives after the handler returned, and an
// upper bound on the handler's time.
//
// Retries are what stripe-go v76 does (stripe.go, shouldRetry), not what
// one might expect:
//   - retried: connection errors (a dropped connection, a client timeout),
//     409, 429 lock_timeout, 503, and any reply it cannot decode as a
//     Stripe error: an HTML 5xx from a proxy, 502 included;
//   - not retried: a JSON 500, 502 or 504 to a POST (Stripe's idempotency
//     layer would replay it), 429 rate_limit, 404, a Stripe-Should-Retry:
//     false reply, and anything once the request's context is done.
//
// The issue lists "502" among the one-attempt faults: that holds for a 502
// with Stripe's JSON error body (the row "502 JSON"), while a proxy's HTML
// 502 is retried (the row "502 HTML from a proxy").
func TestFaultMatrix(t *testing.T) {
	internalBody := map[string]string{"error": "Internal Server Error", "message": "Failed to create portal session"}
	notFoundBody := map[string]string{"error": "Not Found", "message": "Stripe customer not found"}
	noRetry := billingtest.ServiceUnavailable()
	noRetry.ShouldRetry = "false"
	const slack = time.Second // scheduling on a loaded 2-core machine with -race
	tests := []struct {
		name    string
		next    []billingtest.Fault // armed with FailNext, one call each, in order
		always  *billingtest.Fault  // armed with Fail
		timeout time.Duration       // the HTTP client's timeout per attempt; 0: NewHTTPClient's 10 s
		sleep   bool                // stripe-go's production backoff between retries
		send    int
		status  int
		body    map[string]string // nil: a created session
		calls   int
		sameKey bool // every call carried one Idempotency-Key
		within  time.Duration
	}{
		{name: "503 JSON", always: ptr(billingtest.ServiceUnavailable()), status: 500, body: internalBody, calls: 3, sameKey: true, within: slack},
		{name: "429 lock_timeout", always: ptr(billingtest.LockTimeout()), status: 500, body: internalBody, calls: 3, sameKey: true, within: slack},
		{name: "409 conflict", always: ptr(billingtest.Conflict()), status: 500, body: internalBody, calls: 3, sameKey: true, within: slack},
		{name: "dropped connection", always: ptr(billingtest.Drop()), status: 500, body: internalBody, calls: 3, sameKey: true, within: slack},
		{name: "502 HTML from a proxy", always: ptr(billingtest.BadGateway()), status: 500, body: internalBody, calls: 3, sameKey: true, within: slack},
		{name: "500 HTML", always: ptr(billingtest.HTMLError(500)), status: 500, body: internalBody, calls: 3, sameKey: true, within: slack},
		{name: "504 HTML", always: ptr(billingtest.HTMLError(504)), status: 500, body: internalBody, calls: 3, sameKey: true, within: slack},
		{name: "500 JSON", always: ptr(billingtest.ServerError(500)), status: 500, body: internalBody, calls: 1, within: slack},
		{name: "502 JSON", always: ptr(billingtest.ServerError(502)), status: 500, body: internalBody, calls: 1, within: slack},
		{name: "504 JSON", always: ptr(billingtest.ServerError(504)), status: 500, body: internalBody, calls: 1, within: slack},
		{name: "429 rate_limit", always: ptr(billingtest.RateLimit()), status: 500, body: internalBody, calls: 1, within: slack},
		{name: "503 with Stripe-Should-Retry false", always: &noRetry, status: 500, body: internalBody, calls: 1, within: slack},
		{name: "resource_missing", always: ptr(billingtest.ResourceMissing("customer")), status: 404, body: notFoundBody, calls: 1, within: slack},
		{name: "503 once, then created", next: []billingtest.Fault{billingtest.ServiceUnavailable()}, status: 200, calls: 2, sameKey: true, within: slack},
		{name: "dropped once, lock_timeout once, then created", next: []billingtest.Fault{billingtest.Drop(), billingtest.LockTimeout()}, status: 200, calls: 3, sameKey: true, within: slack},
		// stripe-go sleeps 0.5 s, then 0.75-1 s: at most 1.5 s in all.
		{name: "503 with production backoff", always: ptr(billingtest.ServiceUnavailable()), sleep: true, status: 500, body: internalBody, calls: 3, sameKey: true, within: 1500*time.Millisecond + slack},
		// A client timeout is a connection error to stripe-go: every
		// attempt runs to the timeout, 3 x 150 ms in all.
		{name: "slow beyond the client timeout", always: ptr(billingtest.Slow(time.Hour)), timeout: 150 * time.Millisecond, status: 500, body: internalBody, calls: 3, sameKey: true, within: 450*time.Millisecond + slack},
		// A context deadline (the app's request timeout) ends it at once.
		{name: "slow beyond the request deadline", always: ptr(billingtest.Slow(time.Hour)), send: sendDeadline, status: 500, body: internalBody, calls: 1, within: 150*time.Millisecond + slack},
		{name: "context canceled during the Stripe call", always: ptr(billingtest.Slow(time.Hour)), send: sendCancel, status: 500, body: internalBody, calls: 1, within: slack},
		{name: "client disconnects during the Stripe call", always: ptr(billingtest.Slow(time.Hour)), send: sendDisconnect, status: 500, body: internalBody, calls: 1, within: slack},
		{name: "context canceled before the request", send: sendCanceled, status: 500, body: internalBody, calls: 0, within: slack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := billingtest.StartStripe(t)
			fake.Seed()
			client := fake.HTTPClient()
			if tc.timeout > 0 {
				client = billing.NewHTTPClient(tc.timeout)
				t.Cleanup(client.CloseIdleConnections)
			}
			sc := &session.Client{B: fake.NewBackend(billingtest.BackendConfig{HTTPClient: client, RetrySleep: tc.sleep}), Key: billingtest.TestKey}
			h := billingtest.NewPortalService(t, fake, nil, func(c *billing.PortalConfig) { c.Stripe = sc })
			for _, f := range tc.next {
				fake.FailNext(billingtest.PathPortalSessions, 1, f)
			}
			if tc.always != nil {
				fake.Fail(billingtest.PathPortalSessions, *tc.always)
			}

			start := time.Now()
			w := sendFault(t, h, fake, tc.send)
			elapsed := time.Since(start)

			if w.Code != tc.status {
				t.Errorf("status = %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			got := checkPortalReply(t, w)
			if tc.body == nil {
				delete(got, "url")
				got["message"] = billing.SuccessMessage
			}
			want := tc.body
			if want == nil {
				want = map[string]string{"message": billing.SuccessMessage}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if elapsed > tc.within {
				t.Errorf("handler took %v, bound %v", elapsed, tc.within)
			}
			// No attempt may follow the reply (a retry after a cancel, a
			// goroutine still calling): wait a little, then count.
			time.Sleep(50 * time.Millisecond)
			calls := fake.Calls()
			if len(calls) != tc.calls {
				t.Errorf("Stripe received %d calls, want %d: %+v", len(calls), tc.calls, calls)
			}
			keys := map[string]bool{}
			for _, c := range calls {
				keys[c.IdempotencyKey] = true
			}
			if tc.sameKey && (len(keys) != 1 || keys[""]) {
				t.Errorf("Idempotency-Keys %v, want one key on every attempt", keys)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// sendFault sends a PRO user's portal request to h as the mode says and
// returns the reply the handler wrote.
func sendFault(t *testing.T, h http.Handler, fake *billingtest.Stripe, mode int) *httptest.ResponseRecorder {
	t.Helper()
	r := portalRequest(billingtest.TokenPro, "")
	w := httptest.NewRecorder()
	switch mode {
	case sendPlain:
		h.ServeHTTP(w, r)
	case sendDeadline:
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	case sendCanceled:
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	case sendCancel:
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go cancelOnCall(t, fake, cancel)
		h.ServeHTTP(w, r.WithContext(ctx))
	case sendDisconnect:
		return sendAndDisconnect(t, h, fake)
	}
	return w
}

// cancelOnCall calls cancel once the fake received the first call.
func cancelOnCall(t *testing.T, fake *billingtest.Stripe, cancel func()) {
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := fake.WaitCalls(ctx, billingtest.PathPortalSessions, 1); err != nil {
		t.Errorf("the Stripe call never arrived: %v", err)
	}
	cancel()
}

// sendAndDisconnect serves h on a real server, sends a PRO user's request
// from a client that hangs up once the Stripe call arrived, and returns
// what the handler wrote (recorded on the server side, since the client is
// gone).
func sendAndDisconnect(t *testing.T, h http.Handler, fake *billingtest.Stripe) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	var once sync.Once
	served := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tee := &teeWriter{ResponseWriter: w, rec: rec}
		h.ServeHTTP(tee, r)
		once.Do(func() { close(served) })
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cancelOnCall(t, fake, cancel)
	req := portalRequest(billingtest.TokenPro, "")
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+portalPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	out.Header = req.Header
	if resp, err := client.Do(out); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Errorf("the request completed (%d) though the client hung up", resp.StatusCode)
	}
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not return after the client hung up")
	}
	return rec
}

// teeWriter writes to the connection and to a recorder.
type teeWriter struct {
	http.ResponseWriter
	rec *httptest.ResponseRecorder
}

func (w *teeWriter) WriteHeader(code int) {
	for k, v := range w.ResponseWriter.Header() {
		w.rec.Header()[k] = v
	}
	w.rec.WriteHeader(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	_, _ = w.rec.Write(b)
	return w.ResponseWriter.Write(b)
}
