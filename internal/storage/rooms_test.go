package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

// ---- room test helpers ----

func strp(s string) *string { return &s }

// eventJSON is a stand-in for an event's canonical JSON: unique per event,
// valid JSON, with some non-ASCII text to check it round-trips.
func eventJSON(id, typ string) []byte {
	return fmt.Appendf(nil, `{"content":{"body":"héllo ✓"},"event_id":%q,"type":%q}`, id, typ)
}

// testRoom builds a linear room history the way the room service does:
// each event on the previous one and on the current state, and keeps the
// state it expects (model) and the state expected at every group.
type testRoom struct {
	t      testing.TB
	st     storage.Store
	id     string
	group  int64
	prev   []string
	depth  int64
	seq    int
	model  map[[2]string]string           // (type, state key) -> event ID
	groups map[int64][]storage.StateEntry // expected state of every group made
	// memberships maps each member event's ID to its membership.
	memberships map[string]string
	last        storage.PersistResult
}

// newTestRoom creates a room and persists its create event and the
// creator's join.
func newTestRoom(t testing.TB, st storage.Store, id, creator string) *testRoom {
	t.Helper()
	if err := st.CreateRoom(context.Background(), storage.Room{RoomID: id, Version: "10", Creator: creator, CreatedTS: 1000}); err != nil {
		t.Fatalf("CreateRoom(%s): %v", id, err)
	}
	r := &testRoom{t: t, st: st, id: id}
	r.state("m.room.create", "", creator, "")
	r.state("m.room.member", creator, creator, "join")
	return r
}

func (r *testRoom) nextID() string {
	r.seq++
	return fmt.Sprintf("$%s-%d", strings.TrimPrefix(strings.SplitN(r.id, ":", 2)[0], "!"), r.seq)
}

// draft returns the next event of the room, not persisted.
func (r *testRoom) draft(typ string, stateKey *string, sender, membership string) storage.NewEvent {
	id := r.nextID()
	return storage.NewEvent{
		EventID: id, RoomID: r.id, Type: typ, StateKey: stateKey, Sender: sender, Membership: membership,
		JSON: eventJSON(id, typ), Depth: r.depth + 1, OriginServerTS: 1_700_000_000_000 + int64(r.seq),
		PrevEvents: slices.Clone(r.prev), StateGroupBefore: r.group,
	}
}

// persist stores e, which must succeed, and advances the room past it.
func (r *testRoom) persist(e storage.NewEvent) storage.PersistResult {
	r.t.Helper()
	res, err := r.st.PersistEvent(context.Background(), e)
	if err != nil {
		r.t.Fatalf("PersistEvent(%s %s): %v", e.Type, e.EventID, err)
	}
	r.advance(e, res)
	return res
}

func (r *testRoom) advance(e storage.NewEvent, res storage.PersistResult) {
	r.t.Helper()
	if r.model == nil {
		r.model, r.groups, r.memberships = map[[2]string]string{}, map[int64][]storage.StateEntry{}, map[string]string{}
	}
	if e.Type == "m.room.member" {
		r.memberships[e.EventID] = e.Membership
	}
	if e.StateKey == nil && res.StateGroupAfter != e.StateGroupBefore {
		r.t.Errorf("%s: non-state event moved the state group %d -> %d", e.EventID, e.StateGroupBefore, res.StateGroupAfter)
	}
	if e.StateKey != nil {
		if res.StateGroupAfter <= e.StateGroupBefore {
			r.t.Errorf("%s: state event made group %d after %d", e.EventID, res.StateGroupAfter, e.StateGroupBefore)
		}
		r.model[[2]string{e.Type, *e.StateKey}] = e.EventID
		r.groups[res.StateGroupAfter] = entriesOf(r.model)
	}
	r.group = res.StateGroupAfter
	r.prev = []string{e.EventID}
	r.depth = e.Depth
	r.last = res
}

func (r *testRoom) state(typ, key, sender, membership string) (string, storage.PersistResult) {
	e := r.draft(typ, strp(key), sender, membership)
	return e.EventID, r.persist(e)
}

func (r *testRoom) message(sender string, txn *storage.TxnKey) (string, storage.PersistResult) {
	e := r.draft("m.room.message", nil, sender, "")
	e.Txn = txn
	return e.EventID, r.persist(e)
}

// entriesOf turns a state map into the sorted entries the store returns.
func entriesOf(m map[[2]string]string) []storage.StateEntry {
	out := make([]storage.StateEntry, 0, len(m))
	for _, k := range slices.SortedFunc(maps.Keys(m), func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	}) {
		out = append(out, storage.StateEntry{Type: k[0], StateKey: k[1], EventID: m[k]})
	}
	return out
}

// holdWriteLock takes the database's write lock from outside the Store
// (on SQLite the database lock, on PostgreSQL the stream counter's row),
// so that the group writer blocks on its next batch and calls pile up in
// its queue. The returned function releases the lock.
func holdWriteLock(t *testing.T, o storage.Options) (release func()) {
	t.Helper()
	db := rawDB(t, o)
	conn, err := db.Conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	lock := []string{`BEGIN IMMEDIATE`}
	if o.Driver == storage.DriverPostgres {
		lock = []string{`BEGIN`, `SELECT pos FROM stream_counter WHERE singleton = 0 FOR UPDATE`}
	}
	for _, q := range lock {
		if _, err := conn.ExecContext(ctxT(t), q); err != nil {
			t.Fatalf("hold write lock: %s: %v", q, err)
		}
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
				t.Errorf("release write lock: %v", err)
			}
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// batchLog records the writer's batch sizes.
type batchLog struct {
	mu    sync.Mutex
	sizes []int
}

func (l *batchLog) add(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sizes = append(l.sizes, n)
}

func (l *batchLog) get() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sizes)
}

