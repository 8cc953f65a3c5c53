package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/contafy/billing/internal/pace"
)

// statusSeq is the Seq of a webhook event's change: its status's rank, as
// the order of changes on [SubscriptionChange] defines it.
func statusSeq(status string) int64 {
	switch status {
	case "incomplete":
		return 1
	case "canceled", "incomplete_expired":
		return 3
	}
	return 2
}

// EventMode says which Stripe mode's events a webhook handler accepts. A
// Stripe endpoint belongs to one mode, so an event of the other mode means a
// misconfiguration, for example a test-mode signing secret in production,
// where test purchases must not upgrade real users.
type EventMode int

const (
	// TestEvents accepts only test-mode events (livemode false). It is the
	// zero value, so a handler set up for development rejects live events;
	// set [LiveEvents] in production.
	TestEvents EventMode = iota
	// LiveEvents accepts only live-mode events (livemode true).
	LiveEvents
	// AllEvents accepts both modes. Use it only when test and live events
	// cannot reach the same users (separate stores).
	AllEvents
)

// String returns "test", "live" or "all".
func (m EventMode) String() string {
	switch m {
	case TestEvents:
		return "test"
	case LiveEvents:
		return "live"
	case AllEvents:
		return "all"
	}
	return "EventMode(" + strconv.Itoa(int(m)) + ")"
}

// Defaults of [WebhookConfig].
const (
	// DefaultWebhookTolerance is how far a signature's timestamp may be from
	// the handler's clock, in either direction (Stripe's own default).
	DefaultWebhookTolerance = 300 * time.Second
	// DefaultWebhookMaxBody caps a webhook body. Stripe does not document a
	// maximum; a subscription event is usually under 10 KiB, but objects
	// carry up to 50 metadata keys of 500 characters per object and several
	// items, and an event refused for its size (413) is retried and finally
	// lost. 256 KiB is far above real events and still small to read and
	// hash.
	DefaultWebhookMaxBody = 256 << 10
	// DefaultRetain is how long event ids are remembered: Stripe retries a
	// failed delivery for up to three days.
	DefaultRetain = 72 * time.Hour
)

// WebhookConfig configures a [WebhookHandler]. Secrets, Store and Rules are
// required; everything else has a documented default.
type WebhookConfig struct {
	// Secrets are the endpoint's signing secrets (whsec_...). An event is
	// accepted when its signature matches any of them; list the old and the
	// new secret while rolling one. Required, none empty.
	Secrets []string
	// Store applies the changes atomically. Required.
	Store SyncStore
	// Rules map prices to plans and say whether past_due keeps access.
	// Required (Rules.Prices); give the [ReturnSync] the same value.
	Rules PlanRules
	// Subscriptions, if set, reads a subscription from Stripe when two
	// events of one subscription have the same second and the order of
	// their statuses does not decide ([Tie]), and when the product metadata
	// is needed to map a price (Rules.Prices.ProductMetadataKey). Strongly
	// recommended, and needed with a [ReturnSync]. Default nil: a tie keeps
	// the stored state (outcome "tie_kept", logged as a warning). That is
	// right when the stored status ranks higher (it is then the later
	// one, for example active after incomplete) and a guess when both rank
	// the same (two updates of one second, or an event in the second of a
	// ReturnSync read).
	Subscriptions SubscriptionGetter
	// Tolerance is how far the signature's timestamp may be from the
	// handler's clock, in the past or the future. Default 300 s
	// ([DefaultWebhookTolerance]). stripe-go only checks the past; a far
	// future timestamp is refused here too, so a captured request cannot be
	// replayed later.
	Tolerance time.Duration
	// Mode says which events are accepted: [TestEvents] (the default),
	// [LiveEvents] or [AllEvents]. An event of another mode is answered 400
	// and logged as an error, and Stripe retries it for three days, so a
	// fixed configuration still receives it.
	Mode EventMode
	// MaxBodyBytes caps the body; a larger one is answered 413. Default
	// 256 KiB ([DefaultWebhookMaxBody]).
	MaxBodyBytes int64
	// Retain is how long event ids are remembered, to apply each event at
	// most once. Default and minimum 72 h ([DefaultRetain]), as long as
	// Stripe retries.
	Retain time.Duration
	// LinkCheckout handles checkout.session.completed: the session's
	// client_reference_id (the app's user id, set when creating the Checkout
	// session) is linked to its customer with Store.LinkCustomer. Default
	// false: the event is acknowledged and ignored.
	LinkCheckout bool
	// Entitlements, if set, lists a customer's active entitlements from
	// Stripe: to settle two entitlement summaries of one second ([Tie]),
	// and when a summary event does not carry the whole list (has_more).
	// stripe-go's *activeentitlement.Client (package
	// github.com/stripe/stripe-go/v76/entitlements/activeentitlement)
	// satisfies it. Default nil: a tie keeps the stored features
	// ([TieKept]) and a partial list is applied as it is, with a warning.
	Entitlements EntitlementLister
	// Notifier, if set, delivers the plan changes an event committed to the
	// app's hook right after the commit, on the request path (one batch;
	// see [Notifier]). Default nil: changes wait in the store's outbox for
	// an explicit [Notifier.Deliver].
	Notifier *Notifier
	// Logger receives one record per event: event id and type, outcome,
	// status, latency, subscription, customer, user and Stripe request id.
	// Never a secret, a signature or Stripe's error text. Default: discard.
	Logger *slog.Logger
	// Observer receives one Observation (Op "webhook") per request.
	// Default: nil.
	Observer Observer
	// WriteError writes error replies. Default: [WriteError].
	WriteError func(w http.ResponseWriter, r *http.Request, e *Error)
}

