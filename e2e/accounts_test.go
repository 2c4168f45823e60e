package e2e_test

// Accounts, end to end and as Synapse answers: registration with its UIA
// dance, username checks, login, whoami, devices, logout, password change
// and shared-secret registration.

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/server"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
	"github.com/sluice-im/sluice/internal/testserver"
)

const (
	acctRegister = "/_matrix/client/v3/register"
	acctLogin    = "/_matrix/client/v3/login"
	acctPassword = "/_matrix/client/v3/account/password"
	acctWhoami   = "/_matrix/client/v3/account/whoami"
	acctDevices  = "/_matrix/client/v3/devices"
	acctAdminReg = "/_synapse/admin/v1/register"
)

var (
	acctSessionRe  = regexp.MustCompile(`^[A-Za-z]{24}$`)
	acctDeviceIDRe = regexp.MustCompile(`^[A-Z]{10}$`)
	acctTokenRe    = regexp.MustCompile(`^syt_[A-Za-z0-9_-]+_[A-Za-z]{20}_[0-9A-Za-z]{6,}$`)
)

// acctDummy is an m.login.dummy auth dict (session may be empty).
func acctDummy(session string) map[string]any {
	a := map[string]any{"type": "m.login.dummy"}
	if session != "" {
		a["session"] = session
	}
	return a
}

// acctPasswordAuth is an m.login.password auth dict for a localpart.
func acctPasswordAuth(session, user, password string) map[string]any {
	return map[string]any{
		"type": "m.login.password", "session": session, "password": password,
		"identifier": map[string]any{"type": "m.id.user", "user": user},
	}
}

// acctCheckChallenge checks a UIA 401: exactly session, flows and params
// (plus completed when wantCompleted is not nil, and errcode/error when
// errcode is not empty). It returns the session.
func acctCheckChallenge(t testing.TB, r testserver.Response, stage string, wantCompleted []string, errcode string) string {
	t.Helper()
	r.Expect(t, 401, "")
	keys := []string{"session", "flows", "params"}
	if wantCompleted != nil {
		keys = append(keys, "completed")
	}
	if errcode != "" {
		keys = append(keys, "errcode", "error")
	}
	convExpectKeys(t, r, keys...)
	if !acctSessionRe.MatchString(r.Str("session")) {
		t.Errorf("session %q is not 24 letters", r.Str("session"))
	}
	convJSONEqual(t, "flows", r.Body["flows"], `[{"stages":["`+stage+`"]}]`)
	convJSONEqual(t, "params", r.Body["params"], `{}`)
	if wantCompleted != nil {
		convJSONEqual(t, "completed", r.Body["completed"], acctJSON(wantCompleted))
	}
	if errcode != "" && r.Str("errcode") != errcode {
		t.Errorf("errcode %q, want %q", r.Str("errcode"), errcode)
	}
	return r.Str("session")
}

func acctJSON(v []string) string {
	return "[" + strings.Join(func() []string {
		out := []string{}
		for _, s := range v {
			out = append(out, fmt.Sprintf("%q", s))
		}
		return out
	}(), ",") + "]"
}

// acctDevices lists the device IDs of a token's user, with the devices.
func acctDevicesOf(t testing.TB, s *testserver.Server, token string) map[string]map[string]any {
	t.Helper()
	r := s.Do(t, "GET", acctDevices, nil, token).Expect(t, 200, "")
	convExpectKeys(t, r, "devices")
	out := map[string]map[string]any{}
	for _, d := range r.Body["devices"].([]any) {
		dev := d.(map[string]any)
		out[dev["device_id"].(string)] = dev
	}
	return out
}

func acctExpectRegistered(t testing.TB, r testserver.Response, userID string) testserver.Response {
	t.Helper()
	r.Expect(t, 200, "")
	convExpectKeys(t, r, "user_id", "access_token", "device_id", "home_server")
	if r.Str("user_id") != userID || r.Str("home_server") != "test.local" {
		t.Fatalf("registered %s, want %s on test.local", r.Raw, userID)
	}
	if !acctTokenRe.MatchString(r.Str("access_token")) {
		t.Errorf("access token %q is not in Synapse's syt_ format", r.Str("access_token"))
	}
	return r
}

func acctWhoamiIs(t testing.TB, s *testserver.Server, token, userID, deviceID string) {
	t.Helper()
	r := s.Do(t, "GET", acctWhoami, nil, token).Expect(t, 200, "")
	convExpectKeys(t, r, "user_id", "device_id", "is_guest")
	if r.Str("user_id") != userID || r.Str("device_id") != deviceID || r.Body["is_guest"] != false {
		t.Fatalf("whoami %s, want %s on %s, not a guest", r.Raw, userID, deviceID)
	}
}

