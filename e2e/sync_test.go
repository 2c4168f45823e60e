package e2e_test

// /sync, /messages and /context over HTTP on SQLite and PostgreSQL:
// initial and incremental sync with joins, invites and leaves, long-poll,
// gap filling, filters, history visibility, redactions; every response
// checked against the spec's schema. Helpers are prefixed sync.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/spectest"
	"github.com/sluice-im/sluice/internal/testserver"
)

// syncSchema checks a body against a response schema of the spec; it only
// logs when the spec is not available.
func syncSchema(t testing.TB, file, path string, raw []byte) {
	t.Helper()
	s, err := spectest.Load(file, "get", path, 200)
	if errors.Is(err, spectest.ErrNoSpec) {
		t.Logf("spec not available: %s schema not checked", path)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	s.CheckJSON(t, raw)
}

// syncResp is a /sync response, decoded.
type syncResp struct {
	NextBatch   string `json:"next_batch"`
	AccountData *struct {
		Events []map[string]any `json:"events"`
	} `json:"account_data"`
	Rooms *struct {
		Join map[string]struct {
			Timeline struct {
				Events    []map[string]any `json:"events"`
				Limited   bool             `json:"limited"`
				PrevBatch string           `json:"prev_batch"`
			} `json:"timeline"`
			State struct {
				Events []map[string]any `json:"events"`
			} `json:"state"`
			Ephemeral struct {
				Events []map[string]any `json:"events"`
			} `json:"ephemeral"`
			AccountData struct {
				Events []map[string]any `json:"events"`
			} `json:"account_data"`
		} `json:"join"`
		Invite map[string]struct {
			InviteState struct {
				Events []map[string]any `json:"events"`
			} `json:"invite_state"`
		} `json:"invite"`
		Leave map[string]struct {
			Timeline struct {
				Events  []map[string]any `json:"events"`
				Limited bool             `json:"limited"`
			} `json:"timeline"`
		} `json:"leave"`
	} `json:"rooms"`
	raw []byte
}

// syncDo runs GET /sync with the query and checks the answer's schema.
func syncDo(t testing.TB, s *testserver.Server, u roomUser, q url.Values) syncResp {
	t.Helper()
	r := s.Do(t, "GET", "/_matrix/client/v3/sync?"+q.Encode(), nil, u.Token).Expect(t, 200, "")
	syncSchema(t, "sync.yaml", "/sync", r.Raw)
	var out syncResp
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		t.Fatalf("sync: %v: %s", err, r.Raw)
	}
	if out.NextBatch == "" {
		t.Fatalf("sync without next_batch: %s", r.Raw)
	}
	out.raw = r.Raw
	return out
}

func syncSince(since string) url.Values {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	return q
}

func syncIDs(evs []map[string]any) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e["event_id"].(string))
	}
	return out
}

func syncHas(evs []map[string]any, typ, key string) map[string]any {
	for _, e := range evs {
		if e["type"] == typ && (key == "*" || e["state_key"] == key) {
			return e
		}
	}
	return nil
}

