package e2e_test

// The room callbacks of modules, driven through the real server with
// test.Scripted (testmodules_test.go): each return form, each failure, the
// failure policies, admin bypass, chaining and deprecation warnings, with
// the status, errcode, message and extra fields Synapse gives the client
// (shared/reference/synapse-modules.md §3.2 and §4). SQLite only: the
// database plays no part here. Helpers are prefixed room.

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/testserver"
)

// roomCB is a callback test's server and users.
type roomCB struct {
	s          *testserver.Server
	alice, bob roomUser
}

// roomCBStart starts a server (SQLite, open registration) with the given
// modules: entries and registers alice and bob. logs may be nil.
func roomCBStart(t *testing.T, logs io.Writer, entries ...string) roomCB {
	t.Helper()
	s := testserver.Start(t, testserver.Options{Logs: logs, YAML: roomRegistrationOn + "modules:\n" + strings.Join(entries, "")})
	return roomCB{s: s, alice: roomRegister(t, s, "alice"), bob: roomRegister(t, s, "bob")}
}

// roomCBExtra is a modules: entry's timeout and on_error lines.
func roomCBExtra(onError string) string {
	extra := "    timeout: 100ms\n"
	if onError != "" {
		extra += "    on_error: " + onError + "\n"
	}
	return extra
}

// roomCBCase is one return form or failure of a decision callback and what
// the client must see.
type roomCBCase struct {
	name, behaviour, onError string
	status                   int
	errcode, message         string
	retryAfter               bool // the DenyWith extra field retry_after_ms: 1234
}

// roomCBExpect checks a response against a case.
func roomCBExpect(t *testing.T, r testserver.Response, tc roomCBCase) {
	t.Helper()
	if tc.status == 200 {
		r.Expect(t, 200, "")
		return
	}
	roomExpectError(t, r, tc.status, tc.errcode, tc.message)
	if got := r.Body["retry_after_ms"]; tc.retryAfter != (got == float64(1234)) {
		t.Errorf("retry_after_ms = %v, want it %v; body %s", got, map[bool]string{true: "present", false: "absent"}[tc.retryAfter], r.Raw)
	}
	if strings.Contains(string(r.Raw), "scripted") {
		t.Errorf("the error leaks the module's internals: %s", r.Raw)
	}
}

var roomModSeq atomic.Int64

// roomModID is a module id unique to this test and this run (modCalls
// outlives a run under -count).
func roomModID(t *testing.T, n int) string {
	return fmt.Sprintf("%s#%d.%d", t.Name(), n, roomModSeq.Add(1))
}

// roomCallsNamed returns the recorded calls of one module to one callback.
func roomCallsNamed(id, callback string) []modCall {
	var out []modCall
	for _, c := range modCallsOf(id) {
		if c.Callback == callback {
			out = append(out, c)
		}
	}
	return out
}

// roomEventually polls cond (every few ms, for at most 10 s) for work the
// server does in the background.
func roomEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// roomAdmin registers a server admin through shared-secret registration.
func roomAdmin(t *testing.T, s *testserver.Server, localpart string) roomUser {
	t.Helper()
	nonce := s.Do(t, "GET", "/_synapse/admin/v1/register", nil, "").Expect(t, 200, "").Str("nonce")
	r := s.Do(t, "POST", "/_synapse/admin/v1/register", map[string]any{
		"nonce": nonce, "username": localpart, "password": "pw", "admin": true,
		"mac": modMAC(testserver.SharedSecret, nonce, localpart, "pw", true),
	}, "").Expect(t, 200, "")
	return roomUser{ID: r.Str("user_id"), Token: r.Str("access_token")}
}

const roomSpamMsg = "This message has been rejected as probable spam"

