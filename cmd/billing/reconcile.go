package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/contafy/billing/ops"
	"github.com/contafy/billing/sqlstore"
	"github.com/stripe/stripe-go/v76/subscription"
)

const reconcileUsage = `
Usage: billing reconcile -db DSN -price-plans LIST [-cursor FILE] [-restart] [-stripe-url URL] [-json]

Reads every subscription of the Stripe account (all statuses, 100 a page
with their items and prices, so no subscription is read on its own) and
applies each to the SQL store the app's webhook handler writes to, through
the same atomic, ordered path (ops.Reconcile): a read counts at its own
time and never overwrites a newer state, customers no user is linked to yet
are kept for a later link, and each plan change is recorded once in the
store's outbox for the app's plan-change hook. Requests are paced (-rate);
a rate-limited page (429) backs off and is retried, it never ends the run.

-db is a postgres:// URL or a SQLite file path, as the demo's -db; the
schema is created if missing. -price-plans and -past-due-revokes-access
must be the app's (billing.PlanRules), or plans would flip with whichever
wrote last.

A run is resumable: after each page the cursor (the last subscription
applied) and the counts so far are written to the -cursor file, by default
DB.reconcile-cursor next to a SQLite database, or
$XDG_CACHE_HOME/contafy-billing/reconcile-HASH.json (os.UserCacheDir) for
PostgreSQL. A run that stops (killed, interrupted, an error) continues after
that cursor when started again with the same flags, and its report then
counts the whole run; a run that completes removes the file. -restart
ignores it and starts from the first subscription.

Progress goes to stderr: one line rewritten in place on a terminal, a plain
line every -progress-every pages elsewhere. The report goes to stdout:

	reconcile done: read 250 in 3 pages (1 rate-limited), applied 240, stale 5, unknown price 5, errors 0, plans changed 2
	drift: user=u_123 from=FREE to=PRO

or with -json the ops.ReconcileReport as one JSON document. The exit
status is 1 when the run stopped before the end or a subscription failed to
apply (run it again). The key is read from STRIPE_SECRET_KEY.
`

func runReconcile(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "reconcile", reconcileUsage)
	sto := addStoreFlags(f)
	cursorFile := f.String("cursor", "", "the resume state `FILE` (default DB.reconcile-cursor for SQLite, a file in the user's cache dir for PostgreSQL)")
	restart := f.Bool("restart", false, "ignore the -cursor file and start from the first subscription")
	every := f.Int("progress-every", 10, "off a terminal, a progress line every `N` pages")
	verbose := f.Bool("v", false, "log a warning per subscription with an unknown price and per rate-limited page to stderr")
	sf := addStripeFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := sto.checkDB(); err != nil {
		return err
	}
	rules, err := sto.rules()
	if err != nil {
		return err
	}
	api, err := sf.api(e)
	if err != nil {
		return err
	}
	if *cursorFile == "" {
		if *cursorFile, err = defaultCursorFile(*sto.dsn); err != nil {
			return err
		}
	}

	account := accountOf(*sf.url, api.Key)
	st, err := loadReconcileState(*cursorFile)
	switch {
	case err != nil:
		return err
	case *restart:
		st = reconcileState{}
	case st.Report.Cursor != "" && st.Account != account:
		fmt.Fprintf(e.Stderr, "reconcile: %s is for %s, not %s; starting from the first subscription\n", *cursorFile, st.Account, account)
		st = reconcileState{}
	case st.Report.Cursor != "":
		fmt.Fprintf(e.Stderr, "reconcile: resuming after %s, %d subscriptions read so far (%s; -restart starts over)\n", st.Report.Cursor, st.Report.Read, *cursorFile)
	}
	if st.Report.Cursor == "" {
		st = reconcileState{Account: account, Started: time.Now().UTC()}
	}

	store, closeStore, err := openStore(ctx, *sto.dsn)
	if err != nil {
		return err
	}
	defer closeStore()

	prog := newProgress(e.Stderr, *every)
	var saveErr error
	cfg := ops.ReconcileConfig{
		Store:         store,
		Subscriptions: &subscription.Client{B: api.B, Key: api.Key},
		Rules:         rules,
		RatePerSecond: *sto.rate,
		MaxBackoff:    *sto.maxBackoff,
		Cursor:        st.Report.Cursor,
		Logger:        warnLogger(e.Stderr, *verbose),
		OnPage: func(r ops.ReconcileReport) {
			now := st
			now.Report = addReconcileReports(st.Report, r)
			if err := saveReconcileState(*cursorFile, now); err != nil && saveErr == nil {
				saveErr = err
			}
			prog.update(reconcileLine("reconcile", now.Report))
		},
	}
	rep, runErr := ops.Reconcile(ctx, cfg)
	total := addReconcileReports(st.Report, rep)
	prog.finish(reconcileLine("reconcile", total))
	switch {
	case runErr == nil && saveErr == nil:
		if err := os.Remove(*cursorFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			saveErr = fmt.Errorf("remove the cursor file: %w", err)
		}
	case runErr != nil:
		// The report's cursor is the last subscription applied, which may
		// be within a page (an interrupt): resume after it, not after the
		// last page OnPage saved.
		now := st
		now.Report = total
		if err := saveReconcileState(*cursorFile, now); err != nil && saveErr == nil {
			saveErr = err
		}
		runErr = fmt.Errorf("%w\nrun the same command again to resume after %s (the cursor is in %s)", redacted(runErr, api.Key), orStart(total.Cursor), *cursorFile)
	}
	if err := printReconcileReport(e.Stdout, total, *sf.json); err != nil {
		return err
	}
	switch {
	case runErr != nil:
		return runErr
	case saveErr != nil:
		return fmt.Errorf("-cursor %s: %w", *cursorFile, saveErr)
	case total.Errors > 0:
		return fmt.Errorf("%d subscriptions failed to apply; run the reconcile again to retry them", total.Errors)
	}
	return nil
}

