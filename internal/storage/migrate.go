package storage

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
)

// migrationFS holds the schema migrations, one file per version, named
// NNNN_description.sql and numbered 1, 2, 3 ... without gaps. A released
// migration is never edited: a schema change is a new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

const migrationDir = "migrations"

// migrationLockKey is the PostgreSQL advisory lock taken by every migration
// transaction, so that servers starting at the same time against one
// database apply each migration once. The value is "sluice" in ASCII
// followed by 0x0001; it only has to be fixed and unlikely to collide.
const migrationLockKey int64 = 0x736c756963650001

type migration struct {
	version int
	name    string // file name, for logs and errors
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]+)_[A-Za-z0-9_-]+\.sql$`)

// loadMigrations reads the migrations in dir of fsys, ordered by version,
// and checks that they are numbered 1..n without gaps or duplicates.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("storage: read migrations: %w", err)
	}
	// ReadDir sorts by name, and the names are zero-padded, so this is
	// version order; the check below catches a name that breaks that.
	var migs []migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("storage: migration file %s: name is not NNNN_description.sql", e.Name())
		}
		v, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("storage: migration file %s: bad version: %w", e.Name(), err)
		}
		if want := len(migs) + 1; v != want {
			return nil, fmt.Errorf("storage: migration file %s: version %d where %d was expected (versions must run 1, 2, 3 ... without gaps)", e.Name(), v, want)
		}
		text, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("storage: read migration %s: %w", e.Name(), err)
		}
		migs = append(migs, migration{version: v, name: e.Name(), sql: string(text)})
	}
	if len(migs) == 0 {
		return nil, errors.New("storage: no migrations found")
	}
	return migs, nil
}

// schemaTooNewError reports a database written by a newer Sluice. It
// unwraps to ErrSchemaTooNew.
type schemaTooNewError struct {
	have, known int
}

func (e *schemaTooNewError) Error() string {
	return fmt.Sprintf("storage: database schema version %d is newer than this Sluice supports (version %d); upgrade Sluice or use a backup", e.have, e.known)
}

func (e *schemaTooNewError) Unwrap() error { return ErrSchemaTooNew }

// The schema_version table has at most one row (singleton = 0). It is
// created by the migrator rather than by a migration because the migrator
// needs it to know where to start.
const (
	createVersionTable = `CREATE TABLE IF NOT EXISTS schema_version (
    singleton SMALLINT NOT NULL PRIMARY KEY CHECK (singleton = 0),
    version   INTEGER NOT NULL
)`
	selectVersion = `SELECT version FROM schema_version WHERE singleton = 0`
	upsertVersion = `INSERT INTO schema_version (singleton, version) VALUES (0, $1)
ON CONFLICT (singleton) DO UPDATE SET version = excluded.version`
)

// migrate applies, one transaction each, the migrations above the
// database's current version. Each transaction first takes the migration
// lock (PostgreSQL's advisory lock; on SQLite, BEGIN IMMEDIATE's write lock)
// and re-reads the version under it, so concurrent starts apply each
// migration exactly once.
func migrate(ctx context.Context, s *sqlStore, migs []migration) error {
	known := len(migs)
	for {
		applied, done, err := migrateStep(ctx, s, migs)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		s.log.Info("storage: applied schema migration", "version", applied.version, "file", applied.name, "dialect", s.dialect, "latest", known)
	}
}

// migrateStep applies the next pending migration, if there is one, and
// reports which one it applied or that the schema is up to date.
func migrateStep(ctx context.Context, s *sqlStore, migs []migration) (applied migration, done bool, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return migration{}, false, fmt.Errorf("storage: migrate schema: begin: %w", err)
	}
	defer tx.Rollback()

	if s.dialect == DriverPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return migration{}, false, fmt.Errorf("storage: migrate schema: take migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, createVersionTable); err != nil {
		return migration{}, false, fmt.Errorf("storage: migrate schema: create schema_version table: %w", err)
	}
	cur := 0
	switch err := tx.QueryRowContext(ctx, selectVersion).Scan(&cur); {
	case errors.Is(err, sql.ErrNoRows):
		// A new database.
	case err != nil:
		return migration{}, false, fmt.Errorf("storage: migrate schema: read schema version: %w", err)
	}
	known := len(migs)
	switch {
	case cur > known:
		return migration{}, false, &schemaTooNewError{have: cur, known: known}
	case cur < 0:
		return migration{}, false, fmt.Errorf("storage: migrate schema: database schema version %d is invalid", cur)
	case cur == known:
		return migration{}, true, nil
	}

	m := migs[cur] // version cur+1
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return migration{}, false, fmt.Errorf("storage: migrate schema: apply migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, upsertVersion, m.version); err != nil {
		return migration{}, false, fmt.Errorf("storage: migrate schema: record version %d: %w", m.version, err)
	}
	if err := tx.Commit(); err != nil {
		return migration{}, false, fmt.Errorf("storage: migrate schema: commit migration %s: %w", m.name, err)
	}
	return m, false, nil
}
