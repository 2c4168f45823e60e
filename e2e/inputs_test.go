package e2e_test

import (
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

// TestHostileInputs: inputs that once gave 500 on PostgreSQL or diverged
// from Synapse get a clean 400 on both databases.
func TestHostileInputs(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: modRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		reg := func(body map[string]any) testserver.Response {
			body["auth"] = map[string]any{"type": "m.login.dummy"}
			return s.Do(t, "POST", "/_matrix/client/v3/register", body, "")
		}
		reg(map[string]any{"username": "nul1", "password": "pw", "device_id": "x\u0000"}).Expect(t, 400, "M_INVALID_PARAM")
		reg(map[string]any{"username": "nul2", "password": "pw", "initial_device_display_name": "\u0000"}).Expect(t, 400, "M_INVALID_PARAM")
		// The refused registrations left no account behind.
		reg(map[string]any{"username": "nul1", "password": "pw"}).Expect(t, 200, "")
		s.Do(t, "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.password",
			"identifier": map[string]any{"type": "m.id.user", "user": "nul1\u0000"}, "password": "pw"}, "").Expect(t, 400, "M_INVALID_PARAM")
		s.Do(t, "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.password",
			"identifier": map[string]any{"type": "m.id.user", "user": "nul1"}, "password": "pw", "device_id": "\u0000"}, "").Expect(t, 400, "M_INVALID_PARAM")
		s.Do(t, "POST", "/_matrix/client/v3/register", map[string]any{"username": "nul3", "password": "pw",
			"auth": map[string]any{"type": "m.login.dummy", "session": "\u0000"}}, "").Expect(t, 400, "M_INVALID_PARAM")
		// Non-ASCII letters are not folded onto ASCII names.
		reg(map[string]any{"username": "İSTANBUL", "password": "pw"}).Expect(t, 400, "M_INVALID_USERNAME")
		r := s.Do(t, "GET", "/_matrix/client/v3/register/available?username=%C3%BC", nil, "").Expect(t, 400, "M_UNKNOWN")
		if !strings.Contains(r.Str("error"), "ascii") {
			t.Errorf("error %q", r.Str("error"))
		}
		// Paths ServeMux would redirect are unknown, as JSON.
		s.Do(t, "GET", "/_matrix/client/v3//login", nil, "").Expect(t, 404, "M_UNRECOGNIZED")

		// A NUL byte anywhere in a path or query (found on the directory,
		// media and send endpoints, 500 on PostgreSQL) is refused before
		// any endpoint sees it.
		id, tok := s.Register(t, "nulpaths", "pw")
		room := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{}, tok).Expect(t, 200, "").Str("room_id")
		for _, c := range []struct{ method, path string }{
			{"GET", "/_matrix/client/v3/directory/list/room/%00"},
			{"GET", "/_matrix/media/v3/download/test.local/a%00b"},
			{"GET", "/_matrix/media/v3/thumbnail/test.local/a%00b?width=1&height=1"},
			{"GET", "/_matrix/client/v1/media/download/test.local/a%00b"},
			{"PUT", "/_matrix/media/v3/upload/test.local/a%00b"},
			{"GET", "/_matrix/client/v3/rooms/%00/aliases"},
			{"PUT", "/_matrix/client/v3/directory/list/room/%00"},
			{"PUT", "/_matrix/client/v3/rooms/" + room + "/send/m.room.message/a%00"},
			{"GET", "/_matrix/client/v3/publicRooms?since=%00"},
			{"POST", "/_matrix/media/v3/upload?filename=a%00.png"},
		} {
			r := s.Do(t, c.method, c.path, map[string]any{}, tok)
			if r.Status != 400 || r.Str("errcode") != "M_INVALID_PARAM" {
				t.Errorf("%s %s: %d %s, want 400 M_INVALID_PARAM", c.method, c.path, r.Status, r.Raw)
			}
		}
		// In bodies: an alias for a room ID with a NUL byte names no room,
		// and a profile field with one is refused.
		s.Do(t, "PUT", "/_matrix/client/v3/directory/room/%23nul:test.local", map[string]any{"room_id": room + "\u0000"}, tok).Expect(t, 400, "M_UNKNOWN") // "Room does not exist", Synapse's
		s.Do(t, "PUT", "/_matrix/client/v3/profile/"+id+"/displayname", map[string]any{"displayname": "a\u0000b"}, tok).Expect(t, 400, "M_INVALID_PARAM")
		s.Do(t, "PUT", "/_matrix/client/v3/profile/"+id+"/avatar_url", map[string]any{"avatar_url": "mxc://a/\u0000"}, tok).Expect(t, 400, "M_INVALID_PARAM")
	})
}
