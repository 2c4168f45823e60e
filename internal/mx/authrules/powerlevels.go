package authrules

import (
	"github.com/sluice-im/sluice/internal/mx/event"
)

// Default levels of the spec (server-server API "Definitions" and the
// m.room.power_levels event schema).
const (
	DefaultUsersLevel        = 0   // users_default
	DefaultEventsLevel       = 0   // events_default
	DefaultStateLevel        = 50  // state_default, with or without a power levels event
	DefaultInviteLevel       = 0   // invite
	DefaultKickLevel         = 50  // kick
	DefaultBanLevel          = 50  // ban
	DefaultRedactLevel       = 50  // redact
	DefaultNotificationLevel = 50  // notifications.room (and any other key)
	CreatorLevel             = 100 // the creator's level when there is no power levels event
)

// PowerLevels is a room's m.room.power_levels state read with the spec's
// defaults. It is a view over the event's (immutable) content, so making
// one is cheap and it never copies the users map. The zero value is a room
// with no power levels event and no known creator: everyone at 0.
//
// In room versions 10 and 11 every accepted power levels event has integer
// values (auth rule 9); a value of any other JSON type, which only a
// power levels event that never passed the auth rules could hold, reads as
// absent.
type PowerLevels struct {
	content map[string]any // nil: no m.room.power_levels event
	creator string         // the creator, for the no-event default
}

// NewPowerLevels reads the levels from a room's create event and its
// power levels event, either of which may be nil. The create event only
// matters when there is no power levels event: then its creator (in v11
// its sender, before that content.creator) has level 100.
func NewPowerLevels(create, powerLevels *event.Event) PowerLevels {
	var p PowerLevels
	if powerLevels != nil {
		p.content = powerLevels.Content()
		if p.content == nil {
			p.content = map[string]any{}
		}
	}
	if create != nil {
		p.creator = Creator(create)
	}
	return p
}

// PowerLevelsFromState reads the power levels of a room state.
func PowerLevelsFromState(state StateMap) PowerLevels {
	return NewPowerLevels(state.Get(typeCreate, ""), state.Get(typePowerLevels, ""))
}

// Creator is the room creator a create event names: its sender in room
// versions that define it so (v11), content.creator before.
func Creator(create *event.Event) string {
	if create.Version().V11CreateSender {
		return create.Sender()
	}
	return create.ContentString("creator")
}

// Exists reports whether the room has a power levels event.
func (p PowerLevels) Exists() bool { return p.content != nil }

func (p PowerLevels) named(key string, def int64) int64 {
	if n, ok := p.content[key].(int64); ok {
		return n
	}
	return def
}

func (p PowerLevels) nested(section, key string) (int64, bool) {
	m, _ := p.content[section].(map[string]any)
	n, ok := m[key].(int64)
	return n, ok
}

// UserLevel is a user's power level: their users entry, else
// users_default; with no power levels event, 100 for the creator and 0 for
// everyone else.
func (p PowerLevels) UserLevel(userID string) int64 {
	if p.content == nil {
		if userID != "" && userID == p.creator {
			return CreatorLevel
		}
		return DefaultUsersLevel
	}
	if n, ok := p.nested("users", userID); ok {
		return n
	}
	return p.named("users_default", DefaultUsersLevel)
}

// EventLevel is the level required to send an event of a type (the spec's
// "required power level"): its events entry, else state_default for state
// events and events_default for others.
func (p PowerLevels) EventLevel(typ string, isState bool) int64 {
	if n, ok := p.nested("events", typ); ok {
		return n
	}
	if isState {
		return p.StateDefault()
	}
	return p.EventsDefault()
}

// UsersDefault is users_default (default 0).
func (p PowerLevels) UsersDefault() int64 { return p.named("users_default", DefaultUsersLevel) }

// EventsDefault is events_default (default 0).
func (p PowerLevels) EventsDefault() int64 { return p.named("events_default", DefaultEventsLevel) }

// StateDefault is state_default (default 50, also when there is no power
// levels event).
func (p PowerLevels) StateDefault() int64 { return p.named("state_default", DefaultStateLevel) }

// Invite is the invite level (default 0).
func (p PowerLevels) Invite() int64 { return p.named("invite", DefaultInviteLevel) }

// Kick is the kick level (default 50).
func (p PowerLevels) Kick() int64 { return p.named("kick", DefaultKickLevel) }

// Ban is the ban level (default 50).
func (p PowerLevels) Ban() int64 { return p.named("ban", DefaultBanLevel) }

// Redact is the redact level (default 50): the level needed to redact
// other users' events (see RedactionAllowed). The auth rules do not use it.
func (p PowerLevels) Redact() int64 { return p.named("redact", DefaultRedactLevel) }

// NotificationLevel is the level needed to trigger a notification of a
// kind ("room" for @room), default 50.
func (p PowerLevels) NotificationLevel(key string) int64 {
	if n, ok := p.nested("notifications", key); ok {
		return n
	}
	return DefaultNotificationLevel
}

// RoomNotificationLevel is notifications.room: the level needed for an
// @room mention to notify.
func (p PowerLevels) RoomNotificationLevel() int64 { return p.NotificationLevel("room") }

// Users returns a copy of the users map (user ID to level), without the
// implicit creator level of a room with no power levels event.
func (p PowerLevels) Users() map[string]int64 { return p.intMap("users") }

// Events returns a copy of the events map (event type to level).
func (p PowerLevels) Events() map[string]int64 { return p.intMap("events") }

// Notifications returns a copy of the notifications map.
func (p PowerLevels) Notifications() map[string]int64 { return p.intMap("notifications") }

func (p PowerLevels) intMap(section string) map[string]int64 {
	m, _ := p.content[section].(map[string]any)
	out := make(map[string]int64, len(m))
	for k, v := range m {
		if n, ok := v.(int64); ok {
			out[k] = n
		}
	}
	return out
}
