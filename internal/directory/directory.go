// Package directory is the room directory service: room aliases (create,
// resolve, delete, list a room's), and the public room list (what it shows,
// who may publish a room to it). It calls the store, the room service for
// room state and canonical alias updates, and the module host at Synapse's
// call sites: user_may_create_room_alias, user_may_publish_room and
// check_visibility_can_be_modified.
package directory

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/authrules"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/mx/id"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// Hooks are the module callbacks the directory invokes (the module host).
type Hooks interface {
	UserMayCreateRoomAlias(ctx context.Context, userID, alias string) (module.Decision, error)
	UserMayPublishRoom(ctx context.Context, userID, roomID string) (module.Decision, error)
	CheckVisibilityCanBeModified(ctx context.Context, roomID string, state map[event.StateTuple]*event.Event, visibility string) bool
}

// Rooms is what the directory needs of the room service.
type Rooms interface {
	// CurrentState is a room's current state; a 404 *httpx.Error when the
	// room is unknown.
	CurrentState(ctx context.Context, roomID string) (map[event.StateTuple]*event.Event, error)
	// RemoveCanonicalAlias takes an alias out of the room's
	// m.room.canonical_alias event, as the requester.
	RemoveCanonicalAlias(ctx context.Context, req module.Requester, roomID, alias string) error
}

// Users tells the directory about local accounts.
type Users interface {
	GetUserInfo(ctx context.Context, userID string) (module.UserInfo, error)
}

// Options configure the service; the zero value of the booleans is not
// Synapse's default for all of them: the server fills them from the
// configuration.
type Options struct {
	ServerName string
	// AllowPublicRoomsWithoutAuth lets GET /publicRooms answer without an
	// access token (allow_public_rooms_without_auth).
	AllowPublicRoomsWithoutAuth bool
	// RequireMembershipForAliases: only members (and server admins) may
	// give a room an alias (require_membership_for_aliases).
	RequireMembershipForAliases bool
	// EnableRoomListSearch: the public room list is served and rooms may be
	// published (enable_room_list_search).
	EnableRoomListSearch bool
	// AliasCreationRules and RoomListPublicationRules are the checked
	// rules of the configuration.
	AliasCreationRules       []config.DirectoryRule
	RoomListPublicationRules []config.DirectoryRule
	Logger                   *slog.Logger
}

// Service is the directory service.
type Service struct {
	opts  Options
	store storage.Store
	rooms Rooms
	hooks Hooks
	users Users
	log   *slog.Logger
	now   func() time.Time
}

// New makes the directory service.
func New(o Options, store storage.Store, rooms Rooms, hooks Hooks, users Users) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{opts: o, store: store, rooms: rooms, hooks: hooks, users: users, log: o.Logger, now: time.Now}
}

// AllowPublicRoomsWithoutAuth is allow_public_rooms_without_auth.
func (s *Service) AllowPublicRoomsWithoutAuth() bool { return s.opts.AllowPublicRoomsWithoutAuth }

// ServerName is the local server name.
func (s *Service) ServerName() string { return s.opts.ServerName }

func forbidden(msg string) *httpx.Error {
	return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", msg)
}

func badRequest(msg string) *httpx.Error {
	return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", msg)
}

// rejection is a module's refusal: the call site's message with the
// module's errcode and extra fields.
func rejection(msg string, d module.Decision) *httpx.Error {
	return &httpx.Error{Status: http.StatusForbidden, Code: d.Code(), Message: msg, Extra: d.Extra()}
}

// ValidAlias is Synapse's RoomAlias.is_valid: "#", a localpart without ':'
// and a valid server name. Unlike id.ParseRoomAlias it does not limit the
// length (creating an alias does, with its own error). A NUL byte or
// invalid UTF-8 makes it invalid too.
func ValidAlias(alias string) bool {
	if !strings.HasPrefix(alias, "#") || !utf8.ValidString(alias) || strings.IndexByte(alias, 0) >= 0 {
		return false
	}
	i := strings.IndexByte(alias, ':')
	if i < 0 {
		return false
	}
	_, err := id.ParseServerName(alias[i+1:])
	return err == nil
}

// errInvalidAlias is the answer to a malformed {roomAlias}.
func errInvalidAlias() *httpx.Error {
	return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Room alias invalid")
}

func (s *Service) isLocal(alias string) bool {
	i := strings.IndexByte(alias, ':')
	return i >= 0 && alias[i+1:] == s.opts.ServerName
}

func (s *Service) isAdmin(ctx context.Context, userID string) (bool, error) {
	info, err := s.users.GetUserInfo(ctx, userID)
	if errors.Is(err, module.ErrNotFound) {
		return false, nil
	}
	return info.IsAdmin, err
}

