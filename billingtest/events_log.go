package billingtest

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// EmittedEvent is an event the emulator emitted for a change of its state,
// as GET /v1/events lists it.
type EmittedEvent struct {
	// ID is the event id (evt_...).
	ID string
	// Type is the event type, for example customer.subscription.updated.
	Type string
	// Created is the event's time on the emulator's clock: when the change
	// happened (for a renewal, the period's end).
	Created time.Time
	// JSON is the event as the events API renders it now (api_version
	// 2023-10-16, pending_webhooks as it is now).
	JSON []byte
}

// origin is what caused a change: an API request (its Request-Id and
// Idempotency-Key, the event's request field), or nothing (the hosted page,
// the clock, the kit's own methods).
type origin struct{ requestID, idempotencyKey string }

func originOf(w http.ResponseWriter, r *http.Request) origin {
	return origin{requestID: w.Header().Get("Request-Id"), idempotencyKey: r.Header.Get("Idempotency-Key")}
}

type eventRec struct {
	id, typ   string
	created   time.Time
	seq       int64
	object    json.RawMessage
	prev      json.RawMessage // nil: none
	origin    origin
	endpoints []string        // the endpoints it was sent to
	delivered map[string]bool // endpoint id -> a 2xx reply came
}

type eventLog struct {
	events []*eventRec // oldest first
	byID   map[string]*eventRec
	at     time.Time // when set, the time of the events emitted (the clock's due time)
}

// emitLocked records an event of a change that just happened, obj being
// the changed object as it is now and prev, if not nil, the changed
// fields' old values (data.previous_attributes), and hands it to webhook
// delivery. Every state change of the emulator goes through here, whoever
// made it.
func (s *Stripe) emitLocked(typ string, obj, prev map[string]any, o origin) *eventRec {
	raw, err := json.Marshal(obj)
	if err != nil {
		panic("billingtest: " + err.Error()) // only maps of plain values are encoded
	}
	ev := &eventRec{id: NewID("evt"), typ: typ, created: s.now(), seq: s.nextSeq(), object: raw, origin: o, delivered: map[string]bool{}}
	if !s.log.at.IsZero() {
		ev.created = s.log.at
	}
	if prev != nil {
		ev.prev, _ = json.Marshal(prev)
	}
	s.log.events = append(s.log.events, ev)
	s.log.byID[ev.id] = ev
	s.deliverLocked(ev)
	return ev
}

// emitChangeLocked emits typ with the previous attributes of the change
// from old to now (both rendered objects), and reports whether anything
// changed; nothing changed emits nothing.
func (s *Stripe) emitChangeLocked(typ string, old, now map[string]any, o origin) bool {
	prev := previousAttributes(generic(old), generic(now))
	if len(prev) == 0 {
		return false
	}
	s.emitLocked(typ, now, prev, o)
	return true
}

// generic returns v as encoding/json decodes it into an any, so that two
// renderings compare by value.
func generic(v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic("billingtest: " + err.Error())
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// previousAttributes returns the old values of what differs between old
// and now, as Stripe's data.previous_attributes holds them: a nested
// object only with its changed keys, any other value (a list, a string) as
// it was; a key now that old lacked has the old value null.
func previousAttributes(old, now map[string]any) map[string]any {
	prev := map[string]any{}
	for k, nv := range now {
		ov, had := old[k]
		if had && reflect.DeepEqual(ov, nv) {
			continue
		}
		om, oIsMap := ov.(map[string]any)
		nm, nIsMap := nv.(map[string]any)
		if oIsMap && nIsMap {
			if sub := previousAttributes(om, nm); len(sub) > 0 {
				prev[k] = sub
			}
			continue
		}
		prev[k] = ov
	}
	for k, ov := range old {
		if _, ok := now[k]; !ok {
			prev[k] = ov
		}
	}
	return prev
}

// pendingLocked is the event's pending_webhooks: the endpoints it was sent
// to that have not answered 2xx yet.
func (ev *eventRec) pendingLocked() int {
	n := 0
	for _, ep := range ev.endpoints {
		if !ev.delivered[ep] {
			n++
		}
	}
	return n
}

type eventWire struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Data       struct {
		Object             json.RawMessage `json:"object"`
		PreviousAttributes json.RawMessage `json:"previous_attributes,omitempty"`
	} `json:"data"`
	Livemode        bool `json:"livemode"`
	PendingWebhooks int  `json:"pending_webhooks"`
	Request         struct {
		ID             *string `json:"id"`
		IdempotencyKey *string `json:"idempotency_key"`
	} `json:"request"`
	Type string `json:"type"`
}

