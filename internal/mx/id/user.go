package id

import "strconv"

// UserID is "@localpart:server_name".
//
// The spec has three grades of localpart: strict (the current grammar,
// non-empty, a-z 0-9 . _ = - / +), which new user IDs must follow;
// compliant (non-empty, U+0021 to U+007E), which servers may forward to
// clients outside events; and historical (any code point but ':' and NUL,
// or none), which servers must still accept in events. ParseUserID
// accepts the historical grammar.
type UserID struct{ s string }

// ParseUserID parses a user ID as servers must accept it from others: the
// historical grammar.
func ParseUserID(s string) (UserID, error) {
	if _, _, e := parseSigilled("user ID", '@', s); e != nil {
		return UserID{}, e
	}
	return UserID{s}, nil
}

// ParseUserIDStrict parses a user ID that must follow the current grammar,
// as IDs this server creates must.
func ParseUserIDStrict(s string) (UserID, error) {
	local, _, e := parseSigilled("user ID", '@', s)
	if e != nil {
		return UserID{}, e
	}
	if reason := localpartProblem(local); reason != "" {
		return UserID{}, &Error{Kind: "user ID", Input: s, Reason: reason}
	}
	return UserID{s}, nil
}

// NewUserID makes a user ID for a new user: the localpart must follow the
// current grammar, and the ID must fit in 255 bytes.
func NewUserID(localpart string, server ServerName) (UserID, error) {
	if server.IsZero() {
		return UserID{}, &Error{Kind: "user ID", Input: "@" + localpart + ":", Reason: "no server name"}
	}
	return ParseUserIDStrict("@" + localpart + ":" + server.s)
}

// ValidateLocalpart checks a localpart for a new user ID against the
// current grammar: not empty, only a-z 0-9 . _ = - / +. (It does not check
// the length, which depends on the server name; NewUserID does.)
func ValidateLocalpart(localpart string) error {
	if reason := localpartProblem(localpart); reason != "" {
		return &Error{Kind: "user ID localpart", Input: localpart, Reason: reason}
	}
	return nil
}

func localpartProblem(local string) string {
	if local == "" {
		return "empty localpart"
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; !isStrictLocalpartByte(c) {
			r := strconv.QuoteRune(rune(c))
			if c >= 0x80 {
				r = "non-ASCII characters"
			} else if c >= 'A' && c <= 'Z' {
				r += " (user IDs are lower case)"
			}
			return "the localpart may only hold a-z 0-9 . _ = - / +, not " + r
		}
	}
	return ""
}

func isStrictLocalpartByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '=' || c == '-' || c == '/' || c == '+'
}

func (u UserID) String() string { return u.s }

// IsZero reports whether u is the zero UserID, which no parse returns.
func (u UserID) IsZero() bool { return u.s == "" }

// Localpart is the part between '@' and the first ':'.
func (u UserID) Localpart() string { l, _ := split(u.s); return l }

// Server is the part after the first ':'.
func (u UserID) Server() ServerName { _, s := split(u.s); return ServerName{s} }

// IsStrict reports whether the localpart follows the current grammar.
func (u UserID) IsStrict() bool { return !u.IsZero() && localpartProblem(u.Localpart()) == "" }

// IsCompliant reports whether the localpart is not empty and only holds
// U+0021 to U+007E: user IDs that are not compliant should not be sent to
// clients outside events.
func (u UserID) IsCompliant() bool {
	l := u.Localpart()
	for i := 0; i < len(l); i++ {
		if l[i] < 0x21 || l[i] > 0x7e {
			return false
		}
	}
	return l != ""
}

func (u UserID) MarshalText() ([]byte, error) { return []byte(u.s), nil }

// UnmarshalText parses with ParseUserID.
func (u *UserID) UnmarshalText(text []byte) error { return unmarshalText(u, text, ParseUserID) }

// split returns the localpart and server of a valid sigilled identifier;
// the server is "" when there is none.
func split(s string) (local, server string) {
	if s == "" {
		return "", ""
	}
	for i := 1; i < len(s); i++ {
		if s[i] == ':' {
			return s[1:i], s[i+1:]
		}
	}
	return s[1:], ""
}
