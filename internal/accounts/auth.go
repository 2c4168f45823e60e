package accounts

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// ErrBadLogin is Synapse's answer to a wrong user or password alike.
func ErrBadLogin() error {
	return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Invalid username or password")
}

// QualifyUser turns a login identifier's user (a localpart or a full user
// ID) into a user ID.
func (s *Service) QualifyUser(user string) string {
	if strings.HasPrefix(user, "@") {
		return user
	}
	return s.UserID(user)
}

// CheckCredentials finds the user a password login names (case-insensitively,
// as Synapse: one inexact match is accepted, several are not) and checks the
// password. It returns the canonical user ID.
func (s *Service) CheckCredentials(ctx context.Context, user, password string) (string, error) {
	userID := s.QualifyUser(user)
	users, err := s.store.FindUsersCaseInsensitive(ctx, userID)
	if err != nil {
		return "", err
	}
	var found *storage.User
	switch {
	case len(users) == 1:
		found = &users[0]
	case len(users) > 1:
		for i := range users {
			if users[i].UserID == userID {
				found = &users[i]
			}
		}
	}
	if found == nil || !CheckPassword(found.PasswordHash, password) {
		return "", ErrBadLogin()
	}
	if found.Deactivated {
		return "", httpx.NewError(http.StatusForbidden, "M_USER_DEACTIVATED", "This account has been deactivated")
	}
	return found.UserID, nil
}

// LoginParams are a validated password login.
type LoginParams struct {
	User               string
	Password           string
	LoginType          string
	DeviceID           string
	InitialDisplayName string
	IP                 string
	UserAgent          string
}

// Login checks credentials, asks check_login_for_spam, creates the session,
// then tells on_user_login: Synapse's order.
func (s *Service) Login(ctx context.Context, p LoginParams) (Session, error) {
	// Synapse's rc_login: per address, per account, and failed attempts
	// per account.
	if ok, wait := s.Limits.LoginAddress.Allow(p.IP); !ok {
		return Session{}, httpx.LimitExceeded(wait)
	}
	qualified := LowerASCII(s.QualifyUser(p.User))
	if ok, wait := s.Limits.LoginFailed.Check(qualified); !ok {
		return Session{}, httpx.LimitExceeded(wait)
	}
	userID, err := s.CheckCredentials(ctx, p.User, p.Password)
	if err != nil {
		var me *httpx.Error
		if errors.As(err, &me) && me.Status == http.StatusForbidden {
			s.Limits.LoginFailed.Allow(qualified)
		}
		return Session{}, err
	}
	if ok, wait := s.Limits.LoginAccount.Allow(LowerASCII(userID)); !ok {
		return Session{}, httpx.LimitExceeded(wait)
	}
	d, err := s.hooks.CheckLoginForSpam(ctx, module.LoginCheck{
		UserID:             userID,
		DeviceID:           p.DeviceID,
		InitialDisplayName: p.InitialDisplayName,
		RequestInfo:        []module.RequestInfo{{UserAgent: p.UserAgent, IP: p.IP}},
	})
	if err != nil {
		return Session{}, err
	}
	if !d.Allowed() {
		// Synapse takes only NOT_SPAM or a code here: a str answer is
		// invalid, so the client gets M_FORBIDDEN and the call site's text.
		if d.Deprecated() != "" {
			d = module.Deny(module.CodeForbidden)
		}
		return Session{}, Rejection(http.StatusForbidden, "Login was blocked by the server", d)
	}
	sess, err := s.NewSession(ctx, userID, SessionParams{DeviceID: p.DeviceID, DisplayName: p.InitialDisplayName, IP: p.IP, UserAgent: p.UserAgent})
	if err != nil {
		return Session{}, err
	}
	if err := s.hooks.OnUserLogin(ctx, userID, p.LoginType, ""); err != nil {
		return Session{}, err
	}
	return sess, nil
}

// Rejection turns a module's rejecting Decision into the client's error:
// the call site's status and message, the module's errcode, and the extra
// fields written over them (Synapse's SynapseError with additional fields).
func Rejection(status int, msg string, d module.Decision) *httpx.Error {
	if m := d.Message(); m != "" {
		msg = m
	}
	return &httpx.Error{Status: status, Code: d.Code(), Message: msg, Extra: d.Extra()}
}

// Requester is an authenticated request's user.
type Requester = module.Requester

// HasAccessToken tells whether a request carries an access token at all
// (Synapse's has_access_token): any Authorization header, or an
// access_token query parameter, even an empty one.
func HasAccessToken(r *http.Request) bool {
	_, hasQuery := r.URL.Query()["access_token"]
	return hasQuery || len(r.Header.Values("Authorization")) > 0
}

