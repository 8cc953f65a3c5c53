package main

import (
	"context"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/ops"
	"github.com/contafy/billing/sqlstore"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx", for -db postgres://...
	_ "modernc.org/sqlite"             // driver "sqlite", for -db FILE
)

// openStore opens the SQL store of a -db DSN, migrated, as examples/demo's
// -db opens it ([sqlstore.Open]). The returned func closes the database.
func openStore(ctx context.Context, dsn string) (*sqlstore.Store, func(), error) {
	s, db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { db.Close() }, nil
}

// storeFlags are the flags reconcile and replay share: the app's store, its
// price table and past-due rule, and how fast to read Stripe.
type storeFlags struct {
	dsn, plans *string
	pastDue    *bool
	rate       *float64
	maxBackoff *time.Duration
}

// addStoreFlags defines -db, -price-plans, -past-due-revokes-access, -rate
// and -max-backoff on f.
func addStoreFlags(f *flags) *storeFlags {
	return &storeFlags{
		dsn:        f.String("db", "", "the app's SQL store: a postgres:// `DSN` or a SQLite file path (required)"),
		plans:      f.String("price-plans", "", "the app's price table, comma-separated `LIST` of price_id=PLAN, lookup_key:KEY=PLAN or product:ID=PLAN (required)"),
		pastDue:    f.Bool("past-due-revokes-access", false, "past_due grants FREE, as the app's billing.PlanRules.PastDueRevokesAccess"),
		rate:       f.Float64("rate", ops.DefaultRatePerSecond, "at most `N` list requests per second (Stripe's test mode allows 25 reads a second)"),
		maxBackoff: f.Duration("max-backoff", 30*time.Second, "the longest wait after a rate-limited (429) page"),
	}
}

// checkDB is the usage error of a missing -db.
func (s *storeFlags) checkDB() error {
	if *s.dsn == "" {
		return usagef("-db is required (a postgres:// URL or a SQLite file path: the app's store)")
	}
	return nil
}

// rules parses -price-plans into the app's PlanRules and checks -rate.
func (s *storeFlags) rules() (billing.PlanRules, error) {
	prices, err := parsePricePlans(*s.plans)
	if err != nil {
		return billing.PlanRules{}, err
	}
	if *s.rate <= 0 {
		return billing.PlanRules{}, usagef("-rate must be positive")
	}
	return billing.PlanRules{Prices: prices, PastDueRevokesAccess: *s.pastDue}, nil
}
