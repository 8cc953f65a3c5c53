package billingtest

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"
)

// StripeInvoice is an invoice the emulator made: one for a new
// subscription, for a plan change and for each renewal, each paid at once
// (as with a test card).
type StripeInvoice struct {
	// ID is the invoice id (in_...).
	ID string
	// Number is the invoice number (EMU-0001, ...).
	Number string
	// Customer and Subscription are the ids it belongs to.
	Customer, Subscription string
	// BillingReason is subscription_create, subscription_update or
	// subscription_cycle.
	BillingReason string
	// Status is "paid".
	Status string
	// Currency is the currency, AmountDue and AmountPaid the amounts in its
	// smallest unit (a trial's first invoice is 0).
	Currency              string
	AmountDue, AmountPaid int64
	// Created is when the invoice was made, on the emulator's clock.
	Created time.Time
	// HostedInvoiceURL and InvoicePDF are the invoice's page and its PDF,
	// served by the emulator.
	HostedInvoiceURL, InvoicePDF string
}

type invoiceLine struct {
	id, description, price string
	amount, quantity       int64
	start, end             time.Time
	proration              bool
}

type invoiceRec struct {
	StripeInvoice
	seq        int64
	status     string // as rendered now: draft, open, paid
	lines      []invoiceLine
	start, end time.Time // the invoice's period
}

type billingState struct {
	invoices map[string]*invoiceRec
	methods  map[string]*methodRec
	numbers  int
}

// newInvoiceLocked makes the invoice of a new period of sub (or of its
// creation): the price times the quantity, 0 while trialing. It sets
// sub.LatestInvoice. Its events are sent by [Stripe.invoiceEventsLocked].
func (s *Stripe) newInvoiceLocked(sub *SubscriptionSpec, reason string, at time.Time) *invoiceRec {
	amount := sub.UnitAmount * sub.Quantity
	desc := fmt.Sprintf("%d × %s", sub.Quantity, sub.PriceID)
	if sub.Status == "trialing" {
		amount, desc = 0, "Trial period for "+sub.PriceID
	}
	return s.addInvoiceLocked(sub, reason, at, []invoiceLine{{description: desc, price: sub.PriceID, amount: amount,
		quantity: sub.Quantity, start: sub.periodStart(), end: sub.CurrentPeriodEnd}})
}

// prorationInvoiceLocked makes the invoice of a plan change in the middle
// of a period, as proration_behavior=always_invoice does: a credit for the
// unused time on the old price, a charge for the remaining time on the
// new one, due at once (never below 0).
func (s *Stripe) prorationInvoiceLocked(sub, before *SubscriptionSpec, at time.Time) *invoiceRec {
	start, end := sub.periodStart(), sub.CurrentPeriodEnd
	left := 1.0
	if total := end.Sub(start); total > 0 {
		left = min(1, max(0, float64(end.Sub(at))/float64(total)))
	}
	credit := -int64(float64(before.UnitAmount*before.Quantity)*left + 0.5)
	charge := int64(float64(sub.UnitAmount*sub.Quantity)*left + 0.5)
	return s.addInvoiceLocked(sub, "subscription_update", at, []invoiceLine{
		{description: fmt.Sprintf("Unused time on %d × %s", before.Quantity, before.PriceID), price: before.PriceID,
			amount: credit, quantity: before.Quantity, start: at, end: end, proration: true},
		{description: fmt.Sprintf("Remaining time on %d × %s", sub.Quantity, sub.PriceID), price: sub.PriceID,
			amount: charge, quantity: sub.Quantity, start: at, end: end, proration: true},
	})
}

func (s *Stripe) addInvoiceLocked(sub *SubscriptionSpec, reason string, at time.Time, lines []invoiceLine) *invoiceRec {
	var total int64
	for i := range lines {
		lines[i].id = NewID("il")
		total += lines[i].amount
	}
	s.billing.numbers++
	id := NewID("in")
	inv := &invoiceRec{StripeInvoice: StripeInvoice{ID: id, Number: fmt.Sprintf("EMU-%04d", s.billing.numbers),
		Customer: sub.Customer, Subscription: sub.ID, BillingReason: reason, Status: "paid", Currency: sub.Currency,
		AmountDue: max(0, total), AmountPaid: max(0, total), Created: at,
		HostedInvoiceURL: s.cfg.PublicURL + "/i/" + id, InvoicePDF: s.cfg.PublicURL + "/i/" + id + "/pdf"},
		seq: s.nextSeq(), status: "draft", lines: lines, start: at, end: at}
	if reason == "subscription_cycle" {
		inv.start, inv.end = lines[0].start, lines[0].end
	}
	s.billing.invoices[id] = inv
	sub.LatestInvoice = id
	return inv
}

