package rooms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// SendParams is a client's non-membership event.
type SendParams struct {
	Requester module.Requester
	RoomID    string
	Type      string
	StateKey  *string // nil for a message-like event
	Content   map[string]any
	Redacts   string
	TxnID     string // "" when the endpoint has none (state events)
}

// Send sends a message-like or state event for a local user. A repeated
// transaction ID returns the first event's ID without sending again.
func (s *Service) Send(ctx context.Context, p SendParams) (string, error) {
	if p.Requester.ShadowBanned {
		if err := s.shadowBanDelay(ctx); err != nil {
			return "", err
		}
		return fakeEventID(), nil
	}
	var txn *storage.TxnKey
	if p.TxnID != "" {
		// A transaction is scoped to the device and the request path
		// (Synapse keys it by room too): the same ID in another room is
		// another event.
		txn = &storage.TxnKey{UserID: p.Requester.UserID, DeviceID: p.Requester.DeviceID, TxnID: storage.ScopeTxnID(p.RoomID, p.TxnID)}
		if id, err := s.store.GetTxnEvent(ctx, *txn); err == nil {
			return id, nil
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
	}
	if err := s.rateLimit(ctx, s.opts.MessageLimiter, p.Requester.UserID); err != nil {
		return "", err
	}
	unlock := s.lock(p.RoomID)
	defer unlock()
	rs, err := s.writerRoom(ctx, p.RoomID)
	if err != nil {
		return "", unknownAsNotInRoom(err, p.Requester.UserID, p.RoomID)
	}
	if m := rs.membership(p.Requester.UserID); m != "join" {
		return "", errNotInRoom(p.Requester.UserID, p.RoomID)
	}
	e, err := s.send(ctx, rs, draft{typ: p.Type, stateKey: p.StateKey, sender: p.Requester.UserID, content: p.Content,
		redacts: p.Redacts, txn: txn, spamCheck: true})
	if errors.Is(err, storage.ErrTxnExists) {
		// A concurrent retry of the same transaction won the race.
		return s.store.GetTxnEvent(ctx, *txn)
	}
	if err != nil {
		return "", err
	}
	return e.ID(), nil
}

// SetState is PUT /rooms/{roomId}/state/{type}/{stateKey}: it asks
// user_may_send_state_event (server admins are not asked), then sends the
// event; m.room.member events go through the membership rules.
func (s *Service) SetState(ctx context.Context, req module.Requester, roomID, typ, stateKey string, content map[string]any) (string, error) {
	admin, err := s.isAdmin(ctx, req.UserID)
	if err != nil {
		return "", err
	}
	if !admin {
		d, err := s.hooks.UserMaySendStateEvent(ctx, req.UserID, roomID, typ, stateKey, content)
		if err != nil {
			return "", err
		}
		if !d.Allowed() {
			return "", callSiteRejection(http.StatusForbidden, "You are not permitted to send the state event", d)
		}
	}
	if typ == "m.room.member" {
		membership, _ := content["membership"].(string)
		if membership == "invite" && req.ShadowBanned {
			return fakeEventID(), s.shadowBanDelay(ctx)
		}
		return s.changeMembership(ctx, membershipChange{req: req, roomID: roomID, target: stateKey, membership: membership, content: content})
	}
	return s.Send(ctx, SendParams{Requester: req, RoomID: roomID, Type: typ, StateKey: &stateKey, Content: content})
}

// MembershipParams is a membership change a local user asks for.
type MembershipParams struct {
	Requester  module.Requester
	RoomID     string
	Target     string // the user the change is about (the requester for join/leave)
	Membership string // join, invite, leave, ban; kick and unban are leave
	// Action is "kick" or "unban" for those endpoints (Membership leave),
	// whose preconditions Synapse checks; "" otherwise.
	Action string
	Reason string
}

// ChangeMembership joins, invites, leaves, kicks, bans or unbans.
func (s *Service) ChangeMembership(ctx context.Context, p MembershipParams) (string, error) {
	if p.Membership == "join" {
		if err := s.rateLimit(ctx, s.opts.JoinLimiter, p.Requester.UserID); err != nil {
			return "", err
		}
	}
	if p.Membership == "invite" && p.Requester.ShadowBanned {
		// The invite seems to work and is dropped.
		return "", s.shadowBanDelay(ctx)
	}
	content := map[string]any{"membership": p.Membership}
	if p.Reason != "" {
		content["reason"] = p.Reason
	}
	return s.changeMembership(ctx, membershipChange{req: p.Requester, roomID: p.RoomID, target: p.Target, membership: p.Membership, action: p.Action, content: content})
}

type membershipChange struct {
	req        module.Requester
	roomID     string
	target     string
	membership string
	action     string // "kick", "unban" or ""
	content    map[string]any
}

// checkTransition makes the checks Synapse makes before the auth rules
// (RoomMemberHandler.update_membership_locked), in its order: it refuses
// unbanning someone not banned, acting on a banned user other than by ban,
// unban or leave, and kicking someone not in the room; and a change that
// repeats the target's current membership event (same sender, membership
// and content) is answered with that event's ID (dup) instead of a new
// event. (Synapse only makes the first two checks when the target has a
// membership; an unban of someone who never was in the room is refused here
// too rather than sending a pointless leave.)
func checkTransition(c membershipChange, old *event.Event) (dup string, err error) {
	action := c.action
	if action == "" {
		action = c.membership
	}
	current := ""
	if old != nil {
		current = old.Membership()
	}
	if action == "unban" && current != "ban" {
		m := current
		if m == "" {
			m = "None"
		}
		return "", httpx.NewError(http.StatusForbidden, "M_BAD_STATE", "Cannot unban user who was not banned (membership="+m+")")
	}
	if current == "ban" && action != "ban" && action != "unban" && action != "leave" {
		return "", httpx.NewError(http.StatusForbidden, "M_BAD_STATE", "Cannot "+action+" user who was banned")
	}
	if old != nil && old.Sender() == c.req.UserID && current == c.membership {
		a, errA := json.Marshal(old.Content())
		b, errB := json.Marshal(c.content)
		if errA == nil && errB == nil && string(a) == string(b) {
			return old.ID(), nil
		}
	}
	if action == "kick" && current != "join" && current != "invite" && current != "knock" {
		return "", errForbidden("The target user is not in the room")
	}
	return "", nil
}

func (s *Service) changeMembership(ctx context.Context, c membershipChange) (string, error) {
	switch c.membership {
	case "join", "invite", "leave", "ban", "knock":
	default:
		return "", httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "Unknown membership "+c.membership)
	}
	if err := s.memberProfile(ctx, c.req, c.target, c.membership, c.content); err != nil {
		return "", err
	}
	admin, err := s.isAdmin(ctx, c.req.UserID)
	if err != nil {
		return "", err
	}
	unlock := s.lock(c.roomID)
	defer unlock()
	rs, err := s.writerRoom(ctx, c.roomID)
	if err != nil {
		return "", err
	}
	// Callbacks at Synapse's call sites (user_may_invite before the
	// transition checks, user_may_join_room after); server admins bypass
	// them.
	if c.membership == "invite" && !admin {
		d, err := s.hooks.UserMayInvite(ctx, c.req.UserID, c.target, c.roomID)
		if err != nil {
			return "", err
		}
		if !d.Allowed() {
			return "", callSiteRejection(http.StatusForbidden, "Invites have been disabled on this server", d)
		}
	}
	if dup, err := checkTransition(c, rs.get("m.room.member", c.target)); err != nil || dup != "" {
		return dup, err
	}
	if c.membership == "join" && !admin {
		d, err := s.hooks.UserMayJoinRoom(ctx, c.req.UserID, c.roomID, rs.membership(c.req.UserID) == "invite")
		if err != nil {
			return "", err
		}
		if !d.Allowed() {
			return "", callSiteRejection(http.StatusForbidden, "Not allowed to join this room", d)
		}
	}
	if c.membership == "leave" && c.target == c.req.UserID && rs.membership(c.target) == "" {
		return "", errForbidden("User " + c.target + " is not in room " + c.roomID)
	}
	target := c.target
	e, err := s.send(ctx, rs, draft{typ: "m.room.member", stateKey: &target, sender: c.req.UserID, content: c.content})
	if err != nil {
		return "", err
	}
	return e.ID(), nil
}

