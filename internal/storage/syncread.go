package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// StreamPositions are the latest positions of the streams a sync token
// holds, read together.
type StreamPositions struct {
	Events      int64
	AccountData int64
}

// UserMembership is one of a user's membership events.
type UserMembership struct {
	RoomID     string
	Membership string // join, invite, leave, ban, knock
	EventID    string
	StreamPos  int64
	// StateGroupAfter is the room's state just after the membership event.
	StateGroupAfter int64
	// StateGroupBefore is the room's state just before it (MembershipChanges
	// only).
	StateGroupBefore int64
	// Set by Memberships only: the room's version, its current state
	// group, and whether the user forgot the room.
	RoomVersion  string
	CurrentGroup int64
	Forgotten    bool
	Sender       string // who sent the membership event
}

// RoomNow is a room's version and current state group.
type RoomNow struct {
	RoomVersion  string
	CurrentGroup int64
}

// StateFilter narrows StateAt. The zero value is every entry.
type StateFilter struct {
	// Types keeps only these event types (nil: every type).
	Types []string
	// Members, when not nil, keeps only the m.room.member entries of these
	// users (lazy-loaded members, one user's membership).
	Members []string
	// Since keeps only entries whose event's stream position is above it
	// (0: all): the state that changed after a sync token.
	Since int64
}

// StreamReader reads one consistent snapshot of the database: every method
// sees the same committed state, so positions, memberships, timelines and
// state agree with each other. Each method is one query (per 2,000 rooms
// or groups), however many rooms it covers.
type StreamReader interface {
	// Positions returns the latest stream positions of the snapshot.
	Positions(ctx context.Context) (StreamPositions, error)
	// Memberships returns the user's current membership of every room they
	// have one in, ordered by room ID.
	Memberships(ctx context.Context, userID string) ([]UserMembership, error)
	// RoomMembership returns the user's current membership of one room
	// (with the room's version and current group), or ErrNotFound.
	RoomMembership(ctx context.Context, userID, roomID string) (UserMembership, error)
	// Room returns a room's version and current state group, or
	// ErrNotFound.
	Room(ctx context.Context, roomID string) (RoomNow, error)
	// RoomEvents returns a room's events with stream positions in (after,
	// upTo] that m matches, at most limit: the newest first when desc, the
	// oldest first otherwise.
	RoomEvents(ctx context.Context, roomID string, after, upTo int64, limit int, desc bool, m EventMatch) ([]StoredEvent, error)
	// MembershipChanges returns the user's membership events with stream
	// positions in (since, to], in stream order.
	MembershipChanges(ctx context.Context, userID string, since, to int64) ([]UserMembership, error)
	// LatestRoomEvents is StreamStore.LatestRoomEvents on the snapshot,
	// counting only the events m matches.
	LatestRoomEvents(ctx context.Context, roomIDs []string, from, to int64, limit int, m EventMatch) (map[string][]StoredEvent, map[string]bool, error)
	// StateAt returns the state of each group, with its events, narrowed
	// by f; groups that do not exist are left out.
	StateAt(ctx context.Context, groups []int64, f StateFilter) (map[int64][]StoredEvent, error)
	// AccountData returns the user's account data with stream positions in
	// (since, to], in stream order.
	AccountData(ctx context.Context, userID string, since, to int64) ([]AccountDataEntry, error)
	// TxnIDs returns the client transaction IDs with which this device of
	// the user sent any of the events, keyed by event ID.
	TxnIDs(ctx context.Context, userID, deviceID string, eventIDs []string) (map[string]string, error)
	// GetEvents is RoomStore.GetEvents on the snapshot.
	GetEvents(ctx context.Context, ids []string) (map[string]StoredEvent, error)
}

// ReadStream runs fn over one read-only snapshot of the database (a
// REPEATABLE READ transaction on PostgreSQL, a read transaction under WAL
// on SQLite). fn must not keep the reader past its return.
func (s *sqlStore) ReadStream(ctx context.Context, fn func(StreamReader) error) error {
	var opts *sql.TxOptions
	if s.dialect == DriverPostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("storage: begin read snapshot: %w", err)
	}
	defer tx.Rollback() // read-only: nothing to commit
	return fn(streamReader{tx})
}

// streamReader implements StreamReader over a transaction (or any
// querier).
type streamReader struct{ q querier }

func (r streamReader) Positions(ctx context.Context) (StreamPositions, error) {
	var p StreamPositions
	err := queryRow(ctx, r.q, `SELECT COALESCE((SELECT MAX(stream_pos) FROM events), 0), (SELECT pos FROM account_data_stream WHERE singleton = 0)`).
		Scan(&p.Events, &p.AccountData)
	if err != nil {
		return StreamPositions{}, fmt.Errorf("storage: read stream positions: %w", err)
	}
	return p, nil
}

// queryRow is QueryRowContext for a querier.
func queryRow(ctx context.Context, q querier, query string, args ...any) rowScanner {
	rows, err := q.QueryContext(ctx, query, args...)
	return rowScanner{rows, err}
}

type rowScanner struct {
	rows *sql.Rows
	err  error
}

