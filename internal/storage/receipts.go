package storage

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// Receipt is a user's read receipt in a room.
type Receipt struct {
	RoomID, Type, UserID, ThreadID, EventID string // Type: m.read or m.read.private; ThreadID "" = unthreaded
	TS                                      int64  // ms
	StreamPos                               int64
}

// ReceiptStore keeps users' current read receipts. It is part of Store.
type ReceiptStore interface {
	// SetReceipt stores (replaces) the user's receipt of that type in that
	// room and thread; returns its stream position. Positions increase and
	// commit in order. As in Synapse, a receipt never moves back: when the
	// current receipt is for the same or a later event of the room (by
	// stream position), nothing changes and pos is 0. A receipt for an
	// event the store does not know always replaces the current one.
	SetReceipt(ctx context.Context, r Receipt) (pos int64, err error)
	// ReceiptsSince returns the current receipts of the rooms whose stream
	// position is in (since, to], in one query per 2000 rooms, ordered by
	// stream position; empty not nil.
	ReceiptsSince(ctx context.Context, roomIDs []string, since, to int64) ([]Receipt, error)
	// MaxReceiptPos is the receipt stream's latest position (0 when none).
	MaxReceiptPos(ctx context.Context) (int64, error)
}

const (
	sqlNextReceiptPos = `UPDATE receipts_stream SET pos = pos + 1 WHERE singleton = 0 RETURNING pos`
	sqlUpsertReceipt  = `INSERT INTO receipts (room_id, type, user_id, thread_id, event_id, event_stream_pos, ts, stream_pos)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (room_id, type, user_id, thread_id) DO UPDATE SET event_id = excluded.event_id,
  event_stream_pos = excluded.event_stream_pos, ts = excluded.ts, stream_pos = excluded.stream_pos`
)

// errReceiptNotNewer rolls back a receipt that would move backwards, and
// with it the stream position it took.
var errReceiptNotNewer = errors.New("storage: the current receipt is for a later event")

func (s *sqlStore) SetReceipt(ctx context.Context, r Receipt) (int64, error) {
	what := "set receipt " + r.Type + " of " + r.UserID + " in " + r.RoomID
	if err := checkText(r.RoomID, r.Type, r.UserID, r.ThreadID, r.EventID); err != nil {
		return 0, fmt.Errorf("storage: %s: %w", what, err)
	}
	var pos int64
	err := s.inTx(ctx, what, func(tx *sql.Tx) error {
		// The position first: its row lock serialises receipt writes, so
		// the comparison below sees the latest committed receipt.
		if err := tx.QueryRowContext(ctx, sqlNextReceiptPos).Scan(&pos); err != nil {
			return fmt.Errorf("storage: %s: next stream position: %w", what, err)
		}
		var evPos sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT stream_pos FROM events WHERE event_id = $1 AND room_id = $2`,
			r.EventID, r.RoomID).Scan(&evPos)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("storage: %s: event: %w", what, err)
		}
		if evPos.Valid {
			var cur sql.NullInt64
			err := tx.QueryRowContext(ctx, `SELECT event_stream_pos FROM receipts
WHERE room_id = $1 AND type = $2 AND user_id = $3 AND thread_id = $4`, r.RoomID, r.Type, r.UserID, r.ThreadID).Scan(&cur)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return fmt.Errorf("storage: %s: current receipt: %w", what, err)
			case cur.Valid && cur.Int64 >= evPos.Int64:
				return errReceiptNotNewer
			}
		}
		if _, err := tx.ExecContext(ctx, sqlUpsertReceipt, r.RoomID, r.Type, r.UserID, r.ThreadID, r.EventID,
			evPos, r.TS, pos); err != nil {
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		return nil
	})
	if errors.Is(err, errReceiptNotNewer) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return pos, nil
}

func (s *sqlStore) ReceiptsSince(ctx context.Context, roomIDs []string, since, to int64) ([]Receipt, error) {
	out := []Receipt{}
	if since >= to {
		return out, nil
	}
	queries := 0
	for chunk := range slices.Chunk(dedupe(roomIDs), roomsPerQuery) {
		queries++
		args := []any{since, to}
		for _, r := range chunk {
			args = append(args, r)
		}
		if err := s.receiptsOf(ctx, args, len(chunk), &out); err != nil {
			return nil, err
		}
	}
	if queries > 1 {
		// Each query is in order; together they are not.
		slices.SortFunc(out, func(a, b Receipt) int { return cmp.Compare(a.StreamPos, b.StreamPos) })
	}
	return out, nil
}

func (s *sqlStore) receiptsOf(ctx context.Context, args []any, rooms int, out *[]Receipt) error {
	rows, err := s.r.QueryContext(ctx, `SELECT room_id, type, user_id, thread_id, event_id, ts, stream_pos FROM receipts
WHERE stream_pos > $1 AND stream_pos <= $2 AND room_id IN (`+placeholders(3, rooms)+`) ORDER BY stream_pos`, args...)
	if err != nil {
		return fmt.Errorf("storage: receipts of %d rooms: %w", rooms, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Receipt
		if err := rows.Scan(&r.RoomID, &r.Type, &r.UserID, &r.ThreadID, &r.EventID, &r.TS, &r.StreamPos); err != nil {
			return fmt.Errorf("storage: receipts of %d rooms: %w", rooms, err)
		}
		*out = append(*out, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("storage: receipts of %d rooms: %w", rooms, err)
	}
	return nil
}

func (s *sqlStore) MaxReceiptPos(ctx context.Context) (int64, error) {
	var pos int64
	if err := s.r.QueryRowContext(ctx, `SELECT pos FROM receipts_stream WHERE singleton = 0`).Scan(&pos); err != nil {
		return 0, fmt.Errorf("storage: receipt stream position: %w", err)
	}
	return pos, nil
}
