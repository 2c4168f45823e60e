package e2e_test

import (
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

// TestHostileInputs: inputs that once gave 500 on PostgreSQL or diverged
// from Synapse get a clean 400 on both databases.
func TestHostileInputs(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: modRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		reg := func(body map[string]any) testserver.Response {
			body["auth"] = map[string]any{"type": "m.login.dummy"}
			return s.Do(t, "POST", "/_matrix/client/v3/register", body, "")
		}
		reg(map[string]any{"username": "nul1", "password": "pw", "device_id": "x\u0000"}).Expect(t, 400, "M_INVALID_PARAM")
		reg(map[string]any{"username": "nul2", "password": "pw", "initial_device_display_name": "\u0000"}).Expect(t, 400, "M_INVALID_PARAM")
		// The refused registrations left no account behind.
		reg(map[string]any{"username": "nul1", "password": "pw"}).Expect(t, 200, "")
		s.Do(t, "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.password",
			"identifier": map[string]any{"type": "m.id.user", "user": "nul1\u0000"}, "password": "pw"}, "").Expect(t, 400, "M_INVALID_PARAM")
		s.Do(t, "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.password",
			"identifier": map[string]any{"type": "m.id.user", "user": "nul1"}, "password": "pw", "device_id": "\u0000"}, "").Expect(t, 400, "M_INVALID_PARAM")
		s.Do(t, "POST", "/_matrix/client/v3/register", map[string]any{"username": "nul3", "password": "pw",
			"auth": map[string]any{"type": "m.login.dummy", "session": "\u0000"}}, "").Expect(t, 400, "M_INVALID_PARAM")
		// Non-ASCII letters are not folded onto ASCII names.
		reg(map[string]any{"username": "İSTANBUL", "password": "pw"}).Expect(t, 400, "M_INVALID_USERNAME")
		r := s.Do(t, "GET", "/_matrix/client/v3/register/available?username=%C3%BC", nil, "").Expect(t, 400, "M_UNKNOWN")
		if !strings.Contains(r.Str("error"), "ascii") {
			t.Errorf("error %q", r.Str("error"))
		}
		// Paths ServeMux would redirect are unknown, as JSON.
		s.Do(t, "GET", "/_matrix/client/v3//login", nil, "").Expect(t, 404, "M_UNRECOGNIZED")
	})
}
