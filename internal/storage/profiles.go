package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Profile is a local user's global profile. A nil field is not set
// (Synapse's None); an empty string is a value.
type Profile struct {
	DisplayName *string
	AvatarURL   *string
}

// ProfileStore keeps users' global profiles and the user directory built on
// them.
type ProfileStore interface {
	// GetProfile returns a user's profile, or ErrNotFound when the user
	// has none (an unknown user).
	GetProfile(ctx context.Context, userID string) (Profile, error)
	// SetProfileDisplayName sets (nil: clears) a user's display name,
	// creating the profile if needed, and re-indexes the user for the user
	// directory in the same transaction.
	SetProfileDisplayName(ctx context.Context, userID string, displayName *string) error
	// SetProfileAvatarURL sets (nil: clears) a user's avatar URL, creating
	// the profile if needed.
	SetProfileAvatarURL(ctx context.Context, userID string, avatarURL *string) error
	// ShareARoom reports whether both users are joined to at least one
	// common room.
	ShareARoom(ctx context.Context, a, b string) (bool, error)
	// SearchUserDirectory is the user directory search (see
	// UserDirectoryQuery).
	SearchUserDirectory(ctx context.Context, q UserDirectoryQuery) (UserDirectoryResult, error)
}

func (s *sqlStore) GetProfile(ctx context.Context, userID string) (Profile, error) {
	var dn, av sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT displayname, avatar_url FROM profiles WHERE user_id = $1`, userID).Scan(&dn, &av)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Profile{}, ErrNotFound
	case err != nil:
		return Profile{}, fmt.Errorf("storage: get profile of %s: %w", userID, err)
	}
	return Profile{DisplayName: nullString(dn), AvatarURL: nullString(av)}, nil
}

func nullString(n sql.NullString) *string {
	if !n.Valid {
		return nil
	}
	return &n.String
}

func (s *sqlStore) SetProfileDisplayName(ctx context.Context, userID string, displayName *string) error {
	return s.inTx(ctx, "set display name of "+userID, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO profiles (user_id, displayname) VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname`, userID, derefOrNull(displayName)); err != nil {
			return fmt.Errorf("storage: set display name of %s: %w", userID, err)
		}
		dn := ""
		if displayName != nil {
			dn = *displayName
		}
		return indexUserTx(ctx, tx, userID, dn, true)
	})
}

func (s *sqlStore) SetProfileAvatarURL(ctx context.Context, userID string, avatarURL *string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO profiles (user_id, avatar_url) VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET avatar_url = excluded.avatar_url`, userID, derefOrNull(avatarURL))
	if err != nil {
		return fmt.Errorf("storage: set avatar URL of %s: %w", userID, err)
	}
	return nil
}

// insertProfileTx gives a new user their profile (display name: the
// localpart unless displayName says otherwise) and indexes them, inside
// CreateUser's transaction.
func insertProfileTx(ctx context.Context, tx *sql.Tx, userID, displayName string) error {
	if displayName == "" {
		displayName, _ = splitUserID(userID)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO profiles (user_id, displayname) VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname, avatar_url = NULL`, userID, displayName); err != nil {
		return err
	}
	return indexUserTx(ctx, tx, userID, displayName, false)
}

func (s *sqlStore) ShareARoom(ctx context.Context, a, b string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM room_current_state m
JOIN room_current_state o ON o.room_id = m.room_id AND o.type = 'm.room.member' AND o.state_key = $2 AND o.membership = 'join'
WHERE m.type = 'm.room.member' AND m.state_key = $1 AND m.membership = 'join'
LIMIT 1`, a, b).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("storage: do %s and %s share a room: %w", a, b, err)
	}
	return true, nil
}

// splitUserID splits "@local:server" into its localpart and server name.
func splitUserID(userID string) (local, server string) {
	local, server, _ = strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	return local, server
}

// Token weights: a word of the localpart counts most, then one of the
// display name, then one of the server name (Synapse's PostgreSQL weights
// 1.0, 0.9 and 0.1, as integers so both databases rank alike).
const (
	weightLocalpart   = 10
	weightDisplayName = 9
	weightServer      = 1
)

// maxSearchTerms bounds the words of a search (Synapse's PostgreSQL limit).
const maxSearchTerms = 10

// indexUserTx replaces (or, for a user without any, adds) a user's user
// directory tokens, in one INSERT.
func indexUserTx(ctx context.Context, tx *sql.Tx, userID, displayName string, replace bool) error {
	if replace {
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_directory_tokens WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("storage: index %s: %w", userID, err)
		}
	}
	toks := UserTokens(userID, displayName)
	if len(toks) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(toks))
	var values []string
	for _, tok := range slices.Sorted(maps.Keys(toks)) {
		n := len(args)
		values = append(values, fmt.Sprintf("($%d, $%d, $%d)", n+1, n+2, n+3))
		args = append(args, userID, tok, toks[tok])
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO user_directory_tokens (user_id, token, weight) VALUES `+
		strings.Join(values, ", ")+` ON CONFLICT (user_id, token) DO NOTHING`, args...); err != nil {
		return fmt.Errorf("storage: index %s: %w", userID, err)
	}
	return nil
}

// UserTokens are the words a user is found by in the user directory, each
// with the weight of the best part of the user it came from: the words of
// the localpart, of the display name and of the server name.
func UserTokens(userID, displayName string) map[string]int {
	local, server := splitUserID(userID)
	out := map[string]int{}
	add := func(text string, w int) {
		for _, seg := range segments(text) {
			for _, tok := range append([]string{seg}, splitJoined(seg)...) {
				if out[tok] < w {
					out[tok] = w
				}
			}
		}
	}
	add(server, weightServer)
	add(displayName, weightDisplayName)
	add(local, weightLocalpart)
	return out
}

// SearchTerms are the words of a search term: each must be the beginning
// of one of a user's tokens. Words joined by "-", "." or "_" stay one term
// ("user-71"), as Synapse keeps them; at most 10 terms count.
func SearchTerms(searchTerm string) []string {
	terms := segments(searchTerm)
	if len(terms) > maxSearchTerms {
		terms = terms[:maxSearchTerms]
	}
	return terms
}

// normalizeText lower-cases and NFKC-normalises text, as Synapse's
// _filter_text_for_index, so that a search is case-insensitive and
// visually identical strings match.
func normalizeText(s string) string {
	return norm.NFKC.String(strings.ToLower(s))
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func isJoiner(r rune) bool { return r == '-' || r == '.' || r == '_' }

// segments splits normalised text into words: runs of letters, digits and
// marks, with "-", "." and "_" kept inside a run (not at its ends); every
// other character separates words.
func segments(text string) []string {
	text = normalizeText(text)
	var out []string
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return !isWordRune(r) && !isJoiner(r) }) {
		f = strings.TrimFunc(f, isJoiner)
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// splitJoined returns the parts of a word joined by "-", "." or "_" ("" for
// none), so that "user-71" is found by "71" too.
func splitJoined(seg string) []string {
	if !strings.ContainsFunc(seg, isJoiner) {
		return nil
	}
	return strings.FieldsFunc(seg, isJoiner)
}

// likePrefix is a LIKE pattern (with ESCAPE '\') matching strings that
// start with s.
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s) + "%"
}
