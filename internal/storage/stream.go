package storage

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
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
	return latestMatching(ctx, q, roomIDs, from, to, limit, EventMatch{})
}

// EventMatch narrows the events a timeline read returns, in the query, so
// that a limit counts only matching events. Nil lists match everything;
// in type lists "*" matches any run of characters.
type EventMatch struct {
	Types, NotTypes     []string
	Senders, NotSenders []string
	TypesSet            bool // Types was given (an empty list matches nothing)
	SendersSet          bool // Senders was given
}

// sql returns the match as a condition on events e2 (the bound subquery)
// and e, numbering its parameters from next; "" when it matches all.
func (m EventMatch) sql(alias string, next int) (cond string, args []any) {
	var conds []string
	add := func(c string, vals ...any) {
		conds = append(conds, c)
		args = append(args, vals...)
	}
	p := func() string { return fmt.Sprintf("$%d", next+len(args)) }
	typeConds := func(list []string) []string {
		var out []string
		for _, t := range list {
			if strings.Contains(t, "*") {
				out = append(out, alias+".type LIKE "+p()+" ESCAPE '\\'")
			} else {
				out = append(out, alias+".type = "+p())
			}
			args = append(args, likePattern(t))
		}
		return out
	}
	if m.TypesSet {
		if len(m.Types) == 0 {
			return "1 = 0", nil
		}
		conds = append(conds, "("+strings.Join(typeConds(m.Types), " OR ")+")")
	}
	if len(m.NotTypes) > 0 {
		conds = append(conds, "NOT ("+strings.Join(typeConds(m.NotTypes), " OR ")+")")
	}
	if m.SendersSet {
		if len(m.Senders) == 0 {
			return "1 = 0", nil
		}
		vals := make([]any, len(m.Senders))
		for i, v := range m.Senders {
			vals[i] = v
		}
		add(alias+".sender IN ("+placeholders(next+len(args), len(vals))+")", vals...)
	}
	if len(m.NotSenders) > 0 {
		vals := make([]any, len(m.NotSenders))
		for i, v := range m.NotSenders {
			vals[i] = v
		}
		add(alias+".sender NOT IN ("+placeholders(next+len(args), len(vals))+")", vals...)
	}
	return strings.Join(conds, " AND "), args
}

// likePattern turns a filter type pattern into a LIKE pattern: "*" is
// "%", and LIKE's own wildcards are escaped. A pattern without "*" is
// compared with = and returned as it is.
func likePattern(t string) string {
	if !strings.Contains(t, "*") {
		return t
	}
	r := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`, "*", "%")
	return r.Replace(t)
}

// LatestMatching is LatestRoomEvents counting only the events m matches.
func latestMatching(ctx context.Context, q querier, roomIDs []string, from, to int64, limit int, m EventMatch) (map[string][]StoredEvent, map[string]bool, error) {
	events := make(map[string][]StoredEvent, len(roomIDs))
	limited := map[string]bool{}
	if limit <= 0 {
		return events, limited, nil
	}
	for chunk := range slices.Chunk(dedupe(roomIDs), roomsPerQuery) {
		args := []any{from, to, limit}
		for _, r := range chunk {
			args = append(args, r)
		}
		cond2, margs2 := m.sql("e2", len(args)+1)
		args = append(args, margs2...)
		cond, margs := m.sql("e", len(args)+1)
		args = append(args, margs...)
		if cond2 != "" {
			cond2 = " AND " + cond2
			cond = " AND " + cond
		}
		// Per room, the bound is the position of the (limit+1)th newest
		// matching event in the window (an index walk of limit+1 rows):
		// the events above it are the timeline, and its existence means
		// the timeline is limited. This stays cheap for rooms with long
		// histories, where ranking every event would not.
		rows, err := q.QueryContext(ctx, `SELECT b.lo, `+eventColumns+` FROM (
  SELECT r.room_id, COALESCE((SELECT e2.stream_pos FROM events e2
    WHERE e2.room_id = r.room_id AND e2.stream_pos > $1 AND e2.stream_pos <= $2`+cond2+`
    ORDER BY e2.stream_pos DESC LIMIT 1 OFFSET $3), $1) AS lo
  FROM rooms r WHERE r.room_id IN (`+placeholders(4, len(chunk))+`)
) b JOIN events e ON e.room_id = b.room_id
WHERE e.stream_pos > b.lo AND e.stream_pos <= $2`+cond+`
ORDER BY e.stream_pos`, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("storage: latest events of %d rooms: %w", len(chunk), err)
		}
		for rows.Next() {
			var lo int64
			var ev StoredEvent
			var sk sql.NullString
			var js string
			if err := rows.Scan(&lo, &ev.EventID, &ev.RoomID, &ev.Type, &sk, &ev.Sender, &js, &ev.StreamPos,
				&ev.StateGroupBefore, &ev.StateGroupAfter, &ev.RedactedBy); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("storage: latest events: %w", err)
			}
			if sk.Valid {
				ev.StateKey = &sk.String
			}
			ev.JSON = []byte(js)
			events[ev.RoomID] = append(events[ev.RoomID], ev)
			if lo > from {
				limited[ev.RoomID] = true
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("storage: latest events: %w", err)
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
