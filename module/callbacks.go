package module

import "context"

// Every callback receives a context carrying the module's deadline (the
// entry's `timeout:`, 10 s by default). A callback that returns an error,
// panics or outlives its deadline has failed; Sluice then applies the
// failure policy of the callback's category (Synapse's, unless the entry's
// `on_error:` says otherwise). See docs/modules/index.md.

// SpamCheckerCallbacks are Synapse's spam checker callbacks
// (register_spam_checker_callbacks). Leave a field nil to not implement it.
// Decision-returning callbacks chain: they run in `modules:` order and the
// first answer that is not Allow wins; later callbacks are not called.
type SpamCheckerCallbacks struct {
	// UserMayCreateRoom (user_may_create_room) will be asked when userID
	// creates a room, with a deep copy of the /createRoom request body.
	// Sluice does not create rooms yet: the callback can be registered now
	// and is called from the day POST /createRoom lands.
	UserMayCreateRoom func(ctx context.Context, userID string, roomConfig map[string]any) (Decision, error)

	// CheckRegistrationForSpam (check_registration_for_spam) is asked on
	// every registration path (/register, shared-secret admin registration,
	// API.RegisterUser) before the account is created. The first answer
	// that is not RegistrationAllow wins.
	CheckRegistrationForSpam func(ctx context.Context, r RegistrationCheck) (RegistrationBehaviour, error)

	// CheckLoginForSpam (check_login_for_spam) is asked on POST /login after
	// the credentials were validated, before the device and token are
	// created. A rejection reaches the client as 403 "Login was blocked by
	// the server" with the decision's errcode.
	CheckLoginForSpam func(ctx context.Context, l LoginCheck) (Decision, error)
}

// RegistrationCheck is what check_registration_for_spam is given.
type RegistrationCheck struct {
	// EmailThreepid is the email used to register, nil when none.
	EmailThreepid map[string]any
	// Username is the requested localpart, "" when the server picks one.
	Username string
	// RequestInfo lists the (user agent, IP) pairs seen during registration.
	RequestInfo []RequestInfo
	// AuthProviderID is the SSO provider, "" when none.
	AuthProviderID string
}

// LoginCheck is what check_login_for_spam is given.
type LoginCheck struct {
	UserID             string
	DeviceID           string // "" when the server will generate one
	InitialDisplayName string // "" when none was given
	RequestInfo        []RequestInfo
	AuthProviderID     string // "" for password login
}

// RequestInfo is one (user agent, IP address) pair of a request.
type RequestInfo struct {
	UserAgent string
	IP        string
}

// AccountValidityCallbacks are Synapse's account validity callbacks
// (register_account_validity_callbacks).
type AccountValidityCallbacks struct {
	// IsUserExpired (is_user_expired) is asked on every authenticated
	// request except logout. The first answer other than ExpiryUnknown
	// wins. Expired refuses the request with 403 ORG_MATRIX_EXPIRED_ACCOUNT.
	IsUserExpired func(ctx context.Context, userID string) (Expiry, error)
	// OnUserRegistration (on_user_registration) is told after a user was
	// registered, on every registration path. All callbacks run.
	OnUserRegistration func(ctx context.Context, userID string) error
	// OnUserLogin (on_user_login) is told after a successful POST /login.
	// authProviderType is the login type (e.g. "m.login.password");
	// authProviderID is the SSO provider, "" when none. All callbacks run.
	OnUserLogin func(ctx context.Context, userID, authProviderType, authProviderID string) error
}
