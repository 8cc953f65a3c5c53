package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/examples/demo/app"
)

// The scenarios run with each agent: TestBrowser* in Chromium, TestHTTP*
// without JavaScript.

// defaultMethod returns the emulator's default payment method of the
// customer.
func defaultMethod(t *testing.T, emu *billingtest.Stripe, customer string) billingtest.StripePaymentMethod {
	t.Helper()
	c, ok := emu.Customer(customer)
	if !ok {
		t.Fatalf("emulator: no customer %s", customer)
	}
	for _, m := range emu.PaymentMethods(customer) {
		if m.ID == c.DefaultPaymentMethod {
			return m
		}
	}
	t.Fatalf("emulator: customer %s has no default payment method (%q)", customer, c.DefaultPaymentMethod)
	return billingtest.StripePaymentMethod{}
}

// unchanged checks that the account page and the store still show the
// BASIC user as BASIC, active, renewing.
func unchanged(t *testing.T, d *app.Demo, a agent, after string) {
	t.Helper()
	if got := a.text("plan"); got != "BASIC" {
		t.Errorf("after %s: #plan %q, want BASIC", after, got)
	}
	if got := a.text("renews-on"); !strings.Contains(got, "renews on") {
		t.Errorf("after %s: #renews-on %q, want the renewal date", after, got)
	}
	if u, v := user(t, d, "user_basic"); u.Plan != billing.Basic || v.Status != "active" || v.CancelAtPeriodEnd {
		t.Errorf("store after %s: %+v %+v, want BASIC, active, renewing", after, u, v)
	}
}

// portalFeatures goes through the six features of the portal's home page
// as the BASIC user: the subscription (price and status), payment methods
// (a card added and made default), billing history (each invoice's hosted
// page and PDF download), billing information (the email); the plan change
// and the cancellation, also on that page, are [usageFlow]'s. After each,
// the emulator holds the change and the account page and the store are as
// before.
func portalFeatures(t *testing.T, d *app.Demo, a agent) {
	a.signIn("tok_basic")
	a.manageBilling()

	// View the current subscription.
	if got := a.text("subscription-price"); got != "price_basic" {
		t.Errorf("#subscription-price %q, want price_basic", got)
	}
	if got := a.text("subscription-status"); got != "active" {
		t.Errorf("#subscription-status %q, want active", got)
	}
	if !a.has("change-plan") || !a.has("cancel") {
		t.Errorf("the portal's home lacks #change-plan or #cancel")
	}

	// Payment methods: the seeded test Visa, then a Mastercard made default.
	if got := a.text("payment-methods"); !strings.Contains(got, "4242") || !strings.Contains(got, "default") {
		t.Errorf("#payment-methods %q, want the default Visa 4242", got)
	}
	a.submit("payment-method", map[string]string{"card": "mastercard"})
	if got := a.text("confirmation"); !strings.Contains(got, "payment method was updated") {
		t.Errorf("after adding a card: #confirmation %q", got)
	}
	if m := defaultMethod(t, d.Stripe, "cus_demo_basic"); m.Brand != "mastercard" || m.Last4 != "4444" {
		t.Errorf("emulator: default payment method %+v, want the Mastercard 4444", m)
	}
	a.follow("home")
	if got := a.text("payment-methods"); !strings.Contains(got, "4444") {
		t.Errorf("#payment-methods %q, want the Mastercard 4444", got)
	}

	// Billing history: an invoice for the subscription, its hosted page
	// and its PDF.
	invoices := d.Stripe.Invoices("cus_demo_basic")
	if len(invoices) == 0 {
		t.Fatal("emulator: no invoice for the BASIC customer")
	}
	checkInvoiceLinks(t, a)

	// Billing information: the email.
	a.submit("billing-info", map[string]string{"email": "ada@example.com"})
	if got := a.text("confirmation"); !strings.Contains(got, "billing information was updated") {
		t.Errorf("after saving the email: #confirmation %q", got)
	}
	if c, _ := d.Stripe.Customer("cus_demo_basic"); c.Email != "ada@example.com" {
		t.Errorf("emulator: customer email %q, want ada@example.com", c.Email)
	}

	a.back()
	unchanged(t, d, a, "the portal's features")
}

// checkInvoiceLinks fetches every invoice link of the portal page's
// #invoices (the hosted invoice and its Download) and checks each answers
// 200, the PDF as a PDF.
func checkInvoiceLinks(t *testing.T, a agent) {
	t.Helper()
	links := a.links("invoices")
	pdfs := 0
	for _, l := range links {
		resp, err := http.Get(l)
		if err != nil {
			t.Fatalf("invoice link %s: %v", l, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("invoice link %s: %s", l, resp.Status)
		}
		if strings.HasSuffix(l, "/pdf") {
			pdfs++
			if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" || !strings.HasPrefix(string(body), "%PDF-") {
				t.Errorf("invoice PDF %s: Content-Type %q, body %.20q; want a PDF", l, ct, body)
			}
		}
	}
	if pdfs == 0 {
		t.Errorf("#invoices has no PDF download among its links %v", links)
	}
}