// state reads a room's current state; nil (no error) for an unknown room.
func (s *Service) state(ctx context.Context, roomID string) (map[event.StateTuple]*event.Event, error) {
	st, err := s.rooms.CurrentState(ctx, roomID)
	var he *httpx.Error
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return nil, nil
	}
	return st, err
}

func membership(state map[event.StateTuple]*event.Event, userID string) string {
	if e := state[event.StateTuple{Type: "m.room.member", StateKey: userID}]; e != nil {
		return e.Membership()
	}
	return ""
}

// canChangeRoomList is Synapse's check_can_change_room_list: a server
// admin may; anyone else must be joined (403 otherwise) and have the power
// to send m.room.canonical_alias.
func (s *Service) canChangeRoomList(ctx context.Context, roomID, userID string) (bool, error) {
	admin, err := s.isAdmin(ctx, userID)
	if err != nil || admin {
		return admin, err
	}
	state, err := s.state(ctx, roomID)
	if err != nil {
		return false, err
	}
	if membership(state, userID) != "join" {
		return false, forbidden("User " + userID + " not in room " + roomID)
	}
	pl := authrules.PowerLevelsFromState(authrules.StateMap(state))
	return pl.UserLevel(userID) >= pl.EventLevel("m.room.canonical_alias", true), nil
}

// CheckRoomForAlias is the first check of PUT /directory/room, made before
// the request is authenticated, as in Synapse: the room must exist (400).
func (s *Service) CheckRoomForAlias(ctx context.Context, roomID string) error {
	if _, err := s.store.GetRoom(ctx, roomID); errors.Is(err, storage.ErrNotFound) {
		return badRequest("Room does not exist")
	} else if err != nil {
		return err
	}
	return nil
}

// CreateAlias maps a local alias to a room (PUT /directory/room), with
// Synapse's checks in its order: the length, membership (unless a server
// admin or require_membership_for_aliases is off), user_may_create_room_alias
// (asked for admins too), alias_creation_rules, the localpart's characters,
// that the alias is local, that the room has joined members (or servers
// were given), and that the alias is free (409).
func (s *Service) CreateAlias(ctx context.Context, req module.Requester, alias, roomID string, servers []string) error {
	if utf8.RuneCountInString(alias) > id.MaxLength {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Can't create aliases longer than 255 characters")
	}
	admin, err := s.isAdmin(ctx, req.UserID)
	if err != nil {
		return err
	}
	state, err := s.state(ctx, roomID)
	if err != nil {
		return err
	}
	if s.opts.RequireMembershipForAliases && !admin && membership(state, req.UserID) != "join" {
		return forbidden("You must be in the room to create an alias for it")
	}
	d, err := s.hooks.UserMayCreateRoomAlias(ctx, req.UserID, alias)
	if err != nil {
		return err
	}
	if !d.Allowed() {
		return rejection("This user is not permitted to create this alias", d)
	}
	if !config.DirectoryAllowed(s.opts.AliasCreationRules, req.UserID, roomID, []string{alias}) {
		return httpx.NewError(http.StatusForbidden, "M_UNKNOWN", "Not allowed to create alias")
	}
	local := alias[1:strings.IndexByte(alias, ':')]
	if strings.ContainsAny(local, " \t\n\r\v\f") {
		return badRequest("Invalid characters in room alias")
	}
	if !s.isLocal(alias) {
		return badRequest("Room alias must be local")
	}
	if len(servers) == 0 {
		joined := false
		for k, e := range state {
			if k.Type == "m.room.member" && e.Membership() == "join" {
				joined = true
				break
			}
		}
		if !joined {
			return badRequest("Failed to get server list")
		}
	}
	err = s.store.CreateAlias(ctx, alias, roomID, req.UserID, s.now().UnixMilli())
	if errors.Is(err, storage.ErrAliasExists) {
		return httpx.NewError(http.StatusConflict, "M_UNKNOWN", "Room alias "+alias+" already exists")
	}
	return err
}

// Resolve is GET /directory/room: the room a local alias maps to and the
// servers to join it through (this server: Sluice does not federate yet, so
// a remote alias is not found either).
func (s *Service) Resolve(ctx context.Context, alias string) (string, []string, error) {
	notFound := httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "Room alias "+alias+" not found")
	if !s.isLocal(alias) {
		return "", nil, notFound
	}
	roomID, err := s.store.GetAlias(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil, notFound
	}
	if err != nil {
		return "", nil, err
	}
	return roomID, []string{s.opts.ServerName}, nil
}

