package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

// ---- helpers ----

func ctxT(t *testing.T) context.Context { return t.Context() }

// rawDB opens the database behind o directly, bypassing the Store, for
// inspecting and tampering with it.
func rawDB(t *testing.T, o storage.Options) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	switch o.Driver {
	case storage.DriverSQLite:
		db, err = sql.Open("sqlite", o.SQLitePath+"?_pragma=busy_timeout(10000)")
	case storage.DriverPostgres:
		db, err = sql.Open("pgx", o.PostgresDSN)
	}
	if err != nil {
		t.Fatalf("raw open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func schemaVersion(t *testing.T, o storage.Options) int {
	t.Helper()
	db := rawDB(t, o)
	defer db.Close()
	var v int
	if err := db.QueryRowContext(ctxT(t), `SELECT version FROM schema_version`).Scan(&v); err != nil {
		t.Fatalf("read schema_version: %v", err)
	}
	return v
}

// logBuf is a goroutine-safe log sink for counting what Open logs.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), substr)
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

const appliedMsg = "storage: applied schema migration"

func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func mustCreateUser(t *testing.T, st storage.Store, id string) {
	t.Helper()
	if err := st.CreateUser(ctxT(t), storage.User{UserID: id, CreatedTS: 1}, nil); err != nil {
		t.Fatalf("CreateUser(%s): %v", id, err)
	}
}

func mustSession(t *testing.T, st storage.Store, user, device, token string) {
	t.Helper()
	if err := st.CreateSession(ctxT(t), user, storage.NewSession{DeviceID: device, TokenHash: hash(token)}); err != nil {
		t.Fatalf("CreateSession(%s, %s): %v", user, device, err)
	}
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Errorf("%s: error %v, want %v", what, got, want)
	}
}

// ---- Open ----

