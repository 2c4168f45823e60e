package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// stateSnapshotInterval bounds state group chains: a state group that
// would be the stateSnapshotInterval-th delta after its chain's snapshot is
// written as a full snapshot instead, so StateAt never reads more than
// this many groups.
const stateSnapshotInterval = 100

// maxChainWalk guards StateAt's recursive query against a cycle in
// corrupt data; well-formed chains are at most stateSnapshotInterval long.
const maxChainWalk = 10 * stateSnapshotInterval

const (
	typeCreate = "m.room.create"
	typeMember = "m.room.member"
)

// The statements of PersistEvent with a fixed text. On SQLite the writer
// prepares them once (see batchTx); PostgreSQL's driver caches prepared
// statements by itself.
const (
	sqlSavepoint         = `SAVEPOINT persist_event`
	sqlRollbackSavepoint = `ROLLBACK TO SAVEPOINT persist_event`
	sqlReleaseSavepoint  = `RELEASE SAVEPOINT persist_event`

	// The room's current state group and the group the event was built
	// on, in one round trip.
	sqlRoomAndGroup = `SELECT r.current_state_group, g.room_id, g.delta_count
FROM rooms r LEFT JOIN state_groups g ON g.id = $2
WHERE r.room_id = $1`
	sqlNextStreamPos  = `UPDATE stream_counter SET pos = pos + 1 WHERE singleton = 0 RETURNING pos`
	sqlNextStateGroup = `UPDATE state_group_counter SET id = id + 1 WHERE singleton = 0 RETURNING id`
	// The conflict target leaves every other constraint failure an error.
	sqlInsertEvent = `INSERT INTO events
    (event_id, room_id, stream_pos, depth, type, state_key, sender, origin_server_ts, membership, json, state_group_before, state_group_after)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (event_id) DO NOTHING`
	sqlInsertTxn = `INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, created_ts)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, device_id, txn_id) DO NOTHING`
	sqlInsertSnapshotGroup = `INSERT INTO state_groups (id, room_id, event_id, prev_group, delta_count) VALUES ($1, $2, $3, NULL, 0)`
	sqlInsertDeltaGroup    = `INSERT INTO state_groups (id, room_id, event_id, prev_group, delta_count) VALUES ($1, $2, $3, $4, $5)`
	sqlInsertGroupEntry    = `INSERT INTO state_group_entries (group_id, type, state_key, event_id) VALUES ($1, $2, $3, $4)`
	sqlUpsertCurrentState  = `INSERT INTO room_current_state (room_id, type, state_key, event_id, membership)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership`
	sqlClearCurrentState = `DELETE FROM room_current_state WHERE room_id = $1`
	sqlSetCurrentGroup   = `UPDATE rooms SET current_state_group = $2 WHERE room_id = $1`
	sqlAddExtremity      = `INSERT INTO room_forward_extremities (room_id, event_id) VALUES ($1, $2)`
	sqlInsertRedaction   = `INSERT INTO redactions (redaction_event_id, redacts) VALUES ($1, $2)`
	sqlClearForgotten    = `DELETE FROM room_forgotten WHERE user_id = $1 AND room_id = $2`
)

// sqlDeleteExtremities deletes n of the room's forward extremities.
func sqlDeleteExtremities(n int) string {
	return `DELETE FROM room_forward_extremities WHERE room_id = $1 AND event_id IN (` + placeholders(2, n) + `)`
}

// preparedStatements are the statements the SQLite writer prepares.
var preparedStatements = []string{
	sqlSavepoint, sqlRollbackSavepoint, sqlReleaseSavepoint,
	sqlRoomAndGroup, sqlNextStreamPos, sqlNextStateGroup, sqlInsertEvent, sqlInsertTxn,
	sqlInsertSnapshotGroup, sqlInsertDeltaGroup, sqlInsertGroupEntry,
	sqlUpsertCurrentState, sqlClearCurrentState, sqlSetCurrentGroup,
	sqlDeleteExtremities(1), sqlAddExtremity, sqlInsertRedaction, sqlClearForgotten,
}

// PersistEvent validates e and hands it to the group writer.
func (s *sqlStore) PersistEvent(ctx context.Context, e NewEvent) (PersistResult, error) {
	if err := e.validate(); err != nil {
		return PersistResult{}, fmt.Errorf("storage: persist event %s: %w", e.EventID, err)
	}
	return s.writer.persist(ctx, e)
}

