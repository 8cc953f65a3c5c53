package billingtest_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/contafy/billing/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, goroutinesBackToBaseline)
}

// baseline holds the goroutines alive before any test ran (package
// variables are initialized before TestMain).
var baseline = goroutineStacks()

// goroutineStacks returns the stack of every goroutine but the caller's, by
// goroutine id.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // the caller
		}
		head, _, _ := strings.Cut(string(g), " [")
		out[head] = string(g)
	}
	return out
}

// goroutinesBackToBaseline is the package's goroutine-leak check, run by
// TestMain after the tests: every goroutine the tests started (the
// emulators' servers, webhook deliveries, clients' connections) must have
// ended. It polls for up to 10 s, since a closed server's connections wind
// down asynchronously.
func goroutinesBackToBaseline() error {
	var left map[string]string
	for deadline := time.Now().Add(10 * time.Second); ; {
		left = goroutineStacks()
		for id := range baseline {
			delete(left, id)
		}
		for id, stack := range left {
			if strings.Contains(stack, "os/signal.signal_recv") {
				delete(left, id) // started once per process by go test
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d goroutines started by the tests are still running:\n", len(left))
	for _, s := range left {
		b.WriteString(s)
		b.WriteString("\n\n")
	}
	return fmt.Errorf("%s", b.String())
}
