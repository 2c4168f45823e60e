package rooms

import (
	"context"
	"errors"
	"net/http"
	"reflect"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/mx/id"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// What the directory service (internal/directory) needs of rooms, and
// Synapse's check of m.room.canonical_alias events.

// CurrentState returns a room's current state (read-only: the caller must
// not change it); a 404 M_NOT_FOUND *httpx.Error for an unknown room.
func (s *Service) CurrentState(ctx context.Context, roomID string) (map[event.StateTuple]*event.Event, error) {
	rs, err := s.loadRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	return rs.state, nil
}

// RemoveCanonicalAlias takes a deleted alias out of the room's
// m.room.canonical_alias event (alias and alt_aliases), sending a new event
// as the requester when the alias was in it, as Synapse does after DELETE
// /directory/room. alt_aliases of an unexpected form is left as it is. The
// event goes through the usual checks (check_event_allowed,
// check_event_for_spam, the auth rules) but is not rate limited.
func (s *Service) RemoveCanonicalAlias(ctx context.Context, req module.Requester, roomID, alias string) error {
	unlock := s.lock(roomID)
	defer unlock()
	rs, err := s.writerRoom(ctx, roomID)
	if err != nil {
		return err
	}
	ev := rs.get("m.room.canonical_alias", "")
	if ev == nil {
		return nil
	}
	content := map[string]any{}
	for k, v := range ev.Content() {
		content[k] = v
	}
	changed := false
	if a, _ := content["alias"].(string); a == alias {
		delete(content, "alias")
		changed = true
	}
	if alt, ok := content["alt_aliases"].([]any); ok {
		kept := make([]any, 0, len(alt))
		for _, a := range alt {
			if a != alias {
				kept = append(kept, a)
			}
		}
		if len(kept) != len(alt) {
			changed = true
			if len(kept) > 0 {
				content["alt_aliases"] = kept
			} else {
				delete(content, "alt_aliases")
			}
		}
	}
	if !changed {
		return nil
	}
	key := ""
	_, err = s.send(ctx, rs, draft{typ: "m.room.canonical_alias", stateKey: &key, sender: req.UserID, content: content, spamCheck: true})
	return err
}

// checkCanonicalAlias is Synapse's check of a local m.room.canonical_alias
// event (EventCreationHandler._validate_canonical_alias and its caller):
// an alias or alt_aliases entry that is new against the event it replaces
// must exist and point to this room, else 400 M_BAD_ALIAS; alt_aliases must
// be a list of strings (400 M_INVALID_PARAM).
func (s *Service) checkCanonicalAlias(ctx context.Context, rs *roomState, e *event.Event) error {
	sk, _ := e.StateKey()
	var oldAlias any
	var oldAlt any = []any{}
	if prev := rs.get(e.Type(), sk); prev != nil {
		oldAlias = prev.Content()["alias"]
		if v, ok := prev.Content()["alt_aliases"]; ok {
			oldAlt = v
		}
	}
	content := e.Content()
	if a := content["alias"]; truthy(a) && !reflect.DeepEqual(a, oldAlias) {
		str, isStr := a.(string)
		if !isStr {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "The alias must be of type string.")
		}
		if err := s.aliasPointsTo(ctx, str, e.RoomID()); err != nil {
			return err
		}
	}
	alt, ok := content["alt_aliases"]
	if !ok {
		return nil
	}
	list, isList := alt.([]any)
	if !isList {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "The alt_aliases property must be a list.")
	}
	old, _ := oldAlt.([]any)
	for _, a := range list {
		known := false
		for _, o := range old {
			if reflect.DeepEqual(o, a) {
				known = true
				break
			}
		}
		if known {
			continue
		}
		str, isStr := a.(string)
		if !isStr {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Each alt_alias must be of type string.")
		}
		if err := s.aliasPointsTo(ctx, str, e.RoomID()); err != nil {
			return err
		}
	}
	return nil
}

// aliasPointsTo checks that an alias maps to the room. Remote aliases
// cannot be resolved without federation, so they fail the check too.
func (s *Service) aliasPointsTo(ctx context.Context, alias, roomID string) error {
	bad := httpx.NewError(http.StatusBadRequest, "M_BAD_ALIAS", "Room alias "+alias+" does not point to the room")
	if len(alias) == 0 || alias[0] != '#' {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Expected RoomAlias string to start with '#'")
	}
	a, err := id.ParseRoomAlias(alias)
	if err != nil || a.Server().String() != s.opts.ServerName {
		return bad
	}
	got, err := s.store.GetAlias(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && got != roomID) {
		return bad
	}
	return err
}

// truthy is Python's truth value of a JSON value.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case float64:
		return x != 0
	case int64:
		return x != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// publicationAllowed applies room_list_publication_rules to a room created
// public: when they refuse, the room is created but not published, as in
// Synapse.
func (s *Service) publicationAllowed(userID, roomID, alias string) bool {
	if s.opts.PublicationAllowed == nil {
		return true
	}
	var aliases []string
	if alias != "" {
		aliases = []string{alias}
	}
	return s.opts.PublicationAllowed(userID, roomID, aliases)
}
