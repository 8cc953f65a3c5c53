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

	// The fields below are the ones the emulator's own subscriptions
	// fill in (from the price and the request); a spec of a test can leave
	// them zero.

	// Quantity is the item's quantity. Default 1.
	Quantity int64
	// UnitAmount is the price's amount in the currency's smallest unit.
	// Default 1000.
	UnitAmount int64
	// Currency is the price's currency. Default "usd".
	Currency string
	// Interval and IntervalCount are the price's recurring interval.
	// Default "month" and 1. They do not change the default period (30
	// days).
	Interval      string
	IntervalCount int64
	// CurrentPeriodStart is the start of the current period. Default: 30
	// days before CurrentPeriodEnd, or Created if that is later.
	CurrentPeriodStart time.Time
	// TrialStart and TrialEnd are the trial's start and end. Default: none
	// (null).
	TrialStart, TrialEnd time.Time
	// CancelAt is when the subscription is set to be canceled (Stripe's
	// cancel_at; with CancelAtPeriodEnd, the period's end). Default: none.
	CancelAt time.Time
	// DefaultPaymentMethod is the subscription's default payment method id.
	// Default: none.
	DefaultPaymentMethod string
	// LatestInvoice is the id of the subscription's latest invoice.
	// Default: none.
	LatestInvoice string
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
	if sub.Quantity == 0 {
		sub.Quantity = 1
	}
	if sub.UnitAmount == 0 {
		sub.UnitAmount = 1000
	}
	sub.Currency = orDefault(sub.Currency, "usd")
	sub.Interval = orDefault(sub.Interval, "month")
	if sub.IntervalCount == 0 {
		sub.IntervalCount = 1
	}
	return sub
}

// clone returns a copy of sub that shares no map with it.
func (sub *SubscriptionSpec) clone() SubscriptionSpec {
	c := *sub
	c.Metadata = cloneMap(sub.Metadata)
	c.ProductMetadata = cloneMap(sub.ProductMetadata)
	return c
}

// periodStart is the start of the current period (see
// [SubscriptionSpec].CurrentPeriodStart).
func (sub *SubscriptionSpec) periodStart() time.Time {
	if !sub.CurrentPeriodStart.IsZero() {
		return sub.CurrentPeriodStart
	}
	start := sub.CurrentPeriodEnd.Add(-30 * 24 * time.Hour)
	if start.Before(sub.Created) {
		start = sub.Created
	}
	return start
}

// itemID is the id of the subscription's one item.
func (sub *SubscriptionSpec) itemID() string { return "si_" + strings.TrimPrefix(sub.ID, "sub_") }

func unixOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
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
		"id": sub.PriceID, "object": "price", "active": true, "currency": sub.Currency,
		"lookup_key": orNil(sub.LookupKey), "product": product, "livemode": sub.Livemode, "metadata": map[string]string{},
		"type": "recurring", "unit_amount": sub.UnitAmount, "billing_scheme": "per_unit",
		"recurring": map[string]any{"interval": sub.Interval, "interval_count": sub.IntervalCount, "usage_type": "licensed"},
	}
	start := sub.periodStart()
	var canceledAt, endedAt any
	if terminal(sub.Status) {
		canceledAt, endedAt = sub.CanceledAt.Unix(), sub.CanceledAt.Unix()
	}
	return map[string]any{
		"id": sub.ID, "object": "subscription", "customer": sub.Customer, "status": sub.Status,
		"livemode": sub.Livemode, "created": sub.Created.Unix(), "start_date": sub.Created.Unix(),
		"current_period_start": start.Unix(), "current_period_end": sub.CurrentPeriodEnd.Unix(),
		"cancel_at_period_end": sub.CancelAtPeriodEnd, "canceled_at": canceledAt, "ended_at": endedAt,
		"collection_method": "charge_automatically", "currency": sub.Currency, "metadata": orEmpty(sub.Metadata),
		"trial_start": unixOrNil(sub.TrialStart), "trial_end": unixOrNil(sub.TrialEnd), "cancel_at": unixOrNil(sub.CancelAt),
		"default_payment_method": orNil(sub.DefaultPaymentMethod), "latest_invoice": orNil(sub.LatestInvoice),
		"items": map[string]any{
			"object": "list", "has_more": false, "total_count": 1,
			"url": "/v1/subscription_items?subscription=" + sub.ID,
			"data": []any{map[string]any{
				"id": sub.itemID(), "object": "subscription_item", "subscription": sub.ID,
				"quantity": sub.Quantity, "created": sub.Created.Unix(), "metadata": map[string]string{}, "price": price,
			}},
		},
	}
}
