package testenv

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

var (
	mainRunning atomic.Bool
	exitMu      sync.Mutex
	exitFuncs   []func()
)

// Main runs the tests of m, then stops the servers the tests started (the
// PostgreSQL cluster of [Postgres], stripe-mock), then runs the after
// checks (for example a goroutine-leak check), then exits with the tests'
// exit code, or 1 if a check failed. A test package that calls [Postgres]
// must use it as TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M, after ...func() error) {
	mainRunning.Store(true)
	code := m.Run()
	exitMu.Lock()
	fs := exitFuncs
	exitFuncs = nil
	exitMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	StopStripeMock()
	for _, check := range after {
		if err := check(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL after the tests: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// requireMain fails t unless the test binary runs through [Main], since a
// server started without it would outlive the tests.
func requireMain(t testing.TB) {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("testenv: this test starts a server that must be stopped when the tests end; " +
			"add `func TestMain(m *testing.M) { testenv.Main(m) }` to the test package")
	}
}

// atExit registers f to run when [Main] ends, after the tests.
func atExit(f func()) {
	exitMu.Lock()
	defer exitMu.Unlock()
	exitFuncs = append(exitFuncs, f)
}
