package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/contafy/billing"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

// The portal handler's allocation budget, and the shortcuts that keep it
// within it exact: the access_token cookie read as net/http reads it, the
// 200 body written as encoding/json writes it, reply headers that no reply
// shares with another.

// maxPortalAllocs bounds the portal handler's allocations per created
// session over an app's bare stripe-go call (the goal of BenchmarkPortal's
// handler-over-bare-allocs/op): cookie, authentication, store lookup,
// cross-origin check, reply and record, with the recorder standing for
// net/http's writer.
const maxPortalAllocs = 10

// staticSessions is a SessionCreator that allocates nothing: it answers
// every call with the same session.
type staticSessions struct{ s *stripe.BillingPortalSession }

func (c staticSessions) New(*stripe.BillingPortalSessionParams) (*stripe.BillingPortalSession, error) {
	return c.s, nil
}

// newStaticSession returns a session with url as Stripe's client would
// decode it.
func newStaticSession(url string) *stripe.BillingPortalSession {
	s := &stripe.BillingPortalSession{ID: "bps_static", URL: url}
	s.LastResponse = &stripe.APIResponse{RequestID: "req_static"}
	return s
}

// raceEnabled reports whether the test binary was built with -race, which
// changes allocation counts.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestPortalAllocs fails when the portal handler allocates more than
// maxPortalAllocs times per request over a bare call. Both sides call a
// SessionCreator that allocates nothing, so the difference is what
// BenchmarkPortal measures over the network: the handler's own work (its
// params included, the bare side builds its own) and the recorder's.
func TestPortalAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector changes allocation counts")
	}
	sc := staticSessions{newStaticSession("https://billing.stripe.com/p/session/test_static")}
	h := newBenchPortal(t, sc)
	r := benchPortalRequest()
	ctx := context.Background()
	handler := testing.AllocsPerRun(200, func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
	bare := testing.AllocsPerRun(200, func() {
		if _, err := bareSession(ctx, sc); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("handler %v allocs/op, bare %v: %v over bare", handler, bare, handler-bare)
	if over := handler - bare; over > maxPortalAllocs {
		t.Errorf("the portal handler allocates %v times per request over a bare call (%v - %v), more than %d", over, handler, bare, maxPortalAllocs)
	}
}

// FuzzCookieAuthenticator checks that CookieAuthenticator hands its
// verifier exactly the cookie value net/http's Request.Cookie finds, for
// any Cookie lines and cookie name, and fails without calling it when
// net/http finds none (or an empty or oversized one).
func FuzzCookieAuthenticator(f *testing.F) {
	for _, s := range [][3]string{
		{"access_token=tok", "", ""},
		{"a=1; access_token=tok; b=2", "", ""},
		{" access_token = tok ", "", ""},
		{`access_token="tok"`, "", ""},
		{`access_token="`, "", ""},
		{`access_token=""`, "", ""},
		{"access_token=t;ok", "", ""},
		{"access_token=a b", "", ""},
		{"access_token=tök; access_token=tok", "", ""},
		{"access_token", "access_token=tok", ""},
		{"ACCESS_TOKEN=tok", "", ""},
		{"access_token=tok\x00", "", ""},
		{"access_token=a=b", "", ""},
		{"", "access_token=tok2", ""},
		{";;;", "x=1;access_token=tok", ""},
		{"sid=1; session=2", "", "session"},
		{"s d=1", "", "s d"},
		{"é=1", "", "é"},
		{"access_token=" + strings.Repeat("A", 4097), "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, line1, line2, name string) {
		checkCookieAuthenticator(t, http.Header{"Cookie": cookieLines(line1, line2)}, name)
	})
}

// cookieLines returns the Cookie lines of a request: line1 alone when
// line2 is empty.
func cookieLines(line1, line2 string) []string {
	if line2 == "" {
		return []string{line1}
	}
	return []string{line1, line2}
}

// checkCookieAuthenticator compares what a CookieAuthenticator named name
// does for a request with header h with what net/http's reading of the
// cookie says it must.
func checkCookieAuthenticator(t *testing.T, h http.Header, name string) {
	t.Helper()
	var got []string
	a := &billing.CookieAuthenticator{Name: name, Verifier: billing.TokenVerifierFunc(func(_ context.Context, token string) (string, error) {
		got = append(got, token)
		return "u_1", nil
	})}
	id, err := a.Authenticate(&http.Request{Header: h})

	lookup := name
	if lookup == "" {
		lookup = billing.DefaultCookieName
	}
	c, cerr := (&http.Request{Header: h}).Cookie(lookup)
	switch {
	case cerr != nil || c.Value == "":
		if !errors.Is(err, billing.ErrNoToken) || len(got) != 0 {
			t.Fatalf("Cookie %q, name %q: net/http finds no value; got id %q, err %v, verifier called with %q", h["Cookie"], lookup, id, err, got)
		}
	case len(c.Value) > 4096:
		if !errors.Is(err, billing.ErrTokenInvalid) || len(got) != 0 {
			t.Fatalf("Cookie %q, name %q: oversized value; got id %q, err %v, verifier called %d times", h["Cookie"], lookup, id, err, len(got))
		}
	default:
		if err != nil || id != "u_1" || len(got) != 1 || got[0] != c.Value {
			t.Fatalf("Cookie %q, name %q: net/http finds %q; got id %q, err %v, verifier called with %q", h["Cookie"], lookup, c.Value, id, err, got)
		}
	}
}

// TestCookieAuthenticatorLimit checks the cookie count limit net/http
// applies (httpcookiemaxnum: by default a header of more than 3000 cookies
// has none), by default and, in a child process each, with GODEBUG
// settings that change it.
func TestCookieAuthenticatorLimit(t *testing.T) {
	many := func(n int) http.Header {
		parts := make([]string, 0, n)
		for range n - 1 {
			parts = append(parts, "c=1")
		}
		return http.Header{"Cookie": {strings.Join(append(parts, "access_token=tok"), "; ")}}
	}
	counts := []int{1, 2, 1499, 1500, 1501, 2999, 3000, 3001, 4001}
	for _, n := range counts {
		checkCookieAuthenticator(t, many(n), "")
		// n cookies in as few bytes as net/http counts them: on one line,
		// and on n/2 lines.
		checkCookieAuthenticator(t, http.Header{"Cookie": {strings.Repeat(";", n-1) + "access_token=tok"}}, "")
		lines := make([]string, n/2, n/2+1)
		for i := range lines {
			lines[i] = ";"
		}
		checkCookieAuthenticator(t, http.Header{"Cookie": append(lines, "access_token=tok")}, "")
		// The same count over two lines.
		h := many(n)
		line := h["Cookie"][0]
		if i := strings.IndexByte(line, ';'); i >= 0 {
			h["Cookie"] = []string{line[:i], line[i+1:]}
			checkCookieAuthenticator(t, h, "")
		}
	}
	if os.Getenv("BILLING_TEST_COOKIE_CHILD") != "" {
		// Proof that the child's setting reaches net/http, so that its
		// checks could fail.
		if os.Getenv("GODEBUG") == "httpcookiemaxnum=1" {
			if _, err := (&http.Request{Header: many(2)}).Cookie(billing.DefaultCookieName); err == nil {
				t.Error("GODEBUG=httpcookiemaxnum=1 does not change net/http's cookie parsing: the test checks nothing")
			}
		}
		return
	}
	if _, err := (&http.Request{Header: many(3001)}).Cookie(billing.DefaultCookieName); err == nil {
		t.Log("this Go's net/http applies no cookie limit by default")
	}
	for _, godebug := range []string{"httpcookiemaxnum=1", "httpcookiemaxnum=0", "httpcookiemaxnum=-1", "httpcookiemaxnum=x", "httpcookiemaxnum=4000"} {
		t.Run(godebug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCookieAuthenticatorLimit$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "GODEBUG="+godebug, "BILLING_TEST_COOKIE_CHILD=1")
			out, err := cmd.CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("--- PASS: TestCookieAuthenticatorLimit")) {
				t.Fatalf("GODEBUG=%s: %v\n%s", godebug, err, out)
			}
		})
	}
}