// reconcileState is the -cursor file: where a stopped reconcile resumes,
// and what it counted so far.
type reconcileState struct {
	// Account says which Stripe account the cursor belongs to: the API URL
	// and the key's mode (never the key), so that a cursor is not used
	// against another.
	Account string `json:"account"`
	// Started is when the run began.
	Started time.Time `json:"started"`
	// Report counts the run so far; Report.Cursor is where it resumes.
	Report ops.ReconcileReport `json:"report"`
}

// loadReconcileState reads the -cursor file; a missing one is the zero
// state.
func loadReconcileState(path string) (reconcileState, error) {
	var st reconcileState
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st, nil
	case err != nil:
		return st, fmt.Errorf("-cursor: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("-cursor %s: %v (remove it, or run with -restart)", path, err)
	}
	return st, nil
}

// saveReconcileState writes the -cursor file atomically (a temporary file
// synced, then renamed), so that a run killed at any moment leaves either
// the previous page's state or this one's.
func saveReconcileState(path string, st reconcileState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// defaultCursorFile is the -cursor default: DB.reconcile-cursor beside a
// SQLite database file, else (PostgreSQL, an in-memory SQLite) a file in
// the user's cache directory named by a hash of the DSN without its
// password.
func defaultCursorFile(dsn string) (string, error) {
	if sqlstore.DialectOf(dsn) == sqlstore.SQLite {
		path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
		if path != "" && !strings.HasPrefix(path, ":memory:") {
			return path + ".reconcile-cursor", nil
		}
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", usagef("-cursor is required here (no user cache directory: %v)", err)
	}
	sum := sha256.Sum256([]byte(withoutPassword(dsn)))
	return filepath.Join(dir, "contafy-billing", "reconcile-"+hex.EncodeToString(sum[:8])+".json"), nil
}

var passwordKV = regexp.MustCompile(`(?i)password\s*=\s*('(\\.|[^'])*'|\S*)`)

// withoutPassword returns dsn without its password, in URL or key=value
// form.
func withoutPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		q := u.Query()
		q.Del("password")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return passwordKV.ReplaceAllString(dsn, "")
}

// accountOf names the Stripe account a run talks to, for the -cursor
// file: the API base URL and the key's mode, never the key.
func accountOf(stripeURL, key string) string {
	base := strings.TrimRight(stripeURL, "/")
	if base == "" {
		base = "https://api.stripe.com"
	}
	mode := "test"
	if strings.HasPrefix(key, "sk_live_") || strings.HasPrefix(key, "rk_live_") {
		mode = "live"
	}
	return base + " (" + mode + " mode)"
}

// addReconcileReports adds a resumed run's report to the counts before it.
func addReconcileReports(before, run ops.ReconcileReport) ops.ReconcileReport {
	out := run
	out.Read += before.Read
	out.Applied += before.Applied
	out.Stale += before.Stale
	out.UnknownPrice += before.UnknownPrice
	out.Errors += before.Errors
	out.Pages += before.Pages
	out.RateLimited += before.RateLimited
	out.Drift = append(append([]ops.PlanDrift(nil), before.Drift...), run.Drift...)
	if out.Cursor == "" {
		out.Cursor = before.Cursor
	}
	return out
}

// reconcileLine is the progress line, and the first line of the report.
func reconcileLine(prefix string, r ops.ReconcileReport) string {
	return fmt.Sprintf("%s: read %d in %d pages (%d rate-limited), applied %d, stale %d, unknown price %d, errors %d, plans changed %d",
		prefix, r.Read, r.Pages, r.RateLimited, r.Applied, r.Stale, r.UnknownPrice, r.Errors, len(r.Drift))
}

// printReconcileReport prints the report: as JSON, or as the summary line
// and a drift line per plan changed.
func printReconcileReport(w io.Writer, r ops.ReconcileReport, asJSON bool) error {
	if r.Drift == nil {
		r.Drift = []ops.PlanDrift{}
	}
	if asJSON {
		return writeJSON(w, r)
	}
	prefix := "reconcile done"
	if !r.Done {
		prefix = "reconcile stopped"
	}
	fmt.Fprintln(w, reconcileLine(prefix, r))
	printDrift(w, r.Drift)
	return nil
}

// printDrift prints a line per user whose plan changed.
func printDrift(w io.Writer, drift []ops.PlanDrift) {
	for _, d := range drift {
		fmt.Fprintf(w, "drift: user=%s from=%s to=%s\n", d.UserID, d.From, d.To)
	}
}

// warnLogger returns a logger of warnings to w when verbose, else nil (the
// library's default, discard).
func warnLogger(w io.Writer, verbose bool) *slog.Logger {
	if !verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func orStart(cursor string) string {
	if cursor == "" {
		return "the start"
	}
	return cursor
}
