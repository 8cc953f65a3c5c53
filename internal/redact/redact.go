// Package redact names an error for a log line without its text: Stripe's
// error messages can echo what a request carried, so only Stripe's type,
// code and status, or the kind of failure, are ever logged.
package redact

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/stripe/stripe-go/v76"
)

// Cause names err: "stripe type=T code=C http_status=N" for an error
// Stripe answered, "canceled", "timeout", or else "internal".
func Cause(err error) string {
	var se *stripe.Error
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("stripe type=%s code=%s http_status=%d", se.Type, se.Code, se.HTTPStatusCode)
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "internal"
}
