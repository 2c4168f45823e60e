package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/storage"
)

// TestFreshIsolatedAndCleanedUp checks that two fresh databases do not see
// each other's data and that a PostgreSQL schema is gone after its test.
func TestFreshIsolatedAndCleanedUp(t *testing.T) {
	var schemas []string
	ForEachDB(t, func(t *testing.T, o storage.Options) {
		other := Fresh(t, o.Driver)
		if o == other {
			t.Fatalf("Fresh returned the same database twice: %+v", o)
		}
		a, b := Open(t, o), Open(t, other)
		if err := a.CreateUser(t.Context(), storage.User{UserID: "@a:x"}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.GetUser(t.Context(), "@a:x"); err != storage.ErrNotFound {
			t.Errorf("user visible in the other fresh database: %v", err)
		}
		if o.Driver == storage.DriverPostgres {
			schemas = append(schemas, schemaOf(o.PostgresDSN), schemaOf(other.PostgresDSN))
		}
	})
	if len(schemas) == 0 {
		return // PostgreSQL was skipped.
	}
	db, err := adminDB(PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range schemas {
		var n int
		err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = $1`, s).Scan(&n)
		if err != nil || n != 0 {
			t.Errorf("schema %q still exists after its test (%d, %v)", s, n, err)
		}
	}
}

// TestFreshKeyValueDSN checks a key=value server DSN works too.
func TestFreshKeyValueDSN(t *testing.T) {
	if _, err := adminDB(PostgresDSN()); err != nil {
		t.Skipf("postgres: no server reachable at %s (set %s); skipping", redact(PostgresDSN()), PostgresEnv)
	}
	if PostgresDSN() != DefaultPostgresDSN {
		t.Skip("only meaningful against the default server")
	}
	t.Setenv(PostgresEnv, "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable")
	o := Fresh(t, storage.DriverPostgres)
	if schemaOf(o.PostgresDSN) == "" {
		t.Fatalf("no search_path in %q", o.PostgresDSN)
	}
	st := Open(t, o)
	if err := st.CreateUser(t.Context(), storage.User{UserID: "@a:x"}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestFreshSkipsWithoutServer checks that an unreachable server skips the
// test quickly rather than failing it.
func TestFreshSkipsWithoutServer(t *testing.T) {
	t.Setenv(PostgresEnv, "postgres://postgres@127.0.0.1:1/test?sslmode=disable")
	skipped := false
	start := time.Now()
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Fresh(t, storage.DriverPostgres)
	})
	if !skipped {
		t.Error("Fresh did not skip with no server")
	}
	if d := time.Since(start); d > reachTimeout+time.Second {
		t.Errorf("skipping took %v", d)
	}
}

func TestWithSearchPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?search_path=s1&sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db?search_path=s1"},
		{"postgres://u@h/db?search_path=old", "postgres://u@h/db?search_path=s1"},
		{"host=h dbname=db ", "host=h dbname=db search_path=s1"},
	} {
		got, err := withSearchPath(tc.in, "s1")
		if err != nil || got != tc.want {
			t.Errorf("withSearchPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if s := schemaOf(got); s != "s1" {
			t.Errorf("schemaOf(%q) = %q", got, s)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h/db":                "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?password=secret":       "postgres://u@h/db?password=xxxxx",
		"host=h password=secret user=u":           "host=h password=xxxxx user=u",
		"host=h password = 'sec ret' user=u":      "host=h password = xxxxx user=u",
		"postgres://postgres@127.0.0.1:5432/test": "postgres://postgres@127.0.0.1:5432/test",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// Fresh databases must be usable by Open with a deadline-bound context too.
func TestOpenWithDeadline(t *testing.T) {
	ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		st, err := storage.Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		// The Store must not be tied to Open's context.
		if err := st.CreateUser(t.Context(), storage.User{UserID: "@a:x"}, nil); err != nil {
			t.Errorf("CreateUser after Open's context ended: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}
