package billingtest

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// StripeWebhookEndpoint is a webhook endpoint registered with the
// emulator, through POST /v1/webhook_endpoints or
// [Stripe.AddWebhookEndpoint].
type StripeWebhookEndpoint struct {
	// ID is the endpoint id (we_...).
	ID string
	// URL is where events are POSTed.
	URL string
	// EnabledEvents are the event types sent to it; "*" is every type.
	EnabledEvents []string
	// APIVersion is the api_version the endpoint's events carry; empty:
	// the account's, 2023-10-16. The objects keep 2023-10-16's shape
	// whatever it says.
	APIVersion string
	// Disabled is true for an endpoint set to status "disabled": nothing
	// is sent to it.
	Disabled bool
	// Secret is the signing secret (whsec_...) of the Stripe-Signature
	// header.
	Secret string
	// Description is the endpoint's description.
	Description string
	// Created is when it was registered, on the emulator's clock.
	Created time.Time
}

// DeliveryAttempt is one attempt to deliver an event to a webhook
// endpoint.
type DeliveryAttempt struct {
	// EventID and EventType are the event's.
	EventID, EventType string
	// Endpoint is the endpoint id, URL the URL POSTed to.
	Endpoint, URL string
	// Attempt numbers the attempts of one delivery: 1, 2, ...
	Attempt int
	// Status is the reply's status code; 0 when no reply came.
	Status int
	// Err is the connection error or timeout; empty when a reply came.
	Err string
	// OK is true for a 2xx reply.
	OK bool
	// Final is true when no attempt follows: delivered, or given up after
	// [DeliveryConfig].MaxAttempts.
	Final bool
	// Time is when the attempt was made, on the wall clock, and Duration
	// how long it took.
	Time     time.Time
	Duration time.Duration
}

type endpointRec struct {
	StripeWebhookEndpoint
	seq      int64
	metadata map[string]string
}

// delivery is one event on its way to one endpoint.
type delivery struct {
	ev       *eventRec
	endpoint string
	attempts int       // made so far
	due      time.Time // wall clock
	seq      int64
}

type webhookState struct {
	endpoints map[string]*endpointRec
	queue     []*delivery     // waiting, not in flight
	inflight  map[string]bool // endpoint id -> a delivery to it is in flight
	attempts  []DeliveryAttempt
	changed   chan struct{} // closed and replaced when a delivery ends or is queued
	wake      chan struct{} // wakes the dispatcher
	running   bool          // the dispatcher goroutine is started
	closed    bool          // Close was called: start no goroutine
	rng       *rand.Rand    // chaos choices; nil without chaos
	seq       int64
	held      map[string]*delivery // endpoint id -> a delivery held back by chaos (Reorder)
}

// holdBack is how long chaos holds a delivery back waiting for the next
// one to the same endpoint to overtake it.
const holdBack = 100 * time.Millisecond

func (e *endpointRec) object(withSecret bool) map[string]any {
	status := "enabled"
	if e.Disabled {
		status = "disabled"
	}
	obj := map[string]any{
		"id": e.ID, "object": "webhook_endpoint", "api_version": orNil(e.APIVersion), "application": nil,
		"created": e.Created.Unix(), "description": orNil(e.Description), "enabled_events": slices.Clone(e.EnabledEvents),
		"livemode": false, "metadata": orEmpty(e.metadata), "status": status, "url": e.URL,
	}
	if withSecret {
		obj["secret"] = e.Secret
	}
	return obj
}

func newSecret() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	return "whsec_" + hex.EncodeToString(b)
}