// ClientFormat is an event as the Client-Server API shows it.
func ClientFormat(e *event.Event, redactedBy string, now int64) map[string]any {
	out := map[string]any{
		"event_id":         e.ID(),
		"type":             e.Type(),
		"sender":           e.Sender(),
		"room_id":          e.RoomID(),
		"content":          e.Content(),
		"origin_server_ts": e.OriginServerTS(),
	}
	if k, ok := e.StateKey(); ok {
		out["state_key"] = k
	}
	if r := e.Redacts(); r != "" {
		// Both places, for old and new clients (the spec's advice for v11).
		out["redacts"] = r
	}
	unsigned := map[string]any{"age": now - e.OriginServerTS()}
	if redactedBy != "" {
		unsigned["redacted_because"] = map[string]any{"event_id": redactedBy}
	}
	out["unsigned"] = unsigned
	return out
}

// State returns the room's current state for a joined (or former) member.
func (s *Service) State(ctx context.Context, userID, roomID string) ([]map[string]any, error) {
	state, err := s.visibleState(ctx, userID, roomID)
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	out := make([]map[string]any, 0, len(state))
	for _, e := range state {
		out = append(out, ClientFormat(e, "", now))
	}
	return out, nil
}

// visibleState is the room state a user may read: the current state for a
// member, the state as it was when they left for a former member (as the
// spec and Synapse give it), nothing otherwise.
func (s *Service) visibleState(ctx context.Context, userID, roomID string) (map[event.StateTuple]*event.Event, error) {
	rs, err := s.loadRoom(ctx, roomID)
	if err != nil {
		return nil, unknownAsNotInRoom(err, userID, roomID)
	}
	switch rs.membership(userID) {
	case "join":
		return rs.state, nil
	case "leave", "ban":
	default:
		return nil, errNotInRoom(userID, roomID)
	}
	left, err := s.store.GetEvent(ctx, rs.get("m.room.member", userID).ID())
	if err != nil {
		return nil, err
	}
	entries, err := s.store.StateAt(ctx, left.StateGroupAfter)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(entries))
	for i, en := range entries {
		ids[i] = en.EventID
	}
	evs, err := s.events(ctx, rs.version, ids)
	if err != nil {
		return nil, err
	}
	state := make(map[event.StateTuple]*event.Event, len(entries))
	for _, en := range entries {
		if e := evs[en.EventID]; e != nil {
			state[event.StateTuple{Type: en.Type, StateKey: en.StateKey}] = e
		}
	}
	return state, nil
}

