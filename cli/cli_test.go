package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-im/sluice/cli"
	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/testserver"
	"github.com/sluice-im/sluice/module"
	_ "github.com/sluice-im/sluice/modules/example"
)

// clitest.Strict is a module whose ParseConfig decodes its config strictly,
// so that check-config reports its bad keys.
func init() {
	module.Register("clitest.Strict", module.Factory{
		ParseConfig: func(raw module.RawConfig) (any, error) {
			var c struct {
				Words []string `yaml:"words"`
				Limit int      `yaml:"limit"`
			}
			if err := raw.Decode(&c); err != nil {
				return nil, err
			}
			if c.Limit < 0 {
				return nil, &module.ConfigError{Path: []string{"limit"}, Msg: "must not be negative"}
			}
			if len(c.Words) > 0 && c.Words[0] == "panic" {
				panic("clitest.Strict cannot stand this word")
			}
			return c, nil
		},
		New: func(any, *module.API) (any, error) { return struct{}{}, nil },
	})
}

// run runs a command and returns its exit code, standard output and error.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUsage(t *testing.T) {
	code, out, errOut := run(t, "")
	if code != 2 || out != "" || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", code, out, errOut)
	}
	code, out, errOut = run(t, "", "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "Usage:") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	for _, h := range []string{"help", "-h", "--help"} {
		code, out, _ = run(t, "", h)
		if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "register-user") {
			t.Errorf("%s: exit %d, stdout %q", h, code, out)
		}
	}
}

// "sluice <command> -h" prints the command's flags and succeeds.
func TestCommandHelp(t *testing.T) {
	for _, cmd := range []string{"serve", "generate-config", "check-config", "register-user"} {
		code, out, errOut := run(t, "", cmd, "-h")
		if code != 0 || !strings.Contains(errOut, "Usage of "+cmd) || strings.Contains(errOut, "help requested") {
			t.Errorf("%s -h: exit %d, stdout %q, stderr %q; want 0 and the flags", cmd, code, out, errOut)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--bogus"},
		{"generate-config", "--port", "x"},
		{"check-config", "--bogus"},
		{"check-config"},
		{"register-user", "--bogus"},
		{"register-user", "-u", "a", "-p", "b", "--no-admin"},                      // neither -c nor -k
		{"register-user", "-c", "x.yaml", "-k", "s", "-u", "a", "-p", "b"},         // both
		{"register-user", "-k", "s", "-a", "--no-admin", "-u", "a", "-p", "b"},     // contradictory
		{"register-user", "-k", "s", "-p", "b", "--password-file", "f", "-u", "a"}, // two passwords
	} {
		code, _, errOut := run(t, "", args...)
		if code != 2 || !strings.Contains(errOut, "sluice "+args[0]+": ") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
}

func TestModules(t *testing.T) {
	code, out, _ := run(t, "", "modules")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	names := strings.Fields(out)
	want := module.Names()
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("modules printed %q, want %q", names, want)
	}
	for _, n := range []string{"example.DemoModule", "clitest.Strict"} {
		if !strings.Contains(out, n+"\n") {
			t.Errorf("modules output %q lacks %s", out, n)
		}
	}
}

func TestGenerateConfigStdout(t *testing.T) {
	code, out, errOut := run(t, "", "generate-config", "--server-name", "example.org", "--port", "8448", "--bind-address", "::")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	c, err := config.Parse([]byte(out), "")
	if err != nil {
		t.Fatalf("generated configuration does not parse: %v\n%s", err, out)
	}
	if c.ServerName != "example.org" || c.Listeners[0].Port != 8448 || c.Listeners[0].BindAddresses[0] != "::" || c.RegistrationSharedSecret == "" {
		t.Errorf("generated %+v", c)
	}
	code, out, _ = run(t, "", "generate-config", "-H", "short.example")
	if code != 0 || !strings.Contains(out, `server_name: "short.example"`) {
		t.Errorf("-H: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "", "generate-config")
	if c, err := config.Parse([]byte(out), ""); code != 0 || err != nil || c.ServerName != "localhost" ||
		c.Listeners[0].Port != 8008 || c.Listeners[0].BindAddresses[0] != "127.0.0.1" {
		t.Errorf("defaults: exit %d, %v, %+v", code, err, c)
	}
}

func TestGenerateConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	code, out, errOut := run(t, "", "generate-config", "-o", path, "--server-name", "example.org")
	if code != 0 || out != "wrote "+path+"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600: the file holds the shared secret", fi.Mode(), err)
	}
	if _, err := config.Load(path); err != nil {
		t.Errorf("written configuration does not load: %v", err)
	}
	code, out, errOut = run(t, "", "generate-config", "-o", path)
	if code != 1 || out != "" || !strings.Contains(errOut, "exists") {
		t.Errorf("overwrite: exit %d, stdout %q, stderr %q; want 1 and a refusal", code, out, errOut)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Error("generate-config -o overwrote an existing file")
	}
	// Missing directories are made (sluice-data/ on a first run).
	nested := filepath.Join(t.TempDir(), "new", "dir", "sluice.yaml")
	if code, _, errOut = run(t, "", "generate-config", "-o", nested); code != 0 {
		t.Errorf("new directory: exit %d, stderr %q", code, errOut)
	} else if _, err := config.Load(nested); err != nil {
		t.Errorf("written configuration does not load: %v", err)
	}
	// A path under a regular file cannot be written.
	code, _, errOut = run(t, "", "generate-config", "-o", filepath.Join(path, "dir.yaml"))
	if code != 1 || errOut == "" {
		t.Errorf("unwritable path: exit %d, stderr %q", code, errOut)
	}
}