// countRows counts a table's rows straight from the database.
func countRows(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(ctxT(t), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// ---- rooms ----

func TestRoomRecords(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		r := storage.Room{RoomID: "!a:example.org", Version: "10", Creator: "@alice:example.org", CreatedTS: 1700000000000}
		if err := st.CreateRoom(ctx, r); err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		got, err := st.GetRoom(ctx, r.RoomID)
		if err != nil || got != r {
			t.Errorf("GetRoom = %+v, %v; want %+v", got, err, r)
		}
		wantErr(t, "CreateRoom again", st.CreateRoom(ctx, storage.Room{RoomID: r.RoomID, Version: "11"}), storage.ErrRoomExists)
		if got, _ := st.GetRoom(ctx, r.RoomID); got != r {
			t.Errorf("refused CreateRoom changed the room: %+v", got)
		}
		_, err = st.GetRoom(ctx, "!nope:example.org")
		wantErr(t, "GetRoom missing", err, storage.ErrNotFound)
		if err := st.CreateRoom(ctx, storage.Room{}); err == nil {
			t.Error("CreateRoom with an empty ID succeeded")
		}
		if err := st.CreateRoom(ctx, storage.Room{RoomID: "!nul\x00:x"}); err == nil {
			t.Error("CreateRoom with a NUL byte succeeded")
		}

		// A room without events has no current state and no extremities.
		_, _, err = st.CurrentState(ctx, r.RoomID)
		wantErr(t, "CurrentState of a room without events", err, storage.ErrNotFound)
		_, _, err = st.CurrentState(ctx, "!nope:example.org")
		wantErr(t, "CurrentState of an unknown room", err, storage.ErrNotFound)
		ids, depth, err := st.ForwardExtremities(ctx, r.RoomID)
		if err != nil || ids == nil || len(ids) != 0 || depth != 0 {
			t.Errorf("ForwardExtremities of a room without events = %#v, %d, %v", ids, depth, err)
		}
		if m, err := st.Members(ctx, r.RoomID); err != nil || m == nil || len(m) != 0 {
			t.Errorf("Members of a room without events = %#v, %v", m, err)
		}
		if pos, err := st.MaxStreamPos(ctx); err != nil || pos != 0 {
			t.Errorf("MaxStreamPos of an empty database = %d, %v", pos, err)
		}
	})
}

