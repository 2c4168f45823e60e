package syncapi

import (
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
)

func TestToken(t *testing.T) {
	tok := Token{Events: 12, AccountData: 3, Receipts: 0, Typing: 7}
	if s := tok.String(); s != "s12_3_0_7" {
		t.Fatalf("String() = %q", s)
	}
	if got, err := ParseToken(tok.String()); err != nil || got != tok {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "s", "12_3_0_7", "s1_2_3", "s1_2_3_4_5", "s-1_0_0_0", "s01_0_0_0", "sx_0_0_0", "t5", "s1_2_3_ 4"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int64{"t0": 0, "t41": 41, "s9_1_1_1": 9} {
		if got, err := parseRoomPos(in); err != nil || got != want {
			t.Errorf("parseRoomPos(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"t", "t-1", "tx", "x5"} {
		if _, err := parseRoomPos(bad); err == nil {
			t.Errorf("parseRoomPos(%q) accepted", bad)
		}
	}
}

func TestMatchType(t *testing.T) {
	cases := []struct {
		pattern, typ string
		want         bool
	}{
		{"m.room.message", "m.room.message", true},
		{"m.room.message", "m.room.messages", false},
		{"m.room.*", "m.room.name", true},
		{"m.room.*", "m.roomx", false},
		{"*", "anything", true},
		{"m.*.name", "m.room.name", true},
		{"m.*.name", "m.room.topic", false},
		{"*.name", "m.room.name", true},
		{"m.room.*", "M.ROOM.NAME", false},
	}
	for _, c := range cases {
		if got := matchType(c.pattern, c.typ); got != c.want {
			t.Errorf("matchType(%q, %q) = %v", c.pattern, c.typ, got)
		}
	}
}

func TestEventFilterAllows(t *testing.T) {
	list := func(v ...string) *[]string { return &v }
	yes := true
	cases := []struct {
		name   string
		f      EventFilter
		typ    string
		sender string
		url    bool
		want   bool
	}{
		{"empty filter", EventFilter{}, "m.room.message", "@a:x", false, true},
		{"types", EventFilter{Types: list("m.room.name")}, "m.room.message", "@a:x", false, false},
		{"empty types", EventFilter{Types: list()}, "m.room.message", "@a:x", false, false},
		{"not_types wins", EventFilter{Types: list("m.*"), NotTypes: []string{"m.room.message"}}, "m.room.message", "@a:x", false, false},
		{"senders", EventFilter{Senders: list("@b:x")}, "m.room.message", "@a:x", false, false},
		{"not_senders", EventFilter{NotSenders: []string{"@a:x"}}, "m.room.message", "@a:x", false, false},
		{"contains_url", EventFilter{ContainsURL: &yes}, "m.room.message", "@a:x", false, false},
		{"contains_url met", EventFilter{ContainsURL: &yes}, "m.room.message", "@a:x", true, true},
		{"not_rooms", EventFilter{NotRooms: []string{"!r:x"}}, "m.room.message", "@a:x", false, false},
	}
	for _, c := range cases {
		if got := c.f.allows(c.typ, c.sender, "!r:x", c.url); got != c.want {
			t.Errorf("%s: allows = %v", c.name, got)
		}
	}
}

// TestAllowed walks Synapse's visibility rules: the state after the event,
// the user's own membership change judged as the more joined of old and
// new, a visibility change judged by the more open rule.
func TestAllowed(t *testing.T) {
	const me = "@me:x"
	msg := storage.StoredEvent{Type: "m.room.message", StateGroupBefore: 1, StateGroupAfter: 1}
	own := func() storage.StoredEvent {
		k := me
		return storage.StoredEvent{Type: "m.room.member", StateKey: &k, StateGroupBefore: 1, StateGroupAfter: 2}
	}
	hv := storage.StoredEvent{Type: "m.room.history_visibility", StateKey: new(string), StateGroupBefore: 1, StateGroupAfter: 2}
	vs := func(vis, m string) visState { return visState{visibility: vis, membership: m} }
	cases := []struct {
		name          string
		e             storage.StoredEvent
		after, before visState
		peeking       bool
		want          bool
	}{
		{"shared, member later", msg, vs("shared", ""), vs("shared", ""), false, true},
		{"shared, peeking", msg, vs("shared", ""), vs("shared", ""), true, false},
		{"world_readable, peeking", msg, vs("world_readable", ""), vs("world_readable", ""), true, true},
		{"joined, not joined", msg, vs("joined", "invite"), vs("joined", "invite"), false, false},
		{"joined, joined", msg, vs("joined", "join"), vs("joined", "join"), false, true},
		{"invited, invited", msg, vs("invited", "invite"), vs("invited", "invite"), false, true},
		{"invited, never", msg, vs("invited", ""), vs("invited", ""), false, false},
		{"joined, own join", own(), vs("joined", "join"), vs("joined", "invite"), false, true},
		{"joined, own invite", own(), vs("joined", "invite"), vs("joined", ""), false, false},
		{"joined, own leave after join", own(), vs("joined", "leave"), vs("joined", "join"), false, true},
		{"joined, own ban after join", own(), vs("joined", "ban"), vs("joined", "join"), false, true},
		{"joined, own leave after ban", own(), vs("joined", "leave"), vs("joined", "ban"), false, false},
		{"visibility closing is seen", hv, vs("joined", ""), vs("shared", ""), false, true},
		{"visibility opening is seen", hv, vs("world_readable", ""), vs("joined", ""), true, true},
		{"aliases never", storage.StoredEvent{Type: "m.room.aliases"}, vs("world_readable", "join"), vs("world_readable", "join"), false, false},
	}
	for _, c := range cases {
		if got := allowed(me, c.e, c.after, c.before, c.peeking); got != c.want {
			t.Errorf("%s: allowed = %v, want %v", c.name, got, c.want)
		}
	}
}
