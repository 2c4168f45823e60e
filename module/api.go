package module

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// Host is the server side of the API. Sluice implements it; a module's own
// tests may implement it to drive the module without a server.
type Host interface {
	ServerName() string
	PublicBaseURL() string
	Logger(module string) *slog.Logger
	RegisterSpamCheckerCallbacks(module string, cb SpamCheckerCallbacks) error
	RegisterAccountValidityCallbacks(module string, cb AccountValidityCallbacks) error
	RegisterThirdPartyRulesCallbacks(module string, cb ThirdPartyRulesCallbacks) error
	RegisterWebResource(module, path string, h http.Handler) error
	GetUserByRequest(r *http.Request, allowExpired bool) (Requester, error)
	GetUserInfo(ctx context.Context, userID string) (UserInfo, error)
	CheckUserExists(ctx context.Context, userID string) (string, error)
	RegisterUser(ctx context.Context, localpart string, opts RegisterUserOptions) (string, error)
	GetRoomState(ctx context.Context, roomID string) (StateMap, error)
	CreateAndSendEventIntoRoom(ctx context.Context, event map[string]any) (Event, error)
	UpdateRoomMembership(ctx context.Context, sender, target, roomID, membership string, content map[string]any) (Event, error)
	CreateRoom(ctx context.Context, userID string, config map[string]any) (string, error)
}

// API is what a module gets to talk to the server: Synapse's ModuleApi.
type API struct {
	module string
	host   Host
}

// NewAPI binds a Host to a module name. Sluice calls it once per module.
func NewAPI(module string, h Host) *API { return &API{module: module, host: h} }

// ModuleName is the `module:` name this API was given to.
func (a *API) ModuleName() string { return a.module }

// ServerName is the local server name (server_name).
func (a *API) ServerName() string { return a.host.ServerName() }

// PublicBaseURL is the public_baseurl, ending in "/"; when it is not
// configured, https://<server_name>/ as in Synapse.
func (a *API) PublicBaseURL() string { return a.host.PublicBaseURL() }

// Logger is a logger scoped to this module.
func (a *API) Logger() *slog.Logger { return a.host.Logger(a.module) }

// IsMine reports whether a user ID, room alias or other server-scoped ID
// belongs to this server.
func (a *API) IsMine(id string) bool {
	for i := 0; i < len(id); i++ {
		if id[i] == ':' {
			return id[i+1:] == a.host.ServerName()
		}
	}
	return false
}

// GetQualifiedUserID turns a localpart into a full user ID; an argument
// that already starts with "@" is returned as is.
func (a *API) GetQualifiedUserID(localpart string) string {
	if len(localpart) > 0 && localpart[0] == '@' {
		return localpart
	}
	return "@" + localpart + ":" + a.host.ServerName()
}

// RegisterSpamCheckerCallbacks adds spam checker callbacks. Only during New.
func (a *API) RegisterSpamCheckerCallbacks(cb SpamCheckerCallbacks) error {
	return a.host.RegisterSpamCheckerCallbacks(a.module, cb)
}

// RegisterAccountValidityCallbacks adds account validity callbacks. Only during New.
func (a *API) RegisterAccountValidityCallbacks(cb AccountValidityCallbacks) error {
	return a.host.RegisterAccountValidityCallbacks(a.module, cb)
}

// RegisterThirdPartyRulesCallbacks adds third-party rules callbacks. Only
// during New.
func (a *API) RegisterThirdPartyRulesCallbacks(cb ThirdPartyRulesCallbacks) error {
	return a.host.RegisterThirdPartyRulesCallbacks(a.module, cb)
}

// RegisterWebResource serves h at path (an absolute path, and everything
// under it) on every HTTP listener. Only during New. The first module to
// register a path wins; a later registration of the same path is ignored
// with a warning in the log (not an error, as in Synapse). Paths under
// /_matrix/client, /_matrix/federation, /_matrix/key, /_matrix/media and
// /_synapse/admin, and their parents (/_matrix, /_synapse), are refused with
// an error. Use /_synapse/client/<module>/... as Synapse recommends.
func (a *API) RegisterWebResource(path string, h http.Handler) error {
	return a.host.RegisterWebResource(a.module, path, h)
}

// GetUserByRequest authenticates a request to a web resource by its access
// token, as the client API does, including the is_user_expired check. The
// error is an *Error to hand to RespondError.
func (a *API) GetUserByRequest(r *http.Request) (Requester, error) {
	return a.host.GetUserByRequest(r, false)
}

// GetUserByRequestAllowExpired is GetUserByRequest without the expiry check
// (Synapse's allow_expired=True).
func (a *API) GetUserByRequestAllowExpired(r *http.Request) (Requester, error) {
	return a.host.GetUserByRequest(r, true)
}

// GetUserInfo returns what the server knows of a local user, or ErrNotFound.
func (a *API) GetUserInfo(ctx context.Context, userID string) (UserInfo, error) {
	return a.host.GetUserInfo(ctx, userID)
}