// WebhookHandler is the http.Handler for Stripe webhook events (mount it at
// POST /api/subscription/webhook or anywhere; it ignores the path): it
// checks each request's signature, decodes the event (of any API version)
// and applies customer.subscription.* events to the store, each at most
// once and never over newer state (the order is [SubscriptionChange]'s).
// The package documentation's section "Webhook events" lists the checks,
// the events handled and the replies. Build one with [NewWebhookHandler];
// it is safe for concurrent use.
type WebhookHandler struct {
	cfg   WebhookConfig
	log   *slog.Logger
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// NewWebhookHandler checks cfg and returns the handler. It names the first
// missing or invalid setting in its error.
func NewWebhookHandler(cfg WebhookConfig) (*WebhookHandler, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("billing: WebhookConfig.Secrets is required (the endpoint's signing secret, whsec_..., from the Stripe dashboard or `stripe listen`)")
	}
	for i, s := range cfg.Secrets {
		if strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("billing: WebhookConfig.Secrets[%d] is empty (remove it or set the signing secret)", i)
		}
	}
	if cfg.Store == nil {
		return nil, errors.New("billing: WebhookConfig.Store is required (a SyncStore, for example billing.NewMemoryStore())")
	}
	if err := cfg.Rules.validate(); err != nil {
		return nil, fmt.Errorf("billing: WebhookConfig.%w", err)
	}
	switch {
	case cfg.Tolerance < 0:
		return nil, errors.New("billing: WebhookConfig.Tolerance must not be negative (0 means the default, 300 s)")
	case cfg.Tolerance == 0:
		cfg.Tolerance = DefaultWebhookTolerance
	}
	if cfg.Mode < TestEvents || cfg.Mode > AllEvents {
		return nil, fmt.Errorf("billing: WebhookConfig.Mode %d is not TestEvents, LiveEvents or AllEvents", int(cfg.Mode))
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultWebhookMaxBody
	}
	switch {
	case cfg.Retain == 0:
		cfg.Retain = DefaultRetain
	case cfg.Retain < DefaultRetain:
		return nil, fmt.Errorf("billing: WebhookConfig.Retain %v is shorter than Stripe's three days of retries (use at least 72h, or 0 for the default)", cfg.Retain)
	}
	if cfg.WriteError == nil {
		cfg.WriteError = WriteError
	}
	return &WebhookHandler{
		cfg:   cfg,
		log:   orDiscard(cfg.Logger),
		now:   time.Now,
		sleep: pace.Sleep,
	}, nil
}

// The webhook's error replies.
var (
	errNoSignature  = badRequest("Missing Stripe-Signature header")
	errBadSignature = badRequest("Invalid Stripe signature")
	errTimestamp    = badRequest("Stripe signature timestamp outside tolerance")
	errBadEvent     = badRequest("Invalid webhook event")
	errMode         = badRequest("Event mode (live or test) not accepted by this endpoint")
)

