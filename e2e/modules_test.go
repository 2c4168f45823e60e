package e2e_test

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
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/server"
	"github.com/sluice-im/sluice/internal/testserver"
	_ "github.com/sluice-im/sluice/modules/standard"
)

const modRegistrationOn = "enable_registration: true\nenable_registration_without_verification: true\n"

// modEntry renders one modules: entry of test.Scripted.
func modEntry(id, extra string, callbacks map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - module: test.Scripted\n%s    config:\n      id: %q\n", extra, id)
	for k, v := range callbacks {
		fmt.Fprintf(&b, "      %s: %q\n", k, v)
	}
	return b.String()
}

// modServer starts a server (SQLite) with registration on and the given
// modules: entries.
func modServer(t *testing.T, entries ...string) *testserver.Server {
	t.Helper()
	return testserver.Start(t, testserver.Options{YAML: modRegistrationOn + "modules:\n" + strings.Join(entries, "")})
}

func modID(t *testing.T, n int) string { return fmt.Sprintf("%s#%d", t.Name(), n) }

// modRegister runs the UIA registration; returns the final response.
func modRegister(t *testing.T, s *testserver.Server, user string) testserver.Response {
	t.Helper()
	return s.Do(t, "POST", "/_matrix/client/v3/register", map[string]any{
		"username": user, "password": "pw-" + user, "auth": map[string]any{"type": "m.login.dummy"},
	}, "")
}

func modLogin(t *testing.T, s *testserver.Server, user string) testserver.Response {
	t.Helper()
	return s.Do(t, "POST", "/_matrix/client/v3/login", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user},
		"password": "pw-" + user, "device_id": "DEV1", "initial_device_display_name": "phone",
	}, "")
}

// modUserExists asks the account service directly.
func modUserExists(t *testing.T, s *testserver.Server, user string) bool {
	t.Helper()
	id, err := s.Srv.Accounts().CheckUserExists(context.Background(), "@"+user+":test.local")
	if err != nil {
		t.Fatal(err)
	}
	return id != ""
}

func TestCheckRegistrationForSpam(t *testing.T) {
	cases := []struct {
		name, behaviour, onError string
		status                   int
		errcode                  string
		created, shadowBanned    bool
	}{
		{"allow", "allow", "", 200, "", true, false},
		{"shadow ban", "shadow_ban", "", 200, "", true, true},
		{"deny", "deny", "", 429, "M_UNKNOWN", false, false},
		{"error", "error", "", 500, "M_UNKNOWN", false, false},
		{"panic", "panic", "", 500, "M_UNKNOWN", false, false},
		{"timeout", "hang", "", 500, "M_UNKNOWN", false, false},
		{"invalid value", "invalid", "", 500, "M_UNKNOWN", false, false},
		{"error with on_error allow", "error", "allow", 200, "", true, false},
		{"panic with on_error deny", "panic", "deny", 429, "M_UNKNOWN", false, false},
		{"timeout with on_error allow", "hang", "allow", 200, "", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			extra := "    timeout: 100ms\n"
			if tc.onError != "" {
				extra += "    on_error: " + tc.onError + "\n"
			}
			id := modID(t, 0)
			s := modServer(t, modEntry(id, extra, map[string]string{"check_registration_for_spam": tc.behaviour}))
			r := modRegister(t, s, "carol").Expect(t, tc.status, tc.errcode)
			if tc.status == 429 && r.Str("error") != "Rate limited" {
				t.Errorf("error %q, want Synapse's disguise \"Rate limited\"", r.Str("error"))
			}
			if tc.status == 500 && strings.Contains(string(r.Raw), "scripted") {
				t.Errorf("500 leaks internals: %s", r.Raw)
			}
			if got := modUserExists(t, s, "carol"); got != tc.created {
				t.Fatalf("user created = %v, want %v", got, tc.created)
			}
			if tc.created {
				info, err := s.Srv.Accounts().GetUserInfo(context.Background(), "@carol:test.local")
				if err != nil {
					t.Fatal(err)
				}
				if info.IsShadowBanned != tc.shadowBanned {
					t.Errorf("shadow banned = %v, want %v", info.IsShadowBanned, tc.shadowBanned)
				}
			}
			calls := modCallsOf(id)
			if len(calls) != 1 || calls[0].Args[0] != "carol" {
				t.Fatalf("calls = %+v, want one with username carol", calls)
			}
			if ri := fmt.Sprint(calls[0].Args[1]); !strings.Contains(ri, "127.0.0.1") || !strings.Contains(ri, "Go-http-client") {
				t.Errorf("request_info %s lacks the client's IP and user agent", ri)
			}
		})
	}
}

