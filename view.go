package billing

import (
	"context"
	"slices"
	"time"
)

// View is a user's billing as an app shows it: "Your PRO plan renews on
// 12 January", "ends on 12 January", "trial ends in 3 days", "your last
// payment failed". It is computed from stored state only ([Account.View]),
// never from the clock, so it changes exactly when the stored state does:
// every such change is one [PlanChange].
type View struct {
	// Plan is the user's plan.
	Plan Plan
	// Access reports whether the plan is a paid one now. A subscription
	// canceled at the period end keeps access until Stripe deletes it (the
	// grace period); past_due keeps it unless
	// [PlanRules].PastDueRevokesAccess.
	Access bool
	// Status is the Stripe status of the subscription the plan comes from
	// (active, trialing, past_due, canceled, ...); empty when the user has
	// no stored subscription.
	Status string
	// RenewsAt is when the paid period renews: the current period's end of
	// an active or trialing subscription that is not canceling. Zero
	// otherwise.
	RenewsAt time.Time
	// EndsAt is when a canceling subscription ends: the current period's
	// end when canceled at the period end, or Stripe's cancel_at. Zero
	// otherwise. Until then the user keeps the plan.
	EndsAt time.Time
	// TrialEndsAt is when the trial of a trialing subscription ends. Zero
	// otherwise.
	TrialEndsAt time.Time
	// CancelAtPeriodEnd reports whether the subscription is set to end at
	// the period end.
	CancelAtPeriodEnd bool
	// PaymentProblem reports a payment that needs the user: the
	// subscription is past_due, unpaid or incomplete.
	PaymentProblem bool
	// Features are the lookup keys of the customer's active entitlements
	// (Stripe's Entitlements API), sorted; empty when none are stored.
	Features []string
}

// Equal reports whether v and w are the same view (times compared with
// time.Time.Equal, features as sorted lists).
func (v View) Equal(w View) bool {
	return v.Plan == w.Plan && v.Access == w.Access && v.Status == w.Status &&
		v.RenewsAt.Equal(w.RenewsAt) && v.EndsAt.Equal(w.EndsAt) && v.TrialEndsAt.Equal(w.TrialEndsAt) &&
		v.CancelAtPeriodEnd == w.CancelAtPeriodEnd && v.PaymentProblem == w.PaymentProblem &&
		slices.Equal(v.Features, w.Features)
}

// HasFeature reports whether key is one of v's features.
func (v View) HasFeature(key string) bool {
	_, found := slices.BinarySearch(v.Features, key)
	return found
}

// Account is what a store holds of one user's billing: the user, the
// subscription their plan comes from (the one [User].SubscriptionID names),
// and their customer's active features. [Account.View] turns it into what
// the app shows.
type Account struct {
	// User is the user.
	User User
	// Subscription is the stored subscription the plan comes from; nil when
	// the store holds none for the user's customer.
	Subscription *Subscription
	// Features are the customer's active entitlement lookup keys, as the
	// last applied [FeaturesChange] set them.
	Features []string
}

// View computes the account's [View].
func (a Account) View() View {
	v := View{Plan: a.User.Plan, Access: a.User.Plan.Paid()}
	if len(a.Features) > 0 {
		v.Features = slices.Clone(a.Features)
		slices.Sort(v.Features)
		v.Features = slices.Compact(v.Features)
	}
	s := a.Subscription
	if s == nil {
		return v
	}
	v.Status = s.Status
	v.CancelAtPeriodEnd = s.CancelAtPeriodEnd
	switch s.Status {
	case "past_due", "unpaid", "incomplete":
		v.PaymentProblem = true
	}
	if s.Terminal() {
		return v
	}
	switch {
	case s.CancelAtPeriodEnd && !s.CurrentPeriodEnd.IsZero():
		v.EndsAt = s.CurrentPeriodEnd
	case !s.CancelAt.IsZero():
		v.EndsAt = s.CancelAt
	case s.Status == "active" || s.Status == "trialing":
		v.RenewsAt = s.CurrentPeriodEnd
	}
	if s.Status == "trialing" {
		v.TrialEndsAt = s.TrialEnd
	}
	return v
}

// AccountStore reads accounts, for the status endpoint and [ViewOf].
//
// Account returns the account of the user with the given id, read in one
// consistent step; found=false and a nil error for a user the store does
// not know. It must be safe for concurrent use.
type AccountStore interface {
	Account(ctx context.Context, userID string) (a Account, found bool, err error)
}

// ViewOf returns the view of the user with the given id, in one call to
// the store. found is false for a user the store does not know.
func ViewOf(ctx context.Context, s AccountStore, userID string) (v View, found bool, err error) {
	a, found, err := s.Account(ctx, userID)
	if err != nil || !found {
		return View{}, found, err
	}
	return a.View(), true, nil
}

// HasFeature reports whether the user with the given id has the feature
// (an active entitlement's lookup key). An unknown user has none.
func HasFeature(ctx context.Context, s AccountStore, userID, key string) (bool, error) {
	v, _, err := ViewOf(ctx, s, userID)
	if err != nil {
		return false, err
	}
	return v.HasFeature(key), nil
}
