package billing

import (
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// StatusConfig configures a [StatusHandler]. Accounts and Auth are
// required; everything else has a documented default.
type StatusConfig struct {
	// Accounts reads the user's account. Required; the store the webhook
	// handler writes to ([MemoryStore] and sqlstore's Store are
	// AccountStores).
	Accounts AccountStore
	// Auth tells who sends each request. Required; the portal's
	// [PortalConfig].Auth.
	Auth Authenticator
	// Logger receives one record per request. Default: discard.
	Logger *slog.Logger
	// Observer receives one Observation ([OpStatus]) per request. Default:
	// nil.
	Observer Observer
	// WriteError writes the error replies. Default: [WriteError].
	WriteError func(w http.ResponseWriter, r *http.Request, e *Error)
}

// StatusHandler is the http.Handler of GET /api/subscription (mount it
// anywhere; it does not look at the path): the signed-in user's [View] as
// JSON, for the app's account page. Times are RFC 3339 in UTC and null
// where they do not apply:
//
//	{"plan":"PRO","status":"active","renews_at":"2027-01-12T00:00:00Z","ends_at":null,
//	 "trial_ends_at":null,"cancel_at_period_end":false,"payment_problem":false,"features":["seats_10"]}
//
// A user without a stored subscription has "status":null. The reply never
// holds a Stripe customer or subscription id, a secret or a URL, and
// carries the headers of every reply of the package (Cache-Control:
// no-store). Errors are the JSON of [WriteError]: 401 as for the portal
// (no valid credentials, or a user the store does not know), 405 with
// "Allow: GET" for another method, 500 ([ErrStatusFailed]) when the store
// fails. Build one with [NewStatusHandler]; it is safe for concurrent use.
type StatusHandler struct {
	cfg StatusConfig
	log *slog.Logger
}

// NewStatusHandler checks cfg and returns the handler. It names the first
// missing setting in its error.
func NewStatusHandler(cfg StatusConfig) (*StatusHandler, error) {
	switch {
	case cfg.Accounts == nil:
		return nil, errors.New("billing: StatusConfig.Accounts is required (the store, for example billing.NewMemoryStore() or a sqlstore.Store)")
	case cfg.Auth == nil:
		return nil, errors.New("billing: StatusConfig.Auth is required (the portal's Authenticator, for example billing.NewCookieAuthenticator(verifier))")
	}
	if cfg.WriteError == nil {
		cfg.WriteError = WriteError
	}
	return &StatusHandler{cfg: cfg, log: orDiscard(cfg.Logger)}, nil
}

// statusReply is the body of a 200 reply, in the documented field order.
type statusReply struct {
	Plan              Plan       `json:"plan"`
	Status            *string    `json:"status"`
	RenewsAt          *time.Time `json:"renews_at"`
	EndsAt            *time.Time `json:"ends_at"`
	TrialEndsAt       *time.Time `json:"trial_ends_at"`
	CancelAtPeriodEnd bool       `json:"cancel_at_period_end"`
	PaymentProblem    bool       `json:"payment_problem"`
	Features          []string   `json:"features"`
}

// newStatusReply renders v: zero times and an empty status as null, times
// in UTC to the second, features as a list (empty, never null).
func newStatusReply(v View) statusReply {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		u := t.UTC().Truncate(time.Second)
		return &u
	}
	r := statusReply{
		Plan: v.Plan, RenewsAt: at(v.RenewsAt), EndsAt: at(v.EndsAt), TrialEndsAt: at(v.TrialEndsAt),
		CancelAtPeriodEnd: v.CancelAtPeriodEnd, PaymentProblem: v.PaymentProblem, Features: v.Features,
	}
	if v.Status != "" {
		r.Status = &v.Status
	}
	if r.Features == nil {
		r.Features = []string{}
	}
	return r
}

// ServeHTTP implements [http.Handler]; see [StatusHandler].
func (h *StatusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record{op: OpStatus, start: time.Now()}
	var view View
	switch {
	case r.Method != http.MethodGet:
		rec.err, rec.reason = ErrMethodNotAllowed.withMessage("Only GET is allowed"), "method"
		w.Header().Set("Allow", http.MethodGet)
	default:
		userID, aerr := h.cfg.Auth.Authenticate(r)
		if aerr != nil || userID == "" {
			rec.err, rec.reason = ErrUnauthorized, authReason(aerr)
			break
		}
		rec.userID = userID
		v, found, err := ViewOf(r.Context(), h.cfg.Accounts, userID)
		switch {
		case err != nil:
			rec.err = ErrStatusFailed.with(&opError{"load_account", err})
		case !found:
			rec.err, rec.reason = ErrUnauthorized, "unknown_user"
		default:
			view = v
		}
	}
	switch {
	case rec.err == nil:
		rec.outcome = Served
		writeJSON(w, http.StatusOK, newStatusReply(view))
	case errors.Is(rec.err, ErrMethodNotAllowed):
		rec.outcome = MethodNotAllowed
	case errors.Is(rec.err, ErrUnauthorized):
		rec.outcome = Unauthorized
	default:
		rec.outcome = Failed
	}
	if rec.err != nil {
		h.cfg.WriteError(w, r, rec.err)
	}
	rec.emit(r.Context(), h.log, h.cfg.Observer, "billing: status request")
}
