// Package profiles is the profile service: users' global display names and
// avatar URLs, their propagation into the member events of the rooms a user
// is in, and the on_profile_update callback, following Synapse's
// ProfileHandler.
package profiles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/id"
	"github.com/sluice-im/sluice/internal/rooms"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// Profile fields.
const (
	DisplayName = "displayname"
	AvatarURL   = "avatar_url"
)

// Hooks are the module callbacks the service invokes (the module host).
type Hooks interface {
	OnProfileUpdate(ctx context.Context, userID string, p module.ProfileInfo, byAdmin, deactivation bool)
}

// Rooms sends the member events that carry a new profile into rooms.
type Rooms interface {
	UpdateJoinStates(ctx context.Context, req module.Requester) error
}

// Options configure the service.
type Options struct {
	ServerName string
	// LimitToSharedRooms is limit_profile_requests_to_users_who_share_rooms:
	// an authenticated requester may only read the profiles of users they
	// share a room with (Synapse's MSC1301).
	LimitToSharedRooms bool
	Logger             *slog.Logger
}

// Service is the profile service.
type Service struct {
	opts  Options
	store storage.Store
	hooks Hooks
	rooms Rooms
	log   *slog.Logger
	// updates serialises one user's propagations (user ID -> *sync.Mutex),
	// so that the last change is the one the rooms end up with.
	updates sync.Map
}

// New makes the profile service.
func New(o Options, store storage.Store, hooks Hooks, rs Rooms) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{opts: o, store: store, hooks: hooks, rooms: rs, log: o.Logger}
}

func (s *Service) isMine(userID string) bool {
	return strings.HasSuffix(userID, ":"+s.opts.ServerName) && strings.HasPrefix(userID, "@") &&
		strings.IndexByte(userID, ':') == len(userID)-len(s.opts.ServerName)-1
}

// ValidUserID is Synapse's UserID.is_valid check of a path's user ID: 400
// M_INVALID_PARAM "Invalid user id".
func ValidUserID(userID string) error {
	if _, err := id.ParseUserID(userID); err != nil {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid user id")
	}
	return nil
}

func errProfileNotFound() error {
	return httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "Profile was not found")
}

// errRemote is what Synapse answers when it cannot reach a remote user's
// server for their profile; without federation, that is every remote user.
func errRemote() error {
	return httpx.NewError(http.StatusBadGateway, "M_UNKNOWN", "Failed to fetch profile")
}

// CheckQueryAllowed is Synapse's check_profile_query_allowed: with
// LimitToSharedRooms, an authenticated requester ("" for none) may only read
// their own profile and those of users they share a room with (403
// M_FORBIDDEN "Profile isn't available").
func (s *Service) CheckQueryAllowed(ctx context.Context, target, requester string) error {
	if !s.opts.LimitToSharedRooms || requester == "" || requester == target {
		return nil
	}
	ok, err := s.store.ShareARoom(ctx, requester, target)
	if err != nil {
		return err
	}
	if !ok {
		return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Profile isn't available")
	}
	return nil
}

// Profile is GET /profile/{userId}: the fields that are set; 404 when the
// user has no profile or neither field is set.
func (s *Service) Profile(ctx context.Context, target string) (map[string]any, error) {
	if !s.isMine(target) {
		return nil, errRemote()
	}
	p, err := s.store.GetProfile(ctx, target)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && p.DisplayName == nil && p.AvatarURL == nil) {
		return nil, errProfileNotFound()
	}
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if p.DisplayName != nil {
		out[DisplayName] = *p.DisplayName
	}
	if p.AvatarURL != nil {
		out[AvatarURL] = *p.AvatarURL
	}
	return out, nil
}

// Field is GET /profile/{userId}/displayname or /avatar_url: the value, or
// nil when the user has a profile without it (Synapse answers null); 404
// when the user has no profile.
func (s *Service) Field(ctx context.Context, target, field string) (*string, error) {
	if !s.isMine(target) {
		return nil, errRemote()
	}
	p, err := s.store.GetProfile(ctx, target)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errProfileNotFound()
	}
	if err != nil {
		return nil, err
	}
	if field == AvatarURL {
		return p.AvatarURL, nil
	}
	return p.DisplayName, nil
}

// GetProfileInfo is the module API's get_profile_for_user: the profile of a
// local user, empty when they have none.
func (s *Service) GetProfileInfo(ctx context.Context, userID string) (module.ProfileInfo, error) {
	p, err := s.store.GetProfile(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return module.ProfileInfo{}, nil
	}
	if err != nil {
		return module.ProfileInfo{}, err
	}
	return info(p), nil
}

