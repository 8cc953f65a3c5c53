package billingtest

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pagePrefix starts the path of a hosted portal page: /p/session/<token>.
const pagePrefix = "/p/session/"

type portalState struct {
	configs map[string]*portalConfig
	pages   map[string]*portalPage // by token
}

// portalPage is the hosted page's state of one portal session.
type portalPage struct {
	token, session, customer, config string
	returnURL, locale                string
	flow                             url.Values
	flowDone                         bool      // the deep-link flow was completed
	lastSeen                         time.Time // emulator clock
	used                             bool      // the user went back to the app
}

// The hosted portal. Every page is server-rendered HTML with plain forms
// (no JavaScript); a submitted form answers 303 to the next page. The
// element ids are the test contract the package documentation lists.
//
//	GET  /p/session/{token}                      the portal (or the deep-link flow's step)
//	GET  /p/session/{token}/return               marks the session used, 303 to its return URL
//	POST /p/session/{token}/change-plan          price[, quantity] -> 303 to the confirm step
//	GET  /p/session/{token}/change-plan/confirm  the confirm step: form#confirm
//	POST /p/session/{token}/change-plan/confirm  changes the plan -> 303 to the confirmation
//	POST /p/session/{token}/cancel               -> 303 to the confirm step
//	GET  /p/session/{token}/cancel/confirm       the confirm step: form#confirm
//	POST /p/session/{token}/cancel/confirm       cancels (at period end or at once, as configured)
//	POST /p/session/{token}/renew                undoes a cancellation at period end
//	POST /p/session/{token}/payment-method       card=visa|mastercard|amex: attach, make default
//	POST /p/session/{token}/billing-info         email, name, phone, address[...]
//	GET  /p/session/{token}/done?what=...        the confirmation, with #return
func (s *Stripe) pageRoutes(handle func(methods, path string, h http.HandlerFunc)) {
	p := pagePrefix + "{token}"
	handle("GET", p, s.page(s.pageHome))
	handle("GET", p+"/return", s.page(s.pageReturn))
	handle("POST", p+"/change-plan", s.page(s.pageChangePlan))
	handle("GET POST", p+"/change-plan/confirm", s.page(s.pageConfirmPlan))
	handle("POST", p+"/cancel", s.page(s.pageCancel))
	handle("GET POST", p+"/cancel/confirm", s.page(s.pageConfirmCancel))
	handle("POST", p+"/renew", s.page(s.pageRenew))
	handle("POST", p+"/payment-method", s.page(s.pagePaymentMethod))
	handle("POST", p+"/billing-info", s.page(s.pageBillingInfo))
	handle("GET", p+"/done", s.page(s.pageDone))
}

// pageCtx is what a page handler works with, s.mu held.
type pageCtx struct {
	pg   *portalPage
	conf *portalConfig
	cus  *StripeCustomer
	r    *http.Request
}

// pageResult is a page handler's answer: a redirect, or a page.
type pageResult struct {
	redirect string
	status   int
	view     *pageView
}

// page wraps a page handler: it answers 404 for an unknown session and 410
// for a used or idle one, and otherwise runs h with s.mu held, then
// renders or redirects after unlocking.
func (s *Stripe) page(h func(c *pageCtx) pageResult) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res := s.runPage(r, h)
		if res.redirect != "" {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Referrer-Policy", "no-referrer")
			http.Redirect(w, r, res.redirect, http.StatusSeeOther)
			return
		}
		writePage(w, res.status, portalTemplate, res.view)
	}
}

func (s *Stripe) runPage(r *http.Request, h func(c *pageCtx) pageResult) pageResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	pg, ok := s.portal.pages[r.PathValue("token")]
	if !ok {
		return pageResult{status: http.StatusNotFound, view: &pageView{Lang: "en", Page: "not-found", Title: "Not found"}}
	}
	now := s.now()
	if pg.used || now.Sub(pg.lastSeen) > s.cfg.PortalIdleTimeout {
		return pageResult{status: http.StatusGone, view: &pageView{Lang: langOf(pg.locale), Page: "expired", Title: "Session expired"}}
	}
	pg.lastSeen = now
	conf, ok := s.portal.configs[pg.config]
	if !ok {
		conf = s.portal.configs[defaultConfigID]
	}
	cus, ok := s.customers[pg.customer]
	if !ok {
		return s.pageError(pg, http.StatusNotFound, "This customer no longer exists.")
	}
	return h(&pageCtx{pg: pg, conf: conf, cus: cus, r: r})
}