// invoiceEventsLocked emits what Stripe emits for a subscription's invoice
// paid with a test card: invoice.created (a draft), invoice.finalized,
// invoice.paid and invoice.payment_succeeded.
func (s *Stripe) invoiceEventsLocked(inv *invoiceRec, o origin) {
	inv.status = "draft"
	s.emitLocked("invoice.created", s.invoiceObjectLocked(inv), nil, o)
	inv.status = "open"
	s.emitLocked("invoice.finalized", s.invoiceObjectLocked(inv), nil, o)
	inv.status = "paid"
	paid := s.invoiceObjectLocked(inv)
	s.emitLocked("invoice.paid", paid, nil, o)
	s.emitLocked("invoice.payment_succeeded", s.invoiceObjectLocked(inv), nil, o)
}

func (s *Stripe) invoiceObjectLocked(inv *invoiceRec) map[string]any {
	lines := make([]any, len(inv.lines))
	var subtotal int64
	for i, l := range inv.lines {
		subtotal += l.amount
		var price any = l.price
		if p, ok := s.catalog.prices[l.price]; ok {
			price = p.object()
		}
		lines[i] = map[string]any{
			"id": l.id, "object": "line_item", "amount": l.amount, "currency": inv.Currency, "description": l.description,
			"livemode": false, "metadata": map[string]string{}, "period": map[string]any{"start": l.start.Unix(), "end": l.end.Unix()},
			"price": price, "proration": l.proration, "quantity": l.quantity, "subscription": inv.Subscription, "type": "subscription",
		}
	}
	paid := inv.status == "paid"
	due, paidAmount, remaining := inv.AmountDue, int64(0), inv.AmountDue
	if paid {
		paidAmount, remaining = inv.AmountPaid, 0
	}
	var finalized, paidAt any
	if inv.status != "draft" {
		finalized = inv.Created.Unix()
	}
	if paid {
		paidAt = inv.Created.Unix()
	}
	hosted, pdf := any(nil), any(nil)
	if inv.status != "draft" {
		hosted, pdf = inv.HostedInvoiceURL, inv.InvoicePDF
	}
	var email any
	if c, ok := s.customers[inv.Customer]; ok {
		email = orNil(c.Email)
	}
	return map[string]any{
		"id": inv.ID, "object": "invoice", "customer": inv.Customer, "customer_email": email, "subscription": inv.Subscription,
		"status": inv.status, "paid": paid, "attempted": inv.status != "draft", "billing_reason": inv.BillingReason,
		"collection_method": "charge_automatically", "currency": inv.Currency, "created": inv.Created.Unix(),
		"amount_due": due, "amount_paid": paidAmount, "amount_remaining": remaining, "subtotal": subtotal, "total": subtotal,
		"number": inv.Number, "livemode": false, "metadata": map[string]string{},
		"period_start": inv.start.Unix(), "period_end": inv.end.Unix(),
		"hosted_invoice_url": hosted, "invoice_pdf": pdf,
		"status_transitions": map[string]any{"finalized_at": finalized, "paid_at": paidAt, "marked_uncollectible_at": nil, "voided_at": nil},
		"lines": map[string]any{"object": "list", "data": lines, "has_more": false, "total_count": len(lines),
			"url": "/v1/invoices/" + inv.ID + "/lines"},
	}
}

// Invoices returns the invoices of customer (every customer's when
// customer is empty), newest first.
func (s *Stripe) Invoices(customer string) []StripeInvoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StripeInvoice
	for _, inv := range s.sortedInvoicesLocked() {
		if customer == "" || inv.Customer == customer {
			out = append(out, inv.StripeInvoice)
		}
	}
	return out
}

func (s *Stripe) sortedInvoicesLocked() []*invoiceRec {
	out := make([]*invoiceRec, 0, len(s.billing.invoices))
	for _, inv := range s.billing.invoices {
		out = append(out, inv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq > out[j].seq })
	return out
}

// GET /v1/invoices
func (s *Stripe) listInvoices(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	cus, sub, status := f.str("customer"), f.str("subscription"), f.str("status")
	expand := listExpand(f.expand())
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	var objs []map[string]any
	for _, inv := range s.sortedInvoicesLocked() {
		if (cus != "" && inv.Customer != cus) || (sub != "" && inv.Subscription != sub) || (status != "" && inv.status != status) {
			continue
		}
		obj := s.invoiceObjectLocked(inv)
		s.expandLocked(obj, expand)
		ids, objs = append(ids, inv.ID), append(objs, obj)
	}
	writeList(w, f, PathInvoices, ids, objs)
}