const goodConfig = `server_name: example.org
listeners:
  - port: 8008
    type: http
    resources: [{names: [client, federation]}]
registration_shared_secret: s3cret
modules:
  - module: example.DemoModule
  - module: clitest.Strict
    config:
      words: [a, b]
      limit: 3
    timeout: 5s
    on_error: allow
`

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		text string
		code int
		want []string // substrings of stdout (code 0) or stderr
	}{
		{"good", goodConfig, 0, []string{": OK (server_name example.org, database sqlite3, 2 module(s): example.DemoModule, clitest.Strict)"}},
		{"no modules", "server_name: a.b\n", 0, []string{"OK (server_name a.b, database sqlite3, 0 module(s))"}},
		{"module without config", "server_name: a.b\nmodules:\n  - module: clitest.Strict\n    config: null\n", 0, []string{"1 module(s): clitest.Strict"}},
		{"postgres", "server_name: a.b\ndatabase: {name: psycopg2, args: {dbname: x}}\n", 0, []string{"database postgres"}},
		{"unknown key", strings.Replace(goodConfig, "    resources:", "    resouces:", 1), 1,
			[]string{"sluice check-config: ", "sluice.yaml:5: listeners[0].resouces: unknown key"}},
		{"bad value", strings.Replace(goodConfig, "port: 8008", "port: 70000", 1), 1,
			[]string{"sluice.yaml:3: listeners[0].port: must be between 0 and 65535, got 70000"}},
		{"bad timeout", strings.Replace(goodConfig, "timeout: 5s", "timeout: 5 parsecs", 1), 1,
			[]string{"sluice.yaml:13: modules[1].timeout: invalid duration"}},
		{"unknown module", strings.Replace(goodConfig, "module: example.DemoModule", "module: nope.Nope", 1), 1,
			[]string{`modules[0] (line 8): unknown module "nope.Nope"`, "this build has: ", "example.DemoModule"}},
		{"unknown key in a module's config", strings.Replace(goodConfig, "words:", "wrods:", 1), 1,
			[]string{`modules[1].config.wrods: failed to parse config for module "clitest.Strict": unknown key (line 11)`}},
		{"wrong type in a module's config", strings.Replace(goodConfig, "limit: 3", "limit: lots", 1), 1,
			[]string{`modules[1].config.limit: failed to parse config for module "clitest.Strict"`, "(line 12)"}},
		{"module's own validation", strings.Replace(goodConfig, "limit: 3", "limit: -3", 1), 1,
			[]string{`modules[1].config.limit: failed to parse config for module "clitest.Strict": must not be negative`}},
		{"module's config not a mapping", strings.Replace(goodConfig, "    config:\n      words: [a, b]\n      limit: 3\n", "    config: [a, b]\n", 1), 1,
			[]string{`modules[1].config (line 9): failed to parse config for module "clitest.Strict"`, "expected a mapping, got a list (line 10)"}},
		{"module's ParseConfig panics", strings.Replace(goodConfig, "words: [a, b]", "words: [panic]", 1), 1,
			[]string{`modules[1].config (line 9): failed to parse config for module "clitest.Strict": panic: clitest.Strict cannot stand this word`}},
		{"invalid YAML", "server_name: a.b\nlisteners:\n  - port: 1\n   type: http\n", 1, []string{"sluice.yaml:4: not valid YAML"}},
		{"empty", "", 1, []string{"sluice.yaml: the file is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"), "sluice.yaml"), tt.text)
			code, out, errOut := run(t, "", "check-config", "-c", path)
			got := out
			if tt.code != 0 {
				got = errOut
				if out != "" {
					t.Errorf("stdout %q on failure", out)
				}
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tt.code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output %q lacks %q", got, w)
				}
			}
			if tt.code == 0 && !strings.HasPrefix(out, path+": OK") {
				t.Errorf("stdout %q does not start with the path", out)
			}
		})
	}
	code, _, errOut := run(t, "", "check-config", "--config-path", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
}