func langOf(locale string) string {
	if locale == "" || locale == "auto" {
		return "en"
	}
	return locale
}

// base is the path every link and form of pg starts with.
func (pg *portalPage) base() string { return pagePrefix + pg.token }

func (s *Stripe) pageError(pg *portalPage, status int, msg string) pageResult {
	return pageResult{status: status, view: &pageView{Lang: langOf(pg.locale), Page: "error", Title: "Something went wrong",
		Error: msg, Base: pg.base(), Home: pg.flow == nil || pg.flowDone}}
}

// flowType is the type of pg's deep-link flow still to complete, or "".
func (pg *portalPage) flowType() string {
	if pg.flow == nil || pg.flowDone {
		return ""
	}
	return pg.flow.Get("flow_data[type]")
}

// flowSub is the subscription of pg's deep-link flow, if it names one.
func (pg *portalPage) flowSub() string {
	t := pg.flowType()
	if t == "" || t == "payment_method_update" {
		return ""
	}
	return pg.flow.Get("flow_data[" + t + "][subscription]")
}

// subLocked returns the subscription a page acts on: the id sent (or the
// flow's), which must be the customer's, or the customer's newest one not
// canceled; nil if none.
func (s *Stripe) subLocked(c *pageCtx, id string) *SubscriptionSpec {
	if id == "" {
		id = c.pg.flowSub()
	}
	if id != "" {
		if sub, ok := s.subs[id]; ok && sub.Customer == c.cus.ID {
			return sub
		}
		return nil
	}
	for _, sub := range s.sortedSubsLocked() {
		if sub.Customer == c.cus.ID && !terminal(sub.Status) {
			return sub
		}
	}
	return nil
}

// GET /p/session/{token}: the portal home, or the flow's first step.
func (s *Stripe) pageHome(c *pageCtx) pageResult {
	switch c.pg.flowType() {
	case "payment_method_update":
		v := s.viewLocked(c, "payment", "Update your payment method")
		v.ShowPayment = true
		return pageResult{status: http.StatusOK, view: v}
	case "subscription_cancel":
		return s.cancelConfirmLocked(c, c.pg.flowSub())
	case "subscription_update":
		v := s.viewLocked(c, "plans", "Change your plan")
		if !v.ShowPlans {
			return s.pageError(c.pg, http.StatusBadRequest, "This subscription cannot be changed here.")
		}
		return pageResult{status: http.StatusOK, view: v}
	case "subscription_update_confirm":
		price := c.pg.flow.Get("flow_data[subscription_update_confirm][items][0][price]")
		qty := c.pg.flow.Get("flow_data[subscription_update_confirm][items][0][quantity]")
		return s.planConfirmLocked(c, c.pg.flowSub(), price, qty)
	}
	return pageResult{status: http.StatusOK, view: s.viewLocked(c, "home", "Billing")}
}

// GET /p/session/{token}/return
func (s *Stripe) pageReturn(c *pageCtx) pageResult {
	c.pg.used = true
	return pageResult{redirect: c.pg.returnURL}
}

// POST /p/session/{token}/change-plan
func (s *Stripe) pageChangePlan(c *pageCtx) pageResult {
	f := c.r.PostForm
	q := url.Values{"price": {f.Get("price")}, "quantity": {f.Get("quantity")}, "subscription": {f.Get("subscription")}}
	if res, ok := s.checkPlanLocked(c, f.Get("subscription"), f.Get("price"), f.Get("quantity")); !ok {
		return res
	}
	return pageResult{redirect: c.pg.base() + "/change-plan/confirm?" + q.Encode()}
}

