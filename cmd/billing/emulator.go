package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/contafy/billing/billingtest"
)

const emulatorUsage = `
Usage: billing emulator [-addr HOST:PORT]

Serves the test kit's Stripe emulator (package billingtest) until SIGINT or
SIGTERM: a Stripe-shaped API that stripe-go, curl or any app can point at
(STRIPE_API_URL=http://HOST:PORT, any sk_test_ key). It prints
"listening on http://HOST:PORT" once it accepts connections.
`

func runEmulator(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "emulator", emulatorUsage)
	addr := f.String("addr", "127.0.0.1:12111", "listen address `HOST:PORT` (port 0: any free port)")
	if err := f.parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	emu := billingtest.NewStripe()
	defer emu.Close()
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(e.Stdout, "listening on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