// webhookReply is the body of a 200 reply. Stripe ignores it; it shows in
// the dashboard's delivery log.
type webhookReply struct {
	Received bool    `json:"received"`
	Outcome  Outcome `json:"outcome"`
}

// eventResult is what handling one event did, for the reply and the log.
type eventResult struct {
	outcome    Outcome
	err        *Error // nil for 200
	reason     string // why a request was refused or failed
	eventID    string
	eventType  string
	apiVersion string
	subID      string
	customerID string
	status     string
	userID     string
	reqID      string // Stripe request id of a read
	warn       string // a warning worth its own level
}

// ServeHTTP implements [http.Handler]; see [WebhookHandler].
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	res := h.serve(w, r)
	if res.err != nil {
		h.cfg.WriteError(w, r, res.err)
	} else {
		writeJSON(w, http.StatusOK, webhookReply{Received: true, Outcome: res.outcome})
	}
	h.logEvent(r.Context(), res, start)
}

func (h *WebhookHandler) serve(w http.ResponseWriter, r *http.Request) eventResult {
	if r.Method != http.MethodPost {
		return eventResult{outcome: Rejected, err: ErrMethodNotAllowed, reason: "method"}
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return eventResult{outcome: Rejected, err: ErrTooLarge, reason: "too_large"}
		}
		return eventResult{outcome: Rejected, err: errBadEvent, reason: "read_body"}
	}
	ev, res := h.verify(body, r.Header.Get("Stripe-Signature"))
	if res.err != nil {
		return res
	}
	return h.handle(r.Context(), ev)
}

// verify checks the signature and the timestamp and decodes the event.
func (h *WebhookHandler) verify(body []byte, header string) (*stripe.Event, eventResult) {
	reject := func(e *Error, reason string) (*stripe.Event, eventResult) {
		return nil, eventResult{outcome: Rejected, err: e, reason: reason}
	}
	if header == "" {
		return reject(errNoSignature, "no_signature")
	}
	var verr error
	for _, secret := range h.cfg.Secrets {
		if verr = webhook.ValidatePayloadIgnoringTolerance(body, header, secret); verr == nil {
			break
		}
	}
	switch {
	case errors.Is(verr, webhook.ErrInvalidHeader):
		return reject(errBadSignature, "bad_signature_header")
	case verr != nil:
		return reject(errBadSignature, "bad_signature")
	}
	// The signature covers the timestamp that stripe-go used: the last t=.
	ts, ok := signatureTime(header)
	if !ok {
		return reject(errTimestamp, "bad_timestamp")
	}
	now := h.now()
	if d := now.Sub(ts); d > h.cfg.Tolerance {
		return reject(errTimestamp, "timestamp_too_old")
	} else if -d > h.cfg.Tolerance {
		return reject(errTimestamp, "timestamp_in_future")
	}
	ev, ok := decodeEvent(body)
	if !ok {
		return reject(errBadEvent, "bad_event_json")
	}
	switch {
	case h.cfg.Mode == TestEvents && ev.Livemode,
		h.cfg.Mode == LiveEvents && !ev.Livemode:
		_, res := reject(errMode, "livemode_mismatch")
		res.eventID, res.eventType = ev.ID, string(ev.Type)
		res.warn = fmt.Sprintf("event livemode=%t refused by a handler with Mode %s: check WebhookConfig.Mode and the signing secret", ev.Livemode, h.cfg.Mode)
		return nil, res
	}
	return ev, eventResult{}
}

// signatureTime returns the timestamp of a Stripe-Signature header, read as
// stripe-go reads it (the last t= wins).
func signatureTime(header string) (time.Time, bool) {
	var ts time.Time
	found := false
	for _, pair := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k != "t" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		ts, found = time.Unix(n, 0), true
	}
	return ts, found
}

// Handle applies one verified event and returns what it did: the outcome
// word of the 200 reply, or an *[Error] (400 for an event it cannot read,
// 500 for a store or Stripe failure, to be retried). It is the core of
// ServeHTTP after the signature check, for apps that receive events another
// way (for example from a queue fed by a verified endpoint); it does not
// check the event's mode. It reads ev.Data.Raw, which stripe-go's webhook
// package and json.Unmarshal into a stripe.Event fill in.
func (h *WebhookHandler) Handle(ctx context.Context, ev *stripe.Event) (Outcome, error) {
	res := h.handle(ctx, ev)
	if res.err != nil {
		return res.outcome, res.err
	}
	return res.outcome, nil
}