func TestCheckRegistrationForSpamChain(t *testing.T) {
	t.Parallel()
	t.Run("first non-allow wins and stops the chain", func(t *testing.T) {
		a, b, c := modID(t, 1), modID(t, 2), modID(t, 3)
		s := modServer(t,
			modEntry(a, "", map[string]string{"check_registration_for_spam": "allow"}),
			modEntry(b, "", map[string]string{"check_registration_for_spam": "shadow_ban"}),
			modEntry(c, "", map[string]string{"check_registration_for_spam": "deny"}))
		modRegister(t, s, "dave").Expect(t, 200, "")
		if n := len(modCallsOf(a)) + len(modCallsOf(b)); n != 2 {
			t.Errorf("first two modules called %d times, want 2", n)
		}
		if n := len(modCallsOf(c)); n != 0 {
			t.Errorf("module after the deciding one was called %d times", n)
		}
	})
	t.Run("shared-secret registration is checked too", func(t *testing.T) {
		id := modID(t, 1)
		s := modServer(t, modEntry(id, "", map[string]string{"check_registration_for_spam": "deny"}))
		nonce := s.Do(t, "GET", "/_synapse/admin/v1/register", nil, "").Expect(t, 200, "").Str("nonce")
		mac := modMAC(testserver.SharedSecret, nonce, "erin", "pw", false)
		s.Do(t, "POST", "/_synapse/admin/v1/register", map[string]any{
			"nonce": nonce, "username": "erin", "password": "pw", "admin": false, "mac": mac,
		}, "").Expect(t, 429, "M_UNKNOWN")
		if len(modCallsOf(id)) != 1 {
			t.Fatalf("check_registration_for_spam calls: %+v", modCallsOf(id))
		}
	})
}

func TestCheckLoginForSpam(t *testing.T) {
	cases := []struct {
		name, behaviour, onError string
		status                   int
		errcode, message         string
	}{
		{"allow", "allow", "", 200, "", ""},
		{"deny with a code", "deny:M_LIMIT_EXCEEDED", "", 403, "M_LIMIT_EXCEEDED", "Login was blocked by the server"},
		{"deny default code", "deny", "", 403, "M_FORBIDDEN", "Login was blocked by the server"},
		{"deny with extra fields", "denywith", "", 403, "M_LIMIT_EXCEEDED", "module says slow down"},
		{"deny with a message (invalid here, as in Synapse)", "denymsg", "", 403, "M_FORBIDDEN", "Login was blocked by the server"},
		{"error", "error", "", 500, "M_UNKNOWN", "Internal server error"},
		{"panic", "panic", "", 500, "M_UNKNOWN", "Internal server error"},
		{"timeout", "hang", "", 500, "M_UNKNOWN", "Internal server error"},
		{"error with on_error allow", "error", "allow", 200, "", ""},
		{"timeout with on_error deny", "hang", "deny", 403, "M_FORBIDDEN", "Login was blocked by the server"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			extra := "    timeout: 100ms\n"
			if tc.onError != "" {
				extra += "    on_error: " + tc.onError + "\n"
			}
			id := modID(t, 0)
			s := modServer(t, modEntry(id, extra, map[string]string{"check_login_for_spam": tc.behaviour}))
			modRegister(t, s, "frank").Expect(t, 200, "")
			r := modLogin(t, s, "frank").Expect(t, tc.status, tc.errcode)
			if tc.message != "" && r.Str("error") != tc.message {
				t.Errorf("error %q, want %q", r.Str("error"), tc.message)
			}
			if tc.behaviour == "denywith" {
				if v, _ := r.Body["retry_after_ms"].(float64); v != 1234 {
					t.Errorf("extra field retry_after_ms missing: %s", r.Raw)
				}
			}
			calls := modCallsOf(id)
			if len(calls) != 1 {
				t.Fatalf("calls %+v, want 1 (registration must not call check_login_for_spam)", calls)
			}
			if args := calls[0].Args; args[0] != "@frank:test.local" || args[1] != "DEV1" || args[2] != "phone" {
				t.Errorf("args %v", args)
			}
			// A refused login creates no device; an allowed one does.
			_, err := s.Srv.Store().GetDevice(context.Background(), "@frank:test.local", "DEV1")
			if created := err == nil; created != (tc.status == 200) {
				t.Errorf("device DEV1 created = %v (err %v) with status %d", created, err, tc.status)
			}
		})
	}
}

