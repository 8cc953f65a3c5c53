package billing

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// PriceTable maps Stripe prices to plans. A price is looked up, in this
// order, by its id (Prices), its lookup key (LookupKeys), its product's id
// (Products) and, when the product is expanded, by the product's metadata
// value under ProductMetadataKey (for example metadata "plan"="PRO" on the
// product). Webhook events never expand the product, so metadata only helps
// when the handler can read the subscription from Stripe
// ([WebhookConfig].Subscriptions) and for the return sync, which expand it.
//
// A table must map at least one price; plans must be FREE, BASIC or PRO (a
// price mapped to FREE is a known price that grants no paid plan).
type PriceTable struct {
	// Prices maps price ids (price_...) to plans.
	Prices map[string]Plan
	// LookupKeys maps price lookup keys to plans.
	LookupKeys map[string]Plan
	// Products maps product ids (prod_...) to plans.
	Products map[string]Plan
	// ProductMetadataKey, if set, is the product metadata key whose value
	// names the plan (parsed like [ParsePlan]).
	ProductMetadataKey string
}

// ParsePriceTable parses a comma-separated list of KEY=PLAN entries, the
// format of the demo's -price-plans flag:
//
//	price_basic=BASIC,price_pro=PRO
//	lookup_key:pro_monthly=PRO,product:prod_123=BASIC,metadata:plan
//
// A bare KEY is a price id; "lookup_key:K" is a price lookup key;
// "product:ID" is a product id; a lone "metadata:KEY" entry (no "=PLAN")
// sets ProductMetadataKey. Plans are FREE, BASIC or PRO in any case. Spaces
// around entries are ignored; an empty list, an empty key, an unknown plan
// or the same key twice is an error.
func ParsePriceTable(s string) (PriceTable, error) {
	var t PriceTable
	for _, raw := range strings.Split(s, ",") {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		if k, ok := strings.CutPrefix(entry, "metadata:"); ok && !strings.Contains(k, "=") {
			if k == "" || t.ProductMetadataKey != "" {
				return PriceTable{}, fmt.Errorf("billing: price table entry %q: want one metadata:KEY entry with a non-empty key", entry)
			}
			t.ProductMetadataKey = k
			continue
		}
		key, planName, ok := strings.Cut(entry, "=")
		key = strings.TrimSpace(key)
		if !ok {
			return PriceTable{}, fmt.Errorf("billing: price table entry %q: want KEY=PLAN, for example price_pro=PRO", entry)
		}
		plan, err := ParsePlan(planName)
		if err != nil {
			return PriceTable{}, fmt.Errorf("billing: price table entry %q: %w", entry, err)
		}
		m := &t.Prices
		switch {
		case strings.HasPrefix(key, "lookup_key:"):
			key, m = strings.TrimPrefix(key, "lookup_key:"), &t.LookupKeys
		case strings.HasPrefix(key, "product:"):
			key, m = strings.TrimPrefix(key, "product:"), &t.Products
		}
		if key == "" {
			return PriceTable{}, fmt.Errorf("billing: price table entry %q: empty key", entry)
		}
		if *m == nil {
			*m = make(map[string]Plan)
		}
		if _, dup := (*m)[key]; dup {
			return PriceTable{}, fmt.Errorf("billing: price table entry %q: key given twice", entry)
		}
		(*m)[key] = plan
	}
	if err := t.validate(); err != nil {
		return PriceTable{}, err
	}
	return t, nil
}

// validate checks that t maps something and only to valid plans.
func (t PriceTable) validate() error {
	if len(t.Prices)+len(t.LookupKeys)+len(t.Products) == 0 && t.ProductMetadataKey == "" {
		return errors.New("billing: the price table is empty (map your Stripe prices to plans, for example billing.ParsePriceTable(\"price_basic=BASIC,price_pro=PRO\"))")
	}
	for _, m := range []map[string]Plan{t.Prices, t.LookupKeys, t.Products} {
		for k, p := range m {
			if !p.Valid() {
				return fmt.Errorf("billing: the price table maps %q to %q (want FREE, BASIC or PRO)", k, p)
			}
		}
	}
	return nil
}

// Plan returns the plan a Stripe price maps to, and whether it maps to any.
// A nil price maps to nothing.
func (t PriceTable) Plan(p *stripe.Price) (Plan, bool) {
	if p == nil {
		return "", false
	}
	ref := priceRef{ID: p.ID, LookupKey: p.LookupKey}
	if p.Product != nil {
		ref.ProductID = p.Product.ID
		ref.ProductMetadata = p.Product.Metadata
	}
	return t.plan(ref)
}

func (t PriceTable) plan(p priceRef) (Plan, bool) {
	if pl, ok := t.Prices[p.ID]; ok && p.ID != "" {
		return pl, true
	}
	if pl, ok := t.LookupKeys[p.LookupKey]; ok && p.LookupKey != "" {
		return pl, true
	}
	if pl, ok := t.Products[p.ProductID]; ok && p.ProductID != "" {
		return pl, true
	}
	if t.ProductMetadataKey != "" {
		if v, ok := p.ProductMetadata[t.ProductMetadataKey]; ok {
			if pl, err := ParsePlan(v); err == nil {
				return pl, true
			}
		}
	}
	return "", false
}

