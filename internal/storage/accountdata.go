package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// AccountDataEntry is one piece of a user's account data.
type AccountDataEntry struct {
	RoomID    string // "" for global account data
	Type      string
	Content   []byte // a JSON object
	StreamPos int64
}

// AccountDataStore keeps users' account data, global and per room. It is
// part of Store.
type AccountDataStore interface {
	// SetAccountData stores (or replaces) one piece of account data (roomID
	// "" for global) and returns the stream position it was given. Positions
	// increase across all users and commit in order.
	SetAccountData(ctx context.Context, userID, roomID, typ string, content []byte) (pos int64, err error)
	// GetAccountData returns the content stored, or ErrNotFound.
	GetAccountData(ctx context.Context, userID, roomID, typ string) ([]byte, error)
	// AccountDataSince returns the user's account data written after stream
	// position since (0: all of it), ordered by stream position; empty (not
	// nil) when none.
	AccountDataSince(ctx context.Context, userID string, since int64) ([]AccountDataEntry, error)
}

const (
	sqlNextAccountDataPos = `UPDATE account_data_stream SET pos = pos + 1 WHERE singleton = 0 RETURNING pos`
	sqlUpsertAccountData  = `INSERT INTO account_data (user_id, room_id, type, content, stream_pos) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_pos = excluded.stream_pos`
)

func (s *sqlStore) SetAccountData(ctx context.Context, userID, roomID, typ string, content []byte) (int64, error) {
	what := "set account data " + typ + " of " + userID
	if err := checkText(userID, roomID, typ, string(content)); err != nil {
		return 0, fmt.Errorf("storage: %s: %w", what, err)
	}
	var pos int64
	err := s.inTx(ctx, what, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, sqlNextAccountDataPos).Scan(&pos); err != nil {
			return fmt.Errorf("storage: %s: next stream position: %w", what, err)
		}
		if _, err := tx.ExecContext(ctx, sqlUpsertAccountData, userID, roomID, typ, string(content), pos); err != nil {
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return pos, nil
}

func (s *sqlStore) GetAccountData(ctx context.Context, userID, roomID, typ string) ([]byte, error) {
	var content string
	err := s.r.QueryRowContext(ctx, `SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND type = $3`,
		userID, roomID, typ).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: get account data %s of %s: %w", typ, userID, err)
	}
	return []byte(content), nil
}

func (s *sqlStore) AccountDataSince(ctx context.Context, userID string, since int64) ([]AccountDataEntry, error) {
	return accountDataSince(ctx, s.r, userID, since, math.MaxInt64)
}

func accountDataSince(ctx context.Context, q querier, userID string, since, to int64) ([]AccountDataEntry, error) {
	rows, err := q.QueryContext(ctx, `SELECT room_id, type, content, stream_pos FROM account_data
WHERE user_id = $1 AND stream_pos > $2 AND stream_pos <= $3 ORDER BY stream_pos`, userID, since, to)
	if err != nil {
		return nil, fmt.Errorf("storage: account data of %s since %d: %w", userID, since, err)
	}
	defer rows.Close()
	out := []AccountDataEntry{}
	for rows.Next() {
		var e AccountDataEntry
		var content string
		if err := rows.Scan(&e.RoomID, &e.Type, &content, &e.StreamPos); err != nil {
			return nil, fmt.Errorf("storage: account data of %s since %d: %w", userID, since, err)
		}
		e.Content = []byte(content)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: account data of %s since %d: %w", userID, since, err)
	}
	return out, nil
}