func TestRoomCheckEventForSpam(t *testing.T) {
	cases := []roomCBCase{
		{"allow", "allow", "", 200, "", "", false},
		{"deny with a code", "deny:M_LIMIT_EXCEEDED", "", 403, "M_LIMIT_EXCEEDED", roomSpamMsg, false},
		{"deny default code", "deny", "", 403, "M_FORBIDDEN", roomSpamMsg, false},
		// The extra fields are written after errcode and error: they may
		// override the message.
		{"deny with extra fields", "denywith", "", 403, "M_LIMIT_EXCEEDED", "module says slow down", true},
		// The deprecated str form: the string is the client's message.
		{"deprecated message", "denymsg", "", 403, "M_FORBIDDEN", "module message", false},
		{"deprecated bool true (spam)", "spam_true", "", 403, "M_FORBIDDEN", roomSpamMsg, false},
		{"deprecated bool false (not spam)", "spam_false", "", 200, "", "", false},
		{"error", "error", "", 500, "M_UNKNOWN", "Internal server error", false},
		{"panic", "panic", "", 500, "M_UNKNOWN", "Internal server error", false},
		{"timeout", "hang", "", 500, "M_UNKNOWN", "Internal server error", false},
		{"error with on_error allow", "error", "allow", 200, "", "", false},
		{"timeout with on_error allow", "hang", "allow", 200, "", "", false},
		{"panic with on_error deny", "panic", "deny", 403, "M_FORBIDDEN", roomSpamMsg, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := roomModID(t, 0)
			e := roomCBStart(t, nil, modEntry(id, roomCBExtra(tc.onError), map[string]string{"check_event_for_spam": tc.behaviour}))
			room := roomCreate(t, e.s, e.alice, map[string]any{"preset": "public_chat"})
			e.s.Do(t, "POST", roomCS("join", room), nil, e.bob.Token).Expect(t, 200, "")
			// Neither createRoom's events nor memberships are asked.
			if calls := modCallsOf(id); len(calls) != 0 {
				t.Fatalf("createRoom or a join asked check_event_for_spam: %+v", calls)
			}
			pos := roomStreamPos(t, e.s)
			r := roomSend(t, e.s, e.bob, room, "buy now")
			roomCBExpect(t, r, tc)
			calls := roomCallsNamed(id, "check_event_for_spam")
			if len(calls) != 1 {
				t.Fatalf("calls %+v, want 1", calls)
			}
			a := calls[0].Args // event ID, type, sender, room, content
			if a[1] != "m.room.message" || a[2] != e.bob.ID || a[3] != room || fmt.Sprint(a[4]) != "map[body:buy now msgtype:m.text]" {
				t.Errorf("the module saw %v", a)
			}
			if tc.status == 200 {
				if a[0] != r.Str("event_id") {
					t.Errorf("the module saw event %v, the client got %s", a[0], r.Str("event_id"))
				}
				e.s.Do(t, "GET", roomCS("rooms", room, "event", r.Str("event_id")), nil, e.alice.Token).Expect(t, 200, "")
			} else if p := roomStreamPos(t, e.s); p != pos {
				t.Errorf("a rejected event was persisted (stream %d -> %d)", pos, p)
			}
		})
	}
	t.Run("state events and redactions are asked, memberships are not", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"check_event_for_spam": "deny:M_LIMIT_EXCEEDED"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{"preset": "public_chat"})
		e.s.Do(t, "POST", roomCS("join", room), nil, e.bob.Token).Expect(t, 200, "")
		create := roomState(t, e.s, e.alice, room)[roomStateKey{"m.room.create", ""}]["event_id"].(string)
		roomExpectError(t, e.s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.topic", ""), map[string]any{"topic": "t"}, e.alice.Token),
			403, "M_LIMIT_EXCEEDED", roomSpamMsg)
		roomExpectError(t, e.s.Do(t, "PUT", roomCS("rooms", room, "redact", create, roomTxn()), map[string]any{}, e.alice.Token),
			403, "M_LIMIT_EXCEEDED", roomSpamMsg)
		e.s.Do(t, "POST", roomCS("rooms", room, "kick"), map[string]any{"user_id": e.bob.ID}, e.alice.Token).Expect(t, 200, "")
		e.s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.member", e.alice.ID), map[string]any{"membership": "join", "displayname": "A"}, e.alice.Token).Expect(t, 200, "")
		var types []string
		for _, c := range roomCallsNamed(id, "check_event_for_spam") {
			types = append(types, c.Args[1].(string))
		}
		if fmt.Sprint(types) != "[m.room.topic m.room.redaction]" {
			t.Fatalf("check_event_for_spam asked for %v", types)
		}
	})
}

// roomUserMayCases are the decision forms of a user_may_* callback whose
// call site says msg. As in Synapse, the deprecated str form is an invalid
// answer there: M_FORBIDDEN with the call site's message.
func roomUserMayCases(msg string) []roomCBCase {
	return []roomCBCase{
		{"allow", "allow", "", 200, "", "", false},
		{"deny with a code", "deny:M_LIMIT_EXCEEDED", "", 403, "M_LIMIT_EXCEEDED", msg, false},
		{"deny default code", "deny", "", 403, "M_FORBIDDEN", msg, false},
		{"deny with extra fields", "denywith", "", 403, "M_LIMIT_EXCEEDED", "module says slow down", true},
		{"str form", "denymsg", "", 403, "M_FORBIDDEN", msg, false},
		{"deprecated bool true (allowed)", "allowed_true", "", 200, "", "", false},
		{"deprecated bool false", "allowed_false", "", 403, "M_FORBIDDEN", msg, false},
		{"error", "error", "", 500, "M_UNKNOWN", "Internal server error", false},
		{"panic", "panic", "", 500, "M_UNKNOWN", "Internal server error", false},
		{"timeout", "hang", "", 500, "M_UNKNOWN", "Internal server error", false},
		{"error with on_error allow", "error", "allow", 200, "", "", false},
		{"timeout with on_error deny", "hang", "deny", 403, "M_FORBIDDEN", msg, false},
	}
}

