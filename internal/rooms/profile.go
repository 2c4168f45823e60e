package rooms

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// Synapse's limits on a profile's fields, in characters.
const (
	MaxDisplayNameLen = 256
	MaxAvatarURLLen   = 1000
)

// memberProfile prepares a membership event's content as Synapse's
// update_membership_locked does: a shadow-banned requester's per-room
// display name and avatar are dropped, over-long ones are refused (400
// M_BAD_JSON), and a join, knock or invite that does not set them gets the
// target's global profile (a local target only; no federation yet).
func (s *Service) memberProfile(ctx context.Context, req module.Requester, target, membership string, content map[string]any) error {
	if req.ShadowBanned {
		delete(content, "displayname")
		delete(content, "avatar_url")
	}
	if v, ok := content["displayname"].(string); ok && utf8.RuneCountInString(v) > MaxDisplayNameLen {
		return httpx.Errorf(http.StatusBadRequest, "M_BAD_JSON", "Displayname is too long (max %d)", MaxDisplayNameLen)
	}
	if v, ok := content["avatar_url"].(string); ok && utf8.RuneCountInString(v) > MaxAvatarURLLen {
		return httpx.Errorf(http.StatusBadRequest, "M_BAD_JSON", "Avatar URL is too long (max %d)", MaxAvatarURLLen)
	}
	switch membership {
	case "join", "knock", "invite":
	default:
		return nil
	}
	_, hasName := content["displayname"]
	_, hasAvatar := content["avatar_url"]
	if (hasName && hasAvatar) || !strings.HasSuffix(target, ":"+s.opts.ServerName) {
		return nil
	}
	p, err := s.store.GetProfile(ctx, target)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		// Synapse logs a failed lookup and goes on without the profile.
		s.log.Info("failed to get profile information", "user_id", target, "err", err)
		return nil
	}
	if !hasName && p.DisplayName != nil {
		content["displayname"] = *p.DisplayName
	}
	if !hasAvatar && p.AvatarURL != nil {
		content["avatar_url"] = *p.AvatarURL
	}
	return nil
}

// UpdateJoinStates sends, into every room the user is joined to, a new
// join event carrying their global profile (Synapse's _update_join_states,
// after a display name or avatar change). Each goes through the membership
// path (user_may_join_room, check_event_allowed, the auth rules), is not
// rate limited, and is skipped when the user's member event already says
// the same. A room that fails is logged and skipped. For a shadow-banned
// requester nothing is sent: they wait Synapse's random delay instead.
func (s *Service) UpdateJoinStates(ctx context.Context, req module.Requester) error {
	if req.ShadowBanned {
		return s.shadowBanDelay(ctx)
	}
	roomIDs, err := s.store.RoomsForUser(ctx, req.UserID, "join")
	if err != nil {
		return err
	}
	for _, roomID := range roomIDs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		content := map[string]any{"membership": "join"}
		if _, err := s.changeMembership(ctx, membershipChange{req: req, roomID: roomID, target: req.UserID, membership: "join", content: content}); err != nil {
			s.log.Warn("failed to update join event", "room_id", roomID, "user_id", req.UserID, "err", err)
		}
	}
	return nil
}
