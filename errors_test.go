package billing_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/contafy/billing"
	"github.com/stripe/stripe-go/v76"
)

// sentinels are every *Error sentinel of the package, by name.
var sentinels = map[string]*billing.Error{
	"ErrUnauthorized":     billing.ErrUnauthorized,
	"ErrNotPaid":          billing.ErrNotPaid,
	"ErrCustomerNotFound": billing.ErrCustomerNotFound,
	"ErrInternal":         billing.ErrInternal,
	"ErrCrossOrigin":      billing.ErrCrossOrigin,
	"ErrMethodNotAllowed": billing.ErrMethodNotAllowed,
	"ErrBadRequest":       billing.ErrBadRequest,
	"ErrTooLarge":         billing.ErrTooLarge,
	"ErrWebhookFailed":    billing.ErrWebhookFailed,
	"ErrSyncFailed":       billing.ErrSyncFailed,
}

// TestErrorIdentity: errors.Is holds for every pair of the same sentinel
// and for no pair of two different ones, whether the error is the sentinel,
// a copy the package made of it (another cause, another message) or either
// of those wrapped by fmt.Errorf; also where two sentinels share a status
// and code (ErrNotPaid and ErrCrossOrigin, both 403 Forbidden).
func TestErrorIdentity(t *testing.T) {
	forms := func(e *billing.Error) map[string]error {
		cause := billing.WithCause(e, errors.New("cause"))
		msg := billing.WithMessage(e, "another message")
		return map[string]error{
			"sentinel":       e,
			"with cause":     cause,
			"with message":   msg,
			"copy of a copy": billing.WithMessage(cause, "again"),
			"wrapped":        fmt.Errorf("op: %w", e),
			"wrapped copy":   fmt.Errorf("op: %w", cause),
		}
	}
	pairs := 0
	for an, a := range sentinels {
		for form, err := range forms(a) {
			for bn, b := range sentinels {
				pairs++
				if got, want := errors.Is(err, b), an == bn; got != want {
					t.Errorf("errors.Is(%s %s, %s) = %t, want %t", form, an, bn, got, want)
				}
			}
		}
	}
	if want := len(sentinels) * len(sentinels) * 6; pairs != want {
		t.Fatalf("checked %d pairs, want %d", pairs, want)
	}
	// Two errors built outside the package are distinct even when equal in
	// every field, and neither is a sentinel.
	x := &billing.Error{Status: 403, Code: "Forbidden", Message: billing.ErrNotPaid.Message}
	y := &billing.Error{Status: 403, Code: "Forbidden", Message: billing.ErrNotPaid.Message}
	if errors.Is(x, y) || errors.Is(x, billing.ErrNotPaid) || !errors.Is(x, x) {
		t.Fatal("an *Error built outside the package must be its own identity only")
	}
	// A copy keeps the cause reachable.
	var target *billing.Error
	if c := billing.WithCause(billing.ErrInternal, errors.ErrUnsupported); !errors.Is(c, errors.ErrUnsupported) || !errors.As(fmt.Errorf("x: %w", c), &target) || target != c {
		t.Fatal("a copy must unwrap to its cause and be reachable with errors.As")
	}
}
func TestErrorsIsAs(t *testing.T) {
	e := newEnv(t, nil)
	e.stripe.err = &stripe.Error{HTTPStatusCode: 404, Code: stripe.ErrorCodeResourceMissing, RequestID: "req_123", Msg: "No such customer"}
	_, err := e.svc.CreateSession(context.Background(), "u_pro", billing.SessionOptions{})
	if !errors.Is(err, billing.ErrCustomerNotFound) {
		t.Fatalf("err = %v, want ErrCustomerNotFound", err)
	}
	if errors.Is(err, billing.ErrInternal) {
		t.Fatal("a 404 must not match ErrInternal")
	}
	var be *billing.Error
	if !errors.As(err, &be) || be.StripeRequestID != "req_123" || be.Status != http.StatusNotFound {
		t.Fatalf("As: %#v", be)
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatal("the Stripe error must stay reachable through Unwrap")
	}
	if !strings.HasPrefix(err.Error(), "billing: ") {
		t.Fatalf("message %q lacks the billing: prefix", err)
	}
	for _, tc := range []struct {
		user string
		want error
	}{{"u_free", billing.ErrNotPaid}, {"u_ghost", billing.ErrUnauthorized}, {"", billing.ErrUnauthorized}, {"u_nocust", billing.ErrCustomerNotFound}} {
		_, err := e.svc.CreateSession(context.Background(), tc.user, billing.SessionOptions{})
		if !errors.Is(err, tc.want) {
			t.Errorf("user %q: err = %v, want %v", tc.user, err, tc.want)
		}
	}
}
