// Package event is the Matrix event (PDU) of room versions 10 and 11:
// parsing and validating the federation format, building an event from a
// template, content and reference hashes, event IDs, signing and signature
// checks, the redaction algorithm of each version, and the size limits.
package event

import (
	"errors"
	"fmt"

	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
	"github.com/sluice-im/sluice/internal/mx/id"
)

// Size limits of the spec.
const (
	MaxEventSize = 65536 // bytes of the whole event in canonical JSON
	MaxFieldSize = 255   // bytes of sender, room_id, state_key, type
)

// Errors callers branch on.
var (
	ErrTooLarge = errors.New("event: larger than 65536 bytes")
	ErrFormat   = errors.New("event: malformed")
)

// Event is a parsed, immutable PDU. Do not modify what the accessors return.
type Event struct {
	version *Version
	id      string
	obj     map[string]any // the whole event, decoded (canonical JSON types)
	content map[string]any
	raw     []byte // canonical JSON of obj

	typ        string
	stateKey   *string
	sender     string
	roomID     string
	authEvents []string
	prevEvents []string
	depth      int64
	ts         int64
	redacts    string
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// Parse parses and validates an event in the federation format of room
// version v, and computes its event ID from its reference hash.
func Parse(raw []byte, v *Version) (*Event, error) {
	if len(raw) > 4*MaxEventSize {
		return nil, ErrTooLarge // not worth decoding
	}
	val, err := canonicaljson.Decode(raw)
	if err != nil {
		return nil, formatErr("%v", err)
	}
	obj, ok := val.(map[string]any)
	if !ok {
		return nil, formatErr("not a JSON object")
	}
	return fromObject(obj, v, "")
}

// fromObject validates obj (which the Event then owns) and computes the ID,
// unless the caller already knows it (Build hashed the same bytes to sign).
func fromObject(obj map[string]any, v *Version, knownID string) (*Event, error) {
	e := &Event{version: v, obj: obj}
	var err error
	str := func(key string, required bool) string {
		x, present := obj[key]
		if !present {
			if required && err == nil {
				err = formatErr("missing %q", key)
			}
			return ""
		}
		s, ok := x.(string)
		if !ok && err == nil {
			err = formatErr("%q is not a string", key)
		}
		return s
	}
	integer := func(key string) int64 {
		n, ok := obj[key].(int64)
		if !ok && err == nil {
			err = formatErr("%q is missing or not an integer", key)
		}
		return n
	}
	ids := func(key string) []string {
		a, ok := obj[key].([]any)
		if !ok {
			if err == nil {
				err = formatErr("%q is missing or not an array", key)
			}
			return nil
		}
		out := make([]string, len(a))
		for i, x := range a {
			s, ok := x.(string)
			if !ok && err == nil {
				err = formatErr("%q[%d] is not a string", key, i)
			}
			out[i] = s
		}
		return out
	}
	e.typ = str("type", true)
	e.sender = str("sender", true)
	e.roomID = str("room_id", true)
	if _, ok := obj["state_key"]; ok {
		sk := str("state_key", false)
		e.stateKey = &sk
	}
	e.depth = integer("depth")
	e.ts = integer("origin_server_ts")
	e.authEvents = ids("auth_events")
	e.prevEvents = ids("prev_events")
	content, ok := obj["content"].(map[string]any)
	if !ok && err == nil {
		err = formatErr(`"content" is missing or not an object`)
	}
	e.content = content
	if h, ok := obj["hashes"].(map[string]any); !ok || h["sha256"] == nil {
		if err == nil {
			err = formatErr(`"hashes.sha256" is missing`)
		}
	} else if _, ok := h["sha256"].(string); !ok && err == nil {
		err = formatErr(`"hashes.sha256" is not a string`)
	}
	if s, present := obj["signatures"]; present {
		if _, ok := s.(map[string]any); !ok && err == nil {
			err = formatErr(`"signatures" is not an object`)
		}
	}
	if e.typ == "m.room.redaction" {
		if v.V11Redaction {
			e.redacts, _ = content["redacts"].(string)
		} else {
			e.redacts = str("redacts", false)
		}
	}
	if err != nil {
		return nil, err
	}
	if e.depth < 0 {
		return nil, formatErr(`"depth" is negative`)
	}
	for _, f := range []struct{ name, val string }{{"type", e.typ}, {"sender", e.sender}, {"room_id", e.roomID}} {
		if len(f.val) > MaxFieldSize {
			return nil, formatErr("%q is longer than %d bytes", f.name, MaxFieldSize)
		}
	}
	// The grammar of the IDs (historical user IDs are allowed: other servers
	// may still have them).
	if _, err := id.ParseUserID(e.sender); err != nil {
		return nil, formatErr(`"sender": %v`, err)
	}
	if _, err := id.ParseRoomID(e.roomID); err != nil {
		return nil, formatErr(`"room_id": %v`, err)
	}
	if e.stateKey != nil && len(*e.stateKey) > MaxFieldSize {
		return nil, formatErr(`"state_key" is longer than %d bytes`, MaxFieldSize)
	}
	e.raw, err = canonicaljson.Encode(obj)
	if err != nil {
		return nil, formatErr("%v", err)
	}
	if len(e.raw) > MaxEventSize {
		return nil, ErrTooLarge
	}
	if knownID != "" {
		e.id = knownID
		return e, nil
	}
	e.id, err = referenceID(obj, v)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// ID is the event ID ("$" + the unpadded URL-safe base64 reference hash).
func (e *Event) ID() string { return e.id }

// Version is the room version the event was parsed for.
func (e *Event) Version() *Version { return e.version }

// Type is the event type.
func (e *Event) Type() string { return e.typ }

// StateKey returns the state key and whether the event is a state event.
func (e *Event) StateKey() (string, bool) {
	if e.stateKey == nil {
		return "", false
	}
	return *e.stateKey, true
}

// IsState reports whether the event has a state key.
func (e *Event) IsState() bool { return e.stateKey != nil }

// StateKeyIs reports whether the event is a state event with state key k.
func (e *Event) StateKeyIs(k string) bool { return e.stateKey != nil && *e.stateKey == k }

// Sender is the sending user's ID.
func (e *Event) Sender() string { return e.sender }

// RoomID is the room's ID.
func (e *Event) RoomID() string { return e.roomID }

// Content is the decoded content (canonical JSON types: map[string]any,
// []any, string, int64, bool, nil).
func (e *Event) Content() map[string]any { return e.content }

// ContentString returns a string field of the content ("" if absent or not
// a string).
func (e *Event) ContentString(key string) string {
	s, _ := e.content[key].(string)
	return s
}

// AuthEvents are the IDs of the event's auth events.
func (e *Event) AuthEvents() []string { return e.authEvents }

// PrevEvents are the IDs of the event's previous events.
func (e *Event) PrevEvents() []string { return e.prevEvents }

// Depth is the event's depth.
func (e *Event) Depth() int64 { return e.depth }

// OriginServerTS is the sending server's timestamp in milliseconds.
func (e *Event) OriginServerTS() int64 { return e.ts }

// Redacts is the ID of the event an m.room.redaction redacts ("" otherwise):
// top-level before room version 11, in the content from version 11.
func (e *Event) Redacts() string { return e.redacts }

// Membership is an m.room.member event's content.membership ("" otherwise).
func (e *Event) Membership() string {
	if e.typ != "m.room.member" {
		return ""
	}
	return e.ContentString("membership")
}

// JSON is the event's canonical JSON in the federation format.
func (e *Event) JSON() []byte { return e.raw }

// Object is the decoded event. Do not modify it.
func (e *Event) Object() map[string]any { return e.obj }

// Origin is the server name of the sender.
func (e *Event) Origin() string {
	for i := 0; i < len(e.sender); i++ {
		if e.sender[i] == ':' {
			return e.sender[i+1:]
		}
	}
	return ""
}

// StateTuple identifies a piece of room state: an event type and state key.
type StateTuple struct {
	Type     string
	StateKey string
}

// StateTuple returns the event's (type, state key) and whether it is a
// state event.
func (e *Event) StateTuple() (StateTuple, bool) {
	if e.stateKey == nil {
		return StateTuple{}, false
	}
	return StateTuple{Type: e.typ, StateKey: *e.stateKey}, true
}