func TestIsUserExpired(t *testing.T) {
	cases := []struct {
		name, behaviour, onError string
		status                   int
		errcode                  string
	}{
		{"expired", "expired", "", 403, "ORG_MATRIX_EXPIRED_ACCOUNT"},
		{"not expired", "not_expired", "", 200, ""},
		{"unknown", "unknown", "", 200, ""},
		{"error", "error", "", 500, "M_UNKNOWN"},
		{"panic", "panic", "", 500, "M_UNKNOWN"},
		{"timeout", "hang", "", 500, "M_UNKNOWN"},
		{"invalid value", "invalid", "", 500, "M_UNKNOWN"},
		{"error with on_error allow", "error", "allow", 200, ""},
		{"panic with on_error deny", "panic", "deny", 403, "ORG_MATRIX_EXPIRED_ACCOUNT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			extra := "    timeout: 100ms\n"
			if tc.onError != "" {
				extra += "    on_error: " + tc.onError + "\n"
			}
			id := modID(t, 0)
			s := modServer(t, modEntry(id, extra, map[string]string{"is_user_expired": tc.behaviour, "web_resource": "/_synapse/client/scripted"}))
			tok := modRegister(t, s, "gina").Expect(t, 200, "").Str("access_token")
			r := s.Do(t, "GET", "/_matrix/client/v3/account/whoami", nil, tok).Expect(t, tc.status, tc.errcode)
			if tc.errcode == "ORG_MATRIX_EXPIRED_ACCOUNT" && r.Str("error") != "User account has expired" {
				t.Errorf("error %q", r.Str("error"))
			}
			// A module's web resource authenticating through the API sees the same.
			s.Do(t, "GET", "/_synapse/client/scripted?auth=1", nil, tok).Expect(t, tc.status, tc.errcode)
			if calls := modCallsOf(id); len(calls) != 2 || calls[0].Args[0] != "@gina:test.local" {
				t.Fatalf("calls %+v", calls)
			}
			// Logout is exempt, and the token stays valid until then.
			s.Do(t, "POST", "/_matrix/client/v3/logout", map[string]any{}, tok).Expect(t, 200, "")
			if n := len(modCallsOf(id)); n != 2 {
				t.Errorf("logout asked is_user_expired (%d calls)", n)
			}
		})
	}
	t.Run("chain: first known answer wins", func(t *testing.T) {
		t.Parallel()
		a, b, c := modID(t, 1), modID(t, 2), modID(t, 3)
		s := modServer(t,
			modEntry(a, "", map[string]string{"is_user_expired": "unknown"}),
			modEntry(b, "", map[string]string{"is_user_expired": "expired"}),
			modEntry(c, "", map[string]string{"is_user_expired": "not_expired"}))
		tok := modRegister(t, s, "hank").Expect(t, 200, "").Str("access_token")
		s.Do(t, "GET", "/_matrix/client/v3/account/whoami", nil, tok).Expect(t, 403, "ORG_MATRIX_EXPIRED_ACCOUNT")
		if len(modCallsOf(a)) != 1 || len(modCallsOf(b)) != 1 || len(modCallsOf(c)) != 0 {
			t.Fatalf("calls a=%d b=%d c=%d, want 1 1 0", len(modCallsOf(a)), len(modCallsOf(b)), len(modCallsOf(c)))
		}
	})
}

