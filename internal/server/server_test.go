package server_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/server"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// Test modules: each instance's Close is recorded (servertest.Recorder) or
// hangs until the test ends (servertest.HangingClose); servertest.FailNew
// cannot start.
var (
	closedMu sync.Mutex
	closed   []string

	// hangRelease is made anew by each run of the test that uses it (the
	// test may run several times with -count).
	hangRelease chan struct{}
)

type recorder struct{ name string }

func (r recorder) Close(context.Context) error {
	closedMu.Lock()
	defer closedMu.Unlock()
	closed = append(closed, r.name)
	return nil
}

type hanging struct{ release chan struct{} }

// Close ignores its context, as a badly written module may.
func (h hanging) Close(context.Context) error {
	<-h.release
	return nil
}

func init() {
	module.Register("servertest.Recorder", module.Factory{New: func(c any, _ *module.API) (any, error) {
		name, _ := c.(map[string]any)["name"].(string)
		return recorder{name: name}, nil
	}})
	module.Register("servertest.HangingClose", module.Factory{New: func(any, *module.API) (any, error) {
		return hanging{release: hangRelease}, nil
	}})
	module.Register("servertest.FailNew", module.Factory{New: func(any, *module.API) (any, error) {
		return nil, errors.New("servertest: refusing to start")
	}})
}

// syncBuffer collects the server's concurrent logs.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// parse builds a configuration in a fresh directory from extra YAML.
func parse(t *testing.T, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	text := "server_name: test.local\nbcrypt_rounds: 4\nregistration_shared_secret: s\n" + extra
	cfg, err := config.Parse([]byte(text), filepath.Join(dir, "sluice.yaml"))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	return cfg
}

const oneListener = "listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n    resources: [{names: [client]}]\n"

// start runs a server until the test ends; logs go to the returned buffer.
func start(t *testing.T, cfg *config.Config) (*server.Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v\nlogs:\n%s", err, logs)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv, logs
}

func canListen(addr string) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// With port 0, every address of a listener gets the same port: the one the
// first address got.
func TestPortZeroIsOnePortPerListener(t *testing.T) {
	addrs := []string{"'127.0.0.1'"}
	if canListen("::1") {
		addrs = append(addrs, "'::1'")
	} else {
		t.Log("no IPv6 loopback here: testing without ::1")
	}
	if canListen("127.0.0.2") { // Linux routes all of 127/8 to lo
		addrs = append(addrs, "'127.0.0.2'")
	}
	if len(addrs) < 2 {
		t.Skip("only one loopback address can be bound here")
	}
	cfg := parse(t, "listeners:\n  - port: 0\n    bind_addresses: ["+strings.Join(addrs, ", ")+"]\n    type: http\n    resources: [{names: [client]}]\n")
	srv, _ := start(t, cfg)
	got := srv.Addrs()
	if len(got) != len(addrs) {
		t.Fatalf("listening on %v, want %d addresses", got, len(addrs))
	}
	port := got[0].(*net.TCPAddr).Port
	if port == 0 {
		t.Fatalf("first address %v has no port", got[0])
	}
	for _, a := range got {
		if p := a.(*net.TCPAddr).Port; p != port {
			t.Errorf("addresses %v do not share one port", got)
		}
		resp, err := http.Get("http://" + a.String() + "/_matrix/client/versions")
		if err != nil {
			t.Errorf("%v: %v", a, err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%v: status %d", a, resp.StatusCode)
		}
	}
}

// Synapse's default pair ["::", "0.0.0.0"] with port 0: one port, whether
// "::" also covers IPv4 (then 0.0.0.0 is skipped) or not.
func TestPortZeroDefaultBindAddresses(t *testing.T) {
	if !canListen("::") {
		t.Skip("no IPv6 here")
	}
	cfg := parse(t, "listeners:\n  - port: 0\n    type: http\n    resources: [{names: [client]}]\n")
	srv, _ := start(t, cfg)
	got := srv.Addrs()
	if len(got) == 0 {
		t.Fatal("no address")
	}
	for _, a := range got {
		if a.(*net.TCPAddr).Port != got[0].(*net.TCPAddr).Port {
			t.Errorf("addresses %v do not share one port", got)
		}
	}
}

func TestUIASessionLifetimeIsClientAPIs(t *testing.T) {
	if server.UIASessionLifetime != 48*time.Hour {
		t.Errorf("UIASessionLifetime = %v, want Synapse's 48h", server.UIASessionLifetime)
	}
	// The constant clientapi checks sessions against must say the same.
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join("..", "clientapi", "uia.go"), nil, 0)
	if err != nil {
		t.Skipf("cannot read clientapi's source: %v", err)
	}
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "uiaSessionLifetime" || len(vs.Values) != 1 {
			return true
		}
		found = true
		src, _ := os.ReadFile(fset.File(vs.Pos()).Name())
		expr := string(src[fset.Position(vs.Values[0].Pos()).Offset:fset.Position(vs.Values[0].End()).Offset])
		if expr != "48 * time.Hour" {
			t.Errorf("clientapi's uiaSessionLifetime is %s; update server.UIASessionLifetime to match", expr)
		}
		return false
	})
	if !found {
		t.Error("clientapi has no uiaSessionLifetime constant any more; update this test")
	}
}

