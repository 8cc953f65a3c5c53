package billing

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// record is what one request to an endpoint did: the facts of its log
// record and of its [Observation]. The three endpoints fill one in and call
// emit, so that their records and observations have the same fields,
// levels and rules for what may be logged.
type record struct {
	op        Op
	outcome   Outcome
	status    int // the reply's status; 0 means the error's, or 200
	start     time.Time
	userID    string
	eventType string
	reqID     string // Stripe's request id, when Stripe was called
	reason    string // why a request was refused or failed, a fixed word
	warn      string // a warning: raises the level to Warn
	detail    string // which input a 400 refused: a fixed text, never the input
	alarm     bool   // a misconfiguration: raises the level to Error
	err       *Error // the error answered or met, if any
	// attrs adds the op's own attributes (after outcome, status and
	// latency); called only when the record is logged.
	attrs func(add func(slog.Attr))
}

// emit sends r to obs (if any) and to log, as one record with message msg:
// at Error for a 5xx, a Failed outcome or an alarm, at Warn with a
// warning, else at Info. Only fixed words, ids and counts are logged: the
// cause of r.err is reduced to its kind ([causeKind]) and only logged for a
// failure or a Stripe error.
func (r *record) emit(ctx context.Context, log *slog.Logger, obs Observer, msg string) {
	if r.err != nil && r.reqID == "" {
		r.reqID = r.err.StripeRequestID
	}
	if r.status == 0 { // the reply's status, unless the handler said otherwise
		r.status = http.StatusOK
		if r.err != nil {
			r.status = r.err.Status
		}
	}
	level := slog.LevelInfo
	switch {
	case r.status >= 500 || r.outcome == Failed || r.alarm:
		level = slog.LevelError
	case r.warn != "":
		level = slog.LevelWarn
	}
	logged := log.Enabled(ctx, level)
	if obs == nil && !logged {
		return // nothing to build: no clock read, no attributes
	}
	d := time.Since(r.start)
	if obs != nil {
		obs.Observe(ctx, Observation{Op: r.op, Outcome: r.outcome, Status: r.status, Latency: d,
			UserID: r.userID, EventType: r.eventType, StripeRequestID: r.reqID})
	}
	if !logged {
		return
	}
	var buf [16]slog.Attr
	attrs := append(buf[:0],
		slog.String("outcome", string(r.outcome)),
		slog.Int("status", r.status),
		slog.Duration("latency", d))
	add := func(a slog.Attr) { attrs = append(attrs, a) }
	str := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	if r.attrs != nil {
		r.attrs(add)
	}
	str("user_id", r.userID)
	str("reason", r.reason)
	str("stripe_request_id", r.reqID)
	str("warning", r.warn)
	str("detail", r.detail)
	if r.err != nil {
		if r.err.Err != nil && (r.status >= 500 || r.outcome == Failed || isStripeError(r.err.Err)) {
			str("cause", causeKind(r.err.Err))
		}
	}
	log.LogAttrs(ctx, level, msg, attrs...)
}

// orDiscard returns l, or a logger that discards everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