func TestSyncRooms(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		joined := roomCreate(t, s, alice, map[string]any{"preset": "public_chat", "name": "Joined"})
		s.Do(t, "POST", roomCS("rooms", joined, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		m1 := roomSendOK(t, s, alice, joined, "one")
		invited := roomCreate(t, s, alice, map[string]any{"preset": "private_chat", "name": "Invited", "topic": "t"})
		s.Do(t, "POST", roomCS("rooms", invited, "invite"), map[string]any{"user_id": bob.ID}, alice.Token).Expect(t, 200, "")

		// Initial: the joined room with its state and timeline, the invite
		// with its stripped state.
		first := syncDo(t, s, bob, url.Values{})
		if first.Rooms == nil {
			t.Fatalf("initial sync without rooms: %s", first.raw)
		}
		jr, ok := first.Rooms.Join[joined]
		if !ok {
			t.Fatalf("joined room missing: %s", first.raw)
		}
		all := append(slices.Clone(jr.State.Events), jr.Timeline.Events...)
		if syncHas(all, "m.room.create", "") == nil || syncHas(all, "m.room.name", "") == nil || syncHas(all, "m.room.member", bob.ID) == nil {
			t.Errorf("initial sync lacks the room's state: %s", first.raw)
		}
		if ids := syncIDs(jr.Timeline.Events); len(ids) == 0 || ids[len(ids)-1] != m1 {
			t.Errorf("timeline %v does not end with %s", ids, m1)
		}
		for _, e := range jr.Timeline.Events {
			if _, has := e["room_id"]; has {
				t.Errorf("sync event carries room_id: %v", e)
			}
		}
		inv, ok := first.Rooms.Invite[invited]
		if !ok {
			t.Fatalf("invite missing: %s", first.raw)
		}
		st := inv.InviteState.Events
		if syncHas(st, "m.room.create", "") == nil || syncHas(st, "m.room.name", "") == nil || syncHas(st, "m.room.topic", "") == nil ||
			syncHas(st, "m.room.member", alice.ID) == nil || syncHas(st, "m.room.join_rules", "") == nil {
			t.Errorf("invite_state lacks the prejoin state: %v", st)
		}
		if last := st[len(st)-1]; last["type"] != "m.room.member" || last["state_key"] != bob.ID ||
			last["content"].(map[string]any)["membership"] != "invite" {
			t.Errorf("invite_state does not end with the invite: %v", last)
		}
		for _, e := range st {
			if _, has := e["event_id"]; has {
				t.Errorf("stripped state has an event_id: %v", e)
			}
		}
		if first.Rooms.Leave != nil {
			t.Errorf("initial sync has left rooms: %v", first.Rooms.Leave)
		}

		// Nothing new: an empty answer, the invite not repeated.
		quiet := syncDo(t, s, bob, syncSince(first.NextBatch))
		if quiet.Rooms != nil {
			t.Errorf("incremental sync with nothing new: %s", quiet.raw)
		}

		// Joining the invited room: it moves to join, with its full state,
		// limited (as Synapse marks a newly joined room).
		s.Do(t, "POST", roomCS("rooms", invited, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		afterJoin := syncDo(t, s, bob, syncSince(quiet.NextBatch))
		nj, ok := afterJoin.Rooms.Join[invited]
		if !ok || afterJoin.Rooms.Invite != nil {
			t.Fatalf("after joining: %s", afterJoin.raw)
		}
		if !nj.Timeline.Limited || syncHas(append(nj.State.Events, nj.Timeline.Events...), "m.room.create", "") == nil {
			t.Errorf("newly joined room: limited %v, state %v", nj.Timeline.Limited, nj.State.Events)
		}

		// Incremental: exactly the new events, once.
		a := roomSendOK(t, s, alice, invited, "a")
		b := roomSendOK(t, s, alice, joined, "b")
		c := roomSendOK(t, s, alice, invited, "c")
		inc := syncDo(t, s, bob, syncSince(afterJoin.NextBatch))
		if got := syncIDs(inc.Rooms.Join[invited].Timeline.Events); !slices.Equal(got, []string{a, c}) {
			t.Errorf("incremental timeline of %s: %v, want %v", invited, got, []string{a, c})
		}
		if got := syncIDs(inc.Rooms.Join[joined].Timeline.Events); !slices.Equal(got, []string{b}) {
			t.Errorf("incremental timeline of %s: %v, want %v", joined, got, []string{b})
		}
		if inc.Rooms.Join[invited].Timeline.Limited || len(inc.Rooms.Join[invited].State.Events) != 0 {
			t.Errorf("unlimited incremental timeline with state or limited: %s", inc.raw)
		}
		if again := syncDo(t, s, bob, syncSince(inc.NextBatch)); again.Rooms != nil {
			t.Errorf("events repeated: %s", again.raw)
		}

		// Leaving, and being kicked: the rooms move to leave with the
		// membership event at the end of their timeline.
		leaveResp := s.Do(t, "POST", roomCS("rooms", joined, "leave"), map[string]any{}, bob.Token).Expect(t, 200, "")
		_ = leaveResp
		s.Do(t, "POST", roomCS("rooms", invited, "kick"), map[string]any{"user_id": bob.ID, "reason": "bye"}, alice.Token).Expect(t, 200, "")
		roomSendOK(t, s, alice, invited, "after the kick")
		left := syncDo(t, s, bob, syncSince(inc.NextBatch))
		for _, room := range []string{joined, invited} {
			lr, ok := left.Rooms.Leave[room]
			if !ok {
				t.Fatalf("room %s not in leave: %s", room, left.raw)
			}
			evs := lr.Timeline.Events
			if len(evs) == 0 || evs[len(evs)-1]["type"] != "m.room.member" || evs[len(evs)-1]["state_key"] != bob.ID {
				t.Errorf("leave timeline of %s does not end with bob's membership: %v", room, evs)
			}
			for _, e := range evs {
				if body, _ := e["content"].(map[string]any)["body"].(string); body == "after the kick" {
					t.Errorf("left room shows an event after the kick")
				}
			}
		}
		if left.Rooms.Join != nil {
			t.Errorf("rooms still joined: %v", left.Rooms.Join)
		}
		// An initial sync shows the kick (not the room left on purpose)
		// unless include_leave asks for both.
		fresh := syncDo(t, s, bob, url.Values{})
		if fresh.Rooms == nil || len(fresh.Rooms.Leave) != 1 || fresh.Rooms.Leave[invited].Timeline.Events == nil {
			t.Errorf("initial sync's leave section: %s", fresh.raw)
		}
		withLeave := syncDo(t, s, bob, url.Values{"filter": {`{"room":{"include_leave":true}}`}})
		if withLeave.Rooms == nil || len(withLeave.Rooms.Leave) != 2 {
			t.Errorf("include_leave: %s", withLeave.raw)
		}
	})
}

func TestSyncLongPoll(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		since := syncDo(t, s, bob, url.Values{}).NextBatch

		// Nothing arrives: an empty answer at the timeout.
		start := time.Now()
		empty := syncDo(t, s, bob, url.Values{"since": {since}, "timeout": {"300"}})
		if waited := time.Since(start); waited < 250*time.Millisecond || empty.Rooms != nil {
			t.Errorf("quiet long-poll returned after %v with %s", waited, empty.raw)
		}

		// A message sent while bob waits wakes him with it, long before the
		// 30 s timeout.
		got := make(chan syncResp, 1)
		go func() {
			got <- syncDo(t, s, bob, url.Values{"since": {empty.NextBatch}, "timeout": {"30000"}})
		}()
		time.Sleep(200 * time.Millisecond) // let the request start waiting
		sent := time.Now()
		id := roomSendOK(t, s, alice, room, "wake up")
		select {
		case r := <-got:
			if ids := syncIDs(r.Rooms.Join[room].Timeline.Events); !slices.Equal(ids, []string{id}) {
				t.Errorf("woken with %v, want %s", ids, id)
			}
			t.Logf("woken %v after the send returned", time.Since(sent))
		case <-time.After(20 * time.Second):
			t.Fatal("long-poll not woken by a message")
		}

		// Account data wakes its owner too.
		go func() {
			got <- syncDo(t, s, bob, url.Values{"since": {empty.NextBatch}, "timeout": {"30000"}, "filter": {`{"room":{"rooms":[]}}`}})
		}()
		time.Sleep(200 * time.Millisecond)
		s.Do(t, "PUT", roomCS("user", bob.ID, "account_data", "org.example.x"), map[string]any{"v": 1}, bob.Token).Expect(t, 200, "")
		select {
		case r := <-got:
			if r.AccountData == nil || syncHas(r.AccountData.Events, "org.example.x", "*") == nil {
				t.Errorf("woken without the account data: %s", r.raw)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("long-poll not woken by account data")
		}
	})
}

// TestSyncGapFill: a limited timeline's prev_batch lets /messages fetch
// the rest of the gap, nothing missing and nothing repeated.
func TestSyncGapFill(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		since := syncDo(t, s, bob, url.Values{}).NextBatch
		var sent []string
		for i := range 23 {
			sent = append(sent, roomSendOK(t, s, alice, room, fmt.Sprint("m", i)))
		}
		r := syncDo(t, s, bob, url.Values{"since": {since}, "filter": {`{"room":{"timeline":{"limit":5}}}`}})
		tl := r.Rooms.Join[room].Timeline
		if !tl.Limited || len(tl.Events) != 5 {
			t.Fatalf("timeline: limited %v, %d events", tl.Limited, len(tl.Events))
		}
		got := syncIDs(tl.Events)
		from := tl.PrevBatch
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("pagination does not end")
			}
			q := url.Values{"dir": {"b"}, "from": {from}, "to": {since}, "limit": {"4"}}
			mr := s.Do(t, "GET", roomCS("rooms", room, "messages")+"?"+q.Encode(), nil, bob.Token).Expect(t, 200, "")
			syncSchema(t, "message_pagination.yaml", "/rooms/{roomId}/messages", mr.Raw)
			var page struct {
				Chunk []map[string]any `json:"chunk"`
				End   string           `json:"end"`
			}
			json.Unmarshal(mr.Raw, &page)
			for _, e := range page.Chunk {
				if e["room_id"] != room {
					t.Errorf("/messages event without its room_id: %v", e)
				}
				got = append([]string{e["event_id"].(string)}, got...)
			}
			if page.End == "" {
				break
			}
			from = page.End
		}
		if !slices.Equal(got, sent) {
			t.Errorf("timeline + /messages = %d events, want the %d sent in order:\n got %v\nwant %v", len(got), len(sent), got, sent)
		}

		// Forwards from the start token of the gap gives the same events.
		q := url.Values{"dir": {"f"}, "from": {since}, "limit": {"100"}}
		mr := s.Do(t, "GET", roomCS("rooms", room, "messages")+"?"+q.Encode(), nil, bob.Token).Expect(t, 200, "")
		var fwd struct {
			Chunk []map[string]any `json:"chunk"`
		}
		json.Unmarshal(mr.Raw, &fwd)
		if ids := syncIDs(fwd.Chunk); !slices.Equal(ids, sent) {
			t.Errorf("forwards: %v, want %v", ids, sent)
		}

		// /context around the middle event.
		mid := sent[10]
		cr := s.Do(t, "GET", roomCS("rooms", room, "context", mid)+"?limit=4", nil, bob.Token).Expect(t, 200, "")
		syncSchema(t, "event_context.yaml", "/rooms/{roomId}/context/{eventId}", cr.Raw)
		var c struct {
			Before []map[string]any `json:"events_before"`
			Event  map[string]any   `json:"event"`
			After  []map[string]any `json:"events_after"`
			State  []map[string]any `json:"state"`
		}
		json.Unmarshal(cr.Raw, &c)
		if c.Event["event_id"] != mid || !slices.Equal(syncIDs(c.Before), []string{sent[9], sent[8]}) ||
			!slices.Equal(syncIDs(c.After), []string{sent[11], sent[12]}) || syncHas(c.State, "m.room.create", "") == nil {
			t.Errorf("context: %s", cr.Raw)
		}
		s.Do(t, "GET", roomCS("rooms", room, "context", "$nope"), nil, bob.Token).Expect(t, 404, "M_NOT_FOUND")
	})
}

