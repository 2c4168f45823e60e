package e2e_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

const rlSlow = "{per_second: 0.001, burst_count: 2}"

func rlExpect429(t *testing.T, r testserver.Response) {
	t.Helper()
	r.Expect(t, 429, "M_LIMIT_EXCEEDED")
	if ms, _ := r.Body["retry_after_ms"].(float64); ms <= 0 {
		t.Errorf("retry_after_ms %v", r.Body["retry_after_ms"])
	}
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After header")
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	fast := "{per_second: 1000000, burst_count: 1000000}"
	t.Run("rc_login.address", func(t *testing.T) {
		s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn, RateLimits: "rc_login:\n  address: " + rlSlow + "\n  account: " + fast + "\n  failed_attempts: " + fast + "\nrc_registration: " + fast + "\n"})
		s.Register(t, "rla", "pw")
		s.Login(t, "rla", "pw")
		s.Login(t, "rla", "pw")
		rlExpect429(t, s.Do(t, "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.password",
			"identifier": map[string]any{"type": "m.id.user", "user": "rla"}, "password": "pw"}, ""))
	})
	t.Run("rc_login.failed_attempts", func(t *testing.T) {
		s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn, RateLimits: "rc_login:\n  address: " + fast + "\n  account: " + fast + "\n  failed_attempts: " + rlSlow + "\nrc_registration: " + fast + "\n"})
		s.Register(t, "rlb", "pw")
		bad := map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "rlb"}, "password": "wrong"}
		s.Do(t, "POST", "/_matrix/client/v3/login", bad, "").Expect(t, 403, "M_FORBIDDEN")
		s.Do(t, "POST", "/_matrix/client/v3/login", bad, "").Expect(t, 403, "M_FORBIDDEN")
		// Even the right password waits now: guessing is what is limited.
		rlExpect429(t, s.Do(t, "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.password",
			"identifier": map[string]any{"type": "m.id.user", "user": "rlb"}, "password": "pw"}, ""))
	})
	t.Run("rc_registration", func(t *testing.T) {
		s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn, RateLimits: "rc_registration: " + rlSlow + "\n"})
		s.Register(t, "rlc1", "pw")
		s.Register(t, "rlc2", "pw")
		rlExpect429(t, s.Do(t, "POST", "/_matrix/client/v3/register", map[string]any{"username": "rlc3", "password": "pw",
			"auth": map[string]any{"type": "m.login.dummy"}}, ""))
	})
	t.Run("rc_message, admins exempt", func(t *testing.T) {
		s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn, RateLimits: "rc_message: " + rlSlow + "\n"})
		_, tok := s.Register(t, "rld", "pw")
		room := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{}, tok).Expect(t, 200, "").Str("room_id")
		for i := range 2 {
			s.Do(t, "PUT", fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/t%d", room, i), map[string]any{"body": "x", "msgtype": "m.text"}, tok).Expect(t, 200, "")
		}
		rlExpect429(t, s.Do(t, "PUT", "/_matrix/client/v3/rooms/"+room+"/send/m.room.message/t9", map[string]any{"body": "x", "msgtype": "m.text"}, tok))
		// A server admin (made through shared-secret registration) is not limited.
		nonce := s.Do(t, "GET", "/_synapse/admin/v1/register", nil, "").Expect(t, 200, "").Str("nonce")
		m := hmac.New(sha1.New, []byte(testserver.SharedSecret))
		m.Write([]byte(nonce + "\x00rladmin\x00pw\x00admin"))
		adm := s.Do(t, "POST", "/_synapse/admin/v1/register", map[string]any{"nonce": nonce, "username": "rladmin", "password": "pw",
			"admin": true, "mac": hex.EncodeToString(m.Sum(nil))}, "").Expect(t, 200, "").Str("access_token")
		room2 := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{}, adm).Expect(t, 200, "").Str("room_id")
		for i := range 5 {
			s.Do(t, "PUT", fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/a%d", room2, i), map[string]any{"body": "x", "msgtype": "m.text"}, adm).Expect(t, 200, "")
		}
	})
}