func TestOpenErrors(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    storage.Options
		want string // prefix of the error text
	}{
		{"no driver", storage.Options{}, "storage: no database driver configured"},
		{"unknown driver", storage.Options{Driver: "mysql"}, `storage: unknown database driver "mysql"`},
		{"negative pool", storage.Options{Driver: "sqlite3", SQLitePath: "x.db", MaxOpenConns: -1}, "storage: MaxOpenConns must not be negative"},
		{"sqlite no path", storage.Options{Driver: "sqlite3"}, "storage: open sqlite database: no database path configured"},
		{"sqlite memory", storage.Options{Driver: "sqlite3", SQLitePath: ":memory:"}, "storage: open sqlite database :memory:: want a plain file path"},
		{"sqlite uri", storage.Options{Driver: "sqlite3", SQLitePath: "file:x.db"}, "storage: open sqlite database file:x.db: want a plain file path"},
		{"sqlite question mark", storage.Options{Driver: "sqlite3", SQLitePath: "a?b.db"}, "storage: open sqlite database a?b.db: the path must not contain '?'"},
		{"sqlite parent is a file", storage.Options{Driver: "sqlite3", SQLitePath: filepath.Join(notADir, "x.db")},
			"storage: open sqlite database " + filepath.Join(notADir, "x.db") + ": create directory: "},
		{"sqlite path is a directory", storage.Options{Driver: "sqlite3", SQLitePath: t.TempDir()},
			"storage: open sqlite database "},
		{"postgres no dsn", storage.Options{Driver: "postgres"}, "storage: connect to postgres: no connection string configured"},
		{"postgres bad dsn", storage.Options{Driver: "postgres", PostgresDSN: "host=127.0.0.1 port=notaport"}, "storage: connect to postgres: "},
		{"postgres unreachable", storage.Options{Driver: "postgres", PostgresDSN: "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"},
			"storage: connect to postgres: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := storage.Open(ctxT(t), tc.o)
			if err == nil {
				st.Close()
				t.Fatalf("Open succeeded, want error %q...", tc.want)
			}
			if st != nil {
				t.Errorf("Open returned a Store with error %v", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestDialect(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		if got := st.Dialect(); got != o.Driver {
			t.Errorf("Dialect() = %q, want %q", got, o.Driver)
		}
	})
}

// ---- migrations ----

func TestMigrationsFreshAndReopen(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		var logs logBuf
		o.Logger = logs.logger()
		st, err := storage.Open(ctxT(t), o)
		if err != nil {
			t.Fatalf("Open fresh: %v", err)
		}
		v := schemaVersion(t, o)
		if v < 1 {
			t.Fatalf("schema version after fresh Open = %d, want >= 1", v)
		}
		if n := logs.count(appliedMsg); n != v {
			t.Errorf("fresh Open applied %d migrations, want %d", n, v)
		}
		db := rawDB(t, o)
		for _, table := range []string{"users", "devices", "access_tokens", "ui_auth_sessions", "ui_auth_stage_results"} {
			var n int
			if err := db.QueryRowContext(ctxT(t), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
		mustCreateUser(t, st, "@alice:example.org")
		mustSession(t, st, "@alice:example.org", "DEV", "tok")
		if err := st.CompleteUIAStage(ctxT(t), "nope", "x", json.RawMessage(`1`)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("CompleteUIAStage: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}

		// Reopen: nothing to apply, data intact.
		var logs2 logBuf
		o.Logger = logs2.logger()
		st2 := storagetest.Open(t, o)
		if n := logs2.count(appliedMsg); n != 0 {
			t.Errorf("reopen applied %d migrations, want 0", n)
		}
		if got := schemaVersion(t, o); got != v {
			t.Errorf("schema version after reopen = %d, want %d", got, v)
		}
		if _, err := st2.GetUser(ctxT(t), "@alice:example.org"); err != nil {
			t.Errorf("GetUser after reopen: %v", err)
		}
		owner, err := st2.LookupAccessToken(ctxT(t), hash("tok"))
		if err != nil || owner != (storage.TokenOwner{UserID: "@alice:example.org", DeviceID: "DEV"}) {
			t.Errorf("LookupAccessToken after reopen = %+v, %v", owner, err)
		}
	})
}

func TestSchemaTooNew(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st, err := storage.Open(ctxT(t), o)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		st.Close()
		known := schemaVersion(t, o)
		future := known + 6
		db := rawDB(t, o)
		if _, err := db.ExecContext(ctxT(t), `UPDATE schema_version SET version = $1`, future); err != nil {
			t.Fatalf("bump schema_version: %v", err)
		}
		db.Close()

		st, err = storage.Open(ctxT(t), o)
		if err == nil {
			st.Close()
			t.Fatal("Open of a too-new database succeeded")
		}
		if !errors.Is(err, storage.ErrSchemaTooNew) {
			t.Errorf("error %v does not wrap ErrSchemaTooNew", err)
		}
		want := fmt.Sprintf("storage: database schema version %d is newer than this Sluice supports (version %d); upgrade Sluice or use a backup", future, known)
		if err.Error() != want {
			t.Errorf("error text\n got %q\nwant %q", err, want)
		}
		// Refusing must not have touched the database.
		if got := schemaVersion(t, o); got != future {
			t.Errorf("schema version after refusal = %d, want %d", got, future)
		}
	})
}

func TestConcurrentOpen(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		var logs logBuf
		o.Logger = logs.logger()
		const n = 8
		stores := make([]storage.Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { stores[i], errs[i] = storage.Open(ctxT(t), o) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("Open %d: %v", i, errs[i])
				continue
			}
			if err := stores[i].Close(); err != nil {
				t.Errorf("Close %d: %v", i, err)
			}
		}
		if v, applied := schemaVersion(t, o), logs.count(appliedMsg); applied != v {
			t.Errorf("%d concurrent Opens applied %d migrations in all, want each of the %d once", n, applied, v)
		}
	})
}

// ---- users ----

