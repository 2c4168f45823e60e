// Package accounts is the account service: registration, login, access
// tokens, devices and passwords, with the module callbacks that concern
// accounts invoked at Synapse's call sites. Handlers call it; it calls the
// store and the module host.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/ratelimit"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"
)

// Hooks are the module callbacks the account service invokes (implemented
// by the module host).
type Hooks interface {
	CheckRegistrationForSpam(ctx context.Context, r module.RegistrationCheck) (module.RegistrationBehaviour, error)
	OnUserRegistration(ctx context.Context, userID string) error
	CheckLoginForSpam(ctx context.Context, l module.LoginCheck) (module.Decision, error)
	OnUserLogin(ctx context.Context, userID, authProviderType, authProviderID string) error
	IsUserExpired(ctx context.Context, userID string) (bool, error)
	HasIsUserExpired() bool
}

// Limits are the rate limiters the account service applies (nil: none).
type Limits struct {
	LoginAddress *ratelimit.Limiter // rc_login.address, per client IP
	LoginAccount *ratelimit.Limiter // rc_login.account, per user
	LoginFailed  *ratelimit.Limiter // rc_login.failed_attempts, per user
}

// Service is the account service.
type Service struct {
	// Limits are set once, before the service is used.
	Limits Limits

	store      storage.Store
	hooks      Hooks
	serverName string
	bcryptCost int
	log        *slog.Logger
	now        func() time.Time
}

// New makes the account service.
func New(store storage.Store, hooks Hooks, serverName string, bcryptCost int, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: store, hooks: hooks, serverName: serverName, bcryptCost: bcryptCost, log: log, now: time.Now}
}

// ServerName is the local server name.
func (s *Service) ServerName() string { return s.serverName }

// UserID makes a local user ID from a localpart.
func (s *Service) UserID(localpart string) string { return "@" + localpart + ":" + s.serverName }

const maxUserIDLength = 255

// CheckUsername validates a desired localpart as Synapse does, in Synapse's
// order: characters, emptiness, leading underscore, length, availability,
// and numeric names (reserved for guests).
func (s *Service) CheckUsername(ctx context.Context, localpart string) error {
	if err := CheckLocalpartSyntax(localpart); err != nil {
		return err
	}
	if len(s.UserID(localpart)) > maxUserIDLength {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_USERNAME", "User ID may not be longer than 255 characters")
	}
	users, err := s.store.FindUsersCaseInsensitive(ctx, s.UserID(localpart))
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errUserInUse()
	}
	if isDigits(localpart) {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_USERNAME", "Numeric user IDs are reserved for guest users.")
	}
	return nil
}

func errUserInUse() error {
	return httpx.NewError(http.StatusBadRequest, "M_USER_IN_USE", "User ID already taken.")
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// CheckLocalpartSyntax is the first part of CheckUsername: allowed
// characters, emptiness and the leading underscore.
func CheckLocalpartSyntax(localpart string) error {
	for _, r := range localpart {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._=-/+", r)) {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_USERNAME", "User ID can only contain characters a-z, 0-9, or '=_-./+'")
		}
	}
	if localpart == "" {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_USERNAME", "User ID cannot be empty")
	}
	if strings.HasPrefix(localpart, "_") {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_USERNAME", "User ID may not begin with _")
	}
	return nil
}

// SessionParams ask for a device and access token with a registration.
type SessionParams struct {
	DeviceID    string // "" to generate one
	DisplayName string
	IP          string
	UserAgent   string
}

// RegisterParams describe an account to create.
type RegisterParams struct {
	Localpart string // checked with CheckUsername, even when empty
	// GenerateLocalpart picks a free numeric localpart instead (Synapse's
	// register_user with localpart=None).
	GenerateLocalpart bool
	Password          string // "" for no password
	PasswordHash      string // used when Password is "" (a hash kept in a UIA session)
	Admin             bool
	UserType          string
	RequestInfo       []module.RequestInfo
	EmailThreeID      map[string]any
	Session           *SessionParams // nil: no login (inhibit_login)
	// DisplayName is the new profile's display name ("": the localpart,
	// as Synapse sets at registration).
	DisplayName string
}

// Session is a device with a fresh access token.
type Session struct {
	UserID      string
	DeviceID    string
	AccessToken string
}

