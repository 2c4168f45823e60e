package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/directory"
	"github.com/sluice-im/sluice/internal/modhost"
	"github.com/sluice-im/sluice/internal/rooms"
	"github.com/sluice-im/sluice/internal/storage"
)

// newDirectory makes the directory service from the configuration.
func newDirectory(cfg *config.Config, store storage.Store, rs *rooms.Service, host *modhost.Host, acc *accounts.Service, log *slog.Logger) *directory.Service {
	return directory.New(directory.Options{
		ServerName:                  cfg.ServerName,
		AllowPublicRoomsWithoutAuth: cfg.AllowPublicRoomsWithoutAuth,
		RequireMembershipForAliases: *cfg.RequireMembershipForAliases,
		EnableRoomListSearch:        *cfg.EnableRoomListSearch,
		AliasCreationRules:          cfg.AliasCreationRules,
		RoomListPublicationRules:    cfg.RoomListPublicationRules,
		Logger:                      log.With("component", "directory"),
	}, store, rs, host, acc)
}

// The module API's public room list helpers (Synapse's
// public_room_list_manager), for modhost's publicRoomListServices.

// ModuleRoomIsPublished reports whether a room is in the public room
// directory (false for an unknown room).
func (v services) ModuleRoomIsPublished(ctx context.Context, roomID string) (bool, error) {
	return v.store.IsRoomPublished(ctx, roomID)
}

// ModuleSetRoomPublished publishes a room or takes it out of the directory,
// without checks or callbacks; nothing happens for an unknown room, as in
// Synapse.
func (v services) ModuleSetRoomPublished(ctx context.Context, roomID string, published bool) error {
	if _, err := v.store.GetRoom(ctx, roomID); errors.Is(err, storage.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return v.store.SetRoomPublished(ctx, roomID, published, time.Now().UnixMilli())
}