// checkPlanLocked validates a plan change picked on the page.
func (s *Stripe) checkPlanLocked(c *pageCtx, subID, price, qty string) (pageResult, bool) {
	if !c.conf.update {
		return s.pageError(c.pg, http.StatusForbidden, "Plan changes are turned off in this portal."), false
	}
	sub := s.subLocked(c, subID)
	if sub == nil || terminal(sub.Status) {
		return s.pageError(c.pg, http.StatusBadRequest, "There is no subscription to change."), false
	}
	if price == "" {
		price = sub.PriceID
	}
	if price != sub.PriceID && (!slices.Contains(c.conf.updateAllowed, "price") || !slices.Contains(s.allowedPricesLocked(c.conf), price)) {
		return s.pageError(c.pg, http.StatusBadRequest, fmt.Sprintf("The plan %q is not offered here; pick one of the plans listed.", price)), false
	}
	n := sub.Quantity
	if qty != "" {
		v, err := strconv.ParseInt(qty, 10, 64)
		if err != nil || v < 1 {
			return s.pageError(c.pg, http.StatusBadRequest, "The quantity must be a whole number of at least 1."), false
		}
		if v != sub.Quantity && !slices.Contains(c.conf.updateAllowed, "quantity") {
			return s.pageError(c.pg, http.StatusBadRequest, "The quantity cannot be changed in this portal."), false
		}
		n = v
	}
	if price == sub.PriceID && n == sub.Quantity {
		return s.pageError(c.pg, http.StatusBadRequest, "You are already on this plan; pick another one."), false
	}
	return pageResult{}, true
}

// GET and POST /p/session/{token}/change-plan/confirm
func (s *Stripe) pageConfirmPlan(c *pageCtx) pageResult {
	f := c.r.Form
	if c.r.Method == http.MethodGet {
		return s.planConfirmLocked(c, f.Get("subscription"), f.Get("price"), f.Get("quantity"))
	}
	subID, price, qty := f.Get("subscription"), f.Get("price"), f.Get("quantity")
	if res, ok := s.checkPlanLocked(c, subID, price, qty); !ok {
		return res
	}
	sub := s.subLocked(c, subID)
	ch := subChange{noInvoice: c.conf.updateProration == "none"}
	if price != "" && price != sub.PriceID {
		p, _, e := s.recurringPriceLocked(price, "price")
		if e != nil {
			return s.pageError(c.pg, http.StatusBadRequest, e.Message)
		}
		ch.price = p
	}
	if qty != "" {
		ch.quantity, _ = strconv.ParseInt(qty, 10, 64)
	}
	if _, e := s.changeSubLocked(sub, ch, origin{}); e != nil {
		return s.pageError(c.pg, http.StatusBadRequest, e.Message)
	}
	return s.completeLocked(c, "plan", sub.ID)
}

// planConfirmLocked renders the confirm step of a plan change.
func (s *Stripe) planConfirmLocked(c *pageCtx, subID, price, qty string) pageResult {
	if res, ok := s.checkPlanLocked(c, subID, price, qty); !ok {
		return res
	}
	sub := s.subLocked(c, subID)
	next := sub.clone()
	if p, ok := s.catalog.prices[price]; ok {
		next.usePrice(p)
	}
	if n, err := strconv.ParseInt(qty, 10, 64); err == nil && n > 0 {
		next.Quantity = n
	}
	v := s.viewLocked(c, "confirm", "Confirm your new plan")
	due := int64(0)
	if sub.Status != "trialing" && c.conf.updateProration != "none" {
		now := s.now()
		left := 1.0
		if total := sub.CurrentPeriodEnd.Sub(sub.periodStart()); total > 0 {
			left = min(1, max(0, float64(sub.CurrentPeriodEnd.Sub(now))/float64(total)))
		}
		due = max(0, int64(float64(next.UnitAmount*next.Quantity-sub.UnitAmount*sub.Quantity)*left+0.5))
	}
	v.Confirm = &confirmView{Action: c.pg.base() + "/change-plan/confirm", Button: "Confirm",
		Summary: fmt.Sprintf("From %s to %s. Due today: %s.", s.planLabelLocked(sub), s.planLabelLocked(&next), money(due, next.Currency)),
		Hidden:  []kv{{"subscription", sub.ID}, {"price", next.PriceID}, {"quantity", strconv.FormatInt(next.Quantity, 10)}}}
	return pageResult{status: http.StatusOK, view: v}
}

// POST /p/session/{token}/cancel
func (s *Stripe) pageCancel(c *pageCtx) pageResult {
	if res, ok := s.checkCancelLocked(c, c.r.PostForm.Get("subscription")); !ok {
		return res
	}
	return pageResult{redirect: c.pg.base() + "/cancel/confirm?" + url.Values{"subscription": {c.r.PostForm.Get("subscription")}}.Encode()}
}

