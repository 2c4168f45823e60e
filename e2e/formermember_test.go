package e2e_test

import (
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

// A former member reads the room's state as it was when they left, as the
// spec and Synapse give it; a user never in the room reads nothing.
func TestFormerMemberSeesStateAtLeave(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: modRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		_, a := s.Register(t, "fma", "pw")
		_, b := s.Register(t, "fmb", "pw")
		_, c := s.Register(t, "fmc", "pw")
		room := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "topic": "before"}, a).Expect(t, 200, "").Str("room_id")
		s.Do(t, "POST", "/_matrix/client/v3/rooms/"+room+"/join", map[string]any{}, b).Expect(t, 200, "")
		s.Do(t, "POST", "/_matrix/client/v3/rooms/"+room+"/leave", map[string]any{}, b).Expect(t, 200, "")
		s.Do(t, "PUT", "/_matrix/client/v3/rooms/"+room+"/state/m.room.topic/", map[string]any{"topic": "after"}, a).Expect(t, 200, "")
		s.Do(t, "POST", "/_matrix/client/v3/rooms/"+room+"/join", map[string]any{}, c).Expect(t, 200, "")

		if got := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/state/m.room.topic/", nil, b).Expect(t, 200, "").Str("topic"); got != "before" {
			t.Errorf("former member sees topic %q, want the one when they left", got)
		}
		if got := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/state/m.room.topic/", nil, a).Expect(t, 200, "").Str("topic"); got != "after" {
			t.Errorf("member sees topic %q", got)
		}
		members := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/members", nil, b).Expect(t, 200, "").Body["chunk"].([]any)
		if len(members) != 2 { // a (join) and b (leave); c joined later
			t.Errorf("former member sees %d members, want 2", len(members))
		}
		state := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/state", nil, b)
		if state.Status != 200 {
			t.Fatalf("GET /state for a former member: %d %s", state.Status, state.Raw)
		}
		s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/joined_members", nil, b).Expect(t, 403, "M_FORBIDDEN")
		_, d := s.Register(t, "fmd", "pw")
		s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/state/m.room.topic/", nil, d).Expect(t, 403, "M_FORBIDDEN")
		s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/members", nil, d).Expect(t, 403, "M_FORBIDDEN")
	})
}
