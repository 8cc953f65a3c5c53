package billingtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
)

// TestResetDuringCall resets the fake while a slow call is in flight: the
// call must end without touching the forgotten record (it used to index
// past the emptied call list while holding the fake's lock, which then
// stayed locked and hung every later call).
func TestResetDuringCall(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	s.FailNext(billingtest.PathPortalSessions, 1, billingtest.Slow(200*time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := newSession(t, s.SessionClient(), billingtest.CustomerPro)
		done <- err
	}()
	if err := s.WaitCalls(context.Background(), billingtest.PathPortalSessions, 1); err != nil {
		t.Fatal(err)
	}
	s.Reset()
	if err := <-done; err != nil {
		t.Fatalf("slow call: %v", err)
	}
	if _, err := newSession(t, s.SessionClient(), billingtest.CustomerPro); err != nil {
		t.Fatalf("call after the reset: %v", err)
	}
	if n := s.CallCount(billingtest.PathPortalSessions); n != 1 {
		t.Fatalf("%d calls recorded since the reset, want 1", n)
	}
}
