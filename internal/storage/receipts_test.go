package storage_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

func TestReceipts(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx := context.Background()
		st := storagetest.Open(t, o)
		room := newTestRoom(t, st, "!r:hs", "@a:hs")
		other := newTestRoom(t, st, "!o:hs", "@a:hs")
		e1, _ := room.message("@a:hs", nil)
		e2, _ := room.message("@a:hs", nil)
		e3, _ := room.message("@a:hs", nil)
		otherEv, _ := other.message("@a:hs", nil)

		maxPos := func() int64 {
			t.Helper()
			p, err := st.MaxReceiptPos(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		since := func(rooms []string, from, to int64) []storage.Receipt {
			t.Helper()
			got, err := st.ReceiptsSince(ctx, rooms, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("ReceiptsSince returned nil, want empty")
			}
			return got
		}
		if p := maxPos(); p != 0 {
			t.Fatalf("MaxReceiptPos of nothing = %d, want 0", p)
		}
		if got := since([]string{"!r:hs"}, 0, 100); len(got) != 0 {
			t.Fatalf("ReceiptsSince of nothing = %+v", got)
		}

		var last int64
		set := func(what string, r storage.Receipt, wantNew bool) int64 {
			t.Helper()
			p, err := st.SetReceipt(ctx, r)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			switch {
			case wantNew && p <= last:
				t.Fatalf("%s: position %d, want > %d", what, p, last)
			case !wantNew && p != 0:
				t.Fatalf("%s: position %d, want 0 (ignored)", what, p)
			}
			if wantNew {
				last = p
			}
			if m := maxPos(); m != last {
				t.Fatalf("%s: MaxReceiptPos = %d, want %d", what, m, last)
			}
			return p
		}
		rcpt := func(typ, user, thread, ev string, ts int64) storage.Receipt {
			return storage.Receipt{RoomID: "!r:hs", Type: typ, UserID: user, ThreadID: thread, EventID: ev, TS: ts}
		}

		// Types, users and threads are separate receipts.
		pRead := set("m.read", rcpt("m.read", "@a:hs", "", e2, 10), true)
		pPriv := set("m.read.private", rcpt("m.read.private", "@a:hs", "", e1, 11), true)
		pThread := set("threaded", rcpt("m.read", "@a:hs", "$root", e1, 12), true)
		pBob := set("bob", rcpt("m.read", "@b:hs", "", e1, 13), true)

		// Never backwards, and not again for the same event (Synapse's
		// "in favour of existing one for later event"); the position taken
		// is given back.
		set("backwards", rcpt("m.read", "@a:hs", "", e1, 20), false)
		set("same event", rcpt("m.read", "@a:hs", "", e2, 21), false)
		// Forwards replaces, with a new position.
		pFwd := set("forwards", rcpt("m.read", "@a:hs", "", e3, 22), true)

		want := []storage.Receipt{
			{RoomID: "!r:hs", Type: "m.read.private", UserID: "@a:hs", ThreadID: "", EventID: e1, TS: 11, StreamPos: pPriv},
			{RoomID: "!r:hs", Type: "m.read", UserID: "@a:hs", ThreadID: "$root", EventID: e1, TS: 12, StreamPos: pThread},
			{RoomID: "!r:hs", Type: "m.read", UserID: "@b:hs", ThreadID: "", EventID: e1, TS: 13, StreamPos: pBob},
			{RoomID: "!r:hs", Type: "m.read", UserID: "@a:hs", ThreadID: "", EventID: e3, TS: 22, StreamPos: pFwd},
		}
		if got := since([]string{"!r:hs"}, 0, last); !reflect.DeepEqual(got, want) {
			t.Errorf("ReceiptsSince(0) =\n%+v\nwant\n%+v", got, want)
		}
		// The window is (since, to]; the replaced receipt is gone.
		if got := since([]string{"!r:hs", "!r:hs"}, pRead, pBob); !reflect.DeepEqual(got, want[:3]) {
			t.Errorf("ReceiptsSince(%d, %d) = %+v, want %+v", pRead, pBob, got, want[:3])
		}
		if got := since([]string{"!r:hs"}, last, last+5); len(got) != 0 {
			t.Errorf("ReceiptsSince(latest) = %+v", got)
		}
		if got := since([]string{"!o:hs", "!none:hs"}, 0, last); len(got) != 0 {
			t.Errorf("rooms without receipts: %+v", got)
		}
		if got := since(nil, 0, last); len(got) != 0 {
			t.Errorf("no rooms: %+v", got)
		}

		// An event the store does not know (or of another room) always
		// replaces, and is always replaced (Synapse: a remote receipt).
		set("unknown event", rcpt("m.read", "@c:hs", "", "$unknown", 30), true)
		set("known after unknown", rcpt("m.read", "@c:hs", "", e1, 31), true)
		set("other room's event", rcpt("m.read", "@c:hs", "", otherEv, 32), true)
		set("earlier after other room's", rcpt("m.read", "@c:hs", "", e1, 33), true)

		// Text PostgreSQL cannot store is refused on both databases.
		if _, err := st.SetReceipt(ctx, rcpt("m.read", "@a:hs", "bad\x00thread", e3, 1)); err == nil {
			t.Error("a NUL byte in the thread ID was accepted")
		}
		if _, err := st.SetReceipt(ctx, rcpt("m.read", "@a:hs\xff", "", e3, 1)); err == nil {
			t.Error("invalid UTF-8 in the user ID was accepted")
		}
		if m := maxPos(); m != last {
			t.Errorf("refused receipts moved the stream to %d from %d", m, last)
		}
	})
}

