package id

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// name returns a server name of n bytes made of valid DNS labels.
func name(n int) string {
	s := strings.Repeat("abcdefghi.", n/10+1)[:n]
	if strings.HasSuffix(s, ".") {
		s = s[:n-1] + "x"
	}
	return s
}

func TestServerName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int // -1: none
		ip   string
	}{
		// The spec's examples.
		{"matrix.org", "matrix.org", -1, ""},
		{"matrix.org:8888", "matrix.org", 8888, ""},
		{"1.2.3.4", "1.2.3.4", -1, "1.2.3.4"},
		{"1.2.3.4:1234", "1.2.3.4", 1234, "1.2.3.4"},
		{"[1234:5678::abcd]", "[1234:5678::abcd]", -1, "1234:5678::abcd"},
		{"[1234:5678::abcd]:5678", "[1234:5678::abcd]", 5678, "1234:5678::abcd"},
		// More.
		{"localhost", "localhost", -1, ""},
		{"a", "a", -1, ""},
		{"MATRIX.ORG", "MATRIX.ORG", -1, ""}, // upper case is only discouraged
		{"xn--bcher-kva.example", "xn--bcher-kva.example", -1, ""},
		{"-a-.b", "-a-.b", -1, ""}, // the grammar and Synapse allow edge hyphens
		{"1.2.3", "1.2.3", -1, ""}, // a dns-name by the grammar, not an address
		{"1.2.3.4.5", "1.2.3.4.5", -1, ""},
		{"123", "123", -1, ""},
		{"0.0.0.0", "0.0.0.0", -1, "0.0.0.0"},
		{"010.001.0.00", "010.001.0.00", -1, "10.1.0.0"}, // 1*3DIGIT: decimal, zeros allowed
		{"255.255.255.255:65535", "255.255.255.255", 65535, "255.255.255.255"},
		{"[::1]", "[::1]", -1, "::1"},
		{"[::1]:8448", "[::1]", 8448, "::1"},
		{"[2001:DB8::1]", "[2001:DB8::1]", -1, "2001:db8::1"},
		{"[::ffff:1.2.3.4]:80", "[::ffff:1.2.3.4]", 80, "::ffff:1.2.3.4"},
		{"[1:2:3:4:5:6:7:8]", "[1:2:3:4:5:6:7:8]", -1, "1:2:3:4:5:6:7:8"},
		{"example.org:0", "example.org", 0, ""},
		{"example.org:00080", "example.org", 80, ""},
		{"example.org:99999", "example.org", 99999, ""}, // five digits, as the grammar says
		{name(255), name(255), -1, ""},
		{name(255) + ":8448", name(255), 8448, ""},
	} {
		n, err := ParseServerName(tc.in)
		if err != nil {
			t.Errorf("ParseServerName(%q): %v", tc.in, err)
			continue
		}
		port, hasPort := n.Port()
		if n.String() != tc.in || n.Host() != tc.host || hasPort != (tc.port >= 0) || hasPort && port != tc.port {
			t.Errorf("%q: String %q Host %q Port %d %v", tc.in, n, n.Host(), port, hasPort)
		}
		ip, isIP := n.IP()
		if isIP != (tc.ip != "") || isIP && ip != netip.MustParseAddr(tc.ip) {
			t.Errorf("%q: IP %v %v, want %q", tc.in, ip, isIP, tc.ip)
		}
	}
}

