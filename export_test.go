package billing

import (
	"context"
	"time"
)

// SetWebhookClock replaces the clock of h, for tests of the tolerance.
func SetWebhookClock(h *WebhookHandler, now func() time.Time) { h.now = now }

// SetReturnSyncClock replaces the clock of h, for tests of the read time.
func SetReturnSyncClock(h *ReturnSync, now func() time.Time) { h.now = now }

// SetWebhookSleep replaces how h waits for the next second before a read.
func SetWebhookSleep(h *WebhookHandler, sleep func(ctx context.Context, d time.Duration) error) {
	h.sleep = sleep
}

// Copies of an *Error as the package makes them, for the identity tests.
func WithCause(e *Error, cause error) *Error  { return e.with(cause) }
func WithMessage(e *Error, msg string) *Error { return e.withMessage(msg) }