func TestSyncVisibility(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		carol := roomRegister(t, s, "carol")
		visible := func(u roomUser, room string) []string {
			t.Helper()
			q := url.Values{"dir": {"b"}, "limit": {"100"}}
			r := s.Do(t, "GET", roomCS("rooms", room, "messages")+"?"+q.Encode(), nil, u.Token).Expect(t, 200, "")
			var page struct {
				Chunk []map[string]any `json:"chunk"`
			}
			json.Unmarshal(r.Raw, &page)
			var bodies []string
			for _, e := range page.Chunk {
				if b, ok := e["content"].(map[string]any)["body"].(string); ok {
					bodies = append([]string{b}, bodies...)
				}
			}
			return bodies
		}
		for _, c := range []struct {
			visibility string
			want       []string // what bob sees, having been invited after m1 and joined after m2
		}{
			{"shared", []string{"m1", "m2", "m3"}},
			{"invited", []string{"m2", "m3"}},
			{"joined", []string{"m3"}},
			{"world_readable", []string{"m1", "m2", "m3"}},
		} {
			t.Run(c.visibility, func(t *testing.T) {
				room := roomCreate(t, s, alice, map[string]any{"preset": "private_chat",
					"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": c.visibility}}}})
				m1 := roomSendOK(t, s, alice, room, "m1")
				s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": bob.ID}, alice.Token).Expect(t, 200, "")
				roomSendOK(t, s, alice, room, "m2")
				s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
				roomSendOK(t, s, alice, room, "m3")
				if got := visible(bob, room); !slices.Equal(got, c.want) {
					t.Errorf("/messages shows bob %v, want %v", got, c.want)
				}
				// The same rule on bob's initial sync.
				r := syncDo(t, s, bob, url.Values{"filter": {`{"room":{"timeline":{"types":["m.room.message"]}}}`}})
				var bodies []string
				for _, e := range r.Rooms.Join[room].Timeline.Events {
					bodies = append(bodies, e["content"].(map[string]any)["body"].(string))
				}
				if !slices.Equal(bodies, c.want) {
					t.Errorf("sync shows bob %v, want %v", bodies, c.want)
				}
				// A stranger reads only a world-readable room.
				q := url.Values{"dir": {"b"}}
				cr := s.Do(t, "GET", roomCS("rooms", room, "messages")+"?"+q.Encode(), nil, carol.Token)
				ev := s.Do(t, "GET", roomCS("rooms", room, "event", m1), nil, carol.Token)
				if c.visibility == "world_readable" {
					cr.Expect(t, 200, "")
					ev.Expect(t, 200, "")
				} else {
					cr.Expect(t, 403, "M_FORBIDDEN")
					ev.Expect(t, 404, "M_NOT_FOUND")
				}
				// GET /event follows the same rule for bob.
				if st := s.Do(t, "GET", roomCS("rooms", room, "event", m1), nil, bob.Token).Status; (st == 200) != slices.Contains(c.want, "m1") {
					t.Errorf("GET /event of m1 for bob: %d, want visible=%v", st, slices.Contains(c.want, "m1"))
				}
				// A former member reads up to their departure.
				s.Do(t, "POST", roomCS("rooms", room, "leave"), map[string]any{}, bob.Token).Expect(t, 200, "")
				roomSendOK(t, s, alice, room, "m4")
				if got := visible(bob, room); !slices.Equal(got, c.want) {
					t.Errorf("after leaving, bob sees %v, want %v", got, c.want)
				}
			})
		}
	})
}

