package sqlstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/contafy/billing"
)

// This file is the store side of the plan-change hook: the outbox table
// that ApplySubscription, ApplyFeatures and LinkCustomer write in their
// transactions, and the claims of a billing.Notifier on it.

// ClaimChanges implements [billing.Outbox]: in one statement it claims up
// to max changes until now+lease (the database's now() on PostgreSQL, the
// store's clock on SQLite): for each user only the oldest pending change
// (the lowest change number: changes of one user are numbered in commit
// order, since every write recording one holds the user's row lock), and
// only when it is due and under no live claim. On PostgreSQL the rows are
// taken FOR UPDATE SKIP LOCKED, so that replicas claiming at once never get
// the same change and never wait for each other; on SQLite the claim holds
// the write lock. The changes are returned in commit order.
func (s *Store) ClaimChanges(ctx context.Context, max int, lease time.Duration) ([]billing.ClaimedChange, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	token := "clm_" + rand.Text()
	var out []billing.ClaimedChange
	err := s.retry(ctx, func() error {
		return s.outboxWrite(ctx, func(q querier) error {
			out = out[:0]
			rows, err := q.QueryContext(ctx, s.q.claimChanges, s.clockArgs(token, lease.Milliseconds(), max)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				c, err := scanChange(rows)
				if err != nil {
					return err
				}
				out = append(out, billing.ClaimedChange{PlanChange: c.PlanChange, Token: token, Attempt: c.attempts})
			}
			return rows.Err()
		})
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: claim plan changes: %w", err)
	}
	slices.SortFunc(out, func(a, b billing.ClaimedChange) int { return compareIDs(a.ID, b.ID) })
	return out, nil
}

// CompleteChange implements [billing.Outbox]: it deletes the change if c
// still holds its claim, which makes the user's next change claimable. A
// claim that is no longer c's is not an error: nothing happens.
func (s *Store) CompleteChange(ctx context.Context, c billing.ClaimedChange) error {
	seq, err := changeSeq(c.ID)
	if err != nil {
		return fmt.Errorf("sqlstore: complete plan change: %w", err)
	}
	err = s.retry(ctx, func() error {
		return s.outboxWrite(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, s.q.completeChange, seq, c.Token)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("sqlstore: complete plan change %s: %w", c.ID, err)
	}
	return nil
}

// ReleaseChange implements [billing.Outbox]: if c still holds its claim,
// the change is unclaimed and due again after the wait (on the database's
// clock on PostgreSQL, the store's on SQLite). A claim that is no longer
// c's is not an error: nothing happens.
func (s *Store) ReleaseChange(ctx context.Context, c billing.ClaimedChange, after time.Duration) error {
	seq, err := changeSeq(c.ID)
	if err != nil {
		return fmt.Errorf("sqlstore: release plan change: %w", err)
	}
	err = s.retry(ctx, func() error {
		return s.outboxWrite(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, s.q.releaseChange, s.clockArgs(max(after, 0).Milliseconds(), seq, c.Token)...)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("sqlstore: release plan change %s: %w", c.ID, err)
	}
	return nil
}

// PendingChanges returns the recorded plan changes not yet delivered
// (completed), claimed or not, in commit order, for tests and diagnostics.
func (s *Store) PendingChanges(ctx context.Context) ([]billing.PlanChange, error) {
	var out []billing.PlanChange
	err := s.retry(ctx, func() error {
		out = out[:0]
		rows, err := s.reader(ctx).QueryContext(ctx, s.q.pending)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanChange(rows)
			if err != nil {
				return err
			}
			out = append(out, c.PlanChange)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read pending plan changes: %w", err)
	}
	return out, nil
}

// outboxWrite runs one outbox statement: on PostgreSQL on its own (one
// statement is one transaction), on SQLite inside the store's writing
// transaction, queued behind the other writers.
func (s *Store) outboxWrite(ctx context.Context, f func(q querier) error) error {
	if s.dialect == Postgres {
		return f(s.db)
	}
	return s.inTx(ctx, nil, func(q querier, _ int64) ([]stmt, bool, error) {
		err := f(q)
		return nil, err == nil, err
	})
}

// clockArgs returns the arguments of an outbox statement that starts with
// the clock clause: on SQLite the store's time comes first.
func (s *Store) clockArgs(args ...any) []any {
	if s.dialect == SQLite {
		return append([]any{s.cfg.now().UnixMilli()}, args...)
	}
	return args
}

// storedChange is a row of the outbox.
type storedChange struct {
	billing.PlanChange
	attempts int
}

// scanChange reads an outbox row of the columns change_seq, user_id,
// before_view, after_view, cause, committed_at, attempts.
func scanChange(row interface{ Scan(...any) error }) (storedChange, error) {
	var (
		seq, at               int64
		c                     storedChange
		before, after, causeV string
	)
	if err := row.Scan(&seq, &c.UserID, &before, &after, &causeV, &at, &c.attempts); err != nil {
		return storedChange{}, err
	}
	c.ID = changeID(seq)
	c.At = time.UnixMilli(at).UTC()
	var err error
	if c.Before, err = decodeView(before); err != nil {
		return storedChange{}, fmt.Errorf("change %s: before_view: %w", c.ID, err)
	}
	if c.After, err = decodeView(after); err != nil {
		return storedChange{}, fmt.Errorf("change %s: after_view: %w", c.ID, err)
	}
	if c.Cause, err = decodeCause(causeV); err != nil {
		return storedChange{}, fmt.Errorf("change %s: cause: %w", c.ID, err)
	}
	return c, nil
}

// changeID is the id of the change numbered seq: "chg_" and the number.
func changeID(seq int64) string { return "chg_" + strconv.FormatInt(seq, 10) }

// changeSeq is the number of a change id.
func changeSeq(id string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(id, "chg_"), 10, 64)
	if err != nil || !strings.HasPrefix(id, "chg_") {
		return 0, fmt.Errorf("%q is not a change id of this store (chg_ and a number): pass the ClaimedChange that ClaimChanges returned", id)
	}
	return n, nil
}

// compareIDs orders change ids by their numbers.
func compareIDs(a, b string) int {
	x, _ := changeSeq(a)
	y, _ := changeSeq(b)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
