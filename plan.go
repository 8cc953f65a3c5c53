package billing

import (
	"fmt"
	"strings"
)

// Plan is a user's subscription plan.
type Plan string

// The plans. Only the paid ones ([Basic] and [Pro]) may open the portal.
const (
	Free  Plan = "FREE"
	Basic Plan = "BASIC"
	Pro   Plan = "PRO"
)

// Paid reports whether p is BASIC or PRO.
func (p Plan) Paid() bool { return p == Basic || p == Pro }

// Valid reports whether p is one of FREE, BASIC and PRO.
func (p Plan) Valid() bool { return p == Free || p.Paid() }

// Rank orders the plans for "the highest plan among a customer's
// subscriptions", as [SyncStore] derives a user's plan: FREE (and anything
// unknown) 0 < BASIC 1 < PRO 2. Stores use it to agree with MemoryStore.
func (p Plan) Rank() int {
	switch p {
	case Basic:
		return 1
	case Pro:
		return 2
	}
	return 0
}

// ParsePlan returns the plan named s (FREE, BASIC or PRO, in any case).
func ParsePlan(s string) (Plan, error) {
	p := Plan(strings.ToUpper(strings.TrimSpace(s)))
	if !p.Valid() {
		return "", fmt.Errorf("billing: unknown plan %q (want FREE, BASIC or PRO)", s)
	}
	return p, nil
}

// User is what the portal and the sync know of an application user.
type User struct {
	// ID is the application's user id, as the Authenticator returns it.
	ID string
	// Plan is the user's current plan.
	Plan Plan
	// StripeCustomerID is the user's Stripe customer (cus_...), empty if the
	// user never became a Stripe customer.
	StripeCustomerID string
	// SubscriptionID is the Stripe subscription the plan comes from, if the
	// store knows it (the sync fills it in). A deep-link flow that names this
	// subscription needs no extra Stripe call to prove it is the user's own.
	SubscriptionID string
}