func TestUsers(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		alice := storage.User{
			UserID: "@alice:example.org", PasswordHash: "$2a$12$hash", Admin: true, ShadowBanned: true,
			Deactivated: true, IsGuest: true, UserType: "bot", CreatedTS: 1700000000123,
		}
		if err := st.CreateUser(ctx, alice, nil); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		bob := storage.User{UserID: "@bob:example.org", CreatedTS: 5}
		if err := st.CreateUser(ctx, bob, nil); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		for _, want := range []storage.User{alice, bob} {
			got, err := st.GetUser(ctx, want.UserID)
			if err != nil || got != want {
				t.Errorf("GetUser(%s) = %+v, %v; want %+v", want.UserID, got, err, want)
			}
		}

		for _, tc := range []struct {
			name string
			id   string
		}{
			{"same ID", "@alice:example.org"},
			{"different case", "@ALICE:example.org"},
			{"different case in server name", "@alice:Example.Org"},
		} {
			err := st.CreateUser(ctx, storage.User{UserID: tc.id, CreatedTS: 9}, &storage.NewSession{DeviceID: "D", TokenHash: hash("dup-" + tc.id)})
			wantErr(t, "CreateUser "+tc.name, err, storage.ErrUserExists)
			// The session of a refused user must not have been created.
			_, err = st.LookupAccessToken(ctx, hash("dup-"+tc.id))
			wantErr(t, "token of refused user", err, storage.ErrNotFound)
		}
		if got, _ := st.GetUser(ctx, alice.UserID); got != alice {
			t.Errorf("refused CreateUser changed the user: %+v", got)
		}

		// Only ASCII case is folded: these two IDs differ in non-ASCII case.
		for _, id := range []string{"@émile:example.org", "@Émile:example.org"} {
			if err := st.CreateUser(ctx, storage.User{UserID: id, CreatedTS: 1}, nil); err != nil {
				t.Errorf("CreateUser(%s): %v", id, err)
			}
		}

		_, err := st.GetUser(ctx, "@nobody:example.org")
		wantErr(t, "GetUser missing", err, storage.ErrNotFound)
		_, err = st.GetUser(ctx, "@Alice:example.org")
		wantErr(t, "GetUser is case-sensitive", err, storage.ErrNotFound)

		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"@alice:example.org", []string{"@alice:example.org"}},
			{"@ALICE:EXAMPLE.ORG", []string{"@alice:example.org"}},
			{"@émile:example.org", []string{"@émile:example.org"}},
			{"@ÉMILE:example.org", []string{"@Émile:example.org"}},
			{"@nobody:example.org", []string{}},
		} {
			users, err := st.FindUsersCaseInsensitive(ctx, tc.query)
			if err != nil {
				t.Errorf("FindUsersCaseInsensitive(%s): %v", tc.query, err)
				continue
			}
			ids := []string{}
			for _, u := range users {
				ids = append(ids, u.UserID)
			}
			if users == nil || !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("FindUsersCaseInsensitive(%s) = %#v, want %#v", tc.query, ids, tc.want)
			}
		}

		// Setters, and ErrNotFound for a missing user.
		if err := st.SetPasswordHash(ctx, bob.UserID, "newhash"); err != nil {
			t.Errorf("SetPasswordHash: %v", err)
		}
		if err := st.SetAdmin(ctx, bob.UserID, true); err != nil {
			t.Errorf("SetAdmin: %v", err)
		}
		if err := st.SetShadowBanned(ctx, bob.UserID, true); err != nil {
			t.Errorf("SetShadowBanned: %v", err)
		}
		got, _ := st.GetUser(ctx, bob.UserID)
		if got.PasswordHash != "newhash" || !got.Admin || !got.ShadowBanned {
			t.Errorf("after setters: %+v", got)
		}
		// Setting a flag to its current value still finds the user.
		if err := st.SetAdmin(ctx, bob.UserID, true); err != nil {
			t.Errorf("SetAdmin again: %v", err)
		}
		if err := st.SetPasswordHash(ctx, bob.UserID, ""); err != nil {
			t.Errorf("SetPasswordHash empty: %v", err)
		}
		if err := st.SetAdmin(ctx, bob.UserID, false); err != nil {
			t.Errorf("SetAdmin false: %v", err)
		}
		if err := st.SetShadowBanned(ctx, bob.UserID, false); err != nil {
			t.Errorf("SetShadowBanned false: %v", err)
		}
		if got, _ := st.GetUser(ctx, bob.UserID); got != bob {
			t.Errorf("after clearing: %+v, want %+v", got, bob)
		}
		const missing = "@nobody:example.org"
		wantErr(t, "SetPasswordHash missing", st.SetPasswordHash(ctx, missing, "x"), storage.ErrNotFound)
		wantErr(t, "SetAdmin missing", st.SetAdmin(ctx, missing, true), storage.ErrNotFound)
		wantErr(t, "SetShadowBanned missing", st.SetShadowBanned(ctx, missing, true), storage.ErrNotFound)
		wantErr(t, "SetAdmin different case", st.SetAdmin(ctx, "@BOB:example.org", true), storage.ErrNotFound)

		if err := st.CreateUser(ctx, storage.User{}, nil); err == nil {
			t.Error("CreateUser with empty ID succeeded")
		}
	})
}