func TestSyncFiltersAndRedactions(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		for i := range 3 {
			roomSendOK(t, s, bob, room, fmt.Sprint("b", i))
		}
		gone := roomSendOK(t, s, alice, room, "secret")
		s.Do(t, "PUT", roomCS("rooms", room, "redact", gone, roomTxn()), map[string]any{"reason": "oops"}, alice.Token).Expect(t, 200, "")
		s.Do(t, "PUT", roomCS("user", alice.ID, "rooms", room, "account_data", "org.example.room"), map[string]any{"r": true}, alice.Token).Expect(t, 200, "")
		s.Do(t, "PUT", roomCS("user", alice.ID, "account_data", "org.example.global"), map[string]any{"g": true}, alice.Token).Expect(t, 200, "")

		// A stored filter: two messages, alice's only; lazy-loaded members.
		fr := s.Do(t, "POST", roomCS("user", alice.ID, "filter"), map[string]any{
			"room": map[string]any{
				"timeline": map[string]any{"limit": 2, "types": []string{"m.room.message"}},
				"state":    map[string]any{"lazy_load_members": true},
			}}, alice.Token).Expect(t, 200, "")
		r := syncDo(t, s, alice, url.Values{"filter": {fr.Str("filter_id")}})
		jr := r.Rooms.Join[room]
		if len(jr.Timeline.Events) != 2 || !jr.Timeline.Limited {
			t.Fatalf("filtered timeline: %s", r.raw)
		}
		red := jr.Timeline.Events[1]
		if red["event_id"] != gone || len(red["content"].(map[string]any)) != 0 {
			t.Errorf("redacted event not served redacted: %v", red)
		}
		if rb, _ := red["unsigned"].(map[string]any)["redacted_because"].(map[string]any); rb == nil || rb["type"] != "m.room.redaction" {
			t.Errorf("redacted event without redacted_because: %v", red)
		}
		// Lazy loading: members of the timeline's senders (bob) and alice.
		for _, e := range jr.State.Events {
			if e["type"] == "m.room.member" && e["state_key"] != alice.ID && e["state_key"] != bob.ID {
				t.Errorf("lazy-loaded state has %v", e["state_key"])
			}
		}
		if syncHas(jr.State.Events, "m.room.member", bob.ID) == nil {
			t.Errorf("lazy-loaded state lacks the sender bob: %v", jr.State.Events)
		}
		if syncHas(jr.AccountData.Events, "org.example.room", "*") == nil || r.AccountData == nil ||
			syncHas(r.AccountData.Events, "org.example.global", "*") == nil {
			t.Errorf("account data missing: %s", r.raw)
		}

		// Inline filter: senders.
		r = syncDo(t, s, alice, url.Values{"filter": {`{"room":{"timeline":{"senders":["` + bob.ID + `"],"types":["m.room.message"]}}}`}})
		for _, e := range r.Rooms.Join[room].Timeline.Events {
			if e["sender"] != bob.ID {
				t.Errorf("senders filter let %v through", e["sender"])
			}
		}
		if n := len(r.Rooms.Join[room].Timeline.Events); n != 3 {
			t.Errorf("senders filter: %d events, want bob's 3", n)
		}

		// The sender's own device sees its transaction ID.
		txn := roomTxn()
		sr := s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", txn), map[string]any{"msgtype": "m.text", "body": "t"}, alice.Token).Expect(t, 200, "")
		r = syncDo(t, s, alice, url.Values{"since": {r.NextBatch}})
		evs := r.Rooms.Join[room].Timeline.Events
		if len(evs) != 1 || evs[0]["event_id"] != sr.Str("event_id") || evs[0]["unsigned"].(map[string]any)["transaction_id"] != txn {
			t.Errorf("own event without its transaction_id: %v", evs)
		}
		r = syncDo(t, s, bob, url.Values{})
		for _, e := range r.Rooms.Join[room].Timeline.Events {
			_, has := e["unsigned"].(map[string]any)["transaction_id"]
			if mine := e["sender"] == bob.ID && e["type"] == "m.room.message"; has != mine {
				t.Errorf("bob's sync: event of %v with transaction_id %v", e["sender"], has)
			}
		}
	})
}

