package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// SessionCreator creates Stripe billing portal sessions. stripe-go's own
// *session.Client (package github.com/stripe/stripe-go/v76/billingportal/session)
// satisfies it, and so does the test kit's fake:
//
//	sc := &session.Client{B: billing.NewBackend(nil), Key: os.Getenv("STRIPE_SECRET_KEY")}
//
// The params carry the request's context in params.Context.
type SessionCreator interface {
	New(params *stripe.BillingPortalSessionParams) (*stripe.BillingPortalSession, error)
}

// SubscriptionGetter reads a subscription from Stripe. stripe-go's
// *subscription.Client (package github.com/stripe/stripe-go/v76/subscription)
// satisfies it.
type SubscriptionGetter interface {
	Get(id string, params *stripe.SubscriptionParams) (*stripe.Subscription, error)
}

// PortalConfig configures a [PortalService]. Stripe, Users, Auth and
// ReturnURL are required; everything else has a documented default.
type PortalConfig struct {
	// Stripe creates the portal sessions. Required.
	Stripe SessionCreator
	// Users loads users by id. Required.
	Users UserStore
	// Auth tells who sends each request to the handler. Required; for the
	// documented endpoint, [NewCookieAuthenticator] with the app's
	// [TokenVerifier] (it reads the access_token cookie).
	Auth Authenticator
	// ReturnURL is where Stripe sends the user back from the portal unless
	// the request names an allowed return_url. Required; an absolute http or
	// https URL.
	ReturnURL string
	// AllowedReturnURLs lists what a request's return_url (and a flow's
	// after-completion redirect) may be: an origin ("https://app.example.com",
	// any path on it) or a URL prefix ("https://app.example.com/billing/",
	// that path and below, matched on whole path segments). Default: empty,
	// so requests cannot choose the return URL and ReturnURL is always used.
	AllowedReturnURLs []string
	// Configuration is the Stripe portal configuration id (bpc_...) used for
	// every session. Default: empty, Stripe's default configuration.
	Configuration string
	// Locale is the portal's locale (for example "de" or "auto") unless the
	// request names one. Default: empty, Stripe's choice.
	Locale string
	// OnBehalfOf is the connected account (acct_...) the portal shows
	// subscriptions and invoices of. Default: empty.
	OnBehalfOf string
	// Subscriptions, if set, is used to check that a subscription named by a
	// deep-link flow belongs to the user's Stripe customer when the store
	// does not know the user's subscription. Default: nil, such flows must
	// name the user's stored SubscriptionID (or none, which means it).
	Subscriptions SubscriptionGetter
	// Logger receives one record per request and per failure. It never
	// receives a secret, a cookie, a token or a portal URL. Default: discard.
	Logger *slog.Logger
	// Observer, if set, receives each portal request's outcome and latency,
	// for metrics and traces. Default: nil.
	Observer Observer
	// TrustedOrigins are origins (scheme://host[:port]) allowed to POST to
	// the handler cross-origin, for a front end served from another origin.
	// Default: none; same-origin browser requests and non-browser clients
	// are always allowed.
	TrustedOrigins []string
	// MaxBodyBytes caps the optional JSON body; a larger body is answered
	// 413. Default: 8 KiB.
	MaxBodyBytes int64
	// WriteError writes an error reply. Default: [WriteError], the JSON
	// {"error","message"} of the contract.
	WriteError func(w http.ResponseWriter, r *http.Request, e *Error)
}

// PortalService creates Stripe Customer Portal sessions for paid users
// ([PortalService.CreateSession]) and is the http.Handler of
// POST /api/subscription/create-portal-session ([PortalService.ServeHTTP]).
// Build one with [NewPortalService]; it is safe for concurrent use.
type PortalService struct {
	cfg   PortalConfig
	allow allowlist
	cop   *http.CrossOriginProtection
	log   *slog.Logger
}

