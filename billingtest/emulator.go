package billingtest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// EmulatorConfig configures [NewEmulator]. The zero value is a working
// emulator on a free port of 127.0.0.1.
type EmulatorConfig struct {
	// Addr is the TCP address to listen on, host:port ("127.0.0.1:12111";
	// port 0 picks a free one). Default "127.0.0.1:0".
	Addr string
	// PublicURL is the base URL the emulator gives itself in the URLs it
	// hands out (portal sessions, hosted invoices, invoice PDFs), for an
	// emulator reached through another name (a container, a proxy).
	// Default "http://" + the listener's address, an unspecified host
	// (":0", "0.0.0.0:0", "[::]:0") written as 127.0.0.1.
	PublicURL string
	// PortalURL is the base of the portal session URLs
	// (PortalURL + "/p/session/<token>"). Default PublicURL. [NewStripe]
	// sets "https://billing.stripe.com", the fake's historical URLs.
	PortalURL string
	// PortalIdleTimeout is how long a hosted portal session stays usable
	// without a request, measured on the emulator's clock (which moves
	// with the wall clock and with [Stripe.AdvanceClock]); after it the
	// page answers 410. Default 5 minutes.
	PortalIdleTimeout time.Duration
	// Webhooks are the delivery rules. The zero value gives the defaults
	// of [DeliveryConfig].
	Webhooks DeliveryConfig
	// Logger receives a line per webhook delivery attempt and per clock
	// advance (never a secret, a signature or a portal URL). Default:
	// discard.
	Logger *slog.Logger
}

// DeliveryConfig are the emulator's webhook delivery rules: like Stripe's
// (asynchronous, retried with exponential backoff on a non-2xx reply, a
// connection error or a timeout, up to a bound), with defaults scaled for
// tests. Stripe itself retries for three days.
type DeliveryConfig struct {
	// FirstRetry is the wait before the first retry; each later wait
	// doubles. Default 50 ms.
	FirstRetry time.Duration
	// MaxAttempts is how many times one delivery is tried in all.
	// Default 8 (about 6.4 s of waiting at the default FirstRetry).
	MaxAttempts int
	// Timeout is the time one attempt may take before it counts as
	// failed. Default 10 s.
	Timeout time.Duration
	// Chaos, if not nil, duplicates, reorders and delays deliveries, for
	// tests of an app's webhook handling. Default nil: each event is
	// delivered once per endpoint, in the order it happened (retries
	// excepted).
	Chaos *Chaos
}

// Chaos makes webhook delivery misbehave the way Stripe may: the same
// event twice, events out of order, events late. Every choice is drawn
// from a random source seeded with Seed, so a failing run can be
// repeated (timing aside).
type Chaos struct {
	// Seed seeds the random choices. Every seed, 0 included, is used as
	// given.
	Seed int64
	// Duplicate is the probability (0 to 1) that a delivery is sent twice
	// (two independent deliveries of the same event, same id).
	Duplicate float64
	// Reorder is the probability (0 to 1) that a delivery is held back
	// until the next delivery to the same endpoint has gone first (or
	// for at most 100 ms, if none comes).
	Reorder float64
	// MaxDelay delays each delivery by a random time in [0, MaxDelay).
	// Default 0: no delay.
	MaxDelay time.Duration
}

func (c EmulatorConfig) withDefaults() (EmulatorConfig, error) {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.PortalIdleTimeout == 0 {
		c.PortalIdleTimeout = 5 * time.Minute
	}
	d := &c.Webhooks
	if d.FirstRetry == 0 {
		d.FirstRetry = 50 * time.Millisecond
	}
	if d.MaxAttempts == 0 {
		d.MaxAttempts = 8
	}
	if d.Timeout == 0 {
		d.Timeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case c.PortalIdleTimeout < 0:
		return c, errors.New("billingtest: EmulatorConfig.PortalIdleTimeout is negative; leave it 0 for 5 minutes")
	case d.FirstRetry < 0, d.MaxAttempts < 0, d.Timeout < 0:
		return c, errors.New("billingtest: EmulatorConfig.Webhooks has a negative setting; leave a field 0 for its default")
	case d.Chaos != nil && (d.Chaos.Duplicate < 0 || d.Chaos.Duplicate > 1 || d.Chaos.Reorder < 0 || d.Chaos.Reorder > 1 || d.Chaos.MaxDelay < 0):
		return c, errors.New("billingtest: EmulatorConfig.Webhooks.Chaos: Duplicate and Reorder are probabilities from 0 to 1, MaxDelay is not negative")
	}
	for _, u := range []struct{ name, v string }{{"PublicURL", c.PublicURL}, {"PortalURL", c.PortalURL}} {
		if u.v != "" && !validURL(u.v) {
			return c, fmt.Errorf("billingtest: EmulatorConfig.%s %q is not an http(s) URL with a host (for example http://localhost:12111)", u.name, u.v)
		}
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	c.PortalURL = strings.TrimSuffix(c.PortalURL, "/")
	return c, nil
}

// NewEmulator starts the emulator on cfg.Addr, for a command or an app that
// runs it as a server (go run ./cmd/billing emulator): stripe-go, curl or
// any app can point at [Stripe.URL] with any test-mode key. Portal
// sessions' URLs open its hosted page. Call Close when done. It fails only
// when the address cannot be listened on, or for a setting out of range.
func NewEmulator(cfg EmulatorConfig) (*Stripe, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("billingtest: NewEmulator: listen on %s: %w (choose a free address, or port 0 for any)", addr, err)
	}
	s, err := newStripe(cfg, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

// StartEmulator is [NewEmulator] for tests: it fails the test if the
// emulator cannot start, and closes it when t's test ends.
func StartEmulator(t testing.TB, cfg EmulatorConfig) *Stripe {
	t.Helper()
	s, err := NewEmulator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// publicURL is the URL of a listener's address, an unspecified host
// written as 127.0.0.1.
func publicURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}).String()
}