// TestPersistAndRead persists a small room's history and checks every
// read method against it.
func TestPersistAndRead(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		const alice, bob, carol = "@alice:example.org", "@bob:example.org", "@carol:example.org"
		const roomID = "!room:example.org"
		if err := st.CreateRoom(ctx, storage.Room{RoomID: roomID, Version: "10", Creator: alice, CreatedTS: 5}); err != nil {
			t.Fatal(err)
		}
		r := &testRoom{t: t, st: st, id: roomID}

		createEv := r.draft("m.room.create", strp(""), alice, "")
		createRes := r.persist(createEv)
		if createRes.StreamPos != 1 || createRes.StateGroupAfter == 0 {
			t.Errorf("create event: %+v, want stream position 1 and a state group", createRes)
		}
		joinID, joinRes := r.state("m.room.member", alice, alice, "join")
		plID, _ := r.state("m.room.power_levels", "", alice, "")
		inviteID, _ := r.state("m.room.member", bob, alice, "invite")
		txn := storage.TxnKey{UserID: alice, DeviceID: "PHONE", TxnID: "t1"}
		m1, m1Res := r.message(alice, &txn)
		m2, _ := r.message(alice, nil)
		red := r.draft("m.room.redaction", nil, alice, "")
		red.Redacts = m1
		r.persist(red)

		if joinRes.StreamPos != 2 || m1Res.StreamPos != 5 || r.last.StreamPos != 7 {
			t.Errorf("stream positions: join %d, m1 %d, redaction %d; want 2, 5, 7", joinRes.StreamPos, m1Res.StreamPos, r.last.StreamPos)
		}

		// GetEvent: every field.
		got, err := st.GetEvent(ctx, m1)
		want := storage.StoredEvent{
			EventID: m1, RoomID: roomID, Type: "m.room.message", Sender: alice, JSON: eventJSON(m1, "m.room.message"),
			StreamPos: 5, StateGroupBefore: r.group, StateGroupAfter: r.group, RedactedBy: red.EventID,
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetEvent(m1) =\n %+v, %v\nwant\n %+v", got, err, want)
		}
		got, err = st.GetEvent(ctx, createEv.EventID)
		want = storage.StoredEvent{
			EventID: createEv.EventID, RoomID: roomID, Type: "m.room.create", StateKey: strp(""), Sender: alice,
			JSON: createEv.JSON, StreamPos: 1, StateGroupBefore: 0, StateGroupAfter: createRes.StateGroupAfter,
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetEvent(create) =\n %+v, %v\nwant\n %+v", got, err, want)
		}
		got, err = st.GetEvent(ctx, inviteID)
		if err != nil || got.StateKey == nil || *got.StateKey != bob || got.StateGroupAfter != r.group || got.StateGroupBefore >= got.StateGroupAfter {
			t.Errorf("GetEvent(invite) = %+v, %v", got, err)
		}
		if got, err := st.GetEvent(ctx, m2); err != nil || got.RedactedBy != "" || got.StateKey != nil {
			t.Errorf("GetEvent(m2) = %+v, %v; want not redacted, no state key", got, err)
		}
		_, err = st.GetEvent(ctx, "$missing")
		wantErr(t, "GetEvent missing", err, storage.ErrNotFound)

		// GetEvents leaves out what is missing and copes with repeats.
		evs, err := st.GetEvents(ctx, []string{m1, "$missing", createEv.EventID, m1})
		if err != nil || len(evs) != 2 || evs[m1].StreamPos != 5 || evs[createEv.EventID].Type != "m.room.create" {
			t.Errorf("GetEvents = %+v, %v", evs, err)
		}
		if evs, err := st.GetEvents(ctx, nil); err != nil || evs == nil || len(evs) != 0 {
			t.Errorf("GetEvents(nil) = %#v, %v; want an empty map", evs, err)
		}
		// More IDs than one query takes.
		many := []string{m2}
		for i := range 1200 {
			many = append(many, fmt.Sprintf("$nope%d", i))
		}
		many = append(many, joinID)
		if evs, err := st.GetEvents(ctx, many); err != nil || len(evs) != 2 || evs[joinID].EventID != joinID {
			t.Errorf("GetEvents of 1202 IDs = %d events, %v", len(evs), err)
		}

		// Transactions are per user and device.
		if id, err := st.GetTxnEvent(ctx, txn); err != nil || id != m1 {
			t.Errorf("GetTxnEvent = %q, %v; want %q", id, err, m1)
		}
		_, err = st.GetTxnEvent(ctx, storage.TxnKey{UserID: alice, DeviceID: "LAPTOP", TxnID: "t1"})
		wantErr(t, "GetTxnEvent other device", err, storage.ErrNotFound)

		// Current state, and the state of every group.
		group, state, err := st.CurrentState(ctx, roomID)
		wantState := []storage.StateEntry{
			{Type: "m.room.create", StateKey: "", EventID: createEv.EventID},
			{Type: "m.room.member", StateKey: alice, EventID: joinID},
			{Type: "m.room.member", StateKey: bob, EventID: inviteID},
			{Type: "m.room.power_levels", StateKey: "", EventID: plID},
		}
		if err != nil || group != r.group || !reflect.DeepEqual(state, wantState) {
			t.Errorf("CurrentState = %d, %+v, %v; want %d, %+v", group, state, err, r.group, wantState)
		}
		if len(r.groups) != 4 {
			t.Fatalf("%d state groups made, want 4", len(r.groups))
		}
		for g, want := range r.groups {
			if got, err := st.StateAt(ctx, g); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("StateAt(%d) = %+v, %v; want %+v", g, got, err, want)
			}
		}
		_, err = st.StateAt(ctx, 999999)
		wantErr(t, "StateAt missing", err, storage.ErrNotFound)

		ids, depth, err := st.ForwardExtremities(ctx, roomID)
		if err != nil || !reflect.DeepEqual(ids, []string{red.EventID}) || depth != red.Depth {
			t.Errorf("ForwardExtremities = %v, %d, %v; want [%s], %d", ids, depth, err, red.EventID, red.Depth)
		}

		members, err := st.Members(ctx, roomID)
		wantMembers := []storage.Member{
			{UserID: alice, Membership: "join", EventID: joinID},
			{UserID: bob, Membership: "invite", EventID: inviteID},
		}
		if err != nil || !reflect.DeepEqual(members, wantMembers) {
			t.Errorf("Members = %+v, %v; want %+v", members, err, wantMembers)
		}

		// A second room, whose ID sorts before the first.
		r2 := newTestRoom(t, st, "!aardvark:example.org", alice)
		for _, tc := range []struct {
			user        string
			memberships []string
			want        []string
		}{
			{alice, []string{"join"}, []string{"!aardvark:example.org", roomID}},
			{alice, nil, []string{"!aardvark:example.org", roomID}},
			{bob, []string{"join"}, []string{}},
			{bob, []string{"invite"}, []string{roomID}},
			{bob, []string{"join", "invite"}, []string{roomID}},
			{bob, nil, []string{roomID}},
			{carol, nil, []string{}},
		} {
			got, err := st.RoomsForUser(ctx, tc.user, tc.memberships...)
			if err != nil || got == nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("RoomsForUser(%s, %v) = %#v, %v; want %#v", tc.user, tc.memberships, got, err, tc.want)
			}
		}

		// Forgetting, and a membership event clearing it.
		if err := st.ForgetRoom(ctx, bob, roomID); err != nil {
			t.Fatalf("ForgetRoom: %v", err)
		}
		if err := st.ForgetRoom(ctx, bob, roomID); err != nil {
			t.Errorf("ForgetRoom again: %v", err)
		}
		for _, tc := range []struct {
			user, room string
			want       bool
		}{{bob, roomID, true}, {bob, r2.id, false}, {alice, roomID, false}} {
			if got, err := st.IsForgotten(ctx, tc.user, tc.room); err != nil || got != tc.want {
				t.Errorf("IsForgotten(%s, %s) = %v, %v; want %v", tc.user, tc.room, got, err, tc.want)
			}
		}
		// Alice's member event does not clear Bob's flag; Bob's does.
		r.state("m.room.member", alice, alice, "join")
		if got, _ := st.IsForgotten(ctx, bob, roomID); !got {
			t.Error("another user's member event cleared the forgotten flag")
		}
		r.state("m.room.member", bob, bob, "join")
		if got, _ := st.IsForgotten(ctx, bob, roomID); got {
			t.Error("the user's member event did not clear the forgotten flag")
		}
		if got, _ := st.RoomsForUser(ctx, bob, "join"); !reflect.DeepEqual(got, []string{roomID}) {
			t.Errorf("RoomsForUser(bob, join) after joining = %v", got)
		}

		// A redaction can arrive before the event it redacts.
		early := r.draft("m.room.redaction", nil, alice, "")
		early.Redacts = "$later"
		r.persist(early)
		later := r.draft("m.room.message", nil, alice, "")
		later.EventID, later.JSON = "$later", eventJSON("$later", "m.room.message")
		r.persist(later)
		if got, err := st.GetEvent(ctx, "$later"); err != nil || got.RedactedBy != early.EventID {
			t.Errorf("GetEvent of an event redacted in advance = %+v, %v; want RedactedBy %s", got, err, early.EventID)
		}

		// An event on several extremities replaces them all; one on an
		// older event forks the room.
		forkA := r.draft("m.room.message", nil, alice, "")
		forkA.PrevEvents = []string{m2} // an old event: a fork
		r.persist(forkA)
		ids, _, _ = st.ForwardExtremities(ctx, roomID)
		if want := []string{"$later", forkA.EventID}; !reflect.DeepEqual(ids, want) { // sorted
			t.Errorf("ForwardExtremities after a fork = %v, want %v", ids, want)
		}
		merge := r.draft("m.room.message", nil, alice, "")
		merge.PrevEvents = []string{"$later", forkA.EventID, "$later"}
		merge.Depth = 100
		r.persist(merge)
		ids, depth, _ = st.ForwardExtremities(ctx, roomID)
		if !reflect.DeepEqual(ids, []string{merge.EventID}) || depth != 100 {
			t.Errorf("ForwardExtremities after a merge = %v, %d; want [%s], 100", ids, depth, merge.EventID)
		}

		if pos, err := st.MaxStreamPos(ctx); err != nil || pos != r.last.StreamPos {
			t.Errorf("MaxStreamPos = %d, %v; want %d", pos, err, r.last.StreamPos)
		}
	})
}