// deepLinks goes through the four deep-link flows from the account page's
// buttons, as the BASIC user: each opens the portal on its step; the
// payment method update and the plan change end on the hosted confirmation
// (then back through #return), the update confirm and the cancellation
// redirect to the return URL.
func deepLinks(t *testing.T, d *app.Demo, a agent) {
	a.signIn("tok_basic")

	// payment_method_update: the payment step only.
	a.deepLink("flow-payment-method-update")
	if !a.has("payment-methods") || a.has("change-plan") || a.has("cancel") || a.has("invoices") {
		t.Errorf("payment_method_update: the page is not the payment step (%s)", a.url())
	}
	a.submit("payment-method", map[string]string{"card": "amex"})
	if !a.has("confirmation") || !a.has("custom-message") {
		t.Errorf("payment_method_update: no hosted confirmation with the custom message")
	}
	if m := defaultMethod(t, d.Stripe, "cus_demo_basic"); m.Brand != "amex" {
		t.Errorf("emulator: default payment method %+v, want the Amex", m)
	}
	a.back()
	unchanged(t, d, a, "payment_method_update")

	// subscription_update: the plans step, then the confirmation.
	a.deepLink("flow-subscription-update")
	if !a.has("change-plan") || a.has("cancel") || a.has("payment-methods") {
		t.Errorf("subscription_update: the page is not the plan step (%s)", a.url())
	}
	a.changePlan("price_pro")
	if !a.has("confirmation") {
		t.Errorf("subscription_update: no hosted confirmation")
	}
	a.back()
	if got := a.text("plan"); got != "PRO" {
		t.Errorf("after subscription_update: #plan %q, want PRO", got)
	}
	if u, _ := user(t, d, "user_basic"); u.Plan != billing.Pro {
		t.Errorf("store after subscription_update: %+v, want PRO", u)
	}

	// subscription_update_confirm: straight to the confirm step of a
	// switch back to BASIC; confirming redirects to the return URL.
	a.deepLink("flow-update-confirm-price_basic")
	if !a.has("confirm") || a.has("change-plan") {
		t.Errorf("subscription_update_confirm: the page is not the confirm step (%s)", a.url())
	}
	if got := a.text("summary"); !strings.Contains(got, "price_basic") && !strings.Contains(strings.ToLower(got), "basic") {
		t.Errorf("subscription_update_confirm: #summary %q does not name the new plan", got)
	}
	a.submit("confirm", nil)
	if !strings.HasPrefix(a.url(), d.URL+"/account") {
		t.Fatalf("subscription_update_confirm ended at %s, want the account page through the return URL", a.url())
	}
	if got := a.text("plan"); got != "BASIC" {
		t.Errorf("after subscription_update_confirm: #plan %q, want BASIC", got)
	}
	u, _ := user(t, d, "user_basic")
	if sub, _ := d.Stripe.Subscription(u.SubscriptionID); u.Plan != billing.Basic || sub.PriceID != "price_basic" {
		t.Errorf("after subscription_update_confirm: store %+v, emulator %+v; want BASIC on price_basic", u, sub)
	}

	// subscription_cancel: straight to the cancel confirm step; it ends at
	// the period end.
	a.deepLink("flow-subscription-cancel")
	if !a.has("confirm") || a.has("change-plan") {
		t.Errorf("subscription_cancel: the page is not the confirm step (%s)", a.url())
	}
	a.submit("confirm", nil)
	if !strings.HasPrefix(a.url(), d.URL+"/account") {
		t.Fatalf("subscription_cancel ended at %s, want the account page through the return URL", a.url())
	}
	if got := a.text("ends-on"); !strings.Contains(got, "ends on") {
		t.Errorf("after subscription_cancel: #ends-on %q, want \"… ends on …\"", got)
	}
	if _, v := user(t, d, "user_basic"); !v.CancelAtPeriodEnd || v.Plan != billing.Basic {
		t.Errorf("store after subscription_cancel: %+v, want BASIC canceling at the period end", v)
	}
}

// expiry: a portal URL answers 410 once idle for longer than the
// emulator's idle timeout (5 minutes on its clock), and once used.
func expiry(t *testing.T, d *app.Demo, a agent) {
	a.signIn("tok_pro")
	a.manageBilling()
	portal := a.url()
	a.open("the portal again, within the idle time", portal, http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Stripe.AdvanceClock(ctx, 6*time.Minute); err != nil {
		t.Fatal(err)
	}
	a.open("the portal after 6 idle minutes", portal, http.StatusGone)
	if !a.has("expired") || a.has("return") {
		t.Errorf("the expired page has no #expired, or a #return")
	}

	a.open("the account page", d.URL+"/account", http.StatusOK)
	a.manageBilling()
	used := a.url()
	a.back()
	a.open("the portal after going back", used, http.StatusGone)
}
