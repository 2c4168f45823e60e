package storage

import (
	"context"
	"database/sql"
	"fmt"
)

// batchTx is the group writer's transaction. On SQLite it runs the
// statements the writer prepared when it started (the driver otherwise
// compiles every statement each time it runs, which costs about as much
// as running it); any other statement runs as it is.
type batchTx struct {
	tx       *sql.Tx
	prepared map[string]*sql.Stmt // nil on PostgreSQL
	bound    map[string]*sql.Stmt // prepared, bound to tx; closed with it

	savepoint savepointState // of the savepoint persist_event
}

type savepointState int

const (
	savepointNone  savepointState = iota // not opened yet
	savepointFresh                       // open, nothing done in it
	savepointUsed                        // open, holding a call's work
)

// openSavepoint makes sure a fresh savepoint is open for the next call.
func (t *batchTx) openSavepoint(ctx context.Context) error {
	var err error
	switch t.savepoint {
	case savepointNone:
		_, err = t.ExecContext(ctx, sqlSavepoint)
	case savepointUsed:
		if t.prepared != nil {
			// SQLite: two prepared statements (a text holding two
			// statements could not be prepared).
			if _, err = t.ExecContext(ctx, sqlReleaseSavepoint); err == nil {
				_, err = t.ExecContext(ctx, sqlSavepoint)
			}
		} else {
			// PostgreSQL: one round trip (a query without parameters may
			// hold several statements).
			_, err = t.ExecContext(ctx, sqlReleaseSavepoint+"; "+sqlSavepoint)
		}
	}
	if err != nil {
		return err
	}
	t.savepoint = savepointFresh
	return nil
}

func (t *batchTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if s := t.bound[query]; s != nil {
		return s
	}
	p := t.prepared[query]
	if p == nil {
		return nil
	}
	// The statement was prepared on the writer's one connection, which tx
	// holds, so this only wraps it.
	s := t.tx.StmtContext(ctx, p)
	if t.bound == nil {
		t.bound = make(map[string]*sql.Stmt, len(t.prepared))
	}
	t.bound[query] = s
	return s
}

func (t *batchTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *batchTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t *batchTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// prepareStatements prepares queries on db, which must be the SQLite
// writer's single-connection pool, while nothing else holds it.
func prepareStatements(ctx context.Context, db *sql.DB, queries []string) (map[string]*sql.Stmt, error) {
	m := make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			closeStatements(m)
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		m[q] = s
	}
	return m, nil
}

func closeStatements(m map[string]*sql.Stmt) {
	for _, s := range m {
		s.Close()
	}
}