func TestAcctRegistrationDance(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		t.Run("two steps", func(t *testing.T) {
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "alice", "password": "pw-alice-1"}, ""), "m.login.dummy", nil, "")
			r := acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "alice", "password": "pw-alice-1", "auth": acctDummy(sid),
			}, ""), "@alice:test.local")
			if !acctDeviceIDRe.MatchString(r.Str("device_id")) {
				t.Errorf("generated device ID %q is not 10 upper-case letters", r.Str("device_id"))
			}
			acctWhoamiIs(t, s, r.Str("access_token"), "@alice:test.local", r.Str("device_id"))
			s.Login(t, "alice", "pw-alice-1")

			// Completing the same session again does not register again:
			// it logs the same user in on a new device.
			again := acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "alice", "password": "pw-alice-1", "auth": acctDummy(sid),
			}, ""), "@alice:test.local")
			if again.Str("device_id") == r.Str("device_id") || again.Str("access_token") == r.Str("access_token") {
				t.Errorf("the retry reused the device or token: %s", again.Raw)
			}
		})
		t.Run("empty body gets the challenge", func(t *testing.T) {
			acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{}, ""), "m.login.dummy", nil, "")
		})
		t.Run("auth without a type lists the completed stages", func(t *testing.T) {
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "anna", "password": "pw-anna-1"}, ""), "m.login.dummy", nil, "")
			again := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{"auth": map[string]any{"session": sid}}, ""), "m.login.dummy", []string{}, "")
			if again != sid {
				t.Errorf("session changed from %s to %s", sid, again)
			}
			// Without an auth dict, a new session and no "completed".
			acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "anna", "password": "pw-anna-1"}, ""), "m.login.dummy", nil, "")
		})
		t.Run("one shot", func(t *testing.T) {
			r := acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "bob", "password": "pw-bob-1", "auth": acctDummy(""),
			}, ""), "@bob:test.local")
			acctWhoamiIs(t, s, r.Str("access_token"), "@bob:test.local", r.Str("device_id"))
		})
		t.Run("unknown session", func(t *testing.T) {
			convExpect(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "carl", "password": "pw", "auth": acctDummy("NoSuchSessionAtAllXXXXXX"),
			}, ""), 400, "M_UNKNOWN", "Unknown session ID: NoSuchSessionAtAllXXXXXX")
			// The unknown session is reported before the username is checked.
			convExpect(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "alice", "password": "pw", "auth": acctDummy("nope"),
			}, ""), 400, "M_UNKNOWN", "Unknown session ID: nope")
		})
		t.Run("session from another endpoint", func(t *testing.T) {
			_, token := s.Register(t, "dora", "pw-dora-1")
			ch := s.Do(t, "POST", acctPassword, map[string]any{"new_password": "x"}, token).Expect(t, 401, "")
			convExpect(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "dora2", "password": "pw", "auth": acctDummy(ch.Str("session")),
			}, ""), 403, "M_UNKNOWN", "Requested operation has changed during the UI authentication session.")
		})
		t.Run("inhibit_login", func(t *testing.T) {
			r := s.Do(t, "POST", acctRegister, map[string]any{
				"username": "erin", "password": "pw-erin-1", "inhibit_login": true, "auth": acctDummy(""),
			}, "").Expect(t, 200, "")
			convExpectKeys(t, r, "user_id", "home_server")
			if r.Str("user_id") != "@erin:test.local" {
				t.Fatalf("%s", r.Raw)
			}
			tok := s.Login(t, "erin", "pw-erin-1")
			if n := len(acctDevicesOf(t, s, tok)); n != 1 {
				t.Errorf("%d devices after an inhibited registration and a login, want 1", n)
			}
		})
		t.Run("inhibit_login given in the first request only", func(t *testing.T) {
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "erik", "password": "pw-erik-1", "inhibit_login": true,
			}, ""), "m.login.dummy", nil, "")
			r := s.Do(t, "POST", acctRegister, map[string]any{"auth": acctDummy(sid)}, "").Expect(t, 200, "")
			convExpectKeys(t, r, "user_id", "home_server")
		})
		t.Run("device_id and initial_device_display_name", func(t *testing.T) {
			r := acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "fay", "password": "pw-fay-1", "device_id": "FAYPHONE",
				"initial_device_display_name": "Fay's phone", "auth": acctDummy(""),
			}, ""), "@fay:test.local")
			if r.Str("device_id") != "FAYPHONE" {
				t.Fatalf("device_id %q, want FAYPHONE", r.Str("device_id"))
			}
			devs := acctDevicesOf(t, s, r.Str("access_token"))
			d, ok := devs["FAYPHONE"]
			if len(devs) != 1 || !ok {
				t.Fatalf("devices %v", devs)
			}
			if d["display_name"] != "Fay's phone" || d["user_id"] != "@fay:test.local" {
				t.Errorf("device %v", d)
			}
		})
		t.Run("device fields given in the first request only", func(t *testing.T) {
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "gus", "password": "pw-gus-1", "device_id": "GUSLAPTOP", "initial_device_display_name": "Gus's laptop",
			}, ""), "m.login.dummy", nil, "")
			r := acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{"auth": acctDummy(sid)}, ""), "@gus:test.local")
			if r.Str("device_id") != "GUSLAPTOP" {
				t.Fatalf("device_id %q, want the first request's GUSLAPTOP", r.Str("device_id"))
			}
			if d := acctDevicesOf(t, s, r.Str("access_token"))["GUSLAPTOP"]; d == nil || d["display_name"] != "Gus's laptop" {
				t.Errorf("device %v", d)
			}
			// The password given only in the first request was kept.
			s.Login(t, "gus", "pw-gus-1")
		})
		t.Run("display name without a password is ignored", func(t *testing.T) {
			// Synapse drops initial_device_display_name from a request
			// without a password (a client bug workaround), so the name of
			// the first request stays.
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "hal", "password": "pw-hal-1", "initial_device_display_name": "first",
			}, ""), "m.login.dummy", nil, "")
			r := acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{
				"initial_device_display_name": "second", "auth": acctDummy(sid),
			}, ""), "@hal:test.local")
			for _, d := range acctDevicesOf(t, s, r.Str("access_token")) {
				if d["display_name"] != "first" {
					t.Errorf("device %v, want display name \"first\"", d)
				}
			}
		})
		t.Run("password only in the first request", func(t *testing.T) {
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "ivy", "password": "pw-ivy-1"}, ""), "m.login.dummy", nil, "")
			acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "ivy", "auth": acctDummy(sid)}, ""), "@ivy:test.local")
			s.Login(t, "ivy", "pw-ivy-1")
			convExpect(t, s.Do(t, "POST", acctLogin, map[string]any{"type": "m.login.password", "user": "ivy", "password": "other"}, ""),
				403, "M_FORBIDDEN", "Invalid username or password")
		})
		t.Run("missing password", func(t *testing.T) {
			// The challenge comes first; the missing password only after
			// the flow is complete.
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "jack"}, ""), "m.login.dummy", nil, "")
			convExpect(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "jack", "auth": acctDummy(sid)}, ""),
				400, "M_MISSING_PARAM", "Missing params: password")
			convExpect(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "jack", "auth": acctDummy("")}, ""),
				400, "M_MISSING_PARAM", "Missing params: password")
			s.Do(t, "GET", "/_matrix/client/v3/register/available?username=jack", nil, "").Expect(t, 200, "")
		})
		t.Run("upper-case username is lower-cased", func(t *testing.T) {
			r := acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{
				"username": "KarL", "password": "pw-karl-1", "auth": acctDummy(""),
			}, ""), "@karl:test.local")
			acctWhoamiIs(t, s, r.Str("access_token"), "@karl:test.local", r.Str("device_id"))
			s.Login(t, "KARL", "pw-karl-1")
		})
		t.Run("no username: a numeric one", func(t *testing.T) {
			r := s.Do(t, "POST", acctRegister, map[string]any{"password": "pw-num-1", "auth": acctDummy("")}, "").Expect(t, 200, "")
			if !regexp.MustCompile(`^@[0-9]+:test\.local$`).MatchString(r.Str("user_id")) {
				t.Fatalf("generated user ID %q is not numeric", r.Str("user_id"))
			}
			s.Login(t, r.Str("user_id"), "pw-num-1")
		})
		t.Run("kind", func(t *testing.T) {
			convExpect(t, s.Do(t, "POST", acctRegister+"?kind=guest", map[string]any{}, ""), 403, "M_UNKNOWN", "Guest access is disabled")
			convExpect(t, s.Do(t, "POST", acctRegister+"?kind=guest", map[string]any{"username": "x", "password": "x", "auth": acctDummy("")}, ""),
				403, "M_UNKNOWN", "Guest access is disabled")
			convExpect(t, s.Do(t, "POST", acctRegister+"?kind=admin", map[string]any{}, ""), 400, "M_UNRECOGNIZED", "Do not understand membership kind: admin")
			acctCheckChallenge(t, s.Do(t, "POST", acctRegister+"?kind=user", map[string]any{}, ""), "m.login.dummy", nil, "")
		})
		t.Run("access token on /register", func(t *testing.T) {
			_, token := s.Register(t, "lena", "pw-lena-1")
			const msg = "An access token should not be provided on requests to /register (except if type is m.login.application_service)"
			body := map[string]any{"username": "lena2", "password": "pw", "auth": acctDummy("")}
			convExpect(t, s.Do(t, "POST", acctRegister, body, token), 400, "M_UNKNOWN", msg)
			convExpect(t, s.Do(t, "POST", acctRegister, body, "not-even-valid"), 400, "M_UNKNOWN", msg)
			convExpect(t, s.Do(t, "POST", acctRegister+"?access_token=", body, ""), 400, "M_UNKNOWN", msg)
			convExpect(t, convDo(t, s, "POST", acctRegister, http.Header{"Authorization": {"Basic x"}}, body), 400, "M_UNKNOWN", msg)
			s.Do(t, "GET", "/_matrix/client/v3/register/available?username=lena2", nil, "").Expect(t, 200, "")
		})
	})
}