func (s *Stripe) checkCancelLocked(c *pageCtx, subID string) (pageResult, bool) {
	if !c.conf.cancel {
		return s.pageError(c.pg, http.StatusForbidden, "Cancellation is turned off in this portal."), false
	}
	sub := s.subLocked(c, subID)
	switch {
	case sub == nil || terminal(sub.Status):
		return s.pageError(c.pg, http.StatusBadRequest, "There is no subscription to cancel."), false
	case sub.CancelAtPeriodEnd && c.conf.cancelMode == "at_period_end":
		return s.pageError(c.pg, http.StatusBadRequest, "This subscription is already set to cancel at the end of the period."), false
	}
	return pageResult{}, true
}

// GET and POST /p/session/{token}/cancel/confirm
func (s *Stripe) pageConfirmCancel(c *pageCtx) pageResult {
	subID := c.r.Form.Get("subscription")
	if c.r.Method == http.MethodGet {
		return s.cancelConfirmLocked(c, subID)
	}
	if res, ok := s.checkCancelLocked(c, subID); !ok {
		return res
	}
	sub := s.subLocked(c, subID)
	if c.conf.cancelMode == "immediately" {
		s.endSubLocked(sub, s.now(), origin{})
	} else {
		yes := true
		if _, e := s.changeSubLocked(sub, subChange{cancelAtPeriodEnd: &yes}, origin{}); e != nil {
			return s.pageError(c.pg, http.StatusBadRequest, e.Message)
		}
	}
	return s.completeLocked(c, "cancel", sub.ID)
}

func (s *Stripe) cancelConfirmLocked(c *pageCtx, subID string) pageResult {
	if res, ok := s.checkCancelLocked(c, subID); !ok {
		return res
	}
	sub := s.subLocked(c, subID)
	v := s.viewLocked(c, "confirm", "Cancel your plan")
	summary := fmt.Sprintf("Your %s plan will be canceled at the end of the period, on %s. Until then it stays active.",
		s.planLabelLocked(sub), day(sub.CurrentPeriodEnd))
	if c.conf.cancelMode == "immediately" {
		summary = fmt.Sprintf("Your %s plan will be canceled now.", s.planLabelLocked(sub))
	}
	v.Confirm = &confirmView{Action: c.pg.base() + "/cancel/confirm", Button: "Cancel plan", Summary: summary,
		Hidden: []kv{{"subscription", sub.ID}}, Reasons: c.conf.cancelReasons}
	return pageResult{status: http.StatusOK, view: v}
}

// POST /p/session/{token}/renew
func (s *Stripe) pageRenew(c *pageCtx) pageResult {
	sub := s.subLocked(c, c.r.PostForm.Get("subscription"))
	if sub == nil || terminal(sub.Status) || !sub.CancelAtPeriodEnd {
		return s.pageError(c.pg, http.StatusBadRequest, "This subscription is not set to cancel.")
	}
	no := false
	if _, e := s.changeSubLocked(sub, subChange{cancelAtPeriodEnd: &no}, origin{}); e != nil {
		return s.pageError(c.pg, http.StatusBadRequest, e.Message)
	}
	return s.completeLocked(c, "renew", sub.ID)
}

// POST /p/session/{token}/payment-method
func (s *Stripe) pagePaymentMethod(c *pageCtx) pageResult {
	if !c.conf.paymentMethodUpdate {
		return s.pageError(c.pg, http.StatusForbidden, "Payment methods cannot be changed in this portal.")
	}
	card := c.r.PostForm.Get("card")
	if _, ok := testCards[card]; !ok {
		return s.pageError(c.pg, http.StatusBadRequest, "Pick one of the test cards listed.")
	}
	m := s.newMethodLocked(card)
	s.attachLocked(m, c.cus.ID, origin{})
	s.setDefaultMethodLocked(c.cus, m, origin{})
	return s.completeLocked(c, "payment-method", "")
}

