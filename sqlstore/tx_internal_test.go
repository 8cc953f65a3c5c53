package sqlstore

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// busyErr is an error of modernc.org/sqlite's shape for SQLITE_BUSY.
type busyErr struct{}

func (busyErr) Error() string { return "database is locked (5) (SQLITE_BUSY)" }
func (busyErr) Code() int     { return 5 }

// TestRetryManyBusy: a write refused with SQLITE_BUSY more than 64 times
// in a row (a long lock held by another process, a database opened without
// busy_timeout) is retried until it succeeds, within WithBusyTimeout; the
// backoff's growth must not overflow after 63 attempts.
func TestRetryManyBusy(t *testing.T) {
	s, err := New(&sql.DB{}, SQLite, WithBusyTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	err = s.retry(context.Background(), func() error {
		if calls++; calls <= 70 {
			return busyErr{}
		}
		return nil
	})
	if err != nil || calls != 71 {
		t.Errorf("retry = %v after %d calls; want nil after 71", err, calls)
	}
}