// TestPersistErrors checks PersistEvent's refusals, and that a refused
// event leaves nothing behind: no event, no state, no stream position.
func TestPersistErrors(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		const alice = "@alice:example.org"
		r := newTestRoom(t, st, "!r:example.org", alice)
		other := newTestRoom(t, st, "!other:example.org", alice)
		txn := storage.TxnKey{UserID: alice, DeviceID: "D", TxnID: "1"}
		m1, _ := r.message(alice, &txn)

		before, _ := st.MaxStreamPos(ctx)
		group, state, _ := st.CurrentState(ctx, r.id)

		mutate := func(f func(e *storage.NewEvent)) storage.NewEvent {
			e := r.draft("m.room.topic", strp(""), alice, "")
			f(&e)
			return e
		}
		for _, tc := range []struct {
			name string
			e    storage.NewEvent
			want error // nil: any error
		}{
			{"duplicate event ID", mutate(func(e *storage.NewEvent) { e.EventID = m1 }), storage.ErrEventExists},
			{"reused transaction", mutate(func(e *storage.NewEvent) { e.Txn = &txn }), storage.ErrTxnExists},
			{"unknown room", mutate(func(e *storage.NewEvent) { e.RoomID = "!nope:example.org" }), storage.ErrNotFound},
			{"unknown state group", mutate(func(e *storage.NewEvent) { e.StateGroupBefore = 999999 }), storage.ErrNotFound},
			{"another room's state group", mutate(func(e *storage.NewEvent) { e.StateGroupBefore = other.group }), nil},
			{"second create event", mutate(func(e *storage.NewEvent) { e.Type, e.StateGroupBefore = "m.room.create", 0 }), nil},
			{"no state group, not a create event", mutate(func(e *storage.NewEvent) { e.StateGroupBefore = 0 }), nil},
			{"negative state group", mutate(func(e *storage.NewEvent) { e.StateGroupBefore = -1 }), nil},
			{"empty event ID", mutate(func(e *storage.NewEvent) { e.EventID = "" }), nil},
			{"empty sender", mutate(func(e *storage.NewEvent) { e.Sender = "" }), nil},
			{"invalid JSON", mutate(func(e *storage.NewEvent) { e.JSON = []byte(`{"a":`) }), nil},
			{"invalid UTF-8 in JSON", mutate(func(e *storage.NewEvent) { e.JSON = []byte("{\"a\":\"\xff\"}") }), nil},
			{"NUL in state key", mutate(func(e *storage.NewEvent) { e.StateKey = strp("a\x00b") }), nil},
			{"empty transaction ID", mutate(func(e *storage.NewEvent) { e.Txn = &storage.TxnKey{UserID: alice} }), nil},
		} {
			_, err := st.PersistEvent(ctx, tc.e)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
			}
			if tc.e.EventID != m1 && tc.e.EventID != "" {
				if _, err := st.GetEvent(ctx, tc.e.EventID); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("%s: the refused event was stored (%v)", tc.name, err)
				}
			}
		}
		// The duplicate did not overwrite the stored event.
		if got, err := st.GetEvent(ctx, m1); err != nil || got.Type != "m.room.message" {
			t.Errorf("GetEvent(m1) after refusals = %+v, %v", got, err)
		}
		if pos, _ := st.MaxStreamPos(ctx); pos != before {
			t.Errorf("MaxStreamPos after refusals = %d, want %d", pos, before)
		}
		if g, s, _ := st.CurrentState(ctx, r.id); g != group || !reflect.DeepEqual(s, state) {
			t.Errorf("current state changed by refused events: %d %+v", g, s)
		}
		// No gap: the next event takes the next position, the next group.
		_, res := r.state("m.room.topic", "", alice, "")
		if res.StreamPos != before+1 {
			t.Errorf("stream position after refusals = %d, want %d", res.StreamPos, before+1)
		}
		if _, err := st.StateAt(ctx, res.StateGroupAfter-1); err != nil {
			t.Errorf("state group %d before the new one: %v (a refused event left a gap?)", res.StateGroupAfter-1, err)
		}
		ids, _, _ := st.ForwardExtremities(ctx, r.id)
		if !reflect.DeepEqual(ids, r.prev) {
			t.Errorf("ForwardExtremities = %v, want %v", ids, r.prev)
		}
	})
}