// POST /p/session/{token}/billing-info
func (s *Stripe) pageBillingInfo(c *pageCtx) pageResult {
	if !c.conf.customerUpdate {
		return s.pageError(c.pg, http.StatusForbidden, "Billing information cannot be changed in this portal.")
	}
	allowed := url.Values{}
	for k, v := range c.r.PostForm {
		field, _, _ := strings.Cut(k, "[")
		if slices.Contains(c.conf.allowedUpdates, field) && (field != "address" || k == "address" || slices.ContainsFunc(addressFields, func(a string) bool { return k == "address["+a+"]" })) {
			allowed[k] = v
		}
	}
	if e, ok := allowed["email"]; ok && (len(e) == 0 || !strings.Contains(e[0], "@")) {
		return s.pageError(c.pg, http.StatusBadRequest, "Enter an email address, such as you@example.com.")
	}
	old := customerJSON(c.cus)
	next := *c.cus
	next.Metadata = cloneMap(c.cus.Metadata)
	if e := s.applyCustomerLocked(&next, &form{v: allowed}); e != nil {
		return s.pageError(c.pg, http.StatusBadRequest, e.Message)
	}
	*c.cus = next
	s.emitChangeLocked("customer.updated", old, customerJSON(c.cus), origin{})
	return s.completeLocked(c, "billing-info", "")
}

// completeLocked ends a change: a deep-link flow goes where its
// after_completion says (a redirect marks the session used); otherwise
// the confirmation page.
func (s *Stripe) completeLocked(c *pageCtx, what, subID string) pageResult {
	done := c.pg.base() + "/done?" + url.Values{"what": {what}, "subscription": {subID}}.Encode()
	if c.pg.flowType() == "" {
		return pageResult{redirect: done}
	}
	c.pg.flowDone = true
	switch c.pg.flow.Get("flow_data[after_completion][type]") {
	case "redirect":
		c.pg.used = true
		return pageResult{redirect: c.pg.flow.Get("flow_data[after_completion][redirect][return_url]")}
	case "hosted_confirmation":
		return pageResult{redirect: done + "&flow=1"}
	}
	return pageResult{redirect: c.pg.base() + "?" + url.Values{"notice": {what}}.Encode()}
}

// GET /p/session/{token}/done
func (s *Stripe) pageDone(c *pageCtx) pageResult {
	q := c.r.Form
	v := s.viewLocked(c, "done", "Done")
	sub := s.subLocked(c, q.Get("subscription"))
	v.Message = s.doneMessageLocked(q.Get("what"), sub)
	if q.Get("flow") != "" {
		v.Custom = c.pg.flow.Get("flow_data[after_completion][hosted_confirmation][custom_message]")
		v.Home = false
	}
	return pageResult{status: http.StatusOK, view: v}
}

func (s *Stripe) doneMessageLocked(what string, sub *SubscriptionSpec) string {
	switch what {
	case "plan":
		if sub != nil {
			return "Your plan was changed to " + s.planLabelLocked(sub) + "."
		}
	case "cancel":
		if sub != nil && terminal(sub.Status) {
			return "Your subscription was canceled."
		}
		if sub != nil {
			return "Your subscription will be canceled on " + day(sub.CurrentPeriodEnd) + "."
		}
	case "renew":
		return "Your subscription will renew."
	case "payment-method":
		return "Your payment method was updated."
	case "billing-info":
		return "Your billing information was updated."
	}
	return "Your changes were saved."
}

var notices = map[string]string{"plan": "Your plan was changed.", "cancel": "Your cancellation was recorded.",
	"renew": "Your subscription will renew.", "payment-method": "Your payment method was updated.",
	"billing-info": "Your billing information was updated."}

func day(t time.Time) string { return t.UTC().Format("January 2, 2006") }

// planLabelLocked names sub's plan: the product's name and the price.
func (s *Stripe) planLabelLocked(sub *SubscriptionSpec) string {
	name := sub.ProductID
	if p, ok := s.catalog.products[sub.ProductID]; ok {
		name = p.Name
	}
	label := fmt.Sprintf("%s (%s a %s)", name, money(sub.UnitAmount, sub.Currency), sub.Interval)
	if sub.Quantity > 1 {
		label = fmt.Sprintf("%d × %s", sub.Quantity, label)
	}
	return label
}