// GET /v1/invoices/{id}
func (s *Stripe) getInvoice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := newForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.billing.invoices[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "invoice", id))
		return
	}
	obj := s.invoiceObjectLocked(inv)
	s.expandLocked(obj, f.expand())
	writeJSON(w, http.StatusOK, obj)
}

var invoicePage = template.Must(template.New("invoice").Funcs(pageFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {{.Number}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left}</style>
</head><body>
<h1>Invoice <span id="number">{{.Number}}</span></h1>
<p>Status: <span id="status">{{.Status}}</span> · {{.Created}}</p>
<p>Customer: {{.Customer}}{{if .Subscription}} · Subscription: {{.Subscription}}{{end}}</p>
<table id="lines"><tr><th>Description</th><th>Period</th><th>Amount</th></tr>
{{range .Lines}}<tr><td>{{.Description}}</td><td>{{.Period}}</td><td>{{.Amount}}</td></tr>
{{end}}</table>
<p>Total: <strong id="total">{{.Total}}</strong></p>
<p><a id="download" href="{{.PDF}}">Download PDF</a></p>
</body></html>
`))

type invoiceView struct {
	Number, Status, Created, Customer, Subscription, Total, PDF string
	Lines                                                       []struct{ Description, Period, Amount string }
}

func (s *Stripe) invoiceViewLocked(inv *invoiceRec) invoiceView {
	v := invoiceView{Number: inv.Number, Status: inv.status, Created: inv.Created.UTC().Format("2006-01-02 15:04 MST"),
		Customer: inv.Customer, Subscription: inv.Subscription, Total: money(inv.AmountDue, inv.Currency), PDF: inv.InvoicePDF}
	for _, l := range inv.lines {
		v.Lines = append(v.Lines, struct{ Description, Period, Amount string }{l.description,
			l.start.UTC().Format("2006-01-02") + " – " + l.end.UTC().Format("2006-01-02"), money(l.amount, inv.Currency)})
	}
	return v
}

// money writes an amount in a currency's smallest unit as 12.34 USD.
func money(amount int64, currency string) string {
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, amount/100, amount%100, strings.ToUpper(currency))
}

// GET /i/{id}: the hosted invoice page.
func (s *Stripe) invoiceHTML(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	inv, ok := s.billing.invoices[r.PathValue("id")]
	var v invoiceView
	if ok {
		v = s.invoiceViewLocked(inv)
	}
	s.mu.Unlock()
	if !ok {
		writePage(w, http.StatusNotFound, notFoundPage, nil)
		return
	}
	writePage(w, http.StatusOK, invoicePage, v)
}

// GET /i/{id}/pdf: the invoice as a PDF document.
func (s *Stripe) invoicePDF(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	inv, ok := s.billing.invoices[r.PathValue("id")]
	var v invoiceView
	if ok {
		v = s.invoiceViewLocked(inv)
	}
	s.mu.Unlock()
	if !ok {
		writePage(w, http.StatusNotFound, notFoundPage, nil)
		return
	}
	text := []string{"Invoice " + v.Number, "Status: " + v.Status, "Date: " + v.Created, "Customer: " + v.Customer}
	if v.Subscription != "" {
		text = append(text, "Subscription: "+v.Subscription)
	}
	for _, l := range v.Lines {
		text = append(text, l.Description+"  "+l.Period+"  "+l.Amount)
	}
	text = append(text, "Total: "+v.Total)
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "invoice-"+v.Number+".pdf"))
	_, _ = w.Write(pdfDocument(text))
}

// pdfDocument returns a one-page PDF showing lines of text in Helvetica
// (ASCII; other characters become '?').
func pdfDocument(lines []string) []byte {
	var content bytes.Buffer
	content.WriteString("BT /F1 12 Tf 72 770 Td 16 TL\n")
	for _, l := range lines {
		var esc strings.Builder
		for _, r := range l {
			switch {
			case r == '(' || r == ')' || r == '\\':
				esc.WriteByte('\\')
				esc.WriteRune(r)
			case r == '–' || r == '×':
				esc.WriteByte('-')
			case r < 32 || r > 126:
				esc.WriteByte('?')
			default:
				esc.WriteRune(r)
			}
		}
		fmt.Fprintf(&content, "(%s) Tj T*\n", esc.String())
	}
	content.WriteString("ET\n")
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.String()),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