// AccessToken extracts the access token of a request (the Authorization
// header or the deprecated access_token query parameter), with Synapse's
// errors for missing or malformed ones. An empty token ("Bearer " or
// "?access_token=") is returned as is: it is then an unknown token, as in
// Synapse.
func AccessToken(r *http.Request) (string, error) {
	headers := r.Header.Values("Authorization")
	query, hasQuery := r.URL.Query()["access_token"]
	if len(headers) > 0 {
		if hasQuery {
			return "", httpx.NewError(http.StatusUnauthorized, "M_MISSING_TOKEN", "Mixing Authorization headers and access_token query parameters.")
		}
		if len(headers) > 1 {
			return "", httpx.NewError(http.StatusUnauthorized, "M_MISSING_TOKEN", "Too many Authorization headers.")
		}
		// Synapse splits on single spaces and wants exactly two parts.
		parts := strings.Split(headers[0], " ")
		if len(parts) != 2 || parts[0] != "Bearer" {
			return "", httpx.NewError(http.StatusUnauthorized, "M_MISSING_TOKEN", "Invalid Authorization header.")
		}
		return parts[1], nil
	}
	if hasQuery && len(query) > 0 {
		return query[0], nil
	}
	return "", httpx.NewError(http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
}

// Authenticate resolves a request's access token and, unless allowExpired,
// asks is_user_expired.
func (s *Service) Authenticate(r *http.Request, allowExpired bool) (Requester, error) {
	token, err := AccessToken(r)
	if err != nil {
		return Requester{}, err
	}
	ctx := r.Context()
	owner, err := s.store.LookupAccessToken(ctx, HashToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		return Requester{}, &httpx.Error{Status: http.StatusUnauthorized, Code: "M_UNKNOWN_TOKEN",
			Message: "Invalid access token passed.", Extra: map[string]any{"soft_logout": false}}
	}
	if err != nil {
		return Requester{}, err
	}
	u, err := s.store.GetUser(ctx, owner.UserID)
	if err != nil {
		return Requester{}, err
	}
	req := Requester{UserID: u.UserID, DeviceID: owner.DeviceID, IsGuest: u.IsGuest, ShadowBanned: u.ShadowBanned}
	httpx.InfoFrom(ctx).UserID = u.UserID
	if !allowExpired && s.hooks.HasIsUserExpired() {
		expired, err := s.hooks.IsUserExpired(ctx, u.UserID)
		if err != nil {
			return Requester{}, err
		}
		if expired {
			return Requester{}, httpx.NewError(http.StatusForbidden, module.CodeExpiredAccount, "User account has expired")
		}
	}
	return req, nil
}

// Logout deletes the device the token belongs to, with all its tokens.
func (s *Service) Logout(ctx context.Context, req Requester) error {
	return s.store.DeleteDevice(ctx, req.UserID, req.DeviceID)
}

// LogoutAll deletes every device of the user.
func (s *Service) LogoutAll(ctx context.Context, userID string) error {
	_, err := s.store.DeleteDevicesExcept(ctx, userID, "")
	return err
}

// Devices lists a user's devices.
func (s *Service) Devices(ctx context.Context, userID string) ([]storage.Device, error) {
	return s.store.GetDevices(ctx, userID)
}

// SetPassword replaces a user's password; with logoutDevices, every other
// device (all but keepDevice) is logged out.
func (s *Service) SetPassword(ctx context.Context, userID, newPassword string, logoutDevices bool, keepDevice string) error {
	hash, err := s.HashPassword(newPassword)
	if err != nil {
		return err
	}
	return s.SetPasswordHash(ctx, userID, hash, logoutDevices, keepDevice)
}

// SetPasswordHash is SetPassword with an already hashed password (one kept
// in a UIA session).
func (s *Service) SetPasswordHash(ctx context.Context, userID, hash string, logoutDevices bool, keepDevice string) error {
	if err := s.store.SetPasswordHash(ctx, userID, hash); err != nil {
		return err
	}
	if logoutDevices {
		if _, err := s.store.DeleteDevicesExcept(ctx, userID, keepDevice); err != nil {
			return err
		}
	}
	return nil
}

// GetUserInfo answers the module API's user info.
func (s *Service) GetUserInfo(ctx context.Context, userID string) (module.UserInfo, error) {
	u, err := s.store.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return module.UserInfo{}, module.ErrNotFound
	}
	if err != nil {
		return module.UserInfo{}, err
	}
	return module.UserInfo{UserID: u.UserID, IsAdmin: u.Admin, IsDeactivated: u.Deactivated, IsGuest: u.IsGuest,
		IsShadowBanned: u.ShadowBanned, UserType: u.UserType, CreationTS: u.CreatedTS}, nil
}

// CheckUserExists answers the module API's check_user_exists: the canonical
// ID of a case-insensitive match, "" when none.
func (s *Service) CheckUserExists(ctx context.Context, userID string) (string, error) {
	users, err := s.store.FindUsersCaseInsensitive(ctx, userID)
	if err != nil {
		return "", err
	}
	for _, u := range users {
		if u.UserID == userID {
			return u.UserID, nil
		}
	}
	if len(users) == 1 {
		return users[0].UserID, nil
	}
	return "", nil
}

// RegisterUser answers the module API's register_user.
func (s *Service) RegisterUser(ctx context.Context, localpart string, o module.RegisterUserOptions) (string, error) {
	sess, err := s.Register(ctx, RegisterParams{Localpart: LowerASCII(localpart), Password: o.Password, Admin: o.Admin})
	return sess.UserID, err
}

// GetUserByRequest answers the module API's get_user_by_req.
func (s *Service) GetUserByRequest(r *http.Request, allowExpired bool) (module.Requester, error) {
	return s.Authenticate(r, allowExpired)
}
