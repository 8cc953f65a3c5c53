package billingtest

import (
	"fmt"
	"net/http"
	"sort"
	"time"
)

// subChange is one change to a subscription, made by the API, the hosted
// page or the clock; [Stripe.changeSubLocked] applies it and emits its
// events.
type subChange struct {
	price             *priceRec  // a new price, or nil
	quantity          int64      // a new quantity, or 0
	cancelAtPeriodEnd *bool      // set or clear cancel_at_period_end
	cancelAt          *time.Time // set (or, the zero time, clear) cancel_at
	trialEnd          *time.Time // end the trial then (now: end it now)
	defaultPM         *string
	metadata          func(map[string]string) map[string]string
	noInvoice         bool // proration_behavior=none
}

// sortedSubsLocked returns the subscriptions newest first (ties: by id),
// as Stripe lists them.
func (s *Stripe) sortedSubsLocked() []*SubscriptionSpec {
	subs := make([]*SubscriptionSpec, 0, len(s.subs))
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	sort.Slice(subs, func(i, j int) bool {
		if !subs[i].Created.Equal(subs[j].Created) {
			return subs[i].Created.After(subs[j].Created)
		}
		return subs[i].ID < subs[j].ID
	})
	return subs
}

// subObjectLocked renders sub with the expansions asked for.
func (s *Stripe) subObjectLocked(sub *SubscriptionSpec, expand []string) map[string]any {
	obj := sub.object()
	s.expandLocked(obj, expand)
	return obj
}

// usePrice points sub's item at p.
func (sub *SubscriptionSpec) usePrice(p *priceRec) {
	sub.PriceID, sub.LookupKey, sub.ProductID = p.ID, p.LookupKey, p.Product
	sub.UnitAmount, sub.Currency, sub.Interval, sub.IntervalCount = p.UnitAmount, p.Currency, p.Interval, p.IntervalCount
	sub.ProductMetadata = nil
}

// recurringPriceLocked returns the catalog's recurring price id, or the
// error for param.
func (s *Stripe) recurringPriceLocked(id, param string) (*priceRec, int, *apiError) {
	p, ok := s.catalog.prices[id]
	if !ok {
		e := noSuch(param, "price", id)
		e.Message += ". Create it first (POST /v1/prices) or use one of the catalog's prices."
		return nil, http.StatusNotFound, &e
	}
	if p.Interval == "" {
		return nil, http.StatusBadRequest, &apiError{Type: "invalid_request_error", Param: param,
			Message: fmt.Sprintf("The price specified (%s) is set to type=one_time but this field only accepts prices with type=recurring.", id)}
	}
	if !p.Active {
		return nil, http.StatusBadRequest, &apiError{Type: "invalid_request_error", Param: param,
			Message: fmt.Sprintf("The price specified (%s) is inactive. This field only accepts active prices.", id)}
	}
	return p, 0, nil
}

// POST /v1/subscriptions
func (s *Stripe) createSubscription(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	cus := f.require("customer")
	items := f.indices("items")
	if len(items) == 0 && f.err() == nil {
		f.fail(missingParam("items"))
	}
	if len(items) > 1 {
		f.invalid("items", "", "The emulator supports subscriptions with one item: send items[0] only.")
	}
	var priceID string
	if len(items) == 1 {
		priceID = f.require(fmt.Sprintf("items[%d][price]", items[0]))
	}
	qty := int64(1)
	if len(items) == 1 {
		if n, ok := f.atLeast(fmt.Sprintf("items[%d][quantity]", items[0]), 1); ok {
			qty = n
		}
	}
	days, hasDays := f.atLeast("trial_period_days", 0)
	trialNow := f.str("trial_end") == "now"
	var trialEnd time.Time
	hasTrialEnd := false
	if !trialNow {
		trialEnd, hasTrialEnd = f.unix("trial_end")
	}
	capEnd, _ := f.boolean("cancel_at_period_end")
	cancelAt, hasCancelAt := f.unix("cancel_at")
	pm := f.str("default_payment_method")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if _, ok := s.customers[cus]; !ok {
		writeError(w, http.StatusNotFound, noSuch("customer", "customer", cus))
		return
	}
	price, status, e := s.recurringPriceLocked(priceID, fmt.Sprintf("items[%d][price]", items[0]))
	if e != nil {
		writeError(w, status, *e)
		return
	}
	if pm != "" {
		if m, ok := s.billing.methods[pm]; !ok || m.Customer != cus {
			writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Param: "default_payment_method",
				Message: fmt.Sprintf("The customer does not have a payment method with the ID %s. Attach it to the customer first.", pm)})
			return
		}
	}
	switch {
	case hasTrialEnd && !trialEnd.After(now):
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Param: "trial_end",
			Message: "Invalid timestamp: trial_end must be in the future (by the emulator's clock), or \"now\"."})
		return
	case hasCancelAt && !cancelAt.After(now):
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Param: "cancel_at",
			Message: "Invalid timestamp: cancel_at must be in the future (by the emulator's clock)."})
		return
	}
	sub := &SubscriptionSpec{ID: NewID("sub"), Customer: cus, Status: "active", Created: now, CurrentPeriodStart: now,
		Quantity: qty, Metadata: f.metadata("metadata", nil), DefaultPaymentMethod: pm}
	sub.usePrice(price)
	sub.CurrentPeriodEnd = now.Add(period(price.Interval, price.IntervalCount))
	if hasDays && days > 0 && !hasTrialEnd {
		trialEnd, hasTrialEnd = now.Add(time.Duration(days)*24*time.Hour), true
	}
	if hasTrialEnd && !trialNow {
		sub.Status, sub.TrialStart, sub.TrialEnd, sub.CurrentPeriodEnd = "trialing", now, trialEnd, trialEnd
	}
	if hasCancelAt {
		sub.CancelAt = cancelAt
	} else if capEnd {
		sub.CancelAtPeriodEnd, sub.CancelAt = true, sub.CurrentPeriodEnd
	}
	o := originOf(w, r)
	inv := s.newInvoiceLocked(sub, "subscription_create", now)
	s.subs[sub.ID] = sub
	s.emitLocked("customer.subscription.created", sub.object(), nil, o)
	s.invoiceEventsLocked(inv, o)
	s.entitlementsChangedLocked(cus, o)
	writeJSON(w, http.StatusOK, s.subObjectLocked(sub, f.expand()))
}

