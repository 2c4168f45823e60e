package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// userColumns is the column list scanUser expects. The SMALLINT flags scan
// straight into bools: database/sql converts 0/1.
const userColumns = `user_id, COALESCE(password_hash, ''), admin, shadow_banned, deactivated, is_guest, COALESCE(user_type, ''), creation_ts`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	err := row.Scan(&u.UserID, &u.PasswordHash, &u.Admin, &u.ShadowBanned, &u.Deactivated, &u.IsGuest, &u.UserType, &u.CreatedTS)
	return u, err
}

func (s *sqlStore) CreateUser(ctx context.Context, u User, sess *NewSession) error {
	if u.UserID == "" {
		return errors.New("storage: create user: empty user ID")
	}
	if sess != nil {
		if err := sess.validate(); err != nil {
			return fmt.Errorf("storage: create user %s: %w", u.UserID, err)
		}
	}
	return s.inTx(ctx, "create user "+u.UserID, func(tx *sql.Tx) error {
		// ON CONFLICT DO NOTHING covers both the primary key and the unique
		// index on user_id_lower, and on PostgreSQL waits for a concurrent
		// insert of the same ID to finish: of racing creators exactly one
		// inserts a row and the others see 0 rows affected.
		res, err := tx.ExecContext(ctx, `INSERT INTO users
    (user_id, user_id_lower, password_hash, admin, shadow_banned, deactivated, is_guest, user_type, creation_ts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING`,
			u.UserID, asciiLower(u.UserID), nullIfEmpty(u.PasswordHash),
			boolInt(u.Admin), boolInt(u.ShadowBanned), boolInt(u.Deactivated), boolInt(u.IsGuest),
			nullIfEmpty(u.UserType), u.CreatedTS)
		if err != nil {
			return fmt.Errorf("storage: create user %s: %w", u.UserID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("storage: create user %s: %w", u.UserID, err)
		}
		if n == 0 {
			return ErrUserExists
		}
		// Every new user has a profile, as Synapse's registration gives.
		if err := insertProfileTx(ctx, tx, u.UserID, u.DisplayName); err != nil {
			return fmt.Errorf("storage: create user %s: profile: %w", u.UserID, err)
		}
		if sess != nil {
			if err := insertSession(ctx, tx, u.UserID, *sess); err != nil {
				return fmt.Errorf("storage: create user %s: %w", u.UserID, err)
			}
		}
		return nil
	})
}

func (s *sqlStore) GetUser(ctx context.Context, userID string) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = $1`, userID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return User{}, ErrNotFound
	case err != nil:
		return User{}, fmt.Errorf("storage: get user %s: %w", userID, err)
	}
	return u, nil
}

func (s *sqlStore) FindUsersCaseInsensitive(ctx context.Context, userID string) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id_lower = $1 ORDER BY user_id`, asciiLower(userID))
	if err != nil {
		return nil, fmt.Errorf("storage: find users like %s: %w", userID, err)
	}
	defer rows.Close()
	users := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: find users like %s: %w", userID, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: find users like %s: %w", userID, err)
	}
	return users, nil
}

func (s *sqlStore) SetPasswordHash(ctx context.Context, userID, hash string) error {
	return s.execOne(ctx, "set password hash of "+userID,
		`UPDATE users SET password_hash = $2 WHERE user_id = $1`, userID, nullIfEmpty(hash))
}

func (s *sqlStore) SetShadowBanned(ctx context.Context, userID string, banned bool) error {
	return s.execOne(ctx, "set shadow ban of "+userID,
		`UPDATE users SET shadow_banned = $2 WHERE user_id = $1`, userID, boolInt(banned))
}

func (s *sqlStore) SetAdmin(ctx context.Context, userID string, admin bool) error {
	return s.execOne(ctx, "set admin flag of "+userID,
		`UPDATE users SET admin = $2 WHERE user_id = $1`, userID, boolInt(admin))
}