func (r rowScanner) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

// scanMemberships reads the rows of MembershipChanges.
func scanMemberships(rows *sql.Rows) ([]UserMembership, error) {
	defer rows.Close()
	out := []UserMembership{}
	for rows.Next() {
		var m UserMembership
		var membership sql.NullString
		if err := rows.Scan(&m.RoomID, &membership, &m.EventID, &m.StreamPos, &m.StateGroupAfter, &m.StateGroupBefore); err != nil {
			return nil, err
		}
		m.Membership = membership.String
		out = append(out, m)
	}
	return out, rows.Err()
}

func (r streamReader) Memberships(ctx context.Context, userID string) ([]UserMembership, error) {
	out, err := r.memberships(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b UserMembership) int { return strings.Compare(a.RoomID, b.RoomID) })
	return out, nil
}

func (r streamReader) RoomMembership(ctx context.Context, userID, roomID string) (UserMembership, error) {
	out, err := r.memberships(ctx, userID, roomID)
	if err != nil {
		return UserMembership{}, err
	}
	if len(out) == 0 {
		return UserMembership{}, ErrNotFound
	}
	return out[0], nil
}

// memberships reads the user's current memberships, of one room when
// roomID is not "".
func (r streamReader) memberships(ctx context.Context, userID, roomID string) ([]UserMembership, error) {
	args := []any{typeMember, userID}
	cond := ""
	if roomID != "" {
		cond = " AND s.room_id = $3"
		args = append(args, roomID)
	}
	rows, err := r.q.QueryContext(ctx, `SELECT s.room_id, s.membership, s.event_id, e.stream_pos, e.state_group_after,
    r.room_version, COALESCE(r.current_state_group, 0), f.room_id IS NOT NULL, e.sender
FROM room_current_state s JOIN events e ON e.event_id = s.event_id JOIN rooms r ON r.room_id = s.room_id
LEFT JOIN room_forgotten f ON f.user_id = s.state_key AND f.room_id = s.room_id
WHERE s.type = $1 AND s.state_key = $2`+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: memberships of %s: %w", userID, err)
	}
	defer rows.Close()
	out := []UserMembership{}
	for rows.Next() {
		var m UserMembership
		var membership sql.NullString
		if err := rows.Scan(&m.RoomID, &membership, &m.EventID, &m.StreamPos, &m.StateGroupAfter,
			&m.RoomVersion, &m.CurrentGroup, &m.Forgotten, &m.Sender); err != nil {
			return nil, fmt.Errorf("storage: memberships of %s: %w", userID, err)
		}
		m.Membership = membership.String
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: memberships of %s: %w", userID, err)
	}
	return out, nil
}

func (r streamReader) RoomEvents(ctx context.Context, roomID string, after, upTo int64, limit int, desc bool, m EventMatch) ([]StoredEvent, error) {
	out := []StoredEvent{}
	if limit <= 0 {
		return out, nil
	}
	args := []any{roomID, after, upTo, limit}
	cond, margs := m.sql("e", len(args)+1)
	args = append(args, margs...)
	if cond != "" {
		cond = " AND " + cond
	}
	order := "ASC"
	if desc {
		order = "DESC"
	}
	rows, err := r.q.QueryContext(ctx, `SELECT `+eventColumns+` FROM events e
WHERE e.room_id = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3`+cond+`
ORDER BY e.stream_pos `+order+` LIMIT $4`, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: events of %s in (%d, %d]: %w", roomID, after, upTo, err)
	}
	defer rows.Close()
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: events of %s: %w", roomID, err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: events of %s: %w", roomID, err)
	}
	return out, nil
}

