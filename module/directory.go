package module

import (
	"context"
	"errors"
)

// PublicRoomListHost is the part of the server side of the API that
// manages the public room directory (Synapse's public_room_list_manager,
// 1.22). It is separate from Host so that Host implementations written
// before it still compile; Sluice's host implements it. With a Host that
// does not, the public room list methods of API return
// ErrPublicRoomListUnsupported.
type PublicRoomListHost interface {
	RoomIsInPublicRoomList(ctx context.Context, roomID string) (bool, error)
	AddRoomToPublicRoomList(ctx context.Context, roomID string) error
	RemoveRoomFromPublicRoomList(ctx context.Context, roomID string) error
}

// ErrPublicRoomListUnsupported is returned by the public room list methods
// of an API whose Host does not implement PublicRoomListHost.
var ErrPublicRoomListUnsupported = errors.New("module: this host does not manage a public room list")

func (a *API) publicRoomListHost() (PublicRoomListHost, error) {
	if h, ok := a.host.(PublicRoomListHost); ok {
		return h, nil
	}
	return nil, ErrPublicRoomListUnsupported
}

// RoomIsInPublicRoomList reports whether a room is published in the
// server's public room directory (Synapse's
// public_room_list_manager.room_is_in_public_room_list); false for a room
// the server does not know.
func (a *API) RoomIsInPublicRoomList(ctx context.Context, roomID string) (bool, error) {
	h, err := a.publicRoomListHost()
	if err != nil {
		return false, err
	}
	return h.RoomIsInPublicRoomList(ctx, roomID)
}

// AddRoomToPublicRoomList publishes a room in the public room directory
// (add_room_to_public_room_list). Like Synapse's, it makes no checks and
// calls no callbacks (user_may_publish_room,
// check_visibility_can_be_modified and room_list_publication_rules are
// for clients); for a room the server does not know it does nothing.
func (a *API) AddRoomToPublicRoomList(ctx context.Context, roomID string) error {
	h, err := a.publicRoomListHost()
	if err != nil {
		return err
	}
	return h.AddRoomToPublicRoomList(ctx, roomID)
}

// RemoveRoomFromPublicRoomList takes a room out of the public room
// directory (remove_room_from_public_room_list), without checks or
// callbacks; a room that is not published is left as it is.
func (a *API) RemoveRoomFromPublicRoomList(ctx context.Context, roomID string) error {
	h, err := a.publicRoomListHost()
	if err != nil {
		return err
	}
	return h.RemoveRoomFromPublicRoomList(ctx, roomID)
}