func TestRoomUserMayJoinRoom(t *testing.T) {
	for _, tc := range roomUserMayCases("Not allowed to join this room") {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := roomModID(t, 0)
			e := roomCBStart(t, nil, modEntry(id, roomCBExtra(tc.onError), map[string]string{"user_may_join_room": tc.behaviour}))
			room := roomCreate(t, e.s, e.alice, map[string]any{"preset": "public_chat"})
			if calls := modCallsOf(id); len(calls) != 0 {
				t.Fatalf("the creator's join asked user_may_join_room: %+v", calls)
			}
			roomCBExpect(t, e.s.Do(t, "POST", roomCS("join", room), nil, e.bob.Token), tc)
			want := "join"
			if tc.status != 200 {
				want = ""
				roomExpectError(t, roomStateContent(t, e.s, e.alice, room, "m.room.member", e.bob.ID), 404, "M_NOT_FOUND", "")
			} else if m := roomMembership(t, e.s, e.alice, room, e.bob.ID); m != want {
				t.Fatalf("bob's membership %q, want %q", m, want)
			}
			calls := modCallsOf(id)
			if len(calls) != 1 || fmt.Sprint(calls[0].Args) != fmt.Sprint([]any{e.bob.ID, room, false}) {
				t.Fatalf("calls %+v, want one with (bob, room, not invited)", calls)
			}
		})
	}
	t.Run("is_invited", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"user_may_join_room": "allow"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{"invite": []string{e.bob.ID}})
		e.s.Do(t, "POST", roomCS("rooms", room, "join"), nil, e.bob.Token).Expect(t, 200, "")
		calls := modCallsOf(id)
		if len(calls) != 1 || fmt.Sprint(calls[0].Args) != fmt.Sprint([]any{e.bob.ID, room, true}) {
			t.Fatalf("calls %+v, want one with (bob, room, invited)", calls)
		}
	})
}

func TestRoomUserMayInvite(t *testing.T) {
	const msg = "Invites have been disabled on this server"
	for _, tc := range roomUserMayCases(msg) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := roomModID(t, 0)
			e := roomCBStart(t, nil, modEntry(id, roomCBExtra(tc.onError), map[string]string{"user_may_invite": tc.behaviour}))
			room := roomCreate(t, e.s, e.alice, map[string]any{})
			roomCBExpect(t, e.s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": e.bob.ID}, e.alice.Token), tc)
			if tc.status == 200 {
				if m := roomMembership(t, e.s, e.alice, room, e.bob.ID); m != "invite" {
					t.Fatalf("bob's membership %q", m)
				}
			} else {
				roomExpectError(t, roomStateContent(t, e.s, e.alice, room, "m.room.member", e.bob.ID), 404, "M_NOT_FOUND", "")
			}
			calls := modCallsOf(id)
			if len(calls) != 1 || fmt.Sprint(calls[0].Args) != fmt.Sprint([]any{e.alice.ID, e.bob.ID, room}) {
				t.Fatalf("calls %+v, want one with (alice, bob, room)", calls)
			}
		})
	}
	t.Run("createRoom's invite list is asked", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"user_may_invite": "deny:M_LIMIT_EXCEEDED"}))
		roomExpectError(t, e.s.Do(t, "POST", roomCS("createRoom"), map[string]any{"invite": []string{e.bob.ID}}, e.alice.Token), 403, "M_LIMIT_EXCEEDED", msg)
		calls := modCallsOf(id)
		if len(calls) != 1 || calls[0].Args[0] != e.alice.ID || calls[0].Args[1] != e.bob.ID {
			t.Fatalf("calls %+v", calls)
		}
	})
}

func TestRoomUserMayCreateRoom(t *testing.T) {
	for _, tc := range roomUserMayCases("You are not permitted to create rooms") {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := roomModID(t, 0)
			e := roomCBStart(t, nil, modEntry(id, roomCBExtra(tc.onError), map[string]string{"user_may_create_room": tc.behaviour}))
			body := map[string]any{"preset": "public_chat", "name": "N", "initial_state": []any{
				map[string]any{"type": "org.example.x", "state_key": "", "content": map[string]any{"k": "v"}}}}
			r := e.s.Do(t, "POST", roomCS("createRoom"), body, e.alice.Token)
			roomCBExpect(t, r, tc)
			calls := modCallsOf(id)
			if len(calls) != 1 || calls[0].Args[0] != e.alice.ID {
				t.Fatalf("calls %+v, want one for alice", calls)
			}
			// The module sees the request body.
			convJSONEqual(t, "room config", calls[0].Args[1], roomJSON(t, body))
			if joined := e.s.Do(t, "GET", roomCS("joined_rooms"), nil, e.alice.Token).Expect(t, 200, "").Body["joined_rooms"].([]any); len(joined) != map[bool]int{true: 1, false: 0}[tc.status == 200] {
				t.Errorf("alice is in %d rooms after a %d", len(joined), tc.status)
			}
		})
	}
	t.Run("the module's copy is its own", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"user_may_create_room": "mutate"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{"name": "original"})
		if got := roomStateContent(t, e.s, e.alice, room, "m.room.name", "").Expect(t, 200, "").Str("name"); got != "original" {
			t.Fatalf("name %q: the module changed the request", got)
		}
	})
}

