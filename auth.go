package billing

import (
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"os"
	"runtime/debug"
	"strings"
	"sync"
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
	token, ok := cookieValue(r, name)
	if !ok || token == "" {
		return "", ErrNoToken
	}
	if len(token) > maxTokenLen {
		return "", ErrTokenInvalid
	}
	id, err := a.Verifier.VerifyToken(r.Context(), token)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", ErrTokenInvalid
	}
	return id, nil
}

// cookieValue returns the value of r's first cookie named name, the value
// r.Cookie(name) returns, without parsing the other cookies into
// *http.Cookie values (r.Cookie allocates them all and a slice). It reads
// the Cookie lines as net/http's readCookies does: parts split at ';' and
// trimmed, the name before the first '=', a value of cookie-octets, in
// double quotes or not; a part that does not parse is skipped.
//
// net/http ignores a whole header of more than httpcookiemaxnum cookies
// (3000 by default, in the Go releases that have the limit). A header that
// may have more than 3000, or a process whose GODEBUG names
// httpcookiemaxnum, is left to r.Cookie itself.
func cookieValue(r *http.Request, name string) (string, bool) {
	if !validCookieName(name) {
		return "", false // net/http matches no cookie
	}
	lines := r.Header["Cookie"]
	if mayExceedCookieMaxNum(lines) || cookieMaxNumSet() {
		c, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return c.Value, true
	}
	for _, line := range lines {
		for line != "" {
			part := line
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			// net/http trims the part and the text before its first '='
			// and compares that with name; name is a token, so that is:
			// the trimmed part starts with name, then spaces up to an '='
			// or the end (no '=', an empty value).
			part = textproto.TrimString(part)
			rest, ok := strings.CutPrefix(part, name)
			if !ok {
				continue
			}
			v := textproto.TrimString(rest)
			if v != "" {
				if v[0] != '=' {
					continue
				}
				v = v[1:]
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

// defaultCookieMaxNum is net/http's default limit on the cookies of a
// request (httpcookiemaxnum).
const defaultCookieMaxNum = 3000

// mayExceedCookieMaxNum reports whether lines hold more cookies than
// defaultCookieMaxNum, as net/http counts them (each line's ';' plus one).
// Lines of fewer bytes than that need no counting.
func mayExceedCookieMaxNum(lines []string) bool {
	size := 0
	for _, line := range lines {
		size += len(line) + 1
	}
	if size <= defaultCookieMaxNum {
		return false
	}
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	return n > defaultCookieMaxNum
}

// cookieMaxNumSet reports whether the process's GODEBUG names
// httpcookiemaxnum: the environment the first call sees, or the binary's
// default from its go.mod and //go:debug lines (true when that cannot be
// read). It is read once, not on every request: os.Getenv takes a lock
// and, under go test, writes a line to the test log for every call. So a
// GODEBUG that the program itself changes with os.Setenv after its first
// request (net/http follows it) is not seen.
func cookieMaxNumSet() bool {
	cookieMaxNumOnce.Do(func() { cookieMaxNumNamed = godebugNames("httpcookiemaxnum") })
	return cookieMaxNumNamed
}

// What cookieMaxNumSet found, in package variables: no closure to load
// on every request, as sync.OnceValue's would be.
var (
	cookieMaxNumOnce  sync.Once
	cookieMaxNumNamed bool
)

// godebugNames reports whether GODEBUG in the environment or the binary's
// default GODEBUG sets the named setting; true when the default cannot be
// read.
func godebugNames(setting string) bool {
	key := setting + "="
	if strings.Contains(os.Getenv("GODEBUG"), key) {
		return true
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return true
	}
	for _, s := range bi.Settings {
		if s.Key == "DefaultGODEBUG" {
			return strings.Contains(s.Value, key)
		}
	}
	return false
}

// validCookieName reports whether name is a token (RFC 7230), the only
// cookie names net/http matches.
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validCookieValue reports whether every byte of v is one net/http accepts
// in a cookie value: printable ASCII but for '"', ';' and '\'.
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '"' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
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
