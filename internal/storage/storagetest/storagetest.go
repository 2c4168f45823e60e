// Package storagetest gives tests fresh, empty Sluice databases on every
// available database engine, for the storage package's own tests and for
// any other package that needs a real Store.
//
// SQLite databases are files under t.TempDir(). PostgreSQL databases are
// fresh schemas, named sluice_test_<random hex>, in the server named by
// $SLUICE_TEST_POSTGRES (default DefaultPostgresDSN); each is dropped when
// its test ends. When no PostgreSQL server is reachable the PostgreSQL
// variants are skipped, not failed.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/storage"
)

// PostgresEnv names the environment variable holding the connection string
// of the PostgreSQL server tests use. The role must be allowed to create
// schemas in its database.
const PostgresEnv = "SLUICE_TEST_POSTGRES"

// DefaultPostgresDSN is used when PostgresEnv is unset.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// reachTimeout bounds how long Fresh waits for the PostgreSQL server before
// skipping.
const reachTimeout = 2 * time.Second

// ForEachDB runs fn once per available database, as a subtest named "sqlite" and "postgres",
// each with a fresh empty database; cleaned up at test end.
func ForEachDB(t *testing.T, fn func(t *testing.T, o storage.Options)) {
	t.Helper()
	for _, db := range []struct{ name, driver string }{
		{"sqlite", storage.DriverSQLite},
		{"postgres", storage.DriverPostgres},
	} {
		t.Run(db.name, func(t *testing.T) {
			fn(t, Fresh(t, db.driver))
		})
	}
}

// Fresh returns Options for a fresh empty database of the given driver ("sqlite3" or "postgres"),
// cleaned up at test end; for postgres it calls t.Skip with ONE clear line when no server is reachable.
//
// The database is empty: storage.Open creates the schema. Opening the same
// Options again reaches the same database.
func Fresh(t testing.TB, driver string) storage.Options {
	t.Helper()
	switch driver {
	case storage.DriverSQLite:
		return storage.Options{
			Driver:     storage.DriverSQLite,
			SQLitePath: filepath.Join(t.TempDir(), "sluice.db"),
		}
	case storage.DriverPostgres:
		return freshPostgres(t)
	default:
		t.Fatalf("storagetest: unknown driver %q (want %q or %q)", driver, storage.DriverSQLite, storage.DriverPostgres)
		return storage.Options{}
	}
}

// Open opens o with storage.Open and closes the Store when the test ends;
// an error fails the test.
func Open(t testing.TB, o storage.Options) storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("storagetest: open %s database: %v", o.Driver, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("storagetest: close %s database: %v", o.Driver, err)
		}
	})
	return st
}

// PostgresDSN returns the connection string of the test PostgreSQL server:
// $SLUICE_TEST_POSTGRES, or DefaultPostgresDSN when that is unset.
func PostgresDSN() string {
	if dsn := os.Getenv(PostgresEnv); dsn != "" {
		return dsn
	}
	return DefaultPostgresDSN
}

// admin is one process-wide connection pool per server DSN, used to create
// and drop the test schemas. Whether the server is reachable is decided
// once, so a missing server costs one timeout per test binary, not one per
// test.
var admin struct {
	mu    sync.Mutex
	conns map[string]*adminConn
}

type adminConn struct {
	once sync.Once
	db   *sql.DB
	err  error
}

func adminDB(dsn string) (*sql.DB, error) {
	admin.mu.Lock()
	if admin.conns == nil {
		admin.conns = map[string]*adminConn{}
	}
	c := admin.conns[dsn]
	if c == nil {
		c = &adminConn{}
		admin.conns[dsn] = c
	}
	admin.mu.Unlock()

	c.once.Do(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			c.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			c.err = err
			return
		}
		// Only DDL runs here; a couple of connections is plenty.
		db.SetMaxOpenConns(2)
		c.db = db
	})
	return c.db, c.err
}

func freshPostgres(t testing.TB) storage.Options {
	t.Helper()
	base := PostgresDSN()
	db, err := adminDB(base)
	if err != nil {
		t.Skipf("postgres: no server reachable at %s (set %s); skipping", redact(base), PostgresEnv)
	}

	schema := "sluice_test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The schema name is generated here from hex digits, so quoting it
	// as an identifier is all the escaping it needs.
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA "`+schema+`"`); err != nil {
		t.Fatalf("storagetest: create postgres schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// Cleanups run last-registered first, so a Store opened after
		// Fresh and closed in its own cleanup is closed by now; an
		// unclosed one's idle connections do not block the drop.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`); err != nil {
			t.Errorf("storagetest: drop postgres schema %s: %v", schema, err)
		}
	})

	dsn, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	return storage.Options{Driver: storage.DriverPostgres, PostgresDSN: dsn}
}

// withSearchPath adds search_path=schema to a pgx connection string; pgx
// sends unrecognised parameters to the server as run-time settings, so
// every connection of the pool starts in the schema.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", PostgresEnv, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// key=value form: a later duplicate key overrides an earlier one.
	return strings.TrimSpace(dsn) + " search_path=" + schema, nil
}

// schemaOf returns the PostgreSQL schema a DSN returned by Fresh selects,
// or "" if it selects none.
func schemaOf(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Query().Get("search_path")
	}
	if m := kvSearchPath.FindAllStringSubmatch(dsn, -1); m != nil {
		return m[len(m)-1][1]
	}
	return ""
}

var kvSearchPath = regexp.MustCompile(`(?:^|\s)search_path=(\S+)`)

// kvPassword matches a password in a key=value connection string, quoted
// or not.
var kvPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redact hides the password of a connection string for messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails; see crypto/rand.Read
	return hex.EncodeToString(b)
}
