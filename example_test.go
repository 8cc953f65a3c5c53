package billing_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
)

// Mounting the portal endpoint. Here Stripe is the test kit's fake and the
// users and tokens are the kit's; in an app they are stripe-go's session
// client, the app's user table and its session check.
func ExamplePortalService_ServeHTTP() {
	fake := billingtest.NewStripe() // in an app: &session.Client{B: billing.NewBackend(nil), Key: key}
	defer fake.Close()
	fake.Seed()

	svc, err := billing.NewPortalService(billing.PortalConfig{
		Stripe:    fake.SessionClient(),
		Users:     billingtest.NewStore(),
		Auth:      billingtest.NewStaticAuth(), // in an app: billing.NewCookieAuthenticator(verifier)
		ReturnURL: "https://app.example.com/account",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/subscription/create-portal-session", svc)

	for _, token := range []string{billingtest.TokenPro, billingtest.TokenFree, ""} {
		req := httptest.NewRequest(http.MethodPost, "/api/subscription/create-portal-session", nil)
		if token != "" {
			req.AddCookie(billingtest.Cookie(token))
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		body := strings.Replace(rec.Body.String(), fake.Sessions()[0].URL, "<portal url>", 1)
		fmt.Print(rec.Code, " ", body)
	}
	// Output:
	// 200 {"url":"<portal url>","message":"Portal session created successfully"}
	// 403 {"error":"Forbidden","message":"Customer portal is only available for paid subscriptions"}
	// 401 {"error":"Unauthorized","message":"Authentication required"}
}

// Creating a session without HTTP, for example from a server-rendered page,
// against the test kit's fake Stripe. Every error is an *Error that matches
// one of the sentinels.
func ExamplePortalService_CreateSession() {
	fake := billingtest.NewStripe()
	defer fake.Close()
	fake.Seed()
	svc, err := billing.NewPortalService(billing.PortalConfig{
		Stripe:            fake.SessionClient(),
		Users:             billingtest.NewStore(),
		Auth:              billingtest.NewStaticAuth(),
		ReturnURL:         "https://app.example.com/account",
		AllowedReturnURLs: []string{"https://app.example.com/billing/"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	// A PRO user, deep-linked to the cancelation of their subscription,
	// back to an allowed page afterwards.
	sess, err := svc.CreateSession(ctx, billingtest.UserPro, billing.SessionOptions{
		Flow: &billing.Flow{
			Type:            billing.FlowSubscriptionCancel,
			RetentionCoupon: "SAVE20",
			AfterCompletion: &billing.AfterCompletion{Type: billing.AfterRedirect, ReturnURL: "https://app.example.com/billing/canceled"},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	sent := fake.Sessions()[0]
	fmt.Println(sess.URL == sent.URL, sent.Customer, sent.FlowData.Get("flow_data[type]"), sent.FlowData.Get("flow_data[subscription_cancel][subscription]"))

	// The refusals of the contract, before any Stripe call.
	for _, id := range []string{billingtest.UserFree, billingtest.UserNoCustomer, "u_nobody"} {
		_, err := svc.CreateSession(ctx, id, billing.SessionOptions{})
		var e *billing.Error
		errors.As(err, &e)
		fmt.Println(id, e.Status, errors.Is(err, billing.ErrNotPaid), errors.Is(err, billing.ErrCustomerNotFound), errors.Is(err, billing.ErrUnauthorized))
	}
	_, err = svc.CreateSession(ctx, billingtest.UserPro, billing.SessionOptions{ReturnURL: "https://evil.example/"})
	fmt.Println(err)
	fmt.Println("Stripe calls:", fake.CallCount(billingtest.PathPortalSessions))
	// Output:
	// true cus_pro subscription_cancel sub_pro
	// u_free 403 true false false
	// u_nocust 404 false true false
	// u_nobody 401 false false true
	// billing: return_url is not allowed
	// Stripe calls: 1
}

// bearerAuth is an Authenticator for API clients that send
// "Authorization: Bearer <token>" instead of the access_token cookie.
type bearerAuth struct {
	verify billing.TokenVerifier
}

func (a bearerAuth) Authenticate(r *http.Request) (string, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", billing.ErrNoToken // logged as reason=no_token, answered 401
	}
	return a.verify.VerifyToken(r.Context(), token)
}

// A custom Authenticator: tokens in the Authorization header. Wrapping
// ErrNoToken, ErrTokenInvalid or ErrTokenExpired lets the log tell the
// cases apart; every error is answered 401.
func ExampleAuthenticator() {
	fake := billingtest.NewStripe()
	defer fake.Close()
	fake.Seed()
	verify := billing.TokenVerifierFunc(func(_ context.Context, token string) (string, error) {
		if token == "api-key-of-pro" {
			return billingtest.UserPro, nil
		}
		return "", billing.ErrTokenInvalid
	})
	h, err := billing.NewPortalService(billing.PortalConfig{
		Stripe: fake.SessionClient(), Users: billingtest.NewStore(), Auth: bearerAuth{verify: verify},
		ReturnURL: "https://app.example.com/account",
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	for _, header := range []string{"Bearer api-key-of-pro", "Bearer forged", ""} {
		req := httptest.NewRequest(http.MethodPost, "/api/subscription/create-portal-session", nil)
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Printf("%q: %d\n", header, rec.Code)
	}
	// Output:
	// "Bearer api-key-of-pro": 200
	// "Bearer forged": 401
	// "": 401
}

// accounts is an app's user table, here a map standing in for a database
// query.
type accounts struct {
	rows map[string]billing.User
	down bool // the database is unreachable
}

// User implements billing.UserStore: an unknown user is found=false with a
// nil error (answered 401); only a failure is an error (answered 500).
func (a *accounts) User(_ context.Context, id string) (billing.User, bool, error) {
	if a.down {
		return billing.User{}, false, fmt.Errorf("accounts: query user %s: %w", id, sql.ErrConnDone)
	}
	u, ok := a.rows[id]
	return u, ok, nil
}

// A custom UserStore over the app's own user records.
func ExampleUserStore() {
	fake := billingtest.NewStripe()
	defer fake.Close()
	fake.AddCustomer("cus_ada")

	users := &accounts{rows: map[string]billing.User{
		"ada": {ID: "ada", Plan: billing.Pro, StripeCustomerID: "cus_ada"},
	}}
	svc, err := billing.NewPortalService(billing.PortalConfig{
		Stripe: fake.SessionClient(), Users: users, Auth: billingtest.NewStaticAuth(), ReturnURL: "https://app.example.com/account",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	_, err = svc.CreateSession(ctx, "ada", billing.SessionOptions{})
	fmt.Println("ada:", err)
	_, err = svc.CreateSession(ctx, "bob", billing.SessionOptions{})
	fmt.Println("bob:", errors.Is(err, billing.ErrUnauthorized))
	users.down = true
	_, err = svc.CreateSession(ctx, "ada", billing.SessionOptions{})
	fmt.Println("database down:", errors.Is(err, billing.ErrInternal), errors.Is(err, sql.ErrConnDone))
	// Output:
	// ada: <nil>
	// bob: true
	// database down: true true
}

// The webhook handler with a signed test event: a BASIC user upgrades to
// PRO in the portal, Stripe sends customer.subscription.updated, and the
// user's plan follows. A redelivery of the same event changes nothing.
func ExampleWebhookHandler() {
	store := billingtest.NewStore() // u_basic is BASIC, customer cus_basic
	h, err := billing.NewWebhookHandler(billing.WebhookConfig{
		Secrets: []string{billingtest.WebhookSecret}, // the endpoint's whsec_... secret
		Store:   store,
		Rules: billing.PlanRules{Prices: billing.PriceTable{Prices: map[string]billing.Plan{
			"price_basic": billing.Basic,
			"price_pro":   billing.Pro,
		}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/subscription/webhook", h)

	event := billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{
		ID: "sub_basic", Customer: "cus_basic", PriceID: "price_pro",
	}, time.Now())
	for _, secret := range []string{"whsec_wrong", billingtest.WebhookSecret, billingtest.WebhookSecret} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, billingtest.WebhookRequest(event, secret, billingtest.RequestOptions{}))
		fmt.Print(rec.Code, " ", rec.Body)
	}
	u, _, _ := store.User(context.Background(), "u_basic")
	fmt.Println("u_basic is now", u.Plan)
	// Output:
	// 400 {"error":"Bad Request","message":"Invalid Stripe signature"}
	// 200 {"received":true,"outcome":"applied"}
	// 200 {"received":true,"outcome":"duplicate"}
	// u_basic is now PRO
}
