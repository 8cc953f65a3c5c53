package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/stripe/stripe-go/v76"
)

var planElement = regexp.MustCompile(`<span id="plan">([A-Z]+)</span>`)

// planOf returns the text of the account page's #plan element.
func planOf(page string) (string, bool) {
	m := planElement.FindStringSubmatch(page)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that each 303 can be checked.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches u and returns the status, the Location and the body.
func get(t *testing.T, c *http.Client, u string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// postForm posts form to u as a same-origin browser form would.
func postForm(t *testing.T, c *http.Client, base, path string, form url.Values) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// signIn opens the login link of token and returns the client holding the
// cookie.
func signIn(t *testing.T, base, token string) *http.Client {
	t.Helper()
	c := browser(t)
	status, loc, _ := get(t, c, base+"/login?token="+url.QueryEscape(token))
	if status != http.StatusSeeOther || loc != "/account" {
		t.Fatalf("login with %s: %d to %q, want 303 to /account", token, status, loc)
	}
	return c
}

func TestDemoLogin(t *testing.T) {
	base, out := startDemo(t, nil)
	for _, u := range defaultUsers {
		if want := "  " + base + "/login?token=" + u.Token + "\n"; !strings.Contains(out.String(), want) {
			t.Errorf("no login link for %s", u.ID)
		}
	}

	resp, err := browser(t).Get(base + "/login?token=tok_basic")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v, want one", cookies)
	}
	c := cookies[0]
	if c.Name != "access_token" || c.Value != "tok_basic" || c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %+v, want access_token=tok_basic; Path=/; HttpOnly; SameSite=Lax", c)
	}

	for _, token := range []string{"", "tok_nope"} {
		status, _, body := get(t, browser(t), base+"/login?token="+token)
		if status != http.StatusUnauthorized || !strings.Contains(body, "unknown or expired") {
			t.Errorf("login with %q: %d %q, want 401", token, status, body)
		}
	}

	// Signing out clears the cookie.
	b := signIn(t, base, "tok_pro")
	if status, _, _ := get(t, b, base+"/account"); status != 200 {
		t.Fatalf("account after login: %d", status)
	}
	if status, loc, _ := get(t, b, base+"/logout"); status != http.StatusSeeOther || loc != "/account" {
		t.Fatalf("logout: %d to %q", status, loc)
	}
	if status, _, _ := get(t, b, base+"/account"); status != http.StatusUnauthorized {
		t.Errorf("account after logout: %d, want 401", status)
	}
}

func TestDemoAccountPage(t *testing.T) {
	base, _ := startDemo(t, nil)
	for _, u := range defaultUsers {
		status, _, page := get(t, signIn(t, base, u.Token), base+"/account")
		if plan, ok := planOf(page); status != 200 || !ok || plan != u.Plan {
			t.Errorf("%s: %d #plan %q, want 200 and %s", u.ID, status, plan, u.Plan)
		}
		for _, id := range []string{`id="manage-billing"`, `action="/billing/portal"`, `<html lang="en">`} {
			if !strings.Contains(page, id) {
				t.Errorf("%s: the page lacks %s", u.ID, id)
			}
		}
	}
	status, _, page := get(t, browser(t), base+"/account")
	if status != http.StatusUnauthorized || strings.Contains(page, `id="plan"`) {
		t.Errorf("account without a cookie: %d %q, want 401 without a plan", status, page)
	}
}

func TestDemoPortalForm(t *testing.T) {
	base, out := startDemo(t, nil)
	for _, tc := range []struct {
		token  string
		form   url.Values
		status int
		want   string // in the page, for an error
	}{
		{"tok_basic", nil, http.StatusSeeOther, ""},
		{"tok_pro", nil, http.StatusSeeOther, ""},
		{"tok_pro", url.Values{"flow": {"payment_method_update"}}, http.StatusSeeOther, ""},
		{"tok_pro", url.Values{"flow": {"subscription_cancel"}}, http.StatusSeeOther, ""},
		{"tok_pro", url.Values{"flow": {"subscription_update"}}, http.StatusSeeOther, ""},
		{"tok_pro", url.Values{"flow": {"subscription_update_confirm"}, "price": {"price_basic"}}, http.StatusSeeOther, ""},
		{"tok_pro", url.Values{"flow": {"subscription_update_confirm"}, "price": {"price_gold"}}, http.StatusBadRequest, "Pick one of the plan"},
		{"tok_pro", url.Values{"flow": {"nope"}}, http.StatusBadRequest, "Unknown flow"},
		{"tok_free", nil, http.StatusForbidden, "Customer portal is only available for paid subscriptions"},
		{"tok_free", url.Values{"flow": {"subscription_cancel"}}, http.StatusForbidden, "Customer portal is only available for paid subscriptions"},
		{"tok_pro_nocustomer", nil, http.StatusNotFound, "Stripe customer not found"},
		{"", nil, http.StatusUnauthorized, "Authentication required"},
	} {
		t.Run(tc.token+" "+tc.form.Encode(), func(t *testing.T) {
			c := browser(t)
			if tc.token != "" {
				c = signIn(t, base, tc.token)
			}
			status, loc, page := postForm(t, c, base, "/billing/portal", tc.form)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, page)
			}
			if status == http.StatusSeeOther && !strings.HasPrefix(loc, "http") {
				t.Errorf("Location %q, want the portal URL", loc)
			}
			if !strings.Contains(page, tc.want) {
				t.Errorf("page lacks %q: %s", tc.want, page)
			}
		})
	}

	// A cross-origin form post is refused before any work.
	c := signIn(t, base, "tok_pro")
	req, _ := http.NewRequest(http.MethodPost, base+"/billing/portal", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", resp.StatusCode)
	}
	if status, _, _ := get(t, c, base+"/billing/portal"); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /billing/portal: %d, want 405", status)
	}

	_, logs, _ := strings.Cut(out.String(), "listening on "+base+"\n")
	for _, secret := range []string{"tok_", "access_token", "/p/session/", "sk_test"} {
		if strings.Contains(logs, secret) {
			t.Errorf("%q reached the log:\n%s", secret, logs)
		}
	}
}