func TestJanitorDeletesExpiredUIASessions(t *testing.T) {
	cfg := parse(t, oneListener)
	logs := &syncBuffer{}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := srv.Store()
	now := time.Now()
	create := func(id string, age time.Duration) {
		t.Helper()
		if err := st.CreateUIASession(ctx, storage.UIASession{ID: id, CreatedTS: now.Add(-age).UnixMilli(), Method: "POST",
			URI: "/_matrix/client/v3/register", Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(id string) bool {
		t.Helper()
		_, err := st.GetUIASession(ctx, id)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	// The janitor runs once as the server starts.
	create("old-at-start", 49*time.Hour)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); exists("old-at-start"); {
		if time.Now().After(deadline) {
			t.Fatalf("the janitor did not delete a 49h-old session at start; logs:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// And each tick deletes what has expired since, and only that.
	create("old", 48*time.Hour+time.Minute)
	create("fresh", time.Hour)
	create("almost", 47*time.Hour)
	if err := srv.DeleteExpiredUIASessions(ctx, now); err != nil {
		t.Fatal(err)
	}
	if exists("old") {
		t.Error("a session older than 48h survived the janitor")
	}
	for _, id := range []string{"fresh", "almost"} {
		if !exists(id) {
			t.Errorf("the janitor deleted the session %q, younger than 48h", id)
		}
	}
	if strings.Contains(logs.String(), "janitor") {
		t.Errorf("the janitor logged a problem:\n%s", logs)
	}
}

// Shutdown returns when its context ends even if a module's Close hangs.
func TestShutdownDoesNotWaitForAHungModule(t *testing.T) {
	hangRelease = make(chan struct{})
	release := hangRelease
	t.Cleanup(func() { close(release) })
	cfg := parse(t, oneListener+"modules:\n  - module: servertest.HangingClose\n")
	logs := &syncBuffer{}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waits for a hung module 10s after its context ended")
	}
	if !strings.Contains(logs.String(), "modules did not close in time") {
		t.Errorf("no warning about the modules; logs:\n%s", logs)
	}
}

// When a module fails to start, those loaded before it are closed.
func TestNewClosesLoadedModulesOnFailure(t *testing.T) {
	closedMu.Lock()
	closed = nil
	closedMu.Unlock()
	cfg := parse(t, oneListener+`modules:
  - module: servertest.Recorder
    config: {name: first}
  - module: servertest.Recorder
    config: {name: second}
  - module: servertest.FailNew
  - module: servertest.Recorder
    config: {name: never-loaded}
`)
	_, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("New: %v, want the module's failure", err)
	}
	closedMu.Lock()
	defer closedMu.Unlock()
	if strings.Join(closed, ",") != "second,first" {
		t.Errorf("closed %v, want [second first] (the loaded ones, in reverse order)", closed)
	}
}
