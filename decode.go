package billing

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// subState is what the sync reads of a subscription, whatever its source:
// an event's data.object (of any API version) or a subscription read from
// Stripe through stripe-go.
type subState struct {
	ID       string
	Customer string
	Status   string
	Prices   []priceRef
	facts    lifecycle
}

// lifecycle are the lifecycle facts of a subscription, as [Subscription]
// holds them.
type lifecycle struct {
	cancelAtPeriodEnd                bool
	cancelAt, canceledAt, endedAt    time.Time
	periodStart, periodEnd, trialEnd time.Time
}

// unixTime is t seconds after the epoch, or the zero time for 0.
func unixTime(t int64) time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(t, 0).UTC()
}

// earliestPeriod folds an item's period into the subscription's when the
// subscription states none (API version 2025-03-31 and later): the
// earliest end, with its start.
func (l *lifecycle) earliestPeriod(start, end time.Time) {
	if end.IsZero() {
		return
	}
	if l.periodEnd.IsZero() || end.Before(l.periodEnd) {
		l.periodStart, l.periodEnd = start, end
	}
}

// priceRef is what the sync reads of one subscription item's price.
type priceRef struct {
	ID              string
	LookupKey       string
	ProductID       string
	ProductMetadata map[string]string
	Quantity        int64
	// productExpanded is true when the product came as an object, so its
	// metadata (possibly empty) is known.
	productExpanded bool
}

// stateFromStripe converts a subscription read through stripe-go.
func stateFromStripe(s *stripe.Subscription) subState {
	st := subState{ID: s.ID, Status: string(s.Status), facts: lifecycle{
		cancelAtPeriodEnd: s.CancelAtPeriodEnd,
		cancelAt:          unixTime(s.CancelAt),
		canceledAt:        unixTime(s.CanceledAt),
		endedAt:           unixTime(s.EndedAt),
		periodStart:       unixTime(s.CurrentPeriodStart),
		periodEnd:         unixTime(s.CurrentPeriodEnd),
		trialEnd:          unixTime(s.TrialEnd),
	}}
	if s.Customer != nil {
		st.Customer = s.Customer.ID
	}
	if s.Items != nil {
		for _, it := range s.Items.Data {
			if it == nil || it.Price == nil {
				continue
			}
			ref := priceRef{ID: it.Price.ID, LookupKey: it.Price.LookupKey, Quantity: it.Quantity}
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
// items.data[].price.{id,lookup_key,product}, quantity) have kept their
// shape across Stripe's API versions. The lifecycle facts are read
// leniently ([wireTime]): a fact of an unexpected shape is left unset
// rather than refusing the event, which Stripe would retry and then lose.
// The current period moved from the subscription to each item in API
// version 2025-03-31; both places are read.
type wireSubscription struct {
	ID                 string     `json:"id"`
	Object             string     `json:"object"`
	Customer           wireObject `json:"customer"`
	Status             string     `json:"status"`
	CancelAtPeriodEnd  wireBool   `json:"cancel_at_period_end"`
	CancelAt           wireTime   `json:"cancel_at"`
	CanceledAt         wireTime   `json:"canceled_at"`
	EndedAt            wireTime   `json:"ended_at"`
	CurrentPeriodStart wireTime   `json:"current_period_start"`
	CurrentPeriodEnd   wireTime   `json:"current_period_end"`
	TrialEnd           wireTime   `json:"trial_end"`
	Items              struct {
		Data []struct {
			Price *struct {
				ID        string     `json:"id"`
				LookupKey string     `json:"lookup_key"`
				Product   wireObject `json:"product"`
			} `json:"price"`
			Quantity           wireInt  `json:"quantity"`
			CurrentPeriodStart wireTime `json:"current_period_start"`
			CurrentPeriodEnd   wireTime `json:"current_period_end"`
		} `json:"data"`
	} `json:"items"`
}

// wireTime is a Unix time in seconds; null, 0 or any other shape is unset.
type wireTime struct{ t time.Time }

// UnmarshalJSON never fails: see [wireSubscription].
func (w *wireTime) UnmarshalJSON(b []byte) error {
	var n int64
	if json.Unmarshal(b, &n) == nil {
		w.t = unixTime(n)
	}
	return nil
}

// wireBool is a boolean; null or any other shape is false.
type wireBool bool

// UnmarshalJSON never fails: see [wireSubscription].
func (w *wireBool) UnmarshalJSON(b []byte) error {
	var v bool
	_ = json.Unmarshal(b, &v)
	*w = wireBool(v)
	return nil
}

// wireInt is an integer; null or any other shape is 0.
type wireInt int64

// UnmarshalJSON never fails: see [wireSubscription].
func (w *wireInt) UnmarshalJSON(b []byte) error {
	var v int64
	_ = json.Unmarshal(b, &v)
	*w = wireInt(v)
	return nil
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
	st := subState{ID: w.ID, Customer: w.Customer.ID, Status: w.Status, facts: lifecycle{
		cancelAtPeriodEnd: bool(w.CancelAtPeriodEnd),
		cancelAt:          w.CancelAt.t,
		canceledAt:        w.CanceledAt.t,
		endedAt:           w.EndedAt.t,
		periodStart:       w.CurrentPeriodStart.t,
		periodEnd:         w.CurrentPeriodEnd.t,
		trialEnd:          w.TrialEnd.t,
	}}
	itemPeriods := st.facts.periodEnd.IsZero()
	for _, it := range w.Items.Data {
		if itemPeriods {
			st.facts.earliestPeriod(it.CurrentPeriodStart.t, it.CurrentPeriodEnd.t)
		}
		if it.Price == nil {
			continue
		}
		st.Prices = append(st.Prices, priceRef{
			ID: it.Price.ID, LookupKey: it.Price.LookupKey,
			ProductID: it.Price.Product.ID, ProductMetadata: it.Price.Product.Metadata,
			Quantity:        int64(it.Quantity),
			productExpanded: it.Price.Product.Expanded,
		})
	}
	return st, nil
}

// priceIDs lists st's price ids, for logs.
func (st subState) priceIDs() string {
	ids := make([]string, 0, len(st.Prices))
	for _, p := range st.Prices {
		ids = append(ids, p.ID)
	}
	return strings.Join(ids, ",")
}

// wireEvent is the envelope of an event as the handler reads it: the fields
// every API version has, with data.object kept raw. stripe.Event itself is
// not decoded into, since some of its fields changed type across versions
// (request was a string before 2017-05-25).
type wireEvent struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Livemode   bool   `json:"livemode"`
	Type       string `json:"type"`
	Data       *struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// decodeEvent decodes an event body into a stripe.Event with Data.Raw set
// (Data.Object is left nil).
func decodeEvent(body []byte) (*stripe.Event, bool) {
	var w wireEvent
	if err := json.Unmarshal(body, &w); err != nil || w.ID == "" || w.Type == "" ||
		(w.Object != "" && w.Object != "event") || w.Data == nil || len(w.Data.Object) == 0 {
		return nil, false
	}
	return &stripe.Event{
		ID: w.ID, Object: "event", APIVersion: w.APIVersion, Created: w.Created,
		Livemode: w.Livemode, Type: stripe.EventType(w.Type),
		Data: &stripe.EventData{Raw: w.Data.Object},
	}, true
}

// wireCheckout is the part of a checkout session the handler reads.
type wireCheckout struct {
	ID                string     `json:"id"`
	Object            string     `json:"object"`
	ClientReferenceID string     `json:"client_reference_id"`
	Customer          wireObject `json:"customer"`
}