// validate checks what the databases would otherwise treat differently
// (PostgreSQL refuses NUL bytes and invalid UTF-8 in TEXT, SQLite does not)
// and what would corrupt the room's records.
func (e *NewEvent) validate() error {
	for _, f := range []struct{ name, v string }{
		{"event ID", e.EventID}, {"room ID", e.RoomID}, {"type", e.Type}, {"sender", e.Sender},
	} {
		if f.v == "" {
			return fmt.Errorf("empty %s", f.name)
		}
	}
	strs := []string{e.EventID, e.RoomID, e.Type, e.Sender, e.Membership, e.Redacts}
	if e.StateKey != nil {
		strs = append(strs, *e.StateKey)
	}
	strs = append(strs, e.PrevEvents...)
	if e.Txn != nil {
		if e.Txn.UserID == "" || e.Txn.TxnID == "" {
			return errors.New("transaction key without user or transaction ID")
		}
		strs = append(strs, e.Txn.UserID, e.Txn.DeviceID, e.Txn.TxnID)
	}
	if err := checkText(strs...); err != nil {
		return err
	}
	// Valid JSON cannot hold a raw NUL byte.
	if !json.Valid(e.JSON) || !utf8.Valid(e.JSON) {
		return errors.New("JSON is not valid UTF-8 JSON")
	}
	switch {
	case e.StateGroupBefore < 0:
		return fmt.Errorf("negative state group %d", e.StateGroupBefore)
	case e.StateGroupBefore == 0 && (e.Type != typeCreate || e.StateKey == nil || *e.StateKey != ""):
		return errors.New("only the m.room.create event (state key \"\") has no state group before it")
	}
	return nil
}

// membership is what the events and room_current_state tables record:
// content.membership of an m.room.member state event, NULL otherwise.
func (e *NewEvent) membership() any {
	if e.Type != typeMember || e.StateKey == nil {
		return nil
	}
	return nullIfEmpty(e.Membership)
}

