package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
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

// rank orders the plans for "the highest plan among a customer's
// subscriptions": FREE (and anything unknown) < BASIC < PRO.
func (p Plan) rank() int {
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

// Config configures a [PortalService]. Stripe, Users and ReturnURL are
// required; everything else has a documented default.
type Config struct {
	// Stripe creates the portal sessions. Required.
	Stripe SessionCreator
	// Users loads users by id. Required.
	Users UserStore
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

// PortalService creates Stripe Customer Portal sessions for paid users. Build
// one with [NewPortalService]; it is safe for concurrent use.
type PortalService struct {
	cfg   Config
	allow allowlist
	cop   *http.CrossOriginProtection
	log   *slog.Logger
}

// NewPortalService checks cfg and returns the service. It names the first
// missing or invalid setting in its error.
func NewPortalService(cfg Config) (*PortalService, error) {
	switch {
	case cfg.Stripe == nil:
		return nil, errors.New("billing: Config.Stripe is required (for example &session.Client{B: billing.NewBackend(nil), Key: key})")
	case cfg.Users == nil:
		return nil, errors.New("billing: Config.Users is required (a UserStore, for example billing.NewMemoryStore())")
	case cfg.ReturnURL == "":
		return nil, errors.New("billing: Config.ReturnURL is required (where Stripe sends users back, for example https://app.example.com/account)")
	}
	if err := checkAbsoluteURL(cfg.ReturnURL); err != nil {
		return nil, fmt.Errorf("billing: Config.ReturnURL: %w", err)
	}
	allow, err := parseAllowlist(cfg.AllowedReturnURLs)
	if err != nil {
		return nil, fmt.Errorf("billing: Config.AllowedReturnURLs: %w", err)
	}
	if cfg.Locale != "" && !validLocale(cfg.Locale) {
		return nil, fmt.Errorf("billing: Config.Locale %q is not a locale Stripe's portal supports", cfg.Locale)
	}
	cop := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("billing: Config.TrustedOrigins: %w", err)
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
	// ReturnURL overrides Config.ReturnURL; it must match
	// Config.AllowedReturnURLs.
	ReturnURL string `json:"return_url,omitempty"`
	// Locale overrides Config.Locale; it must be a locale the portal supports.
	Locale string `json:"locale,omitempty"`
	// Flow, if set, deep-links into one portal flow.
	Flow *Flow `json:"flow,omitempty"`
}

// CreateSession creates a portal session for the user with the given id,
// after the checks of the contract: unknown user ([ErrUnauthorized]), plan
// not paid ([ErrNotPaid]), no Stripe customer ([ErrCustomerNotFound]), a
// rejected option ([ErrBadRequest]). Only then does it call Stripe, once
// (twice when a flow names a subscription that must be checked through
// Config.Subscriptions). Every error is an *[Error].
func (s *PortalService) CreateSession(ctx context.Context, userID string, opts SessionOptions) (*Session, error) {
	if userID == "" {
		return nil, ErrUnauthorized.with(errors.New("empty user id"))
	}
	// Validate what needs no store first, so bad input costs nothing.
	returnURL := s.cfg.ReturnURL
	if opts.ReturnURL != "" {
		u, ok := s.allow.match(opts.ReturnURL)
		if !ok {
			return nil, badRequest("return_url is not allowed")
		}
		returnURL = u
	}
	locale := s.cfg.Locale
	if opts.Locale != "" {
		if !validLocale(opts.Locale) {
			return nil, badRequest("locale is not supported")
		}
		locale = opts.Locale
	}
	if opts.Flow != nil {
		if err := opts.Flow.validate(s.allow); err != nil {
			return nil, err
		}
	}

	u, found, err := s.cfg.Users.User(ctx, userID)
	if err != nil {
		return nil, ErrInternal.with(&opError{"load_user", err})
	}
	if !found {
		return nil, ErrUnauthorized.with(errors.New("user not found"))
	}
	if !u.Plan.Paid() {
		return nil, ErrNotPaid
	}
	if u.StripeCustomerID == "" {
		return nil, ErrCustomerNotFound.with(errors.New("user has no Stripe customer id"))
	}

	params := &stripe.BillingPortalSessionParams{
		Customer:  stripe.String(u.StripeCustomerID),
		ReturnURL: stripe.String(returnURL),
	}
	params.Context = ctx
	if s.cfg.Configuration != "" {
		params.Configuration = stripe.String(s.cfg.Configuration)
	}
	if locale != "" {
		params.Locale = stripe.String(locale)
	}
	if s.cfg.OnBehalfOf != "" {
		params.OnBehalfOf = stripe.String(s.cfg.OnBehalfOf)
	}
	if opts.Flow != nil {
		var sub string
		if opts.Flow.actsOnSubscription() {
			if sub, err = s.ownSubscription(ctx, u, opts.Flow.subscription()); err != nil {
				return nil, err
			}
		}
		params.FlowData = opts.Flow.params(sub)
	}

	// A client that went away (or a deadline that passed) during the store
	// work gets no Stripe call: nobody would see the session.
	if err := ctx.Err(); err != nil {
		return nil, ErrInternal.with(err)
	}
	ps, err := s.cfg.Stripe.New(params)
	if err != nil {
		return nil, fromStripe(err)
	}
	if ps == nil || ps.URL == "" {
		return nil, ErrInternal.with(errors.New("stripe returned a portal session without a url"))
	}
	out := &Session{URL: ps.URL, ID: ps.ID}
	if ps.LastResponse != nil {
		out.StripeRequestID = ps.LastResponse.RequestID
	}
	return out, nil
}

// ownSubscription returns the subscription a flow acts on, after proving it
// is one of u's customer's: empty means u's stored subscription; a stored
// match needs no Stripe call; anything else is read from Stripe through
// Config.Subscriptions, if set, and its customer compared.
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

// NewBackend returns a stripe-go backend for interactive requests: its HTTP
// client gives up after 10 s (stripe-go's default is 80 s, far longer than a
// user waits for a button), and it keeps up to 64 idle connections to Stripe
// so that concurrent requests reuse TLS connections instead of opening new
// ones. Pass nil for defaults; a non-nil cfg is used as it is, with
// HTTPClient filled in if empty, and its LeveledLogger (default: silent)
// wrapped so that stripe-go's records never carry a response body (a portal
// session's holds its URL, a bearer credential), Stripe's error text or an
// error's text: even at debug level, stripe-go logs only methods, paths,
// timings, retries and error kinds with Stripe's request id. It never
// touches stripe-go's globals.
func NewBackend(cfg *stripe.BackendConfig) stripe.Backend {
	if cfg == nil {
		cfg = &stripe.BackendConfig{}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient(10 * time.Second)
	}
	if cfg.LeveledLogger == nil {
		// stripe-go logs errors at its default level to stderr, Stripe's
		// text included; the service logs what matters itself.
		cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
	} else if _, ok := cfg.LeveledLogger.(redactingLogger); !ok {
		cfg.LeveledLogger = redactingLogger{next: cfg.LeveledLogger}
	}
	return stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
}

// NewHTTPClient returns an *http.Client for Stripe calls with the given
// overall timeout per attempt and a transport sized for concurrent requests
// to one host: it keeps up to 64 idle connections to Stripe (Go's default
// keeps 2, so a burst of requests opens, and then closes, a new TLS
// connection for nearly every request) and opens at most 64 at once
// (requests beyond that wait for a free connection rather than pay for a
// new handshake).
func NewHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 128
	t.MaxIdleConnsPerHost = 64
	t.MaxConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Timeout: timeout, Transport: t}
}
