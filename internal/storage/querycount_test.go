package storage_test

import (
	"context"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

// TestQueryCounter checks that Options.Queries counts one statement per
// query, on the read pool, the writer and inside a read snapshot.
func TestQueryCounter(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		var qc storage.QueryCounter
		o.Queries = &qc
		st := storagetest.Open(t, o)
		ctx := ctxT(t)

		count := func(what string, want int64, fn func()) {
			t.Helper()
			before := qc.Load()
			fn()
			if got := qc.Load() - before; got != want {
				t.Errorf("%s: counted %d statements, want %d", what, got, want)
			}
		}
		// The user, their profile and its user directory tokens.
		count("CreateUser", 3, func() { mustCreateUser(t, st, "@alice:test") })
		const n = 7
		count("GetUser ×7", n, func() {
			for range n {
				if _, err := st.GetUser(ctx, "@alice:test"); err != nil {
					t.Fatal(err)
				}
			}
		})
		count("GetUser of a missing user", 1, func() {
			if _, err := st.GetUser(ctx, "@nobody:test"); err == nil {
				t.Fatal("GetUser of a missing user succeeded")
			}
		})
		count("ReadStream: Positions and Memberships", 2, func() {
			err := st.ReadStream(ctx, func(r storage.StreamReader) error {
				if _, err := r.Positions(ctx); err != nil {
					return err
				}
				_, err := r.Memberships(ctx, "@alice:test")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	})
}

// TestQueryCounterSeparate checks that each store counts into its own
// counter.
func TestQueryCounterSeparate(t *testing.T) {
	var a, b storage.QueryCounter
	oa := storagetest.Fresh(t, storage.DriverSQLite)
	oa.Queries = &a
	ob := storagetest.Fresh(t, storage.DriverSQLite)
	ob.Queries = &b
	sa := storagetest.Open(t, oa)
	storagetest.Open(t, ob)
	a0, b0 := a.Load(), b.Load()
	if _, err := sa.GetUser(context.Background(), "@x:test"); err == nil {
		t.Fatal("GetUser of a missing user succeeded")
	}
	if got := a.Load() - a0; got != 1 {
		t.Errorf("store A counted %d, want 1", got)
	}
	if got := b.Load() - b0; got != 0 {
		t.Errorf("store B counted %d, want 0", got)
	}
}
