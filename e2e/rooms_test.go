package e2e_test

// Room features over HTTP, on SQLite and PostgreSQL: createRoom, the
// membership endpoints, sending and reading events and state, redaction.
// Helpers are prefixed room.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

const roomRegistrationOn = "enable_registration: true\nenable_registration_without_verification: true\n"

// roomUser is a registered user and one of its access tokens.
type roomUser struct {
	ID, Token string
}

// roomRegister registers localpart with the UIA dummy stage.
func roomRegister(t testing.TB, s *testserver.Server, localpart string) roomUser {
	t.Helper()
	id, tok := s.Register(t, localpart, "pw-"+localpart)
	return roomUser{ID: id, Token: tok}
}

// roomCS is a client-server API path: /_matrix/client/v3 + the parts, each
// path-escaped, joined by "/".
func roomCS(parts ...string) string {
	var b strings.Builder
	b.WriteString("/_matrix/client/v3")
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// roomCreate creates a room and returns its ID.
func roomCreate(t testing.TB, s *testserver.Server, u roomUser, body map[string]any) string {
	t.Helper()
	r := s.Do(t, "POST", roomCS("createRoom"), body, u.Token).Expect(t, 200, "")
	id := r.Str("room_id")
	if !regexp.MustCompile(`^![A-Za-z]{18}:test\.local$`).MatchString(id) {
		t.Fatalf("room_id %q", id)
	}
	return id
}

var roomTxnCounter atomic.Int64

// roomTxn is a fresh transaction ID.
func roomTxn() string { return fmt.Sprintf("txn%d", roomTxnCounter.Add(1)) }

// roomSend sends an m.room.message with a fresh transaction ID.
func roomSend(t testing.TB, s *testserver.Server, u roomUser, roomID, body string) testserver.Response {
	t.Helper()
	return s.Do(t, "PUT", roomCS("rooms", roomID, "send", "m.room.message", roomTxn()),
		map[string]any{"msgtype": "m.text", "body": body}, u.Token)
}

// roomSendOK sends a message and returns its event ID.
func roomSendOK(t testing.TB, s *testserver.Server, u roomUser, roomID, body string) string {
	t.Helper()
	id := roomSend(t, s, u, roomID, body).Expect(t, 200, "").Str("event_id")
	roomExpectEventID(t, id)
	return id
}

func roomExpectEventID(t testing.TB, id string) {
	t.Helper()
	// Room versions 4 and later: "$" + 43 URL-safe unpadded base64 chars.
	if !regexp.MustCompile(`^\$[A-Za-z0-9_-]{43}$`).MatchString(id) {
		t.Fatalf("event_id %q is not a v4+ event ID", id)
	}
}

// roomStateKey identifies a state entry in roomState's result.
type roomStateKey struct{ Type, StateKey string }

// roomState is GET /rooms/{id}/state as a map of events.
func roomState(t testing.TB, s *testserver.Server, u roomUser, roomID string) map[roomStateKey]map[string]any {
	t.Helper()
	r := s.Do(t, "GET", roomCS("rooms", roomID, "state"), nil, u.Token)
	if r.Status != 200 {
		t.Fatalf("GET state: %d %s", r.Status, r.Raw)
	}
	var list []map[string]any
	if err := json.Unmarshal(r.Raw, &list); err != nil {
		t.Fatalf("state is not a JSON array: %v: %s", err, r.Raw)
	}
	out := map[roomStateKey]map[string]any{}
	for _, e := range list {
		k := roomStateKey{e["type"].(string), e["state_key"].(string)}
		if _, dup := out[k]; dup {
			t.Fatalf("state lists %v twice", k)
		}
		for _, f := range []string{"event_id", "sender", "room_id", "content", "origin_server_ts"} {
			if _, ok := e[f]; !ok {
				t.Fatalf("state event %v lacks %s: %v", k, f, e)
			}
		}
		if e["room_id"] != roomID {
			t.Fatalf("state event of room %v in %s", e["room_id"], roomID)
		}
		out[k] = e
	}
	return out
}

// roomStateContent is GET /rooms/{id}/state/{type}/{key}.
func roomStateContent(t testing.TB, s *testserver.Server, u roomUser, roomID, typ, key string) testserver.Response {
	t.Helper()
	return s.Do(t, "GET", roomCS("rooms", roomID, "state", typ, key), nil, u.Token)
}

// roomMembership is the target's membership per the room state as u sees it.
func roomMembership(t testing.TB, s *testserver.Server, u roomUser, roomID, target string) string {
	t.Helper()
	return roomStateContent(t, s, u, roomID, "m.room.member", target).Expect(t, 200, "").Str("membership")
}

// roomContent returns an event's content from a state map.
func roomContent(t testing.TB, st map[roomStateKey]map[string]any, typ, key string) map[string]any {
	t.Helper()
	e, ok := st[roomStateKey{typ, key}]
	if !ok {
		keys := make([]string, 0, len(st))
		for k := range st {
			keys = append(keys, k.Type+"/"+k.StateKey)
		}
		sort.Strings(keys)
		t.Fatalf("no %s/%q in state %v", typ, key, keys)
	}
	return e["content"].(map[string]any)
}

// roomExpectError checks status, errcode and, unless msg is "", the error text.
func roomExpectError(t testing.TB, r testserver.Response, status int, errcode, msg string) testserver.Response {
	t.Helper()
	r.Expect(t, status, errcode)
	if msg != "" && r.Str("error") != msg {
		t.Fatalf("error %q, want %q; body %s", r.Str("error"), msg, r.Raw)
	}
	return r
}

// roomStreamPos is the store's latest stream position: it counts events.
func roomStreamPos(t testing.TB, s *testserver.Server) int64 {
	t.Helper()
	n, err := s.Srv.Store().MaxStreamPos(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// roomJSON marshals v.
func roomJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func roomOptions() testserver.Options { return testserver.Options{YAML: roomRegistrationOn} }

func TestRoomCreate(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, roomOptions(), func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")

		t.Run("defaults: private_chat, room version 10", func(t *testing.T) {
			id := roomCreate(t, s, alice, map[string]any{})
			st := roomState(t, s, alice, id)
			want := []roomStateKey{{"m.room.create", ""}, {"m.room.member", alice.ID}, {"m.room.power_levels", ""},
				{"m.room.join_rules", ""}, {"m.room.history_visibility", ""}, {"m.room.guest_access", ""}}
			if len(st) != len(want) {
				t.Fatalf("state has %d events, want %d: %v", len(st), len(want), st)
			}
			convJSONEqual(t, "create content", roomContent(t, st, "m.room.create", ""), `{"room_version":"10","creator":"`+alice.ID+`"}`)
			convJSONEqual(t, "member content", roomContent(t, st, "m.room.member", alice.ID), `{"membership":"join","displayname":"alice"}`)
			convJSONEqual(t, "join rules", roomContent(t, st, "m.room.join_rules", ""), `{"join_rule":"invite"}`)
			convJSONEqual(t, "history", roomContent(t, st, "m.room.history_visibility", ""), `{"history_visibility":"shared"}`)
			convJSONEqual(t, "guest access", roomContent(t, st, "m.room.guest_access", ""), `{"guest_access":"can_join"}`)
			// Synapse's default power levels, with private_chat's invite 0.
			convJSONEqual(t, "power levels", roomContent(t, st, "m.room.power_levels", ""), `{
				"users": {"`+alice.ID+`": 100}, "users_default": 0,
				"events": {"m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
					"m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
					"m.room.server_acl": 100, "m.room.encryption": 100},
				"events_default": 0, "state_default": 50, "ban": 50, "kick": 50, "redact": 50,
				"invite": 0, "historical": 100}`)
			for k, e := range st {
				if e["sender"] != alice.ID {
					t.Errorf("%v sent by %v", k, e["sender"])
				}
			}
			// The state endpoints agree with each other.
			for k, e := range st {
				r := roomStateContent(t, s, alice, id, k.Type, k.StateKey).Expect(t, 200, "")
				convJSONEqual(t, "GET state/"+k.Type, r.Body, roomJSON(t, e["content"]))
			}
		})

		t.Run("public_chat with name and topic", func(t *testing.T) {
			id := roomCreate(t, s, alice, map[string]any{"preset": "public_chat", "name": "The Room", "topic": "Things"})
			st := roomState(t, s, alice, id)
			convJSONEqual(t, "join rules", roomContent(t, st, "m.room.join_rules", ""), `{"join_rule":"public"}`)
			if _, ok := st[roomStateKey{"m.room.guest_access", ""}]; ok {
				t.Error("public_chat must not set guest access")
			}
			if pl := roomContent(t, st, "m.room.power_levels", ""); pl["invite"] != float64(50) {
				t.Errorf("public_chat invite level %v, want 50", pl["invite"])
			}
			convJSONEqual(t, "name", roomContent(t, st, "m.room.name", ""), `{"name":"The Room"}`)
			convJSONEqual(t, "topic", roomContent(t, st, "m.room.topic", ""), `{"topic":"Things","m.topic":{"m.text":[{"body":"Things"}]}}`)
			// The empty state key, with and without the trailing slash.
			for _, p := range []string{roomCS("rooms", id, "state", "m.room.topic"), roomCS("rooms", id, "state", "m.room.topic") + "/"} {
				if got := s.Do(t, "GET", p, nil, alice.Token).Expect(t, 200, "").Str("topic"); got != "Things" {
					t.Errorf("GET %s: topic %q", p, got)
				}
			}
		})

		t.Run("trusted_private_chat, invite and is_direct", func(t *testing.T) {
			id := roomCreate(t, s, alice, map[string]any{"preset": "trusted_private_chat", "invite": []string{bob.ID}, "is_direct": true})
			st := roomState(t, s, alice, id)
			users := roomContent(t, st, "m.room.power_levels", "")["users"].(map[string]any)
			if users[bob.ID] != float64(100) || users[alice.ID] != float64(100) {
				t.Errorf("trusted_private_chat: invitees are ops; users %v", users)
			}
			convJSONEqual(t, "bob's invite", roomContent(t, st, "m.room.member", bob.ID), `{"membership":"invite","is_direct":true,"displayname":"bob"}`)
			if e := st[roomStateKey{"m.room.member", bob.ID}]; e["sender"] != alice.ID {
				t.Errorf("invite sent by %v", e["sender"])
			}
		})

		t.Run("initial_state, overridden by name and topic", func(t *testing.T) {
			id := roomCreate(t, s, alice, map[string]any{
				"topic": "explicit topic",
				"initial_state": []any{
					map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "public"}},
					map[string]any{"type": "m.room.topic", "state_key": "", "content": map[string]any{"topic": "initial topic"}},
					map[string]any{"type": "org.example.custom", "state_key": "k", "content": map[string]any{"a": 1}},
				},
			})
			st := roomState(t, s, alice, id)
			convJSONEqual(t, "join rules (initial_state beats the preset)", roomContent(t, st, "m.room.join_rules", ""), `{"join_rule":"public"}`)
			if got := roomContent(t, st, "m.room.topic", "")["topic"]; got != "explicit topic" {
				t.Errorf("topic %v: the topic key must override initial_state", got)
			}
			convJSONEqual(t, "custom", roomContent(t, st, "org.example.custom", "k"), `{"a":1}`)
			roomStateContent(t, s, alice, id, "org.example.custom", "k").Expect(t, 200, "")
			roomExpectError(t, roomStateContent(t, s, alice, id, "org.example.custom", "other"), 404, "M_NOT_FOUND", "")
			roomExpectError(t, roomStateContent(t, s, alice, id, "m.room.name", ""), 404, "M_NOT_FOUND", "")
		})

		t.Run("room versions", func(t *testing.T) {
			v11 := roomCreate(t, s, alice, map[string]any{"room_version": "11"})
			// Version 11 drops creator: the sender is the creator.
			convJSONEqual(t, "v11 create", roomContent(t, roomState(t, s, alice, v11), "m.room.create", ""), `{"room_version":"11"}`)
			v10 := roomCreate(t, s, alice, map[string]any{"room_version": "10"})
			convJSONEqual(t, "v10 create", roomContent(t, roomState(t, s, alice, v10), "m.room.create", ""), `{"room_version":"10","creator":"`+alice.ID+`"}`)
			// Both versions work for messages.
			in11 := roomSendOK(t, s, alice, v11, "in 11")
			roomSendOK(t, s, alice, v10, "in 10")
			// Version 11 moves redacts into the content; clients see both.
			rid := s.Do(t, "PUT", roomCS("rooms", v11, "redact", in11, roomTxn()), map[string]any{}, alice.Token).Expect(t, 200, "").Str("event_id")
			red := s.Do(t, "GET", roomCS("rooms", v11, "event", rid), nil, alice.Token).Expect(t, 200, "")
			if red.Str("redacts") != in11 || red.Body["content"].(map[string]any)["redacts"] != in11 {
				t.Errorf("v11 redaction %s", red.Raw)
			}
			convJSONEqual(t, "v11 redacted content", s.Do(t, "GET", roomCS("rooms", v11, "event", in11), nil, alice.Token).Expect(t, 200, "").Body["content"], `{}`)

			roomExpectError(t, s.Do(t, "POST", roomCS("createRoom"), map[string]any{"room_version": "9999"}, alice.Token), 400, "M_UNSUPPORTED_ROOM_VERSION", "")
			roomExpectError(t, s.Do(t, "POST", roomCS("createRoom"), map[string]any{"room_version": 11}, alice.Token), 400, "M_BAD_JSON", "")
		})

		t.Run("creation_content", func(t *testing.T) {
			id := roomCreate(t, s, alice, map[string]any{"creation_content": map[string]any{
				"m.federate": false, "type": "m.space", "room_version": "1", "creator": "@mallory:test.local"}})
			// room_version and creator are the server's to set.
			convJSONEqual(t, "create", roomContent(t, roomState(t, s, alice, id), "m.room.create", ""),
				`{"m.federate":false,"type":"m.space","room_version":"10","creator":"`+alice.ID+`"}`)
		})

		t.Run("power_level_content_override", func(t *testing.T) {
			id := roomCreate(t, s, alice, map[string]any{"power_level_content_override": map[string]any{
				"events_default": 10, "users": map[string]any{alice.ID: 100, bob.ID: 60}}})
			pl := roomContent(t, roomState(t, s, alice, id), "m.room.power_levels", "")
			convJSONEqual(t, "users (replaced whole)", pl["users"], `{"`+alice.ID+`":100,"`+bob.ID+`":60}`)
			if pl["events_default"] != float64(10) || pl["state_default"] != float64(50) || pl["kick"] != float64(50) {
				t.Errorf("override is a shallow merge onto the defaults: %v", pl)
			}
		})

		t.Run("bad requests", func(t *testing.T) {
			for _, tc := range []struct {
				name    string
				body    any
				status  int
				errcode string
			}{
				{"not JSON", "{nope", 400, "M_NOT_JSON"},
				{"not an object", "[]", 400, "M_BAD_JSON"},
				{"name not a string", map[string]any{"name": 5}, 400, "M_BAD_JSON"},
				{"unknown preset", map[string]any{"preset": "party"}, 400, "M_BAD_JSON"},
				{"invalid invitee", map[string]any{"invite": []string{"bob"}}, 400, "M_INVALID_PARAM"},
				{"initial_state not a list", map[string]any{"initial_state": map[string]any{}}, 400, "M_BAD_JSON"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					s.Do(t, "POST", roomCS("createRoom"), tc.body, alice.Token).Expect(t, tc.status, tc.errcode)
				})
			}
			s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, "").Expect(t, 401, "M_MISSING_TOKEN")
		})
	})
}