// DeleteAlias is DELETE /directory/room: the alias's creator, a server
// admin, or a member with the power to send m.room.canonical_alias may
// delete it. The alias is then taken out of the room's canonical alias
// event as the requester; when that fails for lack of rights (403), or
// the requester is shadow-banned, the event is left alone and the deletion
// still succeeds, as in Synapse.
func (s *Service) DeleteAlias(ctx context.Context, req module.Requester, alias string) error {
	unknown := httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "Unknown room alias")
	entry, err := s.store.GetAliasEntry(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) {
		return unknown
	}
	if err != nil {
		return err
	}
	if entry.Creator != req.UserID {
		ok, err := s.canChangeRoomList(ctx, entry.RoomID, req.UserID)
		if err != nil {
			return err
		}
		if !ok {
			return forbidden("You don't have permission to delete the alias.")
		}
	}
	roomID, err := s.store.DeleteAlias(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) {
		return unknown // deleted by someone else meanwhile
	}
	if err != nil {
		return err
	}
	if req.ShadowBanned {
		s.log.Info("not updating the canonical alias event: the user is shadow-banned", "user", req.UserID, "alias", alias)
		return nil
	}
	err = s.rooms.RemoveCanonicalAlias(ctx, req, roomID, alias)
	var he *httpx.Error
	if errors.As(err, &he) && he.Status == http.StatusForbidden {
		s.log.Info("failed to update the canonical alias event", "user", req.UserID, "alias", alias, "err", err)
		return nil
	}
	return err
}

// RoomAliases is GET /rooms/{roomId}/aliases: the local aliases of a room,
// for a server admin, a joined member, or anyone when the room's history
// is world_readable.
func (s *Service) RoomAliases(ctx context.Context, req module.Requester, roomID string) ([]string, error) {
	admin, err := s.isAdmin(ctx, req.UserID)
	if err != nil {
		return nil, err
	}
	if !admin {
		state, err := s.state(ctx, roomID)
		if err != nil {
			return nil, err
		}
		if membership(state, req.UserID) != "join" {
			hv := state[event.StateTuple{Type: "m.room.history_visibility"}]
			if hv == nil || hv.ContentString("history_visibility") != "world_readable" {
				return nil, forbidden("User " + req.UserID + " not in room " + roomID + ", and room previews are disabled")
			}
		}
	}
	return s.store.AliasesForRoom(ctx, roomID)
}

// Visibility is GET /directory/list/room: "public" or "private"; 404 for
// an unknown room.
func (s *Service) Visibility(ctx context.Context, roomID string) (string, error) {
	if _, err := s.store.GetRoom(ctx, roomID); errors.Is(err, storage.ErrNotFound) {
		return "", httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "Unknown room")
	} else if err != nil {
		return "", err
	}
	pub, err := s.store.IsRoomPublished(ctx, roomID)
	if err != nil {
		return "", err
	}
	if pub {
		return "public", nil
	}
	return "private", nil
}

// SetVisibility is PUT /directory/list/room, Synapse's
// edit_published_room_list in its order: user_may_publish_room (for both
// visibilities, admins asked too), guests refused, publishing refused when
// the room list is disabled, the room must exist (400), the requester must
// be able to change the room list (check_can_change_room_list); making a
// room public then also needs room_list_publication_rules and
// check_visibility_can_be_modified.
func (s *Service) SetVisibility(ctx context.Context, req module.Requester, roomID, visibility string) error {
	d, err := s.hooks.UserMayPublishRoom(ctx, req.UserID, roomID)
	if err != nil {
		return err
	}
	if !d.Allowed() {
		return rejection("This user is not permitted to publish rooms to the room list", d)
	}
	if req.IsGuest {
		return forbidden("Guests cannot edit the published room list")
	}
	public := visibility == "public"
	if public && !s.opts.EnableRoomListSearch {
		return forbidden("This user is not permitted to publish rooms to the room list")
	}
	if _, err := s.store.GetRoom(ctx, roomID); errors.Is(err, storage.ErrNotFound) {
		return badRequest("Unknown room")
	} else if err != nil {
		return err
	}
	ok, err := s.canChangeRoomList(ctx, roomID, req.UserID)
	if err != nil {
		return err
	}
	if !ok {
		return forbidden("This server requires you to be a moderator in the room to edit its room list entry")
	}
	if public {
		state, err := s.state(ctx, roomID)
		if err != nil {
			return err
		}
		aliases, err := s.store.AliasesForRoom(ctx, roomID)
		if err != nil {
			return err
		}
		if ca := state[event.StateTuple{Type: "m.room.canonical_alias"}]; ca != nil {
			if a := ca.ContentString("alias"); a != "" {
				aliases = append(aliases, a)
			}
		}
		if !config.DirectoryAllowed(s.opts.RoomListPublicationRules, req.UserID, roomID, aliases) {
			return httpx.NewError(http.StatusForbidden, "M_UNKNOWN", "Not allowed to publish room")
		}
		if state == nil {
			state = map[event.StateTuple]*event.Event{}
		}
		if !s.hooks.CheckVisibilityCanBeModified(ctx, roomID, state, visibility) {
			return httpx.NewError(http.StatusForbidden, "M_UNKNOWN", "Not allowed to publish room")
		}
	}
	return s.store.SetRoomPublished(ctx, roomID, public, s.now().UnixMilli())
}
