package billing

// Outcome names what happened to one request, event or change: the one
// vocabulary of the package, used alike by the store's answers, the webhook
// reply's "outcome" field, the "outcome" attribute of every log record and
// [Observation].Outcome (fit for a metric label). Each [Op] uses a fixed
// subset, listed with it.
type Outcome string

// What a [SyncStore] did with a [SubscriptionChange]. The webhook handler
// answers the first three as they are.
const (
	// Applied: the change was newer and is now the stored state; the linked
	// user's plan was recomputed in the same atomic step.
	Applied Outcome = "applied"
	// Duplicate: the event id was processed before; nothing changed.
	Duplicate Outcome = "duplicate"
	// Stale: the stored state is newer (or the stored subscription is
	// terminal and the change would revive it); nothing changed but the
	// event id is remembered.
	Stale Outcome = "stale"
	// Tie: the stored state has the same Created second and a Seq not lower
	// than the change's, from another event. Nothing changed and the event
	// id is NOT remembered: the caller reads the subscription from Stripe
	// and applies that state (see [SubscriptionChange] for the order).
	Tie Outcome = "tie"
)

// The other outcomes of the webhook handler ([OpWebhook]).
const (
	// TieKept: a [Tie] the handler could not settle by reading Stripe (no
	// [WebhookConfig].Subscriptions, or a read at least as recent is
	// stored); the stored state was kept.
	TieKept Outcome = "tie_kept"
	// UnknownPrice: no price of the subscription maps to a plan; nothing
	// was written.
	UnknownPrice Outcome = "unknown_price"
	// Linked: checkout.session.completed linked a customer to a user.
	Linked Outcome = "linked"
	// UnknownUser: checkout.session.completed named a user the store does
	// not know; nothing was written.
	UnknownUser Outcome = "unknown_user"
	// Ignored: an event type the handler does not act on, acknowledged.
	Ignored Outcome = "ignored"
	// Rejected: a request answered 4xx (method, size, signature, event).
	Rejected Outcome = "rejected"
)

// The outcomes of the portal endpoint ([OpPortal]), one per reply of the
// contract, and of the return sync ([OpReturnSync]).
const (
	// Created: a portal session was created (200).
	Created Outcome = "created"
	// Unauthorized: no valid credentials, or an unknown user (401); for
	// the return sync, a returning user without valid credentials.
	Unauthorized Outcome = "unauthorized"
	// NotPaid: the user's plan is not BASIC or PRO (403).
	NotPaid Outcome = "not_paid"
	// CrossOrigin: a cross-origin browser request (403).
	CrossOrigin Outcome = "cross_origin"
	// CustomerNotFound: no Stripe customer for the paid user (404).
	CustomerNotFound Outcome = "customer_not_found"
	// BadRequest: a malformed body or a rejected option (400).
	BadRequest Outcome = "bad_request"
	// TooLarge: a body over the size cap (413).
	TooLarge Outcome = "too_large"
	// MethodNotAllowed: a method the endpoint does not serve (405).
	MethodNotAllowed Outcome = "method_not_allowed"
	// Synced: the return sync read and applied the user's subscriptions.
	Synced Outcome = "synced"
	// Served: the status endpoint answered the user's view (200).
	Served Outcome = "served"
	// Failed: a store or Stripe failure (5xx for the portal and the
	// webhook handler; the return sync still redirects).
	Failed Outcome = "error"
)

// Op names what an [Observation] or a log record is about.
type Op string

// The operations of the package and the outcomes each one reports.
const (
	// OpPortal is one request to the portal endpoint ([PortalService]):
	// Created, Unauthorized, NotPaid, CrossOrigin, CustomerNotFound,
	// BadRequest, TooLarge, MethodNotAllowed or Failed.
	OpPortal Op = "portal"
	// OpWebhook is one request to the webhook endpoint ([WebhookHandler]):
	// Applied, Duplicate, Stale, TieKept, UnknownPrice, Linked,
	// UnknownUser, Ignored, Rejected (4xx) or Failed (5xx).
	OpWebhook Op = "webhook"
	// OpReturnSync is one request to the return sync ([ReturnSync]):
	// Synced, Unauthorized, MethodNotAllowed or Failed.
	OpReturnSync Op = "return_sync"
	// OpStatus is one request to the status endpoint ([StatusHandler]):
	// Served, Unauthorized, MethodNotAllowed or Failed.
	OpStatus Op = "status"
)
