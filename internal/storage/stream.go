package storage

import (
	"context"
	"fmt"
	"slices"
)

// StreamStore reads the event stream, for /sync and /messages. Each method
// is one query however many rooms it covers, so the cost of a request does
// not grow with the number of queries per room.
type StreamStore interface {
	// LatestRoomEvents returns, for each room, its events with stream
	// positions in (from, to], at most limit per room (the latest ones), in
	// stream order. A room with more than limit such events is reported in
	// limited.
	LatestRoomEvents(ctx context.Context, roomIDs []string, from, to int64, limit int) (events map[string][]StoredEvent, limited map[string]bool, err error)
	// RoomEventsAfter returns a room's events with stream positions above
	// after and at most upTo, oldest first, at most limit: /messages going
	// forwards.
	RoomEventsAfter(ctx context.Context, roomID string, after, upTo int64, limit int) ([]StoredEvent, error)
	// ReadStream runs fn over one consistent, read-only snapshot of the
	// database (see StreamReader): what one /sync reads.
	ReadStream(ctx context.Context, fn func(StreamReader) error) error
	// RoomEventsBefore returns a room's events with stream positions below
	// before (and above after, 0 for none), newest first, at most limit:
	// /messages going backwards.
	RoomEventsBefore(ctx context.Context, roomID string, before, after int64, limit int) ([]StoredEvent, error)
}

// roomsPerQuery bounds the IN list (SQLite allows 32766 parameters).
const roomsPerQuery = 2000

func (s *sqlStore) LatestRoomEvents(ctx context.Context, roomIDs []string, from, to int64, limit int) (map[string][]StoredEvent, map[string]bool, error) {
	return latestRoomEvents(ctx, s.r, roomIDs, from, to, limit)
}

func latestRoomEvents(ctx context.Context, q querier, roomIDs []string, from, to int64, limit int) (map[string][]StoredEvent, map[string]bool, error) {
	events := make(map[string][]StoredEvent, len(roomIDs))
	limited := map[string]bool{}
	if limit <= 0 {
		return events, limited, nil
	}
	for chunk := range slices.Chunk(dedupe(roomIDs), roomsPerQuery) {
		args := []any{from, to, limit + 1}
		for _, r := range chunk {
			args = append(args, r)
		}
		// One query for every room: the window function ranks each room's
		// events newest first; limit+1 tells a limited timeline apart.
		rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM (
  SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.room_id ORDER BY e.stream_pos DESC) AS rn
  FROM events e
  WHERE e.stream_pos > $1 AND e.stream_pos <= $2 AND e.room_id IN (`+placeholders(4, len(chunk))+`)
) e WHERE e.rn <= $3 ORDER BY e.stream_pos`, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("storage: latest events of %d rooms: %w", len(chunk), err)
		}
		for rows.Next() {
			ev, err := scanEvent(rows)
			if err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("storage: latest events: %w", err)
			}
			events[ev.RoomID] = append(events[ev.RoomID], ev)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("storage: latest events: %w", err)
		}
	}
	for room, evs := range events {
		if len(evs) > limit {
			events[room] = evs[len(evs)-limit:] // drop the oldest, keep stream order
			limited[room] = true
		}
	}
	return events, limited, nil
}

func (s *sqlStore) RoomEventsBefore(ctx context.Context, roomID string, before, after int64, limit int) ([]StoredEvent, error) {
	if limit <= 0 {
		return []StoredEvent{}, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventColumns+` FROM events e
WHERE e.room_id = $1 AND e.stream_pos < $2 AND e.stream_pos > $3 ORDER BY e.stream_pos DESC LIMIT $4`, roomID, before, after, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: events of %s before %d: %w", roomID, before, err)
	}
	defer rows.Close()
	out := []StoredEvent{}
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: events before: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: events before: %w", err)
	}
	return out, nil
}

func (s *sqlStore) RoomEventsAfter(ctx context.Context, roomID string, after, upTo int64, limit int) ([]StoredEvent, error) {
	if limit <= 0 {
		return []StoredEvent{}, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventColumns+` FROM events e
WHERE e.room_id = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3 ORDER BY e.stream_pos LIMIT $4`, roomID, after, upTo, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: events of %s after %d: %w", roomID, after, err)
	}
	defer rows.Close()
	out := []StoredEvent{}
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: events after: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: events after: %w", err)
	}
	return out, nil
}