func TestAcctRegistrationDisabled(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{}, func(t *testing.T, s *testserver.Server) {
		for _, body := range []any{
			map[string]any{},
			map[string]any{"username": "mia", "password": "pw-mia-1"},
			map[string]any{"username": "mia", "password": "pw-mia-1", "auth": acctDummy("")},
			// Checked before the username.
			map[string]any{"username": "_bad!", "password": "pw"},
		} {
			for _, prefix := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
				convExpect(t, s.Do(t, "POST", prefix+"/register", body, ""), 403, "M_FORBIDDEN", "Registration has been disabled")
			}
		}
		for _, q := range []string{"?username=mia", "", "?username=_bad!"} {
			convExpect(t, s.Do(t, "GET", "/_matrix/client/v3/register/available"+q, nil, ""), 403, "M_FORBIDDEN", "Registration has been disabled")
		}
		// Bad JSON is still reported first, and guests are refused first.
		convExpect(t, s.Do(t, "POST", acctRegister, "{", ""), 400, "M_NOT_JSON", "Content not JSON.")
		convExpect(t, s.Do(t, "POST", acctRegister+"?kind=guest", map[string]any{}, ""), 403, "M_UNKNOWN", "Guest access is disabled")
	})
}

func TestAcctUsernames(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		s.Register(t, "taken", "pw-taken-1")
		long := strings.Repeat("a", 255-len("@:test.local")+1)
		maxLen := strings.Repeat("b", 255-len("@:test.local"))
		const (
			chars = "User ID can only contain characters a-z, 0-9, or '=_-./+'"
			inUse = "User ID already taken."
		)
		t.Run("register/available", func(t *testing.T) {
			for _, c := range []struct {
				query, errcode, msg string
			}{
				{"?username=fresh", "", ""},
				{"?username=a.b_c=d-e/f%2Bg", "", ""},
				{"?username=" + maxLen, "", ""},
				{"?username=taken", "M_USER_IN_USE", inUse},
				// Not lower-cased here, unlike /register.
				{"?username=Taken", "M_INVALID_USERNAME", chars},
				{"?username=Fresh", "M_INVALID_USERNAME", chars},
				{"?username=bad!", "M_INVALID_USERNAME", chars},
				{"?username=sp%20ace", "M_INVALID_USERNAME", chars},
				{"?username=colon:x", "M_INVALID_USERNAME", chars},
				{"?username=_under", "M_INVALID_USERNAME", "User ID may not begin with _"},
				{"?username=", "M_INVALID_USERNAME", "User ID cannot be empty"},
				{"?username=" + long, "M_INVALID_USERNAME", "User ID may not be longer than 255 characters"},
				{"?username=12345", "M_INVALID_USERNAME", "Numeric user IDs are reserved for guest users."},
				{"", "M_MISSING_PARAM", "Missing string query parameter 'username'"},
				{"?user=fresh", "M_MISSING_PARAM", "Missing string query parameter 'username'"},
			} {
				t.Run(c.query, func(t *testing.T) {
					r := s.Do(t, "GET", "/_matrix/client/v3/register/available"+c.query, nil, "")
					if c.errcode == "" {
						r.Expect(t, 200, "")
						convJSONEqual(t, "body", r.Body, `{"available":true}`)
						return
					}
					convExpect(t, r, 400, c.errcode, c.msg)
				})
			}
		})
		t.Run("register", func(t *testing.T) {
			for _, c := range []struct {
				username   any
				errcode    string
				msg        string
				wantUserID string
			}{
				{"taken", "M_USER_IN_USE", inUse, ""},
				{"TAKEN", "M_USER_IN_USE", inUse, ""},
				{"Taken", "M_USER_IN_USE", inUse, ""},
				{"bad!", "M_INVALID_USERNAME", chars, ""},
				{"with space", "M_INVALID_USERNAME", chars, ""},
				{"ünïcode", "M_INVALID_USERNAME", chars, ""},
				{"_under", "M_INVALID_USERNAME", "User ID may not begin with _", ""},
				{"", "M_INVALID_USERNAME", "User ID cannot be empty", ""},
				{long, "M_INVALID_USERNAME", "User ID may not be longer than 255 characters", ""},
				{"123", "M_INVALID_USERNAME", "Numeric user IDs are reserved for guest users.", ""},
				{strings.Repeat("x", 513), "M_UNKNOWN", "Invalid username", ""},
				{nil, "M_UNKNOWN", "Invalid username", ""},
				{[]any{"a"}, "M_UNKNOWN", "Invalid username", ""},
				{"Mixed.Case", "", "", "@mixed.case:test.local"},
				{maxLen, "", "", "@" + maxLen + ":test.local"},
				{"0x1", "", "", "@0x1:test.local"},
			} {
				name := fmt.Sprintf("%#v", c.username)
				if len(name) > 40 {
					name = fmt.Sprintf("%d characters", len(name)-2)
				}
				t.Run(name, func(t *testing.T) {
					// Checked on the first request, before the challenge,
					// and again when registering in one shot.
					first := s.Do(t, "POST", acctRegister, map[string]any{"username": c.username, "password": "pw-x-1"}, "")
					if c.errcode == "" {
						acctCheckChallenge(t, first, "m.login.dummy", nil, "")
						acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{
							"username": c.username, "password": "pw-x-1", "auth": acctDummy(first.Str("session")),
						}, ""), c.wantUserID)
						return
					}
					convExpect(t, first, 400, c.errcode, c.msg)
					convExpect(t, s.Do(t, "POST", acctRegister, map[string]any{
						"username": c.username, "password": "pw-x-1", "auth": acctDummy(""),
					}, ""), 400, c.errcode, c.msg)
				})
			}
		})
		t.Run("a second session for a name registered meanwhile", func(t *testing.T) {
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "racer", "password": "pw-r-1"}, ""), "m.login.dummy", nil, "")
			s.Register(t, "racer", "pw-r-2")
			convExpect(t, s.Do(t, "POST", acctRegister, map[string]any{"auth": acctDummy(sid)}, ""), 400, "M_USER_IN_USE", inUse)
		})
		t.Run("a session that registered another name", func(t *testing.T) {
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "sam", "password": "pw-sam-1"}, ""), "m.login.dummy", nil, "")
			acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{"auth": acctDummy(sid)}, ""), "@sam:test.local")
			convExpect(t, s.Do(t, "POST", acctRegister, map[string]any{"username": "samuel", "password": "pw-sam-1", "auth": acctDummy(sid)}, ""),
				400, "M_UNKNOWN", "A different user ID has already been registered for this session")
		})
	})
}