// POST /v1/subscriptions/{id}
func (s *Stripe) updateSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := newForm(r)
	var ch subChange
	items := f.indices("items")
	var priceID, itemID string
	switch len(items) {
	case 0:
	case 1:
		k := fmt.Sprintf("items[%d]", items[0])
		priceID, itemID = f.str(k+"[price]"), f.str(k+"[id]")
		if n, ok := f.atLeast(k+"[quantity]", 1); ok {
			ch.quantity = n
		}
	default:
		f.invalid("items", "", "The emulator supports subscriptions with one item: send items[0] (with the item's id and the new price) only.")
	}
	if v, ok := f.boolean("cancel_at_period_end"); ok {
		ch.cancelAtPeriodEnd = &v
	}
	if v, ok := f.opt("cancel_at"); ok {
		t := time.Time{}
		if v != "" {
			t, _ = f.unix("cancel_at")
		}
		ch.cancelAt = &t
	}
	if v, ok := f.opt("trial_end"); ok {
		var t time.Time
		if v != "now" {
			t, _ = f.unix("trial_end")
		}
		ch.trialEnd = &t
	}
	if v, ok := f.opt("default_payment_method"); ok {
		ch.defaultPM = &v
	}
	ch.noInvoice = f.oneOf("proration_behavior", "create_prorations", "create_prorations", "always_invoice", "none") == "none"
	ch.metadata = func(m map[string]string) map[string]string { return f.metadata("metadata", m) }
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "subscription", id))
		return
	}
	if itemID != "" && itemID != sub.itemID() {
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Param: fmt.Sprintf("items[%d][id]", items[0]),
			Message: fmt.Sprintf("The subscription item %s is not this subscription's (its item is %s).", itemID, sub.itemID())})
		return
	}
	if priceID != "" {
		p, status, e := s.recurringPriceLocked(priceID, fmt.Sprintf("items[%d][price]", items[0]))
		if e != nil {
			writeError(w, status, *e)
			return
		}
		ch.price = p
	}
	if status, e := s.changeSubLocked(sub, ch, originOf(w, r)); e != nil {
		writeError(w, status, *e)
		return
	}
	writeJSON(w, http.StatusOK, s.subObjectLocked(sub, f.expand()))
}