// jsonLocked renders the event in Stripe's shape with the given
// api_version ("": stripe-go v76's, 2023-10-16). The object itself is
// always in 2023-10-16's shape.
func (ev *eventRec) jsonLocked(version string) []byte {
	w := eventWire{ID: ev.id, Object: "event", APIVersion: orDefault(version, stripe.APIVersion), Created: ev.created.Unix(),
		PendingWebhooks: ev.pendingLocked(), Type: ev.typ}
	w.Data.Object, w.Data.PreviousAttributes = ev.object, ev.prev
	if ev.origin.requestID != "" {
		w.Request.ID = &ev.origin.requestID
		if ev.origin.idempotencyKey != "" {
			w.Request.IdempotencyKey = &ev.origin.idempotencyKey
		}
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic("billingtest: " + err.Error())
	}
	return b
}

// Events returns the events emitted so far, oldest first: all of them, or
// only those of the given types.
func (s *Stripe) Events(types ...string) []EmittedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []EmittedEvent
	for _, ev := range s.log.events {
		if len(types) == 0 || slices.Contains(types, ev.typ) {
			out = append(out, EmittedEvent{ID: ev.id, Type: ev.typ, Created: ev.created, JSON: ev.jsonLocked("")})
		}
	}
	return out
}

// typeMatches reports whether typ matches pattern: equal, or pattern's
// prefix before a final ".*" ("customer.subscription.*").
func typeMatches(pattern, typ string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(typ, prefix)
	}
	return pattern == typ
}

// GET /v1/events
func (s *Stripe) listEvents(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	typ := f.str("type")
	types, hasTypes := f.list("types")
	if typ != "" && hasTypes {
		f.invalid("types", "", "Send type or types, not both.")
	}
	if len(types) > 20 {
		f.invalid("types", "", "types takes at most 20 event types.")
	}
	created, hasCreated := f.integer("created")
	var bounds [4]int64
	var hasBound [4]bool
	for i, op := range []string{"gt", "gte", "lt", "lte"} {
		bounds[i], hasBound[i] = f.integer("created[" + op + "]")
	}
	success, hasSuccess := f.boolean("delivery_success")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	var objs []map[string]any
	for i := len(s.log.events) - 1; i >= 0; i-- {
		ev := s.log.events[i]
		at := ev.created.Unix()
		switch {
		case typ != "" && !typeMatches(typ, ev.typ),
			hasTypes && !slices.Contains(types, ev.typ),
			hasCreated && at != created,
			hasBound[0] && at <= bounds[0], hasBound[1] && at < bounds[1],
			hasBound[2] && at >= bounds[2], hasBound[3] && at > bounds[3]:
			continue
		}
		if hasSuccess {
			// An event sent to no endpoint had no delivery to succeed
			// or fail: it matches neither filter.
			if len(ev.endpoints) == 0 || (ev.pendingLocked() == 0) != success {
				continue
			}
		}
		var obj map[string]any
		_ = json.Unmarshal(ev.jsonLocked(""), &obj)
		ids, objs = append(ids, ev.id), append(objs, obj)
	}
	writeList(w, f, PathEvents, ids, objs)
}

// GET /v1/events/{id}
func (s *Stripe) getEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	ev, ok := s.log.byID[id]
	var b []byte
	if ok {
		b = ev.jsonLocked("")
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "event", id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Stripe-Version", stripe.APIVersion)
	_, _ = w.Write(b)
}