// NewPortalService checks cfg and returns the service. It names the first
// missing or invalid setting in its error.
func NewPortalService(cfg PortalConfig) (*PortalService, error) {
	switch {
	case cfg.Stripe == nil:
		return nil, errors.New("billing: PortalConfig.Stripe is required (for example &session.Client{B: billing.NewBackend(nil), Key: key})")
	case cfg.Users == nil:
		return nil, errors.New("billing: PortalConfig.Users is required (a UserStore, for example billing.NewMemoryStore())")
	case cfg.Auth == nil:
		return nil, errors.New("billing: PortalConfig.Auth is required (who sends a request, for example billing.NewCookieAuthenticator(verifier))")
	case cfg.ReturnURL == "":
		return nil, errors.New("billing: PortalConfig.ReturnURL is required (where Stripe sends users back, for example https://app.example.com/account)")
	}
	if err := checkAbsoluteURL(cfg.ReturnURL); err != nil {
		return nil, fmt.Errorf("billing: PortalConfig.ReturnURL: %w", err)
	}
	allow, err := parseAllowlist(cfg.AllowedReturnURLs)
	if err != nil {
		return nil, fmt.Errorf("billing: PortalConfig.AllowedReturnURLs: %w", err)
	}
	if cfg.Locale != "" && !validLocale(cfg.Locale) {
		return nil, fmt.Errorf("billing: PortalConfig.Locale %q is not a locale Stripe's portal supports", cfg.Locale)
	}
	cop := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("billing: PortalConfig.TrustedOrigins: %w", err)
		}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 10
	}
	if cfg.WriteError == nil {
		cfg.WriteError = WriteError
	}
	return &PortalService{cfg: cfg, allow: allow, cop: cop, log: orDiscard(cfg.Logger)}, nil
}

// Session is a created portal session.
type Session struct {
	// URL is the short-lived, single-use portal URL to send the user to. It
	// is a bearer credential: do not log it or put it in a Referer.
	URL string
	// ID is Stripe's portal session id (bps_...).
	ID string
	// StripeRequestID is Stripe's request id, for logs.
	StripeRequestID string
}

// SessionOptions are the per-request choices of a portal session. The zero
// value asks for a plain portal session with the configured defaults.
type SessionOptions struct {
	// ReturnURL overrides PortalConfig.ReturnURL; it must match
	// PortalConfig.AllowedReturnURLs.
	ReturnURL string `json:"return_url,omitempty"`
	// Locale overrides PortalConfig.Locale; it must be a locale the portal supports.
	Locale string `json:"locale,omitempty"`
	// Flow, if set, deep-links into one portal flow.
	Flow *Flow `json:"flow,omitempty"`
}

// CreateSession creates a portal session for the user with the given id,
// after the checks of the contract: unknown user ([ErrUnauthorized]), plan
// not paid ([ErrNotPaid]), no Stripe customer ([ErrCustomerNotFound]), a
// rejected option ([ErrBadRequest]). Only then does it call Stripe, once
// (twice when a flow names a subscription that must be checked through
// PortalConfig.Subscriptions). Every error is an *[Error].
func (s *PortalService) CreateSession(ctx context.Context, userID string, opts SessionOptions) (*Session, error) {
	sess, err := s.createSession(ctx, userID, opts)
	if err != nil {
		return nil, err
	}
	return &sess, nil
}

