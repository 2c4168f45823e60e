package id

import "testing"

// FuzzParse: no parser panics, and what parses splits into parts that
// rebuild the input and parse again on their own.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"@alice:example.org", "@Alice:[::1]:8448", "!abc:1.2.3.4", "!" + hashV4, "$" + hashV3,
		"$abc:example.org:80", "#room:example.org", "@:x", "example.org:8448", "[::ffff:1.2.3.4]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseServerName(s); err == nil {
			port, hasPort := n.Port()
			if n.String() != s || hasPort && port < 0 || !hasPort && n.Host() != s {
				t.Fatalf("%q: host %q port %d %v", s, n.Host(), port, hasPort)
			}
		}
		type parsed interface {
			String() string
			Localpart() string
			Server() ServerName
		}
		check := func(v parsed, sigil byte) {
			local, server := v.Localpart(), v.Server()
			rebuilt := string(sigil) + local
			if !server.IsZero() {
				rebuilt += ":" + server.String()
				if _, err := ParseServerName(server.String()); err != nil {
					t.Fatalf("%q: server %q does not parse: %v", s, server, err)
				}
			}
			if v.String() != s || rebuilt != s || len(s) > MaxLength {
				t.Fatalf("%q: parts %q %q", s, local, server)
			}
		}
		if u, err := ParseUserID(s); err == nil {
			check(u, '@')
			_, errStrict := ParseUserIDStrict(s)
			if (errStrict == nil) != u.IsStrict() || u.IsStrict() && !u.IsCompliant() {
				t.Fatalf("%q: strict %v compliant %v ParseUserIDStrict %v", s, u.IsStrict(), u.IsCompliant(), errStrict)
			}
		} else if _, err := ParseUserIDStrict(s); err == nil {
			t.Fatalf("%q: strict but not valid", s)
		}
		if r, err := ParseRoomID(s); err == nil {
			check(r, '!')
		}
		if a, err := ParseRoomAlias(s); err == nil {
			check(a, '#')
		}
		if e, err := ParseEventID(s); err == nil {
			check(e, '$')
			if !e.Fits(e.Format()) {
				t.Fatalf("%q: does not fit its own format %v", s, e.Format())
			}
		}
	})
}
