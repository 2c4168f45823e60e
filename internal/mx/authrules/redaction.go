package authrules

import "github.com/sluice-im/sluice/internal/mx/event"

// RedactionAllowed is the room versions' "Handling redactions" check, made
// once both an m.room.redaction (already accepted by the auth rules) and
// the event it redacts are known: the redaction applies if its sender's
// power level (pl: the power levels in force at the redaction) is at least
// the redact level, or its sender's server is the original sender's
// server. The two must be in the same room. This is the same in room
// versions 10 and 11; in neither do the authorization rules themselves
// consider the redact level.
func RedactionAllowed(redaction, original *event.Event, pl PowerLevels) bool {
	if redaction.RoomID() != original.RoomID() || redaction.Redacts() != original.ID() {
		return false
	}
	if pl.UserLevel(redaction.Sender()) >= pl.Redact() {
		return true
	}
	d := domainOf(redaction.Sender())
	return d != "" && d == domainOf(original.Sender())
}
