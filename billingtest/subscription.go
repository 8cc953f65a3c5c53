package billingtest

import (
	"strings"
	"time"
)

// SubscriptionSpec describes a Stripe subscription with one item and one
// price. It is the one spec of the kit: [SubscriptionEvent] signs it as an
// event's data.object, [Stripe.PutSubscription] stores it in the fake, which
// answers GET /v1/subscriptions with it. Both render it with
// [SubscriptionObject], so an event and a read of the same spec decode to
// the same *stripe.Subscription.
type SubscriptionSpec struct {
	// ID is the subscription id (sub_...). Required.
	ID string
	// Customer is the customer id (cus_...). Required. The fake adds the
	// customer if it does not know it.
	Customer string
	// Status is Stripe's status word. Default "active".
	Status string
	// PriceID is the item's price id. Default [PriceBasic].
	PriceID string
	// LookupKey is the price's lookup key. Default: none (null).
	LookupKey string
	// ProductID is the price's product id. Default "prod_" + PriceID.
	ProductID string
	// ProductMetadata, if not nil, makes the product an expanded object
	// with this metadata instead of an id, as when a read expands
	// items.data.price.product.
	ProductMetadata map[string]string
	// Livemode is the object's (and an event's) livemode. Default false.
	Livemode bool
	// Created is the subscription's creation time. Default: the event's
	// time, or when the fake was given the subscription.
	Created time.Time
	// CurrentPeriodEnd is the end of the current period. Default: Created
	// plus 30 days. The period starts 30 days before it, or at Created if
	// that is later.
	CurrentPeriodEnd time.Time
	// CancelAtPeriodEnd is Stripe's cancel_at_period_end.
	CancelAtPeriodEnd bool
	// CanceledAt is the canceled_at and ended_at of a canceled or
	// incomplete_expired subscription (both are null for any other
	// status). Default: the event's time, or when the fake was given the
	// subscription.
	CanceledAt time.Time
	// Metadata is the subscription's metadata. Default: empty.
	Metadata map[string]string
}

// StripeSubscription is the former name of [SubscriptionSpec], from when the
// fake and the event builders had a spec each; they share one now. It
// remains for the code not yet migrated (examples/demo); write
// SubscriptionSpec.
type StripeSubscription = SubscriptionSpec

// SubscriptionObject returns sub as Stripe renders a subscription object
// (the fields stripe-go's Subscription decodes), for an [Event] or a reply.
// at is the time of the event or of the write: the default of sub.Created
// and sub.CanceledAt. The fake's replies and [SubscriptionEvent] are
// rendered by this function.
func SubscriptionObject(sub SubscriptionSpec, at time.Time) map[string]any {
	return sub.withDefaults(at).object()
}

// withDefaults returns sub with the defaults of [SubscriptionSpec] filled
// in, at being the time of the event or of the write.
func (sub SubscriptionSpec) withDefaults(at time.Time) SubscriptionSpec {
	if sub.Status == "" {
		sub.Status = "active"
	}
	if sub.PriceID == "" {
		sub.PriceID = PriceBasic
	}
	if sub.ProductID == "" {
		sub.ProductID = "prod_" + sub.PriceID
	}
	if sub.Created.IsZero() {
		sub.Created = at
	}
	if sub.CurrentPeriodEnd.IsZero() {
		sub.CurrentPeriodEnd = sub.Created.Add(30 * 24 * time.Hour)
	}
	if sub.CanceledAt.IsZero() && terminal(sub.Status) {
		sub.CanceledAt = at
	}
	return sub
}

// terminal reports whether Stripe never revives a subscription in status.
func terminal(status string) bool { return status == "canceled" || status == "incomplete_expired" }

// object renders sub, whose defaults are filled in.
func (sub SubscriptionSpec) object() map[string]any {
	product := any(sub.ProductID)
	if sub.ProductMetadata != nil {
		product = map[string]any{"id": sub.ProductID, "object": "product", "name": sub.ProductID, "active": true,
			"livemode": sub.Livemode, "metadata": sub.ProductMetadata}
	}
	price := map[string]any{
		"id": sub.PriceID, "object": "price", "active": true, "currency": "usd",
		"lookup_key": orNil(sub.LookupKey), "product": product, "livemode": sub.Livemode, "metadata": map[string]string{},
		"type": "recurring", "unit_amount": 1000, "billing_scheme": "per_unit",
		"recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "licensed"},
	}
	start := sub.CurrentPeriodEnd.Add(-30 * 24 * time.Hour)
	if start.Before(sub.Created) {
		start = sub.Created
	}
	var canceledAt, endedAt any
	if terminal(sub.Status) {
		canceledAt, endedAt = sub.CanceledAt.Unix(), sub.CanceledAt.Unix()
	}
	return map[string]any{
		"id": sub.ID, "object": "subscription", "customer": sub.Customer, "status": sub.Status,
		"livemode": sub.Livemode, "created": sub.Created.Unix(), "start_date": sub.Created.Unix(),
		"current_period_start": start.Unix(), "current_period_end": sub.CurrentPeriodEnd.Unix(),
		"cancel_at_period_end": sub.CancelAtPeriodEnd, "canceled_at": canceledAt, "ended_at": endedAt,
		"collection_method": "charge_automatically", "currency": "usd", "metadata": orEmpty(sub.Metadata),
		"items": map[string]any{
			"object": "list", "has_more": false, "total_count": 1,
			"url": "/v1/subscription_items?subscription=" + sub.ID,
			"data": []any{map[string]any{
				"id": "si_" + strings.TrimPrefix(sub.ID, "sub_"), "object": "subscription_item", "subscription": sub.ID,
				"quantity": 1, "created": sub.Created.Unix(), "metadata": map[string]string{}, "price": price,
			}},
		},
	}
}
