package rooms

import (
	"context"
	"fmt"
	"strings"

	"github.com/sluice-im/sluice/internal/modhost"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/module"
)

// The module API's room helpers (Synapse's create_and_send_event_into_room,
// update_room_membership, get_room_state, create_room). Module-sent events
// go through check_event_allowed and, for non-membership events,
// check_event_for_spam, like a client's.

func (s *Service) localSender(sender string) error {
	if !strings.HasSuffix(sender, ":"+s.opts.ServerName) || !strings.HasPrefix(sender, "@") {
		return fmt.Errorf("rooms: sender %q is not a local user", sender)
	}
	return nil
}

// ModuleSendEvent sends a non-membership event described by a dict with
// type, room_id, sender, content and, for state events, state_key.
func (s *Service) ModuleSendEvent(ctx context.Context, dict map[string]any) (module.Event, error) {
	typ, _ := dict["type"].(string)
	roomID, _ := dict["room_id"].(string)
	sender, _ := dict["sender"].(string)
	content, _ := dict["content"].(map[string]any)
	if typ == "" || roomID == "" || sender == "" || content == nil {
		return nil, fmt.Errorf("rooms: the event needs type, room_id, sender and content")
	}
	if typ == "m.room.member" {
		return nil, fmt.Errorf("rooms: use UpdateRoomMembership for membership events")
	}
	if err := s.localSender(sender); err != nil {
		return nil, err
	}
	var sk *string
	if v, ok := dict["state_key"].(string); ok {
		sk = &v
	}
	unlock := s.lock(roomID)
	defer unlock()
	rs, err := s.writerRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	e, err := s.send(ctx, rs, draft{typ: typ, stateKey: sk, sender: sender, content: content, spamCheck: true})
	if err != nil {
		return nil, err
	}
	return modhost.EventView(e), nil
}

// ModuleUpdateMembership changes a membership as sender (a local user).
func (s *Service) ModuleUpdateMembership(ctx context.Context, sender, target, roomID, membership string, content map[string]any) (module.Event, error) {
	if err := s.localSender(sender); err != nil {
		return nil, err
	}
	c := map[string]any{}
	for k, v := range content {
		c[k] = v
	}
	c["membership"] = membership
	id, err := s.changeMembership(ctx, membershipChange{req: module.Requester{UserID: sender}, roomID: roomID, target: target, membership: membership, content: c})
	if err != nil {
		return nil, err
	}
	evs, err := s.events(ctx, mustVersionOf(s, ctx, roomID), []string{id})
	if err != nil {
		return nil, err
	}
	return modhost.EventView(evs[id]), nil
}

func mustVersionOf(s *Service, ctx context.Context, roomID string) *event.Version {
	if room, err := s.store.GetRoom(ctx, roomID); err == nil {
		if v, ok := event.LookupVersion(room.Version); ok {
			return v
		}
	}
	v, _ := event.LookupVersion(event.DefaultVersion)
	return v
}

// ModuleRoomState returns a room's current state.
func (s *Service) ModuleRoomState(ctx context.Context, roomID string) (module.StateMap, error) {
	rs, err := s.loadRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	out := make(module.StateMap, len(rs.state))
	for k, e := range rs.state {
		out[module.StateKey{Type: k.Type, StateKey: k.StateKey}] = modhost.EventView(e)
	}
	return out, nil
}

// ModuleCreateRoom creates a room as a local user.
func (s *Service) ModuleCreateRoom(ctx context.Context, userID string, config map[string]any) (string, error) {
	if err := s.localSender(userID); err != nil {
		return "", err
	}
	if config == nil {
		config = map[string]any{}
	}
	return s.CreateRoom(ctx, module.Requester{UserID: userID}, deepCopyJSON(config))
}
