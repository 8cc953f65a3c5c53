package billing

// Outcome says what the store did with a [SubscriptionChange].
type Outcome int

const (
	// Applied: the change was newer and is now the stored state; the linked
	// user's plan was recomputed in the same atomic step.
	Applied Outcome = iota + 1
	// Duplicate: the event id was processed before; nothing changed.
	Duplicate
	// Stale: the stored state is newer (or the stored subscription is
	// terminal and the change would revive it); nothing changed but the
	// event id is remembered.
	Stale
	// Tie: the stored state has the same Created second and a Seq not lower
	// than the change's, from another event. Nothing changed and the event id
	// is NOT remembered: the caller should read the subscription from Stripe
	// and apply that state, with the same EventID and a Seq that is the time
	// of the read.
	Tie
)

// String returns the outcome's name in lower case, for logs.
func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	case Tie:
		return "tie"
	}
	return "unknown"
}
