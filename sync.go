package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/subscription"
)

// PriceTable maps Stripe prices to plans. A price is looked up, in this
// order, by its id (Prices), its lookup key (LookupKeys), its product's id
// (Products) and, when the product is expanded, by the product's metadata
// value under ProductMetadataKey (for example metadata "plan"="PRO" on the
// product). Webhook events never expand the product, so metadata only helps
// when the handler can read the subscription from Stripe
// ([WebhookConfig].Subscriptions) and for the return sync, which expand it.
//
// A table must map at least one price; plans must be FREE, BASIC or PRO (a
// price mapped to FREE is a known price that grants no paid plan).
type PriceTable struct {
	// Prices maps price ids (price_...) to plans.
	Prices map[string]Plan
	// LookupKeys maps price lookup keys to plans.
	LookupKeys map[string]Plan
	// Products maps product ids (prod_...) to plans.
	Products map[string]Plan
	// ProductMetadataKey, if set, is the product metadata key whose value
	// names the plan (parsed like [ParsePlan]).
	ProductMetadataKey string
}

// ParsePriceTable parses a comma-separated list of KEY=PLAN entries, the
// format of the demo's -price-plans flag:
//
//	price_basic=BASIC,price_pro=PRO
//	lookup_key:pro_monthly=PRO,product:prod_123=BASIC,metadata:plan
//
// A bare KEY is a price id; "lookup_key:K" is a price lookup key;
// "product:ID" is a product id; a lone "metadata:KEY" entry (no "=PLAN")
// sets ProductMetadataKey. Plans are FREE, BASIC or PRO in any case. Spaces
// around entries are ignored; an empty list, an empty key, an unknown plan
// or the same key twice is an error.
func ParsePriceTable(s string) (PriceTable, error) {
	var t PriceTable
	for _, raw := range strings.Split(s, ",") {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		if k, ok := strings.CutPrefix(entry, "metadata:"); ok && !strings.Contains(k, "=") {
			if k == "" || t.ProductMetadataKey != "" {
				return PriceTable{}, fmt.Errorf("billing: price table entry %q: want one metadata:KEY entry with a non-empty key", entry)
			}
			t.ProductMetadataKey = k
			continue
		}
		key, planName, ok := strings.Cut(entry, "=")
		key = strings.TrimSpace(key)
		if !ok {
			return PriceTable{}, fmt.Errorf("billing: price table entry %q: want KEY=PLAN, for example price_pro=PRO", entry)
		}
		plan, err := ParsePlan(planName)
		if err != nil {
			return PriceTable{}, fmt.Errorf("billing: price table entry %q: %w", entry, err)
		}
		m := &t.Prices
		switch {
		case strings.HasPrefix(key, "lookup_key:"):
			key, m = strings.TrimPrefix(key, "lookup_key:"), &t.LookupKeys
		case strings.HasPrefix(key, "product:"):
			key, m = strings.TrimPrefix(key, "product:"), &t.Products
		}
		if key == "" {
			return PriceTable{}, fmt.Errorf("billing: price table entry %q: empty key", entry)
		}
		if *m == nil {
			*m = make(map[string]Plan)
		}
		if _, dup := (*m)[key]; dup {
			return PriceTable{}, fmt.Errorf("billing: price table entry %q: key given twice", entry)
		}
		(*m)[key] = plan
	}
	if err := t.validate(); err != nil {
		return PriceTable{}, err
	}
	return t, nil
}

// validate checks that t maps something and only to valid plans.
func (t PriceTable) validate() error {
	if len(t.Prices)+len(t.LookupKeys)+len(t.Products) == 0 && t.ProductMetadataKey == "" {
		return errors.New("billing: the price table is empty (map your Stripe prices to plans, for example billing.ParsePriceTable(\"price_basic=BASIC,price_pro=PRO\"))")
	}
	for _, m := range []map[string]Plan{t.Prices, t.LookupKeys, t.Products} {
		for k, p := range m {
			if !p.Valid() {
				return fmt.Errorf("billing: the price table maps %q to %q (want FREE, BASIC or PRO)", k, p)
			}
		}
	}
	return nil
}

// Plan returns the plan a Stripe price maps to, and whether it maps to any.
// A nil price maps to nothing.
func (t PriceTable) Plan(p *stripe.Price) (Plan, bool) {
	if p == nil {
		return "", false
	}
	ref := priceRef{ID: p.ID, LookupKey: p.LookupKey}
	if p.Product != nil {
		ref.ProductID = p.Product.ID
		ref.ProductMetadata = p.Product.Metadata
	}
	return t.plan(ref)
}

