package storage_test

import (
	"context"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

func TestStreamReads(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ss := st
		ctx := context.Background()
		a := newTestRoom(t, st, "!a:hs", "@u:hs") // 2 events each
		b := newTestRoom(t, st, "!b:hs", "@u:hs")
		newTestRoom(t, st, "!c:hs", "@u:hs")
		mark, err := st.MaxStreamPos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var aIDs, bIDs []string
		for range 5 {
			id, _ := a.message("@u:hs", nil)
			aIDs = append(aIDs, id)
		}
		id, _ := b.message("@u:hs", nil)
		bIDs = append(bIDs, id)
		top, _ := st.MaxStreamPos(ctx)

		evs, limited, err := ss.LatestRoomEvents(ctx, []string{"!a:hs", "!b:hs", "!c:hs", "!none:hs"}, mark, top, 3)
		if err != nil {
			t.Fatal(err)
		}
		ids := func(list []storage.StoredEvent) []string {
			var out []string
			for _, e := range list {
				out = append(out, e.EventID)
			}
			return out
		}
		if got := ids(evs["!a:hs"]); len(got) != 3 || got[0] != aIDs[2] || got[2] != aIDs[4] {
			t.Errorf("room a: %v, want the latest 3 of %v in stream order", got, aIDs)
		}
		if !limited["!a:hs"] || limited["!b:hs"] {
			t.Errorf("limited = %v, want only room a", limited)
		}
		if got := ids(evs["!b:hs"]); len(got) != 1 || got[0] != bIDs[0] {
			t.Errorf("room b: %v", got)
		}
		if len(evs["!c:hs"]) != 0 || len(evs["!none:hs"]) != 0 {
			t.Errorf("rooms without new events: %v", evs)
		}
		// Initial-sync form: from 0, everything of each room up to top.
		all, limitedAll, _ := ss.LatestRoomEvents(ctx, []string{"!c:hs"}, 0, top, 10)
		if len(all["!c:hs"]) != 2 || limitedAll["!c:hs"] {
			t.Errorf("room c from 0: %d events, limited %v", len(all["!c:hs"]), limitedAll["!c:hs"])
		}
		// Backwards from the newest event of room a, 2 at a time, fills the
		// gap with nothing missing and nothing repeated.
		var back []string
		before := top + 1
		for {
			page, err := ss.RoomEventsBefore(ctx, "!a:hs", before, 0, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				back = append(back, e.EventID)
			}
			before = page[len(page)-1].StreamPos
		}
		if len(back) != 7 || back[0] != aIDs[4] {
			t.Errorf("backwards walk %v (want 7 events, newest first)", back)
		}
	})
}
