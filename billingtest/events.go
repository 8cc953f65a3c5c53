package billingtest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// WebhookSecret is a signing secret for tests: give it to
// billing.WebhookConfig.Secrets and to [WebhookRequest].
const WebhookSecret = "whsec_billingtest_0123456789abcdef"

// WebhookPath is where the kit's requests are sent by default, the path the
// documentation mounts the webhook handler at.
const WebhookPath = "/api/subscription/webhook"

// OtherAPIVersion is an API version that is not stripe-go v76's
// (stripe.APIVersion, 2023-10-16), for the [OtherAPIVersionSignature]
// variant.
const OtherAPIVersion = "2020-08-27"

// CheckoutSpec describes the checkout session of a
// checkout.session.completed event built by [CheckoutCompletedEvent].
type CheckoutSpec struct {
	// ID is the session id. Default: a fresh cs_test_... id.
	ID string
	// ClientReferenceID is the app's user id set when creating the session.
	ClientReferenceID string
	// Customer is the customer id (cus_...) the session created or used.
	Customer string
	// Subscription is the subscription id it created, if any.
	Subscription string
	// Livemode is the object's and the event's livemode. Default false.
	Livemode bool
}

// Event is a Stripe event with full control over its envelope. Most tests
// want [SubscriptionEvent] or [CheckoutCompletedEvent], which fill it in.
type Event struct {
	// ID is the event id. Default: a fresh, unique evt_... id.
	ID string
	// Type is the event type, for example "customer.subscription.updated".
	// Required.
	Type string
	// Created is the event's creation time (Stripe keeps whole seconds).
	// Default: now.
	Created time.Time
	// APIVersion is the version the object is rendered in. Default
	// stripe.APIVersion (the version stripe-go v76 expects).
	APIVersion string
	// Livemode is the event's livemode. Default false.
	Livemode bool
	// Object is marshalled as data.object.
	Object any
}

// JSON returns the event as Stripe sends it: the JSON that stripe-go's
// webhook.ConstructEvent decodes into a stripe.Event.
func (e Event) JSON() []byte {
	if e.ID == "" {
		e.ID = NewID("evt")
	}
	if e.Created.IsZero() {
		e.Created = time.Now()
	}
	if e.APIVersion == "" {
		e.APIVersion = stripe.APIVersion
	}
	b, err := json.Marshal(map[string]any{
		"id":               e.ID,
		"object":           "event",
		"api_version":      e.APIVersion,
		"created":          e.Created.Unix(),
		"data":             map[string]any{"object": e.Object},
		"livemode":         e.Livemode,
		"pending_webhooks": 1,
		"request":          map[string]any{"id": nil, "idempotency_key": nil},
		"type":             e.Type,
	})
	if err != nil {
		panic("billingtest: Event.JSON: " + err.Error())
	}
	return b
}

// SubscriptionEvent returns the JSON of a Stripe event of the given type
// (customer.subscription.created, .updated, .deleted, .paused, .resumed,
// ...) created at created, with a fresh event id and sub as data.object in
// Stripe's shape (items.data[0].price with id, lookup_key and product).
// Send the same bytes twice to deliver a duplicate.
func SubscriptionEvent(eventType string, sub SubscriptionSpec, created time.Time) []byte {
	return Event{Type: eventType, Created: created, Livemode: sub.Livemode, Object: SubscriptionObject(sub, created)}.JSON()
}

// CheckoutCompletedEvent returns the JSON of a checkout.session.completed
// event created at created, with a fresh event id.
func CheckoutCompletedEvent(cs CheckoutSpec, created time.Time) []byte {
	if cs.ID == "" {
		cs.ID = NewID("cs_test")
	}
	obj := map[string]any{
		"id": cs.ID, "object": "checkout.session", "mode": "subscription",
		"status": "complete", "payment_status": "paid", "livemode": cs.Livemode,
		"client_reference_id": orNil(cs.ClientReferenceID),
		"customer":            orNil(cs.Customer),
		"subscription":        orNil(cs.Subscription),
		"created":             created.Unix(),
		"metadata":            map[string]string{},
	}
	return Event{Type: "checkout.session.completed", Created: created, Livemode: cs.Livemode, Object: obj}.JSON()
}

// Sign returns the Stripe-Signature header for payload signed with secret
// at time t ("t=<unix>,v1=<hex hmac>"), as Stripe computes it.
func Sign(payload []byte, secret string, t time.Time) string {
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(webhook.ComputeSignature(t, payload, secret)))
}

// Variant selects what is wrong, if anything, with a [WebhookRequest].
type Variant int

const (
	// Valid: correctly signed at RequestOptions.Time.
	Valid Variant = iota
	// BadSignature: signed with another secret.
	BadSignature
	// Unsigned: no Stripe-Signature header.
	Unsigned
	// MalformedSignature: a v1 signature that is not hex.
	MalformedSignature
	// Stale: correctly signed, 10 minutes before RequestOptions.Time.
	Stale
	// Future: correctly signed, 10 minutes after RequestOptions.Time.
	Future
	// OtherAPIVersionSignature: the payload's api_version replaced with
	// RequestOptions.APIVersion (default [OtherAPIVersion]), then correctly
	// signed, as an endpoint pinned to another API version sends it.
	OtherAPIVersionSignature
)

// RequestOptions are the choices of [WebhookRequest]. The zero value is a
// valid request signed now, to [WebhookPath].
type RequestOptions struct {
	// Variant is what is wrong with the request. Default [Valid].
	Variant Variant
	// Target is the request's path or URL. Default [WebhookPath].
	Target string
	// Time is the signature's timestamp (Stale and Future shift it by
	// 10 minutes). Default: now.
	Time time.Time
	// APIVersion is the api_version of OtherAPIVersionSignature. Default
	// [OtherAPIVersion].
	APIVersion string
}

// WebhookRequest returns a POST request carrying payload as Stripe delivers
// it, signed with secret (or not, as opts.Variant says), for a handler's
// ServeHTTP or, after setting its URL, an http.Client. Sign with
// [WebhookSecret] when the handler uses it.
func WebhookRequest(payload []byte, secret string, opts RequestOptions) *http.Request {
	t := opts.Time
	if t.IsZero() {
		t = time.Now()
	}
	target := opts.Target
	if target == "" {
		target = WebhookPath
	}
	var header string
	switch opts.Variant {
	case BadSignature:
		header = Sign(payload, secret+"_wrong", t)
	case Unsigned:
	case MalformedSignature:
		header = fmt.Sprintf("t=%d,v1=not-hex-%s", t.Unix(), "zz")
	case Stale:
		header = Sign(payload, secret, t.Add(-10*time.Minute))
	case Future:
		header = Sign(payload, secret, t.Add(10*time.Minute))
	case OtherAPIVersionSignature:
		v := opts.APIVersion
		if v == "" {
			v = OtherAPIVersion
		}
		payload = withAPIVersion(payload, v)
		header = Sign(payload, secret, t)
	default:
		header = Sign(payload, secret, t)
	}
	r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(payload))
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	r.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	if header != "" {
		r.Header.Set("Stripe-Signature", header)
	}
	return r
}

// withAPIVersion returns payload with its api_version replaced.
func withAPIVersion(payload []byte, v string) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		panic("billingtest: WebhookRequest: payload is not a JSON object: " + err.Error())
	}
	b, _ := json.Marshal(v)
	m["api_version"] = b
	out, err := json.Marshal(m)
	if err != nil {
		panic("billingtest: WebhookRequest: " + err.Error())
	}
	return out
}
