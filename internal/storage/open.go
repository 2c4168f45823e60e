package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	// Registers the "pgx" database/sql driver.
	_ "github.com/jackc/pgx/v5/stdlib"
	// Registers the "sqlite" database/sql driver.
	_ "modernc.org/sqlite"
)

// Driver names accepted in Options.Driver; Store.Dialect returns the same.
const (
	DriverSQLite   = "sqlite3"
	DriverPostgres = "postgres"
)

// Pool size defaults used when Options.MaxOpenConns is 0.
const (
	defaultPostgresConns   = 10
	defaultSQLiteReadConns = 4
)

// sqliteBusyTimeoutMS is how long an SQLite connection waits for a lock held
// by another connection (a checkpoint, or another process) before failing
// with SQLITE_BUSY.
const sqliteBusyTimeoutMS = 10000

// Options selects and configures the database Open connects to.
type Options struct {
	Driver       string       // "sqlite3" or "postgres"
	SQLitePath   string       // sqlite3: database file path
	PostgresDSN  string       // postgres: a pgx connection string (URL or key=value)
	MaxOpenConns int          // postgres pool size / sqlite read pool size; 0 = default (10 / 4)
	Logger       *slog.Logger // may be nil
	// Queries, when not nil, counts every statement the store runs (see
	// QueryCounter); nil costs nothing.
	Queries *QueryCounter
}

// Open connects to the database o describes, brings its schema up to date by
// applying every embedded migration newer than the database's version, and
// returns the Store. It refuses, with an error wrapping ErrSchemaTooNew, a
// database whose schema is newer than this binary knows.
func Open(ctx context.Context, o Options) (Store, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.MaxOpenConns < 0 {
		return nil, fmt.Errorf("storage: MaxOpenConns must not be negative (got %d)", o.MaxOpenConns)
	}
	migs, err := loadMigrations(migrationFS, migrationDir)
	if err != nil {
		return nil, err
	}
	switch o.Driver {
	case DriverSQLite:
		return openSQLite(ctx, o, log, migs)
	case DriverPostgres:
		return openPostgres(ctx, o, log, migs)
	case "":
		return nil, fmt.Errorf("storage: no database driver configured (want %q or %q)", DriverSQLite, DriverPostgres)
	default:
		return nil, fmt.Errorf("storage: unknown database driver %q (want %q or %q)", o.Driver, DriverSQLite, DriverPostgres)
	}
}

func openPostgres(ctx context.Context, o Options, log *slog.Logger, migs []migration) (Store, error) {
	if o.PostgresDSN == "" {
		return nil, errors.New("storage: connect to postgres: no connection string configured")
	}
	// pgx parses the DSN here (its connector is built eagerly), so a malformed
	// DSN fails now; pgx redacts passwords from its errors.
	db, err := sqlOpen("pgx", o.PostgresDSN, o.Queries)
	if err != nil {
		return nil, fmt.Errorf("storage: connect to postgres: %w", err)
	}
	n := o.MaxOpenConns
	if n == 0 {
		n = defaultPostgresConns
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: connect to postgres: %w", err)
	}
	s := &sqlStore{dialect: DriverPostgres, w: db, r: db, log: log}
	if err := migrate(ctx, s, migs); err != nil {
		db.Close()
		return nil, err
	}
	s.writer = newGroupWriter(db, maxBatchPostgres, nil)
	log.Info("storage: opened postgres database", "max_open_conns", n)
	return s, nil
}

func openSQLite(ctx context.Context, o Options, log *slog.Logger, migs []migration) (Store, error) {
	path := o.SQLitePath
	switch {
	case path == "":
		return nil, errors.New("storage: open sqlite database: no database path configured")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		// The writer and the read pool are separate connections, so they must
		// name one file; an in-memory database or URI would give each its own.
		return nil, fmt.Errorf("storage: open sqlite database %s: want a plain file path", path)
	case strings.ContainsRune(path, '?'):
		// The driver cuts the DSN at the first '?' to find its parameters.
		return nil, fmt.Errorf("storage: open sqlite database %s: the path must not contain '?'", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: open sqlite database %s: create directory: %w", path, err)
		}
	}

	n := o.MaxOpenConns
	if n == 0 {
		n = defaultSQLiteReadConns
	}

	// All writes go through this single connection, so SQLite never sees two
	// writers from this process and never answers SQLITE_BUSY between them.
	// BEGIN IMMEDIATE takes the write lock at the start of a transaction
	// rather than on its first write, which would otherwise fail a
	// read-then-write transaction that loses a race for the lock.
	w, err := openSQLiteDB(ctx, sqliteDSN(path, true), 1, o.Queries)
	if err != nil {
		return nil, fmt.Errorf("storage: open sqlite database %s: %w", path, err)
	}
	// WAL is what lets the read pool run beside the writer; a file system
	// that cannot do WAL silently leaves the old journal mode in place.
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("storage: open sqlite database %s: read journal mode: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("storage: open sqlite database %s: journal mode is %q, not WAL (does the file system support WAL?)", path, mode)
	}
	s := &sqlStore{dialect: DriverSQLite, w: w, log: log, path: path}
	if err := migrate(ctx, s, migs); err != nil {
		w.Close()
		return nil, err
	}
	r, err := openSQLiteDB(ctx, sqliteDSN(path, false), n, o.Queries)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("storage: open sqlite database %s: read pool: %w", path, err)
	}
	s.r = r
	prepared, err := prepareStatements(ctx, w, preparedStatements)
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("storage: open sqlite database %s: %w", path, err)
	}
	s.writer = newGroupWriter(w, maxBatchSQLite, prepared)
	log.Info("storage: opened sqlite database", "path", path, "read_conns", n)
	return s, nil
}

func openSQLiteDB(ctx context.Context, dsn string, conns int, qc *QueryCounter) (*sql.DB, error) {
	db, err := sqlOpen("sqlite", dsn, qc)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	// Keep every connection: each carries its pragmas, and reopening one
	// costs a file open plus schema parsing.
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	// Switching a fresh file to WAL needs an exclusive lock, and SQLite does
	// not always wait for it (busy_timeout does not cover that step): when
	// two stores open one new file at once, retry for a while.
	deadline := time.Now().Add(time.Duration(sqliteBusyTimeoutMS) * time.Millisecond)
	for {
		err = db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		if !isBusy(err) || time.Now().After(deadline) {
			db.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			db.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func isBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

// sqliteDSN builds the modernc.org/sqlite DSN for path. The driver runs the
// busy_timeout pragma first and the rest in name order.
func sqliteDSN(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	// LIKE compares case-sensitively, as on PostgreSQL (filters' type
	// patterns are matched with it).
	q.Add("_pragma", "case_sensitive_like(1)")
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL syncs the WAL on every commit: an acknowledged write survives
		// power loss, not just a process crash.
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
	} else {
		// The read pool must never write; query_only makes a stray write
		// fail loudly instead of competing with the writer for the lock.
		q.Add("_pragma", "query_only(1)")
	}
	return path + "?" + q.Encode()
}