// FuzzPortalReply checks that the 200 reply is, for any portal URL Stripe
// might answer, byte for byte what encoding/json's Encoder writes for
// {"url","message"}, with the headers of every reply.
func FuzzPortalReply(f *testing.F) {
	for _, u := range []string{
		"https://billing.stripe.com/p/session/test_YWNjdF8xT1F6QmVuY2g",
		"https://billing.stripe.com/p/session?a=1&b=2", "<", ">", `"`, `\`, "\x7f", "\x00\x1f", "é", "\u2028\u2029",
		"\xff\xfe", "\\u0026", " ", "https://example.com/" + strings.Repeat("x", 5000),
	} {
		f.Add(u)
	}
	r := benchPortalRequest()
	f.Fuzz(func(t *testing.T, url string) {
		if url == "" {
			t.Skip("a session without a URL is a 500")
		}
		h := newBenchPortal(t, staticSessions{newStaticSession(url)})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(struct {
			URL     string `json:"url"`
			Message string `json:"message"`
		}{url, billing.SuccessMessage}); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusOK || w.Body.String() != want.String() {
			t.Fatalf("URL %q: %d %q, want 200 %q", url, w.Code, w.Body, want.String())
		}
		if diff := cmp.Diff(replyHeaders(), w.Result().Header); diff != "" {
			t.Fatalf("URL %q: headers (-want +got):\n%s", url, diff)
		}
	})
}

// replyHeaders are the headers of every reply.
func replyHeaders() http.Header {
	return http.Header{
		"Content-Type":           {"application/json"},
		"Cache-Control":          {"no-store"},
		"Referrer-Policy":        {"no-referrer"},
		"X-Content-Type-Options": {"nosniff"},
	}
}

// TestReplyHeadersNotShared: what a middleware does to one reply's header
// values, in place or by Add, leaves every other reply's as they were.
func TestReplyHeadersNotShared(t *testing.T) {
	h := newBenchPortal(t, staticSessions{newStaticSession("https://billing.stripe.com/p/session/test_static")})
	r := benchPortalRequest()
	for i := range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if diff := cmp.Diff(replyHeaders(), w.Header()); w.Code != http.StatusOK || diff != "" {
			t.Fatalf("reply %d: status %d, headers (-want +got):\n%s", i, w.Code, diff)
		}
		hdr := w.Header()
		for k, v := range hdr {
			v[0] = "changed"
			hdr.Add(k, "added")
		}
	}
}