func (h *WebhookHandler) handle(ctx context.Context, ev *stripe.Event) eventResult {
	res := eventResult{eventID: ev.ID, eventType: string(ev.Type)}
	if ev.APIVersion != stripe.APIVersion {
		res.apiVersion = ev.APIVersion
	}
	if ev.Data == nil {
		res.outcome, res.err, res.reason = Rejected, errBadEvent, "no_data"
		return res
	}
	switch ev.Type {
	case "customer.subscription.created", "customer.subscription.updated",
		"customer.subscription.deleted", "customer.subscription.paused",
		"customer.subscription.resumed", "customer.subscription.pending_update_applied",
		"customer.subscription.pending_update_expired":
		h.handleSubscription(ctx, ev, &res)
	case "checkout.session.completed":
		if !h.cfg.LinkCheckout {
			res.outcome = Ignored
			return res
		}
		h.handleCheckout(ctx, ev, &res)
	case "entitlements.active_entitlement_summary.updated":
		h.handleFeatures(ctx, ev, &res)
	default:
		res.outcome = Ignored
	}
	if res.outcome == Applied || res.outcome == Linked {
		h.cfg.Notifier.deliverNow(ctx)
	}
	return res
}

// cause is the Cause of the changes an event writes.
func (res *eventResult) cause() Cause {
	return Cause{Kind: CauseWebhook, EventID: res.eventID, EventType: res.eventType}
}

// handleSubscription applies a customer.subscription.* event.
func (h *WebhookHandler) handleSubscription(ctx context.Context, ev *stripe.Event, res *eventResult) {
	st, err := stateFromEvent(ev.Data.Raw)
	if err != nil {
		res.outcome, res.err, res.reason = Rejected, errBadEvent, "bad_subscription_object"
		return
	}
	res.subID, res.customerID, res.status = st.ID, st.Customer, st.Status
	created := time.Unix(ev.Created, 0)
	seq := statusSeq(st.Status)
	if h.cfg.Subscriptions != nil && h.cfg.Rules.grants(st.Status) && h.cfg.Rules.needsProduct(st) {
		// Map through the product's metadata: read the subscription with
		// its products and apply that state, keyed like a tie's read.
		h.readAndApply(ctx, ev, created, res)
		return
	}
	sub, known := h.cfg.Rules.subscription(st)
	if !known {
		h.unknownPrice(res, st)
		return
	}
	out, err := h.cfg.Store.ApplySubscription(ctx, SubscriptionChange{EventID: ev.ID, Subscription: sub, Created: created, Seq: seq, Cause: res.cause()}, h.cfg.Retain)
	if err != nil {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"apply_subscription", err}), "store"
		return
	}
	if out != Tie {
		h.done(ctx, res, out)
		return
	}
	if h.cfg.Subscriptions == nil {
		res.outcome = TieKept
		res.warn = "two events of one subscription in the same second; the stored state was kept (set WebhookConfig.Subscriptions to read the subscription from Stripe instead)"
		return
	}
	h.readAndApply(ctx, ev, created, res)
}

// readAt returns when a state read now may claim to be newer than every
// event of created's second: not before the next second has begun. It
// waits (at most a second, and only for an event of the current second)
// until then, so that the read reflects every event of that second.
func (h *WebhookHandler) readAt(ctx context.Context, created time.Time) (time.Time, error) {
	next := time.Unix(created.Unix()+1, 0)
	now := h.now()
	if wait := next.Sub(now); wait > 0 {
		if err := h.sleep(ctx, wait); err != nil {
			return time.Time{}, err
		}
		if now = h.now(); now.Before(next) {
			now = next
		}
	}
	return now, nil
}