func TestAcctLogin(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		s.Register(t, "luke", "pw-luke-1")
		const bad = "Invalid username or password"

		t.Run("flows", func(t *testing.T) {
			r := s.Do(t, "GET", acctLogin, nil, "").Expect(t, 200, "")
			convExpectKeys(t, r, "flows")
			flows := r.Body["flows"].([]any)
			if len(flows) == 0 || !reflect.DeepEqual(flows[0], map[string]any{"type": "m.login.password"}) {
				t.Fatalf("flows %s: want m.login.password first", r.Raw)
			}
			for _, f := range flows {
				if _, ok := f.(map[string]any)["type"].(string); !ok {
					t.Errorf("flow without a type: %v", f)
				}
			}
		})
		t.Run("accepted", func(t *testing.T) {
			for _, c := range []struct {
				name string
				body map[string]any
			}{
				{"localpart identifier", map[string]any{"identifier": map[string]any{"type": "m.id.user", "user": "luke"}}},
				{"MXID identifier", map[string]any{"identifier": map[string]any{"type": "m.id.user", "user": "@luke:test.local"}}},
				{"legacy user", map[string]any{"user": "luke"}},
				{"legacy MXID", map[string]any{"user": "@luke:test.local"}},
				{"legacy user wins over identifier", map[string]any{"user": "luke", "identifier": map[string]any{"type": "m.id.user", "user": "nobody"}}},
				{"upper-case localpart", map[string]any{"identifier": map[string]any{"type": "m.id.user", "user": "LUKE"}}},
				{"upper-case MXID", map[string]any{"identifier": map[string]any{"type": "m.id.user", "user": "@Luke:test.local"}}},
				{"empty legacy user is ignored", map[string]any{"user": "", "identifier": map[string]any{"type": "m.id.user", "user": "luke"}}},
				{"refresh_token false", map[string]any{"user": "luke", "refresh_token": false}},
			} {
				t.Run(c.name, func(t *testing.T) {
					body := map[string]any{"type": "m.login.password", "password": "pw-luke-1"}
					for k, v := range c.body {
						body[k] = v
					}
					r := s.Do(t, "POST", acctLogin, body, "").Expect(t, 200, "")
					convExpectKeys(t, r, "user_id", "access_token", "device_id", "home_server")
					if r.Str("user_id") != "@luke:test.local" || r.Str("home_server") != "test.local" {
						t.Fatalf("login %s", r.Raw)
					}
					if !acctDeviceIDRe.MatchString(r.Str("device_id")) || !acctTokenRe.MatchString(r.Str("access_token")) {
						t.Errorf("device or token format: %s", r.Raw)
					}
					acctWhoamiIs(t, s, r.Str("access_token"), "@luke:test.local", r.Str("device_id"))
				})
			}
		})
		t.Run("refused", func(t *testing.T) {
			pw := func(extra map[string]any) map[string]any {
				b := map[string]any{"type": "m.login.password", "password": "pw-luke-1"}
				for k, v := range extra {
					b[k] = v
				}
				return b
			}
			id := func(user string) map[string]any { return map[string]any{"type": "m.id.user", "user": user} }
			for _, c := range []struct {
				name         string
				body         map[string]any
				status       int
				errcode, msg string
			}{
				{"wrong password", map[string]any{"type": "m.login.password", "identifier": id("luke"), "password": "nope"}, 403, "M_FORBIDDEN", bad},
				{"empty password", map[string]any{"type": "m.login.password", "identifier": id("luke"), "password": ""}, 403, "M_FORBIDDEN", bad},
				{"unknown user", pw(map[string]any{"identifier": id("nobody")}), 403, "M_FORBIDDEN", bad},
				{"other server", pw(map[string]any{"identifier": id("@luke:elsewhere.example")}), 403, "M_FORBIDDEN", bad},
				{"third-party identifier", pw(map[string]any{"identifier": map[string]any{"type": "m.id.thirdparty", "medium": "email", "address": "luke@example.org"}}), 403, "M_FORBIDDEN", bad},
				{"legacy medium and address", pw(map[string]any{"medium": "email", "address": "luke@example.org"}), 403, "M_FORBIDDEN", bad},
				{"third-party identifier without address", pw(map[string]any{"identifier": map[string]any{"type": "m.id.thirdparty", "medium": "email"}}), 400, "M_UNKNOWN", "Invalid thirdparty identifier"},
				{"phone identifier without number", pw(map[string]any{"identifier": map[string]any{"type": "m.id.phone", "country": "GB"}}), 400, "M_UNKNOWN", "Invalid phone-type identifier"},
				{"unknown login type", map[string]any{"type": "m.login.magic", "identifier": id("luke")}, 400, "M_UNKNOWN", "Unknown login type m.login.magic"},
				{"unknown login type, no identifier", map[string]any{"type": "m.login.magic"}, 400, "M_INVALID_PARAM", "Invalid login submission"},
				{"missing type", map[string]any{"identifier": id("luke"), "password": "pw-luke-1"}, 400, "M_UNKNOWN", "Missing JSON keys."},
				{"empty body", map[string]any{}, 400, "M_UNKNOWN", "Missing JSON keys."},
				{"missing password", map[string]any{"type": "m.login.password", "identifier": id("luke")}, 400, "M_INVALID_PARAM", "Bad parameter: password"},
				{"missing password and identifier", map[string]any{"type": "m.login.password"}, 400, "M_INVALID_PARAM", "Bad parameter: password"},
				{"missing identifier", pw(nil), 400, "M_INVALID_PARAM", "Invalid login submission"},
				{"empty identifier", pw(map[string]any{"identifier": map[string]any{}}), 400, "M_INVALID_PARAM", "Invalid login submission"},
				{"null identifier", pw(map[string]any{"identifier": nil}), 400, "M_INVALID_PARAM", "Invalid login submission"},
				{"identifier without type", pw(map[string]any{"identifier": map[string]any{"user": "luke"}}), 400, "M_MISSING_PARAM", "'identifier' dict has no key 'type'"},
				{"unknown identifier type", pw(map[string]any{"identifier": map[string]any{"type": "m.id.magic", "user": "luke"}}), 400, "M_UNKNOWN", "Unknown login identifier type"},
				{"identifier without user", pw(map[string]any{"identifier": map[string]any{"type": "m.id.user"}}), 400, "M_UNKNOWN", "User identifier is missing 'user' key"},
				{"identifier with empty user", pw(map[string]any{"identifier": id("")}), 400, "M_UNKNOWN", "User identifier is missing 'user' key"},
				{"display name too long", pw(map[string]any{"identifier": id("luke"), "initial_device_display_name": strings.Repeat("n", 101)}), 400, "M_TOO_LARGE", "Device display name is too long (max 100)"},
				{"device_id too long", pw(map[string]any{"identifier": id("luke"), "device_id": strings.Repeat("D", 513)}), 400, "M_INVALID_PARAM", "device_id cannot be longer than 512 characters."},
				{"refresh_token not a boolean", pw(map[string]any{"identifier": id("luke"), "refresh_token": "true"}), 400, "M_UNKNOWN", "`refresh_token` should be true or false."},
			} {
				t.Run(c.name, func(t *testing.T) {
					convExpect(t, s.Do(t, "POST", acctLogin, c.body, ""), c.status, c.errcode, c.msg)
				})
			}
		})
		t.Run("device_id reuse keeps one device", func(t *testing.T) {
			login := func(name string) testserver.Response {
				return s.Do(t, "POST", acctLogin, map[string]any{
					"type": "m.login.password", "user": "luke", "password": "pw-luke-1",
					"device_id": "LUKEPAD", "initial_device_display_name": name,
				}, "").Expect(t, 200, "")
			}
			a, b := login("first name"), login("second name")
			if a.Str("device_id") != "LUKEPAD" || b.Str("device_id") != "LUKEPAD" || a.Str("access_token") == b.Str("access_token") {
				t.Fatalf("logins %s / %s", a.Raw, b.Raw)
			}
			n := 0
			for id, d := range acctDevicesOf(t, s, b.Str("access_token")) {
				if id == "LUKEPAD" {
					n++
					// The existing device keeps its name.
					if d["display_name"] != "first name" {
						t.Errorf("device %v, want display name \"first name\"", d)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d LUKEPAD devices", n)
			}
			// Both tokens are valid, on the same device.
			acctWhoamiIs(t, s, a.Str("access_token"), "@luke:test.local", "LUKEPAD")
			acctWhoamiIs(t, s, b.Str("access_token"), "@luke:test.local", "LUKEPAD")
		})
	})
	t.Run("well_known", func(t *testing.T) {
		t.Parallel()
		testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn + "public_baseurl: https://m.example.org\n"}, func(t *testing.T, s *testserver.Server) {
			s.Register(t, "wendy", "pw-wendy-1")
			r := s.Do(t, "POST", acctLogin, map[string]any{"type": "m.login.password", "user": "wendy", "password": "pw-wendy-1"}, "").Expect(t, 200, "")
			convExpectKeys(t, r, "user_id", "access_token", "device_id", "home_server", "well_known")
			convJSONEqual(t, "well_known", r.Body["well_known"], `{"m.homeserver":{"base_url":"https://m.example.org/"}}`)
		})
	})
}

