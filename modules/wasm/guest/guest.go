// Package guest is the SDK for Sluice modules compiled to WebAssembly: a
// module author writes plain Go functions, builds them with the standard Go
// toolchain for wasip1, and Sluice's `wasm` module loads the .wasm file into
// a sandbox at start-up.
//
//	//go:build wasip1
//
//	package main
//
//	import "github.com/sluice-im/sluice/modules/wasm/guest"
//
//	func init() {
//		guest.Register(guest.Module{
//			CheckEventForSpam: func(ev guest.Event) (guest.Decision, error) {
//				if body, _ := ev.ContentString("body"); body == "spam" {
//					return guest.Deny("M_FORBIDDEN"), nil
//				}
//				return guest.Allow, nil
//			},
//		})
//	}
//
//	func main() {}
//
// Build it as a WebAssembly reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o mymodule.wasm .
//
// Each callback has the meaning, chaining and effects on clients of the
// native callback of the same name (docs/modules/spam_checker_callbacks.md):
// a guest callback is bound to the same chain as a Go module's. The guest
// has no file system, network, clock or randomness unless the operator's
// configuration grants them, its memory is capped, and each call has the
// module entry's deadline. A guest that panics, traps, runs out of memory
// or overruns its deadline fails that call (under the entry's failure
// policy) and its instance is replaced; the server goes on.
//
// The wire between host and guest (the ABI) is described in
// docs/modules/wasm.md; this package hides it.
package guest

// Module lists a guest's callbacks. Leave a field nil to not implement it.
// Register it from an init function.
type Module struct {
	// Init is called once per instance (Sluice may run several in
	// parallel) with the entry's `config:` as JSON (`null` when none). An
	// error stops Sluice's start-up (and fails `sluice check-config`) with
	// its text.
	Init func(config []byte) error

	// Spam checker callbacks.
	CheckEventForSpam        func(ev Event) (Decision, error)
	UserMayJoinRoom          func(userID, roomID string, isInvited bool) (Decision, error)
	UserMayInvite            func(inviter, invitee, roomID string) (Decision, error)
	UserMayCreateRoom        func(userID string, roomConfig []byte) (Decision, error)
	UserMayCreateRoomAlias   func(userID, roomAlias string) (Decision, error)
	UserMayPublishRoom       func(userID, roomID string) (Decision, error)
	UserMaySendStateEvent    func(userID, roomID, eventType, stateKey string, content []byte) (Decision, error)
	CheckUsernameForSpam     func(profile UserProfile, requesterID string) (bool, error)
	CheckLoginForSpam        func(l LoginCheck) (Decision, error)
	CheckRegistrationForSpam func(r RegistrationCheck) (RegistrationBehaviour, error)
}

// Event is the event of the current call (check_event_for_spam). Its
// fields are read from the host on demand (its methods exist in wasip1
// builds): a guest that reads only the type and the body never decodes the
// event.
type Event struct{}

// Decision is a spam checker answer: Allow, or Deny with a Matrix errcode.
type Decision struct{ code string }

// Allow lets the operation go on; later modules still get their say.
var Allow = Decision{}

// Deny rejects the operation with a Matrix errcode (M_FORBIDDEN when
// empty). The client sees the call site's status and message.
func Deny(code string) Decision {
	if code == "" {
		code = "M_FORBIDDEN"
	}
	return Decision{code: code}
}

// Allowed reports whether d lets the operation through.
func (d Decision) Allowed() bool { return d.code == "" }

// Code is the errcode of a rejection, "" when allowed.
func (d Decision) Code() string { return d.code }

// RegistrationBehaviour is check_registration_for_spam's answer.
type RegistrationBehaviour int32

const (
	RegistrationAllow     RegistrationBehaviour = 0
	RegistrationShadowBan RegistrationBehaviour = 1
	RegistrationDeny      RegistrationBehaviour = 2
)

// UserProfile is check_username_for_spam's user ("" for unset fields).
type UserProfile struct {
	UserID, DisplayName, AvatarURL string
}

// LoginCheck is check_login_for_spam's input ("" for absent fields).
// RequestInfo is a JSON array of [user agent, IP] pairs.
type LoginCheck struct {
	UserID, DeviceID, InitialDisplayName, AuthProviderID string
	RequestInfo                                          []byte
}

// RegistrationCheck is check_registration_for_spam's input. RequestInfo is
// a JSON array of [user agent, IP] pairs; EmailThreepid is JSON (null when
// none).
type RegistrationCheck struct {
	Username, AuthProviderID   string
	RequestInfo, EmailThreepid []byte
}

// Event field numbers of the ABI's event_field import
// (docs/modules/wasm.md). The host uses these too: one definition for
// both sides.
const (
	FieldEventID = iota
	FieldType
	FieldSender
	FieldRoomID
	FieldStateKey
	FieldRedacts
	FieldMembership
	FieldContent
	FieldJSON
)

// Callback names, as the guest declares them to the host.
var callbackNames = [...]string{
	"check_event_for_spam", "user_may_join_room", "user_may_invite", "user_may_create_room",
	"user_may_create_room_alias", "user_may_publish_room", "user_may_send_state_event",
	"check_username_for_spam", "check_login_for_spam", "check_registration_for_spam",
}

// implemented lists the callbacks m implements, by name.
func (m Module) implemented() []string {
	set := []bool{
		m.CheckEventForSpam != nil, m.UserMayJoinRoom != nil, m.UserMayInvite != nil, m.UserMayCreateRoom != nil,
		m.UserMayCreateRoomAlias != nil, m.UserMayPublishRoom != nil, m.UserMaySendStateEvent != nil,
		m.CheckUsernameForSpam != nil, m.CheckLoginForSpam != nil, m.CheckRegistrationForSpam != nil,
	}
	var out []string
	for i, ok := range set {
		if ok {
			out = append(out, callbackNames[i])
		}
	}
	return out
}
