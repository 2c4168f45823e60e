package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/config"
	"gopkg.in/yaml.v3"
)

// confPath is where the test configurations pretend to live: Parse only
// uses it for messages and to resolve relative paths.
func confPath(t *testing.T) (dir, path string) {
	dir = filepath.Join(t.TempDir(), "etc")
	return dir, filepath.Join(dir, "sluice.yaml")
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		check func(t *testing.T, dir string, c *config.Config)
	}{
		{
			name: "minimal",
			text: "server_name: example.org\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				want := []config.Listener{{Port: 8008, BindAddresses: []string{"127.0.0.1"}, Type: "http",
					Resources: []config.Resource{{Names: []string{"client", "federation"}}}}}
				if !reflect.DeepEqual(c.Listeners, want) {
					t.Errorf("default listeners %+v, want %+v", c.Listeners, want)
				}
				eq(t, "database.name", c.Database.Name, "sqlite3")
				eq(t, "database.args.database", c.Database.Args.Database, filepath.Join(dir, "homeserver.db"))
				eq(t, "signing_key_path", c.SigningKeyPath, filepath.Join(dir, "example.org.signing.key"))
				eq(t, "media_store_path", c.MediaStorePath, filepath.Join(dir, "media_store"))
				eq(t, "bcrypt_rounds", c.BcryptRounds, 12)
				eq(t, "public_baseurl", c.PublicBaseURL, "")
				eq(t, "registration_shared_secret", c.RegistrationSharedSecret, "")
				eq(t, "enable_registration", c.EnableRegistration, false)
				eq(t, "enable_metrics", c.EnableMetrics, false)
				eq(t, "modules", len(c.Modules), 0)
			},
		},
		{
			name: "full",
			text: `server_name: "matrix.example.org:8448"
public_baseurl: https://matrix.example.org
listeners:
  - port: 8008
    type: http
    tls: false
    x_forwarded: true
    resources:
      - names: [client, federation]
        compress: true
      - names: [health, media, openid, static]
  - port: 9000
    bind_addresses: ["::1", 127.0.0.1]
    type: metrics
    resources: []
database:
  name: sqlite3
  args:
    database: /var/lib/sluice/homeserver.db
signing_key_path: keys/signing.key
media_store_path: /srv/media
registration_shared_secret: s3cret
enable_registration: true
enable_registration_without_verification: true
bcrypt_rounds: 4
enable_metrics: true
modules: []
`,
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "server_name", c.ServerName, "matrix.example.org:8448")
				eq(t, "public_baseurl", c.PublicBaseURL, "https://matrix.example.org/")
				want := []config.Listener{
					{Port: 8008, BindAddresses: []string{"::", "0.0.0.0"}, Type: "http", XForwarded: true, Resources: []config.Resource{
						{Names: []string{"client", "federation"}, Compress: true},
						{Names: []string{"health", "media", "openid", "static"}},
					}},
					{Port: 9000, BindAddresses: []string{"::1", "127.0.0.1"}, Type: "metrics", Resources: []config.Resource{}},
				}
				if !reflect.DeepEqual(c.Listeners, want) {
					t.Errorf("listeners\n%+v\nwant\n%+v", c.Listeners, want)
				}
				eq(t, "database.args.database", c.Database.Args.Database, "/var/lib/sluice/homeserver.db")
				eq(t, "signing_key_path", c.SigningKeyPath, filepath.Join(dir, "keys", "signing.key"))
				eq(t, "media_store_path", c.MediaStorePath, "/srv/media")
				eq(t, "registration_shared_secret", c.RegistrationSharedSecret, "s3cret")
				eq(t, "enable_registration", c.EnableRegistration, true)
				eq(t, "bcrypt_rounds", c.BcryptRounds, 4)
				eq(t, "enable_metrics", c.EnableMetrics, true)
				eq(t, "modules", len(c.Modules), 0)
			},
		},
		{
			// The example of DESIGN.md §1, with postgres and the module keys
			// Sluice adds to Synapse's (timeout, on_error).
			name: "design-like",
			text: `server_name: example.org
public_baseurl: https://matrix.example.org/
listeners:
  - port: 8008
    bind_addresses: ["127.0.0.1"]
    type: http
    resources: [{names: [client, federation, metrics]}]
database:
  name: psycopg2
  args:
    user: synapse_user
    password: secretpassword
    dbname: synapse
    host: localhost
    port: 5432
    sslmode: disable
    cp_min: 5
    cp_max: 10
signing_key_path: ./sluice-data/signing.key
media_store_path: ./sluice-data/media
registration_shared_secret: "..."
enable_registration: false
modules:
  - module: example.ListSpamChecker
    config: {evil_users: ["@spammer:example.org"]}
    timeout: 5s
    on_error: deny
  - module: antispam.http          # out of process, any language
    config:
      base_url: "http://127.0.0.1:8080/_meowlnir/antispam/x"
      authorization: "..."
    timeout: 250
    on_error: allow
  - module: example.DemoModule
`,
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "public_baseurl", c.PublicBaseURL, "https://matrix.example.org/")
				eq(t, "database.name", c.Database.Name, "postgres")
				want := config.DatabaseArgs{User: "synapse_user", Password: "secretpassword", DBName: "synapse",
					Host: "localhost", Port: 5432, SSLMode: "disable", CPMin: 5, CPMax: 10}
				if c.Database.Args != want {
					t.Errorf("database.args %+v, want %+v", c.Database.Args, want)
				}
				eq(t, "signing_key_path", c.SigningKeyPath, filepath.Join(dir, "sluice-data", "signing.key"))
				eq(t, "media_store_path", c.MediaStorePath, filepath.Join(dir, "sluice-data", "media"))
				if len(c.Modules) != 3 {
					t.Fatalf("%d modules, want 3", len(c.Modules))
				}
				for i, w := range []struct {
					name    string
					line    int
					cfgLine int // the line the config: value starts on
					timeout time.Duration
					onError string
					config  map[string]any
				}{
					{"example.ListSpamChecker", 24, 25, 5 * time.Second, "deny", map[string]any{"evil_users": []any{"@spammer:example.org"}}},
					{"antispam.http", 28, 30, 250 * time.Millisecond, "allow", map[string]any{
						"base_url": "http://127.0.0.1:8080/_meowlnir/antispam/x", "authorization": "..."}},
					{"example.DemoModule", 34, 0, 0, "", nil},
				} {
					m := c.Modules[i]
					eq(t, fmt.Sprintf("modules[%d].module", i), m.Module, w.name)
					eq(t, fmt.Sprintf("modules[%d] line", i), m.Line, w.line)
					eq(t, fmt.Sprintf("modules[%d].timeout", i), time.Duration(m.Timeout), w.timeout)
					eq(t, fmt.Sprintf("modules[%d].on_error", i), m.OnError, w.onError)
					if w.config == nil {
						if m.Config.Kind != 0 {
							t.Errorf("modules[%d].config is %v, want absent", i, m.Config.Kind)
						}
						continue
					}
					var got map[string]any
					if err := m.Config.Decode(&got); err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, w.config) {
						t.Errorf("modules[%d].config %v, want %v", i, got, w.config)
					}
					if m.Config.Line != w.cfgLine {
						t.Errorf("modules[%d].config is on line %d, want %d (the file's own lines)", i, m.Config.Line, w.cfgLine)
					}
				}
			},
		},
		{
			name: "postgres with a dsn",
			text: "server_name: example.org\ndatabase:\n  name: postgres\n  args: {dsn: 'postgres://u@h/db'}\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "database.name", c.Database.Name, "postgres")
				eq(t, "database.args.dsn", c.Database.Args.DSN, "postgres://u@h/db")
				eq(t, "database.args.database", c.Database.Args.Database, "") // not turned into a path
			},
		},
		{
			name: "sqlite with a relative path",
			text: "server_name: example.org\ndatabase: {name: sqlite3, args: {database: data/h.db}}\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "database.args.database", c.Database.Args.Database, filepath.Join(dir, "data", "h.db"))
			},
		},
		{
			name: "durations",
			text: "server_name: example.org\nmodules:\n" +
				"  - {module: a, timeout: 500ms}\n  - {module: b, timeout: 1.5s}\n  - {module: c, timeout: 2m}\n" +
				"  - {module: d, timeout: '1500'}\n  - {module: e, timeout: 0}\n  - {module: f, timeout: 1h}\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				want := []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 2 * time.Minute,
					1500 * time.Millisecond, 0, time.Hour}
				for i, w := range want {
					eq(t, fmt.Sprintf("modules[%d].timeout", i), time.Duration(c.Modules[i].Timeout), w)
					eq(t, fmt.Sprintf("modules[%d] line", i), c.Modules[i].Line, 3+i)
				}
			},
		},
		{
			name: "null sections",
			text: "server_name: example.org\nlisteners:\ndatabase:\nmodules:\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "listeners", len(c.Listeners), 1)
				eq(t, "database.name", c.Database.Name, "sqlite3")
			},
		},
		{
			name: "YAML 1.1 booleans, as Synapse's PyYAML reads them",
			text: "server_name: example.org\nenable_metrics: yes\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "enable_metrics", c.EnableMetrics, true)
			},
		},
		{
			name: "server name: IPv4 with a port",
			text: "server_name: 192.168.1.1:8448\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "server_name", c.ServerName, "192.168.1.1:8448")
				eq(t, "signing_key_path", c.SigningKeyPath, filepath.Join(dir, "192.168.1.1:8448.signing.key"))
			},
		},
		{name: "server name: bracketed IPv6", text: "server_name: '[2001:db8::1]'\n"},
		{name: "server name: bracketed IPv6 with a port", text: "server_name: '[::1]:8448'\n"},
		{name: "server name: localhost", text: "server_name: localhost\n"},
		{name: "public_baseurl http with a path", text: "server_name: a.b\npublic_baseurl: http://a.b:8008/matrix/\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "public_baseurl", c.PublicBaseURL, "http://a.b:8008/matrix/")
			}},
		{name: "bcrypt_rounds bounds", text: "server_name: a.b\nbcrypt_rounds: 31\n"},
		{name: "YAML 1.1 booleans: off", text: "server_name: a.b\nenable_metrics: off\nenable_registration: No\n"},
		{name: "a whole float is an integer", text: "server_name: a.b\nbcrypt_rounds: 10.0\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "bcrypt_rounds", c.BcryptRounds, 10)
			}},
		{name: "quoted strings that look like other types", text: "server_name: '5'\nregistration_shared_secret: \"true\"\nsigning_key_path: '1.5'\n",
			check: func(t *testing.T, dir string, c *config.Config) {
				eq(t, "server_name", c.ServerName, "5")
				eq(t, "registration_shared_secret", c.RegistrationSharedSecret, "true")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path := confPath(t)
			c, err := config.Parse([]byte(tt.text), path)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			eq(t, "Path", c.Path, path)
			if tt.check != nil {
				tt.check(t, dir, c)
			}
		})
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// base is a valid start that the invalid cases extend; it is 2 lines long.
const base = "server_name: example.org\nregistration_shared_secret: x\n"

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		text string
		key  string // the key path the error must name ("" for none)
		line int    // the line it must name (0 for none)
		msg  string // a substring of the message
	}{
		{"unknown top-level key", base + "enable_registraton: true\n", "enable_registraton", 3, "unknown key"},
		{"unknown top-level key from Synapse", base + "url_preview_enabled: true\n", "url_preview_enabled", 3, "unknown key"},
		{"path is not a key", base + "path: /x\n", "path", 3, "unknown key"},
		{"unknown nested key", base + "listeners:\n  - port: 8008\n    type: http\n    resouces: [{names: [client]}]\n",
			"listeners[0].resouces", 6, "unknown key"},
		{"unknown key in a resource", base + "listeners:\n  - port: 1\n    type: http\n    resources:\n      - names: [client]\n        compres: true\n",
			"listeners[0].resources[0].compres", 8, "unknown key"},
		{"unknown database arg", base + "database:\n  name: postgres\n  args:\n    hostname: db\n", "database.args.hostname", 6, "unknown key"},
		{"unknown module key", base + "modules:\n  - module: a\n  - module: b\n    timout: 5s\n", "modules[1].timout", 6, "unknown key"},
		{"line is not a module key", base + "modules:\n  - module: a\n    line: 5\n", "modules[0].line", 5, "unknown key"},

		{"wrong type: port", base + "listeners:\n  - port: \"abc\"\n    type: http\n", "listeners[0].port", 4, `expected an integer, got a string ("abc")`},
		{"wrong type: port in a flow mapping", base + "listeners: [{type: http, port: abc, x_forwarded: true}]\n", "listeners[0].port", 3, `got a string ("abc")`},
		{"wrong type: port is a list", base + "listeners:\n  - port: [1, 2]\n    type: http\n", "listeners[0].port", 4, "expected an integer, got a list"},
		{"wrong type: port is a fraction", base + "listeners:\n  - port: 8008.5\n    type: http\n", "listeners[0].port", 4, "expected an integer"},
		{"wrong type: listeners", base + "listeners: 8008\n", "listeners", 3, "expected a list, got an integer (8008)"},
		{"wrong type: listener", base + "listeners:\n  - 8008\n", "listeners[0]", 4, "expected a mapping"},
		{"wrong type: bind_addresses", base + "listeners:\n  - port: 1\n    type: http\n    bind_addresses: 127.0.0.1\n", "listeners[0].bind_addresses", 6, `expected a list, got a string ("127.0.0.1")`},
		{"wrong type: database", base + "database: sqlite3\n", "database", 3, "expected a mapping"},
		{"wrong type: bool", base + "enable_metrics: sometimes\n", "enable_metrics", 3, `expected true or false, got a string ("sometimes")`},
		{"wrong type: bcrypt_rounds", base + "bcrypt_rounds: 12.5\n", "bcrypt_rounds", 3, "expected an integer"},
		{"wrong type: server_name", "server_name: [a, b]\n", "server_name", 1, "expected a string, got a list"},
		{"wrong type: server_name is an integer", "server_name: 5\n", "server_name", 1, "expected a string, got an integer (5); quote it"},
		{"wrong type: server_name is a float", "server_name: 1.5\n", "server_name", 1, "expected a string, got a float (1.5); quote it"},
		{"wrong type: server_name is empty", "server_name:\n", "server_name", 1, "expected a string, got an empty value"},
		{"wrong type: secret is a boolean", "server_name: a.b\nregistration_shared_secret: true\n", "registration_shared_secret", 2, "expected a string, got a boolean (true); quote it"},
		{"wrong type: quoted bool", base + "enable_registration: \"yes\"\nenable_registration_without_verification: true\n", "enable_registration", 3, `expected true or false, got a string ("yes")`},
		{"wrong type: bool is an integer", base + "enable_metrics: 1\n", "enable_metrics", 3, "expected true or false, got an integer (1)"},
		{"wrong type: bool is y", base + "enable_metrics: y\n", "enable_metrics", 3, "expected true or false"},
		{"wrong type: port is empty", base + "listeners:\n  - port:\n    type: http\n", "listeners[0].port", 4, "expected an integer, got an empty value"},
		{"wrong type: port is quoted", base + "listeners:\n  - port: '8008'\n    type: http\n", "listeners[0].port", 4, `expected an integer, got a string ("8008")`},
		{"wrong type: modules is a mapping", base + "modules: {}\n", "modules", 3, "expected a list, got a mapping"},
		{"wrong type: resources is a mapping", base + "listeners:\n  - port: 1\n    type: http\n    resources:\n      names: [client]\n", "listeners[0].resources", 7, "expected a list, got a mapping"},
		{"wrong type: names is a string", base + "listeners:\n  - {port: 1, type: http, resources: [{names: client}]}\n", "listeners[0].resources[0].names", 4, "expected a list"},
		{"wrong type: database.args is a list", base + "database:\n  name: sqlite3\n  args: [x]\n", "database.args", 5, "expected a mapping, got a list"},
		{"wrong type: database port is a string", base + "database:\n  name: postgres\n  args: {port: db}\n", "database.args.port", 5, "expected an integer"},
		{"duplicate key", base + "server_name: other.org\n", "server_name", 3, "already defined at line 1"},
		{"not a mapping", "- server_name: a\n", "", 1, "expected a mapping"},

		{"port too big", base + "listeners:\n  - port: 70000\n    type: http\n", "listeners[0].port", 4, "between 0 and 65535, got 70000"},
		{"negative port", base + "listeners:\n  - type: http\n    port: 1\n  - type: http\n    port: -1\n", "listeners[1].port", 7, "between 0 and 65535"},
		{"unsupported room version", base + "default_room_version: \"9\"\n", "default_room_version", 3, "not supported"},
		{"port missing", base + "listeners:\n  - type: http\n", "listeners[0]", 4, "port is required"},
		{"sqlite with postgres args", base + "database:\n  name: sqlite3\n  args: {dsn: 'postgres://x'}\n", "database.args", 5, "sqlite3 takes only database"},
		{"type: ftp", base + "listeners:\n  - port: 21\n    type: ftp\n", "listeners[0].type", 5, `must be http or metrics, got "ftp"`},
		{"type missing", base + "listeners:\n  - port: 8008\n", "listeners[0]", 4, "type is required"},
		{"tls", base + "listeners:\n  - port: 8448\n    type: http\n    tls: true\n", "listeners[0].tls", 6, "reverse proxy"},
		{"bind address not an IP", base + "listeners:\n  - port: 1\n    type: http\n    bind_addresses:\n      - 127.0.0.1\n      - localhost\n",
			"listeners[0].bind_addresses[1]", 8, `"localhost" is not an IP address`},
		{"bind address in a flow list", base + "listeners:\n  - {port: 1, type: http, bind_addresses: ['::', '0.0.0.0:80']}\n",
			"listeners[0].bind_addresses[1]", 4, "not an IP address"},
		{"unknown resource", base + "listeners:\n  - port: 1\n    type: http\n    resources:\n      - names: [client]\n      - names:\n          - federation\n          - clien\n",
			"listeners[0].resources[1].names[1]", 10, `unknown resource "clien"`},
		{"database.name mysql", base + "database:\n  name: mysql\n", "database.name", 4, `must be sqlite3 or postgres (psycopg2 is accepted as an alias), got "mysql"`},
		{"negative pool size", base + "database:\n  name: postgres\n  args: {cp_max: -1}\n", "database.args", 5, "must not be negative"},
		{"on_error: maybe", base + "modules:\n  - module: a\n    on_error: maybe\n", "modules[0].on_error", 5, `must be allow or deny, got "maybe"`},
		{"timeout: 5 parsecs", base + "modules:\n  - module: a\n    timeout: \"5 parsecs\"\n", "modules[0].timeout", 5, `invalid duration "5 parsecs"`},
		{"timeout in a flow mapping", base + "modules:\n  - {module: a, timeout: 5 parsecs, on_error: allow}\n", "modules[0].timeout", 4, "invalid duration"},
		{"timeout negative", base + "modules:\n  - module: a\n    timeout: -5\n", "modules[0].timeout", 5, "negative"},
		{"timeout negative with a unit", base + "modules:\n  - module: a\n    timeout: -5s\n", "modules[0].timeout", 5, "invalid duration"},
		{"timeout infinite", base + "modules:\n  - module: a\n    timeout: Infs\n", "modules[0].timeout", 5, "too long"},
		{"timeout not a number", base + "modules:\n  - module: a\n    timeout: NaNs\n", "modules[0].timeout", 5, "invalid duration"},
		{"timeout overflows", base + "modules:\n  - module: a\n    timeout: 1e300s\n", "modules[0].timeout", 5, "too long"},
		{"timeout is a list", base + "modules:\n  - module: a\n    timeout: [5s]\n", "modules[0].timeout", 5, "expected a duration"},
		{"module name missing", base + "modules:\n  - module: a\n  - config: {x: 1}\n", "modules[1].module", 5, "is required"},
		{"module name blank", base + "modules:\n  - module: '  '\n", "modules[0].module", 4, "is required"},

		{"server_name missing", "registration_shared_secret: x\n", "server_name", 0, "is required"},
		{"server_name with a space", "server_name: exa mple.org\n", "server_name", 1, "invalid character ' '"},
		{"server_name with a path", "public_baseurl: https://a.b/\nserver_name: example.org/x\n", "server_name", 2, "invalid character '/'"},
		{"server_name port 0", "server_name: example.org:0\n", "server_name", 1, "invalid port"},
		{"server_name port too big", "server_name: example.org:99999\n", "server_name", 1, "invalid port"},
		{"server_name empty port", "server_name: 'example.org:'\n", "server_name", 1, "invalid port"},
		{"server_name empty host", "server_name: ':8448'\n", "server_name", 1, "empty host"},
		{"server_name bare IPv6", "server_name: '::1'\n", "server_name", 1, "invalid"},
		{"server_name unterminated IPv6", "server_name: '[::1'\n", "server_name", 1, "unterminated"},
		{"server_name bracketed IPv4", "server_name: '[1.2.3.4]'\n", "server_name", 1, "not a valid IPv6 literal"},
		{"server_name junk after IPv6", "server_name: '[::1]x'\n", "server_name", 1, "unexpected text"},
		{"server_name too long", "server_name: " + strings.Repeat("a", 256) + "\n", "server_name", 1, "longer than 255"},
		{"public_baseurl ftp", base + "public_baseurl: ftp://example.org/\n", "public_baseurl", 3, "must be an http:// or https:// URL"},
		{"public_baseurl without a scheme", base + "public_baseurl: matrix.example.org\n", "public_baseurl", 3, "http:// or https://"},
		{"public_baseurl without a host", base + "public_baseurl: 'https:///x'\n", "public_baseurl", 3, "http:// or https://"},
		{"open registration", base + "enable_registration: true\n", "enable_registration", 3, "enable_registration_without_verification"},
		{"both secrets", base + "registration_shared_secret_path: /x\n", "registration_shared_secret_path", 3, "cannot be set together"},
		{"secret file missing", "server_name: a.b\nregistration_shared_secret_path: missing.txt\n", "registration_shared_secret_path", 2, "cannot read the secret"},
		{"bcrypt_rounds too few", base + "bcrypt_rounds: 3\n", "bcrypt_rounds", 3, "between 4 and 31, got 3"},
		{"bcrypt_rounds too many", base + "bcrypt_rounds: 32\n", "bcrypt_rounds", 3, "between 4 and 31"},

		{"empty file", "", "", 0, "the file is empty"},
		{"only comments", "# nothing here\n\n", "", 0, "the file is empty"},
		{"invalid YAML: indentation", base + "listeners:\n  - port: 1\n   type: http\n", "", 5, "not valid YAML"},
		{"invalid YAML: unclosed flow", base + "modules: [\n", "", 3, "not valid YAML"},
		{"invalid YAML: unclosed quote", base + "modules: \"x\n", "", 3, "not valid YAML"},
		{"invalid YAML: multi-line string before the error", base + "registration_shared_secret_path: \"a\n  b\"\nx: [\n: y\n", "", 5, "not valid YAML"},
		{"invalid YAML: unknown alias", base + "listeners: *nope\n", "", 3, "unknown anchor"},
		{"invalid YAML: on the first line", "server_name: [a\nx: y\n", "", 1, "not valid YAML"},
		{"invalid YAML: tab", base + "listeners:\n\t- port: 1\n", "", 4, "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, path := confPath(t)
			c, err := config.Parse([]byte(tt.text), path)
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want an error naming %q at line %d\n%s", c, tt.key, tt.line, tt.text)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is a %T, want *config.Error", err, err)
			}
			if ce.Key != tt.key || ce.Line != tt.line || ce.File != path || !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("got file %q line %d key %q msg %q\nwant file %q line %d key %q msg containing %q",
					ce.File, ce.Line, ce.Key, ce.Msg, path, tt.line, tt.key, tt.msg)
			}
			// The text an operator reads: file:line: key: message.
			prefix := path
			if tt.line > 0 {
				prefix = fmt.Sprintf("%s:%d", path, tt.line)
			}
			if tt.key != "" {
				prefix += ": " + tt.key
			}
			if text := err.Error(); !strings.HasPrefix(text, prefix+": ") {
				t.Errorf("error text %q does not start with %q", text, prefix+": ")
			}
		})
	}
}

func TestRegistrationSharedSecretPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("  from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte("server_name: a.b\nregistration_shared_secret_path: secret.txt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "registration_shared_secret", c.RegistrationSharedSecret, "from-a-file")
	eq(t, "registration_shared_secret_path", c.RegistrationSharedSecretPath, "secret.txt")
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte("server_name: a.b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "Path", c.Path, path)
	eq(t, "database", c.Database.Args.Database, filepath.Join(dir, "homeserver.db"))

	missing := filepath.Join(dir, "nope.yaml")
	_, err = config.Load(missing)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load of a missing file: %v, want a not-exist error naming the file", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("server_name: a.b\nlisteners:\n  - port: 99999\n    type: http\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":3: listeners[0].port: ") {
		t.Errorf("Load of a bad file: %v", err)
	}
}

// Parse without a file name resolves relative paths against the working
// directory and reports "line N" instead of "file:N".
func TestParseWithoutPath(t *testing.T) {
	c, err := config.Parse([]byte("server_name: a.b\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "database", c.Database.Args.Database, filepath.Join(wd, "homeserver.db"))
	_, err = config.Parse([]byte("server_name: a.b\nport: 1\n"), "")
	if err == nil || err.Error() != "line 2: port: unknown key" {
		t.Errorf("got %v, want %q", err, "line 2: port: unknown key")
	}
}

func TestResolve(t *testing.T) {
	c := &config.Config{Path: "/etc/sluice/sluice.yaml"}
	for in, want := range map[string]string{
		"":              "",
		"/abs/x":        "/abs/x",
		"rel/x":         "/etc/sluice/rel/x",
		"./x":           "/etc/sluice/x",
		"../var/x":      "/etc/var/x",
		"signing.key":   "/etc/sluice/signing.key",
		"a/../b/../c.d": "/etc/sluice/c.d",
	} {
		if got := c.Resolve(in); got != filepath.FromSlash(want) {
			t.Errorf("Resolve(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "1500": 1500 * time.Millisecond, " 10 ": 10 * time.Millisecond,
		"500ms": 500 * time.Millisecond, "5s": 5 * time.Second, "1.5s": 1500 * time.Millisecond,
		"10m": 10 * time.Minute, "1h": time.Hour, "2d": 48 * time.Hour, "1w": 7 * 24 * time.Hour,
		"1y": 365 * 24 * time.Hour, "0.5ms": 500 * time.Microsecond,
	} {
		got, err := config.ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5 parsecs", "-1", "-5s", "s", "5x", "ms", "1.2.3s", "NaNs", "Infs", "+Infh",
		"1e300s", "9223372036854775807", "300000y"} {
		if got, err := config.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestDurationUnmarshalYAML(t *testing.T) {
	var v struct {
		D config.Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 2s\n"), &v); err != nil || time.Duration(v.D) != 2*time.Second {
		t.Errorf("got %v, %v", time.Duration(v.D), err)
	}
	if err := yaml.Unmarshal([]byte("d: 250\n"), &v); err != nil || time.Duration(v.D) != 250*time.Millisecond {
		t.Errorf("got %v, %v", time.Duration(v.D), err)
	}
	if err := yaml.Unmarshal([]byte("x: 1\nd: soon\n"), &v); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("got %v, want an error on line 2", err)
	}
}

func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		e    config.Error
		want string
	}{
		{config.Error{File: "f.yaml", Line: 3, Key: "a.b", Msg: "m"}, "f.yaml:3: a.b: m"},
		{config.Error{File: "f.yaml", Key: "a.b", Msg: "m"}, "f.yaml: a.b: m"},
		{config.Error{File: "f.yaml", Msg: "m"}, "f.yaml: m"},
		{config.Error{Line: 3, Key: "a", Msg: "m"}, "line 3: a: m"},
		{config.Error{Msg: "m"}, "m"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestServedResource(t *testing.T) {
	for name, want := range map[string]bool{
		"client": true, "federation": true, "keys": true, "metrics": true, "health": true,
		"media": true, "openid": false, "replication": false, "static": false, "consent": false, "clien": false,
	} {
		if got := config.ServedResource(name); got != want {
			t.Errorf("ServedResource(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	tests := []struct {
		name                   string
		opts                   config.GenerateOptions
		serverName, bind, port string
	}{
		{"defaults", config.GenerateOptions{}, "localhost", "127.0.0.1", "8008"},
		{"options", config.GenerateOptions{ServerName: "example.org", Port: 8448, BindAddress: "::"}, "example.org", "::", "8448"},
		{"server name with a port", config.GenerateOptions{ServerName: "example.org:8448", Port: 1, BindAddress: "0.0.0.0"}, "example.org:8448", "0.0.0.0", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path := confPath(t)
			text := config.Generate(tt.opts)
			c, err := config.Parse(text, path)
			if err != nil {
				t.Fatalf("generated configuration does not parse: %v\n%s", err, text)
			}
			eq(t, "server_name", c.ServerName, tt.serverName)
			if len(c.Listeners) != 1 {
				t.Fatalf("listeners %+v", c.Listeners)
			}
			l := c.Listeners[0]
			eq(t, "port", fmt.Sprint(l.Port), tt.port)
			eq(t, "type", l.Type, "http")
			if !reflect.DeepEqual(l.BindAddresses, []string{tt.bind}) {
				t.Errorf("bind_addresses %v, want [%s]", l.BindAddresses, tt.bind)
			}
			if !reflect.DeepEqual(l.Resources, []config.Resource{{Names: []string{"client", "federation"}}}) {
				t.Errorf("resources %+v", l.Resources)
			}
			eq(t, "database.name", c.Database.Name, "sqlite3")
			eq(t, "database", c.Database.Args.Database, filepath.Join(dir, "homeserver.db"))
			eq(t, "signing_key_path", c.SigningKeyPath, filepath.Join(dir, "signing.key"))
			eq(t, "media_store_path", c.MediaStorePath, filepath.Join(dir, "media"))
			eq(t, "enable_registration", c.EnableRegistration, false)
			eq(t, "bcrypt_rounds", c.BcryptRounds, 12)
			eq(t, "modules", len(c.Modules), 0)
			if len(c.RegistrationSharedSecret) < 40 {
				t.Errorf("registration_shared_secret %q is too short to be a random secret", c.RegistrationSharedSecret)
			}
		})
	}

	// Every generation has its own secret.
	secrets := map[string]bool{}
	for range 5 {
		c, err := config.Parse(config.Generate(config.GenerateOptions{}), "")
		if err != nil {
			t.Fatal(err)
		}
		secrets[c.RegistrationSharedSecret] = true
	}
	if len(secrets) != 5 {
		t.Errorf("5 generated configurations share secrets: %v", secrets)
	}
}

// The commented-out lines of the generated file are valid once uncommented:
// they are documentation an operator will follow.
func TestGenerateCommentedOptions(t *testing.T) {
	text := string(config.Generate(config.GenerateOptions{ServerName: "example.org"}))
	uncommented := strings.NewReplacer(
		"# public_baseurl:", "public_baseurl:",
		"enable_registration: false\n# enable_registration_without_verification: true",
		"enable_registration: true\nenable_registration_without_verification: true",
	).Replace(text)
	if uncommented == text {
		t.Fatal("the generated file no longer has the commented-out options this test expects")
	}
	c, err := config.Parse([]byte(uncommented), "")
	if err != nil {
		t.Fatalf("uncommented options do not parse: %v\n%s", err, uncommented)
	}
	eq(t, "public_baseurl", c.PublicBaseURL, "https://matrix.example.org/")
	eq(t, "enable_registration", c.EnableRegistration, true)
}

func TestMediaKeys(t *testing.T) {
	base := "server_name: example.org\nregistration_shared_secret: x\n"
	c, err := config.Parse([]byte(base), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxUploadSize != 50<<20 || c.MaxImagePixels != 32<<20 || c.DynamicThumbnails || !c.AuthenticatedMedia() ||
		len(c.ThumbnailSizes) != 5 || *c.MaxPendingMediaUploads != 5 || time.Duration(*c.UnusedExpirationTime) != 24*time.Hour ||
		c.RCMediaCreate.PerSecond != 10 || c.RCMediaCreate.BurstCount != 50 {
		t.Fatalf("defaults: %+v", c.Media)
	}
	c, err = config.Parse([]byte(base+"max_upload_size: 10K\nmax_image_pixels: 1000\nenable_authenticated_media: false\n"+
		"dynamic_thumbnails: true\nthumbnail_sizes: [{width: 10, height: 20, method: scale}]\nunused_expiration_time: 1h\nmax_pending_media_uploads: 2\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxUploadSize != 10<<10 || c.MaxImagePixels != 1000 || !c.DynamicThumbnails || c.AuthenticatedMedia() ||
		len(c.ThumbnailSizes) != 1 || c.ThumbnailSizes[0] != (config.ThumbnailSize{Width: 10, Height: 20, Method: "scale"}) ||
		*c.MaxPendingMediaUploads != 2 || time.Duration(*c.UnusedExpirationTime) != time.Hour {
		t.Fatalf("set: %+v", c.Media)
	}
	for _, tc := range []struct{ text, key string }{
		{"max_upload_size: 50Q\n", "max_upload_size"},
		{"max_upload_size: -1\n", "max_upload_size"},
		{"thumbnail_sizes: [{width: 0, height: 20, method: scale}]\n", "thumbnail_sizes[0]"},
		{"thumbnail_sizes: [{width: 10, height: 20, method: zoom}]\n", "thumbnail_sizes[0].method"},
		{"max_pending_media_uploads: -1\n", "max_pending_media_uploads"},
		{"rc_media_create: {per_second: -1, burst_count: 1}\n", "rc_media_create"},
	} {
		_, err := config.Parse([]byte(base+tc.text), "")
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.text, err, tc.key)
		}
	}
	for in, want := range map[string]int64{"50M": 50 << 20, "1G": 1 << 30, "12": 12, "3K": 3072, "1T": 1 << 40} {
		if got, err := config.ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