func TestServerNameInvalid(t *testing.T) {
	for _, tc := range []struct{ in, reason string }{
		{"", "empty"},
		{":8448", "no host"},
		{"example.org:", "port"},
		{"example.org:123456", "port"},
		{"example.org:80a", "port"},
		{"example.org:-1", "port"},
		{"example.org:+80", "port"},
		{"example.org: 80", "port"},
		{"example.org:80:80", "brackets"},
		{"::1", "brackets"},
		{"1234:5678::abcd", "brackets"},
		{"[::1", "without ']'"},
		{"[::1]x", "only a port"},
		{"[::1]:", "port"},
		{"[::1]:x", "port"},
		{"[]", "2 to 45"},
		{"[:]", "2 to 45"},
		{"[12]", "not an IPv6"},
		{"[" + strings.Repeat("0", 46) + "]", "2 to 45"},
		{"[1.2.3.4]", "not an IPv6"},
		{"[::1%eth0]", "'%'"},
		{"[fe80::1%25en0]", "'%'"},
		{"[gggg::1]", "'g'"},
		{"[:::]", "not an IPv6"},
		{"[1:2:3:4:5:6:7:8:9]", "not an IPv6"},
		{"[[::1]]", "'['"},
		{"256.1.1.1", "above 255"},
		{"1.2.3.999", "above 255"},
		{"1.2.3.4:", "port"},
		{"exa_mple.org", "'_'"},
		{"example.org.", "empty label"},
		{".example.org", "empty label"},
		{"exa..mple", "empty label"},
		{".", "empty label"},
		{"ex ample", "' '"},
		{"bücher.example", "non-ASCII"},
		{"example.org/path", "'/'"},
		{"@example.org", "'@'"},
		{"example.org\n", `'\n'`},
		{name(256), "255"},
	} {
		_, err := ParseServerName(tc.in)
		var e *Error
		if !errors.As(err, &e) || e.Kind != "server name" || !strings.Contains(e.Reason, tc.reason) {
			t.Errorf("ParseServerName(%q): %v; want a reason with %q", tc.in, err, tc.reason)
		}
	}
}

// userID makes "@" + localpart + ":" + server padded with localpart bytes
// to n bytes.
func userID(n int, server string) string {
	return "@" + strings.Repeat("a", n-2-len(server)) + ":" + server
}

func TestUserID(t *testing.T) {
	for _, tc := range []struct {
		in        string
		local     string
		server    string
		strict    bool
		compliant bool
	}{
		{"@alice:example.org", "alice", "example.org", true, true},
		{"@a/b=c+d_e.f-g0:example.org", "a/b=c+d_e.f-g0", "example.org", true, true},
		{"@alice:example.org:8448", "alice", "example.org:8448", true, true},
		{"@alice:[::1]:8448", "alice", "[::1]:8448", true, true},
		{"@alice:1.2.3.4", "alice", "1.2.3.4", true, true},
		// Historical: valid, but not for new users.
		{"@Alice:example.org", "Alice", "example.org", false, true},
		{"@alice!#$%&'*~:example.org", "alice!#$%&'*~", "example.org", false, true},
		{"@:example.org", "", "example.org", false, false},
		{"@ali ce:example.org", "ali ce", "example.org", false, false},
		{"@日本:example.org", "日本", "example.org", false, false},
		{"@a\x01\x7fb:example.org", "a\x01\x7fb", "example.org", false, false},
		{"@\U0010FFFF\uFFFE:example.org", "\U0010FFFF\uFFFE", "example.org", false, false},
		// Lengths: the whole ID counts.
		{userID(255, "example.org"), userID(255, "example.org")[1 : 255-12], "example.org", true, true},
	} {
		u, err := ParseUserID(tc.in)
		if err != nil {
			t.Errorf("ParseUserID(%q): %v", tc.in, err)
			continue
		}
		if u.String() != tc.in || u.Localpart() != tc.local || u.Server().String() != tc.server ||
			u.IsStrict() != tc.strict || u.IsCompliant() != tc.compliant || u.IsZero() {
			t.Errorf("%q: local %q server %q strict %v compliant %v", tc.in, u.Localpart(), u.Server(), u.IsStrict(), u.IsCompliant())
		}
		_, err = ParseUserIDStrict(tc.in)
		if (err == nil) != tc.strict {
			t.Errorf("ParseUserIDStrict(%q): %v; want ok=%v", tc.in, err, tc.strict)
		}
		if u.Server() != mustServer(t, tc.server) {
			t.Errorf("%q: Server() does not compare equal to the parsed server name", tc.in)
		}
	}
}

