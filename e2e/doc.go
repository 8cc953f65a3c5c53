// Package e2e holds the end-to-end tests of the billing demo
// (examples/demo): a real browser (headless Chromium driven by chromedp)
// and a plain HTTP client go through the whole usage flow against the demo
// running in-process with the test kit's Stripe emulator: sign in, open the
// portal, change the plan, come back, cancel, let the period pass.
//
// It is a module of its own so that chromedp never reaches the library's
// go.mod. Run it with the others (scripts/test) or alone:
//
//	cd e2e && go test ./...
//
// The browser tests need Chromium (Debian: apt-get install chromium;
// another Chrome or Chromium binary through BILLING_E2E_CHROMIUM). Without
// it they skip, saying so, except under CI=true, where they fail. Each step
// saves a screenshot under artifacts/TEST/ (ignored by git; another folder
// through BILLING_E2E_ARTIFACTS), and a failing step names its screenshot
// in the log.
package e2e
