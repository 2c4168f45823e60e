package id

import "strings"

// RoomID is "!opaque_id:server_name" in room versions 1 to 11, and
// "!opaque_id" in version 12 on, where opaque_id is the room's create
// event ID without its '$': 43 characters of URL-safe unpadded base64.
type RoomID struct{ s string }

// ParseRoomID parses a room ID of either form.
func ParseRoomID(s string) (RoomID, error) {
	if strings.IndexByte(s, ':') >= 0 {
		if _, _, e := parseSigilled("room ID", '!', s); e != nil {
			return RoomID{}, e
		}
		return RoomID{s}, nil
	}
	if e := checkCommon("room ID", '!', s); e != nil {
		return RoomID{}, e
	}
	if len(s) != 1+hashLen || !isHash(s[1:], urlSafe) {
		return RoomID{}, &Error{Kind: "room ID", Input: s, Reason: "neither ':server_name' (room versions 1 to 11) nor 43 characters of URL-safe base64 (version 12 on)"}
	}
	return RoomID{s}, nil
}

func (r RoomID) String() string { return r.s }

// IsZero reports whether r is the zero RoomID, which no parse returns.
func (r RoomID) IsZero() bool { return r.s == "" }

// Localpart is the opaque part: between '!' and ':', or all after '!'.
func (r RoomID) Localpart() string { l, _ := split(r.s); return l }

// Server is the server name part, or the zero ServerName for the room IDs
// of version 12 on, which have none.
func (r RoomID) Server() ServerName { _, s := split(r.s); return ServerName{s} }

func (r RoomID) MarshalText() ([]byte, error) { return []byte(r.s), nil }

func (r *RoomID) UnmarshalText(text []byte) error { return unmarshalText(r, text, ParseRoomID) }

// RoomAlias is "#room_alias:server_name"; the alias may hold any code
// point but ':' and NUL.
type RoomAlias struct{ s string }

// ParseRoomAlias parses a room alias.
func ParseRoomAlias(s string) (RoomAlias, error) {
	if _, _, e := parseSigilled("room alias", '#', s); e != nil {
		return RoomAlias{}, e
	}
	return RoomAlias{s}, nil
}

func (a RoomAlias) String() string { return a.s }

// IsZero reports whether a is the zero RoomAlias, which no parse returns.
func (a RoomAlias) IsZero() bool { return a.s == "" }

// Localpart is the alias between '#' and the first ':'.
func (a RoomAlias) Localpart() string { l, _ := split(a.s); return l }

// Server is the name of the server the alias belongs to.
func (a RoomAlias) Server() ServerName { _, s := split(a.s); return ServerName{s} }

func (a RoomAlias) MarshalText() ([]byte, error) { return []byte(a.s), nil }

func (a *RoomAlias) UnmarshalText(text []byte) error {
	return unmarshalText(a, text, ParseRoomAlias)
}