func TestCreateUserWithSession(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		const id = "@carol:example.org"
		err := st.CreateUser(ctx, storage.User{UserID: id, CreatedTS: 1},
			&storage.NewSession{DeviceID: "PHONE", DisplayName: "Carol's phone", TokenHash: hash("t1")})
		if err != nil {
			t.Fatalf("CreateUser with session: %v", err)
		}
		owner, err := st.LookupAccessToken(ctx, hash("t1"))
		if err != nil || owner != (storage.TokenOwner{UserID: id, DeviceID: "PHONE"}) {
			t.Errorf("LookupAccessToken = %+v, %v", owner, err)
		}
		d, err := st.GetDevice(ctx, id, "PHONE")
		if err != nil || d != (storage.Device{UserID: id, DeviceID: "PHONE", DisplayName: "Carol's phone"}) {
			t.Errorf("GetDevice = %+v, %v", d, err)
		}

		// An invalid session fails the whole call: no user is left behind.
		for _, tc := range []struct {
			name string
			sess storage.NewSession
		}{
			{"no device", storage.NewSession{TokenHash: hash("x")}},
			{"no token", storage.NewSession{DeviceID: "D"}},
		} {
			if err := st.CreateUser(ctx, storage.User{UserID: "@dave:example.org"}, &tc.sess); err == nil {
				t.Errorf("CreateUser with session %s succeeded", tc.name)
			}
		}
		_, err = st.GetUser(ctx, "@dave:example.org")
		wantErr(t, "user of failed CreateUser", err, storage.ErrNotFound)

		// A token hash already in use fails the transaction, user included.
		err = st.CreateUser(ctx, storage.User{UserID: "@erin:example.org"}, &storage.NewSession{DeviceID: "D", TokenHash: hash("t1")})
		if err == nil || errors.Is(err, storage.ErrUserExists) {
			t.Errorf("CreateUser with a duplicate token hash: %v", err)
		}
		_, err = st.GetUser(ctx, "@erin:example.org")
		wantErr(t, "user of rolled-back CreateUser", err, storage.ErrNotFound)
	})
}

func TestCreateUserRace(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		const n = 32
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			// Alternate the case, so the race is also on the lower-case index.
			id := "@race:example.org"
			if i%2 == 1 {
				id = "@RACE:example.org"
			}
			wg.Go(func() {
				errs[i] = st.CreateUser(ctxT(t), storage.User{UserID: id, CreatedTS: int64(i)},
					&storage.NewSession{DeviceID: "D", TokenHash: hash(fmt.Sprint("race", i))})
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, storage.ErrUserExists):
				t.Errorf("CreateUser %d: %v, want nil or ErrUserExists", i, err)
			}
		}
		if won != 1 {
			t.Errorf("%d concurrent CreateUser calls succeeded, want exactly 1", won)
		}
		users, err := st.FindUsersCaseInsensitive(ctxT(t), "@race:example.org")
		if err != nil || len(users) != 1 {
			t.Errorf("FindUsersCaseInsensitive = %v, %v; want one user", users, err)
		}
	})
}

// ---- sessions, tokens and devices ----