func TestSyncErrors(t *testing.T) {
	s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn})
	alice := roomRegister(t, s, "alice")
	room := roomCreate(t, s, alice, map[string]any{})
	cases := []struct {
		path    string
		status  int
		errcode string
	}{
		{"/sync?since=nope", 400, "M_UNKNOWN"},
		{"/sync?since=s1_2", 400, "M_UNKNOWN"},
		{"/sync?from=s1_0_0_0", 400, "M_UNKNOWN"},
		{"/sync?timeout=x", 400, "M_INVALID_PARAM"},
		{"/sync?timeout=-1", 400, "M_INVALID_PARAM"},
		{"/sync?set_presence=away", 400, "M_INVALID_PARAM"},
		{"/sync?full_state=yes", 400, "M_INVALID_PARAM"},
		{"/sync?filter=abc", 400, "M_INVALID_PARAM"},
		{"/sync?filter=42", 400, "M_INVALID_PARAM"},
		{"/sync?filter=" + url.QueryEscape("{bad"), 400, "M_NOT_JSON"},
		{"/sync?filter=" + url.QueryEscape(`{"room":{"timeline":{"limit":"x"}}}`), 400, "M_UNKNOWN"},
		{"/rooms/" + url.PathEscape(room) + "/messages?dir=x", 400, "M_INVALID_PARAM"},
		{"/rooms/" + url.PathEscape(room) + "/messages?dir=b&from=zz", 400, "M_UNKNOWN"},
		{"/rooms/" + url.PathEscape(room) + "/messages?dir=b&limit=-2", 400, "M_INVALID_PARAM"},
		{"/rooms/" + url.PathEscape(room) + "/messages?filter=%7Bx", 400, "M_NOT_JSON"},
		{"/rooms/" + url.PathEscape("!unknown:test.local") + "/messages", 403, "M_FORBIDDEN"},
		{"/rooms/" + url.PathEscape(room) + "/context/" + url.PathEscape("$nope"), 404, "M_NOT_FOUND"},
	}
	for _, c := range cases {
		r := s.Do(t, "GET", "/_matrix/client/v3"+c.path, nil, alice.Token)
		if r.Status != c.status || r.Str("errcode") != c.errcode || r.Str("error") == "" {
			t.Errorf("GET %s: %d %s, want %d %s", c.path, r.Status, r.Raw, c.status, c.errcode)
		}
	}
	s.Do(t, "GET", "/_matrix/client/v3/sync", nil, "").Expect(t, 401, "M_MISSING_TOKEN")
}