// TestDemoAdvanceClock: the account page's clock button moves the
// emulator's clock by a period, in-process or over HTTP (a billing
// emulator as -stripe-url): a subscription canceled at the period end ends
// and the plan is FREE; with a Stripe that has no clock the button is
// absent and the route answers 501; a clock that fails is a 500 page.
func TestDemoAdvanceClock(t *testing.T) {
	cancelAndAdvance := func(t *testing.T, base string, emu *billingtest.Stripe, subID string) {
		t.Helper()
		p := &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)}
		if _, err := emu.API().Subscriptions.Update(subID, p); err != nil {
			t.Fatal(err)
		}
		if err := emu.WaitDeliveries(context.Background()); err != nil { // the webhook
			t.Fatal(err)
		}
		c := signIn(t, base, "tok_basic")
		if _, _, page := get(t, c, base+"/account"); !strings.Contains(page, `id="advance-clock"`) || !strings.Contains(page, `id="ends-on"`) {
			t.Fatalf("account page without the clock button or the end date:\n%s", page)
		}
		status, loc, _ := postForm(t, c, base, "/billing/advance-clock", nil)
		if status != http.StatusSeeOther || loc != "/account?done=clock" {
			t.Fatalf("advance the clock: %d to %q, want 303 to /account?done=clock", status, loc)
		}
		_, _, page := get(t, c, base+loc)
		if plan, _ := planOf(page); plan != "FREE" || !strings.Contains(page, `id="message"`) {
			t.Errorf("after the period: #plan %q, want FREE and the note:\n%s", plan, page)
		}
	}
	t.Run("in-process", func(t *testing.T) {
		d, _ := startApp(t, nil)
		cancelAndAdvance(t, d.URL, d.Stripe, subscriptionOf(t, d, "user_basic"))
	})
	t.Run("billing emulator", func(t *testing.T) {
		// Its clock through POST /emulator/clock/advance on its address.
		emu := billingtest.StartEmulator(t, billingtest.EmulatorConfig{})
		base, _ := startDemo(t, map[string]string{"STRIPE_API_URL": emu.URL(), "STRIPE_SECRET_KEY": billingtest.TestKey})
		c := signIn(t, base, "tok_basic")
		before := emu.Now()
		status, loc, page := postForm(t, c, base, "/billing/advance-clock", nil)
		if status != http.StatusSeeOther || loc != "/account?done=clock" {
			t.Fatalf("advance the clock: %d to %q, want 303 to /account?done=clock:\n%s", status, loc, page)
		}
		if moved := emu.Now().Sub(before); moved < 721*time.Hour || moved > 722*time.Hour {
			t.Errorf("the emulator's clock moved %v, want 721h", moved)
		}
	})
	t.Run("no clock", func(t *testing.T) {
		base, _ := startDemo(t, map[string]string{"STRIPE_SECRET_KEY": "sk_test_nowhere"})
		c := signIn(t, base, "tok_basic")
		if _, _, page := get(t, c, base+"/account"); strings.Contains(page, `id="advance-clock"`) {
			t.Error("a clock button with Stripe's API")
		}
		if status, _, _ := postForm(t, c, base, "/billing/advance-clock", nil); status != http.StatusNotImplemented {
			t.Errorf("advance the clock of Stripe's API: %d, want 501", status)
		}
	})
	t.Run("clock down", func(t *testing.T) {
		base, _ := startDemo(t, nil, "-stripe-url", "http://127.0.0.1:1")
		c := signIn(t, base, "tok_basic")
		if status, _, page := postForm(t, c, base, "/billing/advance-clock", nil); status != http.StatusInternalServerError || !strings.Contains(page, "could not be advanced") {
			t.Errorf("advance a clock that is down: %d, want 500:\n%s", status, page)
		}
	})
}
