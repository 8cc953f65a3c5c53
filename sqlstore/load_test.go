package sqlstore_test

import (
	"net/http"
	"testing"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest/storetest"
)

// TestLoad runs storetest.RunLoad on PostgreSQL and SQLite: 100
// goroutines x 100 requests on the portal endpoint and 100 x 100 webhook
// deliveries at once, on one store, with exact outcome accounting and the
// final plans checked (the MemoryStore runs it in the root module). Under
// -short: 20 x 20 each. SQLite under -race: 100 x 25 each, since the race
// detector instruments the whole of the pure-Go SQLite (modernc.org/sqlite)
// and 100 x 100 then takes about 40 s on 2 cores; the concurrency is the
// same, and 100 x 100 runs without -race.
func TestLoad(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t, e.database(t))
			// As an app would: a bounded pool (database/sql's default is
			// unbounded, 200 goroutines would open 200 connections).
			db.SetMaxOpenConns(map[string]int{"postgres": 16, "sqlite": 4}[e.name])
			db.SetMaxIdleConns(16)
			h := storetest.Harness{New: func(t *testing.T, users []billing.User) storetest.Store {
				return newStore(t, db, e.dialect, users)
			}}
			var cfg storetest.LoadConfig
			switch {
			case testing.Short():
				cfg.Workers, cfg.Requests = 20, 20
			case raceDetector && e.name == "sqlite":
				cfg.Requests = 25
			}
			st := storetest.RunLoad(t, h, cfg)
			t.Logf("%s: portal %v, webhook %v (%d distinct events) in %v", e.name, st.Portal, st.Webhook, st.Events, st.Elapsed)
			if st.Portal[http.StatusOK] == 0 || st.Webhook["applied"] == 0 || st.Webhook["duplicate"] == 0 {
				t.Errorf("the load exercised too little: %v %v", st.Portal, st.Webhook)
			}
		})
	}
}
