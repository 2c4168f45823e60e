package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrAliasExists: CreateAlias with an alias that is taken.
var ErrAliasExists = errors.New("storage: room alias already exists")

// AliasStore keeps room aliases and the public room directory. It is part
// of Store.
type AliasStore interface {
	// CreateAlias maps an alias to a room; ErrAliasExists when taken.
	CreateAlias(ctx context.Context, alias, roomID, creator string, ts int64) error
	// GetAlias returns the room an alias maps to, or ErrNotFound.
	GetAlias(ctx context.Context, alias string) (string, error)
	// SetRoomPublished publishes a room in (or removes it from) the public
	// room directory.
	SetRoomPublished(ctx context.Context, roomID string, published bool, ts int64) error
	// IsRoomPublished reports whether a room is in the public directory.
	IsRoomPublished(ctx context.Context, roomID string) (bool, error)

	// The directory's reads and the alias deletion (directory.go).

	// GetAliasEntry returns an alias's room and creator, or ErrNotFound.
	GetAliasEntry(ctx context.Context, alias string) (AliasEntry, error)
	// DeleteAlias removes an alias and returns the room it pointed to, or
	// ErrNotFound when there was no such alias.
	DeleteAlias(ctx context.Context, alias string) (string, error)
	// AliasesForRoom lists the aliases pointing to a room, in byte order;
	// empty (not nil) when there are none.
	AliasesForRoom(ctx context.Context, roomID string) ([]string, error)
	// PublishedRooms reads what the public room list shows of every
	// published room, in two queries on one snapshot however many rooms
	// are published; in no particular order.
	PublishedRooms(ctx context.Context) ([]PublishedRoom, error)
}

func (s *sqlStore) CreateAlias(ctx context.Context, alias, roomID, creator string, ts int64) error {
	if err := checkText(alias, roomID, creator); err != nil {
		return fmt.Errorf("storage: create alias %s: %w", alias, err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO room_aliases (room_alias, room_id, creator, creation_ts) VALUES ($1, $2, $3, $4)
ON CONFLICT (room_alias) DO NOTHING`, alias, roomID, creator, ts)
	if err != nil {
		return fmt.Errorf("storage: create alias %s: %w", alias, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("storage: create alias %s: %w", alias, err)
	} else if n == 0 {
		return ErrAliasExists
	}
	return nil
}

func (s *sqlStore) GetAlias(ctx context.Context, alias string) (string, error) {
	var roomID string
	err := s.r.QueryRowContext(ctx, `SELECT room_id FROM room_aliases WHERE room_alias = $1`, alias).Scan(&roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("storage: get alias %s: %w", alias, err)
	}
	return roomID, nil
}

func (s *sqlStore) SetRoomPublished(ctx context.Context, roomID string, published bool, ts int64) error {
	var err error
	if published {
		_, err = s.w.ExecContext(ctx, `INSERT INTO room_directory (room_id, published_ts) VALUES ($1, $2)
ON CONFLICT (room_id) DO NOTHING`, roomID, ts)
	} else {
		_, err = s.w.ExecContext(ctx, `DELETE FROM room_directory WHERE room_id = $1`, roomID)
	}
	if err != nil {
		return fmt.Errorf("storage: publish room %s: %w", roomID, err)
	}
	return nil
}

func (s *sqlStore) IsRoomPublished(ctx context.Context, roomID string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM room_directory WHERE room_id = $1`, roomID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("storage: room %s published: %w", roomID, err)
	}
	return n > 0, nil
}
