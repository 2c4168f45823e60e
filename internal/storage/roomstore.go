package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Results the databases would order by their text collation (on
// PostgreSQL, the database's locale) are sorted here in byte order instead,
// so both databases return the same order.

func (s *sqlStore) CreateRoom(ctx context.Context, r Room) error {
	if r.RoomID == "" {
		return errors.New("storage: create room: empty room ID")
	}
	what := "create room " + r.RoomID
	if err := checkText(r.RoomID, r.Version, r.Creator); err != nil {
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO rooms (room_id, room_version, creator, creation_ts) VALUES ($1, $2, $3, $4)
ON CONFLICT (room_id) DO NOTHING`, r.RoomID, r.Version, r.Creator, r.CreatedTS)
	if err != nil {
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	if n == 0 {
		return ErrRoomExists
	}
	return nil
}

func (s *sqlStore) GetRoom(ctx context.Context, roomID string) (Room, error) {
	if checkText(roomID) != nil {
		return Room{}, ErrNotFound // no room ID has a NUL byte (PostgreSQL would refuse the query)
	}
	r := Room{RoomID: roomID}
	err := s.r.QueryRowContext(ctx, `SELECT room_version, creator, creation_ts FROM rooms WHERE room_id = $1`, roomID).
		Scan(&r.Version, &r.Creator, &r.CreatedTS)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Room{}, ErrNotFound
	case err != nil:
		return Room{}, fmt.Errorf("storage: get room %s: %w", roomID, err)
	}
	return r, nil
}

// eventColumns is the column list scanEvent expects, over events e.
// RedactedBy is the earliest (by stream position) stored redaction.
const eventColumns = `e.event_id, e.room_id, e.type, e.state_key, e.sender, e.json, e.stream_pos,
    COALESCE(e.state_group_before, 0), e.state_group_after,
    COALESCE((SELECT r.redaction_event_id FROM redactions r JOIN events re ON re.event_id = r.redaction_event_id
              WHERE r.redacts = e.event_id ORDER BY re.stream_pos LIMIT 1), '')`

func scanEvent(row interface{ Scan(...any) error }) (StoredEvent, error) {
	var ev StoredEvent
	var sk sql.NullString
	var js string
	err := row.Scan(&ev.EventID, &ev.RoomID, &ev.Type, &sk, &ev.Sender, &js, &ev.StreamPos,
		&ev.StateGroupBefore, &ev.StateGroupAfter, &ev.RedactedBy)
	if err != nil {
		return StoredEvent{}, err
	}
	if sk.Valid {
		ev.StateKey = &sk.String
	}
	ev.JSON = []byte(js)
	return ev, nil
}

func (s *sqlStore) GetEvent(ctx context.Context, eventID string) (StoredEvent, error) {
	ev, err := scanEvent(s.r.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events e WHERE e.event_id = $1`, eventID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return StoredEvent{}, ErrNotFound
	case err != nil:
		return StoredEvent{}, fmt.Errorf("storage: get event %s: %w", eventID, err)
	}
	return ev, nil
}

// eventsPerQuery bounds the IN list of one GetEvents query.
const eventsPerQuery = 500

func (s *sqlStore) GetEvents(ctx context.Context, ids []string) (map[string]StoredEvent, error) {
	return getEvents(ctx, s.r, ids)
}

func getEvents(ctx context.Context, q querier, ids []string) (map[string]StoredEvent, error) {
	ids = dedupe(ids)
	out := make(map[string]StoredEvent, len(ids))
	for chunk := range slices.Chunk(ids, eventsPerQuery) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if err := getEventsChunk(ctx, q, args, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func getEventsChunk(ctx context.Context, q querier, ids []any, out map[string]StoredEvent) error {
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM events e WHERE e.event_id IN (`+placeholders(1, len(ids))+`)`, ids...)
	if err != nil {
		return fmt.Errorf("storage: get %d events: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("storage: get %d events: %w", len(ids), err)
		}
		out[ev.EventID] = ev
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("storage: get %d events: %w", len(ids), err)
	}
	return nil
}

func (s *sqlStore) GetTxnEvent(ctx context.Context, key TxnKey) (string, error) {
	var id string
	err := s.r.QueryRowContext(ctx, `SELECT event_id FROM event_txn_ids WHERE user_id = $1 AND device_id = $2 AND txn_id = $3`,
		key.UserID, key.DeviceID, key.TxnID).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", ErrNotFound
	case err != nil:
		return "", fmt.Errorf("storage: get event of transaction %s of %s/%s: %w", key.TxnID, key.UserID, key.DeviceID, err)
	}
	return id, nil
}

// CurrentState reads the group and the entries in one statement, so they
// come from one snapshot and always match.
func (s *sqlStore) CurrentState(ctx context.Context, roomID string) (int64, []StateEntry, error) {
	what := "get current state of " + roomID
	rows, err := s.r.QueryContext(ctx, `SELECT r.current_state_group, s.type, s.state_key, s.event_id
FROM rooms r LEFT JOIN room_current_state s ON s.room_id = r.room_id
WHERE r.room_id = $1`, roomID)
	if err != nil {
		return 0, nil, fmt.Errorf("storage: %s: %w", what, err)
	}
	defer rows.Close()
	var group sql.NullInt64
	state := []StateEntry{}
	for rows.Next() {
		var typ, key, id sql.NullString
		if err := rows.Scan(&group, &typ, &key, &id); err != nil {
			return 0, nil, fmt.Errorf("storage: %s: %w", what, err)
		}
		if typ.Valid {
			state = append(state, StateEntry{Type: typ.String, StateKey: key.String, EventID: id.String})
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("storage: %s: %w", what, err)
	}
	if !group.Valid {
		return 0, nil, ErrNotFound
	}
	slices.SortFunc(state, compareEntries)
	return group.Int64, state, nil
}

func (s *sqlStore) StateAt(ctx context.Context, group int64) ([]StateEntry, error) {
	state, err := stateAt(ctx, s.r, group)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("storage: get state group %d: %w", group, err)
	}
	return state, nil
}

func (s *sqlStore) ForwardExtremities(ctx context.Context, roomID string) ([]string, int64, error) {
	what := "get forward extremities of " + roomID
	rows, err := s.r.QueryContext(ctx, `SELECT f.event_id, COALESCE(e.depth, 0)
FROM room_forward_extremities f LEFT JOIN events e ON e.event_id = f.event_id
WHERE f.room_id = $1`, roomID)
	if err != nil {
		return nil, 0, fmt.Errorf("storage: %s: %w", what, err)
	}
	defer rows.Close()
	ids := []string{}
	var maxDepth int64
	for rows.Next() {
		var id string
		var depth int64
		if err := rows.Scan(&id, &depth); err != nil {
			return nil, 0, fmt.Errorf("storage: %s: %w", what, err)
		}
		ids = append(ids, id)
		maxDepth = max(maxDepth, depth)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("storage: %s: %w", what, err)
	}
	slices.Sort(ids)
	return ids, maxDepth, nil
}

func (s *sqlStore) Members(ctx context.Context, roomID string) ([]Member, error) {
	what := "get members of " + roomID
	rows, err := s.r.QueryContext(ctx, `SELECT state_key, COALESCE(membership, ''), event_id
FROM room_current_state WHERE room_id = $1 AND type = $2`, roomID, typeMember)
	if err != nil {
		return nil, fmt.Errorf("storage: %s: %w", what, err)
	}
	defer rows.Close()
	members := []Member{}
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.UserID, &m.Membership, &m.EventID); err != nil {
			return nil, fmt.Errorf("storage: %s: %w", what, err)
		}
		members = append(members, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: %s: %w", what, err)
	}
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.UserID, b.UserID) })
	return members, nil
}

func (s *sqlStore) RoomsForUser(ctx context.Context, userID string, memberships ...string) ([]string, error) {
	what := "get rooms of " + userID
	rows, err := s.r.QueryContext(ctx, `SELECT room_id, COALESCE(membership, '')
FROM room_current_state WHERE type = $1 AND state_key = $2`, typeMember, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: %s: %w", what, err)
	}
	defer rows.Close()
	rooms := []string{}
	for rows.Next() {
		var room, m string
		if err := rows.Scan(&room, &m); err != nil {
			return nil, fmt.Errorf("storage: %s: %w", what, err)
		}
		if len(memberships) == 0 || slices.Contains(memberships, m) {
			rooms = append(rooms, room)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: %s: %w", what, err)
	}
	slices.Sort(rooms)
	return rooms, nil
}

func (s *sqlStore) ForgetRoom(ctx context.Context, userID, roomID string) error {
	if err := checkText(userID, roomID); err != nil {
		return fmt.Errorf("storage: forget room %s for %s: %w", roomID, userID, err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO room_forgotten (user_id, room_id) VALUES ($1, $2) ON CONFLICT (user_id, room_id) DO NOTHING`,
		userID, roomID); err != nil {
		return fmt.Errorf("storage: forget room %s for %s: %w", roomID, userID, err)
	}
	return nil
}

func (s *sqlStore) IsForgotten(ctx context.Context, userID, roomID string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM room_forgotten WHERE user_id = $1 AND room_id = $2`, userID, roomID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("storage: is room %s forgotten by %s: %w", roomID, userID, err)
	}
	return true, nil
}

func (s *sqlStore) MaxStreamPos(ctx context.Context) (int64, error) {
	var pos int64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(stream_pos), 0) FROM events`).Scan(&pos); err != nil {
		return 0, fmt.Errorf("storage: get max stream position: %w", err)
	}
	return pos, nil
}
