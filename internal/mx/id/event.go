package id

import "strings"

// EventIDFormat is one of the forms event IDs have had.
type EventIDFormat uint8

const (
	// EventIDV1 is "$opaque_id:server_name", room versions 1 and 2.
	EventIDV1 EventIDFormat = iota + 1
	// EventIDV3 is '$' and the reference hash in 43 characters of unpadded
	// standard base64 (A-Z a-z 0-9 + /), room version 3.
	EventIDV3
	// EventIDV4 is '$' and the reference hash in 43 characters of unpadded
	// URL-safe base64 (A-Z a-z 0-9 - _), room versions 4 on.
	EventIDV4
)

func (f EventIDFormat) String() string {
	switch f {
	case EventIDV1:
		return "v1 ($opaque_id:server_name)"
	case EventIDV3:
		return "v3 ($ and unpadded base64)"
	case EventIDV4:
		return "v4 ($ and URL-safe unpadded base64)"
	}
	return "unknown event ID format"
}

// EventID is an event's ID, in any of the formats of EventIDFormat.
type EventID struct{ s string }

// ParseEventID parses an event ID of any format. To require the format of
// a room version, use ParseEventIDFormat.
func ParseEventID(s string) (EventID, error) {
	if strings.IndexByte(s, ':') >= 0 {
		if _, _, e := parseSigilled("event ID", '$', s); e != nil {
			return EventID{}, e
		}
		return EventID{s}, nil
	}
	if e := checkCommon("event ID", '$', s); e != nil {
		return EventID{}, e
	}
	if len(s) != 1+hashLen || !isHash(s[1:], standard) && !isHash(s[1:], urlSafe) {
		return EventID{}, &Error{Kind: "event ID", Input: s, Reason: "neither ':server_name' (room versions 1 and 2) nor 43 characters of base64 (version 3 on)"}
	}
	return EventID{s}, nil
}

// ParseEventIDFormat parses an event ID that must have format f.
func ParseEventIDFormat(s string, f EventIDFormat) (EventID, error) {
	e, err := ParseEventID(s)
	if err != nil {
		return EventID{}, err
	}
	if !e.Fits(f) {
		return EventID{}, &Error{Kind: "event ID", Input: s, Reason: "not of format " + f.String()}
	}
	return e, nil
}

func (e EventID) String() string { return e.s }

// IsZero reports whether e is the zero EventID, which no parse returns.
func (e EventID) IsZero() bool { return e.s == "" }

// Localpart is the opaque part: between '$' and ':' for EventIDV1, else
// the base64 hash.
func (e EventID) Localpart() string { l, _ := split(e.s); return l }

// Server is the server name of an EventIDV1 ID, else the zero ServerName.
func (e EventID) Server() ServerName { _, s := split(e.s); return ServerName{s} }

// Format is the format of e. A hash whose characters are common to both
// alphabets (no + / - _, about a quarter of them) fits both EventIDV3 and
// EventIDV4, and is reported as EventIDV4; use Fits to ask about one.
func (e EventID) Format() EventIDFormat {
	switch {
	case e.IsZero():
		return 0
	case strings.IndexByte(e.s, ':') >= 0:
		return EventIDV1
	case isHash(e.s[1:], urlSafe):
		return EventIDV4
	}
	return EventIDV3
}

// Fits reports whether e is valid in format f.
func (e EventID) Fits(f EventIDFormat) bool {
	switch f {
	case EventIDV1:
		return e.Format() == EventIDV1
	case EventIDV3:
		return e.Format() != EventIDV1 && !e.IsZero() && isHash(e.s[1:], standard)
	case EventIDV4:
		return e.Format() == EventIDV4
	}
	return false
}

func (e EventID) MarshalText() ([]byte, error) { return []byte(e.s), nil }

func (e *EventID) UnmarshalText(text []byte) error { return unmarshalText(e, text, ParseEventID) }

// hashLen is the length of a SHA-256 hash in unpadded base64.
const hashLen = 43

const (
	standard = 1 << iota // + and /
	urlSafe              // - and _
)

// isHash reports whether s is made of the characters of a base64
// alphabet, standard or urlSafe. Like Synapse, it does not check that the last character's
// unused bits are zero.
func isHash(s string, alphabet int) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '+' || c == '/':
			if alphabet&standard == 0 {
				return false
			}
		case c == '-' || c == '_':
			if alphabet&urlSafe == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}
