package testenv

import (
	"os"
	"testing"
)

// unavailable skips t with msg, or fails it when CI=true: in CI a missing
// server is a broken setup, not a reason to pass.
func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}