// readAndApply reads the event's subscription from Stripe and applies the
// read as a tie's read ([SubscriptionChange] gives the key), once the clock
// has left the event's second ([WebhookHandler.readAt]).
func (h *WebhookHandler) readAndApply(ctx context.Context, ev *stripe.Event, created time.Time, res *eventResult) {
	p := &stripe.SubscriptionParams{}
	p.Context = ctx
	if h.cfg.Rules.Prices.ProductMetadataKey != "" {
		p.AddExpand("items.data.price.product")
	}
	readAt, err := h.readAt(ctx, created)
	if err != nil {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"wait_for_read", err}), "canceled"
		return
	}
	s, err := h.cfg.Subscriptions.Get(res.subID, p)
	if s != nil && s.LastResponse != nil {
		res.reqID = s.LastResponse.RequestID
	}
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) {
			res.reqID = se.RequestID
			if se.Code == stripe.ErrorCodeResourceMissing {
				res.outcome = Ignored
				res.warn = "subscription of the event not found in Stripe (deleted test data?); event acknowledged"
				return
			}
		}
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"read_subscription", err}), "stripe"
		return
	}
	if s == nil {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"read_subscription", errors.New("no subscription returned")}), "stripe"
		return
	}
	st := stateFromStripe(s)
	if st.ID == "" {
		st.ID = res.subID
	}
	if st.Customer == "" {
		st.Customer = res.customerID
	}
	if st.ID != res.subID || st.Customer != res.customerID {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"read_subscription", errors.New("stripe returned another subscription or customer")}), "stripe"
		return
	}
	res.status = st.Status
	sub, known := h.cfg.Rules.subscription(st)
	if !known {
		h.unknownPrice(res, st)
		return
	}
	out, err := h.cfg.Store.ApplySubscription(ctx, SubscriptionChange{EventID: ev.ID, Subscription: sub, Created: created, Seq: readAt.UnixNano(), Cause: res.cause()}, h.cfg.Retain)
	if err != nil {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"apply_subscription", err}), "store"
		return
	}
	if out == Tie {
		// A read at least as recent (another replica's) is stored.
		res.outcome = TieKept
		return
	}
	h.done(ctx, res, out)
}

func (h *WebhookHandler) unknownPrice(res *eventResult, st subState) {
	res.outcome = UnknownPrice
	res.warn = "no price of the subscription maps to a plan (add it to the PriceTable); plan left alone, price_ids=" + st.priceIDs()
}

// done records an applied, duplicate or stale outcome, with the linked user
// for the log.
func (h *WebhookHandler) done(ctx context.Context, res *eventResult, out Outcome) {
	res.outcome = out
	if out != Applied {
		return
	}
	if u, found, err := h.cfg.Store.UserByCustomer(ctx, res.customerID); err == nil && found {
		res.userID = u.ID
	}
}

// handleCheckout links the session's client_reference_id to its customer.
func (h *WebhookHandler) handleCheckout(ctx context.Context, ev *stripe.Event, res *eventResult) {
	var cs wireCheckout
	if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil || (cs.Object != "" && cs.Object != "checkout.session") {
		res.outcome, res.err, res.reason = Rejected, errBadEvent, "bad_checkout_object"
		return
	}
	res.customerID = cs.Customer.ID
	if cs.ClientReferenceID == "" || cs.Customer.ID == "" {
		res.outcome = Ignored
		res.reason = "no_client_reference_or_customer"
		return
	}
	found, err := h.cfg.Store.LinkCustomer(ctx, cs.ClientReferenceID, cs.Customer.ID)
	if err != nil {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"link_customer", err}), "store"
		return
	}
	if !found {
		res.outcome = UnknownUser
		res.warn = "checkout session's client_reference_id names no user of the store; customer not linked"
		return
	}
	res.outcome, res.userID = Linked, cs.ClientReferenceID
}

// logEvent emits the event's record and observation.
func (h *WebhookHandler) logEvent(ctx context.Context, res eventResult, start time.Time) {
	rec := record{
		op: OpWebhook, outcome: res.outcome, start: start,
		userID: res.userID, eventType: res.eventType, reqID: res.reqID,
		reason: res.reason, warn: res.warn, alarm: res.reason == "livemode_mismatch", err: res.err,
		attrs: func(add func(slog.Attr)) {
			for _, kv := range [...][2]string{
				{"event_id", res.eventID}, {"event_type", res.eventType}, {"api_version", res.apiVersion},
				{"subscription_id", res.subID}, {"customer_id", res.customerID}, {"subscription_status", res.status},
			} {
				if kv[1] != "" {
					add(slog.String(kv[0], kv[1]))
				}
			}
		},
	}
	rec.emit(ctx, h.log, h.cfg.Observer, "billing: webhook event")
}
