package e2e

import "testing"

// The same scenarios as the browser tests, without JavaScript: a plain
// HTTP client with a cookie jar submits the pages' forms and follows their
// links, finding them by the documented element ids.

func TestHTTPUsageFlow(t *testing.T) {
	d := startDemo(t)
	usageFlow(t, d, &httpAgent{t: t, c: newClient(t), demo: d.URL})
}

func TestHTTPPortalFeatures(t *testing.T) {
	d := startDemo(t)
	portalFeatures(t, d, &httpAgent{t: t, c: newClient(t), demo: d.URL})
}

func TestHTTPDeepLinks(t *testing.T) {
	d := startDemo(t)
	deepLinks(t, d, &httpAgent{t: t, c: newClient(t), demo: d.URL})
}

func TestHTTPExpiry(t *testing.T) {
	d := startDemo(t)
	expiry(t, d, &httpAgent{t: t, c: newClient(t), demo: d.URL})
}
