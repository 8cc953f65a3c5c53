package sqlstore_test

import (
	"testing"

	"github.com/contafy/billing/internal/testenv"
)

// TestMain stops the throwaway PostgreSQL cluster when the tests end.
func TestMain(m *testing.M) { testenv.Main(m) }