func TestSessionsAndDevices(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		const alice, bob = "@alice:example.org", "@bob:example.org"
		mustCreateUser(t, st, alice)
		mustCreateUser(t, st, bob)

		if err := st.CreateSession(ctx, alice, storage.NewSession{DeviceID: "LAPTOP", DisplayName: "Laptop", TokenHash: hash("a1")}); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		// Same device again: a second token, the display name kept.
		if err := st.CreateSession(ctx, alice, storage.NewSession{DeviceID: "LAPTOP", DisplayName: "Renamed", TokenHash: hash("a2")}); err != nil {
			t.Fatalf("CreateSession existing device: %v", err)
		}
		if err := st.CreateSession(ctx, alice, storage.NewSession{DeviceID: "DESKTOP", TokenHash: hash("a3")}); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		// Bob may use the same device ID: devices are per user.
		if err := st.CreateSession(ctx, bob, storage.NewSession{DeviceID: "LAPTOP", TokenHash: hash("b1")}); err != nil {
			t.Fatalf("CreateSession bob: %v", err)
		}

		for _, tc := range []struct {
			token string
			want  storage.TokenOwner
			err   error
		}{
			{"a1", storage.TokenOwner{UserID: alice, DeviceID: "LAPTOP"}, nil},
			{"a2", storage.TokenOwner{UserID: alice, DeviceID: "LAPTOP"}, nil},
			{"a3", storage.TokenOwner{UserID: alice, DeviceID: "DESKTOP"}, nil},
			{"b1", storage.TokenOwner{UserID: bob, DeviceID: "LAPTOP"}, nil},
			{"unknown", storage.TokenOwner{}, storage.ErrNotFound},
		} {
			got, err := st.LookupAccessToken(ctx, hash(tc.token))
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("LookupAccessToken(%s) = %+v, %v; want %+v, %v", tc.token, got, err, tc.want, tc.err)
			}
		}

		// Errors: unknown user, invalid session, reused token hash.
		wantErr(t, "CreateSession unknown user",
			st.CreateSession(ctx, "@nobody:example.org", storage.NewSession{DeviceID: "D", TokenHash: hash("n")}), storage.ErrNotFound)
		if err := st.CreateSession(ctx, alice, storage.NewSession{TokenHash: hash("n")}); err == nil {
			t.Error("CreateSession without device ID succeeded")
		}
		if err := st.CreateSession(ctx, alice, storage.NewSession{DeviceID: "D"}); err == nil {
			t.Error("CreateSession without token hash succeeded")
		}
		if err := st.CreateSession(ctx, alice, storage.NewSession{DeviceID: "NEW", TokenHash: hash("a1")}); err == nil {
			t.Error("CreateSession with a token hash in use succeeded")
		}
		if _, err := st.GetDevice(ctx, alice, "NEW"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("device of failed CreateSession: %v", err)
		}

		devices, err := st.GetDevices(ctx, alice)
		want := []storage.Device{
			{UserID: alice, DeviceID: "DESKTOP"},
			{UserID: alice, DeviceID: "LAPTOP", DisplayName: "Laptop"},
		}
		if err != nil || !reflect.DeepEqual(devices, want) {
			t.Errorf("GetDevices = %+v, %v; want %+v", devices, err, want)
		}
		if devices, err := st.GetDevices(ctx, "@nobody:example.org"); err != nil || devices == nil || len(devices) != 0 {
			t.Errorf("GetDevices of unknown user = %#v, %v; want empty", devices, err)
		}
		_, err = st.GetDevice(ctx, alice, "PHONE")
		wantErr(t, "GetDevice missing", err, storage.ErrNotFound)
		_, err = st.GetDevice(ctx, "@nobody:example.org", "LAPTOP")
		wantErr(t, "GetDevice other user", err, storage.ErrNotFound)

		// Last seen.
		if err := st.UpdateDeviceLastSeen(ctx, alice, "LAPTOP", "192.0.2.1", "Element/1.0", 1234); err != nil {
			t.Errorf("UpdateDeviceLastSeen: %v", err)
		}
		d, err := st.GetDevice(ctx, alice, "LAPTOP")
		wantD := storage.Device{UserID: alice, DeviceID: "LAPTOP", DisplayName: "Laptop", LastSeenTS: 1234, LastSeenIP: "192.0.2.1", LastSeenUA: "Element/1.0"}
		if err != nil || d != wantD {
			t.Errorf("GetDevice after UpdateDeviceLastSeen = %+v, %v; want %+v", d, err, wantD)
		}
		wantErr(t, "UpdateDeviceLastSeen missing",
			st.UpdateDeviceLastSeen(ctx, alice, "PHONE", "192.0.2.1", "x", 1), storage.ErrNotFound)

		// DeleteDevice removes the device and all its tokens, and only those.
		if err := st.DeleteDevice(ctx, alice, "LAPTOP"); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		for _, tok := range []string{"a1", "a2"} {
			_, err := st.LookupAccessToken(ctx, hash(tok))
			wantErr(t, "token of deleted device", err, storage.ErrNotFound)
		}
		_, err = st.GetDevice(ctx, alice, "LAPTOP")
		wantErr(t, "deleted device", err, storage.ErrNotFound)
		for _, tok := range []string{"a3", "b1"} {
			if _, err := st.LookupAccessToken(ctx, hash(tok)); err != nil {
				t.Errorf("token %s of another device: %v", tok, err)
			}
		}
		// Idempotent.
		if err := st.DeleteDevice(ctx, alice, "LAPTOP"); err != nil {
			t.Errorf("DeleteDevice again: %v", err)
		}
		if err := st.DeleteDevice(ctx, "@nobody:example.org", "X"); err != nil {
			t.Errorf("DeleteDevice of unknown user: %v", err)
		}
		// A deleted device can come back with a new session, with the new name.
		if err := st.CreateSession(ctx, alice, storage.NewSession{DeviceID: "LAPTOP", DisplayName: "Again", TokenHash: hash("a4")}); err != nil {
			t.Fatalf("CreateSession after delete: %v", err)
		}
		if d, _ := st.GetDevice(ctx, alice, "LAPTOP"); d.DisplayName != "Again" || d.LastSeenTS != 0 {
			t.Errorf("recreated device = %+v", d)
		}
	})
}

