// Package id parses and checks Matrix identifiers, as the spec's appendix
// "Identifier Grammar" defines them: server names, user IDs, room IDs,
// event IDs and room aliases.
//
// Each type holds the identifier's string and can only be made by parsing
// it, so a value is always valid; the zero value is the empty, invalid
// identifier (IsZero). Values compare with ==, which is the spec's
// comparison: identifiers, server names included, are case-sensitive.
//
// Parsing accepts what the spec says servers must accept from others,
// which for user IDs is the historical grammar (any code point but ':' and
// NUL in the localpart, even none). Identifiers this server creates must
// follow the stricter current grammar: see NewUserID, ParseUserIDStrict
// and UserID.IsStrict.
package id

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLength is the longest a user ID, room ID, event ID or room alias may
// be, in bytes, sigil and server name included.
const MaxLength = 255

// ErrTooLong is wrapped by the errors for identifiers longer than
// MaxLength. Synapse counts code points rather than bytes in rooms before
// version 11, so callers handling old events may want to tell it apart.
var ErrTooLong = errors.New("id: longer than 255 bytes")

// Error says which identifier is invalid and why.
type Error struct {
	Kind   string // "user ID", "server name", …
	Input  string
	Reason string
	Err    error // ErrTooLong, or nil
}

func (e *Error) Error() string {
	in := e.Input
	if len(in) > 80 {
		n := 80
		for n > 0 && !utf8.RuneStart(in[n]) {
			n--
		}
		in = in[:n] + "…"
	}
	return "id: invalid " + e.Kind + " " + strconv.Quote(in) + ": " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// parseSigilled splits sigil localpart ":" server_name, the common form of
// user IDs, room aliases, and room and event IDs of older versions. The
// localpart may hold any code point but NUL (and ':', since the first ':'
// ends it); the server name must be valid.
func parseSigilled(kind string, sigil byte, s string) (local string, server ServerName, e *Error) {
	fail := func(reason string) (string, ServerName, *Error) {
		return "", ServerName{}, &Error{Kind: kind, Input: s, Reason: reason}
	}
	if e := checkCommon(kind, sigil, s); e != nil {
		return "", ServerName{}, e
	}
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return fail("no ':' before the server name")
	}
	local = s[1:i]
	if strings.IndexByte(local, 0) >= 0 {
		return fail("the localpart contains NUL")
	}
	server, err := ParseServerName(s[i+1:])
	if err != nil {
		return fail("server name: " + err.(*Error).Reason)
	}
	return local, server, nil
}

// checkCommon checks what all sigilled identifiers share: not empty, the
// sigil, the length, valid UTF-8 (which also rules out surrogates).
func checkCommon(kind string, sigil byte, s string) *Error {
	switch {
	case s == "":
		return &Error{Kind: kind, Input: s, Reason: "empty"}
	case s[0] != sigil:
		return &Error{Kind: kind, Input: s, Reason: "must start with '" + string(sigil) + "'"}
	case len(s) > MaxLength:
		return &Error{Kind: kind, Input: s, Reason: strconv.Itoa(len(s)) + " bytes, more than 255", Err: ErrTooLong}
	case !utf8.ValidString(s):
		return &Error{Kind: kind, Input: s, Reason: "not valid UTF-8"}
	}
	return nil
}

func unmarshalText[T any](dst *T, text []byte, parse func(string) (T, error)) error {
	v, err := parse(string(text))
	if err != nil {
		return err
	}
	*dst = v
	return nil
}
