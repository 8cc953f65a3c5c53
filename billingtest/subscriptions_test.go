package billingtest_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

// eventTypes returns the types of the events emitted since the first n.
func eventTypes(s *billingtest.Stripe, n int) []string {
	var out []string
	for _, e := range s.Events()[n:] {
		out = append(out, e.Type)
	}
	return out
}

// decodeEvent decodes an emitted event as stripe-go does.
func decodeEvent(t *testing.T, e billingtest.EmittedEvent) stripe.Event {
	t.Helper()
	var ev stripe.Event
	if err := json.Unmarshal(e.JSON, &ev); err != nil {
		t.Fatalf("decode %s: %v", e.JSON, err)
	}
	return ev
}

// lastEvent returns the last emitted event of type typ.
func lastEvent(t *testing.T, s *billingtest.Stripe, typ string) stripe.Event {
	t.Helper()
	evs := s.Events(typ)
	if len(evs) == 0 {
		t.Fatalf("no %s event", typ)
	}
	return decodeEvent(t, evs[len(evs)-1])
}

func TestSubscriptionLifecycle(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.SeedCatalog()
	api := s.API()

	cus, err := api.Customers.New(&stripe.CustomerParams{Email: stripe.String("ada@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	pm, err := api.PaymentMethods.Attach("pm_card_visa", &stripe.PaymentMethodAttachParams{Customer: stripe.String(cus.ID)})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if !strings.HasPrefix(pm.ID, "pm_") || pm.ID == "pm_card_visa" || pm.Card.Last4 != "4242" || pm.Customer.ID != cus.ID {
		t.Errorf("attached = %+v", pm)
	}
	n := len(s.Events())
	cus, err = api.Customers.Update(cus.ID, &stripe.CustomerParams{InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(pm.ID)},
		Address: &stripe.AddressParams{Line1: stripe.String("1 Main St"), City: stripe.String("Springfield"), Country: stripe.String("US")}})
	if err != nil {
		t.Fatal(err)
	}
	if cus.InvoiceSettings.DefaultPaymentMethod.ID != pm.ID || cus.Address.City != "Springfield" {
		t.Errorf("customer = %+v", cus)
	}
	ev := lastEvent(t, s, "customer.updated")
	if diff := cmp.Diff(map[string]any{"address": nil, "invoice_settings": map[string]any{"default_payment_method": nil}}, ev.Data.PreviousAttributes); diff != "" {
		t.Errorf("customer.updated previous_attributes (-want +got):\n%s", diff)
	}
	if ev.Request == nil || !strings.HasPrefix(ev.Request.ID, "req_") || ev.APIVersion != stripe.APIVersion || !strings.HasPrefix(ev.ID, "evt_") {
		t.Errorf("event envelope = %+v", ev)
	}
	if diff := cmp.Diff([]string{"customer.updated"}, eventTypes(s, n)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// A new subscription: active, with a paid invoice.
	n = len(s.Events())
	sub, err := api.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items:  []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PriceBasic)}},
		Expand: []*string{stripe.String("latest_invoice")}})
	if err != nil {
		t.Fatalf("Subscriptions.New: %v", err)
	}
	if sub.Status != "active" || sub.Items.Data[0].Price.ID != billingtest.PriceBasic || sub.Items.Data[0].Price.UnitAmount != billingtest.AmountBasic ||
		sub.CurrentPeriodEnd-sub.CurrentPeriodStart != 30*24*3600 || sub.LatestInvoice == nil || sub.LatestInvoice.Status != "paid" ||
		sub.LatestInvoice.AmountPaid != billingtest.AmountBasic || sub.LatestInvoice.BillingReason != "subscription_create" {
		t.Errorf("new subscription = %+v, latest invoice %+v", sub, sub.LatestInvoice)
	}
	want := []string{"customer.subscription.created", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"}
	if diff := cmp.Diff(want, eventTypes(s, n)); diff != "" {
		t.Errorf("events of a new subscription (-want +got):\n%s", diff)
	}

	// A plan change: the price changes, an invoice for the difference.
	n = len(s.Events())
	up, err := api.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{
		Items: []*stripe.SubscriptionItemsParams{{ID: stripe.String(sub.Items.Data[0].ID), Price: stripe.String(billingtest.PricePro)}}})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if up.Items.Data[0].Price.ID != billingtest.PricePro || up.Items.Data[0].Price.LookupKey != billingtest.LookupKeyPro || up.LatestInvoice.ID == sub.LatestInvoice.ID {
		t.Errorf("changed subscription = %+v", up)
	}
	want = []string{"customer.subscription.updated", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"}
	if diff := cmp.Diff(want, eventTypes(s, n)); diff != "" {
		t.Errorf("events of a plan change (-want +got):\n%s", diff)
	}
	ev = lastEvent(t, s, "customer.subscription.updated")
	prevItems, _ := ev.Data.PreviousAttributes["items"].(map[string]any)
	prevData, _ := prevItems["data"].([]any)
	if len(prevData) != 1 || prevData[0].(map[string]any)["price"].(map[string]any)["id"] != billingtest.PriceBasic ||
		ev.Data.PreviousAttributes["latest_invoice"] != sub.LatestInvoice.ID {
		t.Errorf("plan change previous_attributes = %v", ev.Data.PreviousAttributes)
	}
	if _, ok := ev.Data.PreviousAttributes["status"]; ok {
		t.Errorf("previous_attributes hold an unchanged status: %v", ev.Data.PreviousAttributes)
	}
	invs := s.Invoices(cus.ID)
	if len(invs) != 2 || invs[0].BillingReason != "subscription_update" || invs[0].AmountDue <= 0 || invs[0].AmountDue > billingtest.AmountPro-billingtest.AmountBasic {
		t.Errorf("invoices = %+v, want the prorated difference newest first", invs)
	}

	// Cancel at period end, then undo it, then cancel at once.
	n = len(s.Events())
	up, err = api.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)})
	if err != nil || !up.CancelAtPeriodEnd || up.CancelAt != up.CurrentPeriodEnd || up.Status != "active" {
		t.Fatalf("cancel at period end = %+v, %v", up, err)
	}
	ev = lastEvent(t, s, "customer.subscription.updated")
	if diff := cmp.Diff(map[string]any{"cancel_at_period_end": false, "cancel_at": nil}, ev.Data.PreviousAttributes); diff != "" {
		t.Errorf("cancel_at_period_end previous_attributes (-want +got):\n%s", diff)
	}
	if _, err := api.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	gone, err := api.Subscriptions.Cancel(sub.ID, nil)
	if err != nil || gone.Status != "canceled" || gone.EndedAt == 0 || gone.CanceledAt == 0 {
		t.Fatalf("Cancel = %+v, %v", gone, err)
	}
	want = []string{"customer.subscription.updated", "customer.subscription.updated", "customer.subscription.deleted"}
	if diff := cmp.Diff(want, eventTypes(s, n)); diff != "" {
		t.Errorf("events of the cancellation (-want +got):\n%s", diff)
	}
	if _, err := api.Subscriptions.Cancel(sub.ID, nil); !isCode(err, 400, "") {
		t.Errorf("second Cancel: %v, want 400", err)
	}
	if _, err := api.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)}); !isCode(err, 400, "") {
		t.Errorf("update of a canceled subscription: %v, want 400", err)
	}

	// Trials: trial_period_days and trial_end both start trialing, with a
	// 0 invoice; trial_end=now ends the trial.
	trial, err := api.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PricePro), Quantity: stripe.Int64(3)}}, TrialPeriodDays: stripe.Int64(14)})
	if err != nil {
		t.Fatal(err)
	}
	if trial.Status != "trialing" || trial.TrialEnd-trial.TrialStart != 14*24*3600 || trial.CurrentPeriodEnd != trial.TrialEnd || trial.Items.Data[0].Quantity != 3 {
		t.Errorf("trial = %+v", trial)
	}
	if inv := s.Invoices(cus.ID)[0]; inv.AmountDue != 0 || inv.Subscription != trial.ID {
		t.Errorf("trial invoice = %+v, want 0", inv)
	}
	end := s.Now().Add(48 * time.Hour).Unix()
	trial2, err := api.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus.ID),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PriceBasic)}}, TrialEnd: stripe.Int64(end)})
	if err != nil || trial2.Status != "trialing" || trial2.TrialEnd != end {
		t.Fatalf("trial_end subscription = %+v, %v", trial2, err)
	}
	ended, err := api.Subscriptions.Update(trial2.ID, &stripe.SubscriptionParams{TrialEndNow: stripe.Bool(true)})
	if err != nil || ended.Status != "active" {
		t.Fatalf("trial_end=now = %+v, %v", ended, err)
	}
	ev = lastEvent(t, s, "customer.subscription.updated")
	if ev.Data.PreviousAttributes["status"] != "trialing" {
		t.Errorf("trial end previous_attributes = %v", ev.Data.PreviousAttributes)
	}

	// Lists: status filter, default without canceled, expand.
	list := func(p *stripe.SubscriptionListParams) []string {
		var ids []string
		it := api.Subscriptions.List(p)
		for it.Next() {
			ids = append(ids, it.Subscription().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	tests := []struct {
		name   string
		params *stripe.SubscriptionListParams
		want   []string
	}{
		{"default", &stripe.SubscriptionListParams{Customer: stripe.String(cus.ID)}, []string{trial2.ID, trial.ID}},
		{"trialing", &stripe.SubscriptionListParams{Customer: stripe.String(cus.ID), Status: stripe.String("trialing")}, []string{trial.ID}},
		{"canceled", &stripe.SubscriptionListParams{Customer: stripe.String(cus.ID), Status: stripe.String("canceled")}, []string{sub.ID}},
		{"all", &stripe.SubscriptionListParams{Customer: stripe.String(cus.ID), Status: stripe.String("all")}, []string{trial2.ID, trial.ID, sub.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, list(tt.params)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
	p := &stripe.SubscriptionListParams{Customer: stripe.String(cus.ID)}
	p.AddExpand("data.customer")
	p.AddExpand("data.items.data.price.product")
	it := api.Subscriptions.List(p)
	for it.Next() {
		sub := it.Subscription()
		if sub.Customer.Email != "ada@example.com" || sub.Items.Data[0].Price.Product.Name == "" {
			t.Errorf("expanded subscription: customer %+v product %+v", sub.Customer, sub.Items.Data[0].Price.Product)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestInvoices checks the invoice list and the hosted invoice page and PDF
// the invoices point at.
func TestInvoices(t *testing.T) {
	s := billingtest.StartEmulator(t, billingtest.EmulatorConfig{})
	s.SeedCatalog()
	s.AddCustomer("cus_inv")
	api := s.API()
	sub, err := api.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String("cus_inv"),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PricePro)}}})
	if err != nil {
		t.Fatal(err)
	}
	it := api.Invoices.List(&stripe.InvoiceListParams{Customer: stripe.String("cus_inv")})
	var got []*stripe.Invoice
	for it.Next() {
		got = append(got, it.Invoice())
	}
	if err := it.Err(); err != nil || len(got) != 1 {
		t.Fatalf("invoices = %v, %v", got, err)
	}
	inv := got[0]
	if inv.Subscription.ID != sub.ID || inv.Status != "paid" || inv.Total != billingtest.AmountPro || len(inv.Lines.Data) != 1 ||
		inv.Lines.Data[0].Price.ID != billingtest.PricePro || !strings.HasPrefix(inv.HostedInvoiceURL, s.URL()+"/i/in_") || inv.InvoicePDF != inv.HostedInvoiceURL+"/pdf" {
		t.Errorf("invoice = %+v", inv)
	}
	for _, tt := range []struct{ url, contentType, contains string }{
		{inv.HostedInvoiceURL, "text/html; charset=utf-8", inv.Number},
		{inv.InvoicePDF, "application/pdf", "%PDF-1.4"},
		{s.URL() + "/i/in_nope", "text/html; charset=utf-8", "Not found"},
	} {
		resp, err := s.HTTPClient().Get(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Type") != tt.contentType || !strings.Contains(string(b), tt.contains) {
			t.Errorf("GET %s: %d %s, body without %q", tt.url, resp.StatusCode, resp.Header.Get("Content-Type"), tt.contains)
		}
	}
	if _, err := api.Invoices.Get("in_nope", nil); !isCode(err, 404, stripe.ErrorCodeResourceMissing) {
		t.Errorf("Get unknown invoice: %v", err)
	}
}

func TestPaymentMethods(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.AddCustomer("cus_pm", "cus_other")
	api := s.API()
	pm, err := api.PaymentMethods.New(&stripe.PaymentMethodParams{Type: stripe.String("card"), Card: &stripe.PaymentMethodCardParams{Token: stripe.String("tok_mastercard")}})
	if err != nil || pm.Card.Brand != "mastercard" || pm.Customer != nil {
		t.Fatalf("New = %+v, %v", pm, err)
	}
	if _, err := api.PaymentMethods.Attach(pm.ID, &stripe.PaymentMethodAttachParams{Customer: stripe.String("cus_pm")}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PaymentMethods.Attach(pm.ID, &stripe.PaymentMethodAttachParams{Customer: stripe.String("cus_other")}); !isCode(err, 400, "") {
		t.Errorf("attach to a second customer: %v, want 400", err)
	}
	if _, err := api.PaymentMethods.Attach("pm_card_amex", &stripe.PaymentMethodAttachParams{Customer: stripe.String("cus_pm")}); err != nil {
		t.Fatal(err)
	}
	var brands []string
	it := api.PaymentMethods.List(&stripe.PaymentMethodListParams{Customer: stripe.String("cus_pm"), Type: stripe.String("card")})
	for it.Next() {
		brands = append(brands, string(it.PaymentMethod().Card.Brand))
	}
	if diff := cmp.Diff([]string{"amex", "mastercard"}, brands); diff != "" || it.Err() != nil {
		t.Errorf("brands (-want +got):\n%s %v", diff, it.Err())
	}
	if n := len(s.Events("payment_method.attached")); n != 2 {
		t.Errorf("%d payment_method.attached events, want 2", n)
	}
	if _, err := api.PaymentMethods.Detach(pm.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.PaymentMethods("cus_pm"); len(got) != 1 || got[0].Brand != "amex" {
		t.Errorf("after detach: %+v", got)
	}
}
