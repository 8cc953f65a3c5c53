package storetest_test

import (
	"strings"
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

func TestPropertyStatsExercised(t *testing.T) {
	full := storetest.PropertyStats{Events: 100, Duplicates: 20, StripeReads: 1, Retries: 1, Reads: 10, ReadsApplied: 3,
		Outcomes: map[string]int{"duplicate": 1, "stale": 1, "linked": 1}}
	if err := full.Exercised(); err != nil {
		t.Errorf("a full run: %v", err)
	}
	for name, mut := range map[string]func(*storetest.PropertyStats){
		"few duplicates":  func(s *storetest.PropertyStats) { s.Duplicates = 9 },
		"no link":         func(s *storetest.PropertyStats) { s.Outcomes = map[string]int{"duplicate": 1, "stale": 1} },
		"no tie read":     func(s *storetest.PropertyStats) { s.StripeReads = 0 },
		"no retry":        func(s *storetest.PropertyStats) { s.Retries = 0 },
		"all reads stale": func(s *storetest.PropertyStats) { s.ReadsApplied = 0 },
		"all reads fresh": func(s *storetest.PropertyStats) { s.ReadsApplied = s.Reads },
	} {
		s := full
		mut(&s)
		if err := s.Exercised(); err == nil || !strings.HasPrefix(err.Error(), "storetest: ") {
			t.Errorf("%s: Exercised() = %v, want an error", name, err)
		}
	}
}