func TestPushRulesDefaults(t *testing.T) {
	s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn})
	alice := roomRegister(t, s, "alice")
	r := s.Do(t, "GET", "/_matrix/client/v3/pushrules/", nil, alice.Token).Expect(t, 200, "")
	if sch, err := spectest.Load("pushrules.yaml", "get", "/pushrules/", 200); err == nil {
		sch.CheckJSON(t, r.Raw)
	} else if !errors.Is(err, spectest.ErrNoSpec) {
		t.Fatal(err)
	}
	global, _ := r.Body["global"].(map[string]any)
	override, _ := global["override"].([]any)
	if len(override) == 0 || override[0].(map[string]any)["rule_id"] != ".m.rule.master" {
		t.Fatalf("pushrules: %s", r.Raw)
	}
	g := s.Do(t, "GET", "/_matrix/client/v3/pushrules/global/", nil, alice.Token).Expect(t, 200, "")
	if _, ok := g.Body["underride"]; !ok {
		t.Errorf("pushrules/global/: %s", g.Raw)
	}
	// The initial sync carries them as m.push_rules account data.
	first := syncDo(t, s, alice, url.Values{})
	if first.AccountData == nil || syncHas(first.AccountData.Events, "m.push_rules", "*") == nil {
		t.Errorf("initial sync without m.push_rules: %s", first.raw)
	}
	s.Do(t, "PUT", "/_matrix/client/v3/pushrules/global/override/x", map[string]any{"actions": []any{}}, alice.Token).Expect(t, 404, "M_UNRECOGNIZED")
}

