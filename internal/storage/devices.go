package storage

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

func (n NewSession) validate() error {
	switch {
	case n.DeviceID == "":
		return errors.New("empty device ID")
	case len(n.TokenHash) == 0:
		return errors.New("empty access token hash")
	}
	return nil
}

// tokenKey is how a token hash is stored: lower-case hex, so that the
// column is plain TEXT on both databases.
func tokenKey(hash []byte) string { return hex.EncodeToString(hash) }

// insertSession adds the device unless it exists, then the token.
func insertSession(ctx context.Context, tx *sql.Tx, userID string, sess NewSession) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO devices (user_id, device_id, display_name) VALUES ($1, $2, $3)
ON CONFLICT (user_id, device_id) DO NOTHING`, userID, sess.DeviceID, nullIfEmpty(sess.DisplayName)); err != nil {
		return fmt.Errorf("add device %s: %w", sess.DeviceID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts) VALUES ($1, $2, $3, $4)`,
		tokenKey(sess.TokenHash), userID, sess.DeviceID, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("add access token for device %s: %w", sess.DeviceID, err)
	}
	return nil
}

func (s *sqlStore) CreateSession(ctx context.Context, userID string, sess NewSession) error {
	what := "create session for " + userID
	if err := sess.validate(); err != nil {
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE user_id = $1`, userID).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		if err := insertSession(ctx, tx, userID, sess); err != nil {
			// On PostgreSQL the device can be deleted between the two
			// inserts; the token then has nothing to belong to.
			if isForeignKeyViolation(err) {
				return ErrNotFound
			}
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		return nil
	})
}

func (s *sqlStore) LookupAccessToken(ctx context.Context, tokenHash []byte) (TokenOwner, error) {
	var o TokenOwner
	err := s.r.QueryRowContext(ctx, `SELECT user_id, device_id FROM access_tokens WHERE token_hash = $1`,
		tokenKey(tokenHash)).Scan(&o.UserID, &o.DeviceID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return TokenOwner{}, ErrNotFound
	case err != nil:
		return TokenOwner{}, fmt.Errorf("storage: look up access token: %w", err)
	}
	return o, nil
}

const deviceColumns = `user_id, device_id, COALESCE(display_name, ''), COALESCE(last_seen_ts, 0), COALESCE(last_seen_ip, ''), COALESCE(last_seen_user_agent, '')`

func scanDevice(row interface{ Scan(...any) error }) (Device, error) {
	var d Device
	err := row.Scan(&d.UserID, &d.DeviceID, &d.DisplayName, &d.LastSeenTS, &d.LastSeenIP, &d.LastSeenUA)
	return d, err
}

func (s *sqlStore) GetDevices(ctx context.Context, userID string) ([]Device, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE user_id = $1 ORDER BY device_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: get devices of %s: %w", userID, err)
	}
	defer rows.Close()
	devices := []Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: get devices of %s: %w", userID, err)
		}
		devices = append(devices, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: get devices of %s: %w", userID, err)
	}
	return devices, nil
}

func (s *sqlStore) GetDevice(ctx context.Context, userID, deviceID string) (Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE user_id = $1 AND device_id = $2`, userID, deviceID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Device{}, ErrNotFound
	case err != nil:
		return Device{}, fmt.Errorf("storage: get device %s of %s: %w", deviceID, userID, err)
	}
	return d, nil
}

func (s *sqlStore) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	what := fmt.Sprintf("delete device %s of %s", deviceID, userID)
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2`, userID, deviceID); err != nil {
			return fmt.Errorf("storage: %s: delete access tokens: %w", what, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id = $2`, userID, deviceID); err != nil {
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		return nil
	})
}

func (s *sqlStore) DeleteDevicesExcept(ctx context.Context, userID, keep string) ([]string, error) {
	what := "delete devices of " + userID
	// $2 = '' keeps nothing; otherwise the device named by $2 survives.
	const except = `user_id = $1 AND ($2 = '' OR device_id <> $2)`
	deleted := []string{}
	err := s.inTx(ctx, what, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE `+except, userID, keep); err != nil {
			return fmt.Errorf("storage: %s: delete access tokens: %w", what, err)
		}
		// RETURNING reports exactly the rows this statement removed, even if
		// another transaction adds or removes devices meanwhile.
		rows, err := tx.QueryContext(ctx, `DELETE FROM devices WHERE `+except+` RETURNING device_id`, userID, keep)
		if err != nil {
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("storage: %s: %w", what, err)
			}
			deleted = append(deleted, id)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("storage: %s: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// RETURNING has no defined order.
	slices.Sort(deleted)
	return deleted, nil
}

func (s *sqlStore) UpdateDeviceLastSeen(ctx context.Context, userID, deviceID, ip, userAgent string, ts int64) error {
	return s.execOne(ctx, fmt.Sprintf("update last seen of device %s of %s", deviceID, userID),
		`UPDATE devices SET last_seen_ts = $3, last_seen_ip = $4, last_seen_user_agent = $5 WHERE user_id = $1 AND device_id = $2`,
		userID, deviceID, ts, ip, userAgent)
}
