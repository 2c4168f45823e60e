package storage_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

func TestDirectoryStore(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx := context.Background()
		st := storagetest.Open(t, o)
		room := newTestRoom(t, st, "!r:hs", "@a:hs")
		other := newTestRoom(t, st, "!o:hs", "@a:hs")

		// Aliases: create, read back with the creator, list, delete.
		for _, a := range []string{"#b:hs", "#a:hs"} {
			if err := st.CreateAlias(ctx, a, room.id, "@a:hs", 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateAlias(ctx, "#o:hs", other.id, "@b:hs", 1); err != nil {
			t.Fatal(err)
		}
		if e, err := st.GetAliasEntry(ctx, "#o:hs"); err != nil || e != (storage.AliasEntry{RoomID: other.id, Creator: "@b:hs"}) {
			t.Fatalf("GetAliasEntry = %+v, %v", e, err)
		}
		if _, err := st.GetAliasEntry(ctx, "#none:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetAliasEntry(unknown) err = %v", err)
		}
		if got, err := st.AliasesForRoom(ctx, room.id); err != nil || !reflect.DeepEqual(got, []string{"#a:hs", "#b:hs"}) {
			t.Fatalf("AliasesForRoom = %v, %v", got, err)
		}
		if got, err := st.AliasesForRoom(ctx, "!none:hs"); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("AliasesForRoom(unknown) = %#v, %v", got, err)
		}
		if rid, err := st.DeleteAlias(ctx, "#a:hs"); err != nil || rid != room.id {
			t.Fatalf("DeleteAlias = %q, %v", rid, err)
		}
		if _, err := st.DeleteAlias(ctx, "#a:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("DeleteAlias again err = %v", err)
		}
		if got, _ := st.AliasesForRoom(ctx, room.id); !reflect.DeepEqual(got, []string{"#b:hs"}) {
			t.Fatalf("AliasesForRoom after delete = %v", got)
		}

		// Published rooms: joined members counted, the listed state read.
		if got, err := st.PublishedRooms(ctx); err != nil || len(got) != 0 {
			t.Fatalf("PublishedRooms of none = %+v, %v", got, err)
		}
		room.state("m.room.member", "@b:hs", "@b:hs", "join")
		room.state("m.room.member", "@c:hs", "@a:hs", "invite")
		room.state("m.room.name", "", "@a:hs", "")
		room.state("m.room.topic", "", "@a:hs", "")
		room.state("m.room.member", "@d:hs", "@d:hs", "join")
		room.state("m.room.member", "@d:hs", "@d:hs", "leave")
		room.state("org.example.other", "", "@a:hs", "")
		for _, id := range []string{room.id, other.id} {
			if err := st.SetRoomPublished(ctx, id, true, 5); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.PublishedRooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b storage.PublishedRoom) int { return strings.Compare(a.RoomID, b.RoomID) })
		if len(got) != 2 || got[0].RoomID != other.id || got[1].RoomID != room.id {
			t.Fatalf("PublishedRooms = %+v", got)
		}
		if got[0].JoinedMembers != 1 || got[1].JoinedMembers != 2 {
			t.Errorf("joined members %d, %d; want 1, 2", got[0].JoinedMembers, got[1].JoinedMembers)
		}
		var types []string
		for typ, js := range got[1].State {
			types = append(types, typ)
			if !strings.Contains(string(js), `"type":"`+typ+`"`) {
				t.Errorf("state %s: JSON %s", typ, js)
			}
		}
		slices.Sort(types)
		if want := []string{"m.room.create", "m.room.name", "m.room.topic"}; !reflect.DeepEqual(types, want) {
			t.Errorf("state types %v, want %v", types, want)
		}
		if err := st.SetRoomPublished(ctx, other.id, false, 6); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.PublishedRooms(ctx); len(got) != 1 || got[0].RoomID != room.id {
			t.Fatalf("PublishedRooms after unpublishing = %+v", got)
		}
	})
}