// TestStateGroups makes enough state changes for the delta chains to be cut
// by snapshots, and checks the state of every group.
func TestStateGroups(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		const alice = "@alice:example.org"
		r := newTestRoom(t, st, "!big:example.org", alice)
		r.state("m.room.power_levels", "", alice, "")
		memberships := []string{"join", "leave", "invite", "ban", "join"}
		const changes = 2*storage.StateSnapshotInterval + 50
		for i := range changes {
			switch i % 5 {
			case 0, 1, 2:
				u := fmt.Sprintf("@u%02d:example.org", i%37)
				r.state("m.room.member", u, alice, memberships[i%len(memberships)])
			case 3:
				r.state("m.room.topic", "", alice, "")
			case 4:
				r.state("org.example.thing", fmt.Sprint("k", i%7), alice, "")
				r.message(alice, nil)
			}
		}
		for g, want := range r.groups {
			got, err := st.StateAt(ctx, g)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("StateAt(%d): %v\n got %d entries %+v\nwant %d entries %+v", g, err, len(got), got, len(want), want)
			}
		}
		group, state, err := st.CurrentState(ctx, r.id)
		if err != nil || group != r.group || !reflect.DeepEqual(state, entriesOf(r.model)) {
			t.Errorf("CurrentState = %d (%d entries), %v; want %d (%d entries)", group, len(state), err, r.group, len(r.model))
		}

		// The chains were cut: several snapshots, no chain too long.
		db := rawDB(t, o)
		snapshots := countRows(t, db, `SELECT COUNT(*) FROM state_groups WHERE room_id = $1 AND prev_group IS NULL`, r.id)
		if want := len(r.groups) / storage.StateSnapshotInterval; snapshots < want {
			t.Errorf("%d snapshots among %d groups, want at least %d", snapshots, len(r.groups), want)
		}
		if longest := countRows(t, db, `SELECT MAX(delta_count) FROM state_groups`); longest >= storage.StateSnapshotInterval {
			t.Errorf("a chain of %d deltas, want fewer than %d", longest, storage.StateSnapshotInterval)
		}

		// Members and RoomsForUser follow the current state.
		members, err := st.Members(ctx, r.id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for k := range r.model {
			if k[0] == "m.room.member" {
				n++
			}
		}
		if len(members) != n || !slices.IsSortedFunc(members, func(a, b storage.Member) int { return strings.Compare(a.UserID, b.UserID) }) {
			t.Errorf("Members: %d, want %d, sorted", len(members), n)
		}
		for _, m := range members {
			if m.EventID != r.model[[2]string{"m.room.member", m.UserID}] {
				t.Errorf("member %s: event %s, want %s", m.UserID, m.EventID, r.model[[2]string{"m.room.member", m.UserID}])
			}
			rooms, _ := st.RoomsForUser(ctx, m.UserID, m.Membership)
			if !reflect.DeepEqual(rooms, []string{r.id}) {
				t.Errorf("RoomsForUser(%s, %s) = %v", m.UserID, m.Membership, rooms)
			}
		}

		// A state event built on an older group (a fork): the current state
		// becomes that group plus the event, memberships included.
		var old int64
		for g := range r.groups {
			if g < r.group-150 && (old == 0 || g > old) {
				old = g
			}
		}
		oldState := r.groups[old]
		r.model = map[[2]string]string{}
		for _, e := range oldState {
			r.model[[2]string{e.Type, e.StateKey}] = e.EventID
		}
		r.group = old
		forkID, res := r.state("m.room.name", "", alice, "")
		group, state, err = st.CurrentState(ctx, r.id)
		if err != nil || group != res.StateGroupAfter || !reflect.DeepEqual(state, entriesOf(r.model)) {
			t.Errorf("CurrentState after a state event on group %d = %d (%d entries), %v; want %d (%d entries)",
				old, group, len(state), err, res.StateGroupAfter, len(r.model))
		}
		if got, _ := st.StateAt(ctx, group); !reflect.DeepEqual(got, state) {
			t.Error("CurrentState's entries differ from StateAt of its group")
		}
		if got := state[slices.IndexFunc(state, func(e storage.StateEntry) bool { return e.Type == "m.room.name" })]; got.EventID != forkID {
			t.Errorf("m.room.name in the current state is %s, want %s", got.EventID, forkID)
		}
		members, _ = st.Members(ctx, r.id)
		for _, m := range members {
			want, ok := r.model[[2]string{"m.room.member", m.UserID}]
			if !ok || m.EventID != want {
				t.Errorf("after the fork: member %s event %s, want %s", m.UserID, m.EventID, want)
				continue
			}
			if ev := r.memberships[want]; m.Membership != ev {
				t.Errorf("after the fork: member %s has membership %q, its event says %q", m.UserID, m.Membership, ev)
			}
		}
	})
}

// ---- group commit ----

// TestPersistBatchIsolation queues 50 calls while the writer is blocked, so
// they are committed as one batch, some of them failing: each failure
// rolls back only itself.
func TestPersistBatchIsolation(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		var batches batchLog
		storage.SetWriterHooks(st, batches.add, nil)
		ctx := ctxT(t)
		const alice = "@alice:example.org"
		r := newTestRoom(t, st, "!r:example.org", alice)
		blockRoom := newTestRoom(t, st, "!block:example.org", alice)
		usedTxn := storage.TxnKey{UserID: alice, DeviceID: "D", TxnID: "used"}
		m0, _ := r.message(alice, &usedTxn)
		base, _ := st.MaxStreamPos(ctx)
		group, state, _ := st.CurrentState(ctx, r.id)

		release := holdWriteLock(t, o)
		// A first call that the writer takes and blocks on.
		nBatches := len(batches.get())
		blocker := make(chan error, 1)
		go func() {
			_, err := st.PersistEvent(context.Background(), blockRoom.draft("m.room.message", nil, alice, ""))
			blocker <- err
		}()
		waitFor(t, "the writer to take the first call", func() bool { return len(batches.get()) > nBatches && storage.QueuedPersists(st) == 0 })

		const n = 50
		newTxn := storage.TxnKey{UserID: alice, DeviceID: "D", TxnID: "new"}
		evs := make([]storage.NewEvent, n)
		for i := range evs {
			typ, sk := "m.room.message", (*string)(nil)
			if i%10 == 5 {
				// Some state events too: a failing one must leave no state.
				typ, sk = "org.example.state", strp(fmt.Sprint("k", i))
			}
			evs[i] = r.draft(typ, sk, alice, "")
			evs[i].PrevEvents = []string{m0}
		}
		evs[10].EventID = m0                        // stored already
		evs[20].EventID = "$twin"                   // twice in the batch
		evs[21].EventID = "$twin"                   //
		evs[30].Txn = &usedTxn                      // used already
		evs[31].Txn, evs[32].Txn = &newTxn, &newTxn // twice in the batch
		evs[35].Txn = &usedTxn                      // a failing state event
		evs[40].RoomID = "!nope:example.org"        // unknown room
		evs[45].StateGroupBefore = 999999           // unknown group

		results := make([]storage.PersistResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range evs {
			wg.Go(func() { results[i], errs[i] = st.PersistEvent(context.Background(), evs[i]) })
		}
		waitFor(t, "50 queued calls", func() bool { return storage.QueuedPersists(st) == n })
		release()
		wg.Wait()
		if err := <-blocker; err != nil {
			t.Errorf("blocking call: %v", err)
		}
		if sizes := batches.get(); !slices.Contains(sizes, n) {
			t.Errorf("batch sizes %v: the 50 calls were not one batch", sizes)
		}

		wantFail := map[int]error{10: storage.ErrEventExists, 30: storage.ErrTxnExists, 35: storage.ErrTxnExists,
			40: storage.ErrNotFound, 45: storage.ErrNotFound}
		// Of each twin pair exactly one wins.
		for _, pair := range [][2]int{{20, 21}, {31, 32}} {
			a, b := pair[0], pair[1]
			want := storage.ErrEventExists
			if a == 31 {
				want = storage.ErrTxnExists
			}
			switch {
			case errs[a] == nil && errors.Is(errs[b], want):
				wantFail[b] = want
			case errs[b] == nil && errors.Is(errs[a], want):
				wantFail[a] = want
			default:
				t.Errorf("twins %d and %d: errors %v and %v, want one nil and one %v", a, b, errs[a], errs[b], want)
				wantFail[a], wantFail[b] = errs[a], errs[b]
			}
		}
		var ok []int64
		for i, err := range errs {
			if want, fail := wantFail[i]; fail {
				if !errors.Is(err, want) {
					t.Errorf("call %d: error %v, want %v", i, err, want)
				}
				if i != 10 && i != 20 && i != 21 {
					if _, err := st.GetEvent(ctx, evs[i].EventID); !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("call %d failed, but its event is stored (%v)", i, err)
					}
				}
				continue
			}
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				continue
			}
			ok = append(ok, results[i].StreamPos)
			got, err := st.GetEvent(ctx, evs[i].EventID)
			if err != nil || got.StreamPos != results[i].StreamPos || got.StateGroupAfter != results[i].StateGroupAfter {
				t.Errorf("call %d: stored %+v, %v; PersistEvent said %+v", i, got, err, results[i])
			}
		}
		// The successful calls took consecutive positions after the blocker:
		// failures gave theirs back.
		slices.Sort(ok)
		for i, pos := range ok {
			if want := base + 2 + int64(i); pos != want {
				t.Fatalf("stream positions %v, want %d.. without gaps", ok, base+2)
			}
		}
		if pos, _ := st.MaxStreamPos(ctx); pos != base+1+int64(len(ok)) {
			t.Errorf("MaxStreamPos = %d, want %d", pos, base+1+int64(len(ok)))
		}
		// The three successful state events were all built on the same
		// group, so the last one's group is the current state; the failed
		// ones made no group.
		var made []int64
		for i, e := range evs {
			if e.StateKey != nil && errs[i] == nil {
				made = append(made, results[i].StateGroupAfter)
			}
		}
		slices.Sort(made)
		if len(made) != 3 || made[2]-made[0] != 2 {
			t.Errorf("state groups made: %v, want 3 consecutive ones", made)
		} else if g, s, _ := st.CurrentState(ctx, r.id); g != made[2] || len(s) != len(state)+1 || g <= group {
			t.Errorf("current state after the batch: group %d (was %d, want %d), %d entries (was %d, want 1 more)", g, group, made[2], len(s), len(state))
		}
		// m0 now has the successful events as its successors.
		ids, _, _ := st.ForwardExtremities(ctx, r.id)
		if slices.Contains(ids, m0) || len(ids) != len(ok) {
			t.Errorf("forward extremities: %d, want the %d successful events", len(ids), len(ok))
		}
		if id, _ := st.GetTxnEvent(ctx, usedTxn); id != m0 {
			t.Errorf("the used transaction now names %s, want %s", id, m0)
		}
	})
}

