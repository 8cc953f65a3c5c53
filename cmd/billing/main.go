// Command billing is the operator's side of package billing: it runs the
// test kit's Stripe emulator as a server, and sets up, checks and repairs a
// Stripe account. Every subcommand is a thin layer over an exported Go API
// (billingtest.NewEmulator, ops.SetupWebhookEndpoint,
// ops.SetupPortalConfiguration, ops.Doctor, ops.Reconcile,
// ops.Replay), so that what it does can also be done, and tested, from
// Go.
//
//	go run ./cmd/billing emulator                      # on 127.0.0.1:12111
//	go run ./cmd/billing webhook setup -url https://app.example.com/api/subscription/webhook
//	go run ./cmd/billing portal setup -price-plans price_basic=BASIC,price_pro=PRO
//	go run ./cmd/billing doctor -price-plans price_basic=BASIC,price_pro=PRO -webhook-url https://app.example.com/api/subscription/webhook
//	go run ./cmd/billing replay -db billing.db -since 72h -price-plans price_basic=BASIC,price_pro=PRO
//	go run ./cmd/billing reconcile -db billing.db -price-plans price_basic=BASIC,price_pro=PRO
//	go run ./cmd/billing -h
//
// Subcommands:
//
//	emulator -addr HOST:PORT   serve the Stripe emulator (billingtest) until
//	                           SIGINT or SIGTERM; prints "listening on
//	                           http://HOST:PORT" once it accepts connections
//	webhook setup -url URL     create or update the app's webhook endpoint
//	                           (the handled events, API version 2023-10-16);
//	                           prints its id and, once, a new one's secret
//	portal setup -price-plans LIST [-return-url URL]
//	                           create or update the portal configuration;
//	                           prints its bpc_ id
//	doctor -price-plans LIST -webhook-url URL
//	                           check the account: one ok or FAIL line per
//	                           check, with the fix; exit 1 when any fails
//	reconcile -db DSN -price-plans LIST
//	                           apply every subscription of the account to the
//	                           store; resumable (-cursor FILE)
//	replay -db DSN -since DURATION [-failed-only] -price-plans LIST
//	                           hand missed events to the webhook handler
//
// Common flags: -stripe-url URL (default $STRIPE_API_URL; without it, the
// real Stripe API), the key from $STRIPE_SECRET_KEY, -json for one JSON
// document on stdout, -h on every subcommand. A key or a signing secret is
// never printed, except the one-time secret of an endpoint just created.
//
// Exit status: 0 on success (and for -h), 1 when a subcommand fails, 2 on a
// usage error (an unknown subcommand, a bad flag or argument).
//
// The command is a module of its own (cmd/billing/go.mod): it needs the SQL
// drivers, which the library's root module must not require. The
// repository's go.work makes `go run ./cmd/billing` work from the root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// env is what a subcommand may use of the process: its output streams and
// its environment. Tests pass their own.
type env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// command is one subcommand. run parses args (the arguments after the
// subcommand's name) with a flag set made by newFlags and returns an error;
// a usageError (or flag.ErrHelp) is turned into exit status 2 (or 0) by
// [run].
type command struct {
	name    string
	summary string // one line, for billing -h
	run     func(ctx context.Context, e *env, args []string) error
}

// commands are the subcommands, in the order billing -h lists them.
var commands = []command{
	{"emulator", "serve the test kit's Stripe emulator (a Stripe-shaped API for stripe-go, curl or any app)", runEmulator},
	{"webhook", "webhook setup -url URL: create or update the app's webhook endpoint (prints a new one's signing secret once)", runWebhook},
	{"portal", "portal setup -price-plans LIST: create or update the customer portal configuration (prints its bpc_ id)", runPortal},
	{"doctor", "check the Stripe account's setup: one ok or FAIL line per check, with the fix", runDoctor},
	{"reconcile", "apply every subscription of the account to the SQL store (resumable)", runReconcile},
	{"replay", "replay the events of a recent span (-since 72h) through the webhook handler on the SQL store", runReplay},
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run runs the command line args (without the program name) and returns the
// exit status.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.Stderr, "billing: no subcommand\n\n")
		printUsage(e.Stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		printUsage(e.Stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(e.Stderr, "billing %s: %s\nRun 'billing %s -h' for usage.\n", name, ue.msg, name)
			return 2
		default:
			fmt.Fprintf(e.Stderr, "billing %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(e.Stderr, "billing: unknown subcommand %q\n\n", name)
	printUsage(e.Stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "Usage: billing SUBCOMMAND [flags]\n\nSubcommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'billing SUBCOMMAND -h' for a subcommand's flags.\n")
}

// flags is a subcommand's flag set, with its usage text.
type flags struct {
	*flag.FlagSet
	e     *env
	usage string // "billing NAME [flags]" line and description
}

// newFlags returns the flag set of subcommand name; usage is the synopsis
// and a description, printed above the flags by -h.
func newFlags(e *env, name, usage string) *flags {
	fs := flag.NewFlagSet("billing "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are reported by run, help by parse
	return &flags{FlagSet: fs, e: e, usage: usage}
}

// parse parses args; -h prints the usage to stdout and returns
// flag.ErrHelp; a bad flag or any positional argument is a usageError.
func (f *flags) parse(args []string) error {
	err := f.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		f.printUsage(f.e.Stdout)
		return err
	case err != nil:
		return usageError{err.Error()}
	case f.NArg() > 0:
		return usagef("unexpected argument %q", f.Arg(0))
	}
	return nil
}

func (f *flags) printUsage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nFlags:\n", strings.TrimSpace(f.usage))
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}
