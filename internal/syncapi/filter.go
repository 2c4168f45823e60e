package syncapi

import (
	"encoding/json"
	"slices"
	"strings"
)

// DefaultTimelineLimit is the number of timeline events per room when the
// filter gives none (Synapse's default).
const DefaultTimelineLimit = 10

// Filter is a sync filter (the spec's Filter), already validated by the
// caller (clientapi checks the JSON types when a filter is created or
// passed inline).
type Filter struct {
	EventFormat string      `json:"event_format"`
	AccountData EventFilter `json:"account_data"`
	Presence    EventFilter `json:"presence"`
	Room        RoomFilter  `json:"room"`
}

// RoomFilter is the spec's RoomFilter.
type RoomFilter struct {
	Rooms        *[]string   `json:"rooms"`
	NotRooms     []string    `json:"not_rooms"`
	IncludeLeave bool        `json:"include_leave"`
	Timeline     EventFilter `json:"timeline"`
	State        EventFilter `json:"state"`
	Ephemeral    EventFilter `json:"ephemeral"`
	AccountData  EventFilter `json:"account_data"`
}

// EventFilter is the spec's EventFilter and RoomEventFilter. A nil list
// matches everything; an empty Types (or Senders, Rooms) list matches
// nothing.
type EventFilter struct {
	Limit           *int      `json:"limit"`
	Types           *[]string `json:"types"`
	NotTypes        []string  `json:"not_types"`
	Senders         *[]string `json:"senders"`
	NotSenders      []string  `json:"not_senders"`
	Rooms           *[]string `json:"rooms"`
	NotRooms        []string  `json:"not_rooms"`
	ContainsURL     *bool     `json:"contains_url"`
	LazyLoadMembers bool      `json:"lazy_load_members"`
}

// ParseFilter decodes a filter's JSON (a validated filter: wrongly typed
// fields are an error here too).
func ParseFilter(raw []byte) (*Filter, error) {
	f := &Filter{}
	if len(raw) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(raw, f); err != nil {
		return nil, err
	}
	return f, nil
}

// limit is the filter's limit, or def.
func (f *EventFilter) limit(def int) int {
	if f.Limit == nil {
		return def
	}
	return max(*f.Limit, 0)
}

// matchType matches an event type against a filter pattern, where "*" is
// any run of characters (Synapse's glob matching).
func matchType(pattern, typ string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == typ
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(typ, parts[0]) {
		return false
	}
	typ = typ[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(typ, p)
		if i < 0 {
			return false
		}
		typ = typ[i+len(p):]
	}
	return strings.HasSuffix(typ, last)
}

func matchAnyType(patterns []string, typ string) bool {
	for _, p := range patterns {
		if matchType(p, typ) {
			return true
		}
	}
	return false
}

// allowsRoom applies rooms and not_rooms; not_rooms wins.
func allowsRoom(rooms *[]string, notRooms []string, roomID string) bool {
	if slices.Contains(notRooms, roomID) {
		return false
	}
	return rooms == nil || slices.Contains(*rooms, roomID)
}

// allowsRoom reports whether the room passes the room filter.
func (f *RoomFilter) allowsRoom(roomID string) bool {
	return allowsRoom(f.Rooms, f.NotRooms, roomID)
}

// allows reports whether an event passes the filter. hasURL is whether its
// content has a string "url" (for contains_url).
func (f *EventFilter) allows(typ, sender, roomID string, hasURL bool) bool {
	if matchAnyType(f.NotTypes, typ) || slices.Contains(f.NotSenders, sender) {
		return false
	}
	if f.Types != nil && !matchAnyType(*f.Types, typ) {
		return false
	}
	if f.Senders != nil && !slices.Contains(*f.Senders, sender) {
		return false
	}
	if roomID != "" && !allowsRoom(f.Rooms, f.NotRooms, roomID) {
		return false
	}
	if f.ContainsURL != nil && *f.ContainsURL != hasURL {
		return false
	}
	return true
}

// allowsType applies types and not_types alone (account data and
// ephemeral events have no sender).
func (f *EventFilter) allowsType(typ string) bool {
	if matchAnyType(f.NotTypes, typ) {
		return false
	}
	return f.Types == nil || matchAnyType(*f.Types, typ)
}