// changeSubLocked applies ch to sub and emits customer.subscription.updated
// with the changed fields' old values, then the invoice events of a plan
// change, then an entitlement summary if the customer's features changed.
func (s *Stripe) changeSubLocked(sub *SubscriptionSpec, ch subChange, o origin) (int, *apiError) {
	now := s.now()
	if terminal(sub.Status) {
		return http.StatusBadRequest, &apiError{Type: "invalid_request_error",
			Message: fmt.Sprintf("A canceled subscription (%s) can only update its cancellation_details and metadata; create a new one instead.", sub.ID)}
	}
	if ch.defaultPM != nil && *ch.defaultPM != "" {
		if m, ok := s.billing.methods[*ch.defaultPM]; !ok || m.Customer != sub.Customer {
			return http.StatusBadRequest, &apiError{Type: "invalid_request_error", Param: "default_payment_method",
				Message: fmt.Sprintf("The customer does not have a payment method with the ID %s. Attach it to the customer first.", *ch.defaultPM)}
		}
	}
	if ch.cancelAt != nil && !ch.cancelAt.IsZero() && !ch.cancelAt.After(now) {
		return http.StatusBadRequest, &apiError{Type: "invalid_request_error", Param: "cancel_at",
			Message: "Invalid timestamp: cancel_at must be in the future (by the emulator's clock)."}
	}
	if ch.trialEnd != nil && !ch.trialEnd.IsZero() && !ch.trialEnd.After(now) {
		return http.StatusBadRequest, &apiError{Type: "invalid_request_error", Param: "trial_end",
			Message: "Invalid timestamp: trial_end must be in the future (by the emulator's clock), or \"now\"."}
	}
	old := sub.object()
	before := sub.clone()
	if ch.metadata != nil {
		sub.Metadata = ch.metadata(sub.Metadata)
	}
	if ch.defaultPM != nil {
		sub.DefaultPaymentMethod = *ch.defaultPM
	}
	if ch.cancelAtPeriodEnd != nil {
		sub.CancelAtPeriodEnd = *ch.cancelAtPeriodEnd
		sub.CancelAt = time.Time{}
		if sub.CancelAtPeriodEnd {
			sub.CancelAt = sub.CurrentPeriodEnd
		}
	}
	if ch.cancelAt != nil {
		sub.CancelAt, sub.CancelAtPeriodEnd = *ch.cancelAt, false
	}
	var inv *invoiceRec
	newPeriod := false
	if ch.trialEnd != nil && sub.Status == "trialing" {
		if ch.trialEnd.IsZero() { // trial_end=now: the trial ends, a paid period starts
			sub.Status, sub.TrialEnd = "active", now
			newPeriod = true
		} else {
			sub.TrialEnd, sub.CurrentPeriodEnd = *ch.trialEnd, *ch.trialEnd
		}
	}
	if ch.price != nil {
		sub.usePrice(ch.price)
	}
	if ch.quantity > 0 {
		sub.Quantity = ch.quantity
	}
	planChanged := before.PriceID != sub.PriceID || before.Quantity != sub.Quantity
	if planChanged && (sub.Interval != before.Interval || sub.IntervalCount != before.IntervalCount) {
		newPeriod = true // a new interval starts a new period now, as in Stripe
	}
	switch {
	case newPeriod:
		sub.CurrentPeriodStart, sub.CurrentPeriodEnd = now, now.Add(period(sub.Interval, sub.IntervalCount))
		inv = s.newInvoiceLocked(sub, "subscription_update", now)
	case planChanged && sub.Status != "trialing" && !ch.noInvoice:
		inv = s.prorationInvoiceLocked(sub, &before, now)
	}
	if sub.CancelAtPeriodEnd {
		sub.CancelAt = sub.CurrentPeriodEnd // the period may have moved
	}
	if !s.emitChangeLocked("customer.subscription.updated", old, sub.object(), o) {
		return 0, nil
	}
	if inv != nil {
		s.invoiceEventsLocked(inv, o)
	}
	s.entitlementsChangedLocked(sub.Customer, o)
	return 0, nil
}

// DELETE /v1/subscriptions/{id}
func (s *Stripe) cancelSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := newForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "subscription", id))
		return
	}
	if terminal(sub.Status) {
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error",
			Message: fmt.Sprintf("The subscription %s is already canceled.", id)})
		return
	}
	s.endSubLocked(sub, s.now(), originOf(w, r))
	writeJSON(w, http.StatusOK, s.subObjectLocked(sub, f.expand()))
}

// endSubLocked cancels sub at once (at: canceled_at and ended_at) and
// emits customer.subscription.deleted.
func (s *Stripe) endSubLocked(sub *SubscriptionSpec, at time.Time, o origin) {
	sub.Status, sub.CanceledAt = "canceled", at
	s.emitLocked("customer.subscription.deleted", sub.object(), nil, o)
	s.entitlementsChangedLocked(sub.Customer, o)
}

// GET /v1/subscriptions/{id}
func (s *Stripe) getSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := newForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "subscription", id))
		return
	}
	writeJSON(w, http.StatusOK, s.subObjectLocked(sub, f.expand()))
}

// GET /v1/subscriptions
func (s *Stripe) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	cus, status, price := f.str("customer"), f.str("status"), f.str("price")
	expand := listExpand(f.expand())
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	var objs []map[string]any
	for _, sub := range s.sortedSubsLocked() {
		switch {
		case cus != "" && sub.Customer != cus,
			price != "" && sub.PriceID != price,
			status == "" && sub.Status == "canceled",
			status == "ended" && !terminal(sub.Status),
			status != "" && status != "all" && status != "ended" && sub.Status != status:
			continue
		}
		ids = append(ids, sub.ID)
		objs = append(objs, s.subObjectLocked(sub, expand))
	}
	writeList(w, f, PathSubscriptions, ids, objs)
}
