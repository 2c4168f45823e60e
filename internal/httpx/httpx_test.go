package httpx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-im/sluice/internal/httpx"
)

// syncBuffer is a log sink written from server goroutines.
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

// The values the handlers leak on purpose; none may reach a client.
const (
	panicValue = "secret-panic-value-0xDEADBEEF"
	errValue   = "secret-database-error: password=hunter2"
)

func newServer(t *testing.T) (*httptest.Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	rt := httpx.NewRouter()
	rt.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) {
		panic(panicValue)
	})
	rt.HandleFunc("GET /panic-error", func(w http.ResponseWriter, r *http.Request) {
		panic(errors.New(panicValue))
	})
	rt.HandleFunc("GET /panic-after-write", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"ok": true})
		panic(panicValue)
	})
	rt.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, errors.New(errValue))
	})
	rt.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	srv := httptest.NewServer(httpx.Middleware(log, rt))
	t.Cleanup(srv.Close)
	return srv, logs
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

var requestIDRe = regexp.MustCompile(`request_id=(GET-\d+)`)

func TestPanicIsAnInternalError(t *testing.T) {
	for _, path := range []string{"/panic", "/panic-error", "/error"} {
		t.Run(path, func(t *testing.T) {
			srv, logs := newServer(t)
			leaked := panicValue
			if path == "/error" {
				leaked = errValue
			}
			for i := 0; i < 3; i++ {
				resp, body := get(t, srv.URL+path)
				if resp.StatusCode != http.StatusInternalServerError {
					t.Fatalf("status %d, want 500: %s", resp.StatusCode, body)
				}
				var m map[string]any
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatalf("body not JSON: %q", body)
				}
				if m["errcode"] != "M_UNKNOWN" || m["error"] != "Internal server error" || len(m) != 2 {
					t.Errorf("body %s, want exactly M_UNKNOWN \"Internal server error\"", body)
				}
				if strings.Contains(string(body), "secret") || strings.Contains(strings.ToLower(string(body)), "panic") ||
					strings.Contains(string(body), "goroutine") {
					t.Errorf("the response leaks internals: %s", body)
				}
				for k, v := range resp.Header {
					if strings.Contains(strings.Join(v, " "), "secret") {
						t.Errorf("header %s leaks internals: %v", k, v)
					}
				}
				if got := resp.Header.Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type %q", got)
				}
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
					t.Errorf("no CORS on the 500 (Access-Control-Allow-Origin %q)", got)
				}
				// The server keeps serving.
				if resp, body := get(t, srv.URL+"/ok"); resp.StatusCode != http.StatusOK {
					t.Fatalf("after a failure: status %d: %s", resp.StatusCode, body)
				}
			}
			// The log has the internals, with the request ID, once per
			// failed request.
			lines := []string{}
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, leaked) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 3 {
				t.Fatalf("%d log lines with the failure, want 3:\n%s", len(lines), logs.String())
			}
			ids := map[string]bool{}
			for _, l := range lines {
				m := requestIDRe.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("log line without a request_id: %s", l)
				}
				ids[m[1]] = true
				if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "path="+path) {
					t.Errorf("log line %q: want level=ERROR and path=%s", l, path)
				}
			}
			if len(ids) != 3 {
				t.Errorf("request IDs are not distinct: %v", ids)
			}
		})
	}
}

func TestPanicAfterTheResponseStarted(t *testing.T) {
	srv, logs := newServer(t)
	resp, body := get(t, srv.URL+"/panic-after-write")
	// What was written stands; nothing is appended to it.
	if resp.StatusCode != http.StatusAccepted || string(body) != `{"ok":true}` {
		t.Fatalf("status %d body %q, want the handler's own 202", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), panicValue) || !requestIDRe.MatchString(logs.String()) {
		t.Fatalf("the panic is not logged with a request ID:\n%s", logs.String())
	}
	if resp, _ := get(t, srv.URL+"/ok"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a panic: status %d", resp.StatusCode)
	}
}
