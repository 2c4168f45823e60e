package modhost

import (
	"context"
	"errors"

	"github.com/sluice-im/sluice/module"
)

// publicRoomListServices is what the host needs of the server for the
// module API's public room list helpers; the server's Services value
// implements it.
type publicRoomListServices interface {
	// ModuleRoomIsPublished reports whether a room is in the public room
	// directory (false for an unknown room).
	ModuleRoomIsPublished(ctx context.Context, roomID string) (bool, error)
	// ModuleSetRoomPublished publishes a room or takes it out of the
	// directory; nothing happens for an unknown room.
	ModuleSetRoomPublished(ctx context.Context, roomID string, published bool) error
}

var errNoPublicRoomList = errors.New("modhost: the server does not serve a public room list")

func (a *hostAPI) publicRoomList() (publicRoomListServices, error) {
	if a.h.services == nil {
		return nil, errNoServices
	}
	p, ok := a.h.services.(publicRoomListServices)
	if !ok {
		return nil, errNoPublicRoomList
	}
	return p, nil
}

func (a *hostAPI) RoomIsInPublicRoomList(ctx context.Context, roomID string) (bool, error) {
	p, err := a.publicRoomList()
	if err != nil {
		return false, err
	}
	return p.ModuleRoomIsPublished(ctx, roomID)
}

func (a *hostAPI) AddRoomToPublicRoomList(ctx context.Context, roomID string) error {
	p, err := a.publicRoomList()
	if err != nil {
		return err
	}
	return p.ModuleSetRoomPublished(ctx, roomID, true)
}

func (a *hostAPI) RemoveRoomFromPublicRoomList(ctx context.Context, roomID string) error {
	p, err := a.publicRoomList()
	if err != nil {
		return err
	}
	return p.ModuleSetRoomPublished(ctx, roomID, false)
}

var _ module.PublicRoomListHost = (*hostAPI)(nil)
