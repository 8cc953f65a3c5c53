package billingtest

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/contafy/billing"
)

// SubscriptionGetter is a [billing.SubscriptionGetter] in memory, for tests
// that want Stripe's reads without HTTP (the webhook handler's tie reads,
// the portal's flow checks): it answers from the subscriptions put into it,
// rendered by [SubscriptionObject] and decoded by stripe-go as the fake
// [Stripe] answers them, records every read, and fails as Fail says. With
// Next set it passes every read on instead and only records it (around a
// stripe-go client, say).
//
// A subscription it does not hold is Stripe's 404 resource_missing. It is
// safe for concurrent use. The zero value holds nothing; set the fields
// before the first read.
type SubscriptionGetter struct {
	// Next, if set, answers the reads (the subscriptions put are then not
	// used). Default: nil.
	Next billing.SubscriptionGetter
	// Fail, if set, is called with the id of every read, outside the
	// getter's lock; the error it returns, if not nil, answers the read.
	// Default: nil, no read fails.
	Fail func(id string) error

	mu    sync.Mutex
	subs  map[string][]byte // subscription id -> rendered JSON
	reads []SubscriptionRead
}

// SubscriptionRead is one read a [SubscriptionGetter] answered.
type SubscriptionRead struct {
	// ID is the subscription id read.
	ID string
	// Params are the read's parameters as the caller passed them (Expand,
	// Context).
	Params *stripe.SubscriptionParams
	// Err is the error the read returned, nil for a subscription.
	Err error
}

var _ billing.SubscriptionGetter = (*SubscriptionGetter)(nil)

// NewSubscriptionGetter returns a SubscriptionGetter holding subs.
func NewSubscriptionGetter(subs ...SubscriptionSpec) *SubscriptionGetter {
	g := &SubscriptionGetter{}
	for _, s := range subs {
		g.Put(s)
	}
	return g
}

// Put stores sub (replacing one with the same ID) with the defaults of
// [SubscriptionSpec] (Created: now), as [Stripe.PutSubscription] does.
func (g *SubscriptionGetter) Put(sub SubscriptionSpec) {
	b, err := json.Marshal(SubscriptionObject(sub, time.Now()))
	if err != nil {
		panic("billingtest: SubscriptionGetter.Put: " + err.Error()) // only maps of plain values are encoded
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.subs == nil {
		g.subs = make(map[string][]byte)
	}
	g.subs[sub.ID] = b
}

// Get implements [billing.SubscriptionGetter]: Fail's error, Next's answer,
// a fresh copy of the stored subscription, or 404 resource_missing.
func (g *SubscriptionGetter) Get(id string, params *stripe.SubscriptionParams) (*stripe.Subscription, error) {
	sub, err := g.get(id, params)
	g.mu.Lock()
	g.reads = append(g.reads, SubscriptionRead{ID: id, Params: params, Err: err})
	g.mu.Unlock()
	return sub, err
}

func (g *SubscriptionGetter) get(id string, params *stripe.SubscriptionParams) (*stripe.Subscription, error) {
	if g.Fail != nil {
		if err := g.Fail(id); err != nil {
			return nil, err
		}
	}
	if g.Next != nil {
		return g.Next.Get(id, params)
	}
	g.mu.Lock()
	b, ok := g.subs[id]
	g.mu.Unlock()
	if !ok {
		return nil, &stripe.Error{Type: stripe.ErrorTypeInvalidRequest, Code: stripe.ErrorCodeResourceMissing, Param: "id",
			HTTPStatusCode: 404, Msg: fmt.Sprintf("No such subscription: '%s'", id), RequestID: NewID("req")}
	}
	var sub stripe.Subscription
	if err := json.Unmarshal(b, &sub); err != nil {
		return nil, fmt.Errorf("billingtest: SubscriptionGetter: decode %s: %w", id, err)
	}
	return &sub, nil
}

// Reads returns the reads answered so far, oldest first.
func (g *SubscriptionGetter) Reads() []SubscriptionRead {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]SubscriptionRead(nil), g.reads...)
}

// Calls returns how many reads were answered so far.
func (g *SubscriptionGetter) Calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.reads)
}