// TestReceiptsManyRooms: more rooms than one query takes; the answer is
// still in stream order across the queries.
func TestReceiptsManyRooms(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx := context.Background()
		st := storagetest.Open(t, o)
		rooms := make([]string, 4500)
		for i := range rooms {
			rooms[i] = fmt.Sprintf("!room%d:hs", i)
		}
		// Later rooms of the list get earlier positions.
		var want []storage.Receipt
		for _, i := range []int{4400, 2100, 0, 2001} {
			r := storage.Receipt{RoomID: rooms[i], Type: "m.read", UserID: "@u:hs", EventID: "$e", TS: 1}
			p, err := st.SetReceipt(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			r.StreamPos = p
			want = append(want, r)
		}
		got, err := st.ReceiptsSince(ctx, rooms, 0, want[len(want)-1].StreamPos)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ReceiptsSince over %d rooms =\n%+v\nwant\n%+v", len(rooms), got, want)
		}
	})
}

// TestReceiptsConcurrent: concurrent writers get distinct positions, and
// racing receipts of one user end on the latest event whatever the order.
func TestReceiptsConcurrent(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx := context.Background()
		st := storagetest.Open(t, o)
		room := newTestRoom(t, st, "!r:hs", "@a:hs")
		const n = 20
		evs := make([]string, n)
		for i := range evs {
			evs[i], _ = room.message("@a:hs", nil)
		}
		var wg sync.WaitGroup
		pos := make([]int64, 2*n)
		errs := make([]error, 2*n)
		for i := range n {
			wg.Add(2)
			go func() { // one receipt each for n users
				defer wg.Done()
				pos[i], errs[i] = st.SetReceipt(ctx, storage.Receipt{RoomID: "!r:hs", Type: "m.read", UserID: fmt.Sprintf("@u%d:hs", i), EventID: evs[0], TS: 1})
			}()
			go func() { // n receipts of one user
				defer wg.Done()
				pos[n+i], errs[n+i] = st.SetReceipt(ctx, storage.Receipt{RoomID: "!r:hs", Type: "m.read", UserID: "@a:hs", EventID: evs[i], TS: 1})
			}()
		}
		wg.Wait()
		seen := map[int64]bool{}
		for i, p := range pos {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if p != 0 && seen[p] {
				t.Fatalf("position %d given twice", p)
			}
			seen[p] = true
		}
		for i := range n {
			if pos[i] == 0 {
				t.Errorf("the first receipt of @u%d was ignored", i)
			}
		}
		top, err := st.MaxReceiptPos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.ReceiptsSince(ctx, []string{"!r:hs"}, 0, top)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n+1 {
			t.Fatalf("%d receipts, want %d", len(got), n+1)
		}
		for i, r := range got {
			if i > 0 && r.StreamPos <= got[i-1].StreamPos {
				t.Errorf("receipts out of order: %+v", got)
			}
			if r.UserID == "@a:hs" && r.EventID != evs[n-1] {
				t.Errorf("@a's receipt ended on %s, want the latest event %s", r.EventID, evs[n-1])
			}
		}
	})
}