// TestSyncEphemeral: typing, receipts and the read marker reach the
// room's members through sync, and wake a waiting sync.
func TestSyncEphemeral(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		ev := roomSendOK(t, s, alice, room, "read me")
		since := syncDo(t, s, bob, url.Values{}).NextBatch

		// Typing wakes bob's long-poll.
		got := make(chan syncResp, 1)
		go func() { got <- syncDo(t, s, bob, url.Values{"since": {since}, "timeout": {"30000"}}) }()
		time.Sleep(200 * time.Millisecond)
		s.Do(t, "PUT", roomCS("rooms", room, "typing", alice.ID), map[string]any{"typing": true, "timeout": 30000}, alice.Token).Expect(t, 200, "")
		var r syncResp
		select {
		case r = <-got:
		case <-time.After(20 * time.Second):
			t.Fatal("typing did not wake the sync")
		}
		typing := syncHas(r.Rooms.Join[room].Ephemeral.Events, "m.typing", "*")
		if typing == nil || fmt.Sprint(typing["content"].(map[string]any)["user_ids"]) != fmt.Sprint([]any{alice.ID}) {
			t.Fatalf("typing not delivered: %s", r.raw)
		}

		// Receipts: alice's public one reaches bob, her private one only her.
		s.Do(t, "POST", roomCS("rooms", room, "receipt", "m.read", ev), map[string]any{}, alice.Token).Expect(t, 200, "")
		s.Do(t, "POST", roomCS("rooms", room, "receipt", "m.read.private", ev), map[string]any{}, alice.Token).Expect(t, 200, "")
		s.Do(t, "PUT", roomCS("rooms", room, "typing", alice.ID), map[string]any{"typing": false}, alice.Token).Expect(t, 200, "")
		r2 := syncDo(t, s, bob, url.Values{"since": {r.NextBatch}})
		eph := r2.Rooms.Join[room].Ephemeral.Events
		rc := syncHas(eph, "m.receipt", "*")
		if rc == nil {
			t.Fatalf("receipt not delivered: %s", r2.raw)
		}
		byType := rc["content"].(map[string]any)[ev].(map[string]any)
		if _, ok := byType["m.read"].(map[string]any)[alice.ID]; !ok {
			t.Errorf("alice's m.read receipt missing: %v", rc)
		}
		if _, ok := byType["m.read.private"]; ok {
			t.Errorf("bob sees alice's private receipt: %v", rc)
		}
		if ty := syncHas(eph, "m.typing", "*"); ty == nil || len(ty["content"].(map[string]any)["user_ids"].([]any)) != 0 {
			t.Errorf("stopped typing not delivered as an empty list: %v", eph)
		}
		mine := syncDo(t, s, alice, url.Values{})
		rc = syncHas(mine.Rooms.Join[room].Ephemeral.Events, "m.receipt", "*")
		if rc == nil || rc["content"].(map[string]any)[ev].(map[string]any)["m.read.private"] == nil {
			t.Errorf("alice does not see her private receipt: %s", mine.raw)
		}

		// The read marker is room account data.
		s.Do(t, "POST", roomCS("rooms", room, "read_markers"), map[string]any{"m.fully_read": ev}, bob.Token).Expect(t, 200, "")
		r3 := syncDo(t, s, bob, url.Values{"since": {r2.NextBatch}})
		fr := syncHas(r3.Rooms.Join[room].AccountData.Events, "m.fully_read", "*")
		if fr == nil || fr["content"].(map[string]any)["event_id"] != ev {
			t.Errorf("m.fully_read not delivered: %s", r3.raw)
		}
	})
}

