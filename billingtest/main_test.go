package billingtest_test

import (
	"testing"

	"github.com/contafy/billing/internal/testenv"
)

// leakCheck: every goroutine the tests started (the emulators' servers,
// webhook deliveries, clients' connections) must have ended.
var leakCheck = testenv.LeakCheck()

func TestMain(m *testing.M) {
	testenv.Main(m, leakCheck)
}