// The page's view model.
type (
	pageView struct {
		Lang, Title, Headline, Page string
		Base                        string // path prefix of every link and form
		Notice, Error, Message      string
		Custom                      string // a hosted confirmation's custom message
		Home                        bool   // show the link back to the portal's home
		Sub                         *subView
		Others                      []subView
		ShowPayment                 bool
		Methods                     []methodView
		Cards                       []cardView
		ShowInvoices                bool
		Invoices                    []invoiceLink
		ShowPlans                   bool
		Prices                      []priceOption
		Quantity                    int64 // shown when quantity changes are allowed
		AllowQuantity, AllowPrice   bool
		ShowCancel, ShowRenew       bool
		ShowBilling                 bool
		Billing                     billingView
		Confirm                     *confirmView
	}
	subView struct {
		ID, Price, Status, Plan, Renewal string
	}
	methodView  struct{ Brand, Last4, Default string }
	cardView    struct{ Name, Label string }
	invoiceLink struct{ Number, Date, Amount, Status, Hosted, PDF string }
	priceOption struct {
		ID, Label string
		Checked   bool
	}
	billingView struct {
		Email, Name, Phone                         string
		AllowEmail, AllowName, AllowPhone, AllowAd bool
		Address                                    []kvLabel
	}
	kvLabel     struct{ Name, Label, Value string }
	kv          struct{ Name, Value string }
	confirmView struct {
		Action, Button, Summary string
		Hidden                  []kv
		Reasons                 bool
	}
)

// viewLocked builds the portal's view of c for page, honouring the
// configuration's features.
func (s *Stripe) viewLocked(c *pageCtx, page, title string) *pageView {
	conf := c.conf
	v := &pageView{Lang: langOf(c.pg.locale), Title: title, Headline: conf.headline, Page: page, Base: c.pg.base(),
		Home: c.pg.flowType() == "" && page != "home"}
	if page == "home" {
		v.Notice = notices[c.r.Form.Get("notice")]
	}
	sub := s.subLocked(c, c.r.Form.Get("subscription"))
	if sub != nil {
		v.Sub = s.subViewLocked(sub)
		for _, other := range s.sortedSubsLocked() {
			if other.Customer == c.cus.ID && other != sub && !terminal(other.Status) {
				v.Others = append(v.Others, *s.subViewLocked(other))
			}
		}
		live := !terminal(sub.Status)
		v.AllowPrice, v.AllowQuantity = slices.Contains(conf.updateAllowed, "price"), slices.Contains(conf.updateAllowed, "quantity")
		if conf.update && live && (v.AllowPrice || v.AllowQuantity) {
			if v.AllowPrice {
				for _, id := range s.allowedPricesLocked(conf) {
					label := id
					if p, ok := s.catalog.prices[id]; ok {
						tmp := sub.clone()
						tmp.usePrice(p)
						tmp.Quantity = 1
						label = s.planLabelLocked(&tmp)
					}
					v.Prices = append(v.Prices, priceOption{ID: id, Label: label, Checked: id == sub.PriceID})
				}
			}
			v.Quantity = sub.Quantity
			v.ShowPlans = len(v.Prices) > 0 || v.AllowQuantity
		}
		v.ShowCancel = conf.cancel && live && !(sub.CancelAtPeriodEnd && conf.cancelMode == "at_period_end")
		v.ShowRenew = conf.cancel && live && sub.CancelAtPeriodEnd
	}
	if conf.paymentMethodUpdate {
		v.ShowPayment = true
		for _, m := range s.sortedMethodsLocked(c.cus.ID) {
			def := ""
			if m.ID == c.cus.DefaultPaymentMethod {
				def = "default"
			}
			v.Methods = append(v.Methods, methodView{Brand: m.Brand, Last4: m.Last4, Default: def})
		}
		for _, name := range testCardNames {
			card := testCards[name]
			v.Cards = append(v.Cards, cardView{Name: name, Label: fmt.Sprintf("%s •••• %s (test card)", card.brand, card.last4)})
		}
	}
	if conf.invoiceHistory {
		v.ShowInvoices = true
		for _, inv := range s.sortedInvoicesLocked() {
			if inv.Customer == c.cus.ID {
				v.Invoices = append(v.Invoices, invoiceLink{Number: inv.Number, Date: day(inv.Created), Amount: money(inv.AmountDue, inv.Currency),
					Status: inv.status, Hosted: inv.HostedInvoiceURL, PDF: inv.InvoicePDF})
			}
		}
	}
	if conf.customerUpdate {
		v.ShowBilling = true
		a := c.cus.Address
		b := billingView{Email: c.cus.Email, Name: c.cus.Name, Phone: c.cus.Phone,
			AllowEmail: slices.Contains(conf.allowedUpdates, "email"), AllowName: slices.Contains(conf.allowedUpdates, "name"),
			AllowPhone: slices.Contains(conf.allowedUpdates, "phone"), AllowAd: slices.Contains(conf.allowedUpdates, "address")}
		labels := []string{"Address line 1", "Address line 2", "City", "State", "Postal code", "Country"}
		values := []string{a.Line1, a.Line2, a.City, a.State, a.PostalCode, a.Country}
		for i, f := range addressFields {
			b.Address = append(b.Address, kvLabel{Name: "address[" + f + "]", Label: labels[i], Value: values[i]})
		}
		v.Billing = b
		v.ShowBilling = b.AllowEmail || b.AllowName || b.AllowPhone || b.AllowAd
	}
	return v
}

