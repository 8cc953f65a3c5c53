package billingtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/contafy/billing"
)

// The standard users of [Users], the Stripe objects [Stripe.Seed] creates
// for them, and the tokens of [NewStaticAuth].
const (
	// UserFree is a FREE user without a Stripe customer: the portal
	// answers 403.
	UserFree = "u_free"
	// UserBasic is a BASIC user with customer [CustomerBasic]. The store
	// does not know its subscription ([SubscriptionBasic]); Stripe does.
	UserBasic = "u_basic"
	// UserPro is a PRO user with customer [CustomerPro] and subscription
	// [SubscriptionPro], both in the store and in Stripe.
	UserPro = "u_pro"
	// UserNoCustomer is a PRO user without a Stripe customer id: the portal
	// answers 404.
	UserNoCustomer = "u_nocust"

	// CustomerBasic is UserBasic's Stripe customer.
	CustomerBasic = "cus_basic"
	// CustomerPro is UserPro's Stripe customer.
	CustomerPro = "cus_pro"
	// SubscriptionBasic is CustomerBasic's active subscription to PriceBasic.
	SubscriptionBasic = "sub_basic"
	// SubscriptionPro is CustomerPro's active subscription to PricePro.
	SubscriptionPro = "sub_pro"

	// PriceBasic, LookupKeyBasic and ProductBasic describe the BASIC price.
	PriceBasic, LookupKeyBasic, ProductBasic = "price_basic", "basic_monthly", "prod_basic"
	// PricePro, LookupKeyPro and ProductPro describe the PRO price.
	PricePro, LookupKeyPro, ProductPro = "price_pro", "pro_monthly", "prod_pro"
	// AmountBasic and AmountPro are the standard prices' monthly amounts
	// in cents (10.00 and 20.00 USD).
	AmountBasic, AmountPro = 1000, 2000

	// TokenFree, TokenBasic, TokenPro and TokenNoCustomer are valid tokens
	// of the standard users in [NewStaticAuth]; TokenExpired is UserPro's
	// expired token and TokenUnknownUser a valid token of a user id that no
	// store knows.
	TokenFree, TokenBasic, TokenPro, TokenNoCustomer = "tok_free", "tok_basic", "tok_pro", "tok_nocust"
	// TokenExpired is an expired token of UserPro.
	TokenExpired = "tok_expired"
	// TokenUnknownUser is a valid token of the user id "u_unknown", which
	// no store of the kit knows (the portal answers 401).
	TokenUnknownUser = "tok_unknown_user"

	// ReturnURL is the default return URL of [NewPortalService].
	ReturnURL = "https://app.example.com/account"
	// AllowedOrigin is the origin [NewPortalService] allows as return_url.
	AllowedOrigin = "https://app.example.com"
)

// Prices returns the price table of the standard prices, a fresh one each
// call: [PriceBasic] grants BASIC and [PricePro] PRO. It is the table the
// kit's seeded subscriptions ([Stripe.Seed], [Stripe.AddUsers]), the specs'
// default price and storetest's histories assume; give it to
// billing.PlanRules.Prices.
func Prices() billing.PriceTable {
	return billing.PriceTable{Prices: map[string]billing.Plan{PriceBasic: billing.Basic, PricePro: billing.Pro}}
}

// Users returns the standard users, a fresh slice each call: [UserFree],
// [UserBasic], [UserPro] and [UserNoCustomer].
func Users() []billing.User {
	return []billing.User{
		{ID: UserFree, Plan: billing.Free},
		{ID: UserBasic, Plan: billing.Basic, StripeCustomerID: CustomerBasic},
		{ID: UserPro, Plan: billing.Pro, StripeCustomerID: CustomerPro, SubscriptionID: SubscriptionPro},
		{ID: UserNoCustomer, Plan: billing.Pro},
	}
}

// NewStore returns a MemoryStore holding users, or the standard [Users]
// when none are given.
func NewStore(users ...billing.User) *billing.MemoryStore {
	if len(users) == 0 {
		users = Users()
	}
	return billing.NewMemoryStore(users...)
}