func info(p storage.Profile) module.ProfileInfo {
	var out module.ProfileInfo
	if p.DisplayName != nil {
		out.DisplayName = *p.DisplayName
	}
	if p.AvatarURL != nil {
		out.AvatarURL = *p.AvatarURL
	}
	return out
}

// SetParams is a change of one profile field.
type SetParams struct {
	Requester module.Requester
	// ByAdmin: the requester is a server admin (Synapse passes the
	// requester's admin flag, also when they change their own profile).
	ByAdmin bool
	Target  string
	Field   string // DisplayName or AvatarURL
	// Value is the JSON value the client sent.
	Value any
}

// Set is PUT /profile/{userId}/displayname or /avatar_url, Synapse's
// set_displayname and set_avatar_url: checks in Synapse's order and with
// its errors, then the store, then on_profile_update (never failing the
// request), then the new member events in the target's rooms, sent as the
// target (nothing is sent for a shadow-banned requester changing their own
// profile).
func (s *Service) Set(ctx context.Context, p SetParams) error {
	if !s.isMine(p.Target) {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "User is not hosted on this homeserver")
	}
	if !p.ByAdmin && p.Target != p.Requester.UserID {
		return httpx.NewError(http.StatusBadRequest, "M_FORBIDDEN", "Cannot set another user's "+p.Field)
	}
	v, ok := p.Value.(string)
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", fmt.Sprintf("'%s' must be a string", p.Field))
	}
	if strings.IndexByte(v, 0) >= 0 {
		// PostgreSQL cannot store it (Synapse answers 500 there); SQLite
		// would, and copy it into every member event.
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", fmt.Sprintf("'%s' must not contain a NUL character", p.Field))
	}
	var err error
	switch p.Field {
	case DisplayName:
		if utf8.RuneCountInString(v) > rooms.MaxDisplayNameLen {
			return httpx.Errorf(http.StatusBadRequest, "M_UNKNOWN", "Displayname is too long (max %d)", rooms.MaxDisplayNameLen)
		}
		// Synapse strips the name, and clears it only when it was "".
		var set *string
		if v != "" {
			t := strings.TrimSpace(v)
			set = &t
		}
		err = s.store.SetProfileDisplayName(ctx, p.Target, set)
	case AvatarURL:
		if utf8.RuneCountInString(v) > rooms.MaxAvatarURLLen {
			return httpx.Errorf(http.StatusBadRequest, "M_UNKNOWN", "Avatar URL is too long (max %d)", rooms.MaxAvatarURLLen)
		}
		var set *string
		if v != "" {
			set = &v
		}
		err = s.store.SetProfileAvatarURL(ctx, p.Target, set)
	default:
		return fmt.Errorf("profiles: unknown field %q", p.Field)
	}
	if err != nil {
		return err
	}
	// An admin's change is propagated as the target themselves.
	req := p.Requester
	if p.ByAdmin {
		req = module.Requester{UserID: p.Target}
	}
	return s.changed(ctx, req, p.Target, p.ByAdmin)
}

// changed tells the modules and the rooms about a stored change. The
// propagation does not stop when the client goes away.
func (s *Service) changed(ctx context.Context, req module.Requester, target string, byAdmin bool) error {
	ctx = context.WithoutCancel(ctx)
	stored, err := s.store.GetProfile(ctx, target)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	s.hooks.OnProfileUpdate(ctx, target, info(stored), byAdmin, false)
	m, _ := s.updates.LoadOrStore(target, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	defer mu.Unlock()
	return s.rooms.UpdateJoinStates(ctx, req)
}

// SetByModule is the module API's set_displayname (and Sluice's
// set_avatar_url): a change made as a server admin on the user's behalf
// (on_profile_update's by_admin is true, as in Synapse), propagated as the
// user.
func (s *Service) SetByModule(ctx context.Context, userID, field, value string) error {
	if _, err := id.ParseUserID(userID); err != nil || !s.isMine(userID) {
		return fmt.Errorf("profiles: %q is not a local user ID", userID)
	}
	// Errors for the client are *module.Error already (httpx.Error).
	return s.Set(ctx, SetParams{Requester: module.Requester{UserID: userID}, ByAdmin: true, Target: userID, Field: field, Value: value})
}
