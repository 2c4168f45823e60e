package authrules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-im/sluice/internal/mx/event"
)

// ErrMissingAuthEvents: some of an event's auth_events were not supplied.
// It is not a Rejection: the caller should fetch them and check again (or
// reject the event if they cannot be had).
var ErrMissingAuthEvents = errors.New("authrules: auth events missing")

// AuthEventTypes is the spec's "auth events selection" (server-server API):
// the state a new event's auth_events must be chosen from, in order and
// without duplicates. For m.room.create it is empty. Otherwise: the create
// event, the power levels, the sender's member event; and for a member
// event, the target's member event, the join rules (membership join,
// invite or knock), the m.room.third_party_invite named by
// content.third_party_invite.signed.token (invite), and the member event
// of content.join_authorised_via_users_server (join; every room version
// this package implements has restricted rooms).
//
// Entries the room's state lacks are simply left out of auth_events.
func AuthEventTypes(typ string, stateKey *string, sender string, content map[string]any) []event.StateTuple {
	if typ == typeCreate {
		return nil
	}
	out := make([]event.StateTuple, 0, 6)
	add := func(t, k string) {
		st := event.StateTuple{Type: t, StateKey: k}
		for _, x := range out {
			if x == st {
				return
			}
		}
		out = append(out, st)
	}
	add(typeCreate, "")
	add(typePowerLevels, "")
	add(typeMember, sender)
	if typ == typeMember && stateKey != nil {
		add(typeMember, *stateKey)
		m, _ := content["membership"].(string)
		if m == membershipJoin || m == membershipInvite || m == membershipKnock {
			add(typeJoinRules, "")
		}
		if m == membershipInvite {
			if tpi, ok := content[keyThirdPartyInvite].(map[string]any); ok {
				if signed, ok := tpi["signed"].(map[string]any); ok {
					if tok, ok := signed["token"].(string); ok {
						add(typeThirdPartyInvite, tok)
					}
				}
			}
		}
		if m == membershipJoin {
			if via, ok := content[keyAuthorisingUser].(string); ok {
				add(typeMember, via)
			}
		}
	}
	return out
}

func authEventTypesOf(e *event.Event) []event.StateTuple {
	var sk *string
	if k, ok := e.StateKey(); ok {
		sk = &k
	}
	return AuthEventTypes(e.Type(), sk, e.Sender(), e.Content())
}

// CheckAuthEvents applies rule 2 (the checks on the event's auth_events
// list) and returns the auth events as a StateMap for Check. authEvents
// must hold every event e.AuthEvents() names (others are ignored);
// rejected reports whether an event was itself rejected (nil: none were).
// An m.room.create event has no auth events to check: its rules are all in
// rule 1, so CheckAuthEvents returns an empty map for it.
func CheckAuthEvents(e *event.Event, authEvents []*event.Event, rejected func(eventID string) bool) (StateMap, error) {
	out := StateMap{}
	if e.Type() == typeCreate {
		return out, nil
	}
	byID := make(map[string]*event.Event, len(authEvents))
	for _, x := range authEvents {
		if x != nil {
			byID[x.ID()] = x
		}
	}
	ids := e.AuthEvents()
	list := make([]*event.Event, 0, len(ids))
	var missing []string
	for _, id := range ids {
		x, ok := byID[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		list = append(list, x)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMissingAuthEvents, strings.Join(missing, ", "))
	}
	// 2.1
	for _, x := range list {
		st, ok := x.StateTuple()
		if !ok {
			continue // not state: 2.2 rejects it
		}
		if prev, dup := out[st]; dup {
			return nil, reject("2.1", "auth events %s and %s are both (%s, %q)", prev.ID(), x.ID(), st.Type, st.StateKey)
		}
		out[st] = x
	}
	// 2.2
	want := authEventTypesOf(e)
	for _, x := range list {
		st, ok := x.StateTuple()
		if !ok {
			return nil, reject("2.2", "auth event %s (%s) is not a state event", x.ID(), x.Type())
		}
		needed := false
		for _, w := range want {
			if w == st {
				needed = true
				break
			}
		}
		if !needed {
			return nil, reject("2.2", "auth event %s (%s, %q) is not one the auth events selection picks for this event", x.ID(), st.Type, st.StateKey)
		}
	}
	// 2.3
	if rejected != nil {
		for _, x := range list {
			if rejected(x.ID()) {
				return nil, reject("2.3", "auth event %s (%s) was rejected", x.ID(), x.Type())
			}
		}
	}
	// 2.4
	if out.Get(typeCreate, "") == nil {
		return nil, reject("2.4", "there is no m.room.create event among the auth events")
	}
	// 2.5
	for _, x := range list {
		if x.RoomID() != e.RoomID() {
			return nil, reject("2.5", "auth event %s (%s) belongs to room %s, not %s", x.ID(), x.Type(), x.RoomID(), e.RoomID())
		}
	}
	return out, nil
}

// CheckWithAuthEvents is the check of an event against its own auth events
// (step 4 of the checks on receipt of a PDU): rule 1 for a create event,
// otherwise CheckAuthEvents then Check.
func CheckWithAuthEvents(e *event.Event, authEvents []*event.Event, rejected func(eventID string) bool) error {
	if e.Type() == typeCreate {
		return Check(e, nil)
	}
	state, err := CheckAuthEvents(e, authEvents, rejected)
	if err != nil {
		return err
	}
	return Check(e, state)
}
