package module

import (
	"context"
	"io"
)

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
	// CheckEventForSpam (check_event_for_spam) is asked for every
	// non-membership event a local user or module sends: messages, state
	// events other than m.room.member, redactions. Not for membership events
	// and not for the initial events of /createRoom. A rejection reaches the
	// client as 403 "This message has been rejected as probable spam" with
	// the decision's errcode (or the DenyMessage text).
	CheckEventForSpam func(ctx context.Context, ev Event) (Decision, error)

	// UserMayJoinRoom (user_may_join_room) is asked when a local user joins
	// a room (not the creator's join in /createRoom). isInvited says whether
	// the user has a pending invite. Server admins are not asked. A
	// rejection reaches the client as 403 "Not allowed to join this room".
	UserMayJoinRoom func(ctx context.Context, userID, roomID string, isInvited bool) (Decision, error)

	// UserMayInvite (user_may_invite) is asked when a local user invites
	// another (also the invite list of /createRoom). Server admins are not
	// asked. A rejection reaches the client as 403 "Invites have been
	// disabled on this server".
	UserMayInvite func(ctx context.Context, inviter, invitee, roomID string) (Decision, error)

	// UserMayCreateRoom (user_may_create_room) is asked when userID creates
	// a room, after on_create_room, with a deep copy of the (possibly
	// modified) /createRoom body. Server admins are not asked. A rejection
	// reaches the client as 403 "You are not permitted to create rooms".
	UserMayCreateRoom func(ctx context.Context, userID string, roomConfig map[string]any) (Decision, error)

	// UserMayCreateRoomAlias (user_may_create_room_alias) is asked when a
	// user creates a room alias (roomAlias is the full "#name:server"): for
	// /createRoom with room_alias_name. Server admins are asked too, as in
	// Synapse. A rejection reaches the client as 403 "This user is not
	// permitted to create this alias".
	UserMayCreateRoomAlias func(ctx context.Context, userID, roomAlias string) (Decision, error)

	// UserMaySendStateEvent (user_may_send_state_event) is asked for
	// PUT /rooms/{roomId}/state/{type}/{stateKey} (m.room.member too), with
	// a deep copy of the content. Server admins are not asked. A rejection
	// reaches the client as 403 "You are not permitted to send the state
	// event". Only Allow and Deny(code) are valid answers (as in Synapse,
	// extra fields are dropped).
	UserMaySendStateEvent func(ctx context.Context, userID, roomID, eventType, stateKey string, content map[string]any) (Decision, error)

	// CheckRegistrationForSpam (check_registration_for_spam) is asked on
	// every registration path (/register, shared-secret admin registration,
	// API.RegisterUser) before the account is created. The first answer
	// that is not RegistrationAllow wins.
	CheckRegistrationForSpam func(ctx context.Context, r RegistrationCheck) (RegistrationBehaviour, error)

	// UserMayPublishRoom (user_may_publish_room) is asked on
	// PUT /directory/list/room/{roomId}, for both visibilities ("public" and
	// "private"), as in Synapse; not for /createRoom's visibility. Server
	// admins are asked too. A rejection reaches the client as 403 "This user
	// is not permitted to publish rooms to the room list" with the
	// decision's errcode.
	UserMayPublishRoom func(ctx context.Context, userID, roomID string) (Decision, error)

	// CheckUsernameForSpam (check_username_for_spam) is asked, for each
	// user a POST /user_directory/search would return, with a copy of the
	// user's profile and the searcher's user ID. Return true to say the
	// user is spammy: they are left out of the results. The first true
	// wins. A failing callback fails the search with 500, as in Synapse.
	CheckUsernameForSpam func(ctx context.Context, profile UserProfile, requesterID string) (bool, error)

	// CheckMediaFileForSpam (check_media_file_for_spam) is asked after an
	// upload was written to the media store, before it is recorded. file
	// reads the whole file from its start (each module gets its own
	// reader; it is only valid during the call). Return true to say the
	// file is spam: it is deleted, not recorded, and the upload answers
	// 400 M_UNKNOWN "Bad content". The first true wins. A failing callback
	// fails the upload with 500 (and the file is deleted), as in Synapse.
	CheckMediaFileForSpam func(ctx context.Context, file io.Reader, info FileInfo) (bool, error)

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

// UserProfile is what check_username_for_spam is given: a user directory
// entry. DisplayName and AvatarURL are "" when the user has not set them
// (Synapse's None).
type UserProfile struct {
	UserID      string
	DisplayName string
	AvatarURL   string
}

