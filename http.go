package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// SuccessMessage is the "message" of a created portal session.
const SuccessMessage = "Portal session created successfully"

// sessionReply is the body of a 200 reply.
type sessionReply struct {
	URL     string `json:"url"`
	Message string `json:"message"`
}

// errorReply is the body of every error reply.
type errorReply struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// setHeaders sets the headers every reply carries: the portal URL is a
// short-lived bearer credential, so nothing may cache the reply or leak it
// through a Referer.
func setHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// WriteError writes e as the contract's JSON error reply
// {"error": e.Code, "message": e.Message}, with the headers of every reply
// and, for 405, "Allow: POST". It never writes e's cause.
func WriteError(w http.ResponseWriter, _ *http.Request, e *Error) {
	setHeaders(w.Header())
	if e.Status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(errorReply{Error: e.Code, Message: e.Message})
}

// Handler returns the http.Handler of POST /api/subscription/create-portal-session
// (mount it at any path; it does not look at the path). auth tells who
// sends each request; it panics if auth is nil, a programming mistake.
//
// Checks, in order, each answered in the contract's JSON: method (405),
// cross-origin (403), authentication (401), body (400, 413), user (401),
// plan (403), customer (404), then the Stripe call (200 or 404/500). A
// rejected request makes no Stripe call.
//
// The optional body is JSON of [SessionOptions]:
//
//	{"return_url": "https://app.example.com/billing", "locale": "de",
//	 "flow": {"type": "subscription_cancel", "retention_coupon": "SAVE20"}}
func (s *PortalService) Handler(auth Authenticator) http.Handler {
	if auth == nil {
		panic("billing: PortalService.Handler: nil Authenticator")
	}
	return &portalHandler{s: s, auth: auth}
}

type portalHandler struct {
	s    *PortalService
	auth Authenticator
}

func (h *portalHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s := h.s
	var (
		userID string
		reason string // why a request was refused, for the log
		sess   *Session
		err    *Error
	)
	switch {
	case r.Method != http.MethodPost:
		err, reason = ErrMethodNotAllowed, "method"
	case s.cop.Check(r) != nil:
		err, reason = ErrCrossOrigin, "cross_origin"
	default:
		var aerr error
		userID, aerr = h.auth.Authenticate(r)
		if aerr != nil || userID == "" {
			err, reason = ErrUnauthorized, authReason(aerr)
			userID = ""
			break
		}
		var opts SessionOptions
		if err = s.readOptions(w, r, &opts); err != nil {
			reason = "body"
			break
		}
		var cerr error
		sess, cerr = s.CreateSession(r.Context(), userID, opts)
		if cerr != nil {
			err = asError(cerr)
			reason = sessionReason(err)
		}
	}

	if err != nil {
		s.cfg.WriteError(w, r, err)
	} else {
		setHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(sessionReply{URL: sess.URL, Message: SuccessMessage})
	}
	s.logRequest(r, userID, reason, sess, err, time.Since(start))
}

// readOptions decodes the optional JSON body into opts. An empty body is no
// options.
func (s *PortalService) readOptions(w http.ResponseWriter, r *http.Request, opts *SessionOptions) *Error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ErrTooLarge
		}
		return badRequest("request body could not be read")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return badRequest("request body must be JSON (Content-Type: application/json)")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(opts); err != nil {
		return badRequest("request body is not valid JSON of return_url, locale and flow")
	}
	if dec.More() {
		return badRequest("request body must be a single JSON object")
	}
	return nil
}

// outcome names an error for logs and observations.
func outcome(e *Error) string {
	if e == nil {
		return "created"
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		if errors.Is(e, ErrNotPaid) && e.Message == ErrNotPaid.Message {
			return "not_paid"
		}
		return "cross_origin"
	case http.StatusNotFound:
		return "customer_not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	}
	return "error"
}

func (s *PortalService) logRequest(r *http.Request, userID, reason string, sess *Session, e *Error, d time.Duration) {
	status, reqID := http.StatusOK, ""
	if sess != nil {
		reqID = sess.StripeRequestID
	}
	if e != nil {
		status = e.Status
		reqID = e.StripeRequestID
	}
	o := outcome(e)
	if s.cfg.Observer != nil {
		s.cfg.Observer.Observe(r.Context(), Observation{Op: "portal", Outcome: o, Status: status, Latency: d, UserID: userID, StripeRequestID: reqID})
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("outcome", o),
		slog.Int("status", status),
		slog.Duration("latency", d),
	}
	if userID != "" {
		attrs = append(attrs, slog.String("user_id", userID))
	}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	if reqID != "" {
		attrs = append(attrs, slog.String("stripe_request_id", reqID))
	}
	if e != nil && e.Status == http.StatusBadRequest {
		// Which input was refused: the reply's message, a fixed text that
		// never quotes the input.
		attrs = append(attrs, slog.String("detail", e.Message))
	}
	if e != nil && e.Err != nil && (status >= 500 || isStripeError(e.Err)) {
		attrs = append(attrs, slog.String("cause", causeKind(e.Err)))
	}
	s.log.LogAttrs(r.Context(), level, "billing: portal request", attrs...)
}

// sessionReason names, for the log, why CreateSession refused a request
// that passed authentication; "" when the status and cause say it.
func sessionReason(e *Error) string {
	switch {
	case errors.Is(e, ErrUnauthorized):
		return "unknown_user"
	case errors.Is(e, ErrCustomerNotFound) && !isStripeError(e.Err):
		return "no_customer"
	case errors.Is(e, ErrBadRequest):
		return "options"
	}
	return ""
}

// isStripeError reports whether err holds an error answered by Stripe.
func isStripeError(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se)
}

// causeKind describes an error for logs without its text, which may hold
// Stripe's message (it can echo parameters) or a driver's.
func causeKind(err error) string {
	var se *stripe.Error
	var op *opError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("stripe type=%s code=%s http_status=%d", se.Type, se.Code, se.HTTPStatusCode)
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &op):
		return op.op + " failed"
	}
	return "internal"
}

// opError names the operation that failed, so that logs can say which
// without the error's own text.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