// AddWebhookEndpoint registers an endpoint for url receiving the given
// event types (none: every type, "*"), as POST /v1/webhook_endpoints does,
// and returns it with its generated secret.
func (s *Stripe) AddWebhookEndpoint(url string, events ...string) StripeWebhookEndpoint {
	if len(events) == 0 {
		events = []string{"*"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &endpointRec{StripeWebhookEndpoint: StripeWebhookEndpoint{ID: NewID("we"), URL: url, EnabledEvents: slices.Clone(events),
		Secret: newSecret(), Created: s.now()}, seq: s.nextSeq()}
	s.hooks.endpoints[e.ID] = e
	return e.clone()
}

func (e *endpointRec) clone() StripeWebhookEndpoint {
	out := e.StripeWebhookEndpoint
	out.EnabledEvents = slices.Clone(e.EnabledEvents)
	return out
}

// WebhookEndpoints returns the registered endpoints, oldest first.
func (s *Stripe) WebhookEndpoints() []StripeWebhookEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StripeWebhookEndpoint
	for _, e := range s.sortedEndpointsLocked() {
		out = append(out, e.clone())
	}
	return out
}

func (s *Stripe) sortedEndpointsLocked() []*endpointRec {
	out := make([]*endpointRec, 0, len(s.hooks.endpoints))
	for _, e := range s.hooks.endpoints {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// Deliveries returns every delivery attempt made so far, in the order they
// ended.
func (s *Stripe) Deliveries() []DeliveryAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hooks.attempts)
}

var apiVersionRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$`)

// applyEndpoint sets on e what f sends.
func applyEndpoint(e *endpointRec, f *form, create bool) {
	if v, ok := f.opt("url"); ok || create {
		if !validURL(v) {
			f.invalid("url", "url_invalid", "Invalid URL: url must be an http or https URL with a host.")
		}
		e.URL = v
	}
	if v, ok := f.list("enabled_events"); ok || create {
		if len(v) == 0 {
			f.fail(missingParam("enabled_events"))
		}
		for _, t := range v {
			if t != "*" && (!strings.Contains(t, ".") || strings.ContainsAny(t, " *")) {
				f.invalid("enabled_events", "parameter_invalid_string",
					fmt.Sprintf("Invalid enabled_events value %q: use event types such as customer.subscription.updated, or \"*\" for all.", t))
			}
		}
		e.EnabledEvents = v
	}
	if v, ok := f.opt("api_version"); ok && create {
		if !apiVersionRE.MatchString(v) {
			f.invalid("api_version", "parameter_invalid_string", fmt.Sprintf("Invalid api_version %q: use a date such as 2023-10-16.", v))
		}
		e.APIVersion = v
	}
	if v, ok := f.opt("description"); ok {
		e.Description = v
	}
	if v, ok := f.boolean("disabled"); ok {
		e.Disabled = v
	}
	e.metadata = f.metadata("metadata", e.metadata)
}

// POST /v1/webhook_endpoints
func (s *Stripe) createEndpoint(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	e := &endpointRec{}
	applyEndpoint(e, f, true)
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e.ID, e.Secret, e.Created, e.seq = NewID("we"), newSecret(), s.now(), s.nextSeq()
	s.hooks.endpoints[e.ID] = e
	writeJSON(w, http.StatusOK, e.object(true))
}

// GET, POST and DELETE /v1/webhook_endpoints/{id}
func (s *Stripe) endpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := newForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.hooks.endpoints[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "webhook endpoint", id))
		return
	}
	switch r.Method {
	case http.MethodPost:
		next := *e
		next.EnabledEvents, next.metadata = slices.Clone(e.EnabledEvents), cloneMap(e.metadata)
		applyEndpoint(&next, f, false)
		if f.answerBad(w) {
			return
		}
		*e = next
	case http.MethodDelete:
		delete(s.hooks.endpoints, id)
		s.hooks.queue = slices.DeleteFunc(s.hooks.queue, func(d *delivery) bool { return d.endpoint == id })
		s.broadcastLocked()
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "webhook_endpoint", "deleted": true})
		return
	}
	writeJSON(w, http.StatusOK, e.object(false))
}

// GET /v1/webhook_endpoints
func (s *Stripe) listEndpoints(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	es := s.sortedEndpointsLocked()
	slices.Reverse(es)
	ids, objs := make([]string, len(es)), make([]map[string]any, len(es))
	for i, e := range es {
		ids[i], objs[i] = e.ID, e.object(false)
	}
	writeList(w, f, PathWebhookEndpoints, ids, objs)
}

// deliverLocked queues ev for every enabled endpoint whose enabled_events
// match it (with chaos: maybe twice, maybe late).
func (s *Stripe) deliverLocked(ev *eventRec) {
	chaos := s.cfg.Webhooks.Chaos
	queued := false
	for _, e := range s.sortedEndpointsLocked() {
		if e.Disabled || !slices.ContainsFunc(e.EnabledEvents, func(t string) bool { return t == "*" || t == ev.typ }) {
			continue
		}
		ev.endpoints = append(ev.endpoints, e.ID)
		copies := 1
		if chaos != nil && s.hooks.rng.Float64() < chaos.Duplicate {
			copies = 2
		}
		for range copies {
			s.enqueueLocked(&delivery{ev: ev, endpoint: e.ID, due: time.Now()})
			queued = true
		}
	}
	if !queued {
		return
	}
	if !s.hooks.running && !s.hooks.closed {
		s.hooks.running = true
		s.wg.Add(1)
		go s.dispatch()
	}
	s.broadcastLocked()
	s.wakeDispatcher()
}

// enqueueLocked queues d, applying chaos: a random delay, and, with the
// probability Reorder, holding d back (for at most holdBack) so that the
// next delivery to the same endpoint overtakes it. Every choice is made
// here, in the order events happen, so a seed gives the same choices.
func (s *Stripe) enqueueLocked(d *delivery) {
	s.hooks.seq++
	d.seq = s.hooks.seq
	if c := s.cfg.Webhooks.Chaos; c != nil {
		if c.MaxDelay > 0 {
			d.due = d.due.Add(time.Duration(s.hooks.rng.Int64N(int64(c.MaxDelay))))
		}
		if h := s.hooks.held[d.endpoint]; h != nil {
			// The held delivery goes right after this one.
			delete(s.hooks.held, d.endpoint)
			s.hooks.seq++
			h.seq, h.due = s.hooks.seq, d.due
		} else if s.hooks.rng.Float64() < c.Reorder {
			if s.hooks.held == nil {
				s.hooks.held = map[string]*delivery{}
			}
			s.hooks.held[d.endpoint] = d
			d.due = d.due.Add(holdBack)
		}
	}
	s.hooks.queue = append(s.hooks.queue, d)
}

// broadcastLocked tells the waiters of [Stripe.WaitDeliveries] that
// something changed.
func (s *Stripe) broadcastLocked() {
	close(s.hooks.changed)
	s.hooks.changed = make(chan struct{})
}

func (s *Stripe) wakeDispatcher() {
	select {
	case s.hooks.wake <- struct{}{}:
	default:
	}
}

// dispatch is the delivery loop, one goroutine per emulator, ended by
// Close: it starts the due deliveries, at most one in flight per endpoint
// (so that, without chaos and retries, an endpoint receives events in the
// order they happened), each in a goroutine of its own.
func (s *Stripe) dispatch() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		now := time.Now()
		var next time.Time
		due := map[string][]*delivery{}
		for _, d := range s.hooks.queue {
			switch {
			case s.hooks.inflight[d.endpoint]:
			case !d.due.After(now):
				due[d.endpoint] = append(due[d.endpoint], d)
			case next.IsZero() || d.due.Before(next):
				next = d.due
			}
		}
		eps := make([]string, 0, len(due))
		for ep := range due {
			eps = append(eps, ep)
		}
		sort.Strings(eps)
		var start []*delivery
		for _, ep := range eps {
			ds := due[ep]
			sort.Slice(ds, func(i, j int) bool { return ds[i].seq < ds[j].seq })
			pick := ds[0]
			if s.hooks.held[ep] == pick {
				delete(s.hooks.held, ep) // its hold ran out
			}
			s.hooks.queue = slices.DeleteFunc(s.hooks.queue, func(d *delivery) bool { return d == pick })
			s.hooks.inflight[ep] = true
			start = append(start, pick)
		}
		for _, d := range start {
			s.wg.Add(1)
			go s.send(d)
		}
		s.mu.Unlock()

		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(0, time.Until(next))
		}
		timer.Reset(wait)
		select {
		case <-s.closing:
			return
		case <-s.hooks.wake:
		case <-timer.C:
		}
	}
}

// send makes one attempt of d and queues the next one, if any.
func (s *Stripe) send(d *delivery) {
	defer s.wg.Done()
	s.mu.Lock()
	e, ok := s.hooks.endpoints[d.endpoint]
	if !ok || e.Disabled { // deleted or disabled meanwhile: dropped
		delete(s.hooks.inflight, d.endpoint)
		s.broadcastLocked()
		s.mu.Unlock()
		s.wakeDispatcher()
		return
	}
	url, secret := e.URL, e.Secret
	payload := d.ev.jsonLocked(e.APIVersion)
	d.attempts++
	s.mu.Unlock()

	cfg := s.cfg.Webhooks
	ctx, cancel := context.WithTimeout(s.ctx, cfg.Timeout)
	start := time.Now()
	status, err := post(ctx, s.hookClient, url, payload, Sign(payload, secret, start))
	cancel()
	took := time.Since(start)

	s.mu.Lock()
	okReply := err == nil && status >= 200 && status < 300
	final := okReply || d.attempts >= cfg.MaxAttempts || s.ctx.Err() != nil
	a := DeliveryAttempt{EventID: d.ev.id, EventType: d.ev.typ, Endpoint: d.endpoint, URL: url, Attempt: d.attempts,
		Status: status, OK: okReply, Final: final, Time: start, Duration: took}
	if err != nil {
		a.Err = err.Error()
	}
	s.hooks.attempts = append(s.hooks.attempts, a)
	if okReply {
		d.ev.delivered[d.endpoint] = true
	}
	if !final {
		d.due = time.Now().Add(backoff(cfg.FirstRetry, d.attempts))
		s.hooks.queue = append(s.hooks.queue, d)
	}
	delete(s.hooks.inflight, d.endpoint)
	s.broadcastLocked()
	s.mu.Unlock()
	s.wakeDispatcher()
	level := slog.LevelInfo
	if !okReply {
		level = slog.LevelWarn
	}
	s.cfg.Logger.LogAttrs(context.Background(), level, "billingtest: webhook delivery",
		slog.String("event", a.EventID), slog.String("type", a.EventType), slog.String("endpoint", a.Endpoint),
		slog.Int("attempt", a.Attempt), slog.Int("status", status), slog.String("error", a.Err), slog.Bool("final", final))
}

// backoff is the wait after the given number of failed attempts: first,
// doubled each time, at most an hour.
func backoff(first time.Duration, attempts int) time.Duration {
	d := first
	for i := 1; i < attempts && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// post delivers one payload as Stripe does and returns the reply's status.
func post(ctx context.Context, c *http.Client, url string, payload []byte, signature string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Stripe-Signature", signature)
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, fmt.Errorf("timed out: %w", err)
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// WaitDeliveries blocks until no webhook delivery is queued, waiting for a
// retry or in flight: every event emitted so far was delivered to each of
// its endpoints or given up on. It returns ctx's error if ctx ends first,
// and an error if the emulator is closed first.
func (s *Stripe) WaitDeliveries(ctx context.Context) error {
	for {
		s.mu.Lock()
		pending := len(s.hooks.queue) + len(s.hooks.inflight)
		ch := s.hooks.changed
		s.mu.Unlock()
		if pending == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("billingtest: WaitDeliveries: %d deliveries still pending or in flight: %w", pending, ctx.Err())
		case <-s.closing:
			return errors.New("billingtest: WaitDeliveries: the emulator was closed")
		}
	}
}
