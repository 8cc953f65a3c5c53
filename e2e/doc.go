// Package e2e holds the end-to-end tests of the billing demo
// (examples/demo): the documented usage flow, the six features of the
// hosted portal, the four deep-link flows and the portal URL's single use
// and expiry, each run twice against the demo in-process (package
// examples/demo/app, with the test kit's Stripe emulator in-process too):
// in headless Chromium driven by chromedp (TestBrowser*), whose "Manage
// billing" runs the page's script, and by a plain HTTP client with a
// cookie jar and no JavaScript (TestHTTP*), which submits the forms. Both
// find everything by the documented element ids (agent_test.go), and each
// step is checked on the page, in the demo's store and in the emulator.
//
// It is a module of its own so that chromedp never reaches the library's
// go.mod. Run it with the others (scripts/test) or alone:
//
//	cd e2e && go test ./...
//
// The browser tests need Chromium (Debian: apt-get install chromium;
// another Chrome or Chromium binary through BILLING_E2E_CHROMIUM). Without
// it they skip, saying so, except under CI=true, where they fail. One
// Chromium serves the whole test process, each test in a browser context
// of its own. Each step saves a screenshot of the page under
// artifacts/TEST/ (ignored by git; another folder through
// BILLING_E2E_ARTIFACTS), and a failing step names its screenshot in the
// log, with the page's URL and text.
package e2e
