package modhost

import (
	"context"
	"errors"

	"github.com/sluice-im/sluice/module"
)

// ProfileServices is what the module API's profile helpers call, beyond
// Services. The server's services implement it.
type ProfileServices interface {
	// ModuleGetProfile returns a local user's profile (empty for a user
	// without one).
	ModuleGetProfile(ctx context.Context, userID string) (module.ProfileInfo, error)
	// ModuleSetProfileField sets "displayname" or "avatar_url" of a local
	// user as a server admin would.
	ModuleSetProfileField(ctx context.Context, userID, field, value string) error
}

var errNoProfiles = errors.New("modhost: the server does not serve profiles")

func (a *hostAPI) profileServices() (ProfileServices, error) {
	if a.h.services == nil {
		return nil, errNoServices
	}
	p, ok := a.h.services.(ProfileServices)
	if !ok {
		return nil, errNoProfiles
	}
	return p, nil
}

func (a *hostAPI) GetProfileForUser(ctx context.Context, localpart string) (module.ProfileInfo, error) {
	p, err := a.profileServices()
	if err != nil {
		return module.ProfileInfo{}, err
	}
	userID := localpart
	if len(userID) == 0 || userID[0] != '@' {
		userID = "@" + localpart + ":" + a.h.opts.ServerName
	}
	return p.ModuleGetProfile(ctx, userID)
}

func (a *hostAPI) SetDisplayname(ctx context.Context, userID, displayname string) error {
	p, err := a.profileServices()
	if err != nil {
		return err
	}
	return p.ModuleSetProfileField(ctx, userID, "displayname", displayname)
}

func (a *hostAPI) SetAvatarURL(ctx context.Context, userID, avatarURL string) error {
	p, err := a.profileServices()
	if err != nil {
		return err
	}
	return p.ModuleSetProfileField(ctx, userID, "avatar_url", avatarURL)
}
