package billing

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/entitlements/activeentitlement"
)

// EntitlementLister lists a customer's active entitlements (Stripe's
// Entitlements API). stripe-go's *activeentitlement.Client (package
// github.com/stripe/stripe-go/v76/entitlements/activeentitlement)
// satisfies it. The params carry the request's context in params.Context.
type EntitlementLister interface {
	List(params *stripe.EntitlementsActiveEntitlementListParams) *activeentitlement.Iter
}

// maxFeatures bounds the features read for one customer.
const maxFeatures = 1000

// listFeatures reads the lookup keys of a customer's active entitlements,
// following pages, and Stripe's request id of the first page.
func listFeatures(ctx context.Context, l EntitlementLister, customerID string) (keys []string, reqID string, err error) {
	p := &stripe.EntitlementsActiveEntitlementListParams{Customer: stripe.String(customerID)}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	it := l.List(p)
	if it == nil || it.Iter == nil {
		return nil, "", errors.New("entitlement lister returned no iterator")
	}
	keys = []string{}
	for len(keys) < maxFeatures && it.Next() {
		if reqID == "" {
			if list, ok := it.List().(*stripe.EntitlementsActiveEntitlementList); ok && list != nil && list.LastResponse != nil {
				reqID = list.LastResponse.RequestID
			}
		}
		if e := it.EntitlementsActiveEntitlement(); e != nil && e.LookupKey != "" {
			keys = append(keys, e.LookupKey)
		}
	}
	if err := it.Err(); err != nil {
		var se *stripe.Error
		if errors.As(err, &se) && reqID == "" {
			reqID = se.RequestID
		}
		return nil, reqID, err
	}
	return keys, reqID, nil
}

// wireSummary is the part of an entitlements.active_entitlement_summary
// object the handler reads: the customer and the lookup keys of its active
// entitlements (the whole list, unless has_more).
type wireSummary struct {
	Object       string     `json:"object"`
	Customer     wireObject `json:"customer"`
	Entitlements struct {
		Data []struct {
			LookupKey string `json:"lookup_key"`
		} `json:"data"`
		HasMore bool `json:"has_more"`
	} `json:"entitlements"`
}

// handleFeatures applies an entitlements.active_entitlement_summary.updated
// event: the customer's whole list of active features, ordered like a
// subscription change ([FeaturesChange]).
func (h *WebhookHandler) handleFeatures(ctx context.Context, ev *stripe.Event, res *eventResult) {
	var w wireSummary
	if err := json.Unmarshal(ev.Data.Raw, &w); err != nil || w.Customer.ID == "" ||
		(w.Object != "" && w.Object != "entitlements.active_entitlement_summary") {
		res.outcome, res.err, res.reason = Rejected, errBadEvent, "bad_entitlement_summary"
		return
	}
	res.customerID = w.Customer.ID
	fs, ok := h.cfg.Store.(FeatureStore)
	if !ok {
		res.outcome = Ignored
		res.warn = "the store keeps no features (it does not implement billing.FeatureStore); entitlement event acknowledged"
		return
	}
	created := time.Unix(ev.Created, 0)
	if w.Entitlements.HasMore && h.cfg.Entitlements != nil {
		h.readFeaturesAndApply(ctx, fs, ev, created, res)
		return
	}
	keys := make([]string, 0, len(w.Entitlements.Data))
	for _, e := range w.Entitlements.Data {
		if e.LookupKey != "" {
			keys = append(keys, e.LookupKey)
		}
	}
	if w.Entitlements.HasMore {
		res.warn = "entitlement summary does not carry the whole list (has_more) and WebhookConfig.Entitlements is not set; applied the part it carries"
	}
	out, err := fs.ApplyFeatures(ctx, FeaturesChange{EventID: ev.ID, CustomerID: w.Customer.ID, Features: keys, Created: created, Seq: 1, Cause: res.cause()}, h.cfg.Retain)
	if err != nil {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"apply_features", err}), "store"
		return
	}
	if out != Tie {
		h.done(ctx, res, out)
		return
	}
	if h.cfg.Entitlements == nil {
		res.outcome = TieKept
		res.warn = "two entitlement summaries of one customer in the same second; the stored features were kept (set WebhookConfig.Entitlements to read them from Stripe instead)"
		return
	}
	h.readFeaturesAndApply(ctx, fs, ev, created, res)
}

// readFeaturesAndApply reads the customer's active entitlements from Stripe
// once the event's second is over and applies them with the event's id and
// Created and Seq = the read's time in nanoseconds, as a subscription tie's
// read ([SubscriptionChange]).
func (h *WebhookHandler) readFeaturesAndApply(ctx context.Context, fs FeatureStore, ev *stripe.Event, created time.Time, res *eventResult) {
	readAt, err := h.readAt(ctx, created)
	if err != nil {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"wait_for_read", err}), "canceled"
		return
	}
	keys, reqID, err := listFeatures(ctx, h.cfg.Entitlements, res.customerID)
	res.reqID = reqID
	if err != nil {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"list_entitlements", err}), "stripe"
		return
	}
	out, err := fs.ApplyFeatures(ctx, FeaturesChange{EventID: ev.ID, CustomerID: res.customerID, Features: keys, Created: created, Seq: readAt.UnixNano(), Cause: res.cause()}, h.cfg.Retain)
	if err != nil {
		res.outcome, res.err, res.reason = Failed, ErrWebhookFailed.with(&opError{"apply_features", err}), "store"
		return
	}
	if out == Tie {
		res.outcome = TieKept
		return
	}
	h.done(ctx, res, out)
}