// createSession is [PortalService.CreateSession] returning the session by
// value, so that the handler allocates none.
func (s *PortalService) createSession(ctx context.Context, userID string, opts SessionOptions) (Session, error) {
	if userID == "" {
		return Session{}, ErrUnauthorized.with(errors.New("empty user id"))
	}
	// Validate what needs no store first, so bad input costs nothing.
	returnURL := s.cfg.ReturnURL
	if opts.ReturnURL != "" {
		u, ok := s.allow.match(opts.ReturnURL)
		if !ok {
			return Session{}, badRequest("return_url is not allowed")
		}
		returnURL = u
	}
	locale := s.cfg.Locale
	if opts.Locale != "" {
		if !validLocale(opts.Locale) {
			return Session{}, badRequest("locale is not supported")
		}
		locale = opts.Locale
	}
	if opts.Flow != nil {
		if err := opts.Flow.validate(s.allow); err != nil {
			return Session{}, err
		}
	}

	u, found, err := s.cfg.Users.User(ctx, userID)
	if err != nil {
		return Session{}, ErrInternal.with(&opError{"load_user", err})
	}
	if !found {
		return Session{}, ErrUnauthorized.with(errors.New("user not found"))
	}
	if !u.Plan.Paid() {
		return Session{}, ErrNotPaid
	}
	if u.StripeCustomerID == "" {
		return Session{}, ErrCustomerNotFound.with(errors.New("user has no Stripe customer id"))
	}

	// One allocation for the params and the strings they point at.
	sp := &sessionParams{customer: u.StripeCustomerID, returnURL: returnURL,
		configuration: s.cfg.Configuration, locale: locale, onBehalfOf: s.cfg.OnBehalfOf}
	params := &sp.params
	params.Customer = &sp.customer
	params.ReturnURL = &sp.returnURL
	params.Context = ctx
	if sp.configuration != "" {
		params.Configuration = &sp.configuration
	}
	if sp.locale != "" {
		params.Locale = &sp.locale
	}
	if sp.onBehalfOf != "" {
		params.OnBehalfOf = &sp.onBehalfOf
	}
	if opts.Flow != nil {
		var sub string
		if opts.Flow.actsOnSubscription() {
			if sub, err = s.ownSubscription(ctx, u, opts.Flow.subscription()); err != nil {
				return Session{}, err
			}
		}
		params.FlowData = opts.Flow.params(sub)
	}

	// A client that went away (or a deadline that passed) during the store
	// work gets no Stripe call: nobody would see the session.
	if err := ctx.Err(); err != nil {
		return Session{}, ErrInternal.with(err)
	}
	ps, err := s.cfg.Stripe.New(params)
	if err != nil {
		return Session{}, fromStripe(err)
	}
	if ps == nil || ps.URL == "" {
		return Session{}, ErrInternal.with(errors.New("stripe returned a portal session without a url"))
	}
	out := Session{URL: ps.URL, ID: ps.ID}
	if ps.LastResponse != nil {
		out.StripeRequestID = ps.LastResponse.RequestID
	}
	return out, nil
}

// sessionParams holds the params of one portal session call together with
// the strings its pointer fields point at (what stripe.String would
// allocate one by one).
type sessionParams struct {
	params stripe.BillingPortalSessionParams

	customer, returnURL, configuration, locale, onBehalfOf string
}

// ownSubscription returns the subscription a flow acts on, after proving it
// is one of u's customer's: empty means u's stored subscription; a stored
// match needs no Stripe call; anything else is read from Stripe through
// PortalConfig.Subscriptions, if set, and its customer compared.
func (s *PortalService) ownSubscription(ctx context.Context, u User, named string) (string, error) {
	switch {
	case named == "" && u.SubscriptionID != "":
		return u.SubscriptionID, nil
	case named == "":
		return "", badRequest("flow needs a subscription and none is known for this user")
	case named == u.SubscriptionID:
		return named, nil
	case s.cfg.Subscriptions == nil:
		return "", badRequest("flow subscription is not the user's subscription")
	}
	p := &stripe.SubscriptionParams{}
	p.Context = ctx
	sub, err := s.cfg.Subscriptions.Get(named, p)
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) && se.Code == stripe.ErrorCodeResourceMissing {
			return "", badRequest("flow subscription is not the user's subscription")
		}
		e := ErrInternal.with(&opError{"read_flow_subscription", err})
		if se != nil {
			e.StripeRequestID = se.RequestID
		}
		return "", e
	}
	if sub == nil || sub.Customer == nil || sub.Customer.ID != u.StripeCustomerID {
		return "", badRequest("flow subscription is not the user's subscription")
	}
	return named, nil
}

// SuccessMessage is the "message" of a created portal session.
const SuccessMessage = "Portal session created successfully"

// sessionReply is the body of a 200 reply.
type sessionReply struct {
	URL     string `json:"url"`
	Message string `json:"message"`
}

