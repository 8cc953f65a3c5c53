package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/contafy/billing/internal/testenv"
)

// runEnv runs the command line in-process with the given environment (no
// other variable is set) and returns its exit status, stdout and stderr.
func runEnv(t testing.TB, ctx context.Context, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return environ[k] }})
	return code, stdout.String(), stderr.String()
}

// stripeMockURL returns the URL of the stripe-mock scripts/test started
// (STRIPE_MOCK_URL), or skips the test without one (fails it under
// CI=true, as package testenv does).
func stripeMockURL(t *testing.T) string {
	t.Helper()
	if os.Getenv("STRIPE_MOCK_URL") == "" {
		msg := "STRIPE_MOCK_URL is not set: run scripts/test, or start `go run github.com/stripe/stripe-mock@" + testenv.StripeMockVersion + " -http-addr 127.0.0.1:12111` and set STRIPE_MOCK_URL=http://127.0.0.1:12111"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return testenv.StripeMock(t)
}

// TestOpsHelp: -h on every subcommand (and on a group, which is -h on its
// one verb) prints the synopsis and the flags to stdout, exit 0.
func TestOpsHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, []string{"webhook", "portal", "doctor", "reconcile", "replay"}},
		{[]string{"webhook", "-h"}, []string{"Usage: billing webhook setup -url URL", "-url URL", "-stripe-url URL", "-json", "signing secret"}},
		{[]string{"webhook", "setup", "-h"}, []string{"Usage: billing webhook setup -url URL"}},
		{[]string{"portal", "setup", "-h"}, []string{"Usage: billing portal setup -price-plans LIST [-return-url URL]", "-return-url URL", "bpc_"}},
		{[]string{"portal", "-help"}, []string{"Usage: billing portal setup"}},
		{[]string{"doctor", "-h"}, []string{"Usage: billing doctor -price-plans LIST -webhook-url URL", "-webhook-url URL", "FAIL"}},
		{[]string{"reconcile", "-h"}, []string{"Usage: billing reconcile -db DSN -price-plans LIST", "-cursor FILE", "-restart", "-rate N", "reconcile-cursor"}},
		{[]string{"replay", "-h"}, []string{"Usage: billing replay -db DSN -since DURATION [-failed-only] -price-plans LIST", "-since DURATION", "-failed-only"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runEnv(t, context.Background(), nil, tc.args...)
			if code != 0 || stderr != "" {
				t.Errorf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestOpsUsageErrors: a missing or bad flag, argument or key is exit 2
// with the reason on stderr and nothing on stdout, before any request.
func TestOpsUsageErrors(t *testing.T) {
	key := map[string]string{"STRIPE_SECRET_KEY": "sk_test_usage", "STRIPE_API_URL": "http://127.0.0.1:1"}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{key, []string{"webhook"}, "missing the subcommand: billing webhook setup"},
		{key, []string{"webhook", "teardown"}, `unknown subcommand "teardown"`},
		{key, []string{"webhook", "setup"}, "-url is required"},
		{key, []string{"webhook", "setup", "-url", "https://x", "extra"}, `unexpected argument "extra"`},
		{nil, []string{"webhook", "setup", "-url", "https://x"}, "STRIPE_SECRET_KEY is not set"},
		{key, []string{"webhook", "setup", "-url", "https://x", "-stripe-url", "127.0.0.1:12111"}, "is not an http:// or https:// URL"},
		{key, []string{"portal", "setup"}, "-price-plans is required"},
		{key, []string{"portal", "setup", "-price-plans", "price_x=GOLD"}, "-price-plans:"},
		{key, []string{"doctor", "-price-plans", "price_basic=BASIC"}, "-webhook-url is required"},
		{key, []string{"doctor", "-webhook-url", "https://x"}, "-price-plans is required"},
		{key, []string{"reconcile", "-price-plans", "price_basic=BASIC"}, "-db is required"},
		{key, []string{"reconcile", "-db", "x.db", "-price-plans", "price_basic=BASIC", "-rate", "0"}, "-rate must be positive"},
		{key, []string{"replay", "-db", "x.db", "-price-plans", "price_basic=BASIC"}, "-since is required"},
		{key, []string{"replay", "-db", "x.db", "-price-plans", "price_basic=BASIC", "-since", "-1h"}, "want a positive duration"},
		{key, []string{"replay", "-db", "x.db", "-price-plans", "price_basic=BASIC", "-since", "yesterday"}, "want a duration (72h) or an RFC 3339 time"},
		{key, []string{"replay", "-db", "x.db", "-since", "72h"}, "-price-plans is required"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runEnv(t, context.Background(), tc.env, tc.args...)
			if code != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
		})
	}
}
