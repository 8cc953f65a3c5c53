package billing

import (
	"context"
	"errors"
	"net/http"
)

// Authenticator tells who sent a request. Authenticate returns the
// application's user id, or an error when the request carries no valid
// credentials; every error is answered 401. Wrap [ErrNoToken],
// [ErrTokenInvalid] or [ErrTokenExpired] so that logs can tell the cases
// apart; the error text itself is never logged or written to a reply.
// Implementations must be safe for concurrent use.
type Authenticator interface {
	Authenticate(r *http.Request) (userID string, err error)
}

// AuthenticatorFunc adapts a function to an [Authenticator].
type AuthenticatorFunc func(r *http.Request) (string, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (string, error) { return f(r) }

// Reasons an [Authenticator] fails, for logs (all are answered 401).
var (
	// ErrNoToken: the request carries no credentials.
	ErrNoToken = errors.New("billing: no access token")
	// ErrTokenInvalid: the credentials are malformed, forged or unknown.
	ErrTokenInvalid = errors.New("billing: invalid access token")
	// ErrTokenExpired: the credentials were valid but have expired.
	ErrTokenExpired = errors.New("billing: access token expired")
)

// TokenVerifier checks an access token and returns the user id it was
// issued to. Return an error wrapping [ErrTokenExpired] for an expired token
// and [ErrTokenInvalid] for any other bad token. It must be safe for
// concurrent use.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (userID string, err error)
}

// TokenVerifierFunc adapts a function to a [TokenVerifier].
type TokenVerifierFunc func(ctx context.Context, token string) (string, error)

// VerifyToken calls f(ctx, token).
func (f TokenVerifierFunc) VerifyToken(ctx context.Context, token string) (string, error) {
	return f(ctx, token)
}

// DefaultCookieName is the cookie the documented endpoint reads.
const DefaultCookieName = "access_token"

// maxTokenLen bounds the token handed to the verifier.
const maxTokenLen = 4096

// CookieAuthenticator is an [Authenticator] that reads the access token from
// a cookie and hands it to the app's [TokenVerifier].
type CookieAuthenticator struct {
	// Verifier checks the token. Required.
	Verifier TokenVerifier
	// Name is the cookie's name. Default: "access_token" ([DefaultCookieName]).
	Name string
}

var _ Authenticator = (*CookieAuthenticator)(nil)

// NewCookieAuthenticator returns a CookieAuthenticator reading the
// access_token cookie. It panics if v is nil, a programming mistake.
func NewCookieAuthenticator(v TokenVerifier) *CookieAuthenticator {
	if v == nil {
		panic("billing: NewCookieAuthenticator: nil TokenVerifier")
	}
	return &CookieAuthenticator{Verifier: v}
}

// Authenticate implements [Authenticator]. A missing or empty cookie is
// [ErrNoToken]; an oversized one, or an empty user id from the verifier,
// [ErrTokenInvalid]; the verifier's error is returned wrapped as it is.
func (a *CookieAuthenticator) Authenticate(r *http.Request) (string, error) {
	if a == nil || a.Verifier == nil {
		return "", errors.New("billing: CookieAuthenticator has no Verifier")
	}
	name := a.Name
	if name == "" {
		name = DefaultCookieName
	}
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" {
		return "", ErrNoToken
	}
	if len(c.Value) > maxTokenLen {
		return "", ErrTokenInvalid
	}
	id, err := a.Verifier.VerifyToken(r.Context(), c.Value)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", ErrTokenInvalid
	}
	return id, nil
}

// authReason classifies an authentication error for logs without its text.
func authReason(err error) string {
	switch {
	case errors.Is(err, ErrNoToken):
		return "no_token"
	case errors.Is(err, ErrTokenExpired):
		return "token_expired"
	case errors.Is(err, ErrTokenInvalid):
		return "token_invalid"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "auth_failed"
}
