package testenv

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// LeakCheck returns a check for [Main]'s after-checks: every goroutine
// started since LeakCheck was called must have ended. Call it where the
// package's goroutines are the baseline, in a package variable (package
// variables are initialized before TestMain):
//
//	var leakCheck = testenv.LeakCheck()
//	func TestMain(m *testing.M) { testenv.Main(m, leakCheck) }
//
// A goroutine may still be winding down (a closed server's connection, a
// transport's read loop), so the check polls for up to 10 s before it
// reports the stacks of the ones left. os/signal's receive loop, started
// once per process by go test's fuzzing coordinator and never ended, is
// not counted.
func LeakCheck() func() error {
	baseline := goroutineStacks()
	return func() error {
		var left map[string]string
		for deadline := time.Now().Add(10 * time.Second); ; {
			left = goroutineStacks()
			for id := range baseline {
				delete(left, id)
			}
			for id, stack := range left {
				if strings.Contains(stack, "os/signal.signal_recv") {
					delete(left, id)
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
}

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
