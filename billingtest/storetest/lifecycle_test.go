package storetest_test

import (
	"testing"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest/storetest"
)

// TestMemoryStoreLifecycle runs the lifecycle contract on the MemoryStore.
func TestMemoryStoreLifecycle(t *testing.T) {
	storetest.RunLifecycle(t, storetest.Harness{
		New: func(t *testing.T, users []billing.User) storetest.Store {
			return billing.NewMemoryStore(users...)
		},
	})
}
