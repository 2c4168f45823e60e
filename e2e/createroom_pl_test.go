package e2e_test

import (
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

// Power levels in initial_state are used as given; Synapse then ignores
// power_level_content_override.
func TestCreateRoomInitialPowerLevelsWinOverOverride(t *testing.T) {
	t.Parallel()
	s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn})
	uid, tok := s.Register(t, "plq", "pw")
	room := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{
		"initial_state": []any{map[string]any{"type": "m.room.power_levels", "state_key": "",
			"content": map[string]any{"users": map[string]any{uid: 100}, "state_default": 77}}},
		"power_level_content_override": map[string]any{"state_default": 10, "ban": 99},
	}, tok).Expect(t, 200, "").Str("room_id")
	pl := s.Do(t, "GET", "/_matrix/client/v3/rooms/"+room+"/state/m.room.power_levels/", nil, tok).Expect(t, 200, "")
	if pl.Body["state_default"] != float64(77) {
		t.Errorf("state_default %v, want the initial_state's 77", pl.Body["state_default"])
	}
	if _, ok := pl.Body["ban"]; ok {
		t.Errorf("the override was merged in: %s", pl.Raw)
	}
}