func TestRoomMembership(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, roomOptions(), func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		carol := roomRegister(t, s, "carol")
		public := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		private := roomCreate(t, s, alice, map[string]any{})

		t.Run("join a public room", func(t *testing.T) {
			r := s.Do(t, "POST", roomCS("join", public), map[string]any{}, bob.Token).Expect(t, 200, "")
			if r.Str("room_id") != public {
				t.Fatalf("join answered %s", r.Raw)
			}
			if m := roomMembership(t, s, alice, public, bob.ID); m != "join" {
				t.Fatalf("bob's membership %q", m)
			}
			r = s.Do(t, "POST", roomCS("rooms", public, "join"), nil, carol.Token).Expect(t, 200, "")
			if r.Str("room_id") != public {
				t.Fatalf("join answered %s", r.Raw)
			}
			// Joining again changes nothing (Synapse answers a repeated
			// membership with the existing event).
			before := roomState(t, s, alice, public)[roomStateKey{"m.room.member", bob.ID}]["event_id"]
			pos := roomStreamPos(t, s)
			s.Do(t, "POST", roomCS("join", public), map[string]any{}, bob.Token).Expect(t, 200, "")
			if after := roomState(t, s, alice, public)[roomStateKey{"m.room.member", bob.ID}]["event_id"]; after != before || roomStreamPos(t, s) != pos {
				t.Errorf("a repeated join made a new event (%v -> %v)", before, after)
			}
		})

		t.Run("invite-only room", func(t *testing.T) {
			r := roomExpectError(t, s.Do(t, "POST", roomCS("rooms", private, "join"), nil, bob.Token), 403, "M_FORBIDDEN", "")
			if !strings.Contains(r.Str("error"), "invite") {
				t.Errorf("error %q does not say why", r.Str("error"))
			}
			// Bob may not invite himself or anyone: he is not in the room.
			roomExpectError(t, s.Do(t, "POST", roomCS("rooms", private, "invite"), map[string]any{"user_id": carol.ID}, bob.Token), 403, "M_FORBIDDEN", "")
			s.Do(t, "POST", roomCS("rooms", private, "invite"), map[string]any{"user_id": bob.ID}, alice.Token).Expect(t, 200, "")
			if m := roomMembership(t, s, alice, private, bob.ID); m != "invite" {
				t.Fatalf("bob's membership %q after the invite", m)
			}
			s.Do(t, "POST", roomCS("join", private), nil, bob.Token).Expect(t, 200, "")
			if m := roomMembership(t, s, alice, private, bob.ID); m != "join" {
				t.Fatalf("bob's membership %q after joining", m)
			}
		})

		t.Run("invite needs power", func(t *testing.T) {
			// public_chat: invite level 50; bob has 0.
			r := roomExpectError(t, s.Do(t, "POST", roomCS("rooms", public, "invite"), map[string]any{"user_id": "@dave:test.local"}, bob.Token), 403, "M_FORBIDDEN", "")
			if !strings.Contains(r.Str("error"), "power level") {
				t.Errorf("error %q does not give the auth rule's reason", r.Str("error"))
			}
			s.Do(t, "POST", roomCS("rooms", public, "invite"), map[string]any{}, alice.Token).Expect(t, 400, "M_MISSING_PARAM")
			s.Do(t, "POST", roomCS("rooms", public, "invite"), map[string]any{"user_id": "dave"}, alice.Token).Expect(t, 400, "M_INVALID_PARAM")
		})

		t.Run("joined_rooms, members, joined_members", func(t *testing.T) {
			r := s.Do(t, "GET", roomCS("joined_rooms"), nil, bob.Token).Expect(t, 200, "")
			roomExpectSet(t, "bob's joined rooms", r.Body["joined_rooms"], public, private)
			r = s.Do(t, "GET", roomCS("joined_rooms"), nil, carol.Token).Expect(t, 200, "")
			roomExpectSet(t, "carol's joined rooms", r.Body["joined_rooms"], public)

			r = s.Do(t, "GET", roomCS("rooms", public, "joined_members"), nil, bob.Token).Expect(t, 200, "")
			convJSONEqual(t, "joined", r.Body["joined"], `{"`+alice.ID+`":{"display_name":"alice","avatar_url":null},"`+
				bob.ID+`":{"display_name":"bob","avatar_url":null},"`+carol.ID+`":{"display_name":"carol","avatar_url":null}}`)

			r = s.Do(t, "GET", roomCS("rooms", public, "members"), nil, bob.Token).Expect(t, 200, "")
			got := map[string]string{}
			for _, x := range r.Body["chunk"].([]any) {
				e := x.(map[string]any)
				if e["type"] != "m.room.member" || e["room_id"] != public {
					t.Fatalf("members chunk has %v", e)
				}
				got[e["state_key"].(string)] = e["content"].(map[string]any)["membership"].(string)
			}
			convJSONEqual(t, "members", got, `{"`+alice.ID+`":"join","`+bob.ID+`":"join","`+carol.ID+`":"join"}`)

			// Carol is not in the private room.
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", private, "members"), nil, carol.Token), 403, "M_FORBIDDEN", "")
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", private, "joined_members"), nil, carol.Token), 403, "M_FORBIDDEN", "")
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", private, "state"), nil, carol.Token), 403, "M_FORBIDDEN", "")
			roomExpectError(t, roomStateContent(t, s, carol, private, "m.room.create", ""), 403, "M_FORBIDDEN", "")
		})

		t.Run("kick needs power", func(t *testing.T) {
			r := roomExpectError(t, s.Do(t, "POST", roomCS("rooms", public, "kick"), map[string]any{"user_id": bob.ID}, carol.Token), 403, "M_FORBIDDEN", "")
			if !strings.Contains(r.Str("error"), "kick") {
				t.Errorf("error %q does not give the auth rule's reason", r.Str("error"))
			}
			roomExpectError(t, s.Do(t, "POST", roomCS("rooms", public, "kick"), map[string]any{"user_id": "@nobody:test.local"}, alice.Token),
				403, "M_FORBIDDEN", "The target user is not in the room")
			s.Do(t, "POST", roomCS("rooms", public, "kick"), map[string]any{"user_id": carol.ID, "reason": "testing"}, alice.Token).Expect(t, 200, "")
			convJSONEqual(t, "carol's membership", roomStateContent(t, s, alice, public, "m.room.member", carol.ID).Expect(t, 200, "").Body,
				`{"membership":"leave","reason":"testing"}`)
			roomExpectError(t, s.Do(t, "POST", roomCS("rooms", public, "kick"), map[string]any{"user_id": carol.ID}, alice.Token),
				403, "M_FORBIDDEN", "The target user is not in the room")
			// Kicked, not banned: carol may come back to a public room.
			s.Do(t, "POST", roomCS("join", public), nil, carol.Token).Expect(t, 200, "")
		})

		t.Run("ban, rejoin refused, unban", func(t *testing.T) {
			roomExpectError(t, s.Do(t, "POST", roomCS("rooms", public, "ban"), map[string]any{"user_id": bob.ID}, carol.Token), 403, "M_FORBIDDEN", "")
			// Unbanning someone not banned is refused, not a kick in disguise.
			roomExpectError(t, s.Do(t, "POST", roomCS("rooms", public, "unban"), map[string]any{"user_id": bob.ID}, alice.Token),
				403, "M_BAD_STATE", "Cannot unban user who was not banned (membership=join)")
			if m := roomMembership(t, s, alice, public, bob.ID); m != "join" {
				t.Fatalf("bob's membership %q after a refused unban", m)
			}
			s.Do(t, "POST", roomCS("rooms", public, "ban"), map[string]any{"user_id": bob.ID, "reason": "spam"}, alice.Token).Expect(t, 200, "")
			if m := roomMembership(t, s, alice, public, bob.ID); m != "ban" {
				t.Fatalf("bob's membership %q after the ban", m)
			}
			// A banned user may not come back, nor be invited back (Synapse's
			// messages and M_BAD_STATE, before the auth rules).
			roomExpectError(t, s.Do(t, "POST", roomCS("join", public), nil, bob.Token), 403, "M_BAD_STATE", "Cannot join user who was banned")
			roomExpectError(t, s.Do(t, "POST", roomCS("rooms", public, "invite"), map[string]any{"user_id": bob.ID}, alice.Token),
				403, "M_BAD_STATE", "Cannot invite user who was banned")
			roomExpectError(t, roomSend(t, s, bob, public, "let me in"), 403, "M_FORBIDDEN", "")
			// Only someone with the ban level may unban.
			roomExpectError(t, s.Do(t, "POST", roomCS("rooms", public, "unban"), map[string]any{"user_id": bob.ID}, carol.Token), 403, "M_FORBIDDEN", "")
			s.Do(t, "POST", roomCS("rooms", public, "unban"), map[string]any{"user_id": bob.ID}, alice.Token).Expect(t, 200, "")
			if m := roomMembership(t, s, alice, public, bob.ID); m != "leave" {
				t.Fatalf("bob's membership %q after the unban", m)
			}
			s.Do(t, "POST", roomCS("join", public), nil, bob.Token).Expect(t, 200, "")
		})

		t.Run("leave and forget", func(t *testing.T) {
			roomExpectError(t, s.Do(t, "POST", roomCS("rooms", private, "forget"), nil, bob.Token), 400, "M_UNKNOWN", "User "+bob.ID+" is in room "+private)
			s.Do(t, "POST", roomCS("rooms", private, "leave"), map[string]any{"reason": "bye"}, bob.Token).Expect(t, 200, "")
			convJSONEqual(t, "bob's membership", roomStateContent(t, s, alice, private, "m.room.member", bob.ID).Expect(t, 200, "").Body,
				`{"membership":"leave","reason":"bye"}`)
			r := s.Do(t, "GET", roomCS("joined_rooms"), nil, bob.Token).Expect(t, 200, "")
			roomExpectSet(t, "bob's joined rooms", r.Body["joined_rooms"], public)
			roomExpectError(t, roomSend(t, s, bob, private, "still here?"), 403, "M_FORBIDDEN", "")
			s.Do(t, "POST", roomCS("rooms", private, "forget"), nil, bob.Token).Expect(t, 200, "")
			s.Do(t, "POST", roomCS("rooms", private, "forget"), nil, bob.Token).Expect(t, 200, "") // again: fine
			forgotten, err := s.Srv.Store().IsForgotten(context.Background(), bob.ID, private)
			if err != nil || !forgotten {
				t.Fatalf("IsForgotten = %v, %v", forgotten, err)
			}
			// Carol never was in the private room: nothing to leave.
			roomExpectError(t, s.Do(t, "POST", roomCS("rooms", private, "leave"), nil, carol.Token), 403, "M_FORBIDDEN", "")
		})

		t.Run("membership through PUT state", func(t *testing.T) {
			// An invite by PUT /state/m.room.member/{user} goes through the
			// membership rules too.
			r := s.Do(t, "PUT", roomCS("rooms", private, "state", "m.room.member", carol.ID), map[string]any{"membership": "invite"}, alice.Token).Expect(t, 200, "")
			roomExpectEventID(t, r.Str("event_id"))
			if m := roomMembership(t, s, alice, private, carol.ID); m != "invite" {
				t.Fatalf("carol's membership %q", m)
			}
			s.Do(t, "PUT", roomCS("rooms", private, "state", "m.room.member", carol.ID), map[string]any{"membership": "dance"}, alice.Token).Expect(t, 400, "M_BAD_JSON")
		})

		t.Run("bad room IDs", func(t *testing.T) {
			s.Do(t, "POST", roomCS("join", "not-a-room"), nil, bob.Token).Expect(t, 400, "M_INVALID_PARAM")
			s.Do(t, "POST", roomCS("rooms", "not-a-room", "leave"), nil, bob.Token).Expect(t, 400, "M_INVALID_PARAM")
			s.Do(t, "POST", roomCS("join", "#alias:test.local"), nil, bob.Token).Expect(t, 404, "M_NOT_FOUND")
		})
	})
}

