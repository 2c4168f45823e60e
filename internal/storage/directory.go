package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// AliasEntry is a stored room alias.
type AliasEntry struct {
	RoomID  string
	Creator string
}

// PublishedRoom is a room of the public room directory with what the public
// room list shows of it.
type PublishedRoom struct {
	RoomID        string
	JoinedMembers int
	// State holds the JSON of the room's current state events of the
	// types in PublishedRoomStateTypes (state key ""), keyed by type.
	State map[string][]byte
}

// PublishedRoomStateTypes are the state event types PublishedRooms reads.
var PublishedRoomStateTypes = []string{
	"m.room.create", "m.room.join_rules", "m.room.name", "m.room.topic", "m.room.canonical_alias",
	"m.room.history_visibility", "m.room.guest_access", "m.room.avatar",
}

func (s *sqlStore) GetAliasEntry(ctx context.Context, alias string) (AliasEntry, error) {
	var e AliasEntry
	err := s.r.QueryRowContext(ctx, `SELECT room_id, creator FROM room_aliases WHERE room_alias = $1`, alias).Scan(&e.RoomID, &e.Creator)
	if errors.Is(err, sql.ErrNoRows) {
		return AliasEntry{}, ErrNotFound
	}
	if err != nil {
		return AliasEntry{}, fmt.Errorf("storage: get alias %s: %w", alias, err)
	}
	return e, nil
}

func (s *sqlStore) DeleteAlias(ctx context.Context, alias string) (string, error) {
	var roomID string
	err := s.w.QueryRowContext(ctx, `DELETE FROM room_aliases WHERE room_alias = $1 RETURNING room_id`, alias).Scan(&roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("storage: delete alias %s: %w", alias, err)
	}
	return roomID, nil
}

func (s *sqlStore) AliasesForRoom(ctx context.Context, roomID string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT room_alias FROM room_aliases WHERE room_id = $1`, roomID)
	if err != nil {
		return nil, fmt.Errorf("storage: aliases of %s: %w", roomID, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("storage: aliases of %s: %w", roomID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: aliases of %s: %w", roomID, err)
	}
	slices.Sort(out)
	return out, nil
}

func (s *sqlStore) PublishedRooms(ctx context.Context) ([]PublishedRoom, error) {
	var opts *sql.TxOptions
	if s.dialect == DriverPostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("storage: published rooms: %w", err)
	}
	defer tx.Rollback() // read-only
	byID := map[string]*PublishedRoom{}
	var out []*PublishedRoom
	rows, err := tx.QueryContext(ctx, `SELECT d.room_id, COUNT(cs.room_id) FROM room_directory d
LEFT JOIN room_current_state cs ON cs.room_id = d.room_id AND cs.type = 'm.room.member' AND cs.membership = 'join'
GROUP BY d.room_id`)
	if err != nil {
		return nil, fmt.Errorf("storage: published rooms: %w", err)
	}
	for rows.Next() {
		r := &PublishedRoom{State: map[string][]byte{}}
		if err := rows.Scan(&r.RoomID, &r.JoinedMembers); err != nil {
			rows.Close()
			return nil, fmt.Errorf("storage: published rooms: %w", err)
		}
		byID[r.RoomID] = r
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: published rooms: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT d.room_id, cs.type, e.json FROM room_directory d
JOIN room_current_state cs ON cs.room_id = d.room_id AND cs.state_key = ''
JOIN events e ON e.event_id = cs.event_id
WHERE cs.type IN ('m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.topic', 'm.room.canonical_alias',
                  'm.room.history_visibility', 'm.room.guest_access', 'm.room.avatar')`)
	if err != nil {
		return nil, fmt.Errorf("storage: published rooms' state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var roomID, typ, js string
		if err := rows.Scan(&roomID, &typ, &js); err != nil {
			return nil, fmt.Errorf("storage: published rooms' state: %w", err)
		}
		if r := byID[roomID]; r != nil {
			r.State[typ] = []byte(js)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: published rooms' state: %w", err)
	}
	res := make([]PublishedRoom, len(out))
	for i, r := range out {
		res[i] = *r
	}
	return res, nil
}
