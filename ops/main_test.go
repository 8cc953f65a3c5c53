package ops_test

import (
	"testing"

	"github.com/contafy/billing/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.LeakCheck())
}
