package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

func openTestSQLite(t *testing.T, path string) *sqlStore {
	t.Helper()
	st, err := Open(t.Context(), Options{Driver: DriverSQLite, SQLitePath: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(*sqlStore)
}

// TestSQLiteConnectionSettings checks that the DSN pragmas really are in
// force on both pools, and that the read pool cannot write.
func TestSQLiteConnectionSettings(t *testing.T) {
	// A parent directory that does not exist yet is created.
	path := filepath.Join(t.TempDir(), "a", "b", "sluice.db")
	s := openTestSQLite(t, path)
	ctx := t.Context()

	for _, tc := range []struct {
		pool   string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "foreign_keys", "1"},
		{"writer", "busy_timeout", "10000"},
		{"writer", "query_only", "0"},
		{"reader", "journal_mode", "wal"},
		{"reader", "foreign_keys", "1"},
		{"reader", "busy_timeout", "10000"},
		{"reader", "query_only", "1"},
	} {
		db := s.w
		if tc.pool == "reader" {
			db = s.r
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Errorf("%s: PRAGMA %s: %v", tc.pool, tc.pragma, err)
			continue
		}
		if !strings.EqualFold(got, tc.want) {
			t.Errorf("%s: PRAGMA %s = %s, want %s", tc.pool, tc.pragma, got, tc.want)
		}
	}
	if got := s.w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool size %d, want 1", got)
	}
	if got := s.r.Stats().MaxOpenConnections; got != defaultSQLiteReadConns {
		t.Errorf("read pool size %d, want %d", got, defaultSQLiteReadConns)
	}
	if _, err := s.r.ExecContext(ctx, `DELETE FROM users`); err == nil {
		t.Error("a write through the read pool succeeded")
	}
}

// TestSQLiteCloseCheckpoints checks that Close leaves the data in the main
// file with an empty WAL.
func TestSQLiteCloseCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.db")
	s := openTestSQLite(t, path)
	for _, id := range []string{"@a:x", "@b:x", "@c:x"} {
		if err := s.CreateUser(t.Context(), User{UserID: id}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("before Close the WAL should hold the writes: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("WAL is %d bytes after Close, want empty or gone", fi.Size())
	}
	s = openTestSQLite(t, path)
	if users, err := s.FindUsersCaseInsensitive(t.Context(), "@B:X"); err != nil || len(users) != 1 {
		t.Errorf("after reopen: %v, %v", users, err)
	}
}

// TestSQLiteReadsDuringWriteTransaction checks that the read pool is not
// blocked by an open write transaction, which WAL and the separate pool are
// for.
func TestSQLiteReadsDuringWriteTransaction(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "sluice.db"))
	ctx := t.Context()
	if err := s.CreateUser(ctx, User{UserID: "@a:x"}, nil); err != nil {
		t.Fatal(err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE users SET admin = 1`); err != nil {
		t.Fatal(err)
	}
	// The uncommitted change is invisible, and the read does not wait.
	u, err := s.GetUser(ctx, "@a:x")
	if err != nil || u.Admin {
		t.Errorf("GetUser during write transaction = %+v, %v", u, err)
	}
}

// TestSQLiteSeparateStoresWriting opens two Stores on one file, as two
// processes would, and writes through both at once: busy_timeout and
// BEGIN IMMEDIATE make them queue instead of failing with SQLITE_BUSY.
func TestSQLiteSeparateStoresWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.db")
	a, b := openTestSQLite(t, path), openTestSQLite(t, path)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i, s := range []*sqlStore{a, b, a, b} {
		wg.Go(func() {
			for j := range 25 {
				id := "@u" + string(rune('a'+i)) + string(rune('a'+j)) + ":x"
				if err := s.CreateUser(ctx, User{UserID: id}, &NewSession{DeviceID: "D", TokenHash: []byte(id)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("CreateUser: %v", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name    string
		files   fstest.MapFS
		want    []int  // versions, when loading succeeds
		wantErr string // substring of the error otherwise
	}{
		{"ordered", fstest.MapFS{
			"m/0002_b.sql": file("B"), "m/0001_a.sql": file("A"), "m/0003_c.sql": file("C"),
		}, []int{1, 2, 3}, ""},
		{"gap", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0003_c.sql": file("C")}, nil, "0003_c.sql: version 3 where 2 was expected"},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0001_b.sql": file("B")}, nil, "0001_b.sql: version 1 where 2 was expected"},
		{"not starting at 1", fstest.MapFS{"m/0002_a.sql": file("A")}, nil, "version 2 where 1 was expected"},
		{"bad name", fstest.MapFS{"m/0001_a.sql": file("A"), "m/notes.txt": file("x")}, nil, "notes.txt: name is not NNNN_description.sql"},
		{"hidden file", fstest.MapFS{"m/.keep": file("")}, nil, ".keep: name is not"},
		{"only a subdirectory", fstest.MapFS{"m/sub/0001_a.sql": file("A")}, nil, "storage: no migrations found"},
		{"no directory", fstest.MapFS{}, nil, "storage: read migrations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			migs, err := loadMigrations(tc.files, "m")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for i, m := range migs {
				got = append(got, m.version)
				if m.sql != string(rune('A'+i)) {
					t.Errorf("migration %d has text %q", m.version, m.sql)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("versions %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("versions %v, want %v", got, tc.want)
				}
			}
		})
	}

	// The embedded set itself loads.
	if migs, err := loadMigrations(migrationFS, migrationDir); err != nil || len(migs) == 0 {
		t.Fatalf("embedded migrations: %v, %v", migs, err)
	}
}

// TestMigrationFailureRollsBack checks that a failing migration leaves the
// database at the previous version, with none of its statements applied.
func TestMigrationFailureRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.db")
	s := openTestSQLite(t, path)
	migs, err := loadMigrations(migrationFS, migrationDir)
	if err != nil {
		t.Fatal(err)
	}
	bad := append(migs, migration{
		version: len(migs) + 1, name: "bad.sql",
		sql: `CREATE TABLE half_done (x INTEGER); SELECT * FROM no_such_table;`,
	})
	err = migrate(context.Background(), s, bad)
	if err == nil || !strings.Contains(err.Error(), "storage: migrate schema: apply migration bad.sql: ") {
		t.Fatalf("migrate with a bad migration: %v", err)
	}
	var v int
	if err := s.w.QueryRow(selectVersion).Scan(&v); err != nil || v != len(migs) {
		t.Errorf("version after failed migration = %d, %v; want %d", v, err, len(migs))
	}
	var n int
	if err := s.w.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed migration's first statement was kept (%d, %v)", n, err)
	}
	if err := migrate(context.Background(), s, migs); err != nil {
		t.Errorf("migrate with the real migrations after the rollback: %v", err)
	}
}

func TestASCIILower(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "",
		"@alice:example.org":  "@alice:example.org",
		"@ALICE:Example.ORG":  "@alice:example.org",
		"@Émile:example.org":  "@Émile:example.org",
		"@ÉMILE:X":            "@Émile:x",
		"@ÄÖÜ_ABC-Z=09/:host": "@ÄÖÜ_abc-z=09/:host",
	} {
		if got := asciiLower(in); got != want {
			t.Errorf("asciiLower(%q) = %q, want %q", in, got, want)
		}
	}
}
