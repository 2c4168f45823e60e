package storage_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

func TestAccountData(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx := context.Background()
		st := storagetest.Open(t, o)

		if _, err := st.GetAccountData(ctx, "@a:hs", "", "m.direct"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetAccountData of nothing: %v, want ErrNotFound", err)
		}
		if got, err := st.AccountDataSince(ctx, "@a:hs", 0); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("AccountDataSince of nothing = %#v, %v; want empty, not nil", got, err)
		}

		p1, err := st.SetAccountData(ctx, "@a:hs", "", "m.direct", []byte(`{"x":"héllo ✓"}`))
		if err != nil {
			t.Fatal(err)
		}
		p2, err := st.SetAccountData(ctx, "@a:hs", "!r:hs", "m.tag", []byte(`{"tags":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		p3, err := st.SetAccountData(ctx, "@b:hs", "", "m.direct", []byte(`{"b":1}`))
		if err != nil {
			t.Fatal(err)
		}
		if !(p1 > 0 && p2 > p1 && p3 > p2) {
			t.Fatalf("positions %d, %d, %d do not increase", p1, p2, p3)
		}
		// Global and room data of the same type are separate; users too.
		for _, c := range []struct{ user, room, typ, want string }{
			{"@a:hs", "", "m.direct", `{"x":"héllo ✓"}`},
			{"@a:hs", "!r:hs", "m.tag", `{"tags":{}}`},
			{"@b:hs", "", "m.direct", `{"b":1}`},
		} {
			got, err := st.GetAccountData(ctx, c.user, c.room, c.typ)
			if err != nil || string(got) != c.want {
				t.Errorf("GetAccountData(%s, %q, %s) = %s, %v; want %s", c.user, c.room, c.typ, got, err, c.want)
			}
		}
		if _, err := st.GetAccountData(ctx, "@a:hs", "!r:hs", "m.direct"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("room data of a global-only type: %v, want ErrNotFound", err)
		}

		// Replacing moves the entry to a new position.
		p4, err := st.SetAccountData(ctx, "@a:hs", "", "m.direct", []byte(`{"x":2}`))
		if err != nil || p4 <= p3 {
			t.Fatalf("replace: pos %d, %v; want > %d", p4, err, p3)
		}
		if got, _ := st.GetAccountData(ctx, "@a:hs", "", "m.direct"); string(got) != `{"x":2}` {
			t.Errorf("after replace: %s", got)
		}
		all, err := st.AccountDataSince(ctx, "@a:hs", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []storage.AccountDataEntry{
			{RoomID: "!r:hs", Type: "m.tag", Content: []byte(`{"tags":{}}`), StreamPos: p2},
			{RoomID: "", Type: "m.direct", Content: []byte(`{"x":2}`), StreamPos: p4},
		}
		if !reflect.DeepEqual(all, want) {
			t.Errorf("AccountDataSince(0) = %+v, want %+v", all, want)
		}
		since, err := st.AccountDataSince(ctx, "@a:hs", p2)
		if err != nil || len(since) != 1 || since[0].StreamPos != p4 {
			t.Errorf("AccountDataSince(%d) = %+v, %v", p2, since, err)
		}
		if since, _ := st.AccountDataSince(ctx, "@a:hs", p4); len(since) != 0 {
			t.Errorf("AccountDataSince(latest) = %+v, want empty", since)
		}

		// Text PostgreSQL cannot store is refused on both databases.
		if _, err := st.SetAccountData(ctx, "@a:hs", "", "bad\x00type", []byte(`{}`)); err == nil {
			t.Error("a NUL byte in the type was accepted")
		}
		if _, err := st.SetAccountData(ctx, "@a:hs", "", "t", []byte("{\"\xff\":1}")); err == nil {
			t.Error("invalid UTF-8 content was accepted")
		}
	})
}

func TestAccountDataConcurrentPositions(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx := context.Background()
		st := storagetest.Open(t, o)
		const n = 40
		var wg sync.WaitGroup
		pos := make([]int64, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pos[i], errs[i] = st.SetAccountData(ctx, "@c:hs", "", fmt.Sprintf("t.%d", i), []byte(`{}`))
			}()
		}
		wg.Wait()
		seen := map[int64]bool{}
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if seen[pos[i]] {
				t.Fatalf("position %d given twice", pos[i])
			}
			seen[pos[i]] = true
		}
		all, err := st.AccountDataSince(ctx, "@c:hs", 0)
		if err != nil || len(all) != n {
			t.Fatalf("AccountDataSince: %d entries, %v", len(all), err)
		}
		for i := 1; i < n; i++ {
			if all[i].StreamPos <= all[i-1].StreamPos {
				t.Fatalf("not ordered by position: %d after %d", all[i].StreamPos, all[i-1].StreamPos)
			}
		}
	})
}

func TestFilters(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx := context.Background()
		st := storagetest.Open(t, o)
		if _, err := st.GetFilter(ctx, "@a:hs", 0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetFilter of nothing: %v", err)
		}
		for i, f := range []string{`{"a":1}`, `{"a":2}`, `{"a":3}`} {
			id, err := st.AddFilter(ctx, "@a:hs", []byte(f))
			if err != nil || id != int64(i) {
				t.Fatalf("AddFilter #%d = %d, %v; want %d", i, id, err, i)
			}
		}
		// Per-user counters.
		if id, err := st.AddFilter(ctx, "@b:hs", []byte(`{"a":1}`)); err != nil || id != 0 {
			t.Fatalf("other user's first filter = %d, %v; want 0", id, err)
		}
		// The same text again gives the same ID.
		if id, err := st.AddFilter(ctx, "@a:hs", []byte(`{"a":2}`)); err != nil || id != 1 {
			t.Fatalf("same filter again = %d, %v; want 1", id, err)
		}
		if got, err := st.GetFilter(ctx, "@a:hs", 2); err != nil || string(got) != `{"a":3}` {
			t.Errorf("GetFilter(2) = %s, %v", got, err)
		}
		if _, err := st.GetFilter(ctx, "@b:hs", 2); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("another user's filter: %v, want ErrNotFound", err)
		}
		// Concurrent adds get distinct IDs.
		const n = 20
		var wg sync.WaitGroup
		ids := make([]int64, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], errs[i] = st.AddFilter(ctx, "@c:hs", fmt.Appendf(nil, `{"n":%d}`, i))
			}()
		}
		wg.Wait()
		seen := map[int64]bool{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("concurrent AddFilter: %v", errs[i])
			}
			if seen[ids[i]] || ids[i] < 0 || ids[i] >= n {
				t.Fatalf("concurrent AddFilter ids %v", ids)
			}
			seen[ids[i]] = true
		}
	})
}