// IsUserAdmin reports whether a local user is a server admin (false for
// unknown users).
func (a *API) IsUserAdmin(ctx context.Context, userID string) (bool, error) {
	info, err := a.host.GetUserInfo(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return info.IsAdmin, err
}

// CheckUserExists looks a user ID up case-insensitively and returns its
// canonical form, or "" when there is no such user.
func (a *API) CheckUserExists(ctx context.Context, userID string) (string, error) {
	return a.host.CheckUserExists(ctx, userID)
}

// RegisterUser creates a local account (through check_registration_for_spam
// and on_user_registration, as every registration path) and returns its user
// ID.
func (a *API) RegisterUser(ctx context.Context, localpart string, opts RegisterUserOptions) (string, error) {
	return a.host.RegisterUser(ctx, localpart, opts)
}

// GetRoomState returns a room's current state (Synapse's get_room_state).
func (a *API) GetRoomState(ctx context.Context, roomID string) (StateMap, error) {
	return a.host.GetRoomState(ctx, roomID)
}

// CreateAndSendEventIntoRoom sends a non-membership event (state events
// too, with a "state_key") as a local user: the dict needs type, room_id,
// sender and content. It goes through check_event_allowed and
// check_event_for_spam and the auth rules, like a client's event, but is
// not rate limited. Membership changes use UpdateRoomMembership.
func (a *API) CreateAndSendEventIntoRoom(ctx context.Context, event map[string]any) (Event, error) {
	return a.host.CreateAndSendEventIntoRoom(ctx, event)
}

// UpdateRoomMembership changes target's membership of a room, sent by the
// local user sender (join, invite, leave, ban, knock), with optional extra
// content.
func (a *API) UpdateRoomMembership(ctx context.Context, sender, target, roomID, membership string, content map[string]any) (Event, error) {
	return a.host.UpdateRoomMembership(ctx, sender, target, roomID, membership, content)
}

// CreateRoom creates a room as a local user with a /createRoom body, and
// returns its ID.
func (a *API) CreateRoom(ctx context.Context, userID string, config map[string]any) (string, error) {
	return a.host.CreateRoom(ctx, userID, config)
}

// RegisterUserOptions are the optional parts of API.RegisterUser.
type RegisterUserOptions struct {
	Password string // "" for an account without a password
	Admin    bool
}

// Requester is an authenticated user making a request.
type Requester struct {
	UserID       string
	DeviceID     string
	IsGuest      bool
	ShadowBanned bool
}

// UserInfo is what the server knows of a local account (Synapse's UserInfo).
type UserInfo struct {
	UserID         string
	IsAdmin        bool
	IsDeactivated  bool
	IsGuest        bool
	IsShadowBanned bool
	UserType       string // "" for a regular user
	CreationTS     int64  // milliseconds since the epoch
}

// ErrNotFound is returned by lookups of things that do not exist.
var ErrNotFound = errors.New("module: not found")

// Error is a Matrix error for a client: an HTTP status, an errcode and a
// message, with optional extra JSON fields (Synapse's SynapseError).
type Error struct {
	Status  int
	Code    string
	Message string
	Extra   map[string]any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// RespondJSON writes v as a JSON response with the given status.
func RespondJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// RespondError writes err as a Matrix error response. An *Error keeps its
// status, code and fields; anything else is a 500 M_UNKNOWN that does not
// reveal the error's text.
func RespondError(w http.ResponseWriter, err error) {
	var me *Error
	if !errors.As(err, &me) {
		me = &Error{Status: http.StatusInternalServerError, Code: CodeUnknown, Message: "Internal server error"}
	}
	body := map[string]any{"errcode": me.Code, "error": me.Message}
	for k, v := range me.Extra {
		body[k] = v
	}
	RespondJSON(w, me.Status, body)
}

// AccountDataHost is the part of the server side of the API that serves
// account data (Synapse 1.57). It is separate from Host so that Host
// implementations written before it (a module's own test fakes) still
// compile; Sluice's host implements it. With a Host that does not, the
// account data methods of API return ErrAccountDataUnsupported.
type AccountDataHost interface {
	RegisterAccountDataCallbacks(module string, cb AccountDataCallbacks) error
	GetGlobalAccountData(ctx context.Context, userID, accountDataType string) (map[string]any, error)
	PutGlobalAccountData(ctx context.Context, userID, accountDataType string, content map[string]any) error
}

// ErrAccountDataUnsupported is returned by the account data methods of an
// API whose Host does not implement AccountDataHost.
var ErrAccountDataUnsupported = errors.New("module: this host does not serve account data")

func (a *API) accountDataHost() (AccountDataHost, error) {
	if h, ok := a.host.(AccountDataHost); ok {
		return h, nil
	}
	return nil, ErrAccountDataUnsupported
}

// RegisterAccountDataCallbacks adds account data callbacks. Only during New.
func (a *API) RegisterAccountDataCallbacks(cb AccountDataCallbacks) error {
	h, err := a.accountDataHost()
	if err != nil {
		return err
	}
	return h.RegisterAccountDataCallbacks(a.module, cb)
}

// GetGlobalAccountData returns a local user's global account data of one
// type (Synapse's account_data_manager.get_global), or nil (and no error)
// when the user has none of that type. A user ID that is not local is an
// error.
func (a *API) GetGlobalAccountData(ctx context.Context, userID, accountDataType string) (map[string]any, error) {
	h, err := a.accountDataHost()
	if err != nil {
		return nil, err
	}
	return h.GetGlobalAccountData(ctx, userID, accountDataType)
}

// PutGlobalAccountData stores a local user's global account data of one
// type, replacing what was there (Synapse's
// account_data_manager.put_global). Like a client's PUT, it tells the
// on_account_data_updated callbacks. A user ID that is not local, or nil
// content, is an error.
func (a *API) PutGlobalAccountData(ctx context.Context, userID, accountDataType string, content map[string]any) error {
	h, err := a.accountDataHost()
	if err != nil {
		return err
	}
	return h.PutGlobalAccountData(ctx, userID, accountDataType, content)
}
