package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// JSON values are stored as TEXT and always bound as Go strings: a []byte
// would be stored as a BLOB on SQLite.

func (s *sqlStore) CreateUIASession(ctx context.Context, u UIASession) error {
	if u.ID == "" {
		return errors.New("storage: create UIA session: empty session ID")
	}
	what := "create UIA session " + u.ID
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ui_auth_sessions (session_id, creation_ts, method, uri, body) VALUES ($1, $2, $3, $4, $5)`,
			u.ID, u.CreatedTS, u.Method, u.URI, string(u.Body)); err != nil {
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		for stage, result := range u.Completed {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ui_auth_stage_results (session_id, stage_type, result) VALUES ($1, $2, $3)`,
				u.ID, stage, string(result)); err != nil {
				return fmt.Errorf("storage: %s: stage %s: %w", what, stage, err)
			}
		}
		return nil
	})
}

// GetUIASession reads the session and its stages in one statement, so the
// result is a consistent snapshot. Completed is never nil.
func (s *sqlStore) GetUIASession(ctx context.Context, id string) (UIASession, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT s.creation_ts, s.method, s.uri, s.body, r.stage_type, r.result
FROM ui_auth_sessions s LEFT JOIN ui_auth_stage_results r ON r.session_id = s.session_id
WHERE s.session_id = $1`, id)
	if err != nil {
		return UIASession{}, fmt.Errorf("storage: get UIA session %s: %w", id, err)
	}
	defer rows.Close()
	u := UIASession{ID: id, Completed: map[string]json.RawMessage{}}
	found := false
	for rows.Next() {
		var body string
		var stage, result sql.NullString
		if err := rows.Scan(&u.CreatedTS, &u.Method, &u.URI, &body, &stage, &result); err != nil {
			return UIASession{}, fmt.Errorf("storage: get UIA session %s: %w", id, err)
		}
		found = true
		if body != "" {
			u.Body = json.RawMessage(body)
		}
		if stage.Valid {
			u.Completed[stage.String] = json.RawMessage(result.String)
		}
	}
	if err := rows.Err(); err != nil {
		return UIASession{}, fmt.Errorf("storage: get UIA session %s: %w", id, err)
	}
	if !found {
		return UIASession{}, ErrNotFound
	}
	return u, nil
}

func (s *sqlStore) CompleteUIAStage(ctx context.Context, id, stage string, result json.RawMessage) error {
	what := fmt.Sprintf("complete stage %s of UIA session %s", stage, id)
	// One statement: insert or replace the result only if the session
	// exists, so "no such session" is simply 0 rows affected.
	res, err := s.w.ExecContext(ctx, `INSERT INTO ui_auth_stage_results (session_id, stage_type, result)
SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM ui_auth_sessions WHERE session_id = $1)
ON CONFLICT (session_id, stage_type) DO UPDATE SET result = excluded.result`, id, stage, string(result))
	if err != nil {
		// On PostgreSQL the session can be deleted after the EXISTS check.
		if isForeignKeyViolation(err) {
			return ErrNotFound
		}
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqlStore) DeleteUIASession(ctx context.Context, id string) error {
	what := "delete UIA session " + id
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ui_auth_stage_results WHERE session_id = $1`, id); err != nil {
			return fmt.Errorf("storage: %s: delete stage results: %w", what, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM ui_auth_sessions WHERE session_id = $1`, id); err != nil {
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		return nil
	})
}

func (s *sqlStore) DeleteUIASessionsBefore(ctx context.Context, ts int64) error {
	what := fmt.Sprintf("delete UIA sessions created before %d", ts)
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ui_auth_stage_results WHERE session_id IN
    (SELECT session_id FROM ui_auth_sessions WHERE creation_ts < $1)`, ts); err != nil {
			return fmt.Errorf("storage: %s: delete stage results: %w", what, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM ui_auth_sessions WHERE creation_ts < $1`, ts); err != nil {
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		return nil
	})
}