func TestDeleteDevicesExcept(t *testing.T) {
	for _, tc := range []struct {
		name        string
		keep        string
		wantDeleted []string
		wantLeft    []string
	}{
		{"keep one", "B", []string{"A", "C"}, []string{"B"}},
		{"keep none", "", []string{"A", "B", "C"}, []string{}},
		{"keep unknown", "Z", []string{"A", "B", "C"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
				st := storagetest.Open(t, o)
				ctx := ctxT(t)
				const alice, bob = "@alice:example.org", "@bob:example.org"
				mustCreateUser(t, st, alice)
				mustCreateUser(t, st, bob)
				for _, d := range []string{"C", "A", "B"} {
					mustSession(t, st, alice, d, "alice-"+d)
					mustSession(t, st, alice, d, "alice2-"+d)
				}
				mustSession(t, st, bob, "A", "bob-A")

				deleted, err := st.DeleteDevicesExcept(ctx, alice, tc.keep)
				if err != nil || !reflect.DeepEqual(deleted, tc.wantDeleted) {
					t.Errorf("DeleteDevicesExcept(%q) = %#v, %v; want %#v", tc.keep, deleted, err, tc.wantDeleted)
				}
				left := []string{}
				devices, _ := st.GetDevices(ctx, alice)
				for _, d := range devices {
					left = append(left, d.DeviceID)
				}
				if !reflect.DeepEqual(left, tc.wantLeft) {
					t.Errorf("devices left = %v, want %v", left, tc.wantLeft)
				}
				for _, d := range []string{"A", "B", "C"} {
					kept := d == tc.keep
					for _, tok := range []string{"alice-" + d, "alice2-" + d} {
						_, err := st.LookupAccessToken(ctx, hash(tok))
						if kept && err != nil {
							t.Errorf("token %s of kept device: %v", tok, err)
						}
						if !kept && !errors.Is(err, storage.ErrNotFound) {
							t.Errorf("token %s of deleted device: %v, want ErrNotFound", tok, err)
						}
					}
				}
				if _, err := st.LookupAccessToken(ctx, hash("bob-A")); err != nil {
					t.Errorf("other user's token: %v", err)
				}

				// Nothing left to delete: an empty, non-nil list.
				again, err := st.DeleteDevicesExcept(ctx, alice, tc.keep)
				if err != nil || again == nil || len(again) != 0 {
					t.Errorf("DeleteDevicesExcept again = %#v, %v; want empty", again, err)
				}
			})
		})
	}
}