// ServeHTTP implements [http.Handler] for
// POST /api/subscription/create-portal-session (mount it at any path; it
// does not look at the path).
//
// Checks, in order, each answered in the contract's JSON: method (405),
// cross-origin (403), authentication through PortalConfig.Auth (401), body
// (400, 413), user (401), plan (403), customer (404), then the Stripe call
// (200 or 404/500). A rejected request makes no Stripe call.
//
// The optional body is JSON of [SessionOptions]:
//
//	{"return_url": "https://app.example.com/billing", "locale": "de",
//	 "flow": {"type": "subscription_cancel", "retention_coupon": "SAVE20"}}
func (s *PortalService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record{op: OpPortal, start: time.Now()}
	var sess Session
	switch {
	case r.Method != http.MethodPost:
		rec.err, rec.reason = ErrMethodNotAllowed, "method"
	case s.cop.Check(r) != nil:
		rec.err, rec.reason = ErrCrossOrigin, "cross_origin"
	default:
		userID, aerr := s.cfg.Auth.Authenticate(r)
		if aerr != nil || userID == "" {
			rec.err, rec.reason = ErrUnauthorized, authReason(aerr)
			break
		}
		rec.userID = userID
		var opts SessionOptions
		if opts, rec.err = s.readOptions(w, r); rec.err != nil {
			rec.reason = "body"
			break
		}
		var err error
		if sess, err = s.createSession(r.Context(), userID, opts); err != nil {
			rec.err = asError(err)
			rec.reason = sessionReason(rec.err)
		}
	}

	rec.outcome = portalOutcome(rec.err)
	if rec.outcome == BadRequest {
		// Which input was refused: the reply's message, a fixed text that
		// never quotes the input.
		rec.detail = rec.err.Message
	}
	if rec.err != nil {
		s.cfg.WriteError(w, r, rec.err)
	} else {
		rec.reqID = sess.StripeRequestID
		writeSession(w, sess.URL)
	}
	rec.emit(r.Context(), s.log, s.cfg.Observer, "billing: portal request")
}

// readOptions decodes the optional JSON body. An empty body is no options.
func (s *PortalService) readOptions(w http.ResponseWriter, r *http.Request) (SessionOptions, *Error) {
	if r.Body == nil || r.Body == http.NoBody {
		return SessionOptions{}, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return SessionOptions{}, ErrTooLarge
		}
		return SessionOptions{}, badRequest("request body could not be read")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return SessionOptions{}, nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return SessionOptions{}, badRequest("request body must be JSON (Content-Type: application/json)")
		}
	}
	// Declared here, not by the caller: decoding into it moves it to the
	// heap, which requests without a body need not pay for.
	var opts SessionOptions
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&opts); err != nil {
		return SessionOptions{}, badRequest("request body is not valid JSON of return_url, locale and flow")
	}
	if dec.More() {
		return SessionOptions{}, badRequest("request body must be a single JSON object")
	}
	return opts, nil
}

// portalOutcome names the reply of the portal endpoint.
func portalOutcome(e *Error) Outcome {
	switch {
	case e == nil:
		return Created
	case errors.Is(e, ErrUnauthorized):
		return Unauthorized
	case errors.Is(e, ErrNotPaid):
		return NotPaid
	case errors.Is(e, ErrCrossOrigin):
		return CrossOrigin
	case errors.Is(e, ErrCustomerNotFound):
		return CustomerNotFound
	case errors.Is(e, ErrBadRequest):
		return BadRequest
	case errors.Is(e, ErrTooLarge):
		return TooLarge
	case errors.Is(e, ErrMethodNotAllowed):
		return MethodNotAllowed
	}
	return Failed
}

// sessionReason names, for the log, why CreateSession refused a request
// that passed authentication; "" when the status and cause say it.
func sessionReason(e *Error) string {
	switch {
	case errors.Is(e, ErrUnauthorized):
		return "unknown_user"
	case errors.Is(e, ErrCustomerNotFound) && !isStripeError(e.Err):
		return "no_customer"
	case errors.Is(e, ErrBadRequest):
		return "options"
	}
	return ""
}
