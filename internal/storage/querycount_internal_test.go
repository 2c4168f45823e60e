package storage

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestCountingDriver checks what the counting pool counts: direct
// statements, prepared statements' executions (also re-prepared in a
// transaction), not BEGIN/COMMIT or preparing; and that without a counter
// the pool is the driver's own.
func TestCountingDriver(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "c.db")
	plain, err := sqlOpen("sqlite", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, ok := plain.Driver().(countingDriver); ok {
		t.Fatal("a pool without a counter has the counting driver")
	}

	var qc QueryCounter
	db, err := sqlOpen("sqlite", path, &qc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	step := func(what string, want int64, fn func() error) {
		t.Helper()
		before := qc.Load()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := qc.Load() - before; got != want {
			t.Errorf("%s: counted %d, want %d", what, got, want)
		}
	}
	step("Exec", 1, func() error {
		_, err := db.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`)
		return err
	})
	var ins *sql.Stmt
	step("Prepare", 0, func() error {
		ins, err = db.PrepareContext(ctx, `INSERT INTO t VALUES ($1)`)
		return err
	})
	defer ins.Close()
	step("prepared Exec ×3", 3, func() error {
		for i := range 3 {
			if _, err := ins.ExecContext(ctx, i); err != nil {
				return err
			}
		}
		return nil
	})
	step("QueryRow", 1, func() error {
		var n int
		return db.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n)
	})
	step("transaction: Exec, prepared Exec, Commit", 2, func() error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (10)`); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, ins).ExecContext(ctx, 11); err != nil {
			return err
		}
		return tx.Commit()
	})
	step("failed statement", 1, func() error {
		if _, err := db.ExecContext(ctx, `INSERT INTO nosuch VALUES (1)`); err == nil {
			t.Error("insert into a missing table succeeded")
		}
		return nil
	})
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("rows: %d, %v; want 5", n, err)
	}
}