func TestOnUserRegistrationAndLogin(t *testing.T) {
	cases := []struct {
		name, behaviour, onError string
		status                   int
	}{
		{"ok", "ok", "", 200},
		{"error", "error", "", 500},
		{"panic", "panic", "", 500},
		{"timeout", "hang", "", 500},
		{"error with on_error allow", "error", "allow", 200},
		{"panic with on_error deny", "panic", "deny", 500},
	}
	for _, tc := range cases {
		t.Run("registration/"+tc.name, func(t *testing.T) {
			t.Parallel()
			extra := "    timeout: 100ms\n"
			if tc.onError != "" {
				extra += "    on_error: " + tc.onError + "\n"
			}
			id := modID(t, 0)
			s := modServer(t, modEntry(id, extra, map[string]string{"on_user_registration": tc.behaviour}))
			modRegister(t, s, "ivan").Expect(t, tc.status, map[bool]string{true: "M_UNKNOWN", false: ""}[tc.status == 500])
			// As in Synapse, the account exists even when the callback failed.
			if !modUserExists(t, s, "ivan") {
				t.Fatal("user not created")
			}
			calls := modCallsOf(id)
			if len(calls) != 1 || calls[0].Args[0] != "@ivan:test.local" {
				t.Fatalf("calls %+v", calls)
			}
		})
		t.Run("login/"+tc.name, func(t *testing.T) {
			t.Parallel()
			extra := "    timeout: 100ms\n"
			if tc.onError != "" {
				extra += "    on_error: " + tc.onError + "\n"
			}
			id := modID(t, 0)
			s := modServer(t, modEntry(id, extra, map[string]string{"on_user_login": tc.behaviour}))
			modRegister(t, s, "jill").Expect(t, 200, "")
			if n := len(modCallsOf(id)); n != 0 {
				t.Fatalf("registration called on_user_login %d times", n)
			}
			modLogin(t, s, "jill").Expect(t, tc.status, map[bool]string{true: "M_UNKNOWN", false: ""}[tc.status == 500])
			calls := modCallsOf(id)
			if len(calls) != 1 || fmt.Sprint(calls[0].Args) != "[@jill:test.local m.login.password ]" {
				t.Fatalf("calls %+v", calls)
			}
		})
	}
	t.Run("notifications run every module", func(t *testing.T) {
		t.Parallel()
		a, b := modID(t, 1), modID(t, 2)
		s := modServer(t,
			modEntry(a, "", map[string]string{"on_user_registration": "ok"}),
			modEntry(b, "", map[string]string{"on_user_registration": "ok"}))
		modRegister(t, s, "kim").Expect(t, 200, "")
		if len(modCallsOf(a)) != 1 || len(modCallsOf(b)) != 1 {
			t.Fatalf("calls a=%d b=%d", len(modCallsOf(a)), len(modCallsOf(b)))
		}
	})
}

