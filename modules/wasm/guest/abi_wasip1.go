//go:build wasip1

package guest

import (
	"errors"
	"unsafe"
)

// ABI version 1: the host's imports (module "sluice") and the guest's
// exports. docs/modules/wasm.md describes them for authors of guests in
// other languages.

//go:wasmimport sluice arg
func hostArg(i uint32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice event_field
func hostEventField(field uint32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice event_ts
func hostEventTS() int64

//go:wasmimport sluice content_string
func hostContentString(key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice config
func hostConfig(buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice set_errcode
func hostSetErrcode(p unsafe.Pointer, n uint32)

//go:wasmimport sluice set_error
func hostSetError(p unsafe.Pointer, n uint32)

//go:wasmimport sluice log
func hostLog(level int32, p unsafe.Pointer, n uint32)

//go:wasmimport sluice declare
func hostDeclare(p unsafe.Pointer, n uint32)

var registered *Module

// Register sets the guest's callbacks. Call it once, from an init
// function.
func Register(m Module) { registered = &m }

// Log writes a line to the server's log, attributed to the module.
func Log(msg string) { hostLog(0, strPtr(msg), uint32(len(msg))) }

// LogError writes an error line to the server's log.
func LogError(msg string) { hostLog(1, strPtr(msg), uint32(len(msg))) }

// buf is reused by every host read of one instance (calls into one
// instance never overlap).
var buf = make([]byte, 4096)

// Readers of the host's values. Each asks with the shared buffer first,
// and again with a big enough one when the value is larger; ok is false
// when the host has no such value. They are written out, not built from a
// closure: a Go guest pays for every allocation, and a call here is on the
// path of every callback.

func grow(n int32) bool {
	if int(n) > len(buf) {
		buf = make([]byte, int(n))
		return true
	}
	return false
}

func readArg(i uint32) ([]byte, bool) {
	n := hostArg(i, unsafe.Pointer(&buf[0]), uint32(len(buf)))
	if n >= 0 && grow(n) {
		n = hostArg(i, unsafe.Pointer(&buf[0]), uint32(len(buf)))
	}
	if n < 0 || int(n) > len(buf) {
		return nil, false
	}
	return buf[:n], true
}

func readEventField(f uint32) ([]byte, bool) {
	n := hostEventField(f, unsafe.Pointer(&buf[0]), uint32(len(buf)))
	if n >= 0 && grow(n) {
		n = hostEventField(f, unsafe.Pointer(&buf[0]), uint32(len(buf)))
	}
	if n < 0 || int(n) > len(buf) {
		return nil, false
	}
	return buf[:n], true
}

func readContentString(key string) ([]byte, bool) {
	n := hostContentString(strPtr(key), uint32(len(key)), unsafe.Pointer(&buf[0]), uint32(len(buf)))
	if n >= 0 && grow(n) {
		n = hostContentString(strPtr(key), uint32(len(key)), unsafe.Pointer(&buf[0]), uint32(len(buf)))
	}
	if n < 0 || int(n) > len(buf) {
		return nil, false
	}
	return buf[:n], true
}

func readConfig() []byte {
	n := hostConfig(unsafe.Pointer(&buf[0]), uint32(len(buf)))
	if n >= 0 && grow(n) {
		n = hostConfig(unsafe.Pointer(&buf[0]), uint32(len(buf)))
	}
	if n < 0 || int(n) > len(buf) {
		return nil
	}
	return buf[:n]
}

func strPtr(s string) unsafe.Pointer {
	if s == "" {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

func argString(i uint32) string {
	b, _ := readArg(i)
	return string(b)
}

func argBytes(i uint32) []byte {
	b, ok := readArg(i)
	if !ok {
		return nil
	}
	return append([]byte(nil), b...)
}

func eventField(f uint32) (string, bool) {
	b, ok := readEventField(f)
	return string(b), ok
}

func (Event) EventID() string { s, _ := eventField(FieldEventID); return s }
func (Event) Type() string    { s, _ := eventField(FieldType); return s }
func (Event) Sender() string  { s, _ := eventField(FieldSender); return s }
func (Event) RoomID() string  { s, _ := eventField(FieldRoomID); return s }

// StateKey returns the state key and whether the event is a state event.
func (Event) StateKey() (string, bool) { return eventField(FieldStateKey) }

// Redacts is the event an m.room.redaction redacts, "" otherwise.
func (Event) Redacts() string { s, _ := eventField(FieldRedacts); return s }

// Membership is an m.room.member event's membership, "" otherwise.
func (Event) Membership() string { s, _ := eventField(FieldMembership); return s }

// OriginServerTS is the event's timestamp in milliseconds.
func (Event) OriginServerTS() int64 { return hostEventTS() }

// ContentString returns a top-level string field of the content and
// whether it is there (and a string).
func (Event) ContentString(key string) (string, bool) {
	b, ok := readContentString(key)
	return string(b), ok
}

// ContentJSON is the event's content as JSON.
func (Event) ContentJSON() []byte {
	b, _ := readEventField(FieldContent)
	return append([]byte(nil), b...)
}

// JSON is the whole event as JSON (the federation format).
func (Event) JSON() []byte {
	b, _ := readEventField(FieldJSON)
	return append([]byte(nil), b...)
}

// Results of a callback export: allow/false, deny/true, and a failure
// whose text was passed with set_error. check_registration_for_spam
// returns its behaviour (0, 1, 2) instead.
const (
	resultAllow int32 = 0
	resultDeny  int32 = 1
	resultError int32 = -1
)

func fail(err error) int32 {
	msg := err.Error()
	hostSetError(strPtr(msg), uint32(len(msg)))
	return resultError
}

func decision(d Decision, err error) int32 {
	if err != nil {
		return fail(err)
	}
	if d.Allowed() {
		return resultAllow
	}
	hostSetErrcode(strPtr(d.code), uint32(len(d.code)))
	return resultDeny
}

func boolean(b bool, err error) int32 {
	if err != nil {
		return fail(err)
	}
	if b {
		return resultDeny
	}
	return resultAllow
}

var errNotRegistered = errors.New("guest: the module did not call guest.Register in an init function")

//go:wasmexport sluice_abi_version
func abiVersion() uint32 { return 1 }

// sluice_start runs Init with the configuration and declares the
// implemented callbacks.
//
//go:wasmexport sluice_start
func start() int32 {
	if registered == nil {
		return fail(errNotRegistered)
	}
	if registered.Init != nil {
		if err := registered.Init(append([]byte(nil), readConfig()...)); err != nil {
			return fail(err)
		}
	}
	for _, name := range registered.implemented() {
		hostDeclare(strPtr(name), uint32(len(name)))
	}
	return 0
}

//go:wasmexport sluice_check_event_for_spam
func checkEventForSpam() int32 { return decision(registered.CheckEventForSpam(Event{})) }

//go:wasmexport sluice_user_may_join_room
func userMayJoinRoom() int32 {
	return decision(registered.UserMayJoinRoom(argString(0), argString(1), argString(2) == "true"))
}

//go:wasmexport sluice_user_may_invite
func userMayInvite() int32 {
	return decision(registered.UserMayInvite(argString(0), argString(1), argString(2)))
}

//go:wasmexport sluice_user_may_create_room
func userMayCreateRoom() int32 {
	return decision(registered.UserMayCreateRoom(argString(0), argBytes(1)))
}

//go:wasmexport sluice_user_may_create_room_alias
func userMayCreateRoomAlias() int32 {
	return decision(registered.UserMayCreateRoomAlias(argString(0), argString(1)))
}

//go:wasmexport sluice_user_may_publish_room
func userMayPublishRoom() int32 {
	return decision(registered.UserMayPublishRoom(argString(0), argString(1)))
}

//go:wasmexport sluice_user_may_send_state_event
func userMaySendStateEvent() int32 {
	return decision(registered.UserMaySendStateEvent(argString(0), argString(1), argString(2), argString(3), argBytes(4)))
}

//go:wasmexport sluice_check_username_for_spam
func checkUsernameForSpam() int32 {
	return boolean(registered.CheckUsernameForSpam(UserProfile{argString(0), argString(1), argString(2)}, argString(3)))
}

//go:wasmexport sluice_check_login_for_spam
func checkLoginForSpam() int32 {
	return decision(registered.CheckLoginForSpam(LoginCheck{argString(0), argString(1), argString(2), argString(3), argBytes(4)}))
}

//go:wasmexport sluice_check_registration_for_spam
func checkRegistrationForSpam() int32 {
	b, err := registered.CheckRegistrationForSpam(RegistrationCheck{argString(0), argString(1), argBytes(2), argBytes(3)})
	if err != nil {
		return fail(err)
	}
	return int32(b)
}