func mustServer(t *testing.T, s string) ServerName {
	t.Helper()
	n, err := ParseServerName(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUserIDInvalid(t *testing.T) {
	for _, tc := range []struct {
		in, reason string
		strict     bool // refused only by ParseUserIDStrict
	}{
		{"", "empty", false},
		{"alice:example.org", "must start with '@'", false},
		{"#alice:example.org", "must start with '@'", false},
		{"@alice", "no ':'", false},
		{"@alice:", "empty", false},
		{"@:", "empty", false},
		{"@alice:exa_mple.org", "'_'", false},
		{"@alice:example.org:", "port", false},
		{"@alice:example.org:80:80", "brackets", false},
		{"@alice:::1", "brackets", false},
		{"@a\x00b:example.org", "NUL", false},
		{"@\xff:example.org", "UTF-8", false},
		{"@\xed\xa0\x80:example.org", "UTF-8", false}, // a surrogate
		{userID(256, "example.org"), "256 bytes", false},
		{"@" + strings.Repeat("é", 125) + ":example.org", "263 bytes", false}, // bytes, not characters
		{"@Alice:example.org", "lower case", true},
		{"@:example.org", "empty localpart", true},
		{"@alice!:example.org", "'!'", true},
		{"@alice:bob:example.org", "port", false},
		{"@日本:example.org", "non-ASCII", true},
		{"@ali ce:example.org", "' '", true},
	} {
		_, err := ParseUserIDStrict(tc.in)
		var e *Error
		if !errors.As(err, &e) || e.Kind != "user ID" || !strings.Contains(e.Reason, tc.reason) {
			t.Errorf("ParseUserIDStrict(%q): %v; want a reason with %q", tc.in, err, tc.reason)
		}
		_, err = ParseUserID(tc.in)
		if (err == nil) != tc.strict {
			t.Errorf("ParseUserID(%q): %v", tc.in, err)
		}
	}
	if _, err := ParseUserID(userID(256, "example.org")); !errors.Is(err, ErrTooLong) {
		t.Errorf("too long: %v, want ErrTooLong", err)
	}
}

func TestNewUserID(t *testing.T) {
	srv := mustServer(t, "example.org")
	if u, err := NewUserID("alice", srv); err != nil || u.String() != "@alice:example.org" {
		t.Errorf("NewUserID = %v, %v", u, err)
	}
	for _, lp := range []string{"", "Alice", "al:ice", "al ice", "日本", strings.Repeat("a", 243)} {
		if u, err := NewUserID(lp, srv); err == nil {
			t.Errorf("NewUserID(%q) = %v", lp, u)
		}
	}
	if _, err := NewUserID("alice", ServerName{}); err == nil {
		t.Error("NewUserID with no server name")
	}
	if err := ValidateLocalpart("a.b_c=d-e/f+g"); err != nil {
		t.Error(err)
	}
	err := ValidateLocalpart("Bob")
	if err == nil || err.Error() != `id: invalid user ID localpart "Bob": the localpart may only hold a-z 0-9 . _ = - / +, not 'B' (user IDs are lower case)` {
		t.Errorf("ValidateLocalpart(Bob): %v", err)
	}
}

const (
	hashV4     = "Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg" // the spec's room version 4 example
	hashV3     = "acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk" // version 3's, with a '/'
	hashEither = "CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o" // version 3's, in both alphabets
)

func TestRoomID(t *testing.T) {
	for _, tc := range []struct{ in, local, server string }{
		{"!jEsUZKDJdhlrceRyVU:example.org", "jEsUZKDJdhlrceRyVU", "example.org"},
		{"!abc:example.org:8448", "abc", "example.org:8448"},
		{"!abc:[::1]", "abc", "[::1]"},
		{"!ab c\x01日:example.org", "ab c\x01日", "example.org"},
		{"!:example.org", "", "example.org"},
		{"!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ", "Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ", ""}, // room version 12
		{"!" + hashV4, hashV4, ""},
		{"!" + hashEither, hashEither, ""},
	} {
		r, err := ParseRoomID(tc.in)
		if err != nil {
			t.Errorf("ParseRoomID(%q): %v", tc.in, err)
			continue
		}
		if r.String() != tc.in || r.Localpart() != tc.local || r.Server().String() != tc.server || r.Server().IsZero() != (tc.server == "") {
			t.Errorf("%q: local %q server %q", tc.in, r.Localpart(), r.Server())
		}
	}
	for _, tc := range []struct{ in, reason string }{
		{"", "empty"},
		{"abc:example.org", "'!'"},
		{"$abc:example.org", "'!'"},
		{"!abc", "neither"},
		{"!", "neither"},
		{"!" + hashV3, "neither"}, // the standard alphabet is not a room ID's
		{"!" + hashV4[1:], "neither"},
		{"!" + hashV4 + "A", "neither"},
		{"!" + hashV4[:42] + "=", "neither"},
		{"!abc:", "empty"},
		{"!a\x00:example.org", "NUL"},
		{"!abc:exa mple.org", "' '"},
		{"!" + strings.Repeat("a", 243) + ":example.org", "256 bytes"},
	} {
		_, err := ParseRoomID(tc.in)
		var e *Error
		if !errors.As(err, &e) || e.Kind != "room ID" || !strings.Contains(e.Reason, tc.reason) {
			t.Errorf("ParseRoomID(%q): %v; want a reason with %q", tc.in, err, tc.reason)
		}
	}
}

func TestEventID(t *testing.T) {
	for _, tc := range []struct {
		in            string
		format        EventIDFormat
		v1, v3, v4    bool
		local, server string
	}{
		{"$143273582443PhrSn:example.org", EventIDV1, true, false, false, "143273582443PhrSn", "example.org"},
		{"$a b:example.org:8448", EventIDV1, true, false, false, "a b", "example.org:8448"},
		{"$" + hashV3, EventIDV3, false, true, false, hashV3, ""},
		{"$" + hashV4, EventIDV4, false, false, true, hashV4, ""},
		{"$" + hashEither, EventIDV4, false, true, true, hashEither, ""},
		{"$" + strings.Repeat("+", 43), EventIDV3, false, true, false, strings.Repeat("+", 43), ""},
		{"$" + strings.Repeat("_", 43), EventIDV4, false, false, true, strings.Repeat("_", 43), ""},
	} {
		e, err := ParseEventID(tc.in)
		if err != nil {
			t.Errorf("ParseEventID(%q): %v", tc.in, err)
			continue
		}
		if e.String() != tc.in || e.Format() != tc.format || e.Localpart() != tc.local || e.Server().String() != tc.server ||
			e.Fits(EventIDV1) != tc.v1 || e.Fits(EventIDV3) != tc.v3 || e.Fits(EventIDV4) != tc.v4 {
			t.Errorf("%q: format %v fits %v %v %v local %q server %q", tc.in, e.Format(),
				e.Fits(EventIDV1), e.Fits(EventIDV3), e.Fits(EventIDV4), e.Localpart(), e.Server())
		}
		for f, ok := range map[EventIDFormat]bool{EventIDV1: tc.v1, EventIDV3: tc.v3, EventIDV4: tc.v4} {
			if _, err := ParseEventIDFormat(tc.in, f); (err == nil) != ok {
				t.Errorf("ParseEventIDFormat(%q, %v): %v", tc.in, f, err)
			}
		}
	}
	for _, tc := range []struct{ in, reason string }{
		{"", "empty"},
		{"143273582443PhrSn:example.org", "'$'"},
		{"$abc", "neither"},
		{"$" + hashV4[1:], "neither"},
		{"$" + hashV4 + "=", "neither"},                    // padded
		{"$" + hashV3[:10] + "-" + hashV3[11:], "neither"}, // '/' and '-': two alphabets
		{"$" + hashV4[:42] + ".", "neither"},
		{"$abc:", "empty"},
		{"$abc:exa_mple.org", "'_'"},
		{"$a\x00:example.org", "NUL"},
		{"$" + strings.Repeat("a", 243) + ":example.org", "256 bytes"},
	} {
		_, err := ParseEventID(tc.in)
		var e *Error
		if !errors.As(err, &e) || e.Kind != "event ID" || !strings.Contains(e.Reason, tc.reason) {
			t.Errorf("ParseEventID(%q): %v; want a reason with %q", tc.in, err, tc.reason)
		}
	}
	if _, err := ParseEventIDFormat("$"+hashV3, EventIDV4); err == nil || !strings.Contains(err.Error(), "not of format v4") {
		t.Errorf("ParseEventIDFormat(v3 hash, v4): %v", err)
	}
	var zero EventID
	if zero.Format() != 0 || zero.Fits(EventIDV3) || zero.Fits(EventIDV4) || zero.Fits(EventIDV1) {
		t.Error("the zero EventID fits a format")
	}
}

func TestRoomAlias(t *testing.T) {
	for _, tc := range []struct{ in, local, server string }{
		{"#room:example.org", "room", "example.org"},
		{"#Room With Spaces 日本:example.org:8448", "Room With Spaces 日本", "example.org:8448"},
		{"#:example.org", "", "example.org"},
		{"#a#b!c@d$e:[::1]", "a#b!c@d$e", "[::1]"},
	} {
		a, err := ParseRoomAlias(tc.in)
		if err != nil {
			t.Errorf("ParseRoomAlias(%q): %v", tc.in, err)
			continue
		}
		if a.String() != tc.in || a.Localpart() != tc.local || a.Server().String() != tc.server {
			t.Errorf("%q: local %q server %q", tc.in, a.Localpart(), a.Server())
		}
	}
	for _, tc := range []struct{ in, reason string }{
		{"", "empty"},
		{"room:example.org", "'#'"},
		{"#room", "no ':'"},
		{"#room:", "empty"},
		{"#ro\x00om:example.org", "NUL"},
		{"#room:example..org", "empty label"},
		{"#\xc3:example.org", "UTF-8"},
		{"#" + strings.Repeat("a", 243) + ":example.org", "256 bytes"},
	} {
		_, err := ParseRoomAlias(tc.in)
		var e *Error
		if !errors.As(err, &e) || e.Kind != "room alias" || !strings.Contains(e.Reason, tc.reason) {
			t.Errorf("ParseRoomAlias(%q): %v; want a reason with %q", tc.in, err, tc.reason)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := ParseUserID("@alice:exa_mple.org")
	if want := `id: invalid user ID "@alice:exa_mple.org": server name: '_' is not allowed in a DNS name`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, err = ParseRoomAlias("#" + strings.Repeat("日", 100) + ":x")
	if err == nil || !strings.Contains(err.Error(), "…") || len(err.Error()) > 200 {
		t.Errorf("long input not shortened: %v", err)
	}
}

func TestZero(t *testing.T) {
	var u UserID
	var r RoomID
	var e EventID
	var a RoomAlias
	var n ServerName
	if !u.IsZero() || !r.IsZero() || !e.IsZero() || !a.IsZero() || !n.IsZero() {
		t.Fatal("zero values are not IsZero")
	}
	if u.Localpart() != "" || !u.Server().IsZero() || u.IsStrict() || u.IsCompliant() || n.Host() != "" {
		t.Fatal("zero values have parts")
	}
	if _, ok := n.Port(); ok {
		t.Fatal("zero ServerName has a port")
	}
	if _, ok := n.IP(); ok {
		t.Fatal("zero ServerName has an IP")
	}
}

func TestText(t *testing.T) {
	type ids struct {
		User   UserID     `json:"user"`
		Room   RoomID     `json:"room"`
		Event  EventID    `json:"event"`
		Alias  RoomAlias  `json:"alias"`
		Server ServerName `json:"server"`
	}
	in := `{"user":"@Alice:example.org","room":"!` + hashV4 + `","event":"$` + hashV3 + `","alias":"#a:b","server":"[::1]:80"}`
	var v ids
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil || string(out) != in {
		t.Fatalf("round trip: %s, %v", out, err)
	}
	for _, bad := range []string{`{"user":"alice"}`, `{"room":"!x"}`, `{"event":"$x"}`, `{"alias":"#x"}`, `{"server":"a_b"}`, `{"user":""}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}
