package authrules

import (
	"github.com/sluice-im/sluice/internal/mx/event"
)

// joinRule is the room's join rule. With no m.room.join_rules event, or
// one without content.join_rule, it is "invite", as in Synapse (the spec
// leaves it implicit); a non-string join_rule matches no rule.
func joinRule(jr *event.Event) string {
	if jr == nil {
		return joinRuleInvite
	}
	x, ok := jr.Content()["join_rule"]
	if !ok {
		return joinRuleInvite
	}
	s, _ := x.(string)
	return s
}

// checkMember is rule 4.
func checkMember(e *event.Event, a *authState) error {
	v := e.Version()
	// 4.1
	target, ok := e.StateKey()
	if !ok {
		return reject("4.1", "m.room.member event has no state_key")
	}
	raw, ok := e.Content()["membership"]
	if !ok {
		return reject("4.1", "m.room.member event has no content.membership")
	}
	membership, _ := raw.(string)

	// 4.2
	if via, ok := e.Content()[keyAuthorisingUser]; ok {
		s, _ := via.(string)
		d := domainOf(s)
		if d == "" || !signedBy(e, d) {
			return reject("4.2", "the event is not signed by the server of join_authorised_via_users_server %s", describe(via))
		}
	}

	switch {
	case membership == membershipJoin:
		return checkJoin(e, a, target)
	case membership == membershipInvite:
		return checkInvite(e, a, target)
	case membership == membershipLeave:
		return checkLeave(e, a, target)
	case membership == membershipBan:
		return checkBan(e, a, target)
	case membership == membershipKnock && v.Knocking:
		return checkKnock(e, a, target)
	}
	// 4.8
	return reject("4.8", "unknown membership %s", describe(raw))
}

// checkJoin is rule 4.3.
func checkJoin(e *event.Event, a *authState, target string) error {
	v := e.Version()
	// 4.3.1: the creator's first join, right after the create event.
	if prev := e.PrevEvents(); len(prev) == 1 && prev[0] == a.create.ID() && target == Creator(a.create) {
		return nil
	}
	// 4.3.2
	if e.Sender() != target {
		return reject("4.3.2", "%s cannot join on behalf of %s", e.Sender(), target)
	}
	// 4.3.3 (the sender is the target, so their member event is the target's)
	current := membershipOf(a.senderMember)
	if current == membershipBan {
		return reject("4.3.3", "%s is banned from the room", target)
	}
	jrEvent, err := a.lookup(e, typeJoinRules, "")
	if err != nil {
		return err
	}
	rule := joinRule(jrEvent)
	invitedOrJoined := current == membershipInvite || current == membershipJoin
	switch {
	// 4.3.4
	case rule == joinRuleInvite || (rule == joinRuleKnock && v.Knocking):
		if invitedOrJoined {
			return nil
		}
		return reject("4.3.7", "%s is not invited to the room (join rule %q, membership %q)", target, rule, current)
	// 4.3.5
	case (rule == joinRuleRestricted && v.RestrictedJoins) || (rule == joinRuleKnockRestricted && v.KnockRestricted):
		// 4.3.5.1
		if invitedOrJoined {
			return nil
		}
		// 4.3.5.2
		raw, ok := e.Content()[keyAuthorisingUser]
		if !ok {
			return reject("4.3.5.2", "join rule %q requires an invite or content.%s", rule, keyAuthorisingUser)
		}
		via, _ := raw.(string)
		if via == "" {
			return reject("4.3.5.2", "content.%s is %s, not a user ID", keyAuthorisingUser, describe(raw))
		}
		m, err := a.lookup(e, typeMember, via)
		if err != nil {
			return err
		}
		if ms := membershipOf(m); ms != membershipJoin {
			return reject("4.3.5.2", "the authorising user %s is not joined to the room (membership %q)", via, ms)
		}
		if lvl, inv := a.pl.UserLevel(via), a.pl.Invite(); lvl < inv {
			return reject("4.3.5.2", "the authorising user %s has power level %d, below the invite level %d", via, lvl, inv)
		}
		// 4.3.5.3
		return nil
	// 4.3.6
	case rule == joinRulePublic:
		return nil
	}
	// 4.3.7
	return reject("4.3.7", "join rule %q does not allow %s to join", rule, target)
}