// FileInfo describes a media file for check_media_file_for_spam (Synapse's
// FileInfo, plus the content type and length Sluice knows at that point).
type FileInfo struct {
	// ServerName is the server the media belongs to ("" for local media,
	// as in Synapse).
	ServerName string
	// FileID is the media ID.
	FileID string
	// URLCache is true for URL preview data (never, in this version).
	URLCache bool
	// Thumbnail is set when the file is a thumbnail, nil for an original.
	Thumbnail *ThumbnailInfo
	// ContentType is the upload's Content-Type ("" when none was given).
	ContentType string
	// Length is the file's size in bytes.
	Length int64
	// UploadName is the file name the uploader gave ("" when none).
	UploadName string
	// UserID is the uploader.
	UserID string
}

// ThumbnailInfo describes a thumbnail in FileInfo.
type ThumbnailInfo struct {
	Width  int
	Height int
	Method string // "crop" or "scale"
	Type   string // its content type
	Length int64
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

// ThirdPartyRulesCallbacks are Synapse's third-party event rules callbacks
// (register_third_party_rules_callbacks).
type ThirdPartyRulesCallbacks struct {
	// CheckEventAllowed (check_event_allowed) is asked for every event this
	// server builds (messages, state, membership, each initial event of
	// /createRoom), with the room state before it. Return allowed=false to
	// reject it (403 M_FORBIDDEN "This event is not allowed in this
	// context"). With allowed=true, a non-nil replacement is a whole new
	// event dict (start from the event's JSON) whose room_id, type and
	// state_key must not change and whose sender must stay local; the event
	// is rebuilt from it. The first rejection or replacement ends the chain.
	// A returned *Error reaches the client as it is; any other error fails
	// the request with 500 (Synapse fails closed here).
	CheckEventAllowed func(ctx context.Context, ev Event, state StateMap) (allowed bool, replacement map[string]any, err error)

	// OnCreateRoom (on_create_room) is told of POST /createRoom before the
	// room exists, and may change requestContent in place. A returned
	// *Error reaches the client as it is; any other error refuses the room
	// with 403 M_UNKNOWN "Room creation forbidden with these parameters".
	// Every callback runs, in order, until one fails.
	OnCreateRoom func(ctx context.Context, requester Requester, requestContent map[string]any, isAdmin bool) error

	// CheckVisibilityCanBeModified (check_visibility_can_be_modified) is
	// asked by /createRoom with the requested visibility ("public" or
	// "private", the default) and the room's state so far. Returning false
	// refuses the room with 403 M_UNKNOWN "Room visibility value not
	// allowed.". The first false wins. A failing callback is logged and
	// counts as true (Synapse fails open here) unless on_error says deny.
	CheckVisibilityCanBeModified func(ctx context.Context, roomID string, state StateMap, newVisibility string) (bool, error)

	// OnProfileUpdate (on_profile_update) is told after a local user's
	// global display name or avatar URL changed (PUT
	// /profile/{userId}/displayname or /avatar_url), with the whole new
	// profile. byAdmin is true when a server admin changed another user's
	// profile; deactivation when the change is the wipe of a deactivation.
	// Every callback runs, in order; a failure is logged and never fails
	// the request.
	OnProfileUpdate func(ctx context.Context, userID string, newProfile ProfileInfo, byAdmin, deactivation bool) error

	// OnNewEvent (on_new_event) is told of every event after it was
	// persisted, with the room state after it. It runs in the background:
	// it never delays or fails the request. Errors are logged.
	OnNewEvent func(ctx context.Context, ev Event, state StateMap) error
}

// AccountDataCallbacks are Synapse's account data callbacks
// (register_account_data_callbacks, Synapse 1.57).
type AccountDataCallbacks struct {
	// OnAccountDataUpdated (on_account_data_updated) is told after a user's
	// account data was stored: PUT /user/{userId}/account_data/{type} and
	// PUT /user/{userId}/rooms/{roomId}/account_data/{type}, and
	// API.PutGlobalAccountData. roomID is "" for global account data;
	// content is the new content (a copy per module). Every callback runs,
	// in order; a failure is logged and never fails the request.
	OnAccountDataUpdated func(ctx context.Context, userID, roomID, accountDataType string, content map[string]any) error
}

// ProfileInfo is a user's global profile (Synapse's ProfileInfo).
// DisplayName and AvatarURL are "" when not set.
type ProfileInfo struct {
	DisplayName string
	AvatarURL   string
}
