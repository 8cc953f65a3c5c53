package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSignIn: the printed sign-in link sets the cookie and shows
// the account page with the user's plan; signing out shows no plan.
func TestBrowserSignIn(t *testing.T) {
	d := startDemo(t) // first, so that it stops after the browser
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
