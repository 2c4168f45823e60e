// Package testserver starts a real Sluice on a random loopback port over a
// fresh SQLite file or a fresh PostgreSQL schema, for tests that talk HTTP
// to it.
package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/server"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

// SharedSecret is the registration shared secret of every test server.
const SharedSecret = "test-shared-secret"

// Options shape a test server.
type Options struct {
	// Driver is "sqlite3" (default) or "postgres".
	Driver string
	// YAML is extra configuration appended to the generated file (e.g. a
	// modules: block, enable_metrics: true, public_baseurl: ...).
	YAML string
	// Listeners replaces the default listener block (one http listener
	// with client and federation on 127.0.0.1, port 0).
	Listeners string
	// RateLimits replaces the rc_* block. By default the limits are so high
	// that tests never meet them; a test of rate limiting sets its own.
	RateLimits string
	// Logs receives the server's logs; nil discards them unless the
	// SLUICE_TEST_LOGS environment variable is set.
	Logs io.Writer
	// Queries, when not nil, counts the SQL statements the server runs
	// (server.WithQueryCounter); Restart keeps counting into it.
	Queries *storage.QueryCounter
}

// Server is a running test server.
type Server struct {
	URL    string // base URL of the first listener, e.g. http://127.0.0.1:41234
	URLs   []string
	Srv    *server.Server
	Config *config.Config
	Client *http.Client

	queries *storage.QueryCounter // Options.Queries, for Restart
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Driver == "" {
		o.Driver = "sqlite3"
	}
	dir := t.TempDir()
	var db string
	if o.Driver == "postgres" {
		so := storagetest.Fresh(t, "postgres")
		db = fmt.Sprintf("database:\n  name: postgres\n  args: {dsn: %q}\n", so.PostgresDSN)
	} else {
		db = "database:\n  name: sqlite3\n  args: {database: homeserver.db}\n"
	}
	listeners := o.Listeners
	if listeners == "" {
		listeners = "listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n    resources: [{names: [client, federation]}]\n"
	}
	text := "server_name: test.local\n" + listeners + db +
		"signing_key_path: signing.key\nmedia_store_path: media\n" +
		"registration_shared_secret: " + SharedSecret + "\n" +
		"bcrypt_rounds: 4\n" + rateLimits(o.RateLimits) + o.YAML
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("testserver: config: %v\n%s", err, text)
	}
	logs := o.Logs
	if logs == nil {
		logs = io.Discard
		if os.Getenv("SLUICE_TEST_LOGS") != "" {
			logs = os.Stderr
		}
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.New(ctx, cfg, log, server.WithQueryCounter(o.Queries))
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("testserver: shutdown: %v", err)
		}
	})
	s := &Server{Srv: srv, Config: cfg, Client: &http.Client{Timeout: 60 * time.Second}, queries: o.Queries}
	for _, a := range srv.Addrs() {
		s.URLs = append(s.URLs, "http://"+a.String())
	}
	s.URL = s.URLs[0]
	return s
}

// Response is an HTTP answer with its JSON body decoded.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// Do sends a request; body is JSON-encoded unless it is a string or []byte
// (sent as is). token, when not empty, is sent as a bearer token.
func (s *Server) Do(t testing.TB, method, path string, body any, token string) Response {
	t.Helper()
	hdr := http.Header{}
	if body != nil {
		hdr.Set("Content-Type", "application/json")
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	return s.DoHeaders(t, method, path, hdr, body)
}

// DoHeaders sends a request with exactly the given headers (nil: none);
// body is handled as by Do.
func (s *Server) DoHeaders(t testing.TB, method, path string, hdr http.Header, body any) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%s %s: response is not JSON: %v: %s", method, path, err, raw)
		}
	}
	return r
}

// Expect fails the test unless the response has the status and, when
// errcode is not empty, that errcode.
func (r Response) Expect(t testing.TB, status int, errcode string) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Raw)
	}
	if errcode != "" {
		if got, _ := r.Body["errcode"].(string); got != errcode {
			t.Fatalf("errcode %q, want %q; body %s", got, errcode, r.Raw)
		}
		if _, ok := r.Body["error"].(string); !ok {
			t.Fatalf("error body has no \"error\" string: %s", r.Raw)
		}
	}
	return r
}

// Str returns a string field of the body ("" if absent).
func (r Response) Str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// Register creates a user through the UIA dance (m.login.dummy) and
// returns the access token. Registration must be enabled.
func (s *Server) Register(t testing.TB, localpart, password string) (userID, token string) {
	t.Helper()
	first := s.Do(t, "POST", "/_matrix/client/v3/register", map[string]any{"username": localpart, "password": password}, "").Expect(t, 401, "")
	r := s.Do(t, "POST", "/_matrix/client/v3/register", map[string]any{
		"username": localpart, "password": password,
		"auth": map[string]any{"type": "m.login.dummy", "session": first.Str("session")},
	}, "").Expect(t, 200, "")
	return r.Str("user_id"), r.Str("access_token")
}

// Login logs a user in with a password and returns the access token.
func (s *Server) Login(t testing.TB, user, password string) string {
	t.Helper()
	r := s.Do(t, "POST", "/_matrix/client/v3/login", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user}, "password": password,
	}, "").Expect(t, 200, "")
	return r.Str("access_token")
}

// ForEachDB runs fn against a server on each database (subtests "sqlite"
// and "postgres"; the latter skips when no PostgreSQL is reachable).
func ForEachDB(t *testing.T, o Options, fn func(t *testing.T, s *Server)) {
	for _, d := range []struct{ name, driver string }{{"sqlite", "sqlite3"}, {"postgres", "postgres"}} {
		t.Run(d.name, func(t *testing.T) {
			oo := o
			oo.Driver = d.driver
			fn(t, Start(t, oo))
		})
	}
}

// noLimits raises Synapse's default rate limits out of a test's way.
const noLimits = `rc_message: {per_second: 1000000, burst_count: 1000000}
rc_registration: {per_second: 1000000, burst_count: 1000000}
rc_joins: {local: {per_second: 1000000, burst_count: 1000000}}
rc_login:
  address: {per_second: 1000000, burst_count: 1000000}
  account: {per_second: 1000000, burst_count: 1000000}
  failed_attempts: {per_second: 1000000, burst_count: 1000000}
`

func rateLimits(custom string) string {
	if custom != "" {
		return custom
	}
	return noLimits
}

// Restart shuts s down (in-flight requests finish first, as in
// Server.Shutdown) and starts a new server on the same configuration, and
// so on the same database and signing key; the new server listens on new
// ports and is stopped when the test ends. Logs are discarded unless the
// SLUICE_TEST_LOGS environment variable is set. s must not be used after.
func Restart(t testing.TB, s *Server) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Srv.Shutdown(ctx); err != nil {
		t.Fatalf("testserver: restart: shutdown: %v", err)
	}
	logs := io.Discard
	if os.Getenv("SLUICE_TEST_LOGS") != "" {
		logs = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(ctx, s.Config, log, server.WithQueryCounter(s.queries))
	if err != nil {
		t.Fatalf("testserver: restart: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("testserver: restart: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("testserver: shutdown: %v", err)
		}
	})
	n := &Server{Srv: srv, Config: s.Config, Client: &http.Client{Timeout: 60 * time.Second}, queries: s.queries}
	for _, a := range srv.Addrs() {
		n.URLs = append(n.URLs, "http://"+a.String())
	}
	n.URL = n.URLs[0]
	return n
}