// StateEvent returns one state event's content.
func (s *Service) StateEvent(ctx context.Context, userID, roomID, typ, stateKey string) (map[string]any, error) {
	state, err := s.visibleState(ctx, userID, roomID)
	if err != nil {
		return nil, err
	}
	e := state[event.StateTuple{Type: typ, StateKey: stateKey}]
	if e == nil {
		return nil, errNotFound("Event not found.")
	}
	return e.Content(), nil
}

// Members returns the room's member events (m.room.member state).
func (s *Service) Members(ctx context.Context, userID, roomID string, onlyJoined bool) ([]*event.Event, error) {
	var state map[event.StateTuple]*event.Event
	if onlyJoined {
		// joined_members is for current members only, as in Synapse.
		rs, err := s.loadRoom(ctx, roomID)
		if err != nil {
			return nil, unknownAsNotInRoom(err, userID, roomID)
		}
		if rs.membership(userID) != "join" {
			return nil, errNotInRoom(userID, roomID)
		}
		state = rs.state
	} else {
		var err error
		if state, err = s.visibleState(ctx, userID, roomID); err != nil {
			return nil, err
		}
	}
	var out []*event.Event
	for k, e := range state {
		if k.Type != "m.room.member" {
			continue
		}
		if onlyJoined && e.Membership() != "join" {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// JoinedRooms lists the rooms the user is joined to.
func (s *Service) JoinedRooms(ctx context.Context, userID string) ([]string, error) {
	return s.store.RoomsForUser(ctx, userID, "join")
}

// Forget forgets a room the user has left.
func (s *Service) Forget(ctx context.Context, userID, roomID string) error {
	rs, err := s.loadRoom(ctx, roomID)
	if err != nil {
		return err
	}
	if m := rs.membership(userID); m == "join" || m == "invite" || m == "knock" {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "User "+userID+" is in room "+roomID)
	}
	return s.store.ForgetRoom(ctx, userID, roomID)
}

// newRoomID makes a room ID: 18 random letters, as Synapse's.
func (s *Service) newRoomID() string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return "!" + string(b) + ":" + s.opts.ServerName
}

// deepCopyJSON copies a JSON-shaped value.
func deepCopyJSON(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

var _ = strings.TrimSpace

// ResolveAlias returns the room a local alias maps to (404 M_NOT_FOUND when
// there is none; remote aliases need federation).
func (s *Service) ResolveAlias(ctx context.Context, alias string) (string, error) {
	roomID, err := s.store.GetAlias(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) {
		return "", errNotFound("Room alias " + alias + " not found")
	}
	return roomID, err
}
