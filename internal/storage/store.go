package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqlStore implements Store over database/sql. The SQL text is the same for
// both dialects: every query uses $N placeholders, which modernc.org/sqlite
// also accepts.
type sqlStore struct {
	dialect string
	// w runs every write, and every read inside a write transaction. On
	// SQLite it is a single connection, which serialises writers.
	w *sql.DB
	// r runs standalone reads. On SQLite it is a separate query_only pool
	// that, under WAL, reads alongside the writer; on PostgreSQL it is w.
	r    *sql.DB
	log  *slog.Logger
	path string // SQLite file, for messages
	// writer runs every PersistEvent, in group-committed batches, over w.
	writer *groupWriter

	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*sqlStore)(nil)

func (s *sqlStore) Dialect() string { return s.dialect }

// Close closes the database. It first stops PersistEvent taking new events
// and waits for the queued ones to be committed. On SQLite it then closes
// the read pool, so no reader pins the WAL, checkpoints the WAL into the
// main file and truncates it, leaving a self-contained database file
// behind. Calling it again returns the first call's result.
func (s *sqlStore) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *sqlStore) close() error {
	// Let the group writer finish every queued PersistEvent first: their
	// callers are waiting, and their transactions need the database.
	if s.writer != nil {
		s.writer.close()
	}
	if s.dialect == DriverPostgres {
		if err := s.w.Close(); err != nil {
			return fmt.Errorf("storage: close postgres database: %w", err)
		}
		return nil
	}
	var errs []error
	if s.r != nil {
		if err := s.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("storage: close sqlite database %s: read pool: %w", s.path, err))
		}
	}
	var busy, logPages, checkpointed int
	err := s.w.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &checkpointed)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("storage: close sqlite database %s: checkpoint: %w", s.path, err))
	case busy != 0:
		// Not an error: the data is safe in the WAL and SQLite replays it on
		// the next open.
		s.log.Warn("storage: sqlite WAL checkpoint incomplete at close", "path", s.path, "wal_pages", logPages, "checkpointed", checkpointed)
	}
	if err := s.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("storage: close sqlite database %s: %w", s.path, err))
	}
	return errors.Join(errs...)
}

// inTx runs fn in a write transaction and commits it if fn succeeds. what
// names the operation in errors. Errors fn returns are passed on as they are.
func (s *sqlStore) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage: %s: begin transaction: %w", what, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("storage: %s: commit: %w", what, err)
	}
	return nil
}

// execOne runs a single-row UPDATE and returns ErrNotFound when it matched
// no row.
func (s *sqlStore) execOne(ctx context.Context, what, query string, args ...any) error {
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// isForeignKeyViolation reports whether err is a foreign key constraint
// failure on either database.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503" // foreign_key_violation
	}
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// boolInt maps a bool to the 0/1 stored in SMALLINT flag columns.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nullIfEmpty stores "" as NULL in nullable text columns.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// checkText refuses strings PostgreSQL cannot store in TEXT (a NUL byte,
// invalid UTF-8) and SQLite would, so both databases accept the same data.
func checkText(vs ...string) error {
	for _, v := range vs {
		if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
			return fmt.Errorf("%q contains a NUL byte or invalid UTF-8", v)
		}
	}
	return nil
}

// asciiLower folds A-Z to a-z and leaves every other byte alone: user IDs
// are compared ignoring ASCII case only, identically on both databases.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}
