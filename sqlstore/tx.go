package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// querier is what the statements of a transaction run on: a *sql.Conn
// inside BEGIN (PostgreSQL), a [sqliteQ] (SQLite), or the pool for reads.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// stmt is one statement of a transaction and its arguments, with ?
// placeholders, numbered for PostgreSQL when it runs (a statement without
// ? is taken as it is).
type stmt struct {
	query string
	args  []any
}

// errRetry asks [Store.retry] to run the transaction again (a row another
// writer created between two of our statements).
var errRetry = errors.New("sqlstore: concurrent insert, retry")

// inTx runs one writing transaction under the dialect's locking rule:
//
//   - first, if not nil, is the transaction's first statement (a write:
//     the claim of an event id, or a lock); fn is handed the number of rows
//     it returned or affected;
//   - fn runs the statements in between on q, takes the decisions, and
//     returns the final writes and whether to commit;
//   - on commit, the final writes run and the transaction commits; else it
//     rolls back.
//
// On PostgreSQL each statement is one round trip (prepared once per
// connection by the driver): the apply path's transaction is five, BEGIN,
// the claim with the lock, the read, the writes in one statement
// ([combine]) and COMMIT. On SQLite (in process, no round trips) the
// statements run as statements prepared once per connection
// ([Store.prepare]), and the transaction takes the database's write lock
// with its first statement, before any read (first, or else a write that
// changes nothing: what BEGIN IMMEDIATE does, but inside a database/sql
// transaction, which the prepared statements need).
//
// ctx cuts the statements short, but not the COMMIT: once the statements
// are done and ctx still live, the commit runs to its end, so that a
// cancelation arriving meanwhile cannot leave the caller with an error for
// a write that the database did make. (BeginTx ties the transaction's end
// to its context, hence the transaction runs on a context without
// cancelation and only the statements on ctx.)
func (s *Store) inTx(ctx context.Context, first *stmt, fn func(q querier, firstRows int64) (final []stmt, commit bool, err error)) error {
	if s.dialect == SQLite {
		return s.sqliteTx(ctx, first, fn)
	}
	tx, err := s.db.BeginTx(context.WithoutCancel(ctx), &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	var n int64
	if first != nil {
		n, err = countRows(tx.QueryContext(ctx, s.pgQuery(*first), first.args...))
	}
	return s.finish(ctx, tx, tx, n, err, fn)
}

// finish runs fn and the final writes on q, then commits or rolls back tx.
func (s *Store) finish(ctx context.Context, tx *sql.Tx, q querier, n int64, err error, fn func(querier, int64) ([]stmt, bool, error)) error {
	var (
		final  []stmt
		commit bool
	)
	if err == nil {
		final, commit, err = fn(q, n)
	}
	if err == nil && commit {
		for _, st := range final {
			if _, err = s.exec(ctx, q, st); err != nil {
				break
			}
		}
		if err == nil {
			if err = ctx.Err(); err == nil {
				return tx.Commit()
			}
		}
	}
	if rerr := tx.Rollback(); rerr != nil && err == nil && !errors.Is(rerr, sql.ErrTxDone) {
		err = rerr
	}
	return err
}

// countRows counts the rows of a query's result.
func countRows(rows *sql.Rows, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// combine returns the writes w as one statement on PostgreSQL (each in a
// WITH clause: one round trip), and as they are on SQLite. The clauses of
// one statement do not see each other's writes: they must write different
// rows. The combined statements are built once per shape.
func (s *Store) combine(w []stmt) []stmt {
	if s.dialect != Postgres || len(w) < 2 {
		return w
	}
	var (
		key  combineKey
		args []any
	)
	for i, st := range w {
		if i < len(key) {
			key[i] = st.query
		}
		args = append(args, st.args...)
	}
	if len(w) <= len(key) {
		if q, ok := s.combined.Load(key); ok {
			return []stmt{{q.(string), args}}
		}
	}
	var b strings.Builder
	for i, st := range w {
		if i == 0 {
			b.WriteString("WITH ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "w%d AS (%s RETURNING 1)", i, st.query)
	}
	b.WriteString(" SELECT 1")
	q := numbered(b.String())
	if len(w) <= len(key) {
		s.combined.Store(key, q)
	}
	return []stmt{{q, args}}
}

// combineKey is the shape of a combined write: its statements' queries
// (the store's own, so there are few shapes).
type combineKey [6]string

// rollback ends the transaction on conn, even if ctx is done, so that the
// connection goes back to the pool clean; if that fails the connection's
// state is unknown and the pool drops it.
func (s *Store) rollback(ctx context.Context, conn *sql.Conn) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(rctx, "ROLLBACK"); err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// sqliteTx is [Store.inTx] on SQLite.
func (s *Store) sqliteTx(ctx context.Context, first *stmt, fn func(q querier, firstRows int64) ([]stmt, bool, error)) error {
	s.prepare(ctx)
	// SQLite has one writer at a time: queue this Store's writers here
	// rather than have them poll the database lock.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// BeginTx ties the transaction's end to its context: the commit must
	// not be cut short (see inTx), so only the statements run on ctx.
	tx, err := s.db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return err
	}
	q := sqliteQ{s: s, tx: tx}
	if first == nil {
		first = &stmt{s.q.writeLock, nil}
	}
	var n int64
	res, err := q.ExecContext(ctx, first.query, first.args...)
	if err == nil {
		n, err = res.RowsAffected()
	}
	return s.finish(ctx, tx, q, n, err, fn)
}

// sqliteQ runs statements on SQLite as prepared statements: in tx, or on
// the pool when tx is nil. SQLite parses every statement it is given, which
// costs more than running the small statements of the store; a statement
// the store has not prepared (yet) runs as it is.
type sqliteQ struct {
	s  *Store
	tx *sql.Tx
}

// stmt returns the prepared statement of query, bound to the
// transaction, or nil.
func (q sqliteQ) stmt(ctx context.Context, query string) *sql.Stmt {
	st := q.s.prepared(query)
	if st != nil && q.tx != nil {
		st = q.tx.StmtContext(ctx, st)
	}
	return st
}

func (q sqliteQ) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	if q.tx != nil {
		return q.tx.ExecContext(ctx, query, args...)
	}
	return q.s.db.ExecContext(ctx, query, args...)
}

func (q sqliteQ) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if q.tx != nil {
		return q.tx.QueryContext(ctx, query, args...)
	}
	return q.s.db.QueryContext(ctx, query, args...)
}

func (q sqliteQ) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	if q.tx != nil {
		return q.tx.QueryRowContext(ctx, query, args...)
	}
	return q.s.db.QueryRowContext(ctx, query, args...)
}

