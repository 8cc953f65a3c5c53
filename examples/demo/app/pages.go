package app

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/contafy/billing"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/subscription"
)

// The demo's browser pages (see the package documentation's Pages):
//
//	GET  /login?token=TOKEN    sets the access_token cookie, 303 to /account
//	GET  /logout               clears it, 303 to /account
//	GET  /account              the plan (#plan), lifecycle facts, buttons
//	POST /billing/portal       a portal session (optionally a deep-link flow), 303 to its URL
//	POST /billing/advance-clock  the emulator's clock forward by one period, 303 to /account
//
// The two POST routes are what the page's forms submit, so the page works
// without JavaScript; with it, "Manage billing" calls the JSON endpoint
// POST /api/subscription/create-portal-session instead and follows its url.

// clockPeriod is how far the "Advance clock by a period" button moves the
// emulator's clock: one monthly period and then some, so that a period end
// set 30 days ahead is passed.
const clockPeriod = 720*time.Hour + time.Hour

// clock advances a Stripe emulator's test clock; see [emulatorClock].
type clock interface {
	AdvanceClock(ctx context.Context, d time.Duration) error
}

// emulatorClock is the clock of an emulator reached over HTTP (a
// `billing emulator` given as -stripe-url): POST
// /emulator/clock/advance?by=DURATION, answered 200 once what became due
// has run and its webhooks have been attempted.
type emulatorClock struct {
	base   string
	client *http.Client
}

func (c emulatorClock) AdvanceClock(ctx context.Context, d time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/emulator/clock/advance?by="+url.QueryEscape(d.String()), nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /emulator/clock/advance: %s (is -stripe-url a billing emulator?)", resp.Status)
	}
	return nil
}

// pages serves the browser pages.
type pages struct {
	auth      *tokenAuth
	store     Store
	portal    *billing.PortalService
	subs      *subscription.Client
	prices    []pricePlan // the -price-plans entries that are price ids, for the update-confirm buttons
	returnURL string      // where a deep link that redirects on completion goes: the return sync
	clock     clock       // nil: no test clock (real Stripe, stripe-mock)
	clockOf   string      // what the clock is, for the page
	log       *slog.Logger
}

// pricePlan is one price id of the price table and the plan it grants.
type pricePlan struct {
	Price string
	Plan  billing.Plan
}

// priceList returns the price ids of t, ordered by plan then id.
func priceList(t billing.PriceTable) []pricePlan {
	var out []pricePlan
	for id, p := range t.Prices {
		out = append(out, pricePlan{id, p})
	}
	slices.SortFunc(out, func(a, b pricePlan) int {
		if c := a.Plan.Rank() - b.Plan.Rank(); c != 0 {
			return c
		}
		return strings.Compare(a.Price, b.Price)
	})
	return out
}

func (p *pages) register(mux *http.ServeMux) {
	csrf := http.NewCrossOriginProtection()
	mux.HandleFunc("GET /login", p.login)
	mux.HandleFunc("GET /logout", p.logout)
	mux.HandleFunc("GET /account", p.account)
	mux.Handle("POST /billing/portal", csrf.Handler(http.HandlerFunc(p.openPortal)))
	mux.Handle("POST /billing/advance-clock", csrf.Handler(http.HandlerFunc(p.advanceClock)))
}

