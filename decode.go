package billing

import (
	"encoding/json"
	"errors"
	"strings"

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
