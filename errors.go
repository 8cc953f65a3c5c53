package billing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/stripe/stripe-go/v76"
)

// Error is the one error type of the package. It carries the HTTP status, the
// short error word and the message of the JSON reply that the handlers write
// for it ({"error": Code, "message": Message}), and wraps the cause.
//
// Compare with the sentinels through [errors.Is]: each sentinel is its own
// identity, kept by every copy the package makes of it (with another cause,
// Stripe request id or 400 message), so errors.Is(err, ErrCustomerNotFound)
// holds for every "Stripe customer not found" and for nothing else, even
// where two sentinels share a status (ErrNotPaid and ErrCrossOrigin are both
// 403). An *Error built outside the package is its own identity. Use
// [errors.As] to reach the Stripe request id or the cause.
//
// The cause is for logs only: the handlers never write it into a reply body.
type Error struct {
	// Status is the HTTP status code of the reply, for example 404.
	Status int
	// Code is the "error" word of the reply, for example "Not Found".
	Code string
	// Message is the "message" of the reply. It is safe to show to the user:
	// it never holds a secret, a token, a URL or Stripe's error text.
	Message string
	// StripeRequestID is Stripe's request id (req_...) when Stripe answered,
	// for the log line that lets Stripe support find the request.
	StripeRequestID string
	// Err is the underlying cause, if any. It may hold Stripe's error text
	// and is never written to a reply.
	Err error

	// sentinel is the sentinel e was copied from; nil for a sentinel (or
	// an *Error built outside the package), which is its own identity.
	sentinel *Error
}

// Error returns "billing: " followed by the message and, if any, the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return "billing: " + e.Message + ": " + e.Err.Error()
	}
	return "billing: " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the same sentinel as e: target is e itself,
// the sentinel e was copied from, or another copy of that sentinel.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.identity() == e.identity()
}

// identity is the sentinel e stands for.
func (e *Error) identity() *Error {
	if e.sentinel != nil {
		return e.sentinel
	}
	return e
}

// with returns a copy of e, of the same identity, that wraps cause.
func (e *Error) with(cause error) *Error {
	c := *e
	c.Err = cause
	c.sentinel = e.identity()
	return &c
}

// withMessage returns a copy of e, of the same identity, with another
// user-facing message: for 400 replies, whose message says which input was
// rejected, and for the 405 of a GET endpoint.
func (e *Error) withMessage(msg string) *Error {
	c := *e
	c.Message = msg
	c.sentinel = e.identity()
	return &c
}

// The outcomes of the portal endpoint, one sentinel per row of the
// contract. The first four are the rows of the documented contract; the
// others are the replies the handlers add for malformed requests, and the
// 500s of the webhook handler and the return sync, whose messages say what
// failed.
var (
	// ErrUnauthorized: no access_token cookie, a bad or expired token, or a
	// user id that the store does not know (401).
	ErrUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "Unauthorized", Message: "Authentication required"}
	// ErrNotPaid: the user's plan is not BASIC or PRO (403).
	ErrNotPaid = &Error{Status: http.StatusForbidden, Code: "Forbidden", Message: "Customer portal is only available for paid subscriptions"}
	// ErrCustomerNotFound: the paid user has no Stripe customer id, or Stripe
	// answered resource_missing for it (404).
	ErrCustomerNotFound = &Error{Status: http.StatusNotFound, Code: "Not Found", Message: "Stripe customer not found"}
	// ErrInternal: the store or Stripe failed, or timed out (500).
	ErrInternal = &Error{Status: http.StatusInternalServerError, Code: "Internal Server Error", Message: "Failed to create portal session"}

	// ErrCrossOrigin: a cross-origin browser request, refused before any
	// store or Stripe work (403, "Forbidden").
	ErrCrossOrigin = &Error{Status: http.StatusForbidden, Code: "Forbidden", Message: "Cross-origin request rejected"}
	// ErrMethodNotAllowed: any method but POST (405, with an Allow header).
	ErrMethodNotAllowed = &Error{Status: http.StatusMethodNotAllowed, Code: "Method Not Allowed", Message: "Only POST is allowed"}
	// ErrBadRequest: a malformed optional body, or a return_url, locale or
	// flow that the service does not accept (400). The message of the
	// returned error says which.
	ErrBadRequest = &Error{Status: http.StatusBadRequest, Code: "Bad Request", Message: "Invalid request body"}
	// ErrTooLarge: a body over the size cap (413).
	ErrTooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Code: "Request Entity Too Large", Message: "Request body too large"}

	// ErrWebhookFailed: the webhook handler could not apply a verified
	// event (a store failure, or a Stripe read that failed); the event is
	// not remembered, so Stripe delivers it again (500).
	ErrWebhookFailed = &Error{Status: http.StatusInternalServerError, Code: "Internal Server Error", Message: "Failed to process webhook event"}
	// ErrSyncFailed: [ReturnSync.Sync] could not read the subscriptions
	// from Stripe or apply them (500 for a caller of Sync; the return sync
	// handler still redirects).
	ErrSyncFailed = &Error{Status: http.StatusInternalServerError, Code: "Internal Server Error", Message: "Failed to sync subscriptions"}
	// ErrStatusFailed: the status endpoint could not read the user's
	// account from the store (500).
	ErrStatusFailed = &Error{Status: http.StatusInternalServerError, Code: "Internal Server Error", Message: "Failed to read subscription status"}
)

// badRequest returns ErrBadRequest with a message that says what to fix.
func badRequest(msg string) *Error { return ErrBadRequest.withMessage(msg) }

// fromStripe maps an error of a Stripe call to the contract: resource_missing
// is ErrCustomerNotFound, anything else ErrInternal. Stripe's request id is
// kept for the log; Stripe's text only lives in the wrapped cause.
func fromStripe(err error) *Error {
	var se *stripe.Error
	if errors.As(err, &se) {
		var e *Error
		if se.Code == stripe.ErrorCodeResourceMissing {
			e = ErrCustomerNotFound.with(err)
		} else {
			e = ErrInternal.with(err)
		}
		e.StripeRequestID = se.RequestID
		return e
	}
	return ErrInternal.with(&opError{"stripe_call", err})
}

// asError turns any error into an *Error: an *Error is returned as it is,
// anything else becomes ErrInternal wrapping it.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternal.with(err)
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