// roomExpectSet checks a JSON list of strings against want, in any order.
func roomExpectSet(t testing.TB, what string, list any, want ...string) {
	t.Helper()
	var got []string
	for _, x := range list.([]any) {
		got = append(got, x.(string))
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func TestRoomSend(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, roomOptions(), func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		carol := roomRegister(t, s, "carol")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		other := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		s.Do(t, "POST", roomCS("join", room), nil, bob.Token).Expect(t, 200, "")

		t.Run("send and read back", func(t *testing.T) {
			id := roomSendOK(t, s, bob, room, "hello")
			r := s.Do(t, "GET", roomCS("rooms", room, "event", id), nil, alice.Token).Expect(t, 200, "")
			if r.Str("event_id") != id || r.Str("type") != "m.room.message" || r.Str("sender") != bob.ID || r.Str("room_id") != room {
				t.Fatalf("event %s", r.Raw)
			}
			convJSONEqual(t, "content", r.Body["content"], `{"msgtype":"m.text","body":"hello"}`)
			if _, ok := r.Body["state_key"]; ok {
				t.Error("a message has no state_key")
			}
			if ts, _ := r.Body["origin_server_ts"].(float64); ts <= 0 {
				t.Errorf("origin_server_ts %v", r.Body["origin_server_ts"])
			}
			if u, _ := r.Body["unsigned"].(map[string]any); u == nil || u["age"] == nil {
				t.Errorf("unsigned.age missing: %s", r.Raw)
			}
			for _, k := range []string{"hashes", "signatures", "auth_events", "prev_events", "depth"} {
				if _, ok := r.Body[k]; ok {
					t.Errorf("the client format leaks the federation field %s", k)
				}
			}
		})

		t.Run("transaction IDs", func(t *testing.T) {
			path := roomCS("rooms", room, "send", "m.room.message", "same-txn")
			first := s.Do(t, "PUT", path, map[string]any{"msgtype": "m.text", "body": "once"}, bob.Token).Expect(t, 200, "").Str("event_id")
			pos := roomStreamPos(t, s)
			again := s.Do(t, "PUT", path, map[string]any{"msgtype": "m.text", "body": "once"}, bob.Token).Expect(t, 200, "").Str("event_id")
			if again != first {
				t.Fatalf("retry gave %s, first %s", again, first)
			}
			if p := roomStreamPos(t, s); p != pos {
				t.Fatalf("a retried transaction persisted another event (stream %d -> %d)", pos, p)
			}
			// Another device (a new login) has its own transactions.
			tok2 := s.Login(t, "bob", "pw-bob")
			bob2 := roomUser{ID: bob.ID, Token: tok2}
			otherDev := s.Do(t, "PUT", path, map[string]any{"msgtype": "m.text", "body": "once"}, bob2.Token).Expect(t, 200, "").Str("event_id")
			if otherDev == first {
				t.Fatal("a different device's transaction returned the first device's event")
			}
			// Another user's neither.
			s.Do(t, "POST", roomCS("join", room), nil, carol.Token).Expect(t, 200, "")
			if id := s.Do(t, "PUT", path, map[string]any{"msgtype": "m.text", "body": "once"}, carol.Token).Expect(t, 200, "").Str("event_id"); id == first || id == otherDev {
				t.Fatal("another user's transaction returned someone else's event")
			}
			// The same transaction ID in another room is another request:
			// its event goes to that room (Synapse scopes transactions by
			// the request path).
			s.Do(t, "POST", roomCS("join", other), nil, bob.Token).Expect(t, 200, "")
			elsewhere := s.Do(t, "PUT", roomCS("rooms", other, "send", "m.room.message", "same-txn"),
				map[string]any{"msgtype": "m.text", "body": "once"}, bob.Token).Expect(t, 200, "").Str("event_id")
			if elsewhere == first {
				t.Fatal("the same transaction ID in another room returned the first room's event: the message was lost")
			}
			s.Do(t, "GET", roomCS("rooms", other, "event", elsewhere), nil, bob.Token).Expect(t, 200, "")
			s.Do(t, "POST", roomCS("rooms", other, "leave"), nil, bob.Token).Expect(t, 200, "")
		})

		t.Run("not in the room", func(t *testing.T) {
			roomExpectError(t, roomSend(t, s, carol, other, "hi"), 403, "M_FORBIDDEN", "User "+carol.ID+" not in room "+other)
		})

		t.Run("unknown room", func(t *testing.T) {
			// Synapse (EventCreationHandler.create_and_send_nonmember_event)
			// answers 403 "User ... not in room ..." when it does not know
			// the room, exactly as for a room the user is not in; the spec
			// lists no 404 for this endpoint. So a client cannot tell an
			// unknown room from one it is not in.
			unknown := "!doesnotexistatall:test.local"
			roomExpectError(t, roomSend(t, s, alice, unknown, "hi"), 403, "M_FORBIDDEN", "User "+alice.ID+" not in room "+unknown)
			roomExpectError(t, s.Do(t, "PUT", roomCS("rooms", unknown, "state", "m.room.topic", ""), map[string]any{"topic": "x"}, alice.Token),
				403, "M_FORBIDDEN", "User "+alice.ID+" not in room "+unknown)
			// The read endpoints answer like for a room one is not in
			// (the spec's 403 "You aren't a member of the room").
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", unknown, "state"), nil, alice.Token), 403, "M_FORBIDDEN", "")
			roomExpectError(t, roomStateContent(t, s, alice, unknown, "m.room.create", ""), 403, "M_FORBIDDEN", "")
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", unknown, "members"), nil, alice.Token), 403, "M_FORBIDDEN", "")
			// GET event: 404, as Synapse's "Event not found."
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", unknown, "event", "$abc"), nil, alice.Token), 404, "M_NOT_FOUND", "")
			s.Do(t, "PUT", roomCS("rooms", "nope", "send", "m.room.message", "t"), map[string]any{}, alice.Token).Expect(t, 400, "M_INVALID_PARAM")
		})

		t.Run("state event without the power level", func(t *testing.T) {
			r := s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.topic", ""), map[string]any{"topic": "bob's"}, bob.Token)
			roomExpectError(t, r, 403, "M_FORBIDDEN", "sender's power level 0 is below the level 50 required to send m.room.topic")
			// Alice may, with both path forms of the empty state key.
			for i, p := range []string{roomCS("rooms", room, "state", "m.room.topic"), roomCS("rooms", room, "state", "m.room.topic") + "/"} {
				topic := fmt.Sprintf("topic %d", i)
				id := s.Do(t, "PUT", p, map[string]any{"topic": topic}, alice.Token).Expect(t, 200, "").Str("event_id")
				roomExpectEventID(t, id)
				if got := roomStateContent(t, s, bob, room, "m.room.topic", "").Expect(t, 200, "").Str("topic"); got != topic {
					t.Fatalf("after PUT %s: topic %q", p, got)
				}
				e := s.Do(t, "GET", roomCS("rooms", room, "event", id), nil, bob.Token).Expect(t, 200, "")
				if sk, ok := e.Body["state_key"].(string); !ok || sk != "" {
					t.Fatalf("state event has state_key %v", e.Body["state_key"])
				}
			}
			// A state key other than "" is another piece of state.
			s.Do(t, "PUT", roomCS("rooms", room, "state", "org.example.thing", "a/b"), map[string]any{"v": 1}, alice.Token).Expect(t, 200, "")
			convJSONEqual(t, "state with a slash in the key", roomStateContent(t, s, bob, room, "org.example.thing", "a/b").Expect(t, 200, "").Body, `{"v":1}`)
		})

		t.Run("too large", func(t *testing.T) {
			big := strings.Repeat("x", 65*1024)
			roomExpectError(t, roomSend(t, s, bob, room, big), 413, "M_TOO_LARGE", "")
			roomExpectError(t, s.Do(t, "PUT", roomCS("rooms", room, "state", "org.example.big", ""), map[string]any{"v": big}, alice.Token), 413, "M_TOO_LARGE", "")
		})

		t.Run("bad JSON", func(t *testing.T) {
			path := roomCS("rooms", room, "send", "m.room.message", roomTxn())
			s.Do(t, "PUT", path, "{not json", bob.Token).Expect(t, 400, "M_NOT_JSON")
			s.Do(t, "PUT", path, "[1,2]", bob.Token).Expect(t, 400, "M_BAD_JSON")
			s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.topic", ""), "{not json", alice.Token).Expect(t, 400, "M_NOT_JSON")
		})

		t.Run("get event", func(t *testing.T) {
			id := roomSendOK(t, s, alice, other, "elsewhere")
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", room, "event", "$nosuchevent"), nil, bob.Token), 404, "M_NOT_FOUND", "")
			// An event is found in its own room only.
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", room, "event", id), nil, alice.Token), 404, "M_NOT_FOUND", "")
			// Not to someone who never was in its room: as Synapse, the
			// endpoint answers 404 for an event the user may not see.
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", other, "event", id), nil, carol.Token), 404, "M_NOT_FOUND", "Event not found.")
			// A former member sees the room up to their departure, not after.
			// (Bob joined and left other in "transaction IDs".)
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", other, "event", id), nil, bob.Token), 404, "M_NOT_FOUND", "Event not found.")
			s.Do(t, "POST", roomCS("join", other), nil, bob.Token).Expect(t, 200, "")
			before := roomSendOK(t, s, alice, other, "while bob is in")
			s.Do(t, "POST", roomCS("rooms", other, "leave"), nil, bob.Token).Expect(t, 200, "")
			after := roomSendOK(t, s, alice, other, "after bob left")
			s.Do(t, "GET", roomCS("rooms", other, "event", before), nil, bob.Token).Expect(t, 200, "")
			roomExpectError(t, s.Do(t, "GET", roomCS("rooms", other, "event", after), nil, bob.Token), 404, "M_NOT_FOUND", "Event not found.")
		})

		t.Run("redaction", func(t *testing.T) {
			id := roomSendOK(t, s, bob, room, "regrettable")
			// Without the redact level, only one's own events.
			mine := roomSendOK(t, s, alice, room, "alice's")
			roomExpectError(t, s.Do(t, "PUT", roomCS("rooms", room, "redact", mine, roomTxn()), map[string]any{}, bob.Token),
				403, "M_FORBIDDEN", "You don't have permission to redact events")
			if c := s.Do(t, "GET", roomCS("rooms", room, "event", mine), nil, alice.Token).Expect(t, 200, "").Body["content"].(map[string]any); c["body"] != "alice's" {
				t.Fatalf("a refused redaction redacted the event: %v", c)
			}
			rid := s.Do(t, "PUT", roomCS("rooms", room, "redact", id, roomTxn()), map[string]any{"reason": "oops"}, bob.Token).Expect(t, 200, "").Str("event_id")
			roomExpectEventID(t, rid)
			for _, u := range []roomUser{alice, bob} {
				r := s.Do(t, "GET", roomCS("rooms", room, "event", id), nil, u.Token).Expect(t, 200, "")
				convJSONEqual(t, "redacted content", r.Body["content"], `{}`)
				unsigned, _ := r.Body["unsigned"].(map[string]any)
				because, _ := unsigned["redacted_because"].(map[string]any)
				if because == nil || because["event_id"] != rid || because["type"] != "m.room.redaction" || because["sender"] != bob.ID {
					t.Fatalf("unsigned.redacted_because = %v, want the redaction event %s", unsigned["redacted_because"], rid)
				}
				if c, _ := because["content"].(map[string]any); c["reason"] != "oops" {
					t.Errorf("redacted_because content %v", because["content"])
				}
				if r.Str("type") != "m.room.message" || r.Str("sender") != bob.ID {
					t.Errorf("redaction keeps the top-level keys: %s", r.Raw)
				}
			}
			red := s.Do(t, "GET", roomCS("rooms", room, "event", rid), nil, alice.Token).Expect(t, 200, "")
			if red.Str("type") != "m.room.redaction" || red.Str("redacts") != id {
				t.Fatalf("redaction event %s", red.Raw)
			}
			// The room admin may redact anyone's.
			s.Do(t, "PUT", roomCS("rooms", room, "redact", mine, roomTxn()), map[string]any{}, alice.Token).Expect(t, 200, "")
			bobs := roomSendOK(t, s, bob, room, "bob again")
			s.Do(t, "PUT", roomCS("rooms", room, "redact", bobs, roomTxn()), map[string]any{}, alice.Token).Expect(t, 200, "")
			convJSONEqual(t, "redacted by the admin", s.Do(t, "GET", roomCS("rooms", room, "event", bobs), nil, bob.Token).Expect(t, 200, "").Body["content"], `{}`)
			// Synapse's other checks of a redaction.
			roomExpectError(t, s.Do(t, "PUT", roomCS("rooms", room, "redact", "$nosuchevent", roomTxn()), map[string]any{}, bob.Token),
				404, "M_NOT_FOUND", "Could not find event $nosuchevent")
			s.Do(t, "PUT", roomCS("rooms", room, "redact", "$nosuchevent", roomTxn()), map[string]any{}, alice.Token).Expect(t, 200, "")
			elsewhere := roomSendOK(t, s, alice, other, "in the other room")
			roomExpectError(t, s.Do(t, "PUT", roomCS("rooms", room, "redact", elsewhere, roomTxn()), map[string]any{}, alice.Token),
				400, "M_UNKNOWN", "Cannot redact event from a different room")
			// The create event may not be redacted.
			create := roomState(t, s, alice, room)[roomStateKey{"m.room.create", ""}]["event_id"].(string)
			roomExpectError(t, s.Do(t, "PUT", roomCS("rooms", room, "redact", create, roomTxn()), map[string]any{}, alice.Token),
				403, "M_FORBIDDEN", "Redacting create events is not permitted")
		})
	})
}