// TestStreamPositionsConcurrent persists from many goroutines while other
// writes run, and checks that positions are unique, without gaps, and in
// commit order: a call that returned before another started has the
// smaller position.
func TestStreamPositionsConcurrent(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := ctxT(t)
		const rooms, perRoom, perWorker = 5, 4, 20 // 4 workers share each room
		const alice = "@alice:example.org"
		trs := make([]*testRoom, rooms)
		for i := range trs {
			trs[i] = newTestRoom(t, st, fmt.Sprintf("!r%d:example.org", i), alice)
		}
		base, _ := st.MaxStreamPos(ctx)

		type call struct {
			start, end time.Time
			id         string
			pos        int64
		}
		calls := make([][]call, rooms*perRoom)
		var wg sync.WaitGroup
		var failed atomic.Int32
		for w := range calls {
			r := trs[w%rooms]
			wg.Go(func() {
				for i := range perWorker {
					id := fmt.Sprintf("$w%d-%d", w, i)
					e := storage.NewEvent{
						EventID: id, RoomID: r.id, Type: "m.room.message", Sender: alice, JSON: eventJSON(id, "m.room.message"),
						Depth: int64(10 + i), StateGroupBefore: r.group, PrevEvents: r.prev,
						Txn: &storage.TxnKey{UserID: alice, DeviceID: fmt.Sprint("D", w), TxnID: fmt.Sprint(i)},
					}
					c := call{start: time.Now(), id: id}
					res, err := st.PersistEvent(ctx, e)
					c.end, c.pos = time.Now(), res.StreamPos
					if err != nil {
						t.Errorf("PersistEvent(%s): %v", id, err)
						failed.Add(1)
						return
					}
					calls[w] = append(calls[w], c)
				}
			})
		}
		// Other writes at the same time: on SQLite they share the writer's
		// one connection.
		wg.Go(func() {
			for i := range 40 {
				user := fmt.Sprintf("@other%d:example.org", i)
				for _, err := range []error{
					st.CreateUser(ctx, storage.User{UserID: user}, &storage.NewSession{DeviceID: "D", TokenHash: hash(user)}),
					st.SetAdmin(ctx, user, true),
					st.ForgetRoom(ctx, user, trs[0].id),
					st.CreateRoom(ctx, storage.Room{RoomID: fmt.Sprintf("!other%d:example.org", i), Version: "10"}),
				} {
					if err != nil {
						t.Errorf("concurrent write: %v", err)
					}
				}
			}
		})
		wg.Wait()
		if failed.Load() > 0 {
			t.FailNow()
		}

		var all []call
		for _, cs := range calls {
			for i := 1; i < len(cs); i++ {
				if cs[i].pos <= cs[i-1].pos {
					t.Errorf("sequential calls got positions %d then %d", cs[i-1].pos, cs[i].pos)
				}
			}
			all = append(all, cs...)
		}
		slices.SortFunc(all, func(a, b call) int { return int(a.pos - b.pos) })
		for i, c := range all {
			if want := base + 1 + int64(i); c.pos != want {
				t.Fatalf("position %d where %d was expected: positions are not unique and gapless", c.pos, want)
			}
		}
		// Commit order: sorted by position, no call may have started after
		// a later-positioned call had returned.
		for i := range all {
			for j := i + 1; j < len(all); j++ {
				if all[j].end.Before(all[i].start) {
					t.Fatalf("%s (position %d) returned before %s (position %d) started", all[j].id, all[j].pos, all[i].id, all[i].pos)
				}
			}
		}
		ids := make([]string, len(all))
		for i, c := range all {
			ids[i] = c.id
		}
		stored, err := st.GetEvents(ctx, ids)
		if err != nil || len(stored) != len(all) {
			t.Fatalf("GetEvents: %d of %d, %v", len(stored), len(all), err)
		}
		for _, c := range all {
			if stored[c.id].StreamPos != c.pos {
				t.Errorf("%s: stored at %d, PersistEvent said %d", c.id, stored[c.id].StreamPos, c.pos)
			}
		}
		if pos, _ := st.MaxStreamPos(ctx); pos != base+int64(len(all)) {
			t.Errorf("MaxStreamPos = %d, want %d", pos, base+int64(len(all)))
		}
	})
}

