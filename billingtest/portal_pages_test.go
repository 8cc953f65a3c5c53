package billingtest_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

// browser walks the hosted pages as a user without JavaScript does: GET
// pages, submit their forms, follow 303s, with a cookie jar. It reads the
// pages only by the documented element ids.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T, s *billingtest.Stripe) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: t, c: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is a fetched page.
type page struct {
	url    string
	status int
	body   string
	// location is a redirect's Location, resolved.
	location string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{url: req.URL.String(), status: resp.StatusCode, body: string(body)}
	if loc, err := resp.Location(); err == nil {
		p.location = loc.String()
	}
	return p
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// follow GETs p's redirect, which must be a 303.
func (b *browser) follow(p page) page {
	b.t.Helper()
	if p.status != http.StatusSeeOther || p.location == "" {
		b.t.Fatalf("%s answered %d (location %q), want 303; body:\n%s", p.url, p.status, p.location, p.body)
	}
	return b.get(p.location)
}

var (
	inputRE = regexp.MustCompile(`<(?:input|select)\b[^>]*>`)
	attrRE  = regexp.MustCompile(`([a-z-]+)(?:="([^"]*)")?`)
	formRE  = regexp.MustCompile(`(?s)<form\b[^>]*\bid="([^"]+)"[^>]*>(.*?)</form>`)
)

func attrs(tag string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRE.FindAllStringSubmatch(strings.TrimSuffix(strings.TrimPrefix(tag, "<"), ">"), -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// form is a form of a page, found by id.
type form struct {
	action string
	inputs []map[string]string // each input's attributes
}

func (p page) form(t *testing.T, id string) form {
	t.Helper()
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] != id {
			continue
		}
		open := m[0][:strings.Index(m[0], ">")+1]
		f := form{action: attrs(open)["action"]}
		for _, in := range inputRE.FindAllString(m[2], -1) {
			f.inputs = append(f.inputs, attrs(in))
		}
		return f
	}
	t.Fatalf("%s has no form#%s:\n%s", p.url, id, p.body)
	return form{}
}

// has reports whether the page has an element with the id.
func (p page) has(id string) bool { return strings.Contains(p.body, `id="`+id+`"`) }

// text returns the text of the element with the id (tags stripped).
func (p page) text(id string) string {
	i := strings.Index(p.body, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(p.body[:i], "<")
	tag := p.body[start+1:]
	name := tag[:strings.IndexAny(tag, " >")]
	rest := p.body[i:]
	rest = rest[strings.Index(rest, ">")+1:]
	depth, end := 1, 0
	for depth > 0 {
		j := strings.Index(rest[end:], "<")
		if j < 0 {
			end = len(rest)
			break
		}
		end += j
		switch {
		case strings.HasPrefix(rest[end:], "</"+name):
			depth--
		case strings.HasPrefix(rest[end:], "<"+name+" ") || strings.HasPrefix(rest[end:], "<"+name+">"):
			depth++
		}
		if depth > 0 {
			end++
		}
	}
	return html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(rest[:end], " "))
}

// values returns the values of the inputs named name.
func (f form) values(name string) []string {
	var out []string
	for _, in := range f.inputs {
		if in["name"] == name {
			out = append(out, in["value"])
		}
	}
	return out
}

// submit posts the form from page p as a browser does: hidden and text
// inputs with their values, the checked radio of each group, then set's
// values over them.
func (b *browser) submit(p page, id string, set map[string]string) page {
	b.t.Helper()
	f := p.form(b.t, id)
	vals := url.Values{}
	for _, in := range f.inputs {
		name := in["name"]
		if name == "" {
			continue
		}
		switch in["type"] {
		case "radio", "checkbox":
			if _, ok := in["checked"]; ok {
				vals.Set(name, in["value"])
			}
		default:
			vals.Set(name, in["value"])
		}
	}
	for k, v := range set {
		vals.Set(k, v)
	}
	base, _ := url.Parse(p.url)
	action, err := base.Parse(f.action)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(vals.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// portal creates a portal session for the customer through stripe-go and
// returns its URL.
func portal(t *testing.T, s *billingtest.Stripe, p *stripe.BillingPortalSessionParams) string {
	t.Helper()
	if p.ReturnURL == nil && p.Configuration == nil {
		p.ReturnURL = stripe.String(billingtest.ReturnURL)
	}
	ps, err := s.SessionClient().New(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ps.URL, s.URL()+"/p/session/") {
		t.Fatalf("session url %q is not on the emulator %s", ps.URL, s.URL())
	}
	return ps.URL
}

func startPortal(t *testing.T) *billingtest.Stripe {
	s := billingtest.StartEmulator(t, billingtest.EmulatorConfig{})
	s.Seed()
	return s
}

// TestPortalFeatures walks each of the six features of the hosted portal
// and checks the state and the events each change leaves.
func TestPortalFeatures(t *testing.T) {
	tests := []struct {
		name string
		walk func(t *testing.T, s *billingtest.Stripe, b *browser, home page) page // returns the last page
		want []string                                                              // events emitted
	}{
		{"view subscription", func(t *testing.T, s *billingtest.Stripe, b *browser, home page) page {
			if txt := home.text("subscription"); !strings.Contains(txt, billingtest.PriceBasic) || !strings.Contains(txt, "active") {
				t.Errorf("#subscription = %q, want the price id and status", txt)
			}
			return home
		}, nil},
		{"update payment method", func(t *testing.T, s *billingtest.Stripe, b *browser, home page) page {
			done := b.follow(b.submit(home, "payment-method", map[string]string{"card": "mastercard"}))
			if pms := s.PaymentMethods(billingtest.CustomerBasic); len(pms) != 1 || pms[0].Brand != "mastercard" {
				t.Errorf("payment methods = %+v", pms)
			}
			if c, _ := s.Customer(billingtest.CustomerBasic); c.DefaultPaymentMethod == "" {
				t.Error("no default payment method")
			}
			again := b.get(home.url)
			if txt := again.text("payment-methods"); !strings.Contains(txt, "4444") || !strings.Contains(txt, "default") {
				t.Errorf("#payment-methods = %q", txt)
			}
			return done
		}, []string{"payment_method.attached", "customer.updated"}},
		{"billing history", func(t *testing.T, s *billingtest.Stripe, b *browser, home page) page {
			// A plan change through the API makes an invoice to download.
			if _, err := s.API().Subscriptions.Update(billingtest.SubscriptionBasic, &stripe.SubscriptionParams{
				Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PricePro)}}}); err != nil {
				t.Fatal(err)
			}
			home = b.get(home.url)
			links := regexp.MustCompile(`class="download" href="([^"]+)"`).FindAllStringSubmatch(home.body[strings.Index(home.body, `id="invoices"`):], -1)
			if len(links) == 0 {
				t.Fatalf("#invoices has no download link:\n%s", home.body)
			}
			resp, err := b.c.Get(html.UnescapeString(links[0][1]))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(string(body), "%PDF-") {
				t.Errorf("download: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			return home
		}, []string{"customer.subscription.updated", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"}},
		{"change plan", func(t *testing.T, s *billingtest.Stripe, b *browser, home page) page {
			f := home.form(t, "change-plan")
			if diff := cmp.Diff([]string{billingtest.PriceBasic, billingtest.PricePro}, f.values("price")); diff != "" {
				t.Errorf("price inputs (-want +got):\n%s", diff)
			}
			confirm := b.follow(b.submit(home, "change-plan", map[string]string{"price": billingtest.PricePro}))
			if !strings.Contains(confirm.text("summary"), "Pro") {
				t.Errorf("confirm step = %q", confirm.text("summary"))
			}
			done := b.follow(b.submit(confirm, "confirm", nil))
			if sub, _ := s.Subscription(billingtest.SubscriptionBasic); sub.PriceID != billingtest.PricePro {
				t.Errorf("price = %s, want %s", sub.PriceID, billingtest.PricePro)
			}
			return done
		}, []string{"customer.subscription.updated", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"}},
		{"cancel", func(t *testing.T, s *billingtest.Stripe, b *browser, home page) page {
			confirm := b.follow(b.submit(home, "cancel", nil))
			done := b.follow(b.submit(confirm, "confirm", nil))
			sub, _ := s.Subscription(billingtest.SubscriptionBasic)
			if !sub.CancelAtPeriodEnd || sub.Status != "active" {
				t.Errorf("after cancel: %+v, want active and canceling at period end", sub)
			}
			home = b.get(home.url)
			if home.has("cancel") || !home.has("renew") || !strings.Contains(home.text("subscription"), "Cancels on") {
				t.Errorf("home after cancel: #cancel %v #renew %v #subscription %q", home.has("cancel"), home.has("renew"), home.text("subscription"))
			}
			return done
		}, []string{"customer.subscription.updated"}},
		{"update billing information", func(t *testing.T, s *billingtest.Stripe, b *browser, home page) page {
			f := home.form(t, "billing-info")
			for _, name := range []string{"email", "name", "address[line1]", "address[city]", "address[postal_code]", "address[country]"} {
				if len(f.values(name)) != 1 {
					t.Errorf("#billing-info has no input %s", name)
				}
			}
			done := b.follow(b.submit(home, "billing-info", map[string]string{"email": "new@example.com", "address[city]": "Berlin", "address[country]": "DE"}))
			if c, _ := s.Customer(billingtest.CustomerBasic); c.Email != "new@example.com" || c.Address.City != "Berlin" {
				t.Errorf("customer = %+v", c)
			}
			return done
		}, []string{"customer.updated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startPortal(t)
			b := newBrowser(t, s)
			u := portal(t, s, &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerBasic)})
			home := b.get(u)
			if home.status != 200 || !strings.Contains(home.body, `<html lang="en">`) {
				t.Fatalf("portal = %d:\n%s", home.status, home.body)
			}
			for _, id := range []string{"subscription", "payment-methods", "invoices", "change-plan", "cancel", "billing-info", "return"} {
				if !home.has(id) {
					t.Errorf("the portal home has no #%s", id)
				}
			}
			n := len(s.Events())
			last := tt.walk(t, s, b, home)
			if diff := cmp.Diff(tt.want, eventTypes(s, n)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if !last.has("return") {
				t.Errorf("%s has no #return", last.url)
			}
			if last.url != home.url && !last.has("confirmation") {
				t.Errorf("%s is not a confirmation page:\n%s", last.url, last.body)
			}
			// Back to the app, through the emulator; then the URL is spent.
			back := b.get(strings.TrimSuffix(u, "/") + "/return")
			if back.status != http.StatusSeeOther || back.location != billingtest.ReturnURL {
				t.Errorf("#return = %d to %q, want 303 to %s", back.status, back.location, billingtest.ReturnURL)
			}
			if again := b.get(u); again.status != http.StatusGone || !again.has("expired") {
				t.Errorf("reused session = %d, want 410 with #expired", again.status)
			}
		})
	}
}

// TestPortalConfiguration checks that the page honours the session's
// configuration: features off, the prices a plan change may pick, the
// quantity, cancellation at once, the locale and the return URL.
func TestPortalConfiguration(t *testing.T) {
	s := startPortal(t)
	api := s.API()
	team, err := api.Prices.New(&stripe.PriceParams{Product: stripe.String(billingtest.ProductPro), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(5000), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	strict, err := api.BillingPortalConfigurations.New(&stripe.BillingPortalConfigurationParams{
		DefaultReturnURL: stripe.String("https://app.example.com/strict"),
		Features: &stripe.BillingPortalConfigurationFeaturesParams{
			CustomerUpdate:      &stripe.BillingPortalConfigurationFeaturesCustomerUpdateParams{Enabled: stripe.Bool(false)},
			InvoiceHistory:      &stripe.BillingPortalConfigurationFeaturesInvoiceHistoryParams{Enabled: stripe.Bool(false)},
			PaymentMethodUpdate: &stripe.BillingPortalConfigurationFeaturesPaymentMethodUpdateParams{Enabled: stripe.Bool(false)},
			SubscriptionCancel: &stripe.BillingPortalConfigurationFeaturesSubscriptionCancelParams{Enabled: stripe.Bool(true),
				Mode: stripe.String("immediately")},
			SubscriptionUpdate: &stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateParams{Enabled: stripe.Bool(true),
				DefaultAllowedUpdates: stripe.StringSlice([]string{"price", "quantity"}),
				Products: []*stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateProductParams{
					{Product: stripe.String(billingtest.ProductPro), Prices: stripe.StringSlice([]string{team.ID})}}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	off, err := api.BillingPortalConfigurations.New(&stripe.BillingPortalConfigurationParams{
		DefaultReturnURL: stripe.String(billingtest.ReturnURL),
		Features: &stripe.BillingPortalConfigurationFeaturesParams{
			CustomerUpdate: &stripe.BillingPortalConfigurationFeaturesCustomerUpdateParams{Enabled: stripe.Bool(true),
				AllowedUpdates: stripe.StringSlice([]string{"email"})},
			InvoiceHistory:      &stripe.BillingPortalConfigurationFeaturesInvoiceHistoryParams{Enabled: stripe.Bool(true)},
			PaymentMethodUpdate: &stripe.BillingPortalConfigurationFeaturesPaymentMethodUpdateParams{Enabled: stripe.Bool(true)},
			SubscriptionCancel:  &stripe.BillingPortalConfigurationFeaturesSubscriptionCancelParams{Enabled: stripe.Bool(false)},
			SubscriptionUpdate:  &stripe.BillingPortalConfigurationFeaturesSubscriptionUpdateParams{Enabled: stripe.Bool(false)},
		}})
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, s)
	t.Run("strict", func(t *testing.T) {
		u := portal(t, s, &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro),
			Configuration: stripe.String(strict.ID), Locale: stripe.String("de"), ReturnURL: stripe.String("https://app.example.com/de")})
		home := b.get(u)
		if !strings.Contains(home.body, `<html lang="de">`) {
			t.Errorf("no lang=de:\n%s", home.body[:200])
		}
		for id, want := range map[string]bool{"subscription": true, "change-plan": true, "cancel": true, "return": true,
			"payment-methods": false, "invoices": false, "billing-info": false} {
			if home.has(id) != want {
				t.Errorf("#%s present = %v, want %v", id, home.has(id), want)
			}
		}
		f := home.form(t, "change-plan")
		if diff := cmp.Diff([]string{team.ID}, f.values("price")); diff != "" || len(f.values("quantity")) != 1 {
			t.Errorf("price inputs (-want +got):\n%s, quantity inputs %v", diff, f.values("quantity"))
		}
		// A price the configuration does not offer is refused.
		if p := b.submit(home, "change-plan", map[string]string{"price": billingtest.PriceBasic}); p.status != http.StatusBadRequest || !p.has("error") {
			t.Errorf("a price not offered: %d", p.status)
		}
	})
	t.Run("quantity", func(t *testing.T) {
		u := portal(t, s, &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro), Configuration: stripe.String(strict.ID)})
		home := b.get(u)
		if p := b.submit(home, "change-plan", map[string]string{"price": team.ID, "quantity": "0"}); p.status != http.StatusBadRequest {
			t.Errorf("quantity 0: %d, want 400", p.status)
		}
		confirm := b.follow(b.submit(home, "change-plan", map[string]string{"price": team.ID, "quantity": "3"}))
		b.follow(b.submit(confirm, "confirm", nil))
		if sub, _ := s.Subscription(billingtest.SubscriptionPro); sub.PriceID != team.ID || sub.Quantity != 3 {
			t.Errorf("subscription = %+v, want %s × 3", sub, team.ID)
		}
	})
	t.Run("cancel immediately", func(t *testing.T) {
		u := portal(t, s, &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro), Configuration: stripe.String(strict.ID)})
		home := b.get(u)
		confirm := b.follow(b.submit(home, "cancel", nil))
		if !strings.Contains(confirm.text("summary"), "now") {
			t.Errorf("confirm step = %q", confirm.text("summary"))
		}
		n := len(s.Events())
		done := b.follow(b.submit(confirm, "confirm", nil))
		if sub, _ := s.Subscription(billingtest.SubscriptionPro); sub.Status != "canceled" {
			t.Errorf("status = %s, want canceled", sub.Status)
		}
		if !slices.Contains(eventTypes(s, n), "customer.subscription.deleted") || !strings.Contains(done.text("confirmation"), "canceled") {
			t.Errorf("events %v, confirmation %q", eventTypes(s, n), done.text("confirmation"))
		}
		back := b.get(u + "/return")
		if back.location != "https://app.example.com/strict" {
			t.Errorf("return to %q, want the configuration's default_return_url", back.location)
		}
	})
	t.Run("features off", func(t *testing.T) {
		u := portal(t, s, &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerBasic), Configuration: stripe.String(off.ID)})
		home := b.get(u)
		for id, want := range map[string]bool{"subscription": true, "change-plan": false, "cancel": false, "payment-methods": true, "invoices": true, "billing-info": true} {
			if home.has(id) != want {
				t.Errorf("#%s present = %v, want %v", id, home.has(id), want)
			}
		}
		if f := home.form(t, "billing-info"); len(f.values("email")) != 1 || len(f.values("address[city]")) != 0 {
			t.Errorf("billing-info inputs %v, want only the email allowed", f.inputs)
		}
		// Posting a field the configuration does not allow changes nothing.
		b.follow(b.submit(home, "billing-info", map[string]string{"email": "only@example.com", "address[city]": "Nowhere"}))
		if c, _ := s.Customer(billingtest.CustomerBasic); c.Email != "only@example.com" || c.Address.City != "" {
			t.Errorf("customer = %+v", c)
		}
		// A plan change or cancellation posted anyway is refused.
		for _, path := range []string{"/change-plan", "/cancel/confirm"} {
			req, _ := http.NewRequest(http.MethodPost, u+path, strings.NewReader(url.Values{"price": {billingtest.PricePro}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if p := b.do(req); p.status != http.StatusForbidden || !p.has("error") {
				t.Errorf("POST %s = %d, want 403", path, p.status)
			}
		}
		if sub, _ := s.Subscription(billingtest.SubscriptionBasic); sub.PriceID != billingtest.PriceBasic || sub.CancelAtPeriodEnd {
			t.Errorf("subscription changed: %+v", sub)
		}
	})
}

// TestPortalFlows opens each deep-link flow: the page starts on the
// flow's step, and after completion goes where after_completion says.
func TestPortalFlows(t *testing.T) {
	flows := []struct {
		name  string
		flow  func() *stripe.BillingPortalSessionFlowDataParams
		first string // the form the page opens on
		set   map[string]string
		check func(t *testing.T, s *billingtest.Stripe)
	}{
		{"payment_method_update", func() *stripe.BillingPortalSessionFlowDataParams {
			return &stripe.BillingPortalSessionFlowDataParams{Type: stripe.String("payment_method_update")}
		}, "payment-method", map[string]string{"card": "amex"}, func(t *testing.T, s *billingtest.Stripe) {
			if pms := s.PaymentMethods(billingtest.CustomerBasic); len(pms) != 1 || pms[0].Brand != "amex" {
				t.Errorf("payment methods = %+v", pms)
			}
		}},
		{"subscription_cancel", func() *stripe.BillingPortalSessionFlowDataParams {
			return &stripe.BillingPortalSessionFlowDataParams{Type: stripe.String("subscription_cancel"),
				SubscriptionCancel: &stripe.BillingPortalSessionFlowDataSubscriptionCancelParams{Subscription: stripe.String(billingtest.SubscriptionBasic)}}
		}, "confirm", nil, func(t *testing.T, s *billingtest.Stripe) {
			if sub, _ := s.Subscription(billingtest.SubscriptionBasic); !sub.CancelAtPeriodEnd {
				t.Errorf("not canceling: %+v", sub)
			}
		}},
		{"subscription_update", func() *stripe.BillingPortalSessionFlowDataParams {
			return &stripe.BillingPortalSessionFlowDataParams{Type: stripe.String("subscription_update"),
				SubscriptionUpdate: &stripe.BillingPortalSessionFlowDataSubscriptionUpdateParams{Subscription: stripe.String(billingtest.SubscriptionBasic)}}
		}, "change-plan", map[string]string{"price": billingtest.PricePro}, func(t *testing.T, s *billingtest.Stripe) {
			if sub, _ := s.Subscription(billingtest.SubscriptionBasic); sub.PriceID != billingtest.PricePro {
				t.Errorf("price = %s", sub.PriceID)
			}
		}},
		{"subscription_update_confirm", func() *stripe.BillingPortalSessionFlowDataParams {
			return &stripe.BillingPortalSessionFlowDataParams{Type: stripe.String("subscription_update_confirm"),
				SubscriptionUpdateConfirm: &stripe.BillingPortalSessionFlowDataSubscriptionUpdateConfirmParams{Subscription: stripe.String(billingtest.SubscriptionBasic),
					Items: []*stripe.BillingPortalSessionFlowDataSubscriptionUpdateConfirmItemParams{{ID: stripe.String("si_basic"), Price: stripe.String(billingtest.PricePro)}}}}
		}, "confirm", nil, func(t *testing.T, s *billingtest.Stripe) {
			if sub, _ := s.Subscription(billingtest.SubscriptionBasic); sub.PriceID != billingtest.PricePro {
				t.Errorf("price = %s", sub.PriceID)
			}
		}},
	}
	afters := []struct {
		name  string
		after *stripe.BillingPortalSessionFlowDataAfterCompletionParams
	}{
		{"redirect", &stripe.BillingPortalSessionFlowDataAfterCompletionParams{Type: stripe.String("redirect"),
			Redirect: &stripe.BillingPortalSessionFlowDataAfterCompletionRedirectParams{ReturnURL: stripe.String("https://app.example.com/done")}}},
		{"hosted_confirmation", &stripe.BillingPortalSessionFlowDataAfterCompletionParams{Type: stripe.String("hosted_confirmation"),
			HostedConfirmation: &stripe.BillingPortalSessionFlowDataAfterCompletionHostedConfirmationParams{CustomMessage: stripe.String("Thanks, see you soon")}}},
		{"portal_homepage", nil},
	}
	for _, fl := range flows {
		for _, af := range afters {
			t.Run(fl.name+"/"+af.name, func(t *testing.T) {
				s := startPortal(t)
				b := newBrowser(t, s)
				flow := fl.flow()
				flow.AfterCompletion = af.after
				u := portal(t, s, &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerBasic), FlowData: flow})
				first := b.get(u)
				if first.status != 200 || !first.has(fl.first) || !first.has("return") {
					t.Fatalf("the flow opens on %d without #%s:\n%s", first.status, fl.first, first.body)
				}
				if fl.first != "change-plan" && first.has("invoices") {
					t.Error("the flow's step shows the whole portal")
				}
				next := b.submit(first, fl.first, fl.set)
				if fl.first == "change-plan" {
					next = b.submit(b.follow(next), "confirm", nil)
				}
				if next.status != http.StatusSeeOther {
					t.Fatalf("submit = %d:\n%s", next.status, next.body)
				}
				fl.check(t, s)
				switch af.name {
				case "redirect":
					if next.location != "https://app.example.com/done" {
						t.Errorf("redirect to %q", next.location)
					}
					if again := b.get(u); again.status != http.StatusGone {
						t.Errorf("after the redirect the session answers %d, want 410", again.status)
					}
				case "hosted_confirmation":
					done := b.follow(next)
					if !done.has("confirmation") || !strings.Contains(done.text("custom-message"), "Thanks, see you soon") || !done.has("return") || done.has("home") {
						t.Errorf("hosted confirmation:\n%s", done.body)
					}
				case "portal_homepage":
					home := b.follow(next)
					if !home.has("subscription") || !home.has("notice") {
						t.Errorf("homepage after the flow:\n%s", home.body)
					}
				}
			})
		}
	}
}

// TestPortalExpiry checks the single use and the idle timeout, on the
// emulator's clock, and an unknown session.
func TestPortalExpiry(t *testing.T) {
	s := billingtest.StartEmulator(t, billingtest.EmulatorConfig{PortalIdleTimeout: time.Minute})
	s.Seed()
	b := newBrowser(t, s)
	tests := []struct {
		name   string
		before func(t *testing.T, u string)
		want   int
	}{
		{"fresh", func(*testing.T, string) {}, 200},
		{"used", func(t *testing.T, u string) { b.get(u + "/return") }, 410},
		{"idle", func(t *testing.T, u string) {
			if err := s.AdvanceClock(context.Background(), 61*time.Second); err != nil {
				t.Fatal(err)
			}
		}, 410},
		{"active within the timeout", func(t *testing.T, u string) {
			for range 3 {
				if err := s.AdvanceClock(context.Background(), 40*time.Second); err != nil {
					t.Fatal(err)
				}
				b.get(u) // each visit resets the idle time
			}
		}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := portal(t, s, &stripe.BillingPortalSessionParams{Customer: stripe.String(billingtest.CustomerPro)})
			tt.before(t, u)
			for _, path := range []string{"", "/return", "/done"} {
				got := b.get(u + path)
				want := tt.want
				if want == 200 && path == "/return" {
					want = 303
				}
				if got.status != want {
					t.Errorf("GET %s = %d, want %d", path, got.status, want)
				}
				if want == 410 && (!got.has("expired") || got.has("return")) {
					t.Errorf("GET %s: the expired page:\n%s", path, got.body)
				}
				if want == 303 {
					break // the session is used now
				}
			}
		})
	}
	if got := b.get(s.URL() + "/p/session/test_nope"); got.status != 404 {
		t.Errorf("unknown session = %d, want 404", got.status)
	}
}
