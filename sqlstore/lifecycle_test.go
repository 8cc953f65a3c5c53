package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest/storetest"
	"github.com/contafy/billing/sqlstore"
)

// TestLifecycle runs the lifecycle contract (facts, features, accounts,
// the outbox and its claims across replicas) on PostgreSQL and SQLite.
func TestLifecycle(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			storetest.RunLifecycle(t, e.harness(t))
		})
	}
}

// TestAccountIntegerUserIDs reads accounts and records plan changes with
// the users in an application's table keyed by a BIGINT, without a
// subscription column: the account's subscription is the derived one, the
// change's user id the key as text, and an id that is no integer an
// unknown user.
func TestAccountIntegerUserIDs(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t, e.database(t))
			if _, err := db.Exec(`CREATE TABLE accounts (id BIGINT PRIMARY KEY, plan TEXT NOT NULL DEFAULT 'FREE', customer TEXT)`); err != nil {
				t.Fatal(err)
			}
			s := newStore(t, db, e.dialect, []billing.User{{ID: "42", Plan: billing.Free, StripeCustomerID: "cus_42"}},
				sqlstore.WithUsersTable(sqlstore.UsersTable{Name: "accounts", ID: "id", Plan: "plan", CustomerID: "customer"}))
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Error(err)
				}
			})
			sub := billing.Subscription{ID: "sub_1", CustomerID: "cus_42", Status: "active", Plan: billing.Pro, CurrentPeriodEnd: time.Unix(1_702_000_000, 0).UTC()}
			if out, err := s.ApplySubscription(ctx, billing.SubscriptionChange{EventID: "evt_1", Subscription: sub, Created: time.Unix(1_700_000_000, 0), Seq: 2}, time.Hour); err != nil || out != billing.Applied {
				t.Fatalf("ApplySubscription = %v, %v", out, err)
			}
			a, found, err := s.Account(ctx, "42")
			if err != nil || !found || a.User.Plan != billing.Pro || a.User.SubscriptionID != "" || a.Subscription == nil || a.Subscription.ID != "sub_1" {
				t.Errorf("Account(42) = %+v, %v, %v; want PRO from sub_1 (no subscription column)", a, found, err)
			}
			if v := a.View(); !v.RenewsAt.Equal(sub.CurrentPeriodEnd) {
				t.Errorf("Account(42).View().RenewsAt = %v, want %v", v.RenewsAt, sub.CurrentPeriodEnd)
			}
			for _, id := range []string{"abc", "7"} {
				if a, found, err := s.Account(ctx, id); err != nil || found {
					t.Errorf("Account(%s) = %+v, %v, %v; want not found, nil error", id, a, found, err)
				}
			}
			pending, err := s.PendingChanges(ctx)
			if err != nil || len(pending) != 1 || pending[0].UserID != "42" || pending[0].After.Plan != billing.Pro {
				t.Errorf("PendingChanges = %+v, %v; want user 42's change to PRO", pending, err)
			}
		})
	}
}