// Seed adds the Stripe side of the standard users: the standard catalog
// ([Stripe.SeedCatalog]), customers [CustomerBasic] and [CustomerPro] with
// active subscriptions [SubscriptionBasic] (price [PriceBasic]) and
// [SubscriptionPro] (price [PricePro]), created an hour ago. It emits no
// event.
func (s *Stripe) Seed() {
	s.SeedCatalog()
	created := s.Now().Add(-time.Hour).Truncate(time.Second)
	s.PutSubscription(SubscriptionSpec{ID: SubscriptionBasic, Customer: CustomerBasic,
		PriceID: PriceBasic, LookupKey: LookupKeyBasic, ProductID: ProductBasic, UnitAmount: AmountBasic, Created: created})
	s.PutSubscription(SubscriptionSpec{ID: SubscriptionPro, Customer: CustomerPro,
		PriceID: PricePro, LookupKey: LookupKeyPro, ProductID: ProductPro, UnitAmount: AmountPro, Created: created})
}

// SeedCatalog adds the standard catalog, without events: products
// [ProductBasic] ("Basic") and [ProductPro] ("Pro") with monthly usd prices
// [PriceBasic] ([LookupKeyBasic], [AmountBasic]) and [PricePro]
// ([LookupKeyPro], [AmountPro]), the plans the hosted portal's plan change
// offers under the default configuration.
func (s *Stripe) SeedCatalog() {
	s.AddProduct(StripeProduct{ID: ProductBasic, Name: "Basic"})
	s.AddProduct(StripeProduct{ID: ProductPro, Name: "Pro"})
	s.AddPrice(StripePrice{ID: PriceBasic, Product: ProductBasic, LookupKey: LookupKeyBasic, UnitAmount: AmountBasic, Nickname: "Basic monthly"})
	s.AddPrice(StripePrice{ID: PricePro, Product: ProductPro, LookupKey: LookupKeyPro, UnitAmount: AmountPro, Nickname: "Pro monthly"})
}

// AddUsers makes the fake know each user's Stripe customer and, when the
// user has a SubscriptionID, an active subscription of that customer to the
// user's plan's standard price ([PriceBasic] or [PricePro]), with the
// standard catalog ([Stripe.SeedCatalog]). Users without a customer are
// skipped. It emits no event.
func (s *Stripe) AddUsers(users ...billing.User) {
	s.SeedCatalog()
	for _, u := range users {
		if u.StripeCustomerID == "" {
			continue
		}
		s.AddCustomer(u.StripeCustomerID)
		if u.SubscriptionID == "" {
			continue
		}
		sub := SubscriptionSpec{ID: u.SubscriptionID, Customer: u.StripeCustomerID,
			PriceID: PricePro, LookupKey: LookupKeyPro, ProductID: ProductPro, UnitAmount: AmountPro}
		switch u.Plan {
		case billing.Basic:
			sub.PriceID, sub.LookupKey, sub.ProductID, sub.UnitAmount = PriceBasic, LookupKeyBasic, ProductBasic, AmountBasic
		case billing.Free:
			sub.Status = "canceled"
		}
		s.PutSubscription(sub)
	}
}

// NewPortalService returns a PortalService wired to s: stripe-go's session
// client for PortalConfig.Stripe and its subscription client for
// PortalConfig.Subscriptions (both through [Stripe.Backend]), store for
// PortalConfig.Users (the standard [NewStore] when nil), [NewStaticAuth]
// for PortalConfig.Auth, ReturnURL [ReturnURL] and AllowedReturnURLs
// [AllowedOrigin]. Each cfg function may change the PortalConfig before
// the service is built. A PortalConfig the library rejects fails the test.
func NewPortalService(t testing.TB, s *Stripe, store billing.UserStore, cfg ...func(*billing.PortalConfig)) *billing.PortalService {
	t.Helper()
	if store == nil {
		store = NewStore()
	}
	c := billing.PortalConfig{
		Stripe:            s.SessionClient(),
		Subscriptions:     s.SubscriptionClient(),
		Users:             store,
		Auth:              NewStaticAuth(),
		ReturnURL:         ReturnURL,
		AllowedReturnURLs: []string{AllowedOrigin},
	}
	for _, f := range cfg {
		f(&c)
	}
	svc, err := billing.NewPortalService(c)
	if err != nil {
		t.Fatalf("billingtest: NewPortalService: %v", err)
	}
	return svc
}