func (t PriceTable) plan(p priceRef) (Plan, bool) {
	if pl, ok := t.Prices[p.ID]; ok && p.ID != "" {
		return pl, true
	}
	if pl, ok := t.LookupKeys[p.LookupKey]; ok && p.LookupKey != "" {
		return pl, true
	}
	if pl, ok := t.Products[p.ProductID]; ok && p.ProductID != "" {
		return pl, true
	}
	if t.ProductMetadataKey != "" {
		if v, ok := p.ProductMetadata[t.ProductMetadataKey]; ok {
			if pl, err := ParsePlan(v); err == nil {
				return pl, true
			}
		}
	}
	return "", false
}

// subState is what the sync reads of a subscription, whatever its source:
// an event's data.object (of any API version) or a subscription read from
// Stripe through stripe-go.
type subState struct {
	ID       string
	Customer string
	Status   string
	Prices   []priceRef
}

// priceRef is what the sync reads of one subscription item's price.
type priceRef struct {
	ID              string
	LookupKey       string
	ProductID       string
	ProductMetadata map[string]string
	// productExpanded is true when the product came as an object, so its
	// metadata (possibly empty) is known.
	productExpanded bool
}

// stateFromStripe converts a subscription read through stripe-go.
func stateFromStripe(s *stripe.Subscription) subState {
	st := subState{ID: s.ID, Status: string(s.Status)}
	if s.Customer != nil {
		st.Customer = s.Customer.ID
	}
	if s.Items != nil {
		for _, it := range s.Items.Data {
			if it == nil || it.Price == nil {
				continue
			}
			ref := priceRef{ID: it.Price.ID, LookupKey: it.Price.LookupKey}
			if it.Price.Product != nil {
				ref.ProductID = it.Price.Product.ID
				ref.ProductMetadata = it.Price.Product.Metadata
				ref.productExpanded = it.Price.Product.Metadata != nil || it.Price.Product.Name != ""
			}
			st.Prices = append(st.Prices, ref)
		}
	}
	return st
}

// wireSubscription is the part of an event's subscription object the sync
// reads. It is decoded on its own, not through stripe.Subscription, so that
// events of any API version decode: these fields (id, customer, status,
// items.data[].price.{id,lookup_key,product}) have kept their shape across
// Stripe's API versions.
type wireSubscription struct {
	ID       string     `json:"id"`
	Object   string     `json:"object"`
	Customer wireObject `json:"customer"`
	Status   string     `json:"status"`
	Items    struct {
		Data []struct {
			Price *struct {
				ID        string     `json:"id"`
				LookupKey string     `json:"lookup_key"`
				Product   wireObject `json:"product"`
			} `json:"price"`
		} `json:"data"`
	} `json:"items"`
}

// wireObject is an expandable field: an id string, or an object with an id
// (and, for a product, metadata).
type wireObject struct {
	ID       string
	Metadata map[string]string
	Expanded bool
}

