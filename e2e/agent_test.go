package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/contafy/billing"
	"github.com/contafy/billing/examples/demo/app"
)

// agent is a user of the demo's pages and the emulator's hosted portal,
// through the documented element ids only: a real browser ([browserAgent])
// or an HTTP client without JavaScript ([httpAgent]). Each method is one
// step; a step that fails stops the test.
type agent interface {
	// open loads url (a page of the demo or of the portal); the document
	// it ends on must answer status.
	open(name, url string, status int)
	// signIn opens the /login link of token: it ends on /account.
	signIn(token string)
	// manageBilling presses "Manage billing" on the account page: it ends
	// on the portal's page.
	manageBilling()
	// deepLink submits the account page's deep-link form with the id
	// (#flow-payment-method-update, ...): it ends on the portal, open on
	// the flow's step.
	deepLink(form string)
	// changePlan picks price in the portal's #change-plan form, submits
	// it and the confirmation step if there is one: it ends on the page
	// that says the change is done.
	changePlan(price string)
	// submit submits the portal's form with the id (#cancel,
	// #billing-info, ...) with the fields given set, and the confirmation
	// step (#confirm) if the 303 leads to one: it ends on the page after.
	submit(form string, fields map[string]string)
	// follow follows the link with the id on the current page (#home,
	// ...); the page it loads must answer 200.
	follow(id string)
	// back follows the portal's #return link: through the return sync it
	// ends on /account.
	back()
	// advanceClock presses "Advance clock by a period" on the account
	// page: it ends on /account.
	advanceClock()
	// text is the text of the element with the id on the current page,
	// trimmed; "" when there is none.
	text(id string) string
	// has reports whether the current page has an element with the id.
	has(id string) bool
	// links are the absolute targets of the links inside the element with
	// the id on the current page.
	links(id string) []string
	// url is the current page's URL.
	url() string
}

// user is the account of one demo user, as the store holds it.
func user(t *testing.T, d *app.Demo, id string) (billing.User, billing.View) {
	t.Helper()
	ctx := context.Background()
	u, found, err := d.Store.User(ctx, id)
	if err != nil || !found {
		t.Fatalf("store: user %s: %v, %v", id, found, err)
	}
	v, _, err := billing.ViewOf(ctx, d.Store.(billing.AccountStore), id)
	if err != nil {
		t.Fatalf("store: view of %s: %v", id, err)
	}
	return u, v
}

// usageFlow is the documented usage flow, the five steps: the BASIC user
// signs in, opens the portal, changes to PRO, comes back and sees PRO;
// cancels and sees "ends on …"; advances the clock and sees FREE. Each step
// is checked on the page, in the demo's store and in the emulator. The
// portal URL is single use: opened again after going back, it answers 410.
func usageFlow(t *testing.T, d *app.Demo, a agent) {
	a.signIn("tok_basic")
	if got := a.text("plan"); got != "BASIC" {
		t.Fatalf("signed in: #plan %q, want BASIC", got)
	}
	if got := a.text("renews-on"); !strings.Contains(got, "renews on") {
		t.Errorf("signed in: #renews-on %q, want the renewal date", got)
	}

	a.manageBilling()
	portal := a.url()
	if !strings.HasPrefix(portal, d.Stripe.URL()+"/p/session/") {
		t.Fatalf("Manage billing led to %s, want the emulator's portal page (%s/p/session/...)", portal, d.Stripe.URL())
	}
	if got := a.text("subscription"); !strings.Contains(got, "price_basic") || !strings.Contains(got, "active") {
		t.Errorf("portal: #subscription %q, want price_basic and active", got)
	}

	a.changePlan("price_pro")
	a.back()
	if got := a.text("plan"); got != "PRO" {
		t.Fatalf("back from the plan change: #plan %q, want PRO", got)
	}
	u, _ := user(t, d, "user_basic")
	if u.Plan != billing.Pro {
		t.Errorf("store after the plan change: %+v, want PRO", u)
	}
	if sub, ok := d.Stripe.Subscription(u.SubscriptionID); !ok || sub.PriceID != "price_pro" || sub.Status != "active" {
		t.Errorf("emulator after the plan change: %+v, %v; want active on price_pro", sub, ok)
	}
	a.open("the used portal URL", portal, http.StatusGone)

	a.open("the account page", d.URL+"/account", http.StatusOK)
	a.manageBilling()
	cancelPortal := a.url()
	a.submit("cancel", nil)
	a.back()
	if got := a.text("plan"); got != "PRO" {
		t.Errorf("back from canceling: #plan %q, want PRO until the period ends", got)
	}
	if got := a.text("ends-on"); !strings.Contains(got, "ends on") {
		t.Fatalf("back from canceling: #ends-on %q, want \"… ends on …\"", got)
	}
	if _, v := user(t, d, "user_basic"); !v.CancelAtPeriodEnd || v.EndsAt.IsZero() || v.Plan != billing.Pro {
		t.Errorf("store after canceling: %+v, want PRO canceling at the period end", v)
	}
	a.open("the used portal URL", cancelPortal, http.StatusGone)

	a.open("the account page", d.URL+"/account", http.StatusOK)
	a.advanceClock()
	if got := a.text("plan"); got != "FREE" {
		t.Fatalf("after the period: #plan %q, want FREE", got)
	}
	if u, v := user(t, d, "user_basic"); u.Plan != billing.Free || v.Access {
		t.Errorf("store after the period: %+v %+v, want FREE", u, v)
	}
	if subs := d.Stripe.Subscriptions("cus_demo_basic"); len(subs) != 1 || subs[0].Status != "canceled" {
		t.Errorf("emulator after the period: %+v, want one canceled subscription", subs)
	}
}