func TestAcctSessions(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		reg := acctExpectRegistered(t, s.Do(t, "POST", acctRegister, map[string]any{
			"username": "nora", "password": "pw-nora-1", "auth": acctDummy(""),
		}, ""), "@nora:test.local")
		t0 := reg.Str("access_token")

		t.Run("whoami", func(t *testing.T) {
			acctWhoamiIs(t, s, t0, "@nora:test.local", reg.Str("device_id"))
		})
		t.Run("devices", func(t *testing.T) {
			named := s.Do(t, "POST", acctLogin, map[string]any{
				"type": "m.login.password", "user": "nora", "password": "pw-nora-1", "initial_device_display_name": "Nora's tablet",
			}, "").Expect(t, 200, "")
			r := s.Do(t, "GET", acctDevices, nil, t0).Expect(t, 200, "")
			devs := r.Body["devices"].([]any)
			if len(devs) != 2 {
				t.Fatalf("devices %s", r.Raw)
			}
			for _, d := range devs {
				dev := d.(map[string]any)
				if got := convKeys(dev); !reflect.DeepEqual(got, []string{"device_id", "display_name", "last_seen_ip", "last_seen_ts", "user_id"}) {
					t.Errorf("device keys %v", got)
				}
				if dev["user_id"] != "@nora:test.local" {
					t.Errorf("device %v", dev)
				}
				if ip, ok := dev["last_seen_ip"]; ok && ip != nil {
					if _, isStr := ip.(string); !isStr {
						t.Errorf("last_seen_ip %v", ip)
					}
				}
				if ts, ok := dev["last_seen_ts"]; ok && ts != nil {
					if _, isNum := ts.(float64); !isNum {
						t.Errorf("last_seen_ts %v", ts)
					}
				}
				switch dev["device_id"] {
				case reg.Str("device_id"):
					// Registered without a display name: null, not "".
					if v, has := dev["display_name"]; !has || v != nil {
						t.Errorf("display_name %v (present %v), want null", v, has)
					}
				case named.Str("device_id"):
					if dev["display_name"] != "Nora's tablet" {
						t.Errorf("display_name %v", dev["display_name"])
					}
				default:
					t.Errorf("unexpected device %v", dev)
				}
			}
			s.Do(t, "POST", "/_matrix/client/v3/logout", nil, named.Str("access_token")).Expect(t, 200, "")
		})
		t.Run("logout", func(t *testing.T) {
			other := s.Login(t, "nora", "pw-nora-1")
			t1 := s.Do(t, "POST", acctLogin, map[string]any{"type": "m.login.password", "user": "nora", "password": "pw-nora-1"}, "").Expect(t, 200, "")
			r := s.Do(t, "POST", "/_matrix/client/v3/logout", nil, t1.Str("access_token")).Expect(t, 200, "")
			convJSONEqual(t, "logout", r.Body, `{}`)
			for _, p := range []string{acctWhoami, acctDevices} {
				r := convExpect(t, s.Do(t, "GET", p, nil, t1.Str("access_token")), 401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
				if r.Body["soft_logout"] != false {
					t.Errorf("soft_logout %v", r.Body["soft_logout"])
				}
			}
			convExpect(t, s.Do(t, "POST", "/_matrix/client/v3/logout", nil, t1.Str("access_token")), 401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
			// The device is gone; the others are untouched.
			devs := acctDevicesOf(t, s, other)
			if _, ok := devs[t1.Str("device_id")]; ok {
				t.Errorf("logged-out device %s still listed", t1.Str("device_id"))
			}
			if _, ok := devs[reg.Str("device_id")]; !ok {
				t.Errorf("other device %s gone", reg.Str("device_id"))
			}
			acctWhoamiIs(t, s, t0, "@nora:test.local", reg.Str("device_id"))
			// Logging out of a device logs out every token of it.
			a := s.Do(t, "POST", acctLogin, map[string]any{"type": "m.login.password", "user": "nora", "password": "pw-nora-1", "device_id": "SHARED"}, "").Expect(t, 200, "")
			b := s.Do(t, "POST", acctLogin, map[string]any{"type": "m.login.password", "user": "nora", "password": "pw-nora-1", "device_id": "SHARED"}, "").Expect(t, 200, "")
			s.Do(t, "POST", "/_matrix/client/v3/logout", nil, a.Str("access_token")).Expect(t, 200, "")
			convExpect(t, s.Do(t, "GET", acctWhoami, nil, b.Str("access_token")), 401, "M_UNKNOWN_TOKEN", "")
		})
		t.Run("logout/all", func(t *testing.T) {
			tokens := []string{t0, s.Login(t, "nora", "pw-nora-1"), s.Login(t, "nora", "pw-nora-1")}
			r := s.Do(t, "POST", "/_matrix/client/v3/logout/all", nil, tokens[1]).Expect(t, 200, "")
			convJSONEqual(t, "logout/all", r.Body, `{}`)
			for i, tok := range tokens {
				if r := s.Do(t, "GET", acctWhoami, nil, tok); r.Status != 401 || r.Str("errcode") != "M_UNKNOWN_TOKEN" {
					t.Errorf("token %d after logout/all: %d %s", i, r.Status, r.Raw)
				}
			}
			fresh := s.Do(t, "POST", acctLogin, map[string]any{"type": "m.login.password", "user": "nora", "password": "pw-nora-1"}, "").Expect(t, 200, "")
			devs := acctDevicesOf(t, s, fresh.Str("access_token"))
			if _, ok := devs[fresh.Str("device_id")]; len(devs) != 1 || !ok {
				t.Errorf("devices after logout/all and a login: %v", devs)
			}
			// Another user is untouched.
			_, tOther := s.Register(t, "olga", "pw-olga-1")
			s.Do(t, "POST", "/_matrix/client/v3/logout/all", nil, fresh.Str("access_token")).Expect(t, 200, "")
			acctWhoamiIs(t, s, tOther, "@olga:test.local", s.Do(t, "GET", acctWhoami, nil, tOther).Str("device_id"))
		})
	})
}