// ---- user-interactive auth ----

func TestUIASessions(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		s1 := storage.UIASession{
			ID: "sess1", CreatedTS: 1000, Method: "POST", URI: "/_matrix/client/v3/delete_devices",
			Body:      json.RawMessage(`{"devices":["A","B"]}`),
			Completed: map[string]json.RawMessage{},
		}
		if err := st.CreateUIASession(ctx, s1); err != nil {
			t.Fatalf("CreateUIASession: %v", err)
		}
		got, err := st.GetUIASession(ctx, "sess1")
		if err != nil || !reflect.DeepEqual(got, s1) {
			t.Errorf("GetUIASession = %+v, %v; want %+v", got, err, s1)
		}
		if err := st.CreateUIASession(ctx, s1); err == nil {
			t.Error("CreateUIASession with a duplicate ID succeeded")
		}

		// A session created with stages already completed, and no body.
		s2 := storage.UIASession{
			ID: "sess2", CreatedTS: 2000, Method: "DELETE", URI: "/x",
			Completed: map[string]json.RawMessage{"m.login.dummy": json.RawMessage(`true`)},
		}
		if err := st.CreateUIASession(ctx, s2); err != nil {
			t.Fatalf("CreateUIASession: %v", err)
		}
		if got, err := st.GetUIASession(ctx, "sess2"); err != nil || !reflect.DeepEqual(got, s2) {
			t.Errorf("GetUIASession = %+v, %v; want %+v", got, err, s2)
		}

		// Completing stages; completing again replaces the result.
		steps := []struct {
			stage, result string
		}{
			{"m.login.password", `"@alice:example.org"`},
			{"m.login.recaptcha", `true`},
			{"m.login.password", `"@bob:example.org"`},
		}
		for _, st2 := range steps {
			if err := st.CompleteUIAStage(ctx, "sess1", st2.stage, json.RawMessage(st2.result)); err != nil {
				t.Fatalf("CompleteUIAStage(%s): %v", st2.stage, err)
			}
		}
		got, err = st.GetUIASession(ctx, "sess1")
		wantCompleted := map[string]json.RawMessage{
			"m.login.password":  json.RawMessage(`"@bob:example.org"`),
			"m.login.recaptcha": json.RawMessage(`true`),
		}
		if err != nil || !reflect.DeepEqual(got.Completed, wantCompleted) {
			t.Errorf("Completed = %s, %v; want %s", fmtStages(got.Completed), err, fmtStages(wantCompleted))
		}

		wantErr(t, "CompleteUIAStage missing", st.CompleteUIAStage(ctx, "nope", "m.login.dummy", json.RawMessage(`true`)), storage.ErrNotFound)
		_, err = st.GetUIASession(ctx, "nope")
		wantErr(t, "GetUIASession missing", err, storage.ErrNotFound)

		// Delete one, idempotently.
		if err := st.DeleteUIASession(ctx, "sess1"); err != nil {
			t.Fatalf("DeleteUIASession: %v", err)
		}
		_, err = st.GetUIASession(ctx, "sess1")
		wantErr(t, "deleted session", err, storage.ErrNotFound)
		wantErr(t, "CompleteUIAStage of deleted session", st.CompleteUIAStage(ctx, "sess1", "x", json.RawMessage(`1`)), storage.ErrNotFound)
		if err := st.DeleteUIASession(ctx, "sess1"); err != nil {
			t.Errorf("DeleteUIASession again: %v", err)
		}
		// Its ID is free again, with no stages left over.
		s1.Completed = map[string]json.RawMessage{}
		if err := st.CreateUIASession(ctx, s1); err != nil {
			t.Fatalf("CreateUIASession reusing ID: %v", err)
		}
		if got, _ := st.GetUIASession(ctx, "sess1"); len(got.Completed) != 0 {
			t.Errorf("stages survived deletion: %s", fmtStages(got.Completed))
		}
	})
}

