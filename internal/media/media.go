// Package media is the media repository: uploads (streamed to the media
// store on disk, checked by check_media_file_for_spam before they are
// recorded), downloads, thumbnails and the media configuration, with
// Synapse's behaviour. Its HTTP handlers are in http.go.
package media

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/ratelimit"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// SpamChecker runs check_media_file_for_spam (modhost.Host implements it).
type SpamChecker interface {
	CheckMediaFileForSpam(ctx context.Context, open func() (io.ReadCloser, error), info module.FileInfo) (bool, error)
}

// ThumbnailSize is one configured thumbnail size (thumbnail_sizes).
type ThumbnailSize struct {
	Width, Height int
	Method        string // crop or scale
}

// Options configure the service.
type Options struct {
	ServerName string
	// Path is the media store directory (media_store_path).
	Path string
	// MaxUploadSize is max_upload_size in bytes.
	MaxUploadSize int64
	// MaxImagePixels is max_image_pixels: images with as many pixels or
	// more get no thumbnail.
	MaxImagePixels int64
	// DynamicThumbnails is dynamic_thumbnails.
	DynamicThumbnails bool
	// ThumbnailSizes are generated at upload for images.
	ThumbnailSizes []ThumbnailSize
	// AuthenticatedMedia is enable_authenticated_media.
	AuthenticatedMedia bool
	// UnusedExpiration is unused_expiration_time.
	UnusedExpiration time.Duration
	// MaxPendingUploads is max_pending_media_uploads.
	MaxPendingUploads int
	// CreateLimiter is rc_media_create, per user (nil: none).
	CreateLimiter *ratelimit.Limiter
	Logger        *slog.Logger
}

// Service is the media repository.
type Service struct {
	opts  Options
	store storage.MediaStore
	spam  SpamChecker
	files files
	log   *slog.Logger

	// uploading holds the media IDs with a PUT under way (Synapse's
	// upload_media lock).
	mu        sync.Mutex
	uploading map[string]bool

	// thumbnailing admits that many decode-and-render jobs at once: a
	// decoded image of max_image_pixels can take over 100 MB, so the
	// number of them alive at once is what bounds the memory.
	thumbnailing chan struct{}
}

// thumbnailJobs is how many images are decoded and thumbnailed at once:
// half the CPUs Go uses, at least one.
func thumbnailJobs() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// New makes the service. The media store directory is created if missing.
func New(o Options, store storage.MediaStore, spam SpamChecker) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := os.MkdirAll(o.Path, 0o750); err != nil {
		return nil, fmt.Errorf("media: media store: %w", err)
	}
	return &Service{opts: o, store: store, spam: spam, files: files{root: o.Path}, log: o.Logger, uploading: map[string]bool{},
		thumbnailing: make(chan struct{}, thumbnailJobs())}, nil
}

// MaxUploadSize is max_upload_size.
func (s *Service) MaxUploadSize() int64 { return s.opts.MaxUploadSize }

// ServerName is the server's name (the origin of local media).
func (s *Service) ServerName() string { return s.opts.ServerName }

// ErrNotFound: Synapse's respond_404 ("Not found '<path>'"); the handler
// writes it with the request's path.
var ErrNotFound = errors.New("media: not found")

// notFound is Synapse's NotFoundError: 404 M_NOT_FOUND.
func notFound(msg string) *httpx.Error {
	return httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", msg)
}

// errBadContent is the answer to an upload a spam checker rejected.
func errBadContent() *httpx.Error {
	return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Bad content")
}

// ErrUploadTooLarge is the answer to a body over max_upload_size.
func ErrUploadTooLarge() *httpx.Error {
	return httpx.NewError(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Upload request body is too large")
}

const idLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// newMediaID is Synapse's random_string(24).
func newMediaID() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail
	}
	for i := range b {
		b[i] = idLetters[int(b[i])%len(idLetters)]
	}
	return string(b)
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// CreateMediaID answers POST /_matrix/media/v1/create: a media ID without
// content, and when it expires unused.
func (s *Service) CreateMediaID(ctx context.Context, userID string) (mediaID string, expiresAt int64, err error) {
	if l := s.opts.CreateLimiter; l != nil {
		if ok, wait := l.Allow(userID); !ok {
			return "", 0, httpx.LimitExceeded(wait)
		}
	}
	now := nowMillis()
	exp := s.opts.UnusedExpiration.Milliseconds()
	n, oldest, err := s.store.CountPendingMedia(ctx, userID, now-exp)
	if err != nil {
		return "", 0, err
	}
	if n >= s.opts.MaxPendingUploads {
		return "", 0, httpx.LimitExceeded(time.Duration(oldest+exp-now) * time.Millisecond)
	}
	for range 3 {
		mediaID = newMediaID()
		err = s.store.CreateLocalMedia(ctx, storage.LocalMedia{MediaID: mediaID, Length: -1, CreatedTS: now, UserID: userID})
		if !errors.Is(err, storage.ErrMediaExists) {
			break
		}
	}
	if err != nil {
		return "", 0, err
	}
	return mediaID, now + exp, nil
}

