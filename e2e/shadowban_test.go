package e2e_test

import (
	"testing"
	"time"
)

// TestShadowBan: a user that check_registration_for_spam shadow-banned
// gets Synapse's fake success: after a delay, a fake event ID, and nothing
// reaches the room.
func TestShadowBan(t *testing.T) {
	t.Parallel()
	s := modServer(t, modEntry(modID(t, 0), "", map[string]string{"check_registration_for_spam": "shadow_ban"}))
	sb := modRegister(t, s, "shady").Expect(t, 200, "").Str("access_token")
	room := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}, sb).Expect(t, 200, "").Str("room_id")

	start := time.Now()
	r := s.Do(t, "PUT", "/_matrix/client/v3/rooms/"+room+"/send/m.room.message/t1", map[string]any{"msgtype": "m.text", "body": "hi"}, sb).Expect(t, 200, "")
	if d := time.Since(start); d < time.Second {
		t.Errorf("fake success came after %v, want the 1-10 s delay", d)
	}
	fake := r.Str("event_id")
	if len(fake) != 44 || fake[0] != '$' {
		t.Errorf("fake event ID %q does not look real", fake)
	}
	s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/event/"+fake, nil, sb).Expect(t, 404, "M_NOT_FOUND")

	// An invite seems to work and is dropped (its target need not exist:
	// nothing is checked or sent).
	s.Do(t, "POST", "/_matrix/client/v3/rooms/"+room+"/invite", map[string]any{"user_id": "@honest:test.local"}, sb).Expect(t, 200, "")
	members := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/members", nil, sb).Expect(t, 200, "")
	if n := len(members.Body["chunk"].([]any)); n != 1 {
		t.Errorf("%d members after a shadow-banned invite, want 1", n)
	}
}