// reader returns what the reads outside a transaction run on: the pool, on
// SQLite through the prepared statements.
func (s *Store) reader(ctx context.Context) querier {
	if s.dialect == SQLite {
		s.prepare(ctx)
		return sqliteQ{s: s}
	}
	return s.db
}

// prepare prepares the store's SQLite statements once, on the pool (so
// never while this goroutine holds a connection in a transaction: with a
// pool of one connection that would wait for ever). If that fails (the
// tables do not exist yet, the database is down), the statements run
// unprepared and prepare tries again on the next call.
func (s *Store) prepare(ctx context.Context) {
	if s.dialect != SQLite || s.stmts.Load() != nil {
		return
	}
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	if s.stmts.Load() != nil {
		return
	}
	m := make(map[string]*sql.Stmt)
	for _, query := range s.q.sqlitePrepared() {
		if _, ok := m[query]; ok {
			continue
		}
		st, err := s.db.PrepareContext(ctx, query)
		if err != nil {
			for _, st := range m {
				st.Close()
			}
			return
		}
		m[query] = st
	}
	s.stmts.Store(&m)
}

// prepared returns the prepared statement of query, or nil.
func (s *Store) prepared(query string) *sql.Stmt {
	m := s.stmts.Load()
	if m == nil {
		return nil
	}
	return (*m)[query]
}

// exec runs st in the middle of a transaction.
func (s *Store) exec(ctx context.Context, q querier, st stmt) (sql.Result, error) {
	return q.ExecContext(ctx, s.pgQuery(st), st.args...)
}

// pgQuery returns st's query with the dialect's placeholders.
func (s *Store) pgQuery(st stmt) string {
	if s.dialect == Postgres {
		return numbered(st.query)
	}
	return st.query
}

// inImmediateTx runs fn between BEGIN IMMEDIATE and COMMIT on one SQLite
// connection: the write lock is taken before the first read. For Migrate,
// which runs before the store's tables (and its write-lock statement)
// exist.
func (s *Store) inImmediateTx(ctx context.Context, fn func(q querier) (bool, error)) error {
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
	s.rollback(ctx, conn)
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

// Close releases the statements the store prepared on db's connections
// (SQLite; on PostgreSQL the driver keeps its own), once the store is no
// longer in use. It does not close db, which the application owns.
func (s *Store) Close() error {
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	var errs []error
	if m := s.stmts.Swap(nil); m != nil {
		for _, st := range *m {
			errs = append(errs, st.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlstore: close prepared statements: %w", err)
	}
	return nil
}