func TestRoomUserMaySendStateEvent(t *testing.T) {
	const msg = "You are not permitted to send the state event"
	cases := []roomCBCase{
		{"allow", "allow", "", 200, "", "", false},
		{"deny with a code", "deny:M_LIMIT_EXCEEDED", "", 403, "M_LIMIT_EXCEEDED", msg, false},
		// Synapse takes only NOT_SPAM or a Codes here: a (Codes, dict)
		// tuple, a bool or a str is invalid and rejects with M_FORBIDDEN,
		// the extra fields dropped.
		{"deny with extra fields", "denywith", "", 403, "M_FORBIDDEN", msg, false},
		{"str form", "denymsg", "", 403, "M_FORBIDDEN", msg, false},
		{"deprecated bool true", "allowed_true", "", 403, "M_FORBIDDEN", msg, false},
		{"error", "error", "", 500, "M_UNKNOWN", "Internal server error", false},
		{"panic", "panic", "", 500, "M_UNKNOWN", "Internal server error", false},
		{"timeout", "hang", "", 500, "M_UNKNOWN", "Internal server error", false},
		{"panic with on_error allow", "panic", "allow", 200, "", "", false},
		{"error with on_error deny", "error", "deny", 403, "M_FORBIDDEN", msg, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := roomModID(t, 0)
			e := roomCBStart(t, nil, modEntry(id, roomCBExtra(tc.onError), map[string]string{"user_may_send_state_event": tc.behaviour}))
			room := roomCreate(t, e.s, e.alice, map[string]any{})
			if calls := modCallsOf(id); len(calls) != 0 {
				t.Fatalf("createRoom asked user_may_send_state_event: %+v", calls)
			}
			r := e.s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.topic", ""), map[string]any{"topic": "T"}, e.alice.Token)
			roomCBExpect(t, r, tc)
			calls := modCallsOf(id)
			if len(calls) != 1 || fmt.Sprint(calls[0].Args) != fmt.Sprint([]any{e.alice.ID, room, "m.room.topic", "", map[string]any{"topic": "T"}}) {
				t.Fatalf("calls %+v", calls)
			}
			if tc.status == 200 {
				// The module's changes to its copy of the content go nowhere.
				convJSONEqual(t, "topic", roomStateContent(t, e.s, e.alice, room, "m.room.topic", "").Expect(t, 200, "").Body, `{"topic":"T"}`)
			} else {
				roomExpectError(t, roomStateContent(t, e.s, e.alice, room, "m.room.topic", ""), 404, "M_NOT_FOUND", "")
			}
		})
	}
	t.Run("membership through PUT state is asked, the membership endpoints are not", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"user_may_send_state_event": "deny"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{})
		e.s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": e.bob.ID}, e.alice.Token).Expect(t, 200, "")
		roomExpectError(t, e.s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.member", e.bob.ID), map[string]any{"membership": "leave"}, e.alice.Token),
			403, "M_FORBIDDEN", msg)
		// Messages are not state.
		roomSendOK(t, e.s, e.alice, room, "hi")
		calls := modCallsOf(id)
		if len(calls) != 1 || calls[0].Args[2] != "m.room.member" || calls[0].Args[3] != e.bob.ID {
			t.Fatalf("calls %+v", calls)
		}
	})
}

func TestRoomCheckEventAllowed(t *testing.T) {
	const msg = "This event is not allowed in this context"
	cases := []struct {
		roomCBCase
		replaced bool
		hint     bool // the module error's extra field
	}{
		{roomCBCase: roomCBCase{"allow", "allow", "", 200, "", "", false}},
		{roomCBCase: roomCBCase{"deny", "deny", "", 403, "M_FORBIDDEN", msg, false}},
		{roomCBCase: roomCBCase{"replacement", "replace", "", 200, "", "", false}, replaced: true},
		// A replacement may not change the type: the module failed (500).
		{roomCBCase: roomCBCase{"replacement changing the type", "replace_bad", "", 500, "M_UNKNOWN", "Internal server error", false}},
		// A Matrix error the module raises reaches the client as it is.
		{roomCBCase: roomCBCase{"module error", "module_error", "", 418, "ORG_SLUICE_TEAPOT", "module raised", false}, hint: true},
		// Any other failure fails closed: 500 (Synapse since 1.47).
		{roomCBCase: roomCBCase{"error", "error", "", 500, "M_UNKNOWN", "Internal server error", false}},
		{roomCBCase: roomCBCase{"panic", "panic", "", 500, "M_UNKNOWN", "Internal server error", false}},
		{roomCBCase: roomCBCase{"timeout", "hang", "", 500, "M_UNKNOWN", "Internal server error", false}},
		{roomCBCase: roomCBCase{"error with on_error allow", "error", "allow", 200, "", "", false}},
		{roomCBCase: roomCBCase{"timeout with on_error deny", "hang", "deny", 403, "M_FORBIDDEN", msg, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := roomModID(t, 0)
			e := roomCBStart(t, nil, modEntry(id, roomCBExtra(tc.onError), map[string]string{"check_event_allowed": tc.behaviour, "event_type": "m.room.message"}))
			room := roomCreate(t, e.s, e.alice, map[string]any{})
			pos := roomStreamPos(t, e.s)
			r := roomSend(t, e.s, e.alice, room, "original")
			roomCBExpect(t, r.Expect(t, tc.status, tc.errcode), tc.roomCBCase)
			if got := r.Body["hint"]; tc.hint != (got == "tea") {
				t.Errorf("extra field hint = %v; body %s", got, r.Raw)
			}
			calls := modCallsOf(id)
			if len(calls) != 1 {
				t.Fatalf("calls %+v", calls)
			}
			a := calls[0].Args // type, sender, content, state has m.room.create
			if a[0] != "m.room.message" || a[1] != e.alice.ID || fmt.Sprint(a[2]) != "map[body:original msgtype:m.text]" || a[3] != true {
				t.Errorf("the module saw %v", a)
			}
			if tc.status != 200 {
				if p := roomStreamPos(t, e.s); p != pos {
					t.Errorf("a refused event was persisted (stream %d -> %d)", pos, p)
				}
				return
			}
			id2 := r.Str("event_id")
			roomExpectEventID(t, id2)
			ev := e.s.Do(t, "GET", roomCS("rooms", room, "event", id2), nil, e.alice.Token).Expect(t, 200, "")
			want := `{"msgtype":"m.text","body":"original"}`
			if tc.replaced {
				want = `{"msgtype":"m.text","body":"replaced by ` + id + `"}`
			}
			convJSONEqual(t, "stored content", ev.Body["content"], want)
			if p := roomStreamPos(t, e.s); p != pos+1 {
				t.Errorf("stream %d -> %d: want exactly one event", pos, p)
			}
		})
	}
	t.Run("every event this server builds is asked, with the state before it", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"check_event_allowed": "allow"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{"name": "n"})
		e.s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": e.bob.ID}, e.alice.Token).Expect(t, 200, "")
		e.s.Do(t, "POST", roomCS("join", room), nil, e.bob.Token).Expect(t, 200, "")
		roomSendOK(t, e.s, e.bob, room, "hi")
		var got []string
		for _, c := range modCallsOf(id) {
			got = append(got, fmt.Sprintf("%s:%v", c.Args[0], c.Args[3]))
		}
		want := "[m.room.create:false m.room.member:true m.room.power_levels:true m.room.join_rules:true m.room.history_visibility:true " +
			"m.room.guest_access:true m.room.name:true m.room.member:true m.room.member:true m.room.message:true]"
		if fmt.Sprint(got) != want {
			t.Fatalf("asked for %v,\nwant %s", got, want)
		}
	})
	t.Run("a rejection of an initial event fails createRoom", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"check_event_allowed": "deny", "event_type": "m.room.power_levels"}))
		roomExpectError(t, e.s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, e.alice.Token), 403, "M_FORBIDDEN", msg)
		if joined := e.s.Do(t, "GET", roomCS("joined_rooms"), nil, e.alice.Token).Expect(t, 200, "").Body["joined_rooms"].([]any); len(joined) > 1 {
			t.Errorf("joined rooms %v", joined)
		}
	})
	t.Run("a replaced state event", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"check_event_allowed": "replace", "event_type": "m.room.topic"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{})
		evID := e.s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.topic", ""), map[string]any{"topic": "mine"}, e.alice.Token).Expect(t, 200, "").Str("event_id")
		st := roomState(t, e.s, e.alice, room)[roomStateKey{"m.room.topic", ""}]
		if st["event_id"] != evID {
			t.Errorf("the state holds %v, the client got %s", st["event_id"], evID)
		}
		convJSONEqual(t, "topic content", st["content"], `{"msgtype":"m.text","body":"replaced by `+id+`"}`)
	})
}

