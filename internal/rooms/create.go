package rooms

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/mx/id"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// presets are Synapse's createRoom presets.
var presets = map[string]struct {
	joinRule       string
	history        string
	guestCanJoin   bool
	inviteesAreOps bool
	inviteLevel    int64
}{
	"private_chat":         {"invite", "shared", true, false, 0},
	"trusted_private_chat": {"invite", "shared", true, true, 0},
	"public_chat":          {"public", "shared", false, false, 50},
}

func badJSON(msg string) *httpx.Error {
	return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", msg)
}

// CreateRoom is POST /createRoom: on_create_room (which may change the
// request), user_may_create_room, then the initial events in the spec's
// order, then the invites.
func (s *Service) CreateRoom(ctx context.Context, req module.Requester, body map[string]any) (string, error) {
	admin, err := s.isAdmin(ctx, req.UserID)
	if err != nil {
		return "", err
	}
	if err := s.hooks.OnCreateRoom(ctx, req, body, admin); err != nil {
		return "", err
	}
	cfg, err := parseCreateRoom(body, s.opts.DefaultVersion, s.opts.ServerName)
	if err != nil {
		return "", err
	}
	version, ok := event.LookupVersion(cfg.roomVersion)
	if !ok {
		return "", httpx.NewError(http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "Your homeserver does not support this room version")
	}
	if !admin {
		d, err := s.hooks.UserMayCreateRoom(ctx, req.UserID, deepCopyJSON(body))
		if err != nil {
			return "", err
		}
		if !d.Allowed() {
			return "", callSiteRejection(http.StatusForbidden, "You are not permitted to create rooms", d)
		}
	}
	if cfg.alias != "" {
		if _, err := s.store.GetAlias(ctx, cfg.alias); err == nil {
			return "", httpx.NewError(http.StatusBadRequest, "M_ROOM_IN_USE", "Room alias already taken")
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
	}
	roomID := s.newRoomID()
	if err := s.store.CreateRoom(ctx, storage.Room{RoomID: roomID, Version: version.ID, Creator: req.UserID, CreatedTS: s.now().UnixMilli()}); err != nil {
		return "", err
	}
	// Synapse's order: the visibility check, publishing, then the alias,
	// all before the room's first event.
	if !s.hooks.CheckVisibilityCanBeModified(ctx, roomID, map[event.StateTuple]*event.Event{}, cfg.visibility) {
		return "", httpx.NewError(http.StatusForbidden, "M_UNKNOWN", "Room visibility value not allowed.")
	}
	if cfg.visibility == "public" && s.publicationAllowed(req.UserID, roomID, cfg.alias) {
		if err := s.store.SetRoomPublished(ctx, roomID, true, s.now().UnixMilli()); err != nil {
			return "", err
		}
	}
	if cfg.alias != "" {
		d, err := s.hooks.UserMayCreateRoomAlias(ctx, req.UserID, cfg.alias)
		if err != nil {
			return "", err
		}
		if !d.Allowed() {
			return "", callSiteRejection(http.StatusForbidden, "This user is not permitted to create this alias", d)
		}
		if err := s.store.CreateAlias(ctx, cfg.alias, roomID, req.UserID, s.now().UnixMilli()); errors.Is(err, storage.ErrAliasExists) {
			return "", httpx.NewError(http.StatusBadRequest, "M_ROOM_IN_USE", "Room alias already taken")
		} else if err != nil {
			return "", err
		}
	}
	unlock := s.lock(roomID)
	rs := &roomState{room: storage.Room{RoomID: roomID, Version: version.ID}, version: version, state: map[event.StateTuple]*event.Event{}}
	sendState := func(typ, key string, content map[string]any) error {
		k := key
		_, err := s.send(ctx, rs, draft{typ: typ, stateKey: &k, sender: req.UserID, content: content})
		return err
	}
	err = func() error {
		create := map[string]any{}
		for k, v := range cfg.creationContent {
			create[k] = v
		}
		create["room_version"] = version.ID
		if !version.V11CreateSender {
			create["creator"] = req.UserID
		}
		if err := sendState("m.room.create", "", create); err != nil {
			return err
		}
		join := map[string]any{"membership": "join"}
		if err := s.memberProfile(ctx, req, req.UserID, "join", join); err != nil {
			return err
		}
		if err := sendState("m.room.member", req.UserID, join); err != nil {
			return err
		}
		// Power levels given in initial_state are used as they are (Synapse
		// then ignores power_level_content_override); otherwise the
		// defaults with the override merged in.
		pl, hasPL := cfg.initialState[event.StateTuple{Type: "m.room.power_levels"}]
		if !hasPL {
			pl = defaultPowerLevels(req.UserID, cfg)
			for k, v := range cfg.plOverride {
				pl[k] = v
			}
		}
		if err := sendState("m.room.power_levels", "", pl); err != nil {
			return err
		}
		if cfg.alias != "" {
			if _, ok := cfg.initialState[event.StateTuple{Type: "m.room.canonical_alias"}]; !ok {
				if err := sendState("m.room.canonical_alias", "", map[string]any{"alias": cfg.alias}); err != nil {
					return err
				}
			}
		}
		p := presets[cfg.preset]
		if _, ok := cfg.initialState[event.StateTuple{Type: "m.room.join_rules"}]; !ok {
			if err := sendState("m.room.join_rules", "", map[string]any{"join_rule": p.joinRule}); err != nil {
				return err
			}
		}
		if _, ok := cfg.initialState[event.StateTuple{Type: "m.room.history_visibility"}]; !ok {
			if err := sendState("m.room.history_visibility", "", map[string]any{"history_visibility": p.history}); err != nil {
				return err
			}
		}
		if p.guestCanJoin {
			if _, ok := cfg.initialState[event.StateTuple{Type: "m.room.guest_access"}]; !ok {
				if err := sendState("m.room.guest_access", "", map[string]any{"guest_access": "can_join"}); err != nil {
					return err
				}
			}
		}
		for _, st := range cfg.initialOrder {
			if st.Type == "m.room.power_levels" && st.StateKey == "" {
				continue
			}
			if err := sendState(st.Type, st.StateKey, cfg.initialState[st]); err != nil {
				return err
			}
		}
		if cfg.name != nil {
			if err := sendState("m.room.name", "", map[string]any{"name": *cfg.name}); err != nil {
				return err
			}
		}
		if cfg.topic != nil {
			if err := sendState("m.room.topic", "", map[string]any{"topic": *cfg.topic,
				"m.topic": map[string]any{"m.text": []any{map[string]any{"body": *cfg.topic}}}}); err != nil {
				return err
			}
		}
		return nil
	}()
	if err == nil {
		s.keepCurrent(roomID, rs)
	}
	unlock()
	if err != nil {
		return "", err
	}
	if req.ShadowBanned && len(cfg.invite) > 0 {
		// The room is made; the invites are silently dropped.
		return roomID, s.shadowBanDelay(ctx)
	}
	for _, invitee := range cfg.invite {
		content := map[string]any{"membership": "invite"}
		if cfg.isDirect {
			content["is_direct"] = true
		}
		if _, err := s.changeMembership(ctx, membershipChange{req: req, roomID: roomID, target: invitee, membership: "invite", content: content}); err != nil {
			return "", err
		}
	}
	return roomID, nil
}

type createConfig struct {
	preset          string
	visibility      string // "public" or "private"
	alias           string // full alias from room_alias_name, "" if none
	roomVersion     string
	name, topic     *string
	invite          []string
	isDirect        bool
	creationContent map[string]any
	initialState    map[event.StateTuple]map[string]any
	initialOrder    []event.StateTuple
	plOverride      map[string]any
}

func parseCreateRoom(body map[string]any, defaultVersion, serverName string) (*createConfig, error) {
	c := &createConfig{roomVersion: defaultVersion, initialState: map[event.StateTuple]map[string]any{}}
	str := func(key string) (*string, error) {
		v, ok := body[key]
		if !ok || v == nil {
			return nil, nil
		}
		s, ok := v.(string)
		if !ok {
			return nil, badJSON(key + " must be a string")
		}
		return &s, nil
	}
	visibility, err := str("visibility")
	if err != nil {
		return nil, err
	}
	if visibility != nil && *visibility != "public" && *visibility != "private" {
		return nil, badJSON(`visibility must be "public" or "private"`)
	}
	c.visibility = "private"
	if visibility != nil {
		c.visibility = *visibility
	}
	preset, err := str("preset")
	if err != nil {
		return nil, err
	}
	c.preset = "private_chat"
	if c.visibility == "public" {
		c.preset = "public_chat"
	}
	if preset != nil {
		if _, ok := presets[*preset]; !ok {
			return nil, badJSON("Unknown preset " + *preset)
		}
		c.preset = *preset
	}
	if name, err := str("room_alias_name"); err != nil {
		return nil, err
	} else if name != nil {
		if strings.ContainsAny(*name, " \t\n\r\v\f") {
			return nil, httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid characters in room alias")
		}
		if strings.Contains(*name, ":") {
			return nil, httpx.NewError(http.StatusBadRequest, "M_UNKNOWN",
				"':' is not permitted in the room alias name. Please note this expects a local part — 'wombat', not '#wombat:example.com'.")
		}
		alias := "#" + *name + ":" + serverName
		if _, err := id.ParseRoomAlias(alias); err != nil {
			return nil, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid room alias: "+err.Error())
		}
		c.alias = alias
	}
	if v, err := str("room_version"); err != nil {
		return nil, err
	} else if v != nil {
		c.roomVersion = *v
	}
	if c.name, err = str("name"); err != nil {
		return nil, err
	}
	if c.topic, err = str("topic"); err != nil {
		return nil, err
	}
	if v, ok := body["is_direct"]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			return nil, badJSON("is_direct must be a boolean")
		}
		c.isDirect = b
	}
	if v, ok := body["invite"]; ok && v != nil {
		list, isList := v.([]any)
		if !isList {
			return nil, badJSON("invite must be a list of user IDs")
		}
		for _, x := range list {
			u, isStr := x.(string)
			if !isStr {
				return nil, badJSON("invite must be a list of user IDs")
			}
			if _, err := id.ParseUserID(u); err != nil {
				return nil, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid user_id: "+u)
			}
			c.invite = append(c.invite, u)
		}
	}
	if v, ok := body["invite_3pid"]; ok && v != nil {
		if list, _ := v.([]any); len(list) > 0 {
			return nil, httpx.NewError(http.StatusBadRequest, "M_UNRECOGNIZED", "invite_3pid is not supported: this server has no identity server")
		}
	}
	obj := func(key string) (map[string]any, error) {
		v, ok := body[key]
		if !ok || v == nil {
			return nil, nil
		}
		m, isObj := v.(map[string]any)
		if !isObj {
			return nil, badJSON(key + " must be an object")
		}
		return m, nil
	}
	if c.creationContent, err = obj("creation_content"); err != nil {
		return nil, err
	}
	if c.plOverride, err = obj("power_level_content_override"); err != nil {
		return nil, err
	}
	if v, ok := body["initial_state"]; ok && v != nil {
		list, isList := v.([]any)
		if !isList {
			return nil, badJSON("initial_state must be a list")
		}
		for _, x := range list {
			m, _ := x.(map[string]any)
			typ, ok1 := m["type"].(string)
			content, ok2 := m["content"].(map[string]any)
			sk := ""
			if v, present := m["state_key"]; present {
				s, isStr := v.(string)
				if !isStr {
					return nil, badJSON("initial_state: state_key must be a string")
				}
				sk = s
			}
			if !ok1 || !ok2 {
				return nil, badJSON("initial_state entries need a type and a content object")
			}
			st := event.StateTuple{Type: typ, StateKey: sk}
			if _, dup := c.initialState[st]; !dup {
				c.initialOrder = append(c.initialOrder, st)
			}
			c.initialState[st] = content // a later entry for the same key wins
		}
	}
	return c, nil
}

// defaultPowerLevels are Synapse's for a new room.
func defaultPowerLevels(creator string, c *createConfig) map[string]any {
	users := map[string]any{creator: int64(100)}
	if presets[c.preset].inviteesAreOps {
		for _, u := range c.invite {
			users[u] = int64(100)
		}
	}
	return map[string]any{
		"users":         users,
		"users_default": int64(0),
		"events": map[string]any{
			"m.room.name": int64(50), "m.room.power_levels": int64(100), "m.room.history_visibility": int64(100),
			"m.room.canonical_alias": int64(50), "m.room.avatar": int64(50), "m.room.tombstone": int64(100),
			"m.room.server_acl": int64(100), "m.room.encryption": int64(100),
		},
		"events_default": int64(0),
		"state_default":  int64(50),
		"ban":            int64(50),
		"kick":           int64(50),
		"redact":         int64(50),
		"invite":         presets[c.preset].inviteLevel,
		"historical":     int64(100),
	}
}