// browserAgent is an agent in headless Chromium.
type browserAgent struct {
	*browser
	demo string // the demo's base URL
}

func (a *browserAgent) open(name, url string, status int) {
	a.t.Helper()
	a.navigate(name, url, status)
}

func (a *browserAgent) signIn(token string) {
	a.t.Helper()
	a.navigate("sign in with "+token, a.demo+"/login?token="+token, http.StatusOK)
	if got := a.location(); got != a.demo+"/account" {
		a.t.Fatalf("signed in at %s, want %s/account", got, a.demo)
	}
}

// manageBilling clicks the button, whose script posts to the JSON endpoint
// and follows the url it answers.
func (a *browserAgent) manageBilling() {
	a.t.Helper()
	a.click("manage billing", "#manage-billing-button", http.StatusOK)
}

func (a *browserAgent) deepLink(button string) {
	a.t.Helper()
	a.click("deep link "+button, "#"+button+` [type="submit"]`, http.StatusOK)
}

func (a *browserAgent) changePlan(price string) {
	a.t.Helper()
	choice := `#change-plan input[name="price"][value="` + price + `"]`
	a.step("pick "+price, chromedp.Click(chromedp.CSS(choice), chromedp.NodeVisible))
	a.click("change the plan", `#change-plan [type="submit"]`, http.StatusOK)
	if a.has("confirm") {
		a.click("confirm the change", `#confirm [type="submit"]`, http.StatusOK)
	}
	if !a.has("return") {
		a.fail("plan changed", a.screenshot("plan changed"), "no #return on the page after the change")
	}
}

// fill sets the field of the form: a radio button with the value is
// checked, any other field gets the value, as a user would.
const fill = `(form, name, value) => {
	const fields = document.querySelectorAll("#" + form + " [name='" + name + "']");
	if (fields.length === 0) throw new Error("#" + form + " has no field " + name);
	for (const f of fields) {
		if (f.type === "radio" || f.type === "checkbox") {
			if (f.value === value) { f.click(); return; }
		} else { f.value = value; return; }
	}
	throw new Error("#" + form + " has no " + name + " choice " + value);
}`

func (a *browserAgent) submit(form string, fields map[string]string) {
	a.t.Helper()
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		js := fmt.Sprintf("(%s)(%q, %q, %q)", fill, form, name, fields[name])
		a.step("fill "+form+" "+name, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[any](js)(ctx, t)
			return err
		}))
	}
	a.click("submit #"+form, "#"+form+` [type="submit"]`, http.StatusOK)
	if a.has("confirm") {
		a.click("confirm", `#confirm [type="submit"]`, http.StatusOK)
	}
}

func (a *browserAgent) follow(id string) {
	a.t.Helper()
	a.click("follow #"+id, "#"+id, http.StatusOK)
}

func (a *browserAgent) back() {
	a.t.Helper()
	a.click("back to the app", "#return", http.StatusOK)
	if got := a.location(); got != a.demo+"/account" {
		a.t.Fatalf("back at %s, want %s/account", got, a.demo)
	}
}

func (a *browserAgent) advanceClock() {
	a.t.Helper()
	a.click("advance the clock", "#advance-clock-button", http.StatusOK)
}

func (a *browserAgent) text(id string) string {
	if !a.browser.has("#" + id) {
		return ""
	}
	return a.browser.text("#" + id)
}

func (a *browserAgent) has(id string) bool { return a.browser.has("#" + id) }

