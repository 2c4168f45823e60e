package authrules

import (
	"fmt"
	"strings"

	"github.com/sluice-im/sluice/internal/mx/event"
)

// Names the rules use: event types, content keys, memberships, join rules.
const (
	typeCreate              = "m.room.create"
	typeMember              = "m.room.member"
	typeJoinRules           = "m.room.join_rules"
	typePowerLevels         = "m.room.power_levels"
	typeThirdPartyInvite    = "m.room.third_party_invite"
	keyAuthorisingUser      = "join_authorised_via_users_server"
	keyThirdPartyInvite     = "third_party_invite"
	membershipJoin          = "join"
	membershipInvite        = "invite"
	membershipLeave         = "leave"
	membershipBan           = "ban"
	membershipKnock         = "knock"
	joinRulePublic          = "public"
	joinRuleInvite          = "invite"
	joinRuleKnock           = "knock"
	joinRuleRestricted      = "restricted"
	joinRuleKnockRestricted = "knock_restricted"
)

// StateMap is a set of room state events keyed by (type, state key): the
// auth events of an event, or a room state (the state before an event, the
// current state) to check it against. Each event must be stored under its
// own type and state key. Check only looks up the entries the rules need,
// so a full room state is as good as the selected subset.
type StateMap map[event.StateTuple]*event.Event

// Get returns the event at (typ, stateKey), or nil.
func (s StateMap) Get(typ, stateKey string) *event.Event {
	return s[event.StateTuple{Type: typ, StateKey: stateKey}]
}

// Rejection is why the authorization rules reject an event. Reason is
// meant for people (clients see it as M_FORBIDDEN's error); Rule is the
// number of the rule in the room version's "Authorization rules" list
// (for example "4.3.3"), or "signature" for the rules' preamble that
// events must be signed by the sender's server, or "version" for a room
// version this package does not implement.
type Rejection struct {
	Rule   string
	Reason string
}

func (r *Rejection) Error() string { return r.Reason }