func TestAcctPasswordChange(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		// start logs user in on a requester device and two others.
		start := func(t *testing.T, user, pw string) (me testserver.Response, others []string) {
			t.Helper()
			s.Register(t, user, pw)
			me = s.Do(t, "POST", acctLogin, map[string]any{"type": "m.login.password", "user": user, "password": pw}, "").Expect(t, 200, "")
			return me, []string{s.Login(t, user, pw), s.Login(t, user, pw)}
		}
		loginFails := func(t *testing.T, user, pw string) {
			t.Helper()
			convExpect(t, s.Do(t, "POST", acctLogin, map[string]any{"type": "m.login.password", "user": user, "password": pw}, ""),
				403, "M_FORBIDDEN", "Invalid username or password")
		}

		t.Run("the dance, other devices logged out", func(t *testing.T) {
			me, others := start(t, "pat", "pw-pat-1")
			tok := me.Str("access_token")
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctPassword, map[string]any{"new_password": "pw-pat-2"}, tok), "m.login.password", nil, "")

			// A wrong password: 401 with the flows and the LoginError.
			r := s.Do(t, "POST", acctPassword, map[string]any{"new_password": "pw-pat-2", "auth": acctPasswordAuth(sid, "pat", "wrong")}, tok)
			if got := acctCheckChallenge(t, r, "m.login.password", []string{}, "M_FORBIDDEN"); got != sid {
				t.Errorf("session %s, want %s", got, sid)
			}
			if r.Str("error") != "Invalid username or password" {
				t.Errorf("error %q", r.Str("error"))
			}
			// Auth without an identifier is a plain 400.
			convExpect(t, s.Do(t, "POST", acctPassword, map[string]any{"new_password": "pw-pat-2", "auth": map[string]any{
				"type": "m.login.password", "session": sid, "password": "pw-pat-1",
			}}, tok), 400, "M_INVALID_PARAM", "Invalid login submission")
			// The old password still works until the change.
			s.Login(t, "pat", "pw-pat-1")

			r = s.Do(t, "POST", acctPassword, map[string]any{"new_password": "pw-pat-2", "auth": acctPasswordAuth(sid, "pat", "pw-pat-1")}, tok).Expect(t, 200, "")
			convJSONEqual(t, "body", r.Body, `{}`)
			loginFails(t, "pat", "pw-pat-1")
			s.Login(t, "pat", "pw-pat-2")
			for i, o := range others {
				if r := s.Do(t, "GET", acctWhoami, nil, o); r.Status != 401 || r.Str("errcode") != "M_UNKNOWN_TOKEN" {
					t.Errorf("other device %d after the change: %d %s", i, r.Status, r.Raw)
				}
			}
			acctWhoamiIs(t, s, tok, "@pat:test.local", me.Str("device_id"))
			if _, ok := acctDevicesOf(t, s, tok)[me.Str("device_id")]; !ok {
				t.Errorf("the requester's device is gone")
			}
		})
		t.Run("logout_devices false", func(t *testing.T) {
			me, others := start(t, "quinn", "pw-quinn-1")
			tok := me.Str("access_token")
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctPassword, map[string]any{"new_password": "pw-quinn-2", "logout_devices": false}, tok), "m.login.password", nil, "")
			s.Do(t, "POST", acctPassword, map[string]any{
				"new_password": "pw-quinn-2", "logout_devices": false, "auth": acctPasswordAuth(sid, "@quinn:test.local", "pw-quinn-1"),
			}, tok).Expect(t, 200, "")
			for _, o := range append(others, tok) {
				s.Do(t, "GET", acctWhoami, nil, o).Expect(t, 200, "")
			}
			loginFails(t, "quinn", "pw-quinn-1")
			s.Login(t, "quinn", "pw-quinn-2")
		})
		t.Run("fields given in the first request only", func(t *testing.T) {
			me, others := start(t, "rita", "pw-rita-1")
			tok := me.Str("access_token")
			sid := acctCheckChallenge(t, s.Do(t, "POST", acctPassword, map[string]any{"new_password": "pw-rita-2", "logout_devices": false}, tok), "m.login.password", nil, "")
			s.Do(t, "POST", acctPassword, map[string]any{"auth": acctPasswordAuth(sid, "rita", "pw-rita-1")}, tok).Expect(t, 200, "")
			for _, o := range others {
				s.Do(t, "GET", acctWhoami, nil, o).Expect(t, 200, "")
			}
			loginFails(t, "rita", "pw-rita-1")
			s.Login(t, "rita", "pw-rita-2")
		})
		t.Run("one shot with a legacy user", func(t *testing.T) {
			me, _ := start(t, "sara", "pw-sara-1")
			s.Do(t, "POST", acctPassword, map[string]any{"new_password": "pw-sara-2", "auth": map[string]any{
				"type": "m.login.password", "user": "SARA", "password": "pw-sara-1",
			}}, me.Str("access_token")).Expect(t, 200, "")
			s.Login(t, "sara", "pw-sara-2")
		})
		t.Run("someone else's credentials", func(t *testing.T) {
			me, _ := start(t, "tess", "pw-tess-1")
			s.Register(t, "ursula", "pw-ursula-1")
			convExpect(t, s.Do(t, "POST", acctPassword, map[string]any{"new_password": "pw-tess-2", "auth": acctPasswordAuth("", "ursula", "pw-ursula-1")},
				me.Str("access_token")), 403, "M_FORBIDDEN", "Invalid auth")
			s.Login(t, "tess", "pw-tess-1")
			s.Login(t, "ursula", "pw-ursula-1")
		})
		t.Run("no new password", func(t *testing.T) {
			me, _ := start(t, "vic", "pw-vic-1")
			acctCheckChallenge(t, s.Do(t, "POST", acctPassword, map[string]any{}, me.Str("access_token")), "m.login.password", nil, "")
			convExpect(t, s.Do(t, "POST", acctPassword, map[string]any{"auth": acctPasswordAuth("", "vic", "pw-vic-1")}, me.Str("access_token")),
				400, "M_MISSING_PARAM", "Missing params: password")
			s.Login(t, "vic", "pw-vic-1")
		})
		t.Run("tokens", func(t *testing.T) {
			// Without a token, Synapse offers the email flow.
			acctCheckChallenge(t, s.Do(t, "POST", acctPassword, map[string]any{"new_password": "x"}, ""), "m.login.email.identity", nil, "")
			convExpect(t, s.Do(t, "POST", acctPassword, map[string]any{"new_password": "x"}, "bad-token"), 401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
			convExpect(t, convDo(t, s, "POST", acctPassword, http.Header{"Authorization": {"Basic x"}}, map[string]any{"new_password": "x"}),
				401, "M_MISSING_TOKEN", "Invalid Authorization header.")
		})
	})
}