func TestPersistContext(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		var batches batchLog
		var onRun atomic.Pointer[func(string)]
		storage.SetWriterHooks(st, batches.add, func(id string) error {
			if f := onRun.Load(); f != nil {
				(*f)(id)
			}
			return nil
		})
		const alice = "@alice:example.org"
		r := newTestRoom(t, st, "!r:example.org", alice)
		blockRoom := newTestRoom(t, st, "!block:example.org", alice)

		// A context that has ended already.
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		e := r.draft("m.room.message", nil, alice, "")
		if _, err := st.PersistEvent(cancelled, e); !errors.Is(err, context.Canceled) {
			t.Errorf("PersistEvent with a cancelled context: %v", err)
		}

		// A context that ends while the call waits in the queue: the call
		// returns at once, and its event is never written.
		release := holdWriteLock(t, o)
		nBatches := len(batches.get())
		blocker := make(chan error, 1)
		go func() {
			_, err := st.PersistEvent(context.Background(), blockRoom.draft("m.room.message", nil, alice, ""))
			blocker <- err
		}()
		waitFor(t, "the writer to take the first call", func() bool { return len(batches.get()) > nBatches && storage.QueuedPersists(st) == 0 })
		queuedCtx, cancelQueued := context.WithCancel(context.Background())
		timeoutCtx, cancelTimeout := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancelTimeout()
		e2 := r.draft("m.room.message", nil, alice, "")
		queued, timedOut := make(chan error, 1), make(chan error, 1)
		go func() {
			_, err := st.PersistEvent(queuedCtx, e)
			queued <- err
		}()
		go func() {
			_, err := st.PersistEvent(timeoutCtx, e2)
			timedOut <- err
		}()
		waitFor(t, "two queued calls", func() bool { return storage.QueuedPersists(st) == 2 })
		cancelQueued()
		for _, c := range []struct {
			ch   chan error
			want error
		}{{queued, context.Canceled}, {timedOut, context.DeadlineExceeded}} {
			select {
			case err := <-c.ch:
				if !errors.Is(err, c.want) {
					t.Errorf("queued call: %v, want %v", err, c.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a queued call whose context ended did not return while the writer was blocked")
			}
		}
		release()
		if err := <-blocker; err != nil {
			t.Errorf("blocking call: %v", err)
		}
		for _, ev := range []storage.NewEvent{e, e2} {
			if _, err := st.GetEvent(ctxT(t), ev.EventID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("the event of a cancelled call was stored (%v)", err)
			}
		}
		// Nothing of them was written, so they can be sent again.
		r.persist(e)

		// A context that ends once the writer has started on the event: the
		// outcome stands.
		e3 := r.draft("m.room.message", nil, alice, "")
		ctx3, cancel3 := context.WithCancel(context.Background())
		hook := func(id string) {
			if id == e3.EventID {
				cancel3()
			}
		}
		onRun.Store(&hook)
		res, err := st.PersistEvent(ctx3, e3)
		onRun.Store(nil)
		if err != nil || ctx3.Err() == nil {
			t.Errorf("call cancelled while running: %+v, %v (context: %v); want success", res, err, ctx3.Err())
		}
		if got, err := st.GetEvent(ctxT(t), e3.EventID); err != nil || got.StreamPos != res.StreamPos {
			t.Errorf("event of a call cancelled while running: %+v, %v", got, err)
		}
	})
}

// TestCloseDrainsQueue closes the store while calls wait for the writer:
// they are all committed, later calls are refused, and a reopened store
// has everything.
func TestCloseDrainsQueue(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st, err := storage.Open(ctxT(t), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		var batches batchLog
		storage.SetWriterHooks(st, batches.add, nil)
		const alice = "@alice:example.org"
		r := newTestRoom(t, st, "!r:example.org", alice)
		txn := storage.TxnKey{UserID: alice, DeviceID: "D", TxnID: "t"}
		m0, _ := r.message(alice, &txn)
		nBatches := len(batches.get())

		release := holdWriteLock(t, o)
		const n = 20
		evs := make([]storage.NewEvent, n+1)
		for i := range evs {
			evs[i] = r.draft("m.room.message", nil, alice, "")
			evs[i].PrevEvents = []string{m0}
		}
		errs := make([]error, len(evs))
		var wg sync.WaitGroup
		wg.Go(func() { _, errs[0] = st.PersistEvent(context.Background(), evs[0]) })
		waitFor(t, "the writer to take the first call", func() bool { return len(batches.get()) > nBatches && storage.QueuedPersists(st) == 0 })
		for i := 1; i <= n; i++ {
			wg.Go(func() { _, errs[i] = st.PersistEvent(context.Background(), evs[i]) })
		}
		waitFor(t, "queued calls", func() bool { return storage.QueuedPersists(st) == n })

		closed := make(chan error, 1)
		go func() { closed <- st.Close() }()
		waitFor(t, "Close to stop taking events", func() bool { return storage.WriterClosed(st) })
		late := r.draft("m.room.message", nil, alice, "")
		if _, err := st.PersistEvent(context.Background(), late); !errors.Is(err, storage.ErrClosed) {
			t.Errorf("PersistEvent during Close: %v, want ErrClosed", err)
		}
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) before the queued calls were committed", err)
		case <-time.After(50 * time.Millisecond):
		}
		release()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("queued call %d: %v", i, err)
			}
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := st.PersistEvent(context.Background(), late); !errors.Is(err, storage.ErrClosed) {
			t.Errorf("PersistEvent after Close: %v, want ErrClosed", err)
		}
		if o.Driver == storage.DriverSQLite {
			// The writer's prepared statements were closed before the
			// checkpoint, which could then empty the WAL.
			if fi, err := os.Stat(o.SQLitePath + "-wal"); err == nil && fi.Size() != 0 {
				t.Errorf("WAL is %d bytes after Close, want empty or gone", fi.Size())
			}
		}

		// Reopened, the store has everything.
		st2 := storagetest.Open(t, o)
		ctx := ctxT(t)
		ids := []string{m0}
		for _, e := range evs {
			ids = append(ids, e.EventID)
		}
		if got, err := st2.GetEvents(ctx, ids); err != nil || len(got) != len(ids) {
			t.Errorf("after reopening: %d of %d events, %v", len(got), len(ids), err)
		}
		if pos, err := st2.MaxStreamPos(ctx); err != nil || pos != r.last.StreamPos+int64(len(evs)) {
			t.Errorf("after reopening: MaxStreamPos = %d, %v; want %d", pos, err, r.last.StreamPos+int64(len(evs)))
		}
		group, state, err := st2.CurrentState(ctx, r.id)
		if err != nil || group != r.group || !reflect.DeepEqual(state, entriesOf(r.model)) {
			t.Errorf("after reopening: CurrentState = %d, %+v, %v", group, state, err)
		}
		for g, want := range r.groups {
			if got, err := st2.StateAt(ctx, g); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("after reopening: StateAt(%d) = %+v, %v", g, got, err)
			}
		}
		if ext, _, err := st2.ForwardExtremities(ctx, r.id); err != nil || len(ext) != len(evs) {
			t.Errorf("after reopening: %d forward extremities, %v; want %d", len(ext), err, len(evs))
		}
		if id, err := st2.GetTxnEvent(ctx, txn); err != nil || id != m0 {
			t.Errorf("after reopening: GetTxnEvent = %q, %v", id, err)
		}
		if m, err := st2.Members(ctx, r.id); err != nil || len(m) != 1 || m[0].Membership != "join" {
			t.Errorf("after reopening: Members = %+v, %v", m, err)
		}
		// And it takes new events, after the old ones.
		st2r := *r
		st2r.st = st2
		if _, res := st2r.message(alice, nil); res.StreamPos != r.last.StreamPos+int64(len(evs))+1 {
			t.Errorf("after reopening: new event at %d", res.StreamPos)
		}
	})
}