// grantsAccess reports whether a subscription status grants its plan:
// active and trialing do; past_due does unless revoked by configuration (so
// the user can still reach the portal to fix the card); incomplete, unpaid,
// paused, canceled, incomplete_expired and any status this version does not
// know do not.
func grantsAccess(status string, pastDueRevokes bool) bool {
	switch status {
	case "active", "trialing":
		return true
	case "past_due":
		return !pastDueRevokes
	}
	return false
}

// PlanRules decide which plan a subscription grants: the price table and
// the past-due policy. The webhook handler and the return sync must agree
// on them, or a user's plan would flip with whichever wrote last: build one
// value and give the same one to both ([WebhookConfig].Rules and
// [ReturnSyncConfig].Rules).
type PlanRules struct {
	// Prices maps Stripe prices to plans. Required: it must map at least one
	// price (see [PriceTable]).
	Prices PriceTable
	// PastDueRevokesAccess makes a past_due subscription grant FREE. Default
	// false: past_due keeps the plan, so the user can still open the portal
	// to fix the card while Stripe retries the payment; Stripe then moves
	// the subscription to unpaid or canceled (FREE) as its settings say.
	PastDueRevokesAccess bool
}

// validate checks the rules; the error names the field.
func (r PlanRules) validate() error {
	if err := r.Prices.validate(); err != nil {
		return fmt.Errorf("Rules.Prices: %w", err)
	}
	return nil
}

// grants reports whether a subscription status grants its plan under r.
func (r PlanRules) grants(status string) bool {
	return grantsAccess(status, r.PastDueRevokesAccess)
}

// subscription returns the Subscription for st. ok is false when the
// status grants access but no item's price maps to a plan (unknown price):
// such a state is not applied at all, so the stored state and the user's
// plan stay as they were. Plan is the highest plan among the items' mapped
// prices (items with unmapped prices are ignored when another maps); FREE
// when the status grants no access, whatever the prices.
func (r PlanRules) subscription(st subState) (s Subscription, ok bool) {
	f := st.facts
	s = Subscription{ID: st.ID, CustomerID: st.Customer, Status: st.Status, Plan: Free,
		CancelAtPeriodEnd: f.cancelAtPeriodEnd, CancelAt: f.cancelAt, CanceledAt: f.canceledAt, EndedAt: f.endedAt,
		CurrentPeriodStart: f.periodStart, CurrentPeriodEnd: f.periodEnd, TrialEnd: f.trialEnd}
	if len(st.Prices) > 0 {
		s.PriceID = st.Prices[0].ID
		s.Items = make([]SubscriptionItem, len(st.Prices))
		for i, p := range st.Prices {
			s.Items[i] = SubscriptionItem{PriceID: p.ID, LookupKey: p.LookupKey, ProductID: p.ProductID, Quantity: p.Quantity}
		}
	}
	if !r.grants(st.Status) {
		return s, true
	}
	found := false
	for _, p := range st.Prices {
		if pl, mapped := r.Prices.plan(p); mapped {
			if !found || pl.Rank() > s.Plan.Rank() {
				s.Plan = pl
			}
			found = true
		}
	}
	return s, found
}

// needsProduct reports whether mapping st could use the products' metadata
// that st does not carry: the table has a metadata key, a price is unmapped
// and its product was not expanded.
func (r PlanRules) needsProduct(st subState) bool {
	if r.Prices.ProductMetadataKey == "" {
		return false
	}
	for _, p := range st.Prices {
		if _, ok := r.Prices.plan(p); !ok && !p.productExpanded {
			return true
		}
	}
	return false
}

// Validate checks the table as the handlers' constructors do: it maps at
// least one price, to FREE, BASIC or PRO. The error says what to fix.
func (t PriceTable) Validate() error { return t.validate() }

// Change is the change a store applies for a subscription read from Stripe
// at readAt (a reconcile's or a job's own read), with its cause: the same
// mapping the webhook handler and the return sync use. ok is false when
// the subscription has no id or customer, or when its status grants access
// but no price maps to a plan: such a state is not applied at all. With a
// [PriceTable].ProductMetadataKey, read the subscription with
// items.data.price.product expanded, or a price mapped only by its
// product's metadata is unknown.
func (r PlanRules) Change(s *stripe.Subscription, readAt time.Time, cause Cause) (c SubscriptionChange, ok bool) {
	if s == nil {
		return c, false
	}
	st := stateFromStripe(s)
	if st.ID == "" || st.Customer == "" {
		return c, false
	}
	sub, ok := r.subscription(st)
	if !ok {
		return c, false
	}
	return SubscriptionChange{Subscription: sub, Created: readAt, Cause: cause}, true
}