// UnmarshalJSON accepts "id", {"id": ..., "metadata": {...}} and null.
func (o *wireObject) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*o = wireObject{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &o.ID)
	}
	var v struct {
		ID       string            `json:"id"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = wireObject{ID: v.ID, Metadata: v.Metadata, Expanded: true}
	return nil
}

// stateFromEvent decodes an event's subscription object.
func stateFromEvent(raw json.RawMessage) (subState, error) {
	var w wireSubscription
	if err := json.Unmarshal(raw, &w); err != nil {
		return subState{}, err
	}
	if w.ID == "" || w.Customer.ID == "" || w.Status == "" || (w.Object != "" && w.Object != "subscription") {
		return subState{}, errors.New("event object is not a subscription with id, customer and status")
	}
	st := subState{ID: w.ID, Customer: w.Customer.ID, Status: w.Status}
	for _, it := range w.Items.Data {
		if it.Price == nil {
			continue
		}
		st.Prices = append(st.Prices, priceRef{
			ID: it.Price.ID, LookupKey: it.Price.LookupKey,
			ProductID: it.Price.Product.ID, ProductMetadata: it.Price.Product.Metadata,
			productExpanded: it.Price.Product.Expanded,
		})
	}
	return st, nil
}

// grantsAccess reports whether a subscription status grants its plan:
// active and trialing do; past_due does unless revoked by configuration (so
// the user can still reach the portal to fix the card); incomplete, unpaid,
// paused, canceled, incomplete_expired and any status this version does not
// know do not.
func grantsAccess(status string, pastDueRevokes bool) bool {
	switch status {
	case "active", "trialing":
		return true
	case "past_due":
		return !pastDueRevokes
	}
	return false
}

// statusSeq is the Seq of a webhook event's change: the order of statuses
// within one Created second.
//
//   - 1: incomplete. A subscription starts incomplete and never returns to
//     it, so any other status of the same second is later.
//   - 2: active, trialing, past_due, unpaid, paused, and any unknown status.
//     These can follow each other in any direction (a failed payment and its
//     retry, a pause and a resume), so two of them in one second are a
//     [Tie], resolved by reading the subscription from Stripe.
//   - 3: canceled, incomplete_expired. Terminal, so always the last.
//
// A state read from Stripe uses the read's time in nanoseconds, far above.
func statusSeq(status string) int64 {
	switch status {
	case "incomplete":
		return 1
	case "canceled", "incomplete_expired":
		return 3
	}
	return 2
}

// mapping turns a subscription state into the [Subscription] to store.
type mapping struct {
	plans          PriceTable
	pastDueRevokes bool
}

// subscription returns the Subscription for st. ok is false when the
// status grants access but no item's price maps to a plan (unknown price):
// such a state is not applied at all, so the stored state and the user's
// plan stay as they were. Plan is the highest plan among the items' mapped
// prices (items with unmapped prices are ignored when another maps); FREE
// when the status grants no access, whatever the prices.
func (m mapping) subscription(st subState) (s Subscription, ok bool) {
	s = Subscription{ID: st.ID, CustomerID: st.Customer, Status: st.Status, Plan: Free}
	if len(st.Prices) > 0 {
		s.PriceID = st.Prices[0].ID
	}
	if !grantsAccess(st.Status, m.pastDueRevokes) {
		return s, true
	}
	found := false
	for _, p := range st.Prices {
		if pl, mapped := m.plans.plan(p); mapped {
			if !found || pl.rank() > s.Plan.rank() {
				s.Plan = pl
			}
			found = true
		}
	}
	return s, found
}

// needsProduct reports whether mapping st could use the products' metadata
// that st does not carry: the table has a metadata key, a price is unmapped
// and its product was not expanded.
func (m mapping) needsProduct(st subState) bool {
	if m.plans.ProductMetadataKey == "" {
		return false
	}
	for _, p := range st.Prices {
		if _, ok := m.plans.plan(p); !ok && !p.productExpanded {
			return true
		}
	}
	return false
}

// priceIDs lists st's price ids, for logs.
func (st subState) priceIDs() string {
	ids := make([]string, 0, len(st.Prices))
	for _, p := range st.Prices {
		ids = append(ids, p.ID)
	}
	return strings.Join(ids, ",")
}

// SubscriptionLister lists a customer's subscriptions. stripe-go's
// *subscription.Client (package github.com/stripe/stripe-go/v76/subscription)
// satisfies it, and so does the test kit's fake Stripe. The params carry the
// request's context in params.Context.
type SubscriptionLister interface {
	List(params *stripe.SubscriptionListParams) *subscription.Iter
}

// ReturnSyncConfig configures a [ReturnSync]. Auth, Users, Store,
// Subscriptions, Plans and Redirect are required.
type ReturnSyncConfig struct {
	// Auth tells who the returning user is. Required.
	Auth Authenticator
	// Users loads the user, for their Stripe customer id. Required.
	Users UserStore
	// Store is where the states read from Stripe are applied: the same
	// store, and the same atomic ApplySubscription path, as the webhooks'.
	// Required.
	Store SyncStore
	// Subscriptions lists the customer's subscriptions from Stripe.
	// Required.
	Subscriptions SubscriptionLister
	// Plans maps prices to plans; use the webhook handler's table. Required.
	Plans PriceTable
	// Redirect is where the user is sent (303 See Other) after the sync,
	// whatever its result: an absolute http(s) URL or a path starting with
	// "/". Required.
	Redirect string
	// PastDueRevokesAccess: as [WebhookConfig].PastDueRevokesAccess; use the
	// same value. Default false (past_due keeps the plan).
	PastDueRevokesAccess bool
	// MaxSubscriptions caps how many of the customer's subscriptions (newest
	// first, canceled ones included) are applied. Default 20.
	MaxSubscriptions int
	// Logger receives one record per sync. Default: discard.
	Logger *slog.Logger
	// Observer receives one Observation (Op "return_sync") per request.
	// Default: nil.
	Observer Observer
}

// ReturnSync is the answer to "I changed my plan in the portal and still see
// the old one": the user often comes back from the portal before Stripe's
// webhook has arrived. Mount it at the URL the portal sends users back to
// ([Config].ReturnURL): on GET it authenticates the user, reads their
// customer's subscriptions from Stripe, applies each through the store's
// ApplySubscription (the webhooks' atomic path), then redirects to the app's
// page, which shows the new plan.
//
// A state read from Stripe at time T is applied with Created = T, Seq = 0
// and no event id. Stripe's event times have whole seconds, so within T's
// second nobody can tell whether an event came before or after the read:
//   - an event created before T's second is already reflected in the read:
//     it is Stale and never overwrites it;
//   - an event created in T's second or later replaces the read (Seq 0 is
//     below every event's), whether it arrives before the read is applied
//     (the read is then a [Tie] and is dropped) or after. If it came before
//     the read, its state is the read's or, when several events share that
//     second, the later ones follow and the webhook handler settles them
//     (ties read Stripe again when [WebhookConfig].Subscriptions is set).
//
// Giving the read Seq = T in nanoseconds instead would let it beat an event
// of its own second created after it and delivered before it, a wrong state
// nothing would correct. T is taken on this server's clock just before the
// call to Stripe, so it is not later than the read; keep the clock
// synchronized (NTP), as a clock ahead of Stripe's by more than a second
// could make events of the seconds in between Stale.
//
// The sync is best effort: every failure (no or bad credentials, unknown
// user, no Stripe customer, a Stripe or store error) is logged and the user
// is redirected all the same; the webhook brings the change a little later.
// Build one with [NewReturnSync]; it is safe for concurrent use.
type ReturnSync struct {
	cfg ReturnSyncConfig
	m   mapping
	log *slog.Logger
	now func() time.Time
}

// NewReturnSync checks cfg and returns the handler. It names the first
// missing or invalid setting in its error.
func NewReturnSync(cfg ReturnSyncConfig) (*ReturnSync, error) {
	switch {
	case cfg.Auth == nil:
		return nil, errors.New("billing: ReturnSyncConfig.Auth is required (the Authenticator of the portal handler)")
	case cfg.Users == nil:
		return nil, errors.New("billing: ReturnSyncConfig.Users is required (a UserStore)")
	case cfg.Store == nil:
		return nil, errors.New("billing: ReturnSyncConfig.Store is required (the SyncStore of the webhook handler)")
	case cfg.Subscriptions == nil:
		return nil, errors.New("billing: ReturnSyncConfig.Subscriptions is required (for example &subscription.Client{B: billing.NewBackend(nil), Key: key})")
	case cfg.Redirect == "":
		return nil, errors.New("billing: ReturnSyncConfig.Redirect is required (the app page to send users to, for example /account)")
	}
	if err := cfg.Plans.validate(); err != nil {
		return nil, fmt.Errorf("billing: ReturnSyncConfig.Plans: %w", err)
	}
	if !strings.HasPrefix(cfg.Redirect, "/") || strings.HasPrefix(cfg.Redirect, "//") {
		if err := checkAbsoluteURL(cfg.Redirect); err != nil {
			return nil, fmt.Errorf("billing: ReturnSyncConfig.Redirect: %w (or use a path starting with /)", err)
		}
	} else if _, err := url.Parse(cfg.Redirect); err != nil {
		return nil, fmt.Errorf("billing: ReturnSyncConfig.Redirect is not a valid path: %w", err)
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = 20
	}
	return &ReturnSync{
		cfg: cfg,
		m:   mapping{plans: cfg.Plans, pastDueRevokes: cfg.PastDueRevokesAccess},
		log: orDiscard(cfg.Logger),
		now: time.Now,
	}, nil
}

// SyncResult counts what [ReturnSync.Sync] did with the subscriptions it
// read.
type SyncResult struct {
	// Read is the number of subscriptions read from Stripe.
	Read int
	// Applied is the number that replaced the stored state.
	Applied int
	// Kept is the number the store kept its own, newer, state for (Stale or
	// Tie) or that were skipped for an unknown price.
	Kept int
	// StripeRequestID is the request id of Stripe's first list page.
	StripeRequestID string
}

// Sync reads the subscriptions of the user's Stripe customer and applies
// them to the store, as described on [ReturnSync]. A user unknown to the
// store, or without a Stripe customer, is not an error: nothing is read. The
// returned error is an *[Error] (ErrInternal) for a store or Stripe failure;
// the subscriptions applied before the failure stay applied.
func (h *ReturnSync) Sync(ctx context.Context, userID string) (SyncResult, error) {
	var res SyncResult
	u, found, err := h.cfg.Users.User(ctx, userID)
	if err != nil {
		return res, ErrInternal.with(&opError{"load_user", err})
	}
	if !found || u.StripeCustomerID == "" {
		return res, nil
	}
	p := &stripe.SubscriptionListParams{Customer: stripe.String(u.StripeCustomerID), Status: stripe.String("all")}
	p.Context = ctx
	p.Limit = stripe.Int64(int64(min(h.cfg.MaxSubscriptions, 100)))
	if h.cfg.Plans.ProductMetadataKey != "" {
		p.AddExpand("data.items.data.price.product")
	}
	readAt := h.now()
	it := h.cfg.Subscriptions.List(p)
	if it == nil || it.Iter == nil {
		return res, ErrInternal.with(&opError{"list_subscriptions", errors.New("lister returned no iterator")})
	}
	for res.Read < h.cfg.MaxSubscriptions && it.Next() {
		if res.StripeRequestID == "" {
			if l, ok := it.List().(*stripe.SubscriptionList); ok && l != nil && l.LastResponse != nil {
				res.StripeRequestID = l.LastResponse.RequestID
			}
		}
		s, ok := it.Current().(*stripe.Subscription)
		if !ok || s == nil {
			continue
		}
		res.Read++
		st := stateFromStripe(s)
		if st.ID == "" || st.Customer == "" {
			// A fake or an expanded customer without id: use the one asked for.
			st.Customer = u.StripeCustomerID
			if st.ID == "" {
				continue
			}
		}
		sub, known := h.m.subscription(st)
		if !known {
			res.Kept++
			h.log.LogAttrs(ctx, slog.LevelWarn, "billing: return sync: subscription price maps to no plan; plan left alone",
				slog.String("user_id", userID), slog.String("subscription_id", st.ID), slog.String("price_ids", st.priceIDs()))
			continue
		}
		out, err := h.cfg.Store.ApplySubscription(ctx, SubscriptionChange{
			Subscription: sub, Created: readAt, Seq: 0,
		}, 0)
		if err != nil {
			return res, ErrInternal.with(&opError{"apply_subscription", err})
		}
		if out == Applied {
			res.Applied++
		} else {
			res.Kept++
		}
	}
	if err := it.Err(); err != nil {
		e := fromStripe(err)
		e.Status, e.Code, e.Message = ErrInternal.Status, ErrInternal.Code, ErrInternal.Message
		return res, e
	}
	return res, nil
}

// ServeHTTP implements [http.Handler]: GET syncs the authenticated user's
// subscriptions and answers 303 See Other to Config.Redirect, also when the
// sync could not run or failed. Other methods are answered 405 in the JSON
// of [WriteError].
//
// A cross-site page can make a browser send this GET; all it can cause is a
// re-read of the user's own subscriptions from Stripe.
func (h *ReturnSync) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		e := ErrMethodNotAllowed.withMessage("Only GET is allowed")
		setHeaders(w.Header())
		w.Header().Set("Allow", http.MethodGet)
		w.WriteHeader(e.Status)
		_ = json.NewEncoder(w).Encode(errorReply{Error: e.Code, Message: e.Message})
		return
	}
	start := time.Now()
	ctx := r.Context()
	var (
		res     SyncResult
		err     error
		outcome = "synced"
	)
	userID, aerr := h.cfg.Auth.Authenticate(r)
	if aerr != nil || userID == "" {
		outcome, userID = "unauthorized", ""
	} else if res, err = h.Sync(ctx, userID); err != nil {
		outcome = "error"
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, h.cfg.Redirect, http.StatusSeeOther)

	d := time.Since(start)
	var reqID string
	var e *Error
	if errors.As(err, &e) {
		reqID = e.StripeRequestID
	}
	if reqID == "" {
		reqID = res.StripeRequestID
	}
	if h.cfg.Observer != nil {
		h.cfg.Observer.Observe(ctx, Observation{Op: "return_sync", Outcome: outcome, Status: http.StatusSeeOther, Latency: d, UserID: userID, StripeRequestID: reqID})
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
	}
	if !h.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("outcome", outcome),
		slog.Int("status", http.StatusSeeOther),
		slog.Duration("latency", d),
		slog.Int("read", res.Read),
		slog.Int("applied", res.Applied),
		slog.Int("kept", res.Kept),
	}
	if userID != "" {
		attrs = append(attrs, slog.String("user_id", userID))
	} else {
		attrs = append(attrs, slog.String("reason", authReason(aerr)))
	}
	if reqID != "" {
		attrs = append(attrs, slog.String("stripe_request_id", reqID))
	}
	if e != nil && e.Err != nil {
		attrs = append(attrs, slog.String("cause", causeKind(e.Err)))
	}
	h.log.LogAttrs(ctx, level, "billing: return sync", attrs...)
}
