package storage_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

func TestReadStream(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := context.Background()
		a := newTestRoom(t, st, "!a:hs", "@u:hs")
		b := newTestRoom(t, st, "!b:hs", "@v:hs")
		mark, _ := st.MaxStreamPos(ctx)
		inviteB, _ := b.state("m.room.member", "@u:hs", "@v:hs", "invite")
		a.state("m.room.name", "", "@u:hs", "")
		sent, _ := a.message("@u:hs", &storage.TxnKey{UserID: "@u:hs", DeviceID: "D", TxnID: "t1"})
		other, _ := a.message("@u:hs", &storage.TxnKey{UserID: "@u:hs", DeviceID: "E", TxnID: "t2"})
		if _, err := st.SetAccountData(ctx, "@u:hs", "", "m.x", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		// Groups made along the way, with the expected state of each.
		groups := map[int64][]storage.StateEntry{}
		for _, r := range []*testRoom{a, b} {
			for g, want := range r.groups {
				groups[g] = want
			}
		}

		err := st.ReadStream(ctx, func(r storage.StreamReader) error {
			pos, err := r.Positions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			top, _ := st.MaxStreamPos(ctx)
			if pos.Events != top || pos.AccountData < 1 {
				t.Errorf("positions %+v, want events %d and account data >= 1", pos, top)
			}
			// The snapshot does not move: an event persisted now is not
			// seen by it.
			a.message("@u:hs", nil)
			if again, _ := r.Positions(ctx); again != pos {
				t.Errorf("positions moved inside the snapshot: %+v -> %+v", pos, again)
			}

			ms, err := r.Memberships(ctx, "@u:hs")
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 2 || ms[0].RoomID != "!a:hs" || ms[0].Membership != "join" || ms[1].RoomID != "!b:hs" ||
				ms[1].Membership != "invite" || ms[1].EventID != inviteB || ms[1].StateGroupAfter == 0 {
				t.Errorf("memberships %+v", ms)
			}
			ch, err := r.MembershipChanges(ctx, "@u:hs", mark, pos.Events)
			if err != nil {
				t.Fatal(err)
			}
			if len(ch) != 1 || ch[0].EventID != inviteB {
				t.Errorf("membership changes since %d: %+v, want the invite", mark, ch)
			}

			// StateAt of every group matches the model, in one call.
			var gs []int64
			for g := range groups {
				gs = append(gs, g)
			}
			got, err := r.StateAt(ctx, gs, storage.StateFilter{})
			if err != nil {
				t.Fatal(err)
			}
			for g, want := range groups {
				var have []storage.StateEntry
				for _, e := range got[g] {
					have = append(have, storage.StateEntry{Type: e.Type, StateKey: *e.StateKey, EventID: e.EventID})
				}
				if !reflect.DeepEqual(have, want) {
					t.Errorf("group %d: %v, want %v", g, have, want)
				}
			}
			// Narrowed: only one user's membership and the name, changed
			// after mark.
			narrow, err := r.StateAt(ctx, []int64{a.group, b.group}, storage.StateFilter{
				Types: []string{"m.room.member", "m.room.name"}, Members: []string{"@u:hs"}, Since: mark})
			if err != nil {
				t.Fatal(err)
			}
			if len(narrow[a.group]) != 1 || narrow[a.group][0].Type != "m.room.name" {
				t.Errorf("room a narrowed: %+v, want only the new name", narrow[a.group])
			}
			if len(narrow[b.group]) != 1 || narrow[b.group][0].EventID != inviteB {
				t.Errorf("room b narrowed: %+v, want only the invite", narrow[b.group])
			}
			if none, _ := r.StateAt(ctx, []int64{a.group}, storage.StateFilter{Types: []string{}}); len(none) != 0 {
				t.Errorf("empty type list: %v", none)
			}

			txns, err := r.TxnIDs(ctx, "@u:hs", "D", []string{sent, other, "$nope"})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(txns, map[string]string{sent: "t1"}) {
				t.Errorf("transaction IDs of device D: %v", txns)
			}
			ad, err := r.AccountData(ctx, "@u:hs", 0, pos.AccountData)
			if err != nil || len(ad) != 1 || ad[0].Type != "m.x" {
				t.Errorf("account data: %v %v", ad, err)
			}
			if ad, _ := r.AccountData(ctx, "@u:hs", 0, pos.AccountData-1); len(ad) != 0 {
				t.Errorf("account data above the bound: %v", ad)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

	})
}

func TestTimelineMatch(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := context.Background()
		a := newTestRoom(t, st, "!a:hs", "@u:hs")
		a.state("m.room.member", "@v:hs", "@v:hs", "join")
		mark, _ := st.MaxStreamPos(ctx)
		var want []string
		for i := range 6 {
			sender := "@u:hs"
			if i%2 == 1 {
				sender = "@v:hs"
			}
			e := a.draft("m.room.message", nil, sender, "")
			if i == 4 {
				e.Type = "M.ROOM.MESSAGE" // case matters, as on PostgreSQL
			}
			a.persist(e)
			if sender == "@u:hs" && i != 4 {
				want = append(want, e.EventID)
			}
		}
		a.state("m.room.topic", "", "@u:hs", "")
		top, _ := st.MaxStreamPos(ctx)
		cases := []struct {
			name    string
			m       storage.EventMatch
			limit   int
			n       int
			limited bool
		}{
			{"all", storage.EventMatch{}, 3, 3, true},
			{"types glob", storage.EventMatch{Types: []string{"m.room.mess*"}, TypesSet: true}, 10, 5, false},
			{"not types", storage.EventMatch{NotTypes: []string{"m.room.*"}}, 10, 1, false},
			{"senders", storage.EventMatch{Senders: []string{"@u:hs"}, SendersSet: true, Types: []string{"m.room.message"}, TypesSet: true}, 1, 1, true},
			{"not senders", storage.EventMatch{NotSenders: []string{"@v:hs"}}, 10, 4, false},
			{"empty types", storage.EventMatch{TypesSet: true}, 10, 0, false},
			{"literal underscore", storage.EventMatch{Types: []string{"m_room*"}, TypesSet: true}, 10, 0, false},
		}
		err := st.ReadStream(ctx, func(r storage.StreamReader) error {
			for _, c := range cases {
				evs, limited, err := r.LatestRoomEvents(ctx, []string{"!a:hs"}, mark, top, c.limit, c.m)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if len(evs["!a:hs"]) != c.n || limited["!a:hs"] != c.limited {
					t.Errorf("%s: %d events, limited %v; want %d, %v", c.name, len(evs["!a:hs"]), limited["!a:hs"], c.n, c.limited)
				}
			}
			evs, _, _ := r.LatestRoomEvents(ctx, []string{"!a:hs"}, mark, top, 1, cases[3].m)
			if got := evs["!a:hs"]; len(got) != 1 || got[0].EventID != want[len(want)-1] {
				t.Errorf("latest of @u:hs: %+v, want %s", got, want[len(want)-1])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