// BeginUpload starts a PUT to a media ID made by CreateMediaID: it takes
// the ID's upload lock and checks, as Synapse's verify_can_upload, that the
// ID exists, belongs to userID, has no content and has not expired. The
// caller must call release when done (also after an error, where release
// is a no-op).
func (s *Service) BeginUpload(ctx context.Context, mediaID, userID string) (release func(), err error) {
	s.mu.Lock()
	if s.uploading[mediaID] {
		s.mu.Unlock()
		return func() {}, httpx.NewError(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "Media ID cannot be overwritten")
	}
	s.uploading[mediaID] = true
	s.mu.Unlock()
	release = func() {
		s.mu.Lock()
		delete(s.uploading, mediaID)
		s.mu.Unlock()
	}
	m, err := s.store.GetLocalMedia(ctx, mediaID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		err = notFound("Unknown media ID")
	case err != nil:
	case m.UserID != userID:
		err = httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Only the creator of the media ID can upload to it")
	case m.Uploaded():
		err = httpx.NewError(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content")
	case m.CreatedTS < nowMillis()-s.opts.UnusedExpiration.Milliseconds():
		err = notFound("Media ID has expired")
	}
	if err != nil {
		release()
		return func() {}, err
	}
	return release, nil
}

// Upload is one upload's content and metadata.
type Upload struct {
	UserID      string
	ContentType string // application/octet-stream when the request had none
	UploadName  string // "" when none
	Body        io.Reader
	// MediaID is the ID of a PUT (after BeginUpload); "" makes a new one.
	MediaID string
}

// Store stores an upload: the body is streamed to a temporary file in the
// media store (never held in memory), bounded by max_upload_size; then
// check_media_file_for_spam reads it; only then is the file moved into
// place and recorded, and the thumbnails of thumbnail_sizes generated.
// A rejected or failed upload leaves no file and no row behind.
func (s *Service) Store(ctx context.Context, u Upload) (mediaID string, err error) {
	mediaID = u.MediaID
	if mediaID == "" {
		mediaID = newMediaID()
	}
	tmp, err := s.files.tempFile("upload-*")
	if err != nil {
		return "", err
	}
	tmpName := tmp.Name()
	placed := ""
	defer func() {
		if err != nil {
			_ = os.Remove(tmpName)
			if placed != "" {
				_ = os.Remove(placed)
			}
		}
	}()
	n, sum, err := writeLimited(tmp, u.Body, s.opts.MaxUploadSize)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, errTooLarge) {
		return "", ErrUploadTooLarge()
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", ErrUploadTooLarge()
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return "", httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "The request body ended before its Content-Length")
		}
		return "", fmt.Errorf("media: write upload: %w", err)
	}

	info := module.FileInfo{FileID: mediaID, ContentType: u.ContentType, Length: n, UploadName: u.UploadName, UserID: u.UserID}
	if err = s.checkSpam(ctx, tmpName, info); err != nil {
		return "", err
	}

	final, err := s.files.localPath(mediaID)
	if err != nil {
		return "", err
	}
	if err = s.files.placeNew(tmpName, final); err != nil {
		if errors.Is(err, errFileExists) {
			err = httpx.NewError(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content")
		}
		return "", err
	}
	placed = final
	m := storage.LocalMedia{MediaID: mediaID, MediaType: u.ContentType, Length: n, CreatedTS: nowMillis(),
		UploadName: u.UploadName, UserID: u.UserID, Authenticated: s.opts.AuthenticatedMedia, SHA256: sum}
	if u.MediaID == "" {
		err = s.store.CreateLocalMedia(ctx, m)
	} else {
		err = s.store.SetLocalMediaContent(ctx, m)
		if errors.Is(err, storage.ErrMediaExists) {
			// Content recorded since BeginUpload (by another server over
			// the same database): ours goes.
			err = httpx.NewError(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content")
		}
	}
	if err != nil {
		return "", err
	}
	s.log.Info("stored local media", "media_id", mediaID, "length", n, "type", u.ContentType)
	// As in Synapse, thumbnails are made before the answer, and a failure
	// there does not fail the upload.
	if err := s.generateThumbnails(ctx, m, final); err != nil {
		s.log.Info("failed to generate thumbnails", "media_id", mediaID, "err", err)
	}
	return mediaID, nil
}

// errSpam: check_media_file_for_spam said the file is spam.
var errSpam = errors.New("media: spam")

// checkSpam asks check_media_file_for_spam about a written file: each
// module reads it through its own handle. Spam is errBadContent for an
// upload (the caller maps it for thumbnails).
func (s *Service) checkSpam(ctx context.Context, path string, info module.FileInfo) error {
	if s.spam == nil {
		return nil
	}
	open := func() (io.ReadCloser, error) { return os.Open(path) }
	spam, err := s.spam.CheckMediaFileForSpam(ctx, open, info)
	if err != nil {
		return fmt.Errorf("media: check_media_file_for_spam: %w", err)
	}
	if spam {
		s.log.Info("blocking media due to spam checker", "media_id", info.FileID, "thumbnail", info.Thumbnail != nil)
		if info.Thumbnail != nil {
			return errSpam
		}
		return errBadContent()
	}
	return nil
}

// DefaultWait and MaxWait are Synapse's timeout_ms default and maximum for
// media that is not uploaded yet.
const (
	DefaultWait = 20 * time.Second
	MaxWait     = 60 * time.Second
)

// pollInterval is how often a wait for content looks again (Synapse's).
var pollInterval = 500 * time.Millisecond

// LocalMedia returns the row of an uploaded local media. It waits up to
// wait for a created media ID to get its content (then 504
// M_NOT_YET_UPLOADED). Unknown or expired IDs are ErrNotFound. legacy
// requests (the unauthenticated /_matrix/media endpoints) get 404 "Not
// found" for media uploaded while enable_authenticated_media was on, when
// it still is.
func (s *Service) LocalMedia(ctx context.Context, mediaID string, wait time.Duration, legacy bool) (storage.LocalMedia, error) {
	deadline := time.Now().Add(wait)
	for {
		m, err := s.store.GetLocalMedia(ctx, mediaID)
		if errors.Is(err, storage.ErrNotFound) {
			return m, ErrNotFound
		}
		if err != nil {
			return m, err
		}
		if m.Uploaded() {
			if legacy && s.opts.AuthenticatedMedia && m.Authenticated {
				return m, notFound("Not found")
			}
			return m, nil
		}
		if m.CreatedTS < nowMillis()-s.opts.UnusedExpiration.Milliseconds() {
			return m, ErrNotFound
		}
		if !time.Now().Before(deadline) {
			return m, httpx.NewError(http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED", "Media has not been uploaded yet")
		}
		t := time.NewTimer(min(pollInterval, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return m, ctx.Err()
		case <-t.C:
		}
	}
}

// Open opens a local media's file; ErrNotFound when it is missing.
func (s *Service) Open(m storage.LocalMedia) (*os.File, error) {
	p, err := s.files.localPath(m.MediaID)
	if err != nil {
		return nil, ErrNotFound
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		s.log.Warn("media file missing", "media_id", m.MediaID, "path", p)
		return nil, ErrNotFound
	}
	return f, err
}

// RemoteMedia answers for media of another server. Sluice has no
// federation yet, so it never has any: as in Synapse when the fetch fails,
// 502 "Failed to fetch remote media" — except on the legacy endpoints
// with enable_authenticated_media on, where Synapse answers 404 for media
// it has not cached without trying.
func (s *Service) RemoteMedia(legacy bool) error {
	if legacy && s.opts.AuthenticatedMedia {
		return notFound("Not found")
	}
	return httpx.NewError(http.StatusBadGateway, "M_UNKNOWN", "Failed to fetch remote media")
}