func TestRoomOnCreateRoom(t *testing.T) {
	const forbidden = "Room creation forbidden with these parameters"
	cases := []struct {
		name, behaviour, onError string
		status                   int
		errcode, message         string
	}{
		{"ok", "ok", "", 200, "", ""},
		{"module error", "module_error", "", 400, "M_INVALID_PARAM", "module says no"},
		{"error", "error", "", 403, "M_UNKNOWN", forbidden},
		{"panic", "panic", "", 403, "M_UNKNOWN", forbidden},
		{"timeout", "hang", "", 403, "M_UNKNOWN", forbidden},
		{"error with on_error allow", "error", "allow", 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := roomModID(t, 0)
			e := roomCBStart(t, nil, modEntry(id, roomCBExtra(tc.onError), map[string]string{"on_create_room": tc.behaviour}))
			body := map[string]any{"preset": "private_chat", "name": "R"}
			r := e.s.Do(t, "POST", roomCS("createRoom"), body, e.alice.Token)
			if tc.status == 200 {
				r.Expect(t, 200, "")
			} else {
				roomExpectError(t, r, tc.status, tc.errcode, tc.message)
			}
			if tc.behaviour == "module_error" && r.Body["hint"] != "rename" {
				t.Errorf("extra fields of the module's error lost: %s", r.Raw)
			}
			calls := modCallsOf(id)
			if len(calls) != 1 || calls[0].Args[0] != e.alice.ID || calls[0].Args[1] != false {
				t.Fatalf("calls %+v, want one (alice, not admin)", calls)
			}
			convJSONEqual(t, "request content", calls[0].Args[2], roomJSON(t, body))
		})
	}
	t.Run("changes apply, user_may_create_room sees them, every module runs", func(t *testing.T) {
		t.Parallel()
		a, b, c := roomModID(t, 1), roomModID(t, 2), roomModID(t, 3)
		e := roomCBStart(t, nil,
			modEntry(a, "", map[string]string{"on_create_room": "modify"}),
			modEntry(b, "", map[string]string{"on_create_room": "ok"}),
			modEntry(c, "", map[string]string{"user_may_create_room": "allow"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{"topic": "from the client"})
		st := roomState(t, e.s, e.alice, room)
		convJSONEqual(t, "added state", roomContent(t, st, "org.sluice.test.added", ""), `{"by":"`+a+`"}`)
		if got := roomContent(t, st, "m.room.topic", "")["topic"]; got != "topic by "+a {
			t.Errorf("topic %v: the module's change was not applied", got)
		}
		// The next module sees the change, and so does user_may_create_room.
		bc := modCallsOf(b)
		if len(bc) != 1 || bc[0].Args[2].(map[string]any)["topic"] != "topic by "+a {
			t.Fatalf("second on_create_room: %+v", bc)
		}
		cc := modCallsOf(c)
		if len(cc) != 1 {
			t.Fatalf("user_may_create_room calls %+v", cc)
		}
		cfg := cc[0].Args[1].(map[string]any)
		if cfg["topic"] != "topic by "+a || !strings.Contains(roomJSON(t, cfg["initial_state"]), "org.sluice.test.added") {
			t.Errorf("user_may_create_room saw %v", cfg)
		}
	})
	t.Run("a failure stops the chain", func(t *testing.T) {
		t.Parallel()
		a, b := roomModID(t, 1), roomModID(t, 2)
		e := roomCBStart(t, nil,
			modEntry(a, "", map[string]string{"on_create_room": "error"}),
			modEntry(b, "", map[string]string{"on_create_room": "ok", "user_may_create_room": "allow"}))
		roomExpectError(t, e.s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, e.alice.Token), 403, "M_UNKNOWN", forbidden)
		if n := len(modCallsOf(b)); n != 0 {
			t.Fatalf("module after the failing one called %d times", n)
		}
	})
}

