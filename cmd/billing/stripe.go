package main

import (
	"encoding/json"
	"io"
	"net/url"
	"strings"

	"github.com/contafy/billing"
	"github.com/contafy/billing/ops"
	"github.com/stripe/stripe-go/v76"
)

// stripeFlags are the flags every subcommand that talks to Stripe shares:
// -stripe-url and -json. The key is read from STRIPE_SECRET_KEY, never
// from a flag, so that it stays out of shell histories and process lists.
type stripeFlags struct {
	url  *string
	json *bool
}

// addStripeFlags defines -stripe-url (default $STRIPE_API_URL) and -json
// on f.
func addStripeFlags(f *flags) *stripeFlags {
	return &stripeFlags{
		url: f.String("stripe-url", f.e.Getenv("STRIPE_API_URL"),
			"Stripe API base `URL`, for example a billing emulator or stripe-mock (default $STRIPE_API_URL; without either, the real Stripe API); the key is read from STRIPE_SECRET_KEY"),
		json: f.Bool("json", false, "print one JSON document on stdout instead of lines"),
	}
}

// api returns the Stripe account the flags and the environment name: a
// usage error without STRIPE_SECRET_KEY or with a -stripe-url that is not
// an http(s) URL.
func (s *stripeFlags) api(e *env) (ops.StripeAPI, error) {
	key := e.Getenv("STRIPE_SECRET_KEY")
	if key == "" {
		return ops.StripeAPI{}, usagef("STRIPE_SECRET_KEY is not set: export the account's secret key (sk_test_... or sk_live_...; a billing emulator or stripe-mock takes any sk_test_ key)")
	}
	cfg := &stripe.BackendConfig{}
	if u := strings.TrimRight(*s.url, "/"); u != "" {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return ops.StripeAPI{}, usagef("-stripe-url %q is not an http:// or https:// URL", *s.url)
		}
		cfg.URL = stripe.String(u)
	}
	return ops.StripeAPI{B: billing.NewBackend(cfg), Key: key}, nil
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parsePricePlans parses a required -price-plans flag.
func parsePricePlans(s string) (billing.PriceTable, error) {
	if s == "" {
		return billing.PriceTable{}, usagef("-price-plans is required (for example -price-plans price_basic=BASIC,price_pro=PRO)")
	}
	t, err := billing.ParsePriceTable(s)
	if err != nil {
		return billing.PriceTable{}, usagef("-price-plans: %v", err)
	}
	return t, nil
}

// redacted returns err with every occurrence of the secret key replaced,
// for an error that is printed: Stripe's own messages mask keys, but a
// proxy's or a server's need not.
func redacted(err error, key string) error {
	if err == nil || key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return redactedError{msg: strings.ReplaceAll(err.Error(), key, "[redacted key]"), err: err}
}

// redactedError is an error whose text had a key removed; it still unwraps
// to the original, for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
