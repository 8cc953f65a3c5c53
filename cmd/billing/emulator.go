package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/contafy/billing/billingtest"
)

const emulatorUsage = `
Usage: billing emulator [-addr HOST:PORT] [-public-url URL] [-portal-idle-timeout D] [-quiet]

Serves the test kit's Stripe emulator (package billingtest) until SIGINT or
SIGTERM: a Stripe-shaped API that stripe-go, curl or any app can point at
(STRIPE_API_URL=http://HOST:PORT, any sk_test_ key), hosted portal pages at
http://HOST:PORT/p/session/<id>, webhook delivery to the endpoints created
through its API, and a test clock (POST /emulator/clock/advance?by=720h).
It prints "listening on http://HOST:PORT" once it accepts connections, and
a log line per webhook delivery attempt and clock advance on stderr.
`

func runEmulator(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "emulator", emulatorUsage)
	addr := f.String("addr", "127.0.0.1:12111", "listen address `HOST:PORT` (port 0: any free port)")
	publicURL := f.String("public-url", "", "base `URL` the emulator puts in the URLs it hands out (portal sessions, invoices), when it is reached through another name (default http://HOST:PORT)")
	idle := f.Duration("portal-idle-timeout", 5*time.Minute, "how long a portal session's page stays usable without a request (on the emulator's clock)")
	quiet := f.Bool("quiet", false, "no log lines on stderr")
	if err := f.parse(args); err != nil {
		return err
	}
	if *idle <= 0 {
		return usagef("-portal-idle-timeout must be positive")
	}
	cfg := billingtest.EmulatorConfig{Addr: *addr, PublicURL: *publicURL, PortalIdleTimeout: *idle}
	if !*quiet {
		cfg.Logger = slog.New(slog.NewTextHandler(e.Stderr, nil))
	}
	emu, err := billingtest.NewEmulator(cfg)
	if err != nil {
		return err
	}
	defer emu.Close()
	fmt.Fprintf(e.Stdout, "listening on %s\n", emu.URL())
	<-ctx.Done()
	return nil
}
