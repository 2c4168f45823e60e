package server

import (
	"context"

	"github.com/sluice-im/sluice/internal/profiles"
	"github.com/sluice-im/sluice/internal/ratelimit"
	"github.com/sluice-im/sluice/internal/userdir"
	"github.com/sluice-im/sluice/module"
)

// newProfileServices builds the profile service and the user directory
// from the configuration.
func (s *Server) newProfileServices() {
	s.profiles = profiles.New(profiles.Options{
		ServerName:         s.cfg.ServerName,
		LimitToSharedRooms: s.cfg.LimitProfileRequestsToUsersWhoShareRooms,
		Logger:             s.log.With("component", "profiles"),
	}, s.store, s.host, s.rooms)
	s.userdir = userdir.New(userdir.Options{
		Enabled:        s.cfg.UserDirectory.SearchEnabled(),
		SearchAllUsers: s.cfg.UserDirectory.SearchAllUsers,
		Limiter:        ratelimit.New(*s.cfg.RCUserDirectory),
		Logger:         s.log.With("component", "userdir"),
	}, s.store, s.host)
}

// The module API's profile helpers (modhost.ProfileServices).

func (v services) ModuleGetProfile(ctx context.Context, userID string) (module.ProfileInfo, error) {
	return v.profiles.GetProfileInfo(ctx, userID)
}

func (v services) ModuleSetProfileField(ctx context.Context, userID, field, value string) error {
	return v.profiles.SetByModule(ctx, userID, field, value)
}