func (s *Stripe) subViewLocked(sub *SubscriptionSpec) *subView {
	renewal := "Renews on " + day(sub.CurrentPeriodEnd)
	switch {
	case terminal(sub.Status):
		renewal = "Ended on " + day(sub.CanceledAt)
	case !sub.CancelAt.IsZero():
		renewal = "Cancels on " + day(sub.CancelAt)
	case sub.Status == "trialing":
		renewal = "Trial ends on " + day(sub.TrialEnd)
	}
	return &subView{ID: sub.ID, Price: sub.PriceID, Status: sub.Status, Plan: s.planLabelLocked(sub), Renewal: renewal}
}

var portalTemplate = template.Must(template.New("portal").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:44em;margin:2em auto;padding:0 1em;color:#222}section{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:1em 0}label{display:block;margin:.3em 0}button{margin-top:.5em;padding:.4em 1em}.notice{background:#eef8ee;padding:.5em}.error{background:#fdecec;padding:.5em}.muted{color:#666}</style>
</head><body>
<header><p class="muted">{{if .Headline}}{{.Headline}} · {{end}}Billing portal (billingtest emulator)</p></header>
<main>
<h1>{{.Title}}</h1>
{{if .Notice}}<p class="notice" id="notice">{{.Notice}}</p>{{end}}
{{if eq .Page "expired"}}
<p id="expired">This portal session has expired or was already used. Go back to the app and open the billing portal again.</p>
{{else if eq .Page "not-found"}}
<p id="not-found">There is no such portal session.</p>
{{else if eq .Page "error"}}
<p class="error" id="error">{{.Error}}</p>
{{if .Home}}<p><a id="home" href="{{.Base}}">Back to the portal</a></p>{{end}}
{{else if eq .Page "done"}}
<p id="confirmation">{{.Message}}</p>
{{if .Custom}}<p id="custom-message">{{.Custom}}</p>{{end}}
{{if .Home}}<p><a id="home" href="{{.Base}}">Back to the portal</a></p>{{end}}
{{else if eq .Page "confirm"}}
{{with .Confirm}}
<form id="confirm" method="post" action="{{.Action}}">
<p id="summary">{{.Summary}}</p>
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}{{if .Reasons}}<label>Why are you canceling? (optional)
<select name="reason"><option value="">—</option><option>too_expensive</option><option>missing_features</option><option>switched_service</option><option>unused</option><option>other</option></select></label>
{{end}}<button type="submit">{{.Button}}</button>
</form>
{{end}}
{{if .Home}}<p><a id="home" href="{{.Base}}">Back to the portal</a></p>{{end}}
{{else}}
{{if or (eq .Page "home") (eq .Page "plans")}}
<section id="subscription">
<h2>Current plan</h2>
{{with .Sub}}<p><strong class="plan">{{.Plan}}</strong></p>
<p>Price <code class="price" id="subscription-price">{{.Price}}</code> · status <code class="status" id="subscription-status">{{.Status}}</code> · {{.Renewal}}</p>
{{else}}<p class="status" id="subscription-status">No active subscription.</p>{{end}}
{{range .Others}}<p class="other">Also: {{.Plan}} <code class="price">{{.Price}}</code> <code class="status">{{.Status}}</code></p>{{end}}
</section>
{{end}}
{{if and .ShowPlans (or (eq .Page "home") (eq .Page "plans"))}}
<section>
<h2>Change plan</h2>
<form id="change-plan" method="post" action="{{.Base}}/change-plan">
<input type="hidden" name="subscription" value="{{.Sub.ID}}">
{{if .AllowPrice}}{{range .Prices}}<label><input type="radio" name="price" value="{{.ID}}"{{if .Checked}} checked{{end}}> {{.Label}} <code>{{.ID}}</code></label>
{{end}}{{end}}{{if .AllowQuantity}}<label>Quantity <input type="number" name="quantity" min="1" value="{{.Quantity}}"></label>
{{end}}<button type="submit">Continue</button>
</form>
</section>
{{end}}
{{if and .ShowCancel (eq .Page "home")}}
<section>
<h2>Cancel plan</h2>
<form id="cancel" method="post" action="{{.Base}}/cancel">
<input type="hidden" name="subscription" value="{{.Sub.ID}}">
<button type="submit">Cancel plan</button>
</form>
</section>
{{end}}
{{if and .ShowRenew (eq .Page "home")}}
<section>
<h2>Renew plan</h2>
<form id="renew" method="post" action="{{.Base}}/renew">
<input type="hidden" name="subscription" value="{{.Sub.ID}}">
<button type="submit">Renew plan</button>
</form>
</section>
{{end}}
{{if and .ShowPayment (or (eq .Page "home") (eq .Page "payment"))}}
<section id="payment-methods">
<h2>Payment methods</h2>
<ul>{{range .Methods}}<li class="payment-method">{{.Brand}} •••• {{.Last4}}{{if .Default}} <em>(default)</em>{{end}}</li>{{else}}<li class="muted">No payment method.</li>{{end}}</ul>
<form id="payment-method" method="post" action="{{.Base}}/payment-method">
{{range $i, $c := .Cards}}<label><input type="radio" name="card" value="{{$c.Name}}"{{if eq $i 0}} checked{{end}}> {{$c.Label}}</label>
{{end}}<button type="submit">Add and make default</button>
</form>
</section>
{{end}}
{{if and .ShowInvoices (eq .Page "home")}}
<section id="invoices">
<h2>Billing history</h2>
<ul>{{range .Invoices}}<li class="invoice"><a href="{{.Hosted}}">{{.Number}}</a> · {{.Date}} · {{.Amount}} · {{.Status}} · <a class="download" href="{{.PDF}}">Download</a></li>{{else}}<li class="muted">No invoices yet.</li>{{end}}</ul>
</section>
{{end}}
{{if and .ShowBilling (eq .Page "home")}}
<section>
<h2>Billing information</h2>
<form id="billing-info" method="post" action="{{.Base}}/billing-info">
{{with .Billing}}{{if .AllowEmail}}<label>Email <input type="email" name="email" value="{{.Email}}" required></label>
{{end}}{{if .AllowName}}<label>Name <input type="text" name="name" value="{{.Name}}"></label>
{{end}}{{if .AllowPhone}}<label>Phone <input type="tel" name="phone" value="{{.Phone}}"></label>
{{end}}{{if .AllowAd}}{{range .Address}}<label>{{.Label}} <input type="text" name="{{.Name}}" value="{{.Value}}"></label>
{{end}}{{end}}{{end}}<button type="submit">Save</button>
</form>
</section>
{{end}}
{{if .Home}}<p><a id="home" href="{{.Base}}">Back to the portal</a></p>{{end}}
{{end}}
{{if and (ne .Page "expired") (ne .Page "not-found")}}<p><a id="return" href="{{.Base}}/return">Return to the app</a></p>{{end}}
</main>
</body></html>
`))

var notFoundPage = template.Must(template.New("404").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body><h1 id="not-found">Not found</h1><p>The emulator has no such page.</p></body></html>
`))

var pageFuncs = template.FuncMap{}

// writePage answers an HTML page. Portal URLs are bearer credentials:
// nothing caches the page and no link sends it on as a Referer.
func writePage(w http.ResponseWriter, status int, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = t.Execute(w, data)
}