func TestRoomOnNewEvent(t *testing.T) {
	t.Run("told after persistence, with the state after the event", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"on_new_event": "ok", "event_type": "m.room.topic"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{})
		evID := e.s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.topic", ""), map[string]any{"topic": "news"}, e.alice.Token).Expect(t, 200, "").Str("event_id")
		roomEventually(t, "on_new_event", func() bool { return len(roomCallsNamed(id, "on_new_event")) == 1 })
		a := roomCallsNamed(id, "on_new_event")[0].Args // event ID, type, content, state has create, persisted
		if a[0] != evID || a[1] != "m.room.topic" || fmt.Sprint(a[2]) != "map[topic:news]" || a[3] != true {
			t.Fatalf("on_new_event got %v", a)
		}
		// The module read the room's state through the API and found the
		// event there: it was persisted before the callback ran.
		if a[4] != true {
			t.Error("on_new_event ran before the event was in the room's state")
		}
	})
	t.Run("every event, createRoom's too", func(t *testing.T) {
		t.Parallel()
		id := roomModID(t, 0)
		e := roomCBStart(t, nil, modEntry(id, "", map[string]string{"on_new_event": "ok"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{})
		msg := roomSendOK(t, e.s, e.alice, room, "hi")
		roomEventually(t, "on_new_event for the message", func() bool {
			for _, c := range roomCallsNamed(id, "on_new_event") {
				if c.Args[0] == msg {
					return true
				}
			}
			return false
		})
		roomEventually(t, "on_new_event for createRoom's six events", func() bool { return len(roomCallsNamed(id, "on_new_event")) == 7 })
	})
	for _, behaviour := range []string{"error", "panic", "hang"} {
		t.Run("a failing callback neither delays nor fails the send: "+behaviour, func(t *testing.T) {
			t.Parallel()
			id := roomModID(t, 0)
			logs := &lockedBuffer{}
			// A deadline of an hour: were the send waiting for the callback,
			// it would not answer within the test's time.
			e := roomCBStart(t, logs, modEntry(id, "    timeout: 1h\n", map[string]string{"on_new_event": behaviour, "event_type": "m.room.message"}))
			room := roomCreate(t, e.s, e.alice, map[string]any{})
			first := roomSendOK(t, e.s, e.alice, room, "one")
			roomEventually(t, "the first on_new_event call", func() bool { return len(roomCallsNamed(id, "on_new_event")) >= 1 })
			second := roomSendOK(t, e.s, e.alice, room, "two")
			for _, ev := range []string{first, second} {
				e.s.Do(t, "GET", roomCS("rooms", room, "event", ev), nil, e.alice.Token).Expect(t, 200, "")
			}
			if behaviour != "hang" {
				roomEventually(t, "the failure logged", func() bool {
					return strings.Count(logs.String(), "callback=on_new_event") >= 2
				})
			}
		})
	}
}

func TestRoomCallbacksAdminBypass(t *testing.T) {
	t.Parallel()
	id := roomModID(t, 0)
	e := roomCBStart(t, nil, modEntry(id, "", map[string]string{
		"user_may_create_room": "deny", "user_may_join_room": "deny", "user_may_invite": "deny",
		"user_may_send_state_event": "deny", "check_event_for_spam": "deny", "event_type": "m.room.message",
		"on_create_room": "ok",
	}))
	admin := roomAdmin(t, e.s, "root")
	admin2 := roomAdmin(t, e.s, "toor")
	callsOf := func(user string) []string {
		var out []string
		for _, c := range modCallsOf(id) {
			if c.Args[0] == user || c.Callback == "check_event_for_spam" && c.Args[2] == user {
				out = append(out, c.Callback)
			}
		}
		return out
	}

	// Admins bypass user_may_create_room, user_may_invite,
	// user_may_send_state_event and user_may_join_room ...
	room := roomCreate(t, e.s, admin, map[string]any{"preset": "public_chat", "invite": []string{e.bob.ID}})
	e.s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": "@carol:test.local"}, admin.Token).Expect(t, 200, "")
	e.s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.topic", ""), map[string]any{"topic": "t"}, admin.Token).Expect(t, 200, "")
	e.s.Do(t, "POST", roomCS("join", room), nil, admin2.Token).Expect(t, 200, "")
	// ... but not check_event_for_spam.
	roomExpectError(t, roomSend(t, e.s, admin, room, "admin spam"), 403, "M_FORBIDDEN", roomSpamMsg)
	if got := fmt.Sprint(callsOf(admin.ID)); got != "[on_create_room check_event_for_spam]" {
		t.Errorf("the admin's actions asked %s, want on_create_room (told of admins too) and check_event_for_spam", got)
	}
	if oc := roomCallsNamed(id, "on_create_room"); len(oc) != 1 || oc[0].Args[1] != true {
		t.Errorf("on_create_room is_requester_admin: %+v", oc)
	}
	if got := callsOf(admin2.ID); len(got) != 0 {
		t.Errorf("the second admin's join asked %v", got)
	}

	// Everyone else is asked.
	roomExpectError(t, e.s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, e.bob.Token), 403, "M_FORBIDDEN", "You are not permitted to create rooms")
	roomExpectError(t, e.s.Do(t, "POST", roomCS("join", room), nil, e.bob.Token), 403, "M_FORBIDDEN", "Not allowed to join this room")
	if got := fmt.Sprint(callsOf(e.bob.ID)); got != "[on_create_room user_may_create_room user_may_join_room]" {
		t.Errorf("bob's actions asked %s", got)
	}
}

