package billingtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// PathClockAdvance is POST /emulator/clock/advance?by=DURATION, the HTTP
// form of [Stripe.AdvanceClock] (no API key needed). GET /emulator/clock
// answers the clock's time without moving it.
const PathClockAdvance = "/emulator/clock/advance"

// maxDuePerAdvance bounds the work of one advance (renewals of every
// subscription over the span), so that a mistaken huge advance ends.
const maxDuePerAdvance = 100000

// Now returns the emulator's clock: the wall clock plus every
// [Stripe.AdvanceClock] so far. Objects' created times, periods, trials,
// event times and the portal's idle timeout all follow it; webhook
// signatures and retry backoff follow the wall clock (a receiver checks a
// signature's age against its own clock).
func (s *Stripe) Now() time.Time { return time.Now().Add(time.Duration(s.offset.Load())) }

func (s *Stripe) now() time.Time { return s.Now() }

// AdvanceClock moves the emulator's clock forward by d, then runs, in time
// order, everything that became due: a period's end renews the
// subscription (a new period, a paid invoice, customer.subscription.updated
// and the invoice events) or, for cancel_at_period_end and cancel_at,
// deletes it (status canceled, customer.subscription.deleted); a trial's
// end makes it active (with its first paid invoice). Each event has the
// time the thing became due. AdvanceClock returns once every webhook
// delivery is done ([Stripe.WaitDeliveries]): delivered, or given up after
// its retries. d = 0 runs what is due now.
func (s *Stripe) AdvanceClock(ctx context.Context, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("billingtest: AdvanceClock(%s): the clock only moves forward", d)
	}
	s.mu.Lock()
	s.offset.Add(int64(d))
	n, err := s.runDueLocked()
	now := s.now()
	s.mu.Unlock()
	s.cfg.Logger.Info("billingtest: clock advanced", "by", d.String(), "now", now.UTC().Format(time.RFC3339), "due_runs", n)
	if err != nil {
		return err
	}
	return s.WaitDeliveries(ctx)
}

// runDueLocked runs what is due by the clock, earliest first, and returns
// how many things it ran.
func (s *Stripe) runDueLocked() (int, error) {
	defer func() { s.log.at = time.Time{} }()
	now := s.now()
	for n := 0; ; n++ {
		var next *SubscriptionSpec
		var at time.Time
		cancel := false
		for _, sub := range s.sortedSubsLocked() {
			if sub.Status != "active" && sub.Status != "trialing" {
				continue
			}
			t, c := sub.CurrentPeriodEnd, sub.CancelAtPeriodEnd
			if !sub.CancelAt.IsZero() && !sub.CancelAt.After(t) {
				t, c = sub.CancelAt, true
			}
			if t.After(now) {
				continue
			}
			if next == nil || t.Before(at) {
				next, at, cancel = sub, t, c
			}
		}
		if next == nil {
			return n, nil
		}
		if n >= maxDuePerAdvance {
			return n, fmt.Errorf("billingtest: AdvanceClock: more than %d renewals and cancellations fell due; advance by less at a time", maxDuePerAdvance)
		}
		s.log.at = at
		if cancel {
			s.endSubLocked(next, at, origin{})
		} else {
			s.renewLocked(next, at)
		}
	}
}

// renewLocked starts sub's next period at its current period's end (a
// trial's end included).
func (s *Stripe) renewLocked(sub *SubscriptionSpec, at time.Time) {
	old := sub.object()
	if sub.Status == "trialing" {
		sub.Status = "active"
	}
	sub.CurrentPeriodStart = sub.CurrentPeriodEnd
	sub.CurrentPeriodEnd = sub.CurrentPeriodStart.Add(period(sub.Interval, sub.IntervalCount))
	inv := s.newInvoiceLocked(sub, "subscription_cycle", at)
	s.emitChangeLocked("customer.subscription.updated", old, sub.object(), origin{})
	s.invoiceEventsLocked(inv, origin{})
	s.entitlementsChangedLocked(sub.Customer, origin{})
}

// GET /emulator/clock and POST /emulator/clock/advance?by=DURATION
func (s *Stripe) clockHandler(w http.ResponseWriter, r *http.Request) {
	var by time.Duration
	if r.Method == http.MethodPost {
		raw := r.Form.Get("by")
		d, err := time.ParseDuration(raw)
		switch {
		case raw == "":
			writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "parameter_missing", Param: "by",
				Message: "Missing required param: by, a Go duration such as 720h or 90m."})
			return
		case err != nil || d < 0:
			writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "parameter_invalid_string", Param: "by",
				Message: fmt.Sprintf("Invalid by %q: a non-negative Go duration such as 720h or 90m.", raw)})
			return
		}
		by = d
		if err := s.AdvanceClock(r.Context(), d); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusServiceUnavailable
			}
			writeError(w, status, apiError{Type: "api_error", Message: err.Error()})
			return
		}
	}
	now := s.Now()
	writeJSON(w, http.StatusOK, map[string]any{"object": "emulator.clock", "now": now.Unix(),
		"now_rfc3339": now.UTC().Format(time.RFC3339), "advanced_by": by.String()})
}
