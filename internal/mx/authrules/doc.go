// Package authrules is the Matrix authorization rules of room versions 10
// and 11 (the room version pages' "Authorization rules", and the
// server-server API's "Auth events selection"), as pure functions over
// parsed events: no storage, no network.
//
// Building a new event: pick its auth_events from the current state with
// AuthEventTypes, then check it against that state before sending:
//
//	tuples := authrules.AuthEventTypes(typ, stateKey, sender, content)
//	auth := authrules.StateMap{}
//	for _, t := range tuples {
//		if ev := current[t]; ev != nil {
//			auth[t] = ev // and ev.ID() goes into auth_events
//		}
//	}
//	// ... build e ...
//	if err := authrules.Check(e, auth); err != nil {
//		var r *authrules.Rejection
//		errors.As(err, &r) // r.Reason is the M_FORBIDDEN message
//	}
//
// Receiving an event: check it against its own auth events with
// CheckWithAuthEvents (rule 2 on the auth_events list, then the rest),
// then with Check against the state before the event and against the
// current state (a failure there is a soft failure). Check only looks up
// the entries the rules need, so a full state map is fine.
//
// Check does not verify signatures: the caller verifies those of the
// servers RequiredSigners lists, and Check requires them to be present.
// PowerLevels reads m.room.power_levels with the spec's defaults for the
// rest of the server (sending, kicking, push rules), and RedactionAllowed
// is the separate "Handling redactions" check.
//
// Every non-nil error of Check is a *Rejection naming the rule by its
// number in the room version's list (e.g. "4.3.3").
package authrules
