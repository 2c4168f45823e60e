package config_test

import (
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/config"
)

func TestDirectoryConfig(t *testing.T) {
	c, err := config.Parse([]byte("server_name: a.b\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	// Synapse's defaults.
	if c.AllowPublicRoomsWithoutAuth || !*c.RequireMembershipForAliases || !*c.EnableRoomListSearch {
		t.Errorf("defaults: %v %v %v", c.AllowPublicRoomsWithoutAuth, *c.RequireMembershipForAliases, *c.EnableRoomListSearch)
	}
	if !config.DirectoryAllowed(c.AliasCreationRules, "@u:a.b", "!r:a.b", []string{"#x:a.b"}) {
		t.Error("default alias_creation_rules refuse")
	}
	if config.DirectoryAllowed(c.RoomListPublicationRules, "@u:a.b", "!r:a.b", nil) {
		t.Error("default room_list_publication_rules allow (Synapse refuses since 1.126)")
	}

	c, err = config.Parse([]byte(`server_name: a.b
room_list_publication_rules:
  - {user_id: "@admin?:a.b", action: allow}
  - {alias: "#Pub-*", room_id: "!*:a.b", action: allow}
  - {action: deny}
  - {action: allow}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		user, room string
		aliases    []string
		want       bool
	}{
		{"@admin1:a.b", "!r:x.y", nil, true},
		{"@admin12:a.b", "!r:x.y", nil, false}, // ? is one character
		{"@u:a.b", "!r:a.b", []string{"#other:a.b", "#pub-x:a.b"}, true},
		{"@u:a.b", "!r:a.b", []string{"#PUB-x:a.b"}, true}, // case-insensitive
		{"@u:a.b", "!r:x.y", []string{"#pub-x:a.b"}, false},
		{"@u:a.b", "!r:a.b", nil, false}, // no alias: only "*" matches
		{"@u:a.b", "!r:a.b", []string{"#pub.x:a.b"}, false},
	} {
		if got := config.DirectoryAllowed(c.RoomListPublicationRules, tt.user, tt.room, tt.aliases); got != tt.want {
			t.Errorf("%s %s %v: %v, want %v", tt.user, tt.room, tt.aliases, got, tt.want)
		}
	}

	_, err = config.Parse([]byte("server_name: a.b\nalias_creation_rules:\n  - {action: maybe}\n"), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), "x.yaml:3: alias_creation_rules[0].action") {
		t.Errorf("bad action: %v", err)
	}
	_, err = config.Parse([]byte("server_name: a.b\nalias_creation_rules:\n  - {action: allow, colour: red}\n"), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown key: %v", err)
	}
}