// acctMAC is Synapse's shared-secret registration MAC, computed here
// independently of the server's code: HMAC-SHA1 over the NUL-separated
// nonce, username, password, "admin"/"notadmin" and the optional user type,
// as lower-case hex.
func acctMAC(secret, nonce, user, password string, admin bool, userType string) string {
	m := hmac.New(sha1.New, []byte(secret))
	parts := []string{nonce, user, password, "notadmin"}
	if admin {
		parts[3] = "admin"
	}
	if userType != "" {
		parts = append(parts, userType)
	}
	m.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(m.Sum(nil))
}

func TestAcctSharedSecretRegistration(t *testing.T) {
	t.Parallel()
	nonceRe := regexp.MustCompile(`^[0-9a-f]{128}$`)
	testserver.ForEachDB(t, testserver.Options{}, func(t *testing.T, s *testserver.Server) {
		const secret = testserver.SharedSecret
		nonce := func() string {
			t.Helper()
			r := s.Do(t, "GET", acctAdminReg, nil, "").Expect(t, 200, "")
			convExpectKeys(t, r, "nonce")
			if !nonceRe.MatchString(r.Str("nonce")) {
				t.Fatalf("nonce %q is not 128 lower-case hex digits", r.Str("nonce"))
			}
			return r.Str("nonce")
		}
		body := func(user, pw string, admin bool, userType string) map[string]any {
			n := nonce()
			b := map[string]any{"nonce": n, "username": user, "password": pw, "admin": admin,
				"mac": acctMAC(secret, n, user, pw, admin, userType)}
			if userType != "" {
				b["user_type"] = userType
			} else {
				b["user_type"] = nil // as register_new_matrix_user sends it
			}
			return b
		}
		user := func(t *testing.T, id string) (admin bool, userType string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			u, err := s.Srv.Store().GetUser(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return u.Admin, u.UserType
		}

		if a, b := nonce(), nonce(); a == b {
			t.Fatalf("two nonces are equal")
		}
		for _, c := range []struct {
			name, user string
			admin      bool
			userType   string
			wantID     string
		}{
			{"plain", "sherlock", false, "", "@sherlock:test.local"},
			{"admin", "mycroft", true, "", "@mycroft:test.local"},
			{"bot", "robot", false, "bot", "@robot:test.local"},
			{"admin support", "helpdesk", true, "support", "@helpdesk:test.local"},
			{"upper case, MAC over the raw name", "Watson", false, "", "@watson:test.local"},
		} {
			t.Run(c.name, func(t *testing.T) {
				pw := "pw-" + c.user + "-1"
				r := acctExpectRegistered(t, s.Do(t, "POST", acctAdminReg, body(c.user, pw, c.admin, c.userType), ""), c.wantID)
				acctWhoamiIs(t, s, r.Str("access_token"), c.wantID, r.Str("device_id"))
				s.Login(t, c.user, pw)
				if admin, ut := user(t, c.wantID); admin != c.admin || ut != c.userType {
					t.Errorf("stored admin=%v user_type=%q, want %v %q", admin, ut, c.admin, c.userType)
				}
			})
		}
		t.Run("admin is tested for truthiness", func(t *testing.T) {
			n := nonce()
			r := acctExpectRegistered(t, s.Do(t, "POST", acctAdminReg, map[string]any{"nonce": n, "username": "lestrade", "password": "pw",
				"admin": "yes", "mac": acctMAC(secret, n, "lestrade", "pw", true, "")}, ""), "@lestrade:test.local")
			if admin, _ := user(t, r.Str("user_id")); !admin {
				t.Errorf("not an admin")
			}
		})
		t.Run("inhibit_login and device fields", func(t *testing.T) {
			b := body("hudson", "pw-hudson-1", false, "")
			b["inhibit_login"] = true
			r := s.Do(t, "POST", acctAdminReg, b, "").Expect(t, 200, "")
			convExpectKeys(t, r, "user_id", "home_server")
			b = body("irene", "pw-irene-1", false, "")
			b["device_id"], b["initial_device_display_name"] = "IRENEDEV", "Irene's"
			r = acctExpectRegistered(t, s.Do(t, "POST", acctAdminReg, b, ""), "@irene:test.local")
			if d := acctDevicesOf(t, s, r.Str("access_token"))["IRENEDEV"]; d == nil || d["display_name"] != "Irene's" {
				t.Errorf("device %v", d)
			}
		})
		t.Run("wrong MAC, then the nonce is spent", func(t *testing.T) {
			for _, mac := range []func(b map[string]any) string{
				func(b map[string]any) string {
					return acctMAC("wrong-secret", b["nonce"].(string), "moriarty", "pw", false, "")
				},
				func(b map[string]any) string { return acctMAC(secret, b["nonce"].(string), "moriarty", "pw", true, "") },
				func(b map[string]any) string {
					return acctMAC(secret, b["nonce"].(string), "moriarty", "pw", false, "bot")
				},
				func(b map[string]any) string {
					return acctMAC(secret, b["nonce"].(string), "Moriarty", "pw", false, "")
				},
				func(b map[string]any) string { return strings.ToUpper(b["mac"].(string)) },
				func(b map[string]any) string { return "" },
				func(b map[string]any) string { return "zz" },
			} {
				b := body("moriarty", "pw", false, "")
				good := b["mac"]
				b["mac"] = mac(b)
				convExpect(t, s.Do(t, "POST", acctAdminReg, b, ""), 403, "M_UNKNOWN", "HMAC incorrect")
				b["mac"] = good
				convExpect(t, s.Do(t, "POST", acctAdminReg, b, ""), 400, "M_UNKNOWN", "unrecognised nonce")
			}
			b := body("moriarty", "pw", false, "")
			b["mac"] = 5
			convExpect(t, s.Do(t, "POST", acctAdminReg, b, ""), 403, "M_UNKNOWN", "HMAC incorrect")
		})
		t.Run("nonces", func(t *testing.T) {
			b := body("adler", "pw-adler-1", false, "")
			acctExpectRegistered(t, s.Do(t, "POST", acctAdminReg, b, ""), "@adler:test.local")
			b["username"] = "adler2"
			b["mac"] = acctMAC(secret, b["nonce"].(string), "adler2", "pw-adler-1", false, "")
			convExpect(t, s.Do(t, "POST", acctAdminReg, b, ""), 400, "M_UNKNOWN", "unrecognised nonce")
			for _, n := range []any{"0123", strings.Repeat("a", 128), 5, nil, ""} {
				b["nonce"] = n
				convExpect(t, s.Do(t, "POST", acctAdminReg, b, ""), 400, "M_UNKNOWN", "unrecognised nonce")
			}
		})
		t.Run("missing fields", func(t *testing.T) {
			for _, field := range []string{"nonce", "username", "password", "mac"} {
				b := body("gregson", "pw-gregson-1", false, "")
				delete(b, field)
				convExpect(t, s.Do(t, "POST", acctAdminReg, b, ""), 400, "M_BAD_JSON", field+" must be specified")
			}
			convExpect(t, s.Do(t, "POST", acctAdminReg, map[string]any{}, ""), 400, "M_BAD_JSON", "nonce must be specified")
		})
		t.Run("invalid values", func(t *testing.T) {
			for _, c := range []struct {
				name         string
				edit         func(b map[string]any)
				errcode, msg string
			}{
				{"user type", func(b map[string]any) { b["user_type"] = "wizard" }, "M_UNKNOWN", "Invalid user type"},
				{"empty user type", func(b map[string]any) { b["user_type"] = "" }, "M_UNKNOWN", "Invalid user type"},
				{"username with NUL", func(b map[string]any) { b["username"] = "a\x00b" }, "M_UNKNOWN", "Invalid username"},
				{"long username", func(b map[string]any) { b["username"] = strings.Repeat("a", 513) }, "M_UNKNOWN", "Invalid username"},
				{"password with NUL", func(b map[string]any) { b["password"] = "a\x00b" }, "M_UNKNOWN", "Invalid password"},
				{"long password", func(b map[string]any) { b["password"] = strings.Repeat("p", 513) }, "M_UNKNOWN", "Invalid password"},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := body("gregson", "pw-gregson-1", false, "")
					c.edit(b)
					convExpect(t, s.Do(t, "POST", acctAdminReg, b, ""), 400, c.errcode, c.msg)
				})
			}
			b := body("gregson", "pw", false, "")
			b["refresh_token"] = "yes"
			convExpect(t, s.Do(t, "POST", acctAdminReg, b, ""), 400, "M_UNKNOWN", "refresh_token must be a boolean")
		})
		t.Run("username checks", func(t *testing.T) {
			acctExpectRegistered(t, s.Do(t, "POST", acctAdminReg, body("baker", "pw-baker-1", false, ""), ""), "@baker:test.local")
			for _, c := range []struct{ user, errcode, msg string }{
				{"baker", "M_USER_IN_USE", "User ID already taken."},
				{"BAKER", "M_USER_IN_USE", "User ID already taken."},
				{"bad name", "M_INVALID_USERNAME", "User ID can only contain characters a-z, 0-9, or '=_-./+'"},
				{"_hidden", "M_INVALID_USERNAME", "User ID may not begin with _"},
				{"", "M_INVALID_USERNAME", "User ID cannot be empty"},
				{"221", "M_INVALID_USERNAME", "Numeric user IDs are reserved for guest users."},
			} {
				t.Run(c.user, func(t *testing.T) {
					convExpect(t, s.Do(t, "POST", acctAdminReg, body(c.user, "pw", false, ""), ""), 400, c.errcode, c.msg)
				})
			}
		})
	})
}

