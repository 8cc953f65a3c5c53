package billing

import (
	"context"
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

// SubscriptionLister lists a customer's subscriptions. stripe-go's
// *subscription.Client (package github.com/stripe/stripe-go/v76/subscription)
// satisfies it, and so does the test kit's fake Stripe. The params carry the
// request's context in params.Context.
type SubscriptionLister interface {
	List(params *stripe.SubscriptionListParams) *subscription.Iter
}

// ReturnSyncConfig configures a [ReturnSync]. Auth, Users, Store,
// Subscriptions, Rules and Redirect are required; everything else has a
// documented default.
type ReturnSyncConfig struct {
	// Auth tells who the returning user is. Required; the portal's
	// [PortalConfig].Auth.
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
	// Rules map prices to plans and say whether past_due keeps access.
	// Required; the same value as [WebhookConfig].Rules.
	Rules PlanRules
	// Redirect is where the user is sent (303 See Other) after the sync,
	// whatever its result: an absolute http(s) URL or a path starting with
	// "/". Required.
	Redirect string
	// Entitlements, if set, lists the customer's active entitlements, which
	// the sync applies with the subscriptions (when the Store is a
	// [FeatureStore]). Default nil: features are left to the webhook.
	Entitlements EntitlementLister
	// Notifier, if set, delivers the plan changes the sync committed to the
	// app's hook right after the commit (see [Notifier]). Default nil.
	Notifier *Notifier
	// MaxSubscriptions caps how many of the customer's subscriptions (newest
	// first, canceled ones included) are applied. Default 20.
	MaxSubscriptions int
	// Logger receives one record per sync. Default: discard.
	Logger *slog.Logger
	// Observer receives one Observation ([OpReturnSync]) per request.
	// Default: nil.
	Observer Observer
	// WriteError writes the error replies (405 for a method other than
	// GET; every other failure still redirects). Default: [WriteError].
	WriteError func(w http.ResponseWriter, r *http.Request, e *Error)
}

// ReturnSync is the answer to "I changed my plan in the portal and still see
// the old one": the user often comes back from the portal before Stripe's
// webhook has arrived. Mount it at the URL the portal sends users back to
// ([PortalConfig].ReturnURL): on GET it authenticates the user, reads their
// customer's subscriptions from Stripe, applies each through the store's
// ApplySubscription (the webhooks' atomic path), then redirects to the app's
// page, which shows the new plan.
//
// A state read from Stripe counts at the time of the read, as
// [SubscriptionChange] explains: it never overwrites an event of a later
// second, and an event of the read's second or later replaces it.
//
// The sync is best effort: every failure (no or bad credentials, unknown
// user, no Stripe customer, a Stripe or store error) is logged and the user
// is redirected all the same; the webhook brings the change a little later.
// Build one with [NewReturnSync]; it is safe for concurrent use.
type ReturnSync struct {
	cfg ReturnSyncConfig
	log *slog.Logger
	now func() time.Time
}

// NewReturnSync checks cfg and returns the handler. It names the first
// missing or invalid setting in its error.
func NewReturnSync(cfg ReturnSyncConfig) (*ReturnSync, error) {
	switch {
	case cfg.Auth == nil:
		return nil, errors.New("billing: ReturnSyncConfig.Auth is required (the portal's Authenticator, for example billing.NewCookieAuthenticator(verifier))")
	case cfg.Users == nil:
		return nil, errors.New("billing: ReturnSyncConfig.Users is required (a UserStore)")
	case cfg.Store == nil:
		return nil, errors.New("billing: ReturnSyncConfig.Store is required (the SyncStore of the webhook handler)")
	case cfg.Subscriptions == nil:
		return nil, errors.New("billing: ReturnSyncConfig.Subscriptions is required (for example &subscription.Client{B: billing.NewBackend(nil), Key: key})")
	case cfg.Redirect == "":
		return nil, errors.New("billing: ReturnSyncConfig.Redirect is required (the app page to send users to, for example /account)")
	}
	if err := cfg.Rules.validate(); err != nil {
		return nil, fmt.Errorf("billing: ReturnSyncConfig.%w", err)
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
	if cfg.WriteError == nil {
		cfg.WriteError = WriteError
	}
	return &ReturnSync{cfg: cfg, log: orDiscard(cfg.Logger), now: time.Now}, nil
}

// SyncResult counts what [ReturnSync.Sync] did with the subscriptions it
// read.
type SyncResult struct {
	// Read is the number of subscriptions read from Stripe.
	Read int
	// Applied is the number that replaced the stored state (the customer's
	// features, when read, count as one).
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
// returned error is an *[Error] ([ErrSyncFailed]) for a store or Stripe failure;
// the subscriptions applied before the failure stay applied.
func (h *ReturnSync) Sync(ctx context.Context, userID string) (SyncResult, error) {
	var res SyncResult
	u, found, err := h.cfg.Users.User(ctx, userID)
	if err != nil {
		return res, ErrSyncFailed.with(&opError{"load_user", err})
	}
	if !found || u.StripeCustomerID == "" {
		return res, nil
	}
	p := &stripe.SubscriptionListParams{Customer: stripe.String(u.StripeCustomerID), Status: stripe.String("all")}
	p.Context = ctx
	p.Limit = stripe.Int64(int64(min(h.cfg.MaxSubscriptions, 100)))
	if h.cfg.Rules.Prices.ProductMetadataKey != "" {
		p.AddExpand("data.items.data.price.product")
	}
	readAt := h.now()
	it := h.cfg.Subscriptions.List(p)
	if it == nil || it.Iter == nil {
		return res, ErrSyncFailed.with(&opError{"list_subscriptions", errors.New("lister returned no iterator")})
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
		sub, known := h.cfg.Rules.subscription(st)
		if !known {
			res.Kept++
			h.log.LogAttrs(ctx, slog.LevelWarn, "billing: return sync: subscription price maps to no plan; plan left alone",
				slog.String("user_id", userID), slog.String("subscription_id", st.ID), slog.String("price_ids", st.priceIDs()))
			continue
		}
		out, err := h.cfg.Store.ApplySubscription(ctx, SubscriptionChange{
			Subscription: sub, Created: readAt, Seq: 0, Cause: Cause{Kind: CauseReturnSync},
		}, 0)
		if err != nil {
			return res, ErrSyncFailed.with(&opError{"apply_subscription", err})
		}
		if out == Applied {
			res.Applied++
		} else {
			res.Kept++
		}
	}
	if err := it.Err(); err != nil {
		e := ErrSyncFailed.with(&opError{"list_subscriptions", err})
		var se *stripe.Error
		if errors.As(err, &se) {
			e.StripeRequestID = se.RequestID
		}
		return res, e
	}
	if err := h.syncFeatures(ctx, u.StripeCustomerID, readAt, &res); err != nil {
		return res, err
	}
	if res.Applied > 0 {
		h.cfg.Notifier.deliverNow(ctx)
	}
	return res, nil
}

// syncFeatures reads the customer's active entitlements, when
// ReturnSyncConfig.Entitlements is set, and applies them as a read at
// readAt, if the store keeps features.
func (h *ReturnSync) syncFeatures(ctx context.Context, customerID string, readAt time.Time, res *SyncResult) error {
	fs, ok := h.cfg.Store.(FeatureStore)
	if !ok || h.cfg.Entitlements == nil {
		return nil
	}
	keys, reqID, err := listFeatures(ctx, h.cfg.Entitlements, customerID)
	if err != nil {
		e := ErrSyncFailed.with(&opError{"list_entitlements", err})
		e.StripeRequestID = reqID
		return e
	}
	out, err := fs.ApplyFeatures(ctx, FeaturesChange{CustomerID: customerID, Features: keys, Created: readAt, Seq: 0, Cause: Cause{Kind: CauseReturnSync}}, 0)
	if err != nil {
		return ErrSyncFailed.with(&opError{"apply_features", err})
	}
	if out == Applied {
		res.Applied++
	}
	return nil
}

// ServeHTTP implements [http.Handler]: GET syncs the authenticated user's
// subscriptions and answers 303 See Other to ReturnSyncConfig.Redirect, also
// when the sync could not run or failed. Other methods are answered 405
// through ReturnSyncConfig.WriteError, with "Allow: GET".
//
// A cross-site page can make a browser send this GET; all it can cause is a
// re-read of the user's own subscriptions from Stripe.
func (h *ReturnSync) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record{op: OpReturnSync, start: time.Now()}
	ctx := r.Context()
	if r.Method != http.MethodGet {
		rec.outcome, rec.err, rec.reason = MethodNotAllowed, ErrMethodNotAllowed.withMessage("Only GET is allowed"), "method"
		w.Header().Set("Allow", http.MethodGet)
		h.cfg.WriteError(w, r, rec.err)
		rec.emit(ctx, h.log, h.cfg.Observer, "billing: return sync")
		return
	}
	var res SyncResult
	rec.outcome = Synced
	userID, aerr := h.cfg.Auth.Authenticate(r)
	if aerr != nil || userID == "" {
		rec.outcome, rec.reason = Unauthorized, authReason(aerr)
	} else {
		rec.userID = userID
		var err error
		if res, err = h.Sync(ctx, userID); err != nil {
			rec.outcome, rec.err = Failed, asError(err)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, h.cfg.Redirect, http.StatusSeeOther)

	rec.reqID = res.StripeRequestID
	if rec.err != nil && rec.err.StripeRequestID != "" {
		rec.reqID = rec.err.StripeRequestID
	}
	rec.attrs = func(add func(slog.Attr)) {
		add(slog.Int("read", res.Read))
		add(slog.Int("applied", res.Applied))
		add(slog.Int("kept", res.Kept))
	}
	rec.status = http.StatusSeeOther // the reply, whatever failed
	rec.emit(ctx, h.log, h.cfg.Observer, "billing: return sync")
}
