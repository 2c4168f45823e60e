package e2e_test

import (
	"context"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

func TestCreateRoomAliasAndVisibility(t *testing.T) {
	// publishAll: Synapse's room_list_publication_rules refuse by default.
	testserver.ForEachDB(t, testserver.Options{YAML: modRegistrationOn + publishAll}, func(t *testing.T, s *testserver.Server) {
		_, tok := s.Register(t, "ally", "pw")
		_, tokB := s.Register(t, "bert", "pw")
		r := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_alias_name": "lounge", "visibility": "public"}, tok).Expect(t, 200, "")
		room := r.Str("room_id")
		ca := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/state/m.room.canonical_alias/", nil, tok).Expect(t, 200, "")
		if ca.Str("alias") != "#lounge:test.local" {
			t.Errorf("canonical alias %s", ca.Raw)
		}
		// visibility public picks the public_chat preset and publishes the room.
		jr := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/state/m.room.join_rules/", nil, tok).Expect(t, 200, "")
		if jr.Str("join_rule") != "public" {
			t.Errorf("join rule %s", jr.Raw)
		}
		if pub, err := s.Srv.Store().IsRoomPublished(context.Background(), room); err != nil || !pub {
			t.Errorf("published = %v, %v", pub, err)
		}
		// Another user joins by the alias.
		j := s.Do(t, "POST", "/_matrix/client/v3/join/%23lounge:test.local", map[string]any{}, tokB).Expect(t, 200, "")
		if j.Str("room_id") != room {
			t.Errorf("joined %s, want %s", j.Str("room_id"), room)
		}
		s.Do(t, "POST", "/_matrix/client/v3/join/%23nowhere:test.local", map[string]any{}, tokB).Expect(t, 404, "M_NOT_FOUND")
		// The alias is taken now; bad alias names are refused.
		s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_alias_name": "lounge"}, tokB).Expect(t, 400, "M_ROOM_IN_USE")
		s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_alias_name": "a:b"}, tokB).Expect(t, 400, "M_UNKNOWN")
		s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_alias_name": "a b"}, tokB).Expect(t, 400, "M_UNKNOWN")
		s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"visibility": "hidden"}, tokB).Expect(t, 400, "M_BAD_JSON")
		// A private room is not published.
		priv := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{}, tokB).Expect(t, 200, "").Str("room_id")
		if pub, _ := s.Srv.Store().IsRoomPublished(context.Background(), priv); pub {
			t.Error("a private room was published")
		}
	})
}

func TestAliasAndVisibilityCallbacks(t *testing.T) {
	t.Parallel()
	t.Run("user_may_create_room_alias", func(t *testing.T) {
		id := modID(t, 0)
		s := modServer(t, modEntry(id, "", map[string]string{"user_may_create_room_alias": "deny:M_LIMIT_EXCEEDED"}))
		tok := modRegister(t, s, "cora").Expect(t, 200, "").Str("access_token")
		r := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_alias_name": "den"}, tok).Expect(t, 403, "M_LIMIT_EXCEEDED")
		if r.Str("error") != "This user is not permitted to create this alias" {
			t.Errorf("error %q", r.Str("error"))
		}
		calls := modCallsOf(id)
		if len(calls) != 1 || calls[0].Args[0] != "@cora:test.local" || calls[0].Args[1] != "#den:test.local" {
			t.Fatalf("calls %+v", calls)
		}
		// No alias was made.
		s.Do(t, "POST", "/_matrix/client/v3/join/%23den:test.local", map[string]any{}, tok).Expect(t, 404, "M_NOT_FOUND")
	})
	t.Run("check_visibility_can_be_modified", func(t *testing.T) {
		id := modID(t, 0)
		s := modServer(t, modEntry(id, "", map[string]string{"check_visibility_can_be_modified": "deny"}))
		tok := modRegister(t, s, "dora").Expect(t, 200, "").Str("access_token")
		r := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"visibility": "public"}, tok).Expect(t, 403, "M_UNKNOWN")
		if r.Str("error") != "Room visibility value not allowed." {
			t.Errorf("error %q", r.Str("error"))
		}
		calls := modCallsOf(id)
		if len(calls) != 1 || calls[0].Args[1] != "public" {
			t.Fatalf("calls %+v", calls)
		}
	})
	t.Run("check_visibility_can_be_modified fails open", func(t *testing.T) {
		id := modID(t, 0)
		s := modServer(t, modEntry(id, "    timeout: 100ms\n", map[string]string{"check_visibility_can_be_modified": "panic"}))
		tok := modRegister(t, s, "edna").Expect(t, 200, "").Str("access_token")
		s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{}, tok).Expect(t, 200, "")
		if calls := modCallsOf(id); len(calls) != 1 || calls[0].Args[1] != "private" {
			t.Fatalf("calls %+v (the default visibility is private)", calls)
		}
	})
}