// acctStartWithoutSecret starts a server whose configuration has no
// registration_shared_secret (testserver always sets one).
func acctStartWithoutSecret(t *testing.T, driver string) *testserver.Server {
	t.Helper()
	dir := t.TempDir()
	db := "database:\n  name: sqlite3\n  args: {database: homeserver.db}\n"
	if driver == "postgres" {
		db = fmt.Sprintf("database:\n  name: postgres\n  args: {dsn: %q}\n", storagetest.Fresh(t, "postgres").PostgresDSN)
	}
	text := "server_name: test.local\n" +
		"listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n    resources: [{names: [client]}]\n" +
		db + "signing_key_path: signing.key\nmedia_store_path: media\nbcrypt_rounds: 4\n"
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(text), path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RegistrationSharedSecret != "" {
		t.Fatal("the configuration has a shared secret")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testserver.Server{URL: "http://" + srv.Addrs()[0].String(), Srv: srv, Config: cfg, Client: &http.Client{Timeout: 60 * time.Second}}
}

func TestAcctSharedSecretNotConfigured(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"sqlite3", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			s := acctStartWithoutSecret(t, driver)
			// A nonce is still handed out, as Synapse does.
			n := convNonce(t, s)
			const msg = "Shared secret registration is not enabled"
			for _, b := range []any{
				map[string]any{"nonce": n, "username": "x", "password": "x", "mac": acctMAC("", n, "x", "x", false, "")},
				map[string]any{},
				"not even JSON",
			} {
				convExpect(t, s.Do(t, "POST", acctAdminReg, b, ""), 400, "M_UNKNOWN", msg)
			}
		})
	}
}
