package e2e_test

import (
	"net/url"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

// TestModuleAPIRoomHelpers drives the module API's room helpers through a
// module's web resource: create a room, read its state, send an event and
// change memberships as local users.
func TestModuleAPIRoomHelpers(t *testing.T) {
	t.Parallel()
	id := modID(t, 0)
	s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn + "modules:\n" +
		modEntry(id, "", map[string]string{"web_resource": "/_synapse/client/rooms"})})
	_, tok := s.Register(t, "mara", "pw")
	_, tokB := s.Register(t, "nils", "pw")
	api := func(q url.Values) testserver.Response {
		return s.Do(t, "GET", "/_synapse/client/rooms?"+q.Encode(), nil, "")
	}
	room := api(url.Values{"api": {"createroom"}, "user": {"@mara:test.local"}}).Expect(t, 200, "").Str("result")
	if room == "" {
		t.Fatal("no room ID")
	}
	// The room is real: its creator can read its state through the client API.
	name := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/state/m.room.name/", nil, tok).Expect(t, 200, "")
	if name.Str("name") != "made by a module" {
		t.Errorf("room name %s", name.Raw)
	}
	state := api(url.Values{"api": {"roomstate"}, "room": {room}}).Expect(t, 200, "").Body["result"].(map[string]any)
	for _, k := range []string{"m.room.create|", "m.room.member|@mara:test.local", "m.room.power_levels|", "m.room.name|"} {
		if state[k] != "@mara:test.local" {
			t.Errorf("state %s = %v", k, state[k])
		}
	}
	evID := api(url.Values{"api": {"sendevent"}, "room": {room}, "user": {"@mara:test.local"}}).Expect(t, 200, "").Str("result")
	ev := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/event/"+evID, nil, tok).Expect(t, 200, "")
	if c := ev.Body["content"].(map[string]any); c["body"] != "from a module" {
		t.Errorf("module-sent event content %v", c)
	}
	// Membership: Mara invites Nils, Nils joins, both through the API.
	api(url.Values{"api": {"membership"}, "room": {room}, "user": {"@mara:test.local"}, "target": {"@nils:test.local"}, "m": {"invite"}}).Expect(t, 200, "")
	api(url.Values{"api": {"membership"}, "room": {room}, "user": {"@nils:test.local"}, "target": {"@nils:test.local"}, "m": {"join"}}).Expect(t, 200, "")
	joined := s.Do(t, "GET", "/_matrix/client/v3/joined_rooms", nil, tokB).Expect(t, 200, "")
	if rooms := joined.Body["joined_rooms"].([]any); len(rooms) != 1 || rooms[0] != room {
		t.Errorf("joined_rooms %v", rooms)
	}
	// A remote sender is refused.
	api(url.Values{"api": {"sendevent"}, "room": {room}, "user": {"@x:elsewhere.org"}}).Expect(t, 500, "M_UNKNOWN")
	// Auth rules apply: a user not in the room cannot send into it.
	api(url.Values{"api": {"sendevent"}, "room": {room}, "user": {"@ghost:test.local"}}).Expect(t, 403, "M_FORBIDDEN")
}