func TestWebResources(t *testing.T) {
	t.Parallel()
	a, b := modID(t, 1), modID(t, 2)
	s := testserver.Start(t, testserver.Options{YAML: "modules:\n" +
		"  - module: example.DemoModule\n" +
		modEntry(a, "", map[string]string{"web_resource": "/_synapse/client/shared"}) +
		modEntry(b, "", map[string]string{"web_resource": "/_synapse/client/shared"}) +
		"  - module: test.LateRegistrar\n"})
	t.Run("demo module", func(t *testing.T) {
		r := s.Do(t, "GET", "/_synapse/client/demo/hello?name=X", nil, "").Expect(t, 200, "")
		if string(r.Raw) != "{\"hello\":\"X\"}\n" && r.Str("hello") != "X" {
			t.Fatalf("body %s", r.Raw)
		}
	})
	t.Run("first registration wins", func(t *testing.T) {
		if got := s.Do(t, "GET", "/_synapse/client/shared", nil, "").Expect(t, 200, "").Str("module"); got != a {
			t.Fatalf("served by %q, want the first module %q", got, a)
		}
		// The subtree is the module's too.
		if got := s.Do(t, "GET", "/_synapse/client/shared/sub/path", nil, "").Expect(t, 200, "").Str("module"); got != a {
			t.Fatalf("subtree served by %q", got)
		}
	})
	t.Run("a panicking resource is a clean 500 and the server goes on", func(t *testing.T) {
		r := s.Do(t, "GET", "/_synapse/client/shared?panic=1", nil, "").Expect(t, 500, "M_UNKNOWN")
		if strings.Contains(string(r.Raw), "secret-internal-detail") {
			t.Fatalf("500 leaks the panic: %s", r.Raw)
		}
		s.Do(t, "GET", "/_matrix/client/versions", nil, "").Expect(t, 200, "")
	})
	t.Run("registering after start-up fails", func(t *testing.T) {
		r := s.Do(t, "GET", "/_synapse/client/late", nil, "").Expect(t, 200, "")
		for _, k := range []string{"callbacks_error", "resource_error"} {
			if !strings.Contains(r.Str(k), "start-up") {
				t.Errorf("%s = %q, want an error about start-up", k, r.Str(k))
			}
		}
		s.Do(t, "GET", "/_synapse/client/later", nil, "").Expect(t, 404, "M_UNRECOGNIZED")
	})
	t.Run("auth through the module API", func(t *testing.T) {
		s.Do(t, "GET", "/_synapse/client/shared?auth=1", nil, "").Expect(t, 401, "M_MISSING_TOKEN")
		s.Do(t, "GET", "/_synapse/client/shared?auth=1", nil, "nope").Expect(t, 401, "M_UNKNOWN_TOKEN")
	})
}

// modStartErr builds a server from a config and returns the start-up error.
func modStartErr(t *testing.T, yaml string) error {
	t.Helper()
	dir := t.TempDir()
	text := "server_name: test.local\nlisteners: [{port: 0, bind_addresses: ['127.0.0.1'], type: http, resources: [{names: [client]}]}]\n" +
		"bcrypt_rounds: 4\nmodules:\n" + yaml
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		srv.Shutdown(context.Background())
	}
	return err
}

func TestModuleStartupErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown module", "  - module: no.Such\n", []string{"modules[0]", "no.Such", "unknown module"}},
		{"bad module config key", "  - module: example.DemoModule\n  - module: test.Scripted\n    config: {id: x, nonsense: 1}\n",
			[]string{"modules[1]", "test.Scripted", "nonsense", "line 7"}},
		{"module config error", "  - module: test.Scripted\n    config: {}\n", []string{"modules[0].config.id", "test.Scripted", "is required"}},
		{"New fails", "  - module: test.Scripted\n    config: {id: y, fail_new: true}\n", []string{"modules[0]", "test.Scripted", "refusing to start"}},
		{"New panics", "  - module: test.PanicNew\n", []string{"modules[0]", "test.PanicNew", "boom in New"}},
		{"reserved path", "  - module: test.Reserved\n", []string{"modules[0]", "test.Reserved", "/_matrix/client"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := modStartErr(t, tc.yaml)
			if err == nil {
				t.Fatal("server started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestModuleMetrics(t *testing.T) {
	t.Parallel()
	id := modID(t, 0)
	s := testserver.Start(t, testserver.Options{
		YAML: modRegistrationOn + "enable_metrics: true\nmodules:\n" +
			modEntry(id, "    timeout: 100ms\n    on_error: allow\n", map[string]string{"check_login_for_spam": "panic", "is_user_expired": "hang", "check_registration_for_spam": "allow"}),
		Listeners: "listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n    resources: [{names: [client, metrics]}]\n",
	})
	tok := modRegister(t, s, "lena").Expect(t, 200, "").Str("access_token")
	modLogin(t, s, "lena").Expect(t, 200, "")
	s.Do(t, "GET", "/_matrix/client/v3/account/whoami", nil, tok).Expect(t, 200, "")
	r := s.Do(t, "GET", "/_synapse/metrics", nil, "")
	if r.Status != http.StatusOK {
		t.Fatalf("metrics status %d", r.Status)
	}
	body := string(r.Raw)
	for _, want := range []string{
		`sluice_module_callback_calls_total{callback="check_registration_for_spam",module="test.Scripted"} 1`,
		`sluice_module_callback_decisions_total{callback="check_registration_for_spam",decision="allow",module="test.Scripted"} 1`,
		`sluice_module_callback_errors_total{callback="check_login_for_spam",kind="panic",module="test.Scripted"} 1`,
		`sluice_module_callback_errors_total{callback="is_user_expired",kind="timeout",module="test.Scripted"} 1`,
		`sluice_module_callback_timeouts_total{callback="is_user_expired",module="test.Scripted"} 1`,
		`sluice_module_callback_duration_seconds_count{callback="check_login_for_spam",module="test.Scripted"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestMetricsNeedEnableMetrics(t *testing.T) {
	t.Parallel()
	s := testserver.Start(t, testserver.Options{
		Listeners: "listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n    resources: [{names: [client, metrics]}]\n",
	})
	s.Do(t, "GET", "/_synapse/metrics", nil, "").Expect(t, 404, "M_UNRECOGNIZED")
}

// modMAC computes Synapse's shared-secret registration MAC independently
// of the server's code.
func modMAC(secret, nonce, user, password string, admin bool) string {
	m := hmac.New(sha1.New, []byte(secret))
	adm := "notadmin"
	if admin {
		adm = "admin"
	}
	m.Write([]byte(nonce + "\x00" + user + "\x00" + password + "\x00" + adm))
	return hex.EncodeToString(m.Sum(nil))
}

func TestModuleAPIHelpers(t *testing.T) {
	t.Parallel()
	id := modID(t, 0)
	logs := &lockedBuffer{}
	s := testserver.Start(t, testserver.Options{Logs: logs, YAML: "modules:\n" +
		modEntry(id, "", map[string]string{"web_resource": "/_synapse/client/api", "on_user_registration": "ok", "check_registration_for_spam": "allow"})})
	get := func(q string) testserver.Response {
		return s.Do(t, "GET", "/_synapse/client/api?"+q, nil, "")
	}
	names := get("api=names").Expect(t, 200, "").Body["result"].(map[string]any)
	want := map[string]any{"server_name": "test.local", "public_baseurl": "https://test.local/", "qualified": "@zed:test.local",
		"is_mine": true, "is_mine_remote": false, "module_name": "test.Scripted"}
	for k, v := range want {
		if names[k] != v {
			t.Errorf("%s = %v, want %v", k, names[k], v)
		}
	}
	if !strings.Contains(logs.String(), "module=test.Scripted") || !strings.Contains(logs.String(), "names asked") {
		t.Error("the module's logger does not carry its name")
	}

	// RegisterUser goes through the registration callbacks, like every path.
	get("api=register&user=Owen&admin=1").Expect(t, 200, "")
	if n := len(modCallsOf(id)); n != 2 {
		t.Errorf("RegisterUser ran %d callbacks, want check_registration_for_spam and on_user_registration", n)
	}
	get("api=register&user=owen").Expect(t, 400, "M_USER_IN_USE")
	get("api=register&user=").Expect(t, 400, "M_INVALID_USERNAME")
	s.Login(t, "owen", "pw-Owen")

	if got := get("api=admin&user=@owen:test.local").Expect(t, 200, "").Body["result"]; got != true {
		t.Errorf("IsUserAdmin = %v", got)
	}
	if got := get("api=admin&user=@nobody:test.local").Expect(t, 200, "").Body["result"]; got != false {
		t.Errorf("IsUserAdmin(unknown) = %v", got)
	}
	if got := get("api=exists&user=@OWEN:test.local").Expect(t, 200, "").Body["result"]; got != "@owen:test.local" {
		t.Errorf("CheckUserExists is case-insensitive and canonical: got %v", got)
	}
	if got := get("api=exists&user=@nobody:test.local").Expect(t, 200, "").Body["result"]; got != "" {
		t.Errorf("CheckUserExists(unknown) = %v", got)
	}
	info := get("api=info&user=@owen:test.local").Expect(t, 200, "").Body["result"].(map[string]any)
	if info["UserID"] != "@owen:test.local" || info["IsAdmin"] != true || info["CreationTS"].(float64) <= 0 {
		t.Errorf("GetUserInfo = %v", info)
	}
	get("api=info&user=@nobody:test.local").Expect(t, 404, "M_NOT_FOUND")
}