// Register creates an account the way every registration path does:
// check_registration_for_spam, the username checks, the insert,
// on_user_registration, then the optional device and token.
func (s *Service) Register(ctx context.Context, p RegisterParams) (Session, error) {
	behaviour, err := s.hooks.CheckRegistrationForSpam(ctx, module.RegistrationCheck{
		EmailThreepid: p.EmailThreeID,
		Username:      p.Localpart,
		RequestInfo:   p.RequestInfo,
	})
	if err != nil {
		return Session{}, err
	}
	if behaviour == module.RegistrationDeny {
		// Synapse disguises a spam denial as rate limiting.
		return Session{}, httpx.NewError(http.StatusTooManyRequests, "M_UNKNOWN", "Rate limited")
	}
	if p.GenerateLocalpart {
		p.Localpart, err = s.freeNumericLocalpart(ctx)
		if err != nil {
			return Session{}, err
		}
	} else if err := s.CheckUsername(ctx, p.Localpart); err != nil {
		return Session{}, err
	}
	hash := p.PasswordHash
	if p.Password != "" {
		if hash, err = s.HashPassword(p.Password); err != nil {
			return Session{}, err
		}
	}
	u := storage.User{
		UserID:       s.UserID(p.Localpart),
		PasswordHash: hash,
		Admin:        p.Admin,
		ShadowBanned: behaviour == module.RegistrationShadowBan,
		UserType:     p.UserType,
		CreatedTS:    s.now().UnixMilli(),
		DisplayName:  p.DisplayName,
	}
	if err := s.store.CreateUser(ctx, u, nil); err != nil {
		if errors.Is(err, storage.ErrUserExists) {
			return Session{}, errUserInUse()
		}
		return Session{}, err
	}
	if u.ShadowBanned {
		s.log.Info("registered a shadow-banned user", "user_id", u.UserID)
	}
	// As in Synapse, the account exists even if a module fails here.
	if err := s.hooks.OnUserRegistration(ctx, u.UserID); err != nil {
		return Session{}, err
	}
	if p.Session == nil {
		return Session{UserID: u.UserID}, nil
	}
	return s.NewSession(ctx, u.UserID, *p.Session)
}

func (s *Service) freeNumericLocalpart(ctx context.Context) (string, error) {
	for range 10 {
		n, err := rand.Int(rand.Reader, big.NewInt(9_000_000_000))
		if err != nil {
			return "", err
		}
		lp := fmt.Sprint(n.Int64() + 1_000_000_000)
		users, err := s.store.FindUsersCaseInsensitive(ctx, s.UserID(lp))
		if err != nil {
			return "", err
		}
		if len(users) == 0 {
			return lp, nil
		}
	}
	return "", errors.New("accounts: could not find a free numeric user ID")
}

// NewSession creates (or reuses) a device and a new access token for it.
func (s *Service) NewSession(ctx context.Context, userID string, p SessionParams) (Session, error) {
	deviceID := p.DeviceID
	if deviceID == "" {
		deviceID = randomLetters(10, upperLetters)
	}
	token := s.newAccessToken(userID)
	err := s.store.CreateSession(ctx, userID, storage.NewSession{
		DeviceID:    deviceID,
		DisplayName: p.DisplayName,
		TokenHash:   HashToken(token),
	})
	if err != nil {
		return Session{}, err
	}
	if p.IP != "" || p.UserAgent != "" {
		if err := s.store.UpdateDeviceLastSeen(ctx, userID, deviceID, p.IP, p.UserAgent, s.now().UnixMilli()); err != nil {
			s.log.Warn("could not record device last seen", "err", err)
		}
	}
	return Session{UserID: userID, DeviceID: deviceID, AccessToken: token}, nil
}

// HashPassword hashes a password as Synapse does: bcrypt over the NFKC
// form, cut at bcrypt's 72-byte limit.
func (s *Service) HashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword(passwordBytes(pw), s.bcryptCost)
	if err != nil {
		return "", fmt.Errorf("accounts: hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword compares a password with a stored hash.
func CheckPassword(hash, pw string) bool {
	if hash == "" {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), passwordBytes(pw)) == nil
}

func passwordBytes(pw string) []byte {
	b := []byte(norm.NFKC.String(pw))
	if len(b) > 72 {
		b = b[:72]
	}
	return b
}

// HashToken is how access tokens are stored: their SHA-256.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

const (
	letters      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	upperLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	base62       = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

func randomLetters(n int, alphabet string) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("accounts: no randomness: " + err.Error())
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// RandomString is a random string of ASCII letters (for session IDs).
func RandomString(n int) string { return randomLetters(n, letters) }

// newAccessToken makes a token in Synapse's shape, syt_<localpart>_<random>_<crc>,
// so that tokens leaked in logs or pastes are recognisable to secret scanners.
func (s *Service) newAccessToken(userID string) string {
	localpart := strings.TrimPrefix(userID, "@")
	if i := strings.LastIndex(localpart, ":"); i >= 0 {
		localpart = localpart[:i]
	}
	base := "syt_" + base64.RawURLEncoding.EncodeToString([]byte(localpart)) + "_" + randomLetters(20, letters)
	crc := crc32.ChecksumIEEE([]byte(base))
	var c []byte
	for crc > 0 {
		c = append([]byte{base62[crc%62]}, c...)
		crc /= 62
	}
	for len(c) < 6 {
		c = append([]byte{'0'}, c...)
	}
	return base + "_" + string(c)
}

// LowerASCII lower-cases A-Z only. Usernames are lower-cased on
// registration; folding other scripts would map look-alike characters onto
// ASCII names (Go lower-cases "İ" to "i"), so those are left for the
// username check to refuse.
func LowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
