package module

import (
	"context"
	"errors"
)

// ProfileHost is the part of the server side of the API that serves users'
// profiles. Like AccountDataHost it is separate from Host, so that Host
// implementations written before it still compile; Sluice's host
// implements it. With a Host that does not, the profile methods of API
// return ErrProfileUnsupported.
type ProfileHost interface {
	GetProfileForUser(ctx context.Context, localpart string) (ProfileInfo, error)
	SetDisplayname(ctx context.Context, userID, displayname string) error
	SetAvatarURL(ctx context.Context, userID, avatarURL string) error
}

// ErrProfileUnsupported is returned by the profile methods of an API whose
// Host does not implement ProfileHost.
var ErrProfileUnsupported = errors.New("module: this host does not serve profiles")

func (a *API) profileHost() (ProfileHost, error) {
	if h, ok := a.host.(ProfileHost); ok {
		return h, nil
	}
	return nil, ErrProfileUnsupported
}

// GetProfileForUser returns the global profile of the local user with this
// localpart (Synapse's get_profile_for_user, 1.39). Fields that are not set
// are "", and so are both for an unknown user (no error, as in Synapse).
// A full local user ID is accepted too.
func (a *API) GetProfileForUser(ctx context.Context, localpart string) (ProfileInfo, error) {
	h, err := a.profileHost()
	if err != nil {
		return ProfileInfo{}, err
	}
	return h.GetProfileForUser(ctx, localpart)
}

// SetDisplayname sets a local user's display name (Synapse's
// set_displayname, 1.76): as a server admin would, with the checks and
// effects of PUT /profile/{userId}/displayname — on_profile_update (with
// byAdmin true, as Synapse) and a new member event in each room the user is
// joined to. "" clears the name. A client error (such as a name over 256
// characters) is a *Error.
func (a *API) SetDisplayname(ctx context.Context, userID, displayname string) error {
	h, err := a.profileHost()
	if err != nil {
		return err
	}
	return h.SetDisplayname(ctx, userID, displayname)
}

// SetAvatarURL is SetDisplayname for the avatar URL (a Sluice addition:
// Synapse's module API has no such helper). "" clears it.
func (a *API) SetAvatarURL(ctx context.Context, userID, avatarURL string) error {
	h, err := a.profileHost()
	if err != nil {
		return err
	}
	return h.SetAvatarURL(ctx, userID, avatarURL)
}
