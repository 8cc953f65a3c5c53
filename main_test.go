package billing_test

import (
	"os"
	"testing"

	"github.com/contafy/billing/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopStripeMock()
	os.Exit(code)
}
