package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// UserDirectoryQuery is a user directory search.
type UserDirectoryQuery struct {
	// Searcher is the local user searching.
	Searcher string
	// SearchTerm is the client's text; see SearchTerms for how it is
	// split. A term without words matches nobody.
	SearchTerm string
	// Limit is the most results returned (Limit+1 are read to tell
	// whether there were more).
	Limit int
	// AllUsers searches every local user (user_directory.search_all_users)
	// instead of those who share a room with the searcher or are in a
	// public room.
	AllUsers bool
}

// UserDirectoryEntry is one search result. Nil fields are not set.
type UserDirectoryEntry struct {
	UserID      string
	DisplayName *string
	AvatarURL   *string
}

// UserDirectoryResult is the answer of a search: at most Limit results,
// best first, and whether more users matched.
type UserDirectoryResult struct {
	Results []UserDirectoryEntry
	Limited bool
}

// SearchUserDirectory finds the users whose tokens (UserTokens) begin with
// every term of the search, in one query, as Synapse's search_user_dir:
//
//   - who: with AllUsers every user but the searcher; otherwise the users
//     joined to a public room (join rule public or history visibility
//     world_readable) and those joined to a room the searcher is joined to
//     (the searcher appears only through a public room). Deactivated and
//     support users never appear; shadow-banned users do.
//   - order: the sum over the terms of the best matching token's weight,
//     four times when the token is the whole term (an exact word beats a
//     prefix), times 1.2 for a display name and 1.2 for an avatar; then
//     users with a display name, then with an avatar, then by user ID.
//
// First it brings the index up to date: profiles not yet tokenised and
// rooms whose join rules or history visibility changed.
func (s *sqlStore) SearchUserDirectory(ctx context.Context, q UserDirectoryQuery) (UserDirectoryResult, error) {
	terms := SearchTerms(q.SearchTerm)
	if len(terms) == 0 || q.Limit < 0 {
		return UserDirectoryResult{Results: []UserDirectoryEntry{}}, nil
	}
	if err := s.refreshUserDirectory(ctx, !q.AllUsers); err != nil {
		return UserDirectoryResult{}, err
	}
	args := []any{q.Searcher}
	var where, score []string
	for _, t := range terms {
		args = append(args, likePrefix(t), t)
		p, e := len(args)-1, len(args)
		where = append(where, fmt.Sprintf(`EXISTS (SELECT 1 FROM user_directory_tokens t WHERE t.user_id = p.user_id AND t.token LIKE $%d ESCAPE '\')`, p))
		score = append(score, fmt.Sprintf(`(SELECT MAX(CASE WHEN t.token = $%d THEN 4 * t.weight ELSE t.weight END) FROM user_directory_tokens t WHERE t.user_id = p.user_id AND t.token LIKE $%d ESCAPE '\')`, e, p))
	}
	visible := `p.user_id <> $1`
	if !q.AllUsers {
		visible = `(EXISTS (SELECT 1 FROM room_current_state m JOIN user_directory_rooms d ON d.room_id = m.room_id
        WHERE m.type = 'm.room.member' AND m.state_key = p.user_id AND m.membership = 'join' AND d.public = 1)
    OR (p.user_id <> $1 AND EXISTS (SELECT 1 FROM room_current_state m
        JOIN room_current_state o ON o.room_id = m.room_id AND o.type = 'm.room.member' AND o.state_key = $1 AND o.membership = 'join'
        WHERE m.type = 'm.room.member' AND m.state_key = p.user_id AND m.membership = 'join')))`
	}
	args = append(args, q.Limit+1)
	query := `SELECT p.user_id, p.displayname, p.avatar_url,
    (` + strings.Join(score, " + ") + `)
    * (CASE WHEN p.displayname IS NOT NULL THEN 12 ELSE 10 END)
    * (CASE WHEN p.avatar_url IS NOT NULL THEN 12 ELSE 10 END) AS score
FROM profiles p JOIN users u ON u.user_id = p.user_id
WHERE u.deactivated = 0 AND (u.user_type IS NULL OR u.user_type <> 'support')
    AND ` + strings.Join(where, "\n    AND ") + `
    AND ` + visible + `
ORDER BY score DESC, p.displayname IS NULL, p.avatar_url IS NULL, p.user_id
LIMIT $` + fmt.Sprint(len(args))
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return UserDirectoryResult{}, fmt.Errorf("storage: search user directory: %w", err)
	}
	defer rows.Close()
	res := UserDirectoryResult{Results: []UserDirectoryEntry{}}
	for rows.Next() {
		var e UserDirectoryEntry
		var dn, av sql.NullString
		var sc int64
		if err := rows.Scan(&e.UserID, &dn, &av, &sc); err != nil {
			return UserDirectoryResult{}, fmt.Errorf("storage: search user directory: %w", err)
		}
		e.DisplayName, e.AvatarURL = nullString(dn), nullString(av)
		res.Results = append(res.Results, e)
	}
	if err := rows.Err(); err != nil {
		return UserDirectoryResult{}, fmt.Errorf("storage: search user directory: %w", err)
	}
	if len(res.Results) > q.Limit {
		res.Results, res.Limited = res.Results[:q.Limit], true
	}
	return res, nil
}