// TestBrokenBatchTransaction breaks the batch transaction half-way (as an
// I/O error that makes SQLite roll the transaction back would): the call
// that broke it fails, and every other call of the batch, before or after
// it, is run again in a new transaction and succeeds, once.
func TestBrokenBatchTransaction(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		var batches batchLog
		var breakOn atomic.Pointer[string]
		errBroken := errors.New("test: transaction broken")
		storage.SetWriterHooks(st, batches.add, func(id string) error {
			if p := breakOn.Load(); p != nil && *p == id {
				breakOn.Store(nil) // once
				return errBroken
			}
			return nil
		})
		ctx := ctxT(t)
		const alice = "@alice:example.org"
		r := newTestRoom(t, st, "!r:example.org", alice)
		blockRoom := newTestRoom(t, st, "!block:example.org", alice)
		base, _ := st.MaxStreamPos(ctx)

		release := holdWriteLock(t, o)
		nBatches := len(batches.get())
		blocker := make(chan error, 1)
		go func() {
			_, err := st.PersistEvent(context.Background(), blockRoom.draft("m.room.message", nil, alice, ""))
			blocker <- err
		}()
		waitFor(t, "the writer to take the first call", func() bool { return len(batches.get()) > nBatches && storage.QueuedPersists(st) == 0 })
		const n = 10
		evs := make([]storage.NewEvent, n)
		for i := range evs {
			evs[i] = r.draft("m.room.message", nil, alice, "")
			evs[i].Txn = &storage.TxnKey{UserID: alice, DeviceID: "D", TxnID: fmt.Sprint(i)}
		}
		evs[3].EventID = evs[2].EventID // fails against evs[2] ... unless evs[2] is lost
		errs := make([]error, n)
		var wg sync.WaitGroup
		// Queue them in order, so the batch runs them in order.
		for i := range evs {
			wg.Go(func() { _, errs[i] = st.PersistEvent(context.Background(), evs[i]) })
			waitFor(t, "the call to queue", func() bool { return storage.QueuedPersists(st) == i+1 })
		}
		breakOn.Store(&evs[6].EventID)
		release()
		wg.Wait()
		if err := <-blocker; err != nil {
			t.Errorf("blocking call: %v", err)
		}
		for i, err := range errs {
			var want error
			switch i {
			case 3:
				want = storage.ErrEventExists
			case 6:
				want = errBroken
			}
			if !errors.Is(err, want) {
				t.Errorf("call %d: %v, want %v", i, err, want)
			}
		}
		if _, err := st.GetEvent(ctx, evs[6].EventID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the event of the call that broke the transaction is stored (%v)", err)
		}
		// Blocker + the 8 successful calls, without gaps.
		if pos, _ := st.MaxStreamPos(ctx); pos != base+1+8 {
			t.Errorf("MaxStreamPos = %d, want %d", pos, base+1+8)
		}
		for i, e := range evs {
			if i == 3 || i == 6 {
				continue
			}
			if id, err := st.GetTxnEvent(ctx, *e.Txn); err != nil || id != e.EventID {
				t.Errorf("call %d: transaction names %q, %v", i, id, err)
			}
		}
	})
}

func TestAliasesAndDirectory(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		st := storagetest.Open(t, o)
		ctx := context.Background()
		if err := st.CreateRoom(ctx, storage.Room{RoomID: "!a:hs", Version: "10", Creator: "@u:hs", CreatedTS: 1}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateAlias(ctx, "#x:hs", "!a:hs", "@u:hs", 2); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateAlias(ctx, "#x:hs", "!a:hs", "@v:hs", 3); !errors.Is(err, storage.ErrAliasExists) {
			t.Fatalf("duplicate alias: %v", err)
		}
		if got, err := st.GetAlias(ctx, "#x:hs"); err != nil || got != "!a:hs" {
			t.Fatalf("GetAlias = %q, %v", got, err)
		}
		if _, err := st.GetAlias(ctx, "#nope:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown alias: %v", err)
		}
		for _, want := range []bool{true, true, false, false} {
			if err := st.SetRoomPublished(ctx, "!a:hs", want, 4); err != nil {
				t.Fatal(err)
			}
			if got, err := st.IsRoomPublished(ctx, "!a:hs"); err != nil || got != want {
				t.Fatalf("published = %v, %v; want %v", got, err, want)
			}
		}
	})
}
