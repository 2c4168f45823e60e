package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrMediaExists: CreateLocalMedia with a media ID that is taken, or
// SetLocalMediaContent on a media ID that already has content.
var ErrMediaExists = errors.New("storage: media ID already exists or has content")

// LocalMedia is one row of the local media repository.
type LocalMedia struct {
	MediaID   string
	MediaType string // "" when not uploaded yet
	// Length is the content's size in bytes, -1 while a created media ID
	// waits for its content.
	Length        int64
	CreatedTS     int64
	UploadName    string // "" when none
	UserID        string
	Authenticated bool
	SHA256        string // hex, "" when not uploaded yet
}

// Uploaded reports whether the media has its content.
func (m LocalMedia) Uploaded() bool { return m.Length >= 0 }

// MediaThumbnail is one stored thumbnail of a local media.
type MediaThumbnail struct {
	MediaID string
	Width   int
	Height  int
	Type    string
	Method  string
	Length  int64
}

// MediaStore keeps the local media repository. It is part of Store.
type MediaStore interface {
	// CreateLocalMedia records a media ID (with its content when
	// m.Length >= 0); ErrMediaExists when the ID is taken.
	CreateLocalMedia(ctx context.Context, m LocalMedia) error
	// GetLocalMedia returns a media's row, or ErrNotFound.
	GetLocalMedia(ctx context.Context, mediaID string) (LocalMedia, error)
	// SetLocalMediaContent records the content of a created media ID.
	// ErrNotFound when there is no such ID, ErrMediaExists when it already
	// has content.
	SetLocalMediaContent(ctx context.Context, m LocalMedia) error
	// CountPendingMedia counts a user's media IDs without content created
	// at or after since, and returns the oldest one's created_ts (0 when
	// none).
	CountPendingMedia(ctx context.Context, userID string, since int64) (n int, oldest int64, err error)
	// AddLocalThumbnail records a thumbnail (a second one with the same
	// size, type and method is ignored).
	AddLocalThumbnail(ctx context.Context, t MediaThumbnail) error
	// LocalThumbnails lists a media's thumbnails, in a stable order.
	LocalThumbnails(ctx context.Context, mediaID string) ([]MediaThumbnail, error)
}

// emptyAsNull stores "" as NULL.
func emptyAsNull(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func (s *sqlStore) CreateLocalMedia(ctx context.Context, m LocalMedia) error {
	if err := checkText(m.MediaID, m.MediaType, m.UploadName, m.UserID); err != nil {
		return fmt.Errorf("storage: create media %s: %w", m.MediaID, err)
	}
	length := sql.NullInt64{Int64: m.Length, Valid: m.Length >= 0}
	res, err := s.w.ExecContext(ctx, `INSERT INTO local_media_repository
(media_id, media_type, media_length, created_ts, upload_name, user_id, authenticated, sha256)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (media_id) DO NOTHING`,
		m.MediaID, emptyAsNull(m.MediaType), length, m.CreatedTS, emptyAsNull(m.UploadName), m.UserID, boolInt(m.Authenticated), emptyAsNull(m.SHA256))
	if err != nil {
		return fmt.Errorf("storage: create media %s: %w", m.MediaID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("storage: create media %s: %w", m.MediaID, err)
	} else if n == 0 {
		return ErrMediaExists
	}
	return nil
}

func (s *sqlStore) GetLocalMedia(ctx context.Context, mediaID string) (LocalMedia, error) {
	var (
		m              LocalMedia
		typ, name, sum sql.NullString
		length         sql.NullInt64
		authenticated  int
	)
	err := s.r.QueryRowContext(ctx, `SELECT media_id, media_type, media_length, created_ts, upload_name, user_id, authenticated, sha256
FROM local_media_repository WHERE media_id = $1`, mediaID).Scan(&m.MediaID, &typ, &length, &m.CreatedTS, &name, &m.UserID, &authenticated, &sum)
	if errors.Is(err, sql.ErrNoRows) {
		return LocalMedia{}, ErrNotFound
	}
	if err != nil {
		return LocalMedia{}, fmt.Errorf("storage: get media %s: %w", mediaID, err)
	}
	m.MediaType, m.UploadName, m.SHA256 = typ.String, name.String, sum.String
	m.Length = -1
	if length.Valid {
		m.Length = length.Int64
	}
	m.Authenticated = authenticated != 0
	return m, nil
}

func (s *sqlStore) SetLocalMediaContent(ctx context.Context, m LocalMedia) error {
	if err := checkText(m.MediaType, m.UploadName); err != nil {
		return fmt.Errorf("storage: set media content %s: %w", m.MediaID, err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE local_media_repository
SET media_type = $2, media_length = $3, upload_name = $4, authenticated = $5, sha256 = $6
WHERE media_id = $1 AND media_length IS NULL`,
		m.MediaID, emptyAsNull(m.MediaType), m.Length, emptyAsNull(m.UploadName), boolInt(m.Authenticated), emptyAsNull(m.SHA256))
	if err != nil {
		return fmt.Errorf("storage: set media content %s: %w", m.MediaID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storage: set media content %s: %w", m.MediaID, err)
	}
	if n == 0 {
		if _, err := s.GetLocalMedia(ctx, m.MediaID); err != nil {
			return err
		}
		return ErrMediaExists
	}
	return nil
}

func (s *sqlStore) CountPendingMedia(ctx context.Context, userID string, since int64) (int, int64, error) {
	var (
		n      int
		oldest sql.NullInt64
	)
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_ts) FROM local_media_repository
WHERE user_id = $1 AND created_ts >= $2 AND media_length IS NULL`, userID, since).Scan(&n, &oldest)
	if err != nil {
		return 0, 0, fmt.Errorf("storage: count pending media of %s: %w", userID, err)
	}
	return n, oldest.Int64, nil
}

func (s *sqlStore) AddLocalThumbnail(ctx context.Context, t MediaThumbnail) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO local_media_repository_thumbnails
(media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method, thumbnail_length)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method) DO NOTHING`,
		t.MediaID, t.Width, t.Height, t.Type, t.Method, t.Length)
	if err != nil {
		return fmt.Errorf("storage: add thumbnail of %s: %w", t.MediaID, err)
	}
	return nil
}

func (s *sqlStore) LocalThumbnails(ctx context.Context, mediaID string) ([]MediaThumbnail, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method, thumbnail_length
FROM local_media_repository_thumbnails WHERE media_id = $1
ORDER BY thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method`, mediaID)
	if err != nil {
		return nil, fmt.Errorf("storage: thumbnails of %s: %w", mediaID, err)
	}
	defer rows.Close()
	var out []MediaThumbnail
	for rows.Next() {
		t := MediaThumbnail{MediaID: mediaID}
		if err := rows.Scan(&t.Width, &t.Height, &t.Type, &t.Method, &t.Length); err != nil {
			return nil, fmt.Errorf("storage: thumbnails of %s: %w", mediaID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: thumbnails of %s: %w", mediaID, err)
	}
	return out, nil
}
