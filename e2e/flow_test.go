package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSignIn: the printed sign-in link sets the cookie and shows
// the account page with the user's plan; signing out shows no plan.
func TestBrowserSignIn(t *testing.T) {
	d := startDemo(t) // first, so that it stops after the tab closes
	b := newBrowser(t)
	for _, u := range []struct{ token, plan string }{{"tok_basic", "BASIC"}, {"tok_pro", "PRO"}, {"tok_free", "FREE"}} {
		b.navigate("sign in with "+u.token, d.URL+"/login?token="+u.token, 200)
		if got := b.location(); got != d.URL+"/account" {
			t.Fatalf("after login at %s, want %s/account", got, d.URL)
		}
		if got := b.text("#plan"); got != u.plan {
			t.Errorf("%s: #plan %q, want %s", u.token, got, u.plan)
		}
	}
	b.click("sign out", `a[href="/logout"]`, 401)
	b.step("signed out", chromedp.WaitVisible(chromedp.CSS("#error-title")))
	if b.has("#plan") {
		t.Error("a plan is shown after signing out")
	}
	b.navigate("unknown token", d.URL+"/login?token=tok_nope", 401)
}

// TestBrowserUsageFlow is the documented usage flow in a real browser:
// "Manage billing" runs the page's script, which posts to the JSON endpoint
// and follows the url.
func TestBrowserUsageFlow(t *testing.T) {
	d := startDemo(t)
	usageFlow(t, d, &browserAgent{browser: newBrowser(t), demo: d.URL})
}

// TestBrowserPortalFeatures: the six features of the hosted portal.
func TestBrowserPortalFeatures(t *testing.T) {
	d := startDemo(t)
	portalFeatures(t, d, &browserAgent{browser: newBrowser(t), demo: d.URL})
}

// TestBrowserDeepLinks: the four deep-link flows.
func TestBrowserDeepLinks(t *testing.T) {
	d := startDemo(t)
	deepLinks(t, d, &browserAgent{browser: newBrowser(t), demo: d.URL})
}

// TestBrowserExpiry: a portal URL is single use and expires when idle.
func TestBrowserExpiry(t *testing.T) {
	d := startDemo(t)
	expiry(t, d, &browserAgent{browser: newBrowser(t), demo: d.URL})
}

// TestBrowserManageBillingRefused: for a user the portal endpoint refuses,
// the page's script shows the endpoint's message and stays on the page.
func TestBrowserManageBillingRefused(t *testing.T) {
	d := startDemo(t)
	b := newBrowser(t)
	for _, u := range []struct{ token, message string }{
		{"tok_free", "Customer portal is only available for paid subscriptions"},
		{"tok_pro_nocustomer", "Stripe customer not found"},
	} {
		b.navigate("sign in with "+u.token, d.URL+"/login?token="+u.token, 200)
		b.step("manage billing as "+u.token,
			chromedp.Click(chromedp.CSS("#manage-billing-button"), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#portal-error")))
		if got := b.text("#portal-error"); got != u.message {
			t.Errorf("%s: #portal-error %q, want %q", u.token, got, u.message)
		}
		if got := b.location(); got != d.URL+"/account" {
			t.Errorf("%s: at %s, want to stay on the account page", u.token, got)
		}
	}
}