// checkInvite is rule 4.4.
func checkInvite(e *event.Event, a *authState, target string) error {
	targetMember, err := a.lookup(e, typeMember, target)
	if err != nil {
		return err
	}
	targetMS := membershipOf(targetMember)
	// 4.4.1
	if tpi, ok := e.Content()[keyThirdPartyInvite]; ok {
		return checkThirdPartyInvite(e, a, target, targetMS, tpi)
	}
	// 4.4.2
	if ms := membershipOf(a.senderMember); ms != membershipJoin {
		return reject("4.4.2", "%s is not joined to the room (membership %q) and cannot invite", e.Sender(), ms)
	}
	// 4.4.3
	switch targetMS {
	case membershipJoin:
		return reject("4.4.3", "%s is already joined to the room", target)
	case membershipBan:
		return reject("4.4.3", "%s is banned from the room", target)
	}
	// 4.4.4, 4.4.5
	if lvl, inv := a.pl.UserLevel(e.Sender()), a.pl.Invite(); lvl < inv {
		return reject("4.4.5", "sender's power level %d is below the invite level %d", lvl, inv)
	}
	return nil
}

// checkLeave is rule 4.5.
func checkLeave(e *event.Event, a *authState, target string) error {
	v := e.Version()
	senderMS := membershipOf(a.senderMember)
	// 4.5.1
	if e.Sender() == target {
		if senderMS == membershipInvite || senderMS == membershipJoin || (senderMS == membershipKnock && v.Knocking) {
			return nil
		}
		return reject("4.5.1", "%s cannot leave: their membership is %q", target, senderMS)
	}
	// 4.5.2
	if senderMS != membershipJoin {
		return reject("4.5.2", "%s is not joined to the room (membership %q) and cannot kick or unban", e.Sender(), senderMS)
	}
	targetMember, err := a.lookup(e, typeMember, target)
	if err != nil {
		return err
	}
	level, targetLevel := a.pl.UserLevel(e.Sender()), a.pl.UserLevel(target)
	// 4.5.3
	if membershipOf(targetMember) == membershipBan {
		if ban := a.pl.Ban(); level < ban {
			return reject("4.5.3", "sender's power level %d is below the ban level %d needed to unban %s", level, ban, target)
		}
	}
	// 4.5.4
	kick := a.pl.Kick()
	if level >= kick && targetLevel < level {
		return nil
	}
	// 4.5.5
	if level < kick {
		return reject("4.5.5", "sender's power level %d is below the kick level %d", level, kick)
	}
	return reject("4.5.5", "sender's power level %d is not above %s's power level %d", level, target, targetLevel)
}

// checkBan is rule 4.6.
func checkBan(e *event.Event, a *authState, target string) error {
	// 4.6.1
	if ms := membershipOf(a.senderMember); ms != membershipJoin {
		return reject("4.6.1", "%s is not joined to the room (membership %q) and cannot ban", e.Sender(), ms)
	}
	level, targetLevel, ban := a.pl.UserLevel(e.Sender()), a.pl.UserLevel(target), a.pl.Ban()
	// 4.6.2
	if level >= ban && targetLevel < level {
		return nil
	}
	// 4.6.3
	if level < ban {
		return reject("4.6.3", "sender's power level %d is below the ban level %d", level, ban)
	}
	return reject("4.6.3", "sender's power level %d is not above %s's power level %d", level, target, targetLevel)
}

// checkKnock is rule 4.7.
func checkKnock(e *event.Event, a *authState, target string) error {
	v := e.Version()
	jrEvent, err := a.lookup(e, typeJoinRules, "")
	if err != nil {
		return err
	}
	// 4.7.1
	if rule := joinRule(jrEvent); rule != joinRuleKnock && !(rule == joinRuleKnockRestricted && v.KnockRestricted) {
		return reject("4.7.1", "join rule %q does not allow knocking", rule)
	}
	// 4.7.2
	if e.Sender() != target {
		return reject("4.7.2", "%s cannot knock on behalf of %s", e.Sender(), target)
	}
	// 4.7.3, 4.7.4
	switch ms := membershipOf(a.senderMember); ms {
	case membershipBan, membershipInvite, membershipJoin:
		return reject("4.7.4", "%s cannot knock: their membership is %q", target, ms)
	}
	return nil
}
