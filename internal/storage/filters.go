package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// FilterStore keeps users' sync filters. It is part of Store.
type FilterStore interface {
	// AddFilter stores a filter (its JSON text) and returns its ID: 0 for a
	// user's first filter, then one more than the user's highest. Adding a
	// filter with exactly the same text as one the user already has returns
	// that filter's ID instead, as Synapse does.
	AddFilter(ctx context.Context, userID string, filterJSON []byte) (int64, error)
	// GetFilter returns a filter's JSON text, or ErrNotFound.
	GetFilter(ctx context.Context, userID string, filterID int64) ([]byte, error)
}

// addFilterAttempts bounds how often AddFilter picks an ID again because a
// concurrent AddFilter of the same user took it (PostgreSQL only: SQLite
// has a single writer). Every lost race means another filter committed.
const addFilterAttempts = 100

func (s *sqlStore) AddFilter(ctx context.Context, userID string, filterJSON []byte) (int64, error) {
	what := "add filter for " + userID
	if err := checkText(userID, string(filterJSON)); err != nil {
		return 0, fmt.Errorf("storage: %s: %w", what, err)
	}
	var id int64
	err := s.inTx(ctx, what, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT filter_id FROM filters WHERE user_id = $1 AND filter_json = $2 ORDER BY filter_id LIMIT 1`,
			userID, string(filterJSON)).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		for range addFilterAttempts {
			// Each statement sees the rows committed before it (READ
			// COMMITTED), and ON CONFLICT waits for a concurrent insert of
			// the same ID to commit, so a lost race is retried, not failed.
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(filter_id) + 1, 0) FROM filters WHERE user_id = $1`, userID).Scan(&id); err != nil {
				return fmt.Errorf("storage: %s: %w", what, err)
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO filters (user_id, filter_id, filter_json) VALUES ($1, $2, $3)
ON CONFLICT (user_id, filter_id) DO NOTHING`, userID, id, string(filterJSON))
			if err != nil {
				return fmt.Errorf("storage: %s: %w", what, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("storage: %s: %w", what, err)
			} else if n == 1 {
				return nil
			}
		}
		return fmt.Errorf("storage: %s: no free filter ID after %d attempts", what, addFilterAttempts)
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

func (s *sqlStore) GetFilter(ctx context.Context, userID string, filterID int64) ([]byte, error) {
	var text string
	err := s.r.QueryRowContext(ctx, `SELECT filter_json FROM filters WHERE user_id = $1 AND filter_id = $2`, userID, filterID).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: get filter %d of %s: %w", filterID, userID, err)
	}
	return []byte(text), nil
}
