package billing

import "time"

// SetWebhookClock replaces the clock of h, for tests of the tolerance.
func SetWebhookClock(h *WebhookHandler, now func() time.Time) { h.now = now }

// SetReturnSyncClock replaces the clock of h, for tests of the read time.
func SetReturnSyncClock(h *ReturnSync, now func() time.Time) { h.now = now }