func reject(rule, format string, args ...any) error {
	return &Rejection{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// authState is what the rules read from the state, looked up once.
type authState struct {
	state        StateMap
	create       *event.Event
	powerLevels  *event.Event
	senderMember *event.Event
	pl           PowerLevels
}

// lookup returns a state entry, enforcing rule 2.5 (same room) on it.
func (a *authState) lookup(e *event.Event, typ, stateKey string) (*event.Event, error) {
	x := a.state.Get(typ, stateKey)
	if x != nil && x.RoomID() != e.RoomID() {
		return nil, reject("2.5", "auth event %s (%s) belongs to room %s, not %s", x.ID(), typ, x.RoomID(), e.RoomID())
	}
	return x, nil
}

func membershipOf(m *event.Event) string {
	if m == nil {
		return membershipLeave
	}
	return m.Membership()
}

// Check applies the authorization rules of the event's room version (10 or
// 11) to e against state: either the event's own auth events (see
// CheckAuthEvents, which also applies the rules about the auth_events list
// itself), the state before the event, or the room's current state. It
// returns nil when the rules allow the event and a *Rejection otherwise.
//
// Check does not verify signatures cryptographically (see
// RequiredSigners): where the rules require a server's signature it checks
// that the event carries one.
func Check(e *event.Event, state StateMap) error {
	v := e.Version()
	if v == nil || (v.ID != "10" && v.ID != "11") {
		id := "?"
		if v != nil {
			id = v.ID
		}
		return reject("version", "the authorization rules of room version %s are not implemented", id)
	}
	// Preamble: events must be signed by the sender's server.
	if err := checkSenderSigned(e); err != nil {
		return err
	}
	// Rule 1.
	if e.Type() == typeCreate {
		return checkCreate(e)
	}
	a := &authState{state: state}
	var err error
	// Rules 2.4 and 2.5 on the state given.
	if a.create, err = a.lookup(e, typeCreate, ""); err != nil {
		return err
	}
	if a.create == nil {
		return reject("2.4", "there is no m.room.create event among the auth events")
	}
	if a.powerLevels, err = a.lookup(e, typePowerLevels, ""); err != nil {
		return err
	}
	if a.senderMember, err = a.lookup(e, typeMember, e.Sender()); err != nil {
		return err
	}
	a.pl = NewPowerLevels(a.create, a.powerLevels)

	// Rule 3.
	if f, ok := a.create.Content()["m.federate"].(bool); ok && !f {
		if sd, cd := domainOf(e.Sender()), domainOf(a.create.Sender()); sd != cd {
			return reject("3", "the room does not federate (m.federate is false) and the sender's server %s is not the creator's server %s", sd, cd)
		}
	}

	// Rule 4.
	if e.Type() == typeMember {
		return checkMember(e, a)
	}

	// Rule 5.
	if m := membershipOf(a.senderMember); m != membershipJoin {
		return reject("5", "%s is not joined to the room (membership %q)", e.Sender(), m)
	}
	level := a.pl.UserLevel(e.Sender())

	// Rule 6.
	if e.Type() == typeThirdPartyInvite {
		if inv := a.pl.Invite(); level < inv {
			return reject("6", "sender's power level %d is below the invite level %d required to send %s", level, inv, typeThirdPartyInvite)
		}
		return nil
	}

	// Rule 7.
	if req := a.pl.EventLevel(e.Type(), e.IsState()); level < req {
		return reject("7", "sender's power level %d is below the level %d required to send %s", level, req, e.Type())
	}

	// Rule 8.
	if sk, ok := e.StateKey(); ok && strings.HasPrefix(sk, "@") && sk != e.Sender() {
		return reject("8", "state_key %q starts with @ and is not the sender %s", sk, e.Sender())
	}

	// Rule 9.
	if e.Type() == typePowerLevels {
		return checkPowerLevels(e, a, level)
	}

	// Rule 10.
	return nil
}

// checkSenderSigned: "Events must be signed by the server denoted by the
// sender property." Like Synapse, an invite carrying third_party_invite
// is exempt: its sender is the inviter, whose server may not have signed
// it yet (rule 4.4.1 authorizes it by the identity server's signature).
func checkSenderSigned(e *event.Event) error {
	if e.Type() == typeMember && e.Membership() == membershipInvite {
		if _, ok := e.Content()[keyThirdPartyInvite]; ok {
			return nil
		}
	}
	d := domainOf(e.Sender())
	if d == "" || !signedBy(e, d) {
		return reject("signature", "the event is not signed by the sender's server %q", d)
	}
	return nil
}

// signedBy reports whether the event carries a signature by a server (its
// validity is checked elsewhere, see RequiredSigners).
func signedBy(e *event.Event, server string) bool {
	sigs, _ := e.Object()["signatures"].(map[string]any)
	byServer, _ := sigs[server].(map[string]any)
	return len(byServer) > 0
}

// RequiredSigners lists the servers whose signatures the event must carry
// and the caller must verify (checks on receipt of a PDU, step 2) for the
// authorization rules to hold: the sender's server (except for an invite
// with third_party_invite, see Check), and for a membership event with
// content.join_authorised_via_users_server the authorising user's server
// (rule 4.2).
func RequiredSigners(e *event.Event) []string {
	var out []string
	add := func(s string) {
		for _, x := range out {
			if x == s {
				return
			}
		}
		out = append(out, s)
	}
	tpInvite := false
	if e.Type() == typeMember && e.Membership() == membershipInvite {
		_, tpInvite = e.Content()[keyThirdPartyInvite]
	}
	if !tpInvite {
		add(domainOf(e.Sender()))
	}
	if e.Type() == typeMember {
		if via, ok := e.Content()[keyAuthorisingUser].(string); ok {
			add(domainOf(via))
		}
	}
	return out
}

// checkCreate is rule 1.
func checkCreate(e *event.Event) error {
	// 1.1
	if n := len(e.PrevEvents()); n > 0 {
		return reject("1.1", "m.room.create must not have prev_events (it has %d)", n)
	}
	// 1.2
	rd, sd := domainOf(e.RoomID()), domainOf(e.Sender())
	if rd == "" || rd != sd {
		return reject("1.2", "the room ID's server %q does not match the sender's server %q", rd, sd)
	}
	// 1.3
	if rv, ok := e.Content()["room_version"]; ok {
		s, isString := rv.(string)
		if _, known := event.LookupVersion(s); !isString || !known {
			return reject("1.3", "content.room_version %s is not a recognised room version", describe(rv))
		}
	}
	// 1.4 (v10 only; v11 has no creator property)
	if !e.Version().V11CreateSender {
		if _, ok := e.Content()["creator"]; !ok {
			return reject("1.4", "m.room.create has no content.creator")
		}
	}
	return nil
}

// describe names a JSON value for error messages.
func describe(x any) string {
	switch y := x.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q (a string)", y)
	case bool:
		return fmt.Sprintf("%v (a boolean)", y)
	case int64:
		return fmt.Sprintf("%d", y)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%v (a %T)", x, x)
}

var namedLevels = [...]string{"users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"}

// checkPowerLevelsContent is rules 9.1 to 9.3: the shape of the content.
func checkPowerLevelsContent(c map[string]any) error {
	// 9.1
	for _, k := range namedLevels {
		if x, ok := c[k]; ok {
			if _, isInt := x.(int64); !isInt {
				return reject("9.1", "power level %q must be an integer, not %s", k, describe(x))
			}
		}
	}
	// 9.2
	for _, section := range [...]string{"events", "notifications"} {
		x, ok := c[section]
		if !ok {
			continue
		}
		m, isMap := x.(map[string]any)
		if !isMap {
			return reject("9.2", "power levels %q must be an object, not %s", section, describe(x))
		}
		if k, bad := firstKey(m, func(_ string, x any) bool { _, isInt := x.(int64); return !isInt }); bad {
			return reject("9.2", "power level %s[%q] must be an integer, not %s", section, k, describe(m[k]))
		}
	}
	// 9.3
	if x, ok := c["users"]; ok {
		m, isMap := x.(map[string]any)
		if !isMap {
			return reject("9.3", `power levels "users" must be an object, not %s`, describe(x))
		}
		k, bad := firstKey(m, func(k string, x any) bool { _, isInt := x.(int64); return !isInt || !validUserID(k) })
		if bad && !validUserID(k) {
			return reject("9.3", "power levels users key %q is not a valid user ID", k)
		}
		if bad {
			return reject("9.3", "power level users[%q] must be an integer, not %s", k, describe(m[k]))
		}
	}
	return nil
}

// checkPowerLevels is rule 9; level is the sender's current level.
func checkPowerLevels(e *event.Event, a *authState, level int64) error {
	newC := e.Content()
	if err := checkPowerLevelsContent(newC); err != nil {
		return err
	}
	// 9.4
	if a.powerLevels == nil {
		return nil
	}
	oldC := a.powerLevels.Content()
	// 9.5
	for _, k := range namedLevels {
		o, oOK := oldC[k].(int64)
		n, nOK := newC[k].(int64)
		if oOK == nOK && o == n {
			continue
		}
		if oOK && o > level {
			return reject("9.5.1", "sender's power level %d is below the current %s level %d, so it cannot change it", level, k, o)
		}
		if nOK && n > level {
			return reject("9.5.2", "sender's power level %d is below the new %s level %d", level, k, n)
		}
	}
	sections := [...]string{"events", "notifications"}
	// 9.6
	for _, s := range sections {
		om, _ := oldC[s].(map[string]any)
		nm, _ := newC[s].(map[string]any)
		k, bad := firstKey(om, func(k string, x any) bool {
			o, oOK := x.(int64)
			n, nOK := nm[k].(int64)
			return oOK && !(nOK && n == o) && o > level
		})
		if bad {
			return reject("9.6", "sender's power level %d is below the current level %d of %s[%q], so it cannot change it", level, om[k], s, k)
		}
	}
	// 9.7
	for _, s := range sections {
		om, _ := oldC[s].(map[string]any)
		nm, _ := newC[s].(map[string]any)
		k, bad := firstKey(nm, func(k string, x any) bool {
			n := x.(int64) // checked by 9.2
			o, oOK := om[k].(int64)
			return !(oOK && o == n) && n > level
		})
		if bad {
			return reject("9.7", "sender's power level %d is below the new level %d of %s[%q]", level, nm[k], s, k)
		}
	}
	om, _ := oldC["users"].(map[string]any)
	nm, _ := newC["users"].(map[string]any)
	// 9.8
	if k, bad := firstKey(om, func(k string, x any) bool {
		o, oOK := x.(int64)
		n, nOK := nm[k].(int64)
		return k != e.Sender() && oOK && !(nOK && n == o) && o >= level
	}); bad {
		return reject("9.8", "sender's power level %d is not above %s's current level %d, so it cannot change it", level, k, om[k])
	}
	// 9.9
	if k, bad := firstKey(nm, func(k string, x any) bool {
		n := x.(int64) // checked by 9.3
		o, oOK := om[k].(int64)
		return !(oOK && o == n) && n > level
	}); bad {
		return reject("9.9", "sender's power level %d is below the new level %d of %s", level, nm[k], k)
	}
	// 9.10
	return nil
}

// firstKey returns the smallest key of m (so that messages are
// deterministic) whose entry is bad.
func firstKey(m map[string]any, bad func(k string, v any) bool) (string, bool) {
	first, found := "", false
	for k, v := range m {
		if (!found || k < first) && bad(k, v) {
			first, found = k, true
		}
	}
	return first, found
}