// persistOne does PersistEvent's work inside tx (and inside a savepoint of
// it, which the caller rolls back when persistOne fails).
func persistOne(ctx context.Context, tx *batchTx, e NewEvent) (PersistResult, error) {
	what := "persist event " + e.EventID

	var cur sql.NullInt64
	var groupRoom sql.NullString
	var deltaCount sql.NullInt64
	err := tx.QueryRowContext(ctx, sqlRoomAndGroup, e.RoomID, e.StateGroupBefore).Scan(&cur, &groupRoom, &deltaCount)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return PersistResult{}, fmt.Errorf("storage: %s: room %s: %w", what, e.RoomID, ErrNotFound)
	case err != nil:
		return PersistResult{}, fmt.Errorf("storage: %s: read room: %w", what, err)
	}
	if e.StateGroupBefore == 0 {
		// validate made sure this is the create event.
		if cur.Valid {
			return PersistResult{}, fmt.Errorf("storage: %s: room %s already has state; it cannot take another create event", what, e.RoomID)
		}
	} else {
		switch {
		case !groupRoom.Valid:
			return PersistResult{}, fmt.Errorf("storage: %s: state group %d: %w", what, e.StateGroupBefore, ErrNotFound)
		case groupRoom.String != e.RoomID:
			return PersistResult{}, fmt.Errorf("storage: %s: state group %d belongs to room %s, not %s", what, e.StateGroupBefore, groupRoom.String, e.RoomID)
		}
	}

	var res PersistResult
	if err := tx.QueryRowContext(ctx, sqlNextStreamPos).Scan(&res.StreamPos); err != nil {
		return PersistResult{}, fmt.Errorf("storage: %s: assign stream position: %w", what, err)
	}
	res.StateGroupAfter = e.StateGroupBefore
	isState := e.StateKey != nil
	if isState {
		if err := tx.QueryRowContext(ctx, sqlNextStateGroup).Scan(&res.StateGroupAfter); err != nil {
			return PersistResult{}, fmt.Errorf("storage: %s: assign state group: %w", what, err)
		}
	}

	r, err := tx.ExecContext(ctx, sqlInsertEvent,
		e.EventID, e.RoomID, res.StreamPos, e.Depth, e.Type, derefOrNull(e.StateKey), e.Sender, e.OriginServerTS,
		e.membership(), string(e.JSON), nullIfZero(e.StateGroupBefore), res.StateGroupAfter)
	if err != nil {
		return PersistResult{}, fmt.Errorf("storage: %s: %w", what, err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return PersistResult{}, fmt.Errorf("storage: %s: %w", what, err)
	} else if n == 0 {
		return PersistResult{}, ErrEventExists
	}

	if e.Txn != nil {
		r, err := tx.ExecContext(ctx, sqlInsertTxn,
			e.Txn.UserID, e.Txn.DeviceID, e.Txn.TxnID, e.EventID, time.Now().UnixMilli())
		if err != nil {
			return PersistResult{}, fmt.Errorf("storage: %s: record transaction: %w", what, err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return PersistResult{}, fmt.Errorf("storage: %s: record transaction: %w", what, err)
		} else if n == 0 {
			return PersistResult{}, ErrTxnExists
		}
	}

	if isState {
		full, err := writeStateGroup(ctx, tx, e, res.StateGroupAfter, deltaCount.Int64)
		if err != nil {
			return PersistResult{}, fmt.Errorf("storage: %s: %w", what, err)
		}
		if err := updateCurrentState(ctx, tx, e, cur.Int64, res.StateGroupAfter, full); err != nil {
			return PersistResult{}, fmt.Errorf("storage: %s: %w", what, err)
		}
	}

	if prev := dedupe(e.PrevEvents); len(prev) > 0 {
		args := make([]any, 0, len(prev)+1)
		args = append(args, e.RoomID)
		for _, p := range prev {
			args = append(args, p)
		}
		if _, err := tx.ExecContext(ctx, sqlDeleteExtremities(len(prev)), args...); err != nil {
			return PersistResult{}, fmt.Errorf("storage: %s: update forward extremities: %w", what, err)
		}
	}
	if _, err := tx.ExecContext(ctx, sqlAddExtremity, e.RoomID, e.EventID); err != nil {
		return PersistResult{}, fmt.Errorf("storage: %s: add forward extremity: %w", what, err)
	}

	if e.Redacts != "" {
		if _, err := tx.ExecContext(ctx, sqlInsertRedaction, e.EventID, e.Redacts); err != nil {
			return PersistResult{}, fmt.Errorf("storage: %s: record redaction: %w", what, err)
		}
	}
	if e.Type == typeMember && isState {
		if _, err := tx.ExecContext(ctx, sqlClearForgotten, *e.StateKey, e.RoomID); err != nil {
			return PersistResult{}, fmt.Errorf("storage: %s: clear forgotten flag: %w", what, err)
		}
	}
	return res, nil
}

// writeStateGroup writes the state group a state event makes: a snapshot
// for the create event and when the chain it would extend is long enough,
// else a delta of one entry against the group before. It returns the full
// state when it computed it (for a snapshot), nil otherwise.
func writeStateGroup(ctx context.Context, tx *batchTx, e NewEvent, group, prevDeltaCount int64) ([]StateEntry, error) {
	entry := StateEntry{Type: e.Type, StateKey: *e.StateKey, EventID: e.EventID}
	before := e.StateGroupBefore
	var full []StateEntry
	switch {
	case before == 0:
		full = []StateEntry{entry}
	case prevDeltaCount+1 >= stateSnapshotInterval:
		var err error
		full, err = stateAt(ctx, tx, before)
		if err != nil {
			return nil, fmt.Errorf("read state group %d for a snapshot: %w", before, err)
		}
		full = withEntry(full, entry)
	}
	if full != nil {
		if _, err := tx.ExecContext(ctx, sqlInsertSnapshotGroup,
			group, e.RoomID, e.EventID); err != nil {
			return nil, fmt.Errorf("write state group %d: %w", group, err)
		}
		if err := insertEntries(ctx, tx, `INSERT INTO state_group_entries (group_id, type, state_key, event_id) VALUES `,
			`($%[1]d, $%[2]d, $%[3]d, $%[4]d)`, group, full); err != nil {
			return nil, fmt.Errorf("write state group %d: %w", group, err)
		}
		return full, nil
	}
	if _, err := tx.ExecContext(ctx, sqlInsertDeltaGroup,
		group, e.RoomID, e.EventID, before, prevDeltaCount+1); err != nil {
		return nil, fmt.Errorf("write state group %d: %w", group, err)
	}
	if _, err := tx.ExecContext(ctx, sqlInsertGroupEntry,
		group, entry.Type, entry.StateKey, entry.EventID); err != nil {
		return nil, fmt.Errorf("write state group %d: %w", group, err)
	}
	return nil, nil
}

// updateCurrentState makes group the room's current state. When the event
// was built on the current state (the usual case) that is one upsert; when
// it was built on some other group, room_current_state is rewritten from
// the new group, so that it always equals rooms.current_state_group.
func updateCurrentState(ctx context.Context, tx *batchTx, e NewEvent, cur, group int64, full []StateEntry) error {
	if e.StateGroupBefore == cur {
		if _, err := tx.ExecContext(ctx, sqlUpsertCurrentState,
			e.RoomID, e.Type, *e.StateKey, e.EventID, e.membership()); err != nil {
			return fmt.Errorf("update current state: %w", err)
		}
	} else {
		if full == nil {
			var err error
			if full, err = stateAt(ctx, tx, group); err != nil {
				return fmt.Errorf("rebuild current state from state group %d: %w", group, err)
			}
		}
		if _, err := tx.ExecContext(ctx, sqlClearCurrentState, e.RoomID); err != nil {
			return fmt.Errorf("rebuild current state: %w", err)
		}
		// $1 is the room in every row; each row's membership comes from
		// its event.
		if err := insertEntries(ctx, tx, `INSERT INTO room_current_state (room_id, type, state_key, event_id, membership) VALUES `,
			`($%[1]d, $%[2]d, $%[3]d, $%[4]d, (SELECT membership FROM events WHERE event_id = $%[4]d))`, e.RoomID, full); err != nil {
			return fmt.Errorf("rebuild current state: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, sqlSetCurrentGroup, e.RoomID, group); err != nil {
		return fmt.Errorf("update current state group: %w", err)
	}
	return nil
}

// entriesPerInsert bounds the rows of one multi-row INSERT (4 parameters
// each), well under both databases' parameter limits.
const entriesPerInsert = 200

// insertEntries inserts state entries with multi-row INSERTs: head is
// "INSERT INTO ... VALUES ", and tuple is the fmt format of one row, whose
// %[1]d .. %[4]d verbs become the placeholders of first, the entry's type,
// its state key and its event ID.
func insertEntries(ctx context.Context, tx *batchTx, head, tuple string, first any, entries []StateEntry) error {
	for chunk := range slices.Chunk(entries, entriesPerInsert) {
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, 4*len(chunk))
		for i, en := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			p := len(args)
			fmt.Fprintf(&b, tuple, p+1, p+2, p+3, p+4)
			args = append(args, first, en.Type, en.StateKey, en.EventID)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// withEntry returns state with e added, replacing the entry of the same
// type and state key, sorted.
func withEntry(state []StateEntry, e StateEntry) []StateEntry {
	i, found := slices.BinarySearchFunc(state, e, compareEntries)
	if found {
		state[i] = e
		return state
	}
	return slices.Insert(state, i, e)
}

func compareEntries(a, b StateEntry) int {
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return strings.Compare(a.StateKey, b.StateKey)
}

// querier is what stateAt needs: a *batchTx inside the writer, a *sql.DB
// for standalone reads.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// stateAt returns the full state of a group, sorted by type and state key
// (byte order): it walks the group's prev_group chain back to its snapshot
// in one recursive query and lets the newest entry of each (type,
// state_key) win. ErrNotFound when there is no such group.
func stateAt(ctx context.Context, q querier, group int64) ([]StateEntry, error) {
	rows, err := q.QueryContext(ctx, `WITH RECURSIVE chain (id, prev_group, hops) AS (
    SELECT id, prev_group, 0 FROM state_groups WHERE id = $1
    UNION ALL
    SELECT g.id, g.prev_group, c.hops + 1
    FROM state_groups g JOIN chain c ON g.id = c.prev_group
    WHERE c.hops < $2
)
SELECT c.hops, e.type, e.state_key, e.event_id
FROM chain c JOIN state_group_entries e ON e.group_id = c.id`, group, maxChainWalk)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type hopEntry struct {
		hops    int
		eventID string
	}
	newest := map[[2]string]hopEntry{}
	for rows.Next() {
		var h int
		var typ, key, id string
		if err := rows.Scan(&h, &typ, &key, &id); err != nil {
			return nil, err
		}
		k := [2]string{typ, key}
		if old, ok := newest[k]; !ok || h < old.hops {
			newest[k] = hopEntry{h, id}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(newest) == 0 {
		// Every group has at least the entry of the event that made it.
		return nil, ErrNotFound
	}
	state := make([]StateEntry, 0, len(newest))
	for k, v := range newest {
		state = append(state, StateEntry{Type: k[0], StateKey: k[1], EventID: v.eventID})
	}
	slices.SortFunc(state, compareEntries)
	return state, nil
}

// placeholders returns "$first, $first+1, ..." (n of them).
func placeholders(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", first+i)
	}
	return b.String()
}

// dedupe returns ids without repeats, in first-seen order.
func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// derefOrNull binds a nil *string as NULL.
func derefOrNull(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// nullIfZero stores 0 as NULL in nullable ID columns.
func nullIfZero(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}