func (r streamReader) MembershipChanges(ctx context.Context, userID string, since, to int64) ([]UserMembership, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT e.room_id, e.membership, e.event_id, e.stream_pos, e.state_group_after,
    COALESCE(e.state_group_before, 0)
FROM events e WHERE e.type = $1 AND e.state_key = $2 AND e.stream_pos > $3 AND e.stream_pos <= $4
ORDER BY e.stream_pos`, typeMember, userID, since, to)
	if err != nil {
		return nil, fmt.Errorf("storage: membership changes of %s: %w", userID, err)
	}
	out, err := scanMemberships(rows)
	if err != nil {
		return nil, fmt.Errorf("storage: membership changes of %s: %w", userID, err)
	}
	return out, nil
}

func (r streamReader) LatestRoomEvents(ctx context.Context, roomIDs []string, from, to int64, limit int, m EventMatch) (map[string][]StoredEvent, map[string]bool, error) {
	return latestMatching(ctx, r.q, roomIDs, from, to, limit, m)
}

func (r streamReader) GetEvents(ctx context.Context, ids []string) (map[string]StoredEvent, error) {
	return getEvents(ctx, r.q, ids)
}

// groupsPerQuery bounds the IN list of one StateAt query.
const groupsPerQuery = 10000

func (r streamReader) StateAt(ctx context.Context, groups []int64, f StateFilter) (map[int64][]StoredEvent, error) {
	out := map[int64][]StoredEvent{}
	groups = slices.Compact(slices.Sorted(slices.Values(groups)))
	for chunk := range slices.Chunk(groups, groupsPerQuery) {
		args := []any{maxChainWalk, f.Since}
		var where []string
		if f.Types != nil {
			if len(f.Types) == 0 {
				return out, nil
			}
			where = append(where, "s.type IN ("+placeholders(len(args)+1, len(f.Types))+")")
			for _, t := range f.Types {
				args = append(args, t)
			}
		}
		if f.Members != nil {
			cond := "s.type <> '" + typeMember + "'"
			if len(f.Members) > 0 {
				cond += " OR s.state_key IN (" + placeholders(len(args)+1, len(f.Members)) + ")"
				for _, m := range f.Members {
					args = append(args, m)
				}
			}
			where = append(where, "("+cond+")")
		}
		filter := ""
		if len(where) > 0 {
			filter = "WHERE " + strings.Join(where, " AND ")
		}
		first := len(args) + 1
		for _, g := range chunk {
			args = append(args, g)
		}
		// Each group's chain is walked back to its snapshot; the entry
		// nearest the group wins for each (type, state_key), as in stateAt,
		// and only the winners' events are read. CROSS JOIN keeps SQLite's
		// planner from starting at events (a scan of every event by
		// stream_pos) instead of at the few picked entries.
		rows, err := r.q.QueryContext(ctx, `WITH RECURSIVE chain (start, id, prev_group, hops) AS (
    SELECT id, id, prev_group, 0 FROM state_groups WHERE id IN (`+placeholders(first, len(chunk))+`)
    UNION ALL
    SELECT c.start, g.id, g.prev_group, c.hops + 1
    FROM state_groups g JOIN chain c ON g.id = c.prev_group
    WHERE c.hops < $1
), picked AS (
    SELECT c.start, s.event_id,
        ROW_NUMBER() OVER (PARTITION BY c.start, s.type, s.state_key ORDER BY c.hops) AS rn
    FROM chain c JOIN state_group_entries s ON s.group_id = c.id
    `+filter+`
)
SELECT p.start, `+eventColumns+`
FROM picked p CROSS JOIN events e
WHERE e.event_id = p.event_id AND p.rn = 1 AND e.stream_pos > $2`, args...)
		if err != nil {
			return nil, fmt.Errorf("storage: state of %d groups: %w", len(chunk), err)
		}
		for rows.Next() {
			var g int64
			var ev StoredEvent
			var sk sql.NullString
			var js string
			if err := rows.Scan(&g, &ev.EventID, &ev.RoomID, &ev.Type, &sk, &ev.Sender, &js, &ev.StreamPos,
				&ev.StateGroupBefore, &ev.StateGroupAfter, &ev.RedactedBy); err != nil {
				rows.Close()
				return nil, fmt.Errorf("storage: state of %d groups: %w", len(chunk), err)
			}
			if sk.Valid {
				ev.StateKey = &sk.String
			}
			ev.JSON = []byte(js)
			out[g] = append(out[g], ev)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("storage: state of %d groups: %w", len(chunk), err)
		}
	}
	for _, evs := range out {
		slices.SortFunc(evs, func(a, b StoredEvent) int {
			if c := strings.Compare(a.Type, b.Type); c != 0 {
				return c
			}
			return strings.Compare(*a.StateKey, *b.StateKey)
		})
	}
	return out, nil
}

func (r streamReader) AccountData(ctx context.Context, userID string, since, to int64) ([]AccountDataEntry, error) {
	return accountDataSince(ctx, r.q, userID, since, to)
}

// txnsPerQuery bounds the IN list of one TxnIDs query.
const txnsPerQuery = 2000

func (r streamReader) TxnIDs(ctx context.Context, userID, deviceID string, eventIDs []string) (map[string]string, error) {
	out := map[string]string{}
	for chunk := range slices.Chunk(dedupe(eventIDs), txnsPerQuery) {
		args := []any{userID, deviceID}
		for _, id := range chunk {
			args = append(args, id)
		}
		rows, err := r.q.QueryContext(ctx, `SELECT event_id, txn_id FROM event_txn_ids
WHERE user_id = $1 AND device_id = $2 AND event_id IN (`+placeholders(3, len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("storage: transaction IDs of %s: %w", userID, err)
		}
		for rows.Next() {
			var ev, txn string
			if err := rows.Scan(&ev, &txn); err != nil {
				rows.Close()
				return nil, fmt.Errorf("storage: transaction IDs of %s: %w", userID, err)
			}
			out[ev] = UnscopeTxnID(txn)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("storage: transaction IDs of %s: %w", userID, err)
		}
	}
	return out, nil
}

func (r streamReader) Room(ctx context.Context, roomID string) (RoomNow, error) {
	var n RoomNow
	err := queryRow(ctx, r.q, `SELECT room_version, COALESCE(current_state_group, 0) FROM rooms WHERE room_id = $1`, roomID).
		Scan(&n.RoomVersion, &n.CurrentGroup)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return RoomNow{}, ErrNotFound
	case err != nil:
		return RoomNow{}, fmt.Errorf("storage: room %s: %w", roomID, err)
	}
	return n, nil
}