// StaticAuth is an authenticator with a fixed table of tokens, for tests
// and demos. It reads the access_token cookie with the real
// [billing.CookieAuthenticator] and verifies the token against its table: an
// unknown token fails with an error wrapping [billing.ErrTokenInvalid], an
// expired one with [billing.ErrTokenExpired], a missing cookie with
// [billing.ErrNoToken]. No error names the token. It is safe for concurrent
// use.
//
// The zero value knows no token; [NewStaticAuth] returns one that knows the
// standard tokens.
type StaticAuth struct {
	// Now returns the time expiries are compared with. Default: time.Now.
	// Set it before first use.
	Now func() time.Time

	mu     sync.RWMutex
	tokens map[string]staticToken
}

type staticToken struct {
	userID  string
	expires time.Time // zero: never
}

var (
	_ billing.Authenticator = (*StaticAuth)(nil)
	_ billing.TokenVerifier = (*StaticAuth)(nil)
)

// NewStaticAuth returns a StaticAuth that knows the standard tokens:
// [TokenFree], [TokenBasic], [TokenPro] and [TokenNoCustomer] of the
// standard [Users], the expired [TokenExpired] of [UserPro], and
// [TokenUnknownUser]. Add more with [StaticAuth.Add].
func NewStaticAuth() *StaticAuth {
	a := &StaticAuth{}
	a.Add(TokenFree, UserFree)
	a.Add(TokenBasic, UserBasic)
	a.Add(TokenPro, UserPro)
	a.Add(TokenNoCustomer, UserNoCustomer)
	a.Add(TokenUnknownUser, "u_unknown")
	a.AddExpiring(TokenExpired, UserPro, time.Unix(1, 0))
	return a
}

// Add makes token valid for userID, without expiry, replacing what token
// meant before.
func (a *StaticAuth) Add(token, userID string) { a.AddExpiring(token, userID, time.Time{}) }

// AddExpiring makes token valid for userID until expires (the zero time:
// never), replacing what token meant before.
func (a *StaticAuth) AddExpiring(token, userID string, expires time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tokens == nil {
		a.tokens = map[string]staticToken{}
	}
	a.tokens[token] = staticToken{userID: userID, expires: expires}
}

// Remove forgets token.
func (a *StaticAuth) Remove(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.tokens, token)
}

// VerifyToken implements [billing.TokenVerifier].
func (a *StaticAuth) VerifyToken(_ context.Context, token string) (string, error) {
	a.mu.RLock()
	t, ok := a.tokens[token]
	a.mu.RUnlock()
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	switch {
	case !ok:
		return "", fmt.Errorf("billingtest: unknown token: %w", billing.ErrTokenInvalid)
	case !t.expires.IsZero() && !now().Before(t.expires):
		return "", fmt.Errorf("billingtest: token expired at %s: %w", t.expires.UTC().Format(time.RFC3339), billing.ErrTokenExpired)
	}
	return t.userID, nil
}

// Authenticate implements [billing.Authenticator]: it reads the
// access_token cookie and verifies it.
func (a *StaticAuth) Authenticate(r *http.Request) (string, error) {
	return (&billing.CookieAuthenticator{Verifier: a}).Authenticate(r)
}

// Cookie returns the access_token cookie carrying token, for
// req.AddCookie.
func Cookie(token string) *http.Cookie {
	return &http.Cookie{Name: billing.DefaultCookieName, Value: token}
}