func TestRoomCallbackChains(t *testing.T) {
	t.Run("check_event_for_spam: the first rejection wins", func(t *testing.T) {
		t.Parallel()
		a, b, c := roomModID(t, 1), roomModID(t, 2), roomModID(t, 3)
		e := roomCBStart(t, nil,
			modEntry(a, "", map[string]string{"check_event_for_spam": "allow"}),
			modEntry(b, "", map[string]string{"check_event_for_spam": "deny:M_LIMIT_EXCEEDED"}),
			modEntry(c, "", map[string]string{"check_event_for_spam": "denywith"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{})
		roomExpectError(t, roomSend(t, e.s, e.alice, room, "x"), 403, "M_LIMIT_EXCEEDED", roomSpamMsg)
		if len(modCallsOf(a)) != 1 || len(modCallsOf(b)) != 1 || len(modCallsOf(c)) != 0 {
			t.Fatalf("calls a=%d b=%d c=%d, want 1 1 0", len(modCallsOf(a)), len(modCallsOf(b)), len(modCallsOf(c)))
		}
	})
	t.Run("user_may_join_room: the first rejection wins", func(t *testing.T) {
		t.Parallel()
		a, b, c := roomModID(t, 1), roomModID(t, 2), roomModID(t, 3)
		e := roomCBStart(t, nil,
			modEntry(a, "", map[string]string{"user_may_join_room": "allowed_true"}),
			modEntry(b, "", map[string]string{"user_may_join_room": "denywith"}),
			modEntry(c, "", map[string]string{"user_may_join_room": "deny"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{"preset": "public_chat"})
		r := roomExpectError(t, e.s.Do(t, "POST", roomCS("join", room), nil, e.bob.Token), 403, "M_LIMIT_EXCEEDED", "module says slow down")
		if r.Body["retry_after_ms"] != float64(1234) {
			t.Errorf("extra fields: %s", r.Raw)
		}
		if len(modCallsOf(a)) != 1 || len(modCallsOf(b)) != 1 || len(modCallsOf(c)) != 0 {
			t.Fatalf("calls a=%d b=%d c=%d, want 1 1 0", len(modCallsOf(a)), len(modCallsOf(b)), len(modCallsOf(c)))
		}
	})
	t.Run("check_event_allowed: the first replacement ends the chain", func(t *testing.T) {
		t.Parallel()
		a, b, c := roomModID(t, 1), roomModID(t, 2), roomModID(t, 3)
		e := roomCBStart(t, nil,
			modEntry(a, "", map[string]string{"check_event_allowed": "allow", "event_type": "m.room.message"}),
			modEntry(b, "", map[string]string{"check_event_allowed": "replace", "event_type": "m.room.message"}),
			modEntry(c, "", map[string]string{"check_event_allowed": "deny", "event_type": "m.room.message"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{})
		id := roomSendOK(t, e.s, e.alice, room, "x")
		convJSONEqual(t, "content", e.s.Do(t, "GET", roomCS("rooms", room, "event", id), nil, e.alice.Token).Expect(t, 200, "").Body["content"],
			`{"msgtype":"m.text","body":"replaced by `+b+`"}`)
		if len(modCallsOf(a)) != 1 || len(modCallsOf(b)) != 1 || len(modCallsOf(c)) != 0 {
			t.Fatalf("calls a=%d b=%d c=%d, want 1 1 0", len(modCallsOf(a)), len(modCallsOf(b)), len(modCallsOf(c)))
		}
	})
	t.Run("check_event_allowed: the first rejection ends the chain", func(t *testing.T) {
		t.Parallel()
		a, b := roomModID(t, 1), roomModID(t, 2)
		e := roomCBStart(t, nil,
			modEntry(a, "", map[string]string{"check_event_allowed": "deny", "event_type": "m.room.message"}),
			modEntry(b, "", map[string]string{"check_event_allowed": "replace", "event_type": "m.room.message"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{})
		roomExpectError(t, roomSend(t, e.s, e.alice, room, "x"), 403, "M_FORBIDDEN", "This event is not allowed in this context")
		if len(modCallsOf(b)) != 0 {
			t.Fatalf("module after the rejecting one called %d times", len(modCallsOf(b)))
		}
	})
	t.Run("on_new_event: every module is told", func(t *testing.T) {
		t.Parallel()
		a, b := roomModID(t, 1), roomModID(t, 2)
		e := roomCBStart(t, nil,
			modEntry(a, "", map[string]string{"on_new_event": "error", "event_type": "m.room.message"}),
			modEntry(b, "", map[string]string{"on_new_event": "ok", "event_type": "m.room.message"}))
		room := roomCreate(t, e.s, e.alice, map[string]any{})
		id := roomSendOK(t, e.s, e.alice, room, "x")
		roomEventually(t, "both modules told", func() bool {
			return len(modCallsOf(a)) == 1 && len(modCallsOf(b)) == 1
		})
		if modCallsOf(b)[0].Args[0] != id {
			t.Errorf("second module told of %v", modCallsOf(b)[0].Args[0])
		}
	})
}

func TestRoomDeprecatedFormsWarnOnce(t *testing.T) {
	t.Parallel()
	id := roomModID(t, 0)
	logs := &lockedBuffer{}
	e := roomCBStart(t, logs, modEntry(id, "", map[string]string{
		"check_event_for_spam": "denymsg", "user_may_join_room": "allowed_true", "user_may_invite": "allow"}))
	carol := roomRegister(t, e.s, "carol")
	room := roomCreate(t, e.s, e.alice, map[string]any{"preset": "public_chat"})
	for i := 0; i < 3; i++ {
		roomExpectError(t, roomSend(t, e.s, e.alice, room, "x"), 403, "M_FORBIDDEN", "module message")
	}
	e.s.Do(t, "POST", roomCS("join", room), nil, e.bob.Token).Expect(t, 200, "")
	e.s.Do(t, "POST", roomCS("join", room), nil, carol.Token).Expect(t, 200, "")
	e.s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": "@dave:test.local"}, e.alice.Token).Expect(t, 200, "")
	count := func(callback string) int {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "deprecated form") && strings.Contains(l, "callback="+callback+" ") && strings.Contains(l, "module=test.Scripted") {
				n++
			}
		}
		return n
	}
	if n := count("check_event_for_spam"); n != 1 {
		t.Errorf("%d deprecation warnings for check_event_for_spam's str form, want 1", n)
	}
	if n := count("user_may_join_room"); n != 1 {
		t.Errorf("%d deprecation warnings for user_may_join_room's bool form, want 1", n)
	}
	if n := count("user_may_invite"); n != 0 {
		t.Errorf("%d deprecation warnings for a callback answering module.Allow", n)
	}
	if !strings.Contains(logs.String(), "form=str") || !strings.Contains(logs.String(), "form=bool") {
		t.Errorf("the warnings do not name the form:\n%s", logs.String())
	}
}

// TestRoomSeedsScenario is the seeds' example modules together: the demo
// module refuses rooms to @evilguy, the list spam checker rejects the
// events of its evil users, and both serve their web resource.
func TestRoomSeedsScenario(t *testing.T) {
	t.Parallel()
	s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn + "modules:\n" +
		"  - module: example.DemoModule\n" +
		"  - module: example.ListSpamChecker\n" +
		"    config:\n      evil_users: [\"@evil:test.local\"]\n"})
	evilguy := roomRegister(t, s, "evilguy")
	evil := roomRegister(t, s, "evil")
	alice := roomRegister(t, s, "alice")

	roomExpectError(t, s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, evilguy.Token), 403, "M_FORBIDDEN", "You are not permitted to create rooms")
	room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
	roomCreate(t, s, evil, map[string]any{}) // the demo module minds @evilguy only

	for _, u := range []roomUser{evil, evilguy} {
		s.Do(t, "POST", roomCS("join", room), nil, u.Token).Expect(t, 200, "") // joins are not events checked for spam
	}
	roomExpectError(t, roomSend(t, s, evil, room, "evil words"), 403, "M_FORBIDDEN", roomSpamMsg)
	roomSendOK(t, s, alice, room, "kind words")
	roomSendOK(t, s, evilguy, room, "evilguy may talk")

	r := s.Do(t, "GET", "/_synapse/client/demo/hello?name=X", nil, "").Expect(t, 200, "")
	convJSONEqual(t, "hello", r.Body, `{"hello":"X"}`)
	r = s.Do(t, "GET", "/_synapse/client/list_spam_checker/is_evil?user="+url.QueryEscape("@evil:test.local"), nil, "").Expect(t, 200, "")
	convJSONEqual(t, "is_evil", r.Body, `{"evil":true}`)
	r = s.Do(t, "GET", "/_synapse/client/list_spam_checker/is_evil?user=@alice:test.local", nil, "").Expect(t, 200, "")
	convJSONEqual(t, "is_evil", r.Body, `{"evil":false}`)
}
