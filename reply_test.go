package billing_test

// The contract's reply shapes (reply.go), checked independently of the
// handlers' code, and the test helpers the other test files share: a
// write-counting SyncStore and an independent allowlist check with net/url.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
)

const portalPath = "/api/subscription/create-portal-session"

// portalErrorShapes are the contract's error bodies by status (DESIGN.md
// §1); a status with several rows lists each. 400 is checked apart: its
// message says which input was refused.
var portalErrorShapes = map[int][]map[string]string{
	401: {{"error": "Unauthorized", "message": "Authentication required"}},
	403: {
		{"error": "Forbidden", "message": "Customer portal is only available for paid subscriptions"},
		{"error": "Forbidden", "message": "Cross-origin request rejected"},
	},
	404: {{"error": "Not Found", "message": "Stripe customer not found"}},
	405: {{"error": "Method Not Allowed", "message": "Only POST is allowed"}},
	413: {{"error": "Request Entity Too Large", "message": "Request body too large"}},
	500: {{"error": "Internal Server Error", "message": "Failed to create portal session"}},
}

// checkReplyHeaders checks the headers every reply of both handlers
// carries, and Allow exactly on 405.
func checkReplyHeaders(t testing.TB, w *httptest.ResponseRecorder) {
	t.Helper()
	want := map[string]string{
		"Content-Type":           "application/json",
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
		"Allow":                  "",
	}
	if w.Code == http.StatusMethodNotAllowed {
		want["Allow"] = "POST"
	}
	for k, v := range want {
		if got := w.Header().Values(k); (v == "" && len(got) != 0) || (v != "" && (len(got) != 1 || got[0] != v)) {
			t.Errorf("status %d: header %s = %q, want %q", w.Code, k, got, v)
		}
	}
}

// strictStrings decodes body as one JSON object of string values, and
// nothing after it.
func strictStrings(t testing.TB, body []byte) map[string]string {
	t.Helper()
	var m map[string]string
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || dec.More() || m == nil {
		t.Fatalf("reply %q is not one JSON object of strings (%v)", body, err)
	}
	return m
}

// checkPortalReply checks that w is one of the contract's replies, with the
// exact headers, and returns the decoded body.
func checkPortalReply(t testing.TB, w *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	checkReplyHeaders(t, w)
	m := strictStrings(t, w.Body.Bytes())
	switch w.Code {
	case http.StatusOK:
		if len(m) != 2 || m["message"] != billing.SuccessMessage || !strings.HasPrefix(m["url"], "https://billing.stripe.com/p/session/") {
			t.Fatalf("200 reply %q is not {url, message}", w.Body)
		}
	case http.StatusBadRequest:
		if len(m) != 2 || m["error"] != "Bad Request" || m["message"] == "" || len(m["message"]) > 120 {
			t.Fatalf("400 reply %q is not {error: Bad Request, message}", w.Body)
		}
	default:
		for _, want := range portalErrorShapes[w.Code] {
			if len(m) == 2 && m["error"] == want["error"] && m["message"] == want["message"] {
				return m
			}
		}
		t.Fatalf("status %d with body %q is no row of the contract", w.Code, w.Body)
	}
	return m
}

// checkWebhookReply checks a webhook reply: 200 {"received":true,
// "outcome":...} or an error in the contract's {"error","message"} shape,
// with the headers of every reply. It returns the outcome ("" for errors).
func checkWebhookReply(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	checkReplyHeaders(t, w)
	if w.Code == http.StatusOK {
		var rep struct {
			Received bool   `json:"received"`
			Outcome  string `json:"outcome"`
		}
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil || dec.More() || !rep.Received || rep.Outcome == "" {
			t.Fatalf("200 reply %q is not {received: true, outcome}", w.Body)
		}
		return rep.Outcome
	}
	m := strictStrings(t, w.Body.Bytes())
	if len(m) != 2 || m["error"] != http.StatusText(w.Code) || m["message"] == "" {
		t.Fatalf("%d reply %q is not {error, message}", w.Code, w.Body)
	}
	return ""
}

// allowedByNetURL re-checks a return URL that reached Stripe against the
// allowlist entries (origins or path prefixes), with net/url and nothing of
// the library's code: https only, no userinfo, the host in ASCII, equal to
// the entry's but for case, the default port, no backslash, control or non-ASCII byte
// anywhere, a path without dot segments, empty segments or encoded
// separators, and for a prefix entry a path at or below the prefix.
func allowedByNetURL(raw string, allowed []string) bool {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Scheme != "https" || !strings.HasPrefix(raw, "https://") {
		return false
	}
	if p := u.Port(); p != "" && p != "443" {
		return false
	}
	ep := strings.ToLower(u.EscapedPath())
	if strings.Contains(ep, "//") || strings.Contains(ep, "%2f") || strings.Contains(ep, "%5c") || strings.Contains(ep, "%2e") || strings.Contains(ep, "%25") {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for _, a := range allowed {
		au, err := url.Parse(a)
		if err != nil {
			continue
		}
		// Host names compare case-insensitively (the bytes were checked to
		// be ASCII above, so no IDN look-alike passes).
		if !strings.EqualFold(u.Hostname(), au.Hostname()) {
			continue
		}
		prefix := strings.TrimRight(au.Path, "/")
		if prefix == "" || u.Path == prefix || strings.HasPrefix(u.Path, prefix+"/") {
			return true
		}
	}
	return false
}

// countingSync wraps a SyncStore and counts the calls that may write.
type countingSync struct {
	billing.SyncStore
	writes atomic.Int64
}

func (c *countingSync) ApplySubscription(ctx context.Context, ch billing.SubscriptionChange, retain time.Duration) (billing.Outcome, error) {
	c.writes.Add(1)
	return c.SyncStore.ApplySubscription(ctx, ch, retain)
}

func (c *countingSync) LinkCustomer(ctx context.Context, userID, customerID string) (bool, error) {
	c.writes.Add(1)
	return c.SyncStore.LinkCustomer(ctx, userID, customerID)
}

// portalRequest returns a POST to the portal endpoint with the access_token
// cookie of token (none if empty) and body (none if empty).
func portalRequest(token, body string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(http.MethodPost, portalPath, nil)
	} else {
		r = httptest.NewRequest(http.MethodPost, portalPath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.AddCookie(billingtest.Cookie(token))
	}
	return r
}

// webhookPlans is the kit's standard price table. It remains for
// bench_test.go; other tests call billingtest.Prices.
func webhookPlans(testing.TB) billing.PriceTable { return billingtest.Prices() }
