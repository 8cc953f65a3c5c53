package storetest_test

import (
	"testing"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, users []billing.User) storetest.Store {
			return billing.NewMemoryStore(users...)
		},
	})
}
