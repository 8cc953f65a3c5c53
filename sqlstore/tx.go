package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"strings"
	"time"
)

// querier is what the statements of a transaction run on: a *sql.Tx
// (PostgreSQL) or a *sql.Conn inside BEGIN IMMEDIATE (SQLite).
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// errRetry asks [Store.retry] to run the transaction again (a row another
// writer created between two of our statements).
var errRetry = errors.New("sqlstore: concurrent insert, retry")

// inTx runs fn in one transaction of the dialect's locking rule and commits
// if fn returns commit=true and a nil error, else rolls back.
//
// ctx cuts the statements short, but not the COMMIT: once fn is done and
// ctx still live, the commit runs to its end, so that a cancelation
// arriving meanwhile cannot leave the caller with an error for a write that
// the database did make. (BeginTx ties the transaction's COMMIT to its
// context, hence the transaction runs on a context without cancelation and
// only fn's statements on ctx.)
func (s *Store) inTx(ctx context.Context, fn func(q querier) (commit bool, err error)) error {
	if s.dialect == SQLite {
		return s.inImmediateTx(ctx, fn)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(context.WithoutCancel(ctx), &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	commit, err := fn(tx)
	if err == nil && commit {
		if err = ctx.Err(); err == nil {
			return tx.Commit()
		}
	}
	if rerr := tx.Rollback(); rerr != nil && err == nil && !errors.Is(rerr, sql.ErrTxDone) {
		err = rerr
	}
	return err
}

// inImmediateTx runs fn between BEGIN IMMEDIATE and COMMIT on one
// connection: SQLite's write lock is taken before the first read, so the
// decisions fn takes on its reads hold until the commit. (database/sql's
// BeginTx would start a DEFERRED transaction, whose read-then-write can
// fail with SQLITE_BUSY halfway through.)
func (s *Store) inImmediateTx(ctx context.Context, fn func(q querier) (bool, error)) error {
	// SQLite has one writer at a time: queue this Store's writers here
	// rather than have them poll the database lock.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	commit := false
	if err == nil {
		commit, err = fn(conn)
	}
	if err == nil && commit {
		if err = ctx.Err(); err == nil {
			// Not cut short by ctx: see inTx.
			if _, err = conn.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err == nil {
				return nil
			}
		}
	}
	// Roll back even if ctx is done, and even if BEGIN failed (it may
	// have begun before it saw ctx canceled): the connection goes back to
	// the pool.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, rerr := conn.ExecContext(rctx, "ROLLBACK"); rerr != nil && !strings.Contains(rerr.Error(), "no transaction is active") {
		// The connection's state is unknown: make the pool drop it.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		if err == nil {
			err = rerr
		}
	}
	return err
}

// retry runs f until it succeeds, fails for a reason a retry cannot fix,
// or the retries are used up: deadlocks and serialization failures at most
// WithRetries times, SQLITE_BUSY until WithBusyTimeout has passed. It
// sleeps a short random backoff between attempts.
func (s *Store) retry(ctx context.Context, f func() error) error {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		busy := s.busy(err)
		if !busy && !errors.Is(err, errRetry) && !s.conflict(err) {
			return err
		}
		if busy {
			if time.Since(start) > s.cfg.busyTimeout {
				return err
			}
		} else if attempt >= s.cfg.retries {
			return err
		}
		// 1 ms, then up to 2, 4, ... 50 ms (the shift is capped: a long
		// SQLITE_BUSY makes many attempts).
		backoff := time.Duration(1+rand.Int64N(int64(min(1<<min(attempt, 6), 50)))) * time.Millisecond
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// conflict reports whether err is a PostgreSQL deadlock or serialization
// failure (any driver whose errors have an SQLState method: pgx, lib/pq).
func (s *Store) conflict(err error) bool {
	if s.dialect != Postgres {
		return false
	}
	var e interface{ SQLState() string }
	if errors.As(err, &e) {
		switch e.SQLState() {
		case "40001", "40P01":
			return true
		}
	}
	return false
}

// busy reports whether err is SQLite's "database is locked" (SQLITE_BUSY
// or SQLITE_LOCKED): through a Code method (modernc.org/sqlite) or the
// message (other drivers).
func (s *Store) busy(err error) bool {
	if s.dialect != SQLite {
		return false
	}
	var e interface{ Code() int }
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database table is locked")
}