// refreshUserDirectory tokenises the profiles that have no tokens yet (those
// the migration created) and, when rooms is set, recomputes which rooms are
// public for the rooms whose join rules or history visibility event is not
// the one their row was computed from.
func (s *sqlStore) refreshUserDirectory(ctx context.Context, rooms bool) error {
	type pending struct {
		userID string
		dn     sql.NullString
	}
	var users []pending
	rows, err := s.r.QueryContext(ctx, `SELECT p.user_id, p.displayname FROM profiles p
WHERE NOT EXISTS (SELECT 1 FROM user_directory_tokens t WHERE t.user_id = p.user_id)`)
	if err != nil {
		return fmt.Errorf("storage: refresh user directory: %w", err)
	}
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.userID, &p.dn); err != nil {
			rows.Close()
			return fmt.Errorf("storage: refresh user directory: %w", err)
		}
		users = append(users, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("storage: refresh user directory: %w", err)
	}

	type roomRow struct {
		roomID, jrEvent, hvEvent string
		public                   bool
	}
	var stale []roomRow
	if rooms {
		rows, err := s.r.QueryContext(ctx, `SELECT r.room_id, COALESCE(jr.event_id, ''), COALESCE(hv.event_id, ''), jre.json, hve.json
FROM rooms r
LEFT JOIN room_current_state jr ON jr.room_id = r.room_id AND jr.type = 'm.room.join_rules' AND jr.state_key = ''
LEFT JOIN events jre ON jre.event_id = jr.event_id
LEFT JOIN room_current_state hv ON hv.room_id = r.room_id AND hv.type = 'm.room.history_visibility' AND hv.state_key = ''
LEFT JOIN events hve ON hve.event_id = hv.event_id
LEFT JOIN user_directory_rooms d ON d.room_id = r.room_id
WHERE d.room_id IS NULL OR d.join_rules_event <> COALESCE(jr.event_id, '') OR d.history_event <> COALESCE(hv.event_id, '')`)
		if err != nil {
			return fmt.Errorf("storage: refresh user directory rooms: %w", err)
		}
		for rows.Next() {
			var r roomRow
			var jrJSON, hvJSON sql.NullString
			if err := rows.Scan(&r.roomID, &r.jrEvent, &r.hvEvent, &jrJSON, &hvJSON); err != nil {
				rows.Close()
				return fmt.Errorf("storage: refresh user directory rooms: %w", err)
			}
			r.public = contentString(jrJSON, "join_rule") == "public" || contentString(hvJSON, "history_visibility") == "world_readable"
			stale = append(stale, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("storage: refresh user directory rooms: %w", err)
		}
	}
	if len(users) == 0 && len(stale) == 0 {
		return nil
	}
	return s.inTx(ctx, "refresh user directory", func(tx *sql.Tx) error {
		for _, u := range users {
			if err := indexUserTx(ctx, tx, u.userID, u.dn.String, false); err != nil {
				return err
			}
		}
		for _, r := range stale {
			if _, err := tx.ExecContext(ctx, `INSERT INTO user_directory_rooms (room_id, join_rules_event, history_event, public)
VALUES ($1, $2, $3, $4)
ON CONFLICT (room_id) DO UPDATE SET join_rules_event = excluded.join_rules_event,
    history_event = excluded.history_event, public = excluded.public`, r.roomID, r.jrEvent, r.hvEvent, boolInt(r.public)); err != nil {
				return fmt.Errorf("storage: refresh user directory room %s: %w", r.roomID, err)
			}
		}
		return nil
	})
}

// contentString is a string field of a stored event's content ("" when the
// event, the field or a string there is missing).
func contentString(raw sql.NullString, field string) string {
	if !raw.Valid {
		return ""
	}
	var ev struct {
		Content map[string]any `json:"content"`
	}
	if json.Unmarshal([]byte(raw.String), &ev) != nil {
		return ""
	}
	v, _ := ev.Content[field].(string)
	return v
}
