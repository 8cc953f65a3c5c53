package billing_test

import (
	"context"
	"errors"
	"testing"

	"github.com/contafy/billing"
)

// hostileReturnURLs are return_url forms that must never be accepted by an
// allowlist of "https://app.example.com/billing/" and "https://other.example.com".
var hostileReturnURLs = []string{
	"//evil.example",
	"//evil.example/billing/",
	"/billing/",
	"https:evil.example",
	"https:/evil.example/billing/",
	"https://evil.example/billing/",
	`https:\\evil.example\billing\`,
	`https://app.example.com\@evil.example/billing/`,
	`https://app.example.com/billing\..\..\x`,
	"https://app.example.com@evil.example/billing/",
	"https://user:pass@app.example.com/billing/",
	"https://app.example.com.evil.example/billing/",
	"https://evil.example?https://app.example.com/billing/",
	"https://evil.example#https://app.example.com/billing/",
	"javascript:alert(1)",
	"JAVASCRIPT:alert(1)//https://app.example.com/billing/",
	"data:text/html,<script>alert(1)</script>",
	"http://app.example.com/billing/",
	"HTTPS://app.example.com/billing/",
	"https://app.example.com/billingx",
	"https://app.example.com/",
	"https://app.example.com/billing/../admin",
	"https://app.example.com/billing/%2e%2e/admin",
	"https://app.example.com/billing/%2E%2E%2Fadmin",
	"https://app.example.com/billing/..%2fadmin",
	"https://app.example.com/billing//evil.example",
	"https://app.example.com%2f@evil.example/billing/",
	"https://app.example.com:8443/billing/",
	"https://app.example.com:443@evil.example/billing/",
	"https://other.example.com:444/",
	"https://аpp.example.com/billing/", // Cyrillic a
	"https://xn--pp-8cd.example.com/billing/",
	"https://app.example.com /billing/",
	"https://app.example.com/billing/\r\nSet-Cookie: x=1",
	"https://app.example.com/billing/\x00",
	"\thttps://app.example.com/billing/",
	"https://app.example.com./billing/",
	"https://[::1]/billing/",
	"https://127.0.0.1/billing/",
	"https://app.example.com/billing/%5c..%5cadmin",
	"https://app.example.com/billing/%252e%252e/admin",
	"",
}

// goodReturnURLs are accepted by the same allowlist.
var goodReturnURLs = []string{
	"https://app.example.com/billing/",
	"https://app.example.com/billing",
	"https://app.example.com/billing/done",
	"https://app.example.com/billing/done?session=1#top",
	"https://APP.example.com/billing/x",
	"https://app.example.com:443/billing/x",
	"https://other.example.com",
	"https://other.example.com/",
	"https://other.example.com/anything/at/all",
}

func TestReturnURLAllowlist(t *testing.T) {
	e := newEnv(t, nil)
	for _, u := range hostileReturnURLs {
		_, err := e.svc.CreateSession(context.Background(), "u_pro", billing.SessionOptions{ReturnURL: u})
		if u == "" {
			// An empty return_url means "use the default": accepted.
			if err != nil {
				t.Errorf("empty return_url: %v", err)
			}
			continue
		}
		if !errors.Is(err, billing.ErrBadRequest) {
			t.Errorf("hostile return_url %q: err = %v, want ErrBadRequest", u, err)
		}
		f := billing.Flow{Type: billing.FlowPaymentMethodUpdate, AfterCompletion: &billing.AfterCompletion{Type: billing.AfterRedirect, ReturnURL: u}}
		if _, err := e.svc.CreateSession(context.Background(), "u_pro", billing.SessionOptions{Flow: &f}); !errors.Is(err, billing.ErrBadRequest) {
			t.Errorf("hostile after_completion redirect %q: err = %v, want ErrBadRequest", u, err)
		}
	}
	calls := e.stripe.count()
	for _, u := range goodReturnURLs {
		if _, err := e.svc.CreateSession(context.Background(), "u_pro", billing.SessionOptions{ReturnURL: u}); err != nil {
			t.Errorf("allowed return_url %q rejected: %v", u, err)
			continue
		}
		calls++
		if got := *e.stripe.last().ReturnURL; got != u {
			t.Errorf("return_url sent = %q, want %q", got, u)
		}
	}
	if len(hostileReturnURLs) < 25 {
		t.Fatalf("only %d hostile forms", len(hostileReturnURLs))
	}
}

func TestNoAllowlistMeansDefaultOnly(t *testing.T) {
	e := newEnv(t, func(c *billing.PortalConfig) { c.AllowedReturnURLs = nil })
	if _, err := e.svc.CreateSession(context.Background(), "u_pro", billing.SessionOptions{ReturnURL: "https://app.example.com/account"}); !errors.Is(err, billing.ErrBadRequest) {
		t.Fatalf("without an allowlist a request's return_url must be refused, got %v", err)
	}
}