func TestDeleteUIASessionsBefore(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		for _, ts := range []int64{100, 199, 200, 300} {
			id := fmt.Sprint("s", ts)
			if err := st.CreateUIASession(ctx, storage.UIASession{ID: id, CreatedTS: ts, Method: "POST", URI: "/"}); err != nil {
				t.Fatal(err)
			}
			if err := st.CompleteUIAStage(ctx, id, "m.login.dummy", json.RawMessage(`true`)); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.DeleteUIASessionsBefore(ctx, 200); err != nil {
			t.Fatalf("DeleteUIASessionsBefore: %v", err)
		}
		for _, tc := range []struct {
			id   string
			gone bool
		}{{"s100", true}, {"s199", true}, {"s200", false}, {"s300", false}} {
			got, err := st.GetUIASession(ctx, tc.id)
			switch {
			case tc.gone && !errors.Is(err, storage.ErrNotFound):
				t.Errorf("%s: %v, want ErrNotFound", tc.id, err)
			case !tc.gone && (err != nil || len(got.Completed) != 1):
				t.Errorf("%s: %+v, %v; want kept with its stage", tc.id, got, err)
			}
		}
		// Nothing matching is not an error.
		if err := st.DeleteUIASessionsBefore(ctx, 0); err != nil {
			t.Errorf("DeleteUIASessionsBefore(0): %v", err)
		}
	})
}

func fmtStages(m map[string]json.RawMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// ---- concurrency ----

// TestConcurrentWrites hammers the store from many goroutines. On SQLite it
// checks that the single serialised writer means no write ever fails with
// SQLITE_BUSY, while reads run beside the writes.
func TestConcurrentWrites(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		const workers, rounds = 16, 8
		var wg sync.WaitGroup
		errc := make(chan error, workers*rounds*8)
		for w := range workers {
			wg.Go(func() {
				user := fmt.Sprintf("@user%d:example.org", w)
				if err := st.CreateUser(ctx, storage.User{UserID: user, CreatedTS: int64(w)}, nil); err != nil {
					errc <- err
					return
				}
				for r := range rounds {
					dev := fmt.Sprint("D", r)
					sess := fmt.Sprintf("uia-%d-%d", w, r)
					for _, err := range []error{
						st.CreateSession(ctx, user, storage.NewSession{DeviceID: dev, TokenHash: hash(user + dev)}),
						st.UpdateDeviceLastSeen(ctx, user, dev, "192.0.2.1", "ua", int64(r)),
						st.SetPasswordHash(ctx, user, sess),
						st.CreateUIASession(ctx, storage.UIASession{ID: sess, CreatedTS: int64(r), Method: "POST", URI: "/"}),
						st.CompleteUIAStage(ctx, sess, "m.login.dummy", json.RawMessage(`true`)),
					} {
						if err != nil {
							errc <- err
						}
					}
					if _, err := st.GetDevices(ctx, user); err != nil {
						errc <- err
					}
					if _, err := st.LookupAccessToken(ctx, hash(user+dev)); err != nil {
						errc <- err
					}
					if r%4 == 3 {
						if _, err := st.DeleteDevicesExcept(ctx, user, dev); err != nil {
							errc <- err
						}
					}
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Errorf("concurrent operation: %v", err)
		}
		// The last round's DeleteDevicesExcept left only its own device.
		for w := range workers {
			devices, err := st.GetDevices(ctx, fmt.Sprintf("@user%d:example.org", w))
			if err != nil || len(devices) != 1 || devices[0].DeviceID != fmt.Sprint("D", rounds-1) {
				t.Errorf("user %d: devices %+v, %v; want only D%d", w, devices, err, rounds-1)
			}
		}
	})
}