// --- register-user ---------------------------------------------------------

func TestRegisterUser(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	ctx := context.Background()

	code, out, errOut := run(t, "", "register-user", "-k", testserver.SharedSecret, "-u", "alice", "-p", "pw", "--no-admin", srv.URL)
	if code != 0 || !strings.Contains(out, "Success!") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(out, "Make admin") || strings.Contains(out, "Password") {
		t.Errorf("prompted although every answer was given: %q", out)
	}
	// alice exists, with that password, and is not an admin.
	if tok := srv.Login(t, "alice", "pw"); tok == "" {
		t.Fatal("no access token for alice")
	}
	srv.Do(t, "POST", "/_matrix/client/v3/login", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "wrong",
	}, "").Expect(t, http.StatusForbidden, "M_FORBIDDEN")
	if info, err := srv.Srv.Accounts().GetUserInfo(ctx, "@alice:test.local"); err != nil || info.IsAdmin {
		t.Errorf("alice: %+v, %v; want a non-admin", info, err)
	}

	t.Run("exists-ok", func(t *testing.T) {
		code, out, errOut := run(t, "", "register-user", "-k", testserver.SharedSecret, "-u", "alice", "-p", "other", "--no-admin", "--exists-ok", srv.URL)
		if code != 0 || !strings.Contains(out, "User already exists. Skipping.") || strings.Contains(out, "Success!") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		srv.Login(t, "alice", "pw") // the password did not change
	})
	t.Run("exists", func(t *testing.T) {
		code, out, errOut := run(t, "", "register-user", "-k", testserver.SharedSecret, "-u", "alice", "-p", "other", "--no-admin", srv.URL)
		if code != 1 || strings.Contains(out, "Success!") || !strings.Contains(errOut, "M_USER_IN_USE") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 and M_USER_IN_USE", code, out, errOut)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		code, _, errOut := run(t, "", "register-user", "-k", "not-the-secret", "-u", "mallory", "-p", "pw", "--no-admin", "--exists-ok", srv.URL)
		if code != 1 || !strings.Contains(errOut, "403") {
			t.Errorf("exit %d, stderr %q; want 1 and a 403", code, errOut)
		}
		if _, err := srv.Srv.Accounts().GetUserInfo(ctx, "@mallory:test.local"); !errors.Is(err, module.ErrNotFound) {
			t.Errorf("mallory exists: %v", err)
		}
	})
	t.Run("admin", func(t *testing.T) {
		code, out, errOut := run(t, "", "register-user", "--shared-secret", testserver.SharedSecret, "--user", "dave", "--password", "pw", "-a", srv.URL+"/")
		if code != 0 || !strings.Contains(out, "Success!") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if info, err := srv.Srv.Accounts().GetUserInfo(ctx, "@dave:test.local"); err != nil || !info.IsAdmin {
			t.Errorf("dave: %+v, %v; want an admin", info, err)
		}
	})
	t.Run("user type", func(t *testing.T) {
		code, out, errOut := run(t, "", "register-user", "-k", testserver.SharedSecret, "-u", "robot", "-p", "pw", "--no-admin", "-t", "bot", srv.URL)
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if info, err := srv.Srv.Accounts().GetUserInfo(ctx, "@robot:test.local"); err != nil || info.UserType != "bot" {
			t.Errorf("robot: %+v, %v; want user type bot", info, err)
		}
	})
	t.Run("password file", func(t *testing.T) {
		pf := writeFile(t, filepath.Join(t.TempDir(), "pw"), "from-file\n")
		code, out, errOut := run(t, "", "register-user", "-k", testserver.SharedSecret, "-u", "erin", "--password-file", pf, "--no-admin", srv.URL)
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		srv.Login(t, "erin", "from-file")
	})
	t.Run("prompts", func(t *testing.T) {
		code, out, errOut := run(t, "bob\npw\npw\nno\n", "register-user", "-k", testserver.SharedSecret, srv.URL)
		if code != 0 || !strings.Contains(out, "Success!") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		for _, p := range []string{"New user localpart [", "Password: ", "Confirm password: ", "Make admin [no]: "} {
			if !strings.Contains(out, p) {
				t.Errorf("stdout %q lacks the prompt %q", out, p)
			}
		}
		srv.Login(t, "bob", "pw")
		if info, err := srv.Srv.Accounts().GetUserInfo(ctx, "@bob:test.local"); err != nil || info.IsAdmin {
			t.Errorf("bob: %+v, %v; want a non-admin", info, err)
		}
	})
	t.Run("prompts: admin, CRLF", func(t *testing.T) {
		code, out, errOut := run(t, "carl\r\npw\r\npw\r\nyes\r\n", "register-user", "-k", testserver.SharedSecret, srv.URL)
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		srv.Login(t, "carl", "pw")
		if info, err := srv.Srv.Accounts().GetUserInfo(ctx, "@carl:test.local"); err != nil || !info.IsAdmin {
			t.Errorf("carl: %+v, %v; want an admin", info, err)
		}
	})
	t.Run("prompts: passwords differ", func(t *testing.T) {
		code, _, errOut := run(t, "frank\npw\npx\n", "register-user", "-k", testserver.SharedSecret, srv.URL)
		if code != 1 || !strings.Contains(errOut, "Passwords do not match") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("prompts: blank password", func(t *testing.T) {
		code, _, errOut := run(t, "frank\n\n", "register-user", "-k", testserver.SharedSecret, srv.URL)
		if code != 1 || !strings.Contains(errOut, "Password cannot be blank") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("prompts: end of input", func(t *testing.T) {
		code, _, _ := run(t, "frank\n", "register-user", "-k", testserver.SharedSecret, srv.URL)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if _, err := srv.Srv.Accounts().GetUserInfo(ctx, "@frank:test.local"); !errors.Is(err, module.ErrNotFound) {
			t.Errorf("frank exists: %v", err)
		}
	})
	t.Run("no server", func(t *testing.T) {
		code, _, errOut := run(t, "", "register-user", "-k", "s", "-u", "a", "-p", "b", "--no-admin", "http://127.0.0.1:1")
		if code != 1 || errOut == "" {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	// Flags after the server URL count, as with Synapse's argparse.
	t.Run("flags after the server URL", func(t *testing.T) {
		code, out, errOut := run(t, "", "register-user", "-k", testserver.SharedSecret, srv.URL, "-u", "gina", "-p", "pw", "--no-admin")
		if code != 0 || !strings.Contains(out, "Success!") || strings.Contains(out, "localpart") || strings.Contains(out, "Password") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want no prompt", code, out, errOut)
		}
		srv.Login(t, "gina", "pw")
	})
	t.Run("flags on both sides of the server URL", func(t *testing.T) {
		code, out, errOut := run(t, "", "register-user", "-u", "hank", srv.URL, "-k", testserver.SharedSecret, "-p", "pw", "-a")
		if code != 0 || !strings.Contains(out, "Success!") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if info, err := srv.Srv.Accounts().GetUserInfo(ctx, "@hank:test.local"); err != nil || !info.IsAdmin {
			t.Errorf("hank: %+v, %v; want an admin (-a came after the URL)", info, err)
		}
	})
	t.Run("-- ends the flags", func(t *testing.T) {
		code, out, errOut := run(t, "", "register-user", "-k", testserver.SharedSecret, "-u", "ivy", "-p", "--", "--no-admin", "--", srv.URL)
		if code != 0 || !strings.Contains(out, "Success!") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		srv.Login(t, "ivy", "--") // "-p --" is a password
	})
	t.Run("two server URLs", func(t *testing.T) {
		code, out, errOut := run(t, "", "register-user", "-k", "s", srv.URL, "-u", "a", "-p", "b", "--no-admin", "http://127.0.0.1:1")
		if code != 2 || !strings.Contains(errOut, "one server URL at most") || strings.Contains(out, "Sending") {
			t.Errorf("exit %d, stdout %q, stderr %q; want a usage error", code, out, errOut)
		}
	})
	t.Run("a bad flag after the server URL", func(t *testing.T) {
		code, _, errOut := run(t, "", "register-user", "-k", "s", srv.URL, "--bogus")
		if code != 2 || !strings.Contains(errOut, "bogus") {
			t.Errorf("exit %d, stderr %q; want a usage error", code, errOut)
		}
	})
}

// register-user -c reads the secret and the client listener's port from a
// configuration file and talks to http://localhost:<port>, as Synapse's
// register_new_matrix_user does.
func TestRegisterUserWithConfig(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	listeners := "listeners:\n" +
		"  - port: 1\n    type: metrics\n" + // not a client listener: skipped
		"  - port: 2\n    type: http\n    tls: true\n    resources: [{names: [client]}]\n" + // TLS: skipped
		"  - port: " + port + "\n    type: http\n    resources: [{names: [federation]}, {names: [client]}]\n"

	t.Run("secret", func(t *testing.T) {
		cfg := writeFile(t, filepath.Join(dir, "a", "sluice.yaml"), "server_name: test.local\nregistration_shared_secret: "+testserver.SharedSecret+"\n"+listeners)
		code, out, errOut := run(t, "", "register-user", "-c", cfg, "-u", "carol", "-p", "pw", "--no-admin")
		if code != 0 || !strings.Contains(out, "Success!") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		srv.Login(t, "carol", "pw")
	})
	t.Run("secret path", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "b", "secret.txt"), testserver.SharedSecret+"\n")
		cfg := writeFile(t, filepath.Join(dir, "b", "sluice.yaml"), "server_name: test.local\nregistration_shared_secret_path: secret.txt\n"+listeners)
		code, out, errOut := run(t, "", "register-user", "--config", cfg, "-u", "cathy", "-p", "pw", "--no-admin")
		if code != 0 || !strings.Contains(out, "Success!") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		srv.Login(t, "cathy", "pw")
	})
	t.Run("URL argument wins", func(t *testing.T) {
		cfg := writeFile(t, filepath.Join(dir, "c", "sluice.yaml"), "server_name: test.local\nregistration_shared_secret: "+testserver.SharedSecret+
			"\nlisteners:\n  - port: 1\n    type: http\n    resources: [{names: [client]}]\n")
		code, out, errOut := run(t, "", "register-user", "-c", cfg, "-u", "cora", "-p", "pw", "--no-admin", srv.URL)
		if code != 0 || !strings.Contains(out, "Success!") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("flags after the URL argument", func(t *testing.T) {
		cfg := writeFile(t, filepath.Join(dir, "d", "sluice.yaml"), "server_name: test.local\nregistration_shared_secret: "+testserver.SharedSecret+"\n")
		code, out, errOut := run(t, "", "register-user", "-c", cfg, srv.URL, "-u", "cleo", "-p", "pw", "--no-admin")
		if code != 0 || !strings.Contains(out, "Success!") || strings.Contains(out, "localpart") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want no prompt", code, out, errOut)
		}
		srv.Login(t, "cleo", "pw")
	})
	for _, tt := range []struct{ name, text, want string }{
		{"no secret", "server_name: x\n", "No 'registration_shared_secret' or 'registration_shared_secret_path' defined in config."},
		{"both secrets", "registration_shared_secret: a\nregistration_shared_secret_path: b\n", "Conflicting options"},
		{"secret not a string", "registration_shared_secret: 12345\n", "registration_shared_secret is not a string."},
		{"secret file missing", "registration_shared_secret_path: nope.txt\n", "nope.txt"},
		{"secret file empty", "registration_shared_secret_path: empty.txt\n", "must not be empty"},
		{"not YAML", "registration_shared_secret: [\n", "sluice.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			writeFile(t, filepath.Join(d, "empty.txt"), " \n")
			cfg := writeFile(t, filepath.Join(d, "sluice.yaml"), tt.text)
			code, _, errOut := run(t, "", "register-user", "-c", cfg, "-u", "x", "-p", "y", "--no-admin", srv.URL)
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tt.want)
			}
		})
	}
	t.Run("config file missing", func(t *testing.T) {
		code, _, errOut := run(t, "", "register-user", "-c", filepath.Join(dir, "none.yaml"), "-u", "x", "-p", "y", "--no-admin")
		if code != 1 || !strings.Contains(errOut, "none.yaml") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

// --- serve -------------------------------------------------------------------

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort returns a loopback TCP port nobody listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var errStopped = errors.New("the server stopped before answering")

// waitReady polls url until it answers 200, the server behind it stops
// (done is closed: errStopped) or the attempts run out.
func waitReady(url string, done <-chan struct{}) error {
	c := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for attempt := 0; attempt < 400; attempt++ { // 20 s
		resp, err := c.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-done:
			return errStopped
		case <-tick.C:
		}
	}
	return fmt.Errorf("%s did not answer 200: %v", url, last)
}

// serveInBackground runs "serve" args in a goroutine until the returned stop
// function cancels it; stop returns the exit code.
func serveInBackground(t *testing.T, args ...string) (logs *syncBuffer, done <-chan struct{}, stop func() int) {
	t.Helper()
	prev := slog.Default() // serve installs its logger as the default
	t.Cleanup(func() { slog.SetDefault(prev) })
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{})
	var code int
	go func() {
		defer close(ch)
		code = cli.Run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), io.Discard, logs)
	}()
	stopped := false
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			select {
			case <-ch:
			case <-time.After(60 * time.Second):
				t.Fatalf("serve did not stop within 60s after its context was cancelled; logs:\n%s", logs)
			}
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return logs, ch, stop
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfg := writeFile(t, filepath.Join(dir, "conf", "sluice.yaml"), fmt.Sprintf(`server_name: test.local
listeners:
  - port: %d
    bind_addresses: ['127.0.0.1']
    type: http
    resources: [{names: [client, federation]}]
registration_shared_secret: serve-secret
bcrypt_rounds: 4
modules:
  - module: example.DemoModule
`, port))
	logs, done, stop := serveInBackground(t, "-c", cfg)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(base+"/_matrix/client/versions", done); err != nil {
		t.Fatalf("%v; logs:\n%s", err, logs)
	}

	// The module's web resource is mounted.
	resp, err := http.Get(base + "/_synapse/client/demo/hello?name=Ann")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"hello":"Ann"}` {
		t.Errorf("demo resource: %d %s", resp.StatusCode, body)
	}
	// And the shared secret works, through the URL the log suggests.
	code, out, errOut := run(t, "", "register-user", "-c", cfg, "-u", "zoe", "-p", "pw", "--no-admin")
	if code != 0 || !strings.Contains(out, "Success!") {
		t.Errorf("register-user -c: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d; logs:\n%s", code, logs)
	}
	text := logs.String()
	for _, w := range []string{"starting Sluice", "loaded module", "listening", "create a user with: sluice register-user -c " + cfg,
		"shutting down", "stopped cleanly"} {
		if !strings.Contains(text, w) {
			t.Errorf("logs lack %q:\n%s", w, text)
		}
	}
	// Relative paths were resolved against the configuration's directory.
	for _, f := range []string{"homeserver.db", "test.local.signing.key", "media_store"} {
		if _, err := os.Stat(filepath.Join(dir, "conf", f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestServeFailures(t *testing.T) {
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	for _, tt := range []struct{ name, text, want string }{
		{"bad config", "server_name: a.b\nlistenrs: []\n", "sluice.yaml:2: listenrs: unknown key"},
		{"unknown module", "server_name: a.b\nmodules:\n  - module: nope.Nope\n", `modules[0] (line 3): unknown module "nope.Nope"`},
		{"module config", "server_name: a.b\nmodules:\n  - module: clitest.Strict\n    config: {limit: -1}\n", "modules[0].config.limit"},
		{"port taken", fmt.Sprintf("server_name: a.b\nlisteners:\n  - {port: %d, type: http, bind_addresses: ['127.0.0.1']}\n",
			taken.Addr().(*net.TCPAddr).Port), "listen on 127.0.0.1 port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeFile(t, filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"), "sluice.yaml"), tt.text)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var errOut syncBuffer
			code := cli.Run(ctx, []string{"serve", "-c", cfg}, strings.NewReader(""), io.Discard, &errOut)
			if code != 1 || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant 1 and %q", code, errOut.String(), tt.want)
			}
		})
	}
	code, _, errOut := run(t, "", "serve", "-c", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing config: exit %d, stderr %q", code, errOut)
	}
}

// serve without -c creates ./sluice-data/ with a generated configuration and
// listens on 127.0.0.1:8008, so this test needs that port.
func TestServeFirstRun(t *testing.T) {
	if testing.Short() {
		t.Skip("binds 127.0.0.1:8008")
	}
	probe, err := net.Listen("tcp", "127.0.0.1:8008")
	if err != nil {
		t.Skipf("127.0.0.1:8008 is taken (%v): serve without -c cannot be tested here", err)
	}
	probe.Close()
	dir := t.TempDir()
	t.Chdir(dir)

	logs, done, stop := serveInBackground(t)
	waitFirstRun(t, done, logs)

	path := filepath.Join(cli.DefaultDataDir, "sluice.yaml")
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("generated configuration: %v", err)
	}
	if c.ServerName != "localhost" || c.RegistrationSharedSecret == "" || c.Listeners[0].Port != 8008 || c.Listeners[0].BindAddresses[0] != "127.0.0.1" {
		t.Errorf("generated configuration %+v", c)
	}
	if fi, err := os.Stat(cli.DefaultDataDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v; want a 0700 directory", cli.DefaultDataDir, fi.Mode(), err)
	}
	// The operator's next step, as the log says: register-user -c.
	code, out, errOut := run(t, "", "register-user", "-c", path, "-u", "admin", "-p", "pw", "-a")
	if code != 0 || !strings.Contains(out, "Success!") {
		t.Errorf("register-user -c %s: exit %d, stdout %q, stderr %q", path, code, out, errOut)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d; logs:\n%s", code, logs)
	}
	text := logs.String()
	for _, w := range []string{"first run: generated a configuration", "stopped cleanly"} {
		if !strings.Contains(text, w) {
			t.Errorf("logs lack %q:\n%s", w, text)
		}
	}
	for _, f := range []string{"sluice.yaml", "homeserver.db", "signing.key", "media"} {
		if _, err := os.Stat(filepath.Join(dir, cli.DefaultDataDir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	before, _ := os.ReadFile(path)

	// A second run keeps the configuration (and so the secret and the key).
	logs, done, stop = serveInBackground(t)
	waitFirstRun(t, done, logs)
	if code := stop(); code != 0 {
		t.Fatalf("second serve exited %d; logs:\n%s", code, logs)
	}
	if strings.Contains(logs.String(), "first run") {
		t.Errorf("second run generated a configuration again:\n%s", logs)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the second run changed sluice.yaml")
	}
}

// waitFirstRun waits for the server on 127.0.0.1:8008, and skips the test
// when someone else took the port after the probe. It waits for this
// server's "listening" log line first, so that another server answering on
// the port cannot pass for this one.
func waitFirstRun(t *testing.T, done <-chan struct{}, logs *syncBuffer) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for attempt := 0; !strings.Contains(logs.String(), "address=http://127.0.0.1:8008"); attempt++ {
		if attempt == 1000 { // 20 s
			t.Fatalf("serve did not log that it listens on 127.0.0.1:8008; logs:\n%s", logs)
		}
		select {
		case <-done:
			if strings.Contains(logs.String(), "address already in use") {
				t.Skipf("127.0.0.1:8008 was taken by another process meanwhile:\n%s", logs)
			}
			t.Fatalf("serve stopped; logs:\n%s", logs)
		case <-tick.C:
		}
	}
	if err := waitReady("http://127.0.0.1:8008/_matrix/client/versions", done); err != nil {
		t.Fatalf("%v; logs:\n%s", err, logs)
	}
}
