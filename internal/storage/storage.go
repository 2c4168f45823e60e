// Package storage is Sluice's persistence layer: one interface, implemented
// over SQLite (modernc.org/sqlite, the embedded default) and PostgreSQL
// (jackc/pgx/v5) with the same schema and the same embedded, versioned
// migrations. Handlers never talk SQL; they call a Store.
package storage

import (
	"context"
	"encoding/json"
	"errors"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrUserExists: a user with that ID (compared case-insensitively) exists.
	ErrUserExists = errors.New("storage: user already exists")
	// ErrSchemaTooNew: the database was written by a newer Sluice.
	ErrSchemaTooNew = errors.New("storage: database schema is newer than this version of Sluice")
)

// User is a local account.
type User struct {
	UserID       string // full MXID, e.g. @alice:example.org
	PasswordHash string // "" when the account has no password
	Admin        bool
	ShadowBanned bool
	Deactivated  bool
	IsGuest      bool
	UserType     string // "" for a regular user; "bot", "support" ...
	CreatedTS    int64  // milliseconds since the epoch
	// DisplayName is, for CreateUser only, the new profile's display name
	// ("": the localpart, as Synapse's registration sets it).
	DisplayName string
}

// Device is one of a user's logged-in sessions.
type Device struct {
	UserID      string
	DeviceID    string
	DisplayName string // "" when none was given
	LastSeenTS  int64  // 0 when never seen
	LastSeenIP  string
	LastSeenUA  string
}

// NewSession describes a device and an access token to create together.
type NewSession struct {
	DeviceID    string
	DisplayName string // used only when the device is new
	TokenHash   []byte // SHA-256 of the access token; the token itself is never stored
}

// TokenOwner is what an access token resolves to.
type TokenOwner struct {
	UserID   string
	DeviceID string
}

// UIASession is a user-interactive authentication session.
type UIASession struct {
	ID        string
	CreatedTS int64
	Method    string          // HTTP method of the request that started it
	URI       string          // request path that started it
	Body      json.RawMessage // the client's first request body (without "auth")
	// Completed maps each completed stage type to its result (for
	// m.login.password: the user ID it authenticated as, JSON-encoded).
	Completed map[string]json.RawMessage
}

// Store is the whole persistence interface. Implementations are safe for
// concurrent use. On SQLite all writes are serialised through one connection.
type Store interface {
	// Dialect is "sqlite3" or "postgres".
	Dialect() string
	// Close closes the database cleanly (on SQLite, after a WAL checkpoint).
	Close() error

	// CreateUser inserts a user and, when sess is not nil, a device and an
	// access token, in one transaction. ErrUserExists when the user ID is
	// taken (case-insensitively).
	CreateUser(ctx context.Context, u User, sess *NewSession) error
	// GetUser returns the user with exactly this ID, or ErrNotFound.
	GetUser(ctx context.Context, userID string) (User, error)
	// FindUsersCaseInsensitive returns every user whose ID equals userID
	// ignoring ASCII case (Synapse's login lookup); non-ASCII letters are
	// compared exactly, on both databases. Empty (not nil) when none.
	FindUsersCaseInsensitive(ctx context.Context, userID string) ([]User, error)
	// SetPasswordHash replaces a user's password hash. ErrNotFound if no such user.
	SetPasswordHash(ctx context.Context, userID, hash string) error
	// SetShadowBanned sets or clears the shadow-ban flag. ErrNotFound if no such user.
	SetShadowBanned(ctx context.Context, userID string, banned bool) error
	// SetAdmin sets or clears the server-admin flag. ErrNotFound if no such user.
	SetAdmin(ctx context.Context, userID string, admin bool) error

	// CreateSession creates the device if it does not exist yet (keeping an
	// existing device's display name) and adds an access token for it.
	CreateSession(ctx context.Context, userID string, sess NewSession) error
	// LookupAccessToken resolves a token hash, or ErrNotFound.
	LookupAccessToken(ctx context.Context, tokenHash []byte) (TokenOwner, error)
	// GetDevices lists a user's devices ordered by device ID; empty (not
	// nil) when there are none, including for an unknown user.
	GetDevices(ctx context.Context, userID string) ([]Device, error)
	// GetDevice returns one device, or ErrNotFound.
	GetDevice(ctx context.Context, userID, deviceID string) (Device, error)
	// DeleteDevice deletes a device and every access token of it. Deleting a
	// device that does not exist is not an error.
	DeleteDevice(ctx context.Context, userID, deviceID string) error
	// DeleteDevicesExcept deletes all of a user's devices and their tokens
	// except the device named by keep ("" keeps none). It returns the IDs of
	// the deleted devices, sorted; empty (not nil) when none.
	DeleteDevicesExcept(ctx context.Context, userID, keep string) ([]string, error)
	// UpdateDeviceLastSeen records when and from where a device was last used.
	// ErrNotFound if the device does not exist (e.g. it was just deleted).
	UpdateDeviceLastSeen(ctx context.Context, userID, deviceID, ip, userAgent string, ts int64) error

	// CreateUIASession stores a new UIA session.
	CreateUIASession(ctx context.Context, s UIASession) error
	// GetUIASession returns a session with its completed stages, or
	// ErrNotFound. Completed is never nil.
	GetUIASession(ctx context.Context, id string) (UIASession, error)
	// CompleteUIAStage records a completed stage of a session (idempotent:
	// completing a stage again replaces its result). ErrNotFound if no session.
	CompleteUIAStage(ctx context.Context, id, stage string, result json.RawMessage) error
	// DeleteUIASession removes a session; a missing session is not an error.
	DeleteUIASession(ctx context.Context, id string) error
	// DeleteUIASessionsBefore removes sessions created before ts (ms).
	DeleteUIASessionsBefore(ctx context.Context, ts int64) error

	RoomStore
	AliasStore
	StreamStore
	AccountDataStore
	FilterStore
	ReceiptStore
	ProfileStore
	MediaStore
}
