package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/ops"
	"github.com/stripe/stripe-go/v76/entitlements/activeentitlement"
	"github.com/stripe/stripe-go/v76/event"
	"github.com/stripe/stripe-go/v76/subscription"
)

const replayUsage = `
Usage: billing replay -db DSN -since DURATION [-failed-only] -price-plans LIST [-stripe-url URL] [-json]

Reads the events the webhook handler acts on (ops.HandledEvents) that
Stripe created since now minus -since (or since an RFC 3339 time; Stripe
keeps 30 days of events), optionally only those whose delivery to an
endpoint failed, and hands each, oldest first, to a webhook handler on the
app's SQL store (ops.Replay, through WebhookHandler.Handle): an event
the app applied already is a duplicate, an older one is stale, and what was
missed is applied, its plan change recorded once in the store's outbox for
the app's plan-change hook.

-db is a postgres:// URL or a SQLite file path, as the demo's -db; the
schema is created if missing. -price-plans, -past-due-revokes-access and
-link-checkout must be the app's (billing.PlanRules, WebhookConfig), or
plans would flip with whichever wrote last.

Progress goes to stderr: one line rewritten in place on a terminal, a plain
line every -progress-every events elsewhere. The report goes to stdout:

	replay done: 300 of 300 events in 3 pages (0 rate-limited), applied 20, duplicate 270, stale 5, other 5, errors 0, plans changed 2
	drift: user=u_123 from=FREE to=PRO

or with -json the ops.ReplayReport as one JSON document. The exit status
is 1 when the run stopped before the end or an event failed (run it again:
what was applied is a duplicate then). The key is read from
STRIPE_SECRET_KEY.
`

// replaySecret is the webhook handler's signing secret during a replay,
// where none is checked: Replay hands each event to Handle, which checks no
// signature (the events come from Stripe's API, read with the secret key,
// not from a delivery). WebhookConfig requires Secrets because a handler
// may also serve deliveries (ServeHTTP), which this one never does; the
// placeholder verifies nothing.
const replaySecret = "whsec_replay_unused_handle_checks_no_signature"

func runReplay(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "replay", replayUsage)
	sto := addStoreFlags(f)
	since := f.String("since", "", "replay the events created since now minus this `DURATION` (for example 72h), or since an RFC 3339 time (required)")
	failedOnly := f.Bool("failed-only", false, "replay only the events whose delivery to an endpoint failed")
	linkCheckout := f.Bool("link-checkout", false, "link the customer of a checkout.session.completed to its client_reference_id, as the app's WebhookConfig.LinkCheckout")
	every := f.Int("progress-every", 100, "off a terminal, a progress line every `N` events")
	verbose := f.Bool("v", false, "log a line per failed event and per rate-limited page to stderr")
	sf := addStripeFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := sto.checkDB(); err != nil {
		return err
	}
	now := time.Now()
	from, err := parseSince(*since, now)
	if err != nil {
		return err
	}
	if now.Sub(from) > 30*24*time.Hour {
		fmt.Fprintf(e.Stderr, "replay: Stripe keeps 30 days of events: those before %s are gone (billing reconcile reads the current state instead)\n",
			now.Add(-30*24*time.Hour).UTC().Format(time.RFC3339))
	}
	rules, err := sto.rules()
	if err != nil {
		return err
	}
	api, err := sf.api(e)
	if err != nil {
		return err
	}
	store, closeStore, err := openStore(ctx, *sto.dsn)
	if err != nil {
		return err
	}
	defer closeStore()

	log := warnLogger(e.Stderr, *verbose)
	h, err := billing.NewWebhookHandler(billing.WebhookConfig{
		Secrets:       []string{replaySecret},
		Store:         store,
		Rules:         rules,
		Subscriptions: &subscription.Client{B: api.B, Key: api.Key},
		Entitlements:  &activeentitlement.Client{B: api.B, Key: api.Key},
		LinkCheckout:  *linkCheckout,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	prog := newProgress(e.Stderr, *every)
	rep, runErr := ops.Replay(ctx, ops.ReplayConfig{
		Events:        &event.Client{B: api.B, Key: api.Key},
		Store:         store,
		Handler:       h,
		Since:         from,
		FailedOnly:    *failedOnly,
		RatePerSecond: *sto.rate,
		MaxBackoff:    *sto.maxBackoff,
		Logger:        log,
		OnEvent:       func(r ops.ReplayReport) { prog.update(replayLine("replay", r)) },
	})
	prog.finish(replayLine("replay", rep))
	if err := printReplayReport(e.Stdout, rep, runErr == nil, *sf.json); err != nil {
		return err
	}
	switch {
	case runErr != nil:
		return fmt.Errorf("%w\nrun the same command again: what was applied is a duplicate then", redacted(runErr, api.Key))
	case rep.Errors > 0:
		return fmt.Errorf("%d events failed; run the replay again to retry them (what was applied is a duplicate then)", rep.Errors)
	}
	return nil
}

// parseSince reads -since: a positive duration before now, or an RFC 3339
// time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, usagef("-since is required (for example -since 72h: Stripe keeps 30 days of events)")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usagef("-since %s: want a positive duration, for example 72h", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("-since %q: want a duration (72h) or an RFC 3339 time (2024-05-01T00:00:00Z)", s)
}

// replayLine is the progress line, and the first line of the report.
func replayLine(prefix string, r ops.ReplayReport) string {
	return fmt.Sprintf("%s: %d of %d events in %d pages (%d rate-limited), applied %d, duplicate %d, stale %d, other %d, errors %d, plans changed %d",
		prefix, r.Read, r.Total, r.Pages, r.RateLimited, r.Applied, r.Duplicate, r.Stale, r.Other, r.Errors, len(r.Drift))
}

// printReplayReport prints the report: as JSON, or as the summary line and
// a drift line per plan changed.
func printReplayReport(w io.Writer, r ops.ReplayReport, done, asJSON bool) error {
	if r.Drift == nil {
		r.Drift = []ops.PlanDrift{}
	}
	if asJSON {
		return writeJSON(w, r)
	}
	prefix := "replay done"
	if !done {
		prefix = "replay stopped"
	}
	fmt.Fprintln(w, replayLine(prefix, r))
	printDrift(w, r.Drift)
	return nil
}