// TestSyncShutdown: a waiting long-poll does not hold a shutdown.
func TestSyncShutdown(t *testing.T) {
	s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn})
	alice := roomRegister(t, s, "alice")
	since := syncDo(t, s, alice, url.Values{}).NextBatch
	done := make(chan int, 1)
	go func() {
		r := s.Do(t, "GET", "/_matrix/client/v3/sync?timeout=60000&since="+url.QueryEscape(since), nil, alice.Token)
		done <- r.Status
	}()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("shutdown waited %v for the long-poll", took)
	}
	if status := <-done; status != 200 {
		t.Errorf("long-poll answered %d at shutdown", status)
	}
}

// TestSyncTypingStopsAtLeave: leaving a room ends the user's typing there.
func TestSyncTypingStopsAtLeave(t *testing.T) {
	s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn})
	alice := roomRegister(t, s, "alice")
	bob := roomRegister(t, s, "bob")
	room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
	s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
	s.Do(t, "PUT", roomCS("rooms", room, "typing", bob.ID), map[string]any{"typing": true, "timeout": 60000}, bob.Token).Expect(t, 200, "")
	first := syncDo(t, s, alice, url.Values{})
	if ty := syncHas(first.Rooms.Join[room].Ephemeral.Events, "m.typing", "*"); ty == nil || len(ty["content"].(map[string]any)["user_ids"].([]any)) != 1 {
		t.Fatalf("bob not typing: %s", first.raw)
	}
	s.Do(t, "POST", roomCS("rooms", room, "leave"), map[string]any{}, bob.Token).Expect(t, 200, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := syncDo(t, s, alice, url.Values{})
		ty := syncHas(r.Rooms.Join[room].Ephemeral.Events, "m.typing", "*")
		if ty == nil || len(ty["content"].(map[string]any)["user_ids"].([]any)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob still typing after leaving: %s", r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSyncOwnMemberUpdate: changing one's own member event (a display
// name) is an ordinary state change in an incremental sync, not a rejoin
// that makes the client drop its timeline; leaving and rejoining is.
func TestSyncOwnMemberUpdate(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		since := syncDo(t, s, bob, url.Values{}).NextBatch
		s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.member", bob.ID), map[string]any{"membership": "join", "displayname": "Bob"}, bob.Token).Expect(t, 200, "")
		r := syncDo(t, s, bob, url.Values{"since": {since}})
		jr := r.Rooms.Join[room]
		if jr.Timeline.Limited || len(jr.Timeline.Events) != 1 || len(jr.State.Events) != 0 {
			t.Errorf("display name change: limited %v, %d timeline events, %d state events; want the one change", jr.Timeline.Limited, len(jr.Timeline.Events), len(jr.State.Events))
		}
		s.Do(t, "POST", roomCS("rooms", room, "leave"), map[string]any{}, bob.Token).Expect(t, 200, "")
		s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		r = syncDo(t, s, bob, url.Values{"since": {r.NextBatch}})
		jr = r.Rooms.Join[room]
		if !jr.Timeline.Limited || syncHas(append(jr.State.Events, jr.Timeline.Events...), "m.room.create", "") == nil {
			t.Errorf("rejoin not sent as a newly joined room: %s", r.raw)
		}
	})
}