// login sets the demo's session cookie (demo only: a real app signs its
// users in its own way) and goes to the account page.
func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if _, err := p.auth.verify(r.Context(), token); err != nil {
		p.render(w, http.StatusUnauthorized, errorPage{Title: "Not signed in", Message: "That sign-in link is unknown or expired."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: billing.DefaultCookieName, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func (p *pages) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: billing.DefaultCookieName, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// fact is one lifecycle line of the account page; ID is its element id.
type fact struct{ ID, Text string }

// facts are the lifecycle lines of v, as the account page shows them.
func facts(v billing.View) []fact {
	day := func(t time.Time) string { return t.UTC().Format("2 January 2006") }
	var out []fact
	switch {
	case !v.EndsAt.IsZero():
		out = append(out, fact{"ends-on", fmt.Sprintf("Your %s plan ends on %s.", v.Plan, day(v.EndsAt))})
	case !v.RenewsAt.IsZero():
		out = append(out, fact{"renews-on", fmt.Sprintf("Your %s plan renews on %s.", v.Plan, day(v.RenewsAt))})
	}
	if !v.TrialEndsAt.IsZero() {
		out = append(out, fact{"trial-ends", fmt.Sprintf("Your trial ends on %s.", day(v.TrialEndsAt))})
	}
	if v.PaymentProblem {
		out = append(out, fact{"payment-problem", "Your last payment failed: update your card in the billing portal."})
	}
	if len(v.Features) > 0 {
		out = append(out, fact{"features", "Features: " + strings.Join(v.Features, ", ")})
	}
	return out
}

type accountPage struct {
	UserID  string
	Plan    billing.Plan
	Status  string // the subscription's Stripe status, if any
	Facts   []fact
	Prices  []pricePlan // update-confirm targets: the prices of other plans
	Clock   string      // what the clock button advances; empty: no button
	Period  string
	Message string // a note from the last action, from ?done=
}

// account is the account page: 401 with a sign-in hint when not signed in.
func (p *pages) account(w http.ResponseWriter, r *http.Request) {
	id, err := p.auth.Authenticate(r)
	if err != nil {
		p.render(w, http.StatusUnauthorized, errorPage{Title: "Not signed in", Message: "Open one of the /login?token=... links the demo printed."})
		return
	}
	u, found, err := p.store.User(r.Context(), id)
	if err != nil {
		p.log.Error("demo: account page", "user", id, "cause", err.Error())
		p.render(w, http.StatusInternalServerError, errorPage{Title: "Something went wrong", Message: "The account could not be read."})
		return
	}
	if !found {
		p.render(w, http.StatusUnauthorized, errorPage{Title: "Not signed in", Message: "This user is not in the store."})
		return
	}
	page := accountPage{UserID: u.ID, Plan: u.Plan, Clock: p.clockOf, Period: clockPeriod.String(), Message: doneMessages[r.URL.Query().Get("done")]}
	if accounts, ok := p.store.(billing.AccountStore); ok {
		if v, ok, err := billing.ViewOf(r.Context(), accounts, id); err == nil && ok {
			page.Status, page.Facts = v.Status, facts(v)
		}
	}
	for _, pp := range p.prices {
		if pp.Plan.Paid() && pp.Plan != u.Plan {
			page.Prices = append(page.Prices, pp)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, http.StatusOK, page)
}

var doneMessages = map[string]string{
	"clock": "The emulator's clock moved forward by one period.",
}

// flowTypes are the deep-link flows the account page offers.
var flowTypes = map[string]billing.FlowType{
	string(billing.FlowPaymentMethodUpdate):       billing.FlowPaymentMethodUpdate,
	string(billing.FlowSubscriptionCancel):        billing.FlowSubscriptionCancel,
	string(billing.FlowSubscriptionUpdate):        billing.FlowSubscriptionUpdate,
	string(billing.FlowSubscriptionUpdateConfirm): billing.FlowSubscriptionUpdateConfirm,
}

// openPortal creates a portal session through the portal service's core
// operation (the same checks as the JSON endpoint) and answers 303 to its
// URL. The form's optional fields: flow (a deep-link flow type) and, for
// subscription_update_confirm, price (the new price).
func (p *pages) openPortal(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		p.render(w, http.StatusBadRequest, errorPage{Title: "Bad request", Message: "The form could not be read."})
		return
	}
	id, err := p.auth.Authenticate(r)
	if err != nil {
		p.render(w, http.StatusUnauthorized, errorPage{Title: "Not signed in", Message: billing.ErrUnauthorized.Message})
		return
	}
	var opts billing.SessionOptions
	if name := r.PostForm.Get("flow"); name != "" {
		typ, ok := flowTypes[name]
		if !ok {
			p.render(w, http.StatusBadRequest, errorPage{Title: "Bad request", Message: "Unknown flow."})
			return
		}
		flow, e := p.flow(r.Context(), id, typ, r.PostForm.Get("price"))
		if e != nil {
			p.renderError(w, id, e)
			return
		}
		opts.Flow = flow
	}
	sess, err := p.portal.CreateSession(r.Context(), id, opts)
	if err != nil {
		p.renderError(w, id, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, sess.URL, http.StatusSeeOther)
}

// flow builds the deep-link flow typ for the user: the flows that act on a
// subscription act on the user's current one (the stored one, else the
// customer's first active one in Stripe); an update confirm changes its
// first item to price. What happens on completion shows both of the
// portal's ways: the payment method update and the plan change end on
// the portal's hosted confirmation (with a link back), the update confirm
// and the cancellation redirect to the return URL (the return sync).
func (p *pages) flow(ctx context.Context, userID string, typ billing.FlowType, price string) (*billing.Flow, error) {
	f := &billing.Flow{Type: typ}
	switch typ {
	case billing.FlowPaymentMethodUpdate, billing.FlowSubscriptionUpdate:
		f.AfterCompletion = &billing.AfterCompletion{Type: billing.AfterHostedConfirmation, Message: "Done: go back to the demo to see your account."}
	default:
		f.AfterCompletion = &billing.AfterCompletion{Type: billing.AfterRedirect, ReturnURL: p.returnURL}
	}
	if typ == billing.FlowPaymentMethodUpdate {
		return f, nil
	}
	u, found, err := p.store.User(ctx, userID)
	switch {
	case err != nil:
		return nil, &billing.Error{Status: http.StatusInternalServerError, Code: "Internal Server Error", Message: "Failed to create portal session", Err: err}
	case !found:
		return nil, billing.ErrUnauthorized
	case !u.Plan.Paid():
		return nil, billing.ErrNotPaid
	case u.StripeCustomerID == "":
		return nil, billing.ErrCustomerNotFound
	}
	sub, err := p.currentSubscription(ctx, u)
	if err != nil {
		return nil, err
	}
	f.Subscription = sub.ID
	if typ == billing.FlowSubscriptionUpdateConfirm {
		if !slices.ContainsFunc(p.prices, func(pp pricePlan) bool { return pp.Price == price }) {
			return nil, &billing.Error{Status: http.StatusBadRequest, Code: "Bad Request", Message: "Pick one of the plan's prices."}
		}
		if sub.Items == nil || len(sub.Items.Data) == 0 {
			return nil, &billing.Error{Status: http.StatusBadRequest, Code: "Bad Request", Message: "The subscription has no item to change."}
		}
		f.Items = []billing.FlowItem{{ID: sub.Items.Data[0].ID, Price: price}}
	}
	return f, nil
}

// errNoSubscription is a paid user whose customer has no live subscription.
var errNoSubscription = &billing.Error{Status: http.StatusNotFound, Code: "Not Found", Message: "No current subscription to act on."}

// currentSubscription reads the user's subscription from Stripe: the stored
// one, else the customer's first that is not canceled.
func (p *pages) currentSubscription(ctx context.Context, u billing.User) (*stripe.Subscription, error) {
	if u.SubscriptionID != "" {
		params := &stripe.SubscriptionParams{}
		params.Context = ctx
		sub, err := p.subs.Get(u.SubscriptionID, params)
		if err == nil && sub.Customer != nil && sub.Customer.ID == u.StripeCustomerID && sub.Status != stripe.SubscriptionStatusCanceled {
			return sub, nil
		}
		var se *stripe.Error
		if err != nil && !(errors.As(err, &se) && se.Code == stripe.ErrorCodeResourceMissing) {
			return nil, &billing.Error{Status: http.StatusInternalServerError, Code: "Internal Server Error", Message: "Failed to read the subscription.", Err: err}
		}
	}
	params := &stripe.SubscriptionListParams{Customer: stripe.String(u.StripeCustomerID)}
	params.Context = ctx
	it := p.subs.List(params)
	for it.Next() {
		if s := it.Subscription(); s.Status != stripe.SubscriptionStatusCanceled && s.Status != stripe.SubscriptionStatusIncompleteExpired {
			return s, nil
		}
	}
	if err := it.Err(); err != nil {
		return nil, &billing.Error{Status: http.StatusInternalServerError, Code: "Internal Server Error", Message: "Failed to read the subscription.", Err: err}
	}
	return nil, errNoSubscription
}

// advanceClock moves the emulator's test clock forward by one period; what
// fell due (a renewal, the end of a subscription canceled at the period
// end, a trial's end) has run and its webhooks have been attempted when it
// answers 303 to the account page.
func (p *pages) advanceClock(w http.ResponseWriter, r *http.Request) {
	if p.clock == nil {
		p.render(w, http.StatusNotImplemented, errorPage{Title: "No test clock", Message: "The Stripe this demo uses has no test clock: only the emulator has one."})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	if err := p.clock.AdvanceClock(ctx, clockPeriod); err != nil {
		p.log.Error("demo: advance the emulator's clock", "cause", err.Error())
		p.render(w, http.StatusInternalServerError, errorPage{Title: "Something went wrong", Message: "The clock could not be advanced."})
		return
	}
	http.Redirect(w, r, "/account?done=clock", http.StatusSeeOther)
}

type errorPage struct {
	Title, Message string
}

// renderError renders err (an *billing.Error, else a 500) as a page; the
// cause goes to the log, never to the page.
func (p *pages) renderError(w http.ResponseWriter, userID string, err error) {
	var e *billing.Error
	if !errors.As(err, &e) {
		e = billing.ErrInternal
	}
	if e.Status >= 500 {
		cause := "unknown"
		if err != nil {
			cause = err.Error()
		}
		p.log.Error("demo: portal", "user", userID, "status", e.Status, "cause", cause)
	}
	p.render(w, e.Status, errorPage{Title: e.Code, Message: e.Message})
}

func (p *pages) render(w http.ResponseWriter, status int, data any) {
	name := "error"
	if _, ok := data.(accountPage); ok {
		name = "account"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTemplates.ExecuteTemplate(w, name, data); err != nil {
		p.log.Warn("demo: render page", "page", name, "cause", err.Error())
	}
}

var pageTemplates = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.}} · billing demo</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
form { display: inline-block; margin: 0 .5rem .5rem 0; }
button { font: inherit; padding: .3rem .8rem; }
#plan { font-weight: bold; }
.note { background: #eef; padding: .5rem; }
.error { color: #a00; }
</style>
</head>
<body>
{{end}}

{{define "account"}}{{template "head" "Your account"}}
<h1>Your account</h1>
{{with .Message}}<p class="note" id="message">{{.}}</p>{{end}}
<p>Signed in as <span id="user">{{.UserID}}</span> (<a href="/logout">sign out</a>).</p>
<p>Your plan: <span id="plan">{{.Plan}}</span></p>
{{with .Status}}<p>Subscription status: <span id="status">{{.}}</span></p>{{end}}
<ul id="lifecycle">
{{range .Facts}}<li id="{{.ID}}">{{.Text}}</li>
{{end}}</ul>

<h2>Billing</h2>
<form id="manage-billing" method="post" action="/billing/portal">
<button type="submit" id="manage-billing-button">Manage billing</button>
</form>
<p id="portal-error" class="error" hidden></p>
<p>Or go straight to one step of the portal:</p>
<form id="flow-payment-method-update" method="post" action="/billing/portal"><input type="hidden" name="flow" value="payment_method_update"><button type="submit">Update payment method</button></form>
<form id="flow-subscription-update" method="post" action="/billing/portal"><input type="hidden" name="flow" value="subscription_update"><button type="submit">Change plan</button></form>
{{range .Prices}}<form id="flow-update-confirm-{{.Price}}" method="post" action="/billing/portal"><input type="hidden" name="flow" value="subscription_update_confirm"><input type="hidden" name="price" value="{{.Price}}"><button type="submit">Switch to {{.Plan}}</button></form>
{{end}}<form id="flow-subscription-cancel" method="post" action="/billing/portal"><input type="hidden" name="flow" value="subscription_cancel"><button type="submit">Cancel subscription</button></form>
{{with .Clock}}
<h2>Test clock</h2>
<form id="advance-clock" method="post" action="/billing/advance-clock">
<button type="submit" id="advance-clock-button">Advance clock by a period</button>
</form>
<p>Moves {{.}} forward by {{$.Period}}: renewals, trial ends and cancellations at the period end happen, and their webhooks reach this demo.</p>
{{end}}
<script>
// With JavaScript, "Manage billing" uses the JSON endpoint, as an app's
// front end would; without it the form posts to /billing/portal.
document.getElementById("manage-billing").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const msg = document.getElementById("portal-error");
  try {
    const res = await fetch("/api/subscription/create-portal-session", {method: "POST", credentials: "same-origin"});
    const body = await res.json();
    if (res.ok && body.url) { window.location.assign(body.url); return; }
    msg.textContent = body.message || res.statusText;
  } catch (e) {
    msg.textContent = "The portal could not be opened.";
  }
  msg.hidden = false;
});
</script>
</body>
</html>
{{end}}

{{define "error"}}{{template "head" .Title}}
<h1 id="error-title">{{.Title}}</h1>
<p id="error-message">{{.Message}}</p>
<p><a href="/account" id="back">Back to your account</a></p>
</body>
</html>
{{end}}
`))