func (a *browserAgent) links(id string) []string {
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	js := fmt.Sprintf("Array.from(document.querySelectorAll(%q)).map(a => a.href)", "#"+id+" a[href]")
	hrefs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		a.t.Fatalf("after step %d: links of #%s: %v", a.n, id, err)
	}
	return hrefs
}

func (a *browserAgent) url() string { return a.location() }

// httpAgent is an agent without JavaScript: forms and links only.
type httpAgent struct {
	t    *testing.T
	c    *client
	demo string
	p    *page
}

func (a *httpAgent) load(name string, status int, f func() *page) {
	a.t.Helper()
	start := time.Now()
	a.p = f()
	if a.p.Status != status {
		a.t.Fatalf("%s: %s answered %d, want %d (hops %+v)\n%s", name, a.p.URL, a.p.Status, status, a.p.Hops, indent(a.p.Body))
	}
	a.t.Logf("%s (%v)", name, time.Since(start).Round(time.Millisecond))
}

func (a *httpAgent) open(name, url string, status int) {
	a.t.Helper()
	a.load(name, status, func() *page { return a.c.get(url) })
}

func (a *httpAgent) signIn(token string) {
	a.t.Helper()
	a.open("sign in with "+token, a.demo+"/login?token="+token, http.StatusOK)
	if h := a.p.Hops; len(h) != 2 || h[0].Status != http.StatusSeeOther || a.p.URL.String() != a.demo+"/account" {
		a.t.Fatalf("sign in: hops %+v, want a 303 to /account", h)
	}
}

// form returns the form with the id on the current page.
func (a *httpAgent) form(id string) *form {
	a.t.Helper()
	f := a.p.form(id)
	if f == nil {
		a.t.Fatalf("%s has no form #%s:\n%s", a.p.URL, id, indent(a.p.Body))
	}
	return f
}

// send submits f, which must answer 303 (then the page it leads to loads).
func (a *httpAgent) send(name string, f *form) {
	a.t.Helper()
	a.load(name, http.StatusOK, func() *page { return a.c.submit(f) })
	if h := a.p.Hops; len(h) < 2 || h[0].Status != http.StatusSeeOther {
		a.t.Fatalf("%s: hops %+v, want a 303 first", name, h)
	}
}

// manageBilling submits the button's form (POST /billing/portal), as a
// browser without JavaScript does.
func (a *httpAgent) manageBilling() {
	a.t.Helper()
	a.send("manage billing", a.form("manage-billing"))
}

func (a *httpAgent) deepLink(button string) {
	a.t.Helper()
	a.send("deep link "+button, a.form(button))
}

func (a *httpAgent) changePlan(price string) {
	a.t.Helper()
	f := a.form("change-plan")
	if !slices.Contains(f.inputs["price"], price) {
		a.t.Fatalf("#change-plan offers prices %v, want %s among them", f.inputs["price"], price)
	}
	f.values.Set("price", price)
	a.send("change the plan to "+price, f)
	if a.p.form("confirm") != nil {
		a.send("confirm the change", a.form("confirm"))
	}
	if a.p.byID("return") == nil {
		a.t.Fatalf("no #return after the change:\n%s", indent(a.p.Body))
	}
}

func (a *httpAgent) submit(id string, fields map[string]string) {
	a.t.Helper()
	f := a.form(id)
	for k, v := range fields {
		f.values.Set(k, v)
	}
	a.send("submit #"+id, f)
	if a.p.form("confirm") != nil {
		a.send("confirm", a.form("confirm"))
	}
}

func (a *httpAgent) follow(id string) {
	a.t.Helper()
	href := a.p.href(id)
	if href == "" {
		a.t.Fatalf("%s has no link #%s:\n%s", a.p.URL, id, indent(a.p.Body))
	}
	a.open("follow #"+id, href, http.StatusOK)
}

func (a *httpAgent) back() {
	a.t.Helper()
	href := a.p.href("return")
	if href == "" {
		a.t.Fatalf("%s has no #return link:\n%s", a.p.URL, indent(a.p.Body))
	}
	a.open("back to the app", href, http.StatusOK)
	if a.p.URL.String() != a.demo+"/account" {
		a.t.Fatalf("back at %s (hops %+v), want %s/account", a.p.URL, a.p.Hops, a.demo)
	}
}

func (a *httpAgent) advanceClock() {
	a.t.Helper()
	a.send("advance the clock", a.form("advance-clock"))
}

func (a *httpAgent) text(id string) string    { return a.p.text(id) }
func (a *httpAgent) has(id string) bool       { return a.p.byID(id) != nil }
func (a *httpAgent) links(id string) []string { return a.p.links(id) }
func (a *httpAgent) url() string              { return a.p.URL.String() }
