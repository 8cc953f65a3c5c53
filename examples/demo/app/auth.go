package app

import (
	"context"
	"sync"
	"time"

	"github.com/contafy/billing"
)

// tokenAuth is the demo's stand-in for an app's session verification: a
// table of opaque tokens with optional expiry, read from the access_token
// cookie by billing.CookieAuthenticator.
type tokenAuth struct {
	mu     sync.RWMutex
	tokens map[string]tokenEntry
	*billing.CookieAuthenticator
}

type tokenEntry struct {
	userID  string
	expires time.Time
}

func newTokenAuth() *tokenAuth {
	a := &tokenAuth{tokens: map[string]tokenEntry{}}
	a.CookieAuthenticator = billing.NewCookieAuthenticator(billing.TokenVerifierFunc(a.verify))
	return a
}

func (a *tokenAuth) add(token, userID string, expires time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[token] = tokenEntry{userID, expires}
}

func (a *tokenAuth) verify(_ context.Context, token string) (string, error) {
	a.mu.RLock()
	e, ok := a.tokens[token]
	a.mu.RUnlock()
	switch {
	case !ok:
		return "", billing.ErrTokenInvalid
	case !e.expires.IsZero() && time.Now().After(e.expires):
		return "", billing.ErrTokenExpired
	}
	return e.userID, nil
}
