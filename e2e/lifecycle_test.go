package e2e_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/testserver"
)

// lockedBuffer collects logs written from server goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	id := modID(t, 0)
	s := modServer(t, modEntry(id, "", map[string]string{"web_resource": "/_synapse/client/slow"}))

	done := make(chan testserver.Response, 1)
	go func() { done <- s.Do(t, "GET", "/_synapse/client/slow?sleep=400ms", nil, "") }()
	// Wait until the request is inside the module's handler.
	for i := 0; len(modCallsOf(id)) == 0; i++ {
		if i > 500 {
			t.Fatal("the request never reached the handler")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case r := <-done:
		if r.Status != 200 || r.Str("module") != id {
			t.Fatalf("in-flight request got %d %s", r.Status, r.Raw)
		}
	default:
		t.Fatal("Shutdown returned before the in-flight request finished")
	}
	// The database was closed cleanly: SQLite's WAL was checkpointed away.
	db := s.Config.Database.Args.Database
	if fi, err := os.Stat(db + "-wal"); err == nil && fi.Size() > 0 {
		t.Errorf("WAL file left with %d bytes after a clean shutdown", fi.Size())
	}
}

func TestRequestLogs(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn, Logs: logs})
	_, tok := s.Register(t, "nora", "pw")
	s.Do(t, "GET", "/_matrix/client/v3/account/whoami", nil, tok).Expect(t, 200, "")
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=request") && strings.Contains(l, "account/whoami") {
			line = l
		}
	}
	for _, want := range []string{"method=GET", `route="GET /_matrix/client/v3/account/whoami"`, "status=200", "duration_ms=", "user=@nora:test.local", "request_id=GET-"} {
		if !strings.Contains(line, want) {
			t.Errorf("request log %q lacks %s", line, want)
		}
	}
}
