package e2e_test

// The antispam.http module (the synapse-http-antispam wire protocol)
// against a small policy server written here, standing in for Meowlnir or
// Draupnir: what each forwarded callback sends (path, headers, body), what
// its answers do to the client, fail_open both ways when the server is down
// or too slow, and async not delaying the client. SQLite only: the
// database plays no part here.

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/testserver"
)

// policyRequest is one request the policy server received.
type policyRequest struct {
	Path          string
	RemoteAddr    string
	Authorization string
	ContentType   string
	Body          map[string]any
	Raw           string
}

// policyServer answers each callback path with a scripted status and body
// (200 {} when none), after an optional delay, and records every request.
type policyServer struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []policyRequest
	answers map[string]policyAnswer
	got     chan string // each request's path, as it arrives
}

type policyAnswer struct {
	status int
	body   string
	delay  time.Duration
	block  chan struct{} // answer only once closed
}

func newPolicyServer(t *testing.T) *policyServer {
	p := &policyServer{answers: map[string]policyAnswer{}, got: make(chan string, 100)}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		path := strings.TrimPrefix(r.URL.Path, "/_meowlnir/antispam/mgmt/")
		p.mu.Lock()
		p.reqs = append(p.reqs, policyRequest{Path: path, RemoteAddr: r.RemoteAddr, Authorization: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type"), Body: body, Raw: string(raw)})
		a, ok := p.answers[path]
		p.mu.Unlock()
		p.got <- path
		if a.block != nil {
			select {
			case <-a.block:
			case <-r.Context().Done():
				return
			}
		}
		if a.delay > 0 {
			select {
			case <-time.After(a.delay):
			case <-r.Context().Done():
				return
			}
		}
		if !ok || a.status == 0 {
			a = policyAnswer{status: 200, body: "{}"}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *policyServer) answer(path string, a policyAnswer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[path] = a
}

// requests returns the recorded requests to one callback.
func (p *policyServer) requests(path string) []policyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []policyRequest
	for _, r := range p.reqs {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (p *policyServer) baseURL() string { return p.URL + "/_meowlnir/antispam/mgmt" }

// antispamStart starts a server with one antispam.http entry whose config
// is the given YAML lines (indented under config:), and registers alice and
// bob.
func antispamStart(t *testing.T, entry string) roomCB {
	t.Helper()
	return roomCBStart(t, nil, entry)
}

func antispamEntry(name, baseURL, extraConfig, entryExtra string) string {
	return "  - module: " + name + "\n" + entryExtra + "    config:\n      base_url: " + baseURL + "\n      authorization: s3cret\n" + extraConfig
}

// jsonOf re-encodes a decoded body for comparison.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAntispamHTTPForwardsCallbacks(t *testing.T) {
	p := newPolicyServer(t)
	// (The top-level key after the entry lets rooms be published.)
	c := antispamStart(t, antispamEntry("antispam.http", p.baseURL(), "", "")+"room_list_publication_rules: [{action: allow}]\n")
	s := c.s

	// user_may_create_room and user_may_create_room_alias: createRoom with
	// an alias.
	room := s.Do(t, "POST", roomCS("createRoom"), map[string]any{"room_alias_name": "policy", "preset": "public_chat"}, c.alice.Token).Expect(t, 200, "").Str("room_id")
	// user_may_invite, user_may_join_room, check_event_for_spam.
	s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": c.bob.ID}, c.alice.Token).Expect(t, 200, "")
	s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, c.bob.Token).Expect(t, 200, "")
	evID := s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "t1"), map[string]any{"msgtype": "m.text", "body": "hello policy"}, c.bob.Token).Expect(t, 200, "").Str("event_id")
	// check_username_for_spam: bob shares a room with alice now.
	if r := s.Do(t, "POST", roomCS("user_directory", "search"), map[string]any{"search_term": "bob"}, c.alice.Token).Expect(t, 200, ""); !strings.Contains(string(r.Raw), c.bob.ID) {
		t.Errorf("the search lost bob: %s", r.Raw)
	}
	// user_may_publish_room.
	s.Do(t, "PUT", roomCS("directory", "list", "room", room), map[string]any{"visibility": "public"}, c.alice.Token).Expect(t, 200, "")
	// check_login_for_spam.
	s.DoHeaders(t, "POST", roomCS("login"), http.Header{"User-Agent": {"policy-test/1"}}, map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "bob"}, "password": "pw-bob", "device_id": "DEV1",
	}).Expect(t, 200, "")

	want := map[string]string{
		"user_may_create_room":       `{"user_id":"@alice:test.local"}`,
		"user_may_create_room_alias": `{"room_alias":"#policy:test.local","user_id":"@alice:test.local"}`,
		"user_may_publish_room":      `{"room_id":"` + room + `","user_id":"@alice:test.local"}`,
		"check_username_for_spam":    `{"requester_id":"@alice:test.local","user_profile":{"avatar_url":null,"display_name":"bob","user_id":"@bob:test.local"}}`,
		"user_may_invite":            `{"invitee":"@bob:test.local","inviter":"@alice:test.local","room_id":"` + room + `"}`,
		"user_may_join_room":         `{"is_invited":true,"room":"` + room + `","user":"@bob:test.local"}`,
		"check_login_for_spam":       `{"auth_provider_id":null,"device_id":"DEV1","initial_display_name":null,"request_info":[["policy-test/1","127.0.0.1"]],"user_id":"@bob:test.local"}`,
	}
	for path, body := range want {
		reqs := p.requests(path)
		if len(reqs) != 1 {
			t.Errorf("%s: %d requests, want 1", path, len(reqs))
			continue
		}
		r := reqs[0]
		if r.Authorization != "Bearer s3cret" || r.ContentType != "application/json" {
			t.Errorf("%s: Authorization %q, Content-Type %q", path, r.Authorization, r.ContentType)
		}
		if got := jsonOf(r.Body); got != body {
			t.Errorf("%s body:\n got %s\nwant %s", path, got, body)
		}
	}
	// The requests, one after the other, went over one kept-alive
	// connection.
	conns := map[string]bool{}
	p.mu.Lock()
	for _, r := range p.reqs {
		conns[r.RemoteAddr] = true
	}
	n := len(p.reqs)
	p.mu.Unlock()
	if len(conns) != 1 {
		t.Errorf("%d requests used %d connections; want one, reused", n, len(conns))
	}
	// A rejection of check_username_for_spam leaves the user out.
	p.answer("check_username_for_spam", policyAnswer{status: 403, body: `{"errcode":"M_FORBIDDEN"}`})
	if r := s.Do(t, "POST", roomCS("user_directory", "search"), map[string]any{"search_term": "bob"}, c.alice.Token).Expect(t, 200, ""); strings.Contains(string(r.Raw), c.bob.ID) {
		t.Errorf("a user the policy server called spammy is in the results: %s", r.Raw)
	}
	// check_event_for_spam: the client format (no hashes, signatures,
	// auth/prev events, depth) with the event ID, for the message only
	// (createRoom's own events are not checked).
	var ev map[string]any
	for _, r := range p.requests("check_event_for_spam") {
		e := r.Body["event"].(map[string]any)
		if e["type"] == "m.room.message" {
			ev = e
		}
	}
	if ev == nil {
		t.Fatalf("no check_event_for_spam for the message; got %d requests", len(p.requests("check_event_for_spam")))
	}
	for _, k := range []string{"hashes", "signatures", "auth_events", "prev_events", "depth", "origin", "prev_state"} {
		if _, ok := ev[k]; ok {
			t.Errorf("check_event_for_spam event has %q: %v", k, ev)
		}
	}
	if ev["event_id"] != evID || ev["room_id"] != room || ev["sender"] != c.bob.ID || jsonOf(ev["content"]) != `{"body":"hello policy","msgtype":"m.text"}` {
		t.Errorf("check_event_for_spam event %v", ev)
	}
}

func TestAntispamHTTPRejections(t *testing.T) {
	p := newPolicyServer(t)
	c := antispamStart(t, antispamEntry("antispam.http", p.baseURL(), "", ""))
	s := c.s
	room := s.Do(t, "POST", roomCS("createRoom"), map[string]any{"preset": "public_chat"}, c.alice.Token).Expect(t, 200, "").Str("room_id")

	cases := []struct {
		name         string
		answer       policyAnswer
		status       int
		errcode, msg string
		extra        map[string]any
	}{
		{"allow 200", policyAnswer{status: 200, body: `{}`}, 200, "", "", nil},
		{"allow 204-like empty object", policyAnswer{status: 202, body: `{"ignored":true}`}, 200, "", "", nil},
		{"reject with errcode and error", policyAnswer{status: 403, body: `{"errcode":"M_FORBIDDEN","error":"You are banned by policy"}`}, 403, "M_FORBIDDEN", "You are banned by policy", nil},
		{"reject with another errcode and extra", policyAnswer{status: 400, body: `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":500}`}, 403, "M_LIMIT_EXCEEDED", "slow down", map[string]any{"retry_after_ms": float64(500)}},
		{"reject without errcode", policyAnswer{status: 403, body: `{"reason":"spam"}`}, 403, "M_FORBIDDEN", "This message has been rejected as probable spam", map[string]any{"reason": "spam"}},
		{"reject with an empty errcode", policyAnswer{status: 403, body: `{"errcode":"","error":"no"}`}, 403, "M_FORBIDDEN", "no", nil},
		{"reject with a non-string errcode", policyAnswer{status: 403, body: `{"errcode":403}`}, 403, "M_FORBIDDEN", "This message has been rejected as probable spam", nil},
		{"non-JSON error fails open for events (default)", policyAnswer{status: 500, body: `oops`}, 200, "", "", nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.answer("check_event_for_spam", tc.answer)
			r := s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "r"+string(rune('a'+i))), map[string]any{"msgtype": "m.text", "body": "x"}, c.alice.Token)
			if tc.status == 200 {
				r.Expect(t, 200, "")
				return
			}
			roomExpectError(t, r, tc.status, tc.errcode, tc.msg)
			for k, v := range tc.extra {
				if r.Body[k] != v {
					t.Errorf("%s = %v, want %v; body %s", k, r.Body[k], v, r.Raw)
				}
			}
		})
	}

	// A rejection of user_may_invite reaches the inviter with the policy's
	// errcode and message at Synapse's status (403).
	p.answer("user_may_invite", policyAnswer{status: 403, body: `{"errcode":"M_FORBIDDEN","error":"Invites from you are blocked"}`})
	roomExpectError(t, s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": c.bob.ID}, c.alice.Token), 403, "M_FORBIDDEN", "Invites from you are blocked")
	// A non-JSON error of a fail-closed callback (the default for all but
	// check_event_for_spam).
	p.answer("user_may_join_room", policyAnswer{status: 502, body: `<html>bad gateway</html>`})
	roomExpectError(t, s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, c.bob.Token), 403, "M_UNKNOWN", "Unexpected response from antispam server")
}

// deadURL is an address where nothing listens.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/antispam"
}

func TestAntispamHTTPFailOpen(t *testing.T) {
	for _, down := range []string{"down", "slow"} {
		t.Run(down, func(t *testing.T) {
			base := deadURL(t)
			var p *policyServer
			if down == "slow" {
				p = newPolicyServer(t)
				base = p.baseURL()
				for _, cb := range []string{"user_may_create_room", "check_event_for_spam", "user_may_join_room"} {
					p.answer(cb, policyAnswer{delay: 3 * time.Second})
				}
			}
			conf := "      fail_open:\n        user_may_join_room: true\n        check_event_for_spam: false\n"
			c := antispamStart(t, antispamEntry("antispam.http", base, conf, "    timeout: 300ms\n"))
			s := c.s
			start := time.Now()
			// user_may_create_room fails closed by default.
			roomExpectError(t, s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c.alice.Token), 403, "M_UNKNOWN", "Failed to connect to antispam server")
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("a %s server held createRoom for %s; the module's timeout is 300ms", down, d)
			}
			// An admin is not asked: make a room to test the rest in.
			room := roomAdminRoom(t, s)
			s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, c.alice.Token).Expect(t, 200, "")
			// check_event_for_spam is set to fail closed here.
			roomExpectError(t, s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "f1"), map[string]any{"msgtype": "m.text", "body": "x"}, c.alice.Token), 403, "M_UNKNOWN", "Failed to connect to antispam server")
			// user_may_join_room fails open.
			s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, c.bob.Token).Expect(t, 200, "")
			// The server keeps serving.
			s.Do(t, "GET", roomCS("account", "whoami"), nil, c.bob.Token).Expect(t, 200, "")
		})
	}
}

// roomAdminRoom creates a public room as a fresh server admin (admins are
// not asked user_may_create_room).
func roomAdminRoom(t *testing.T, s *testserver.Server) string {
	t.Helper()
	boss := roomAdmin(t, s, "boss")
	return s.Do(t, "POST", roomCS("createRoom"), map[string]any{"preset": "public_chat"}, boss.Token).Expect(t, 200, "").Str("room_id")
}

func TestAntispamHTTPAsync(t *testing.T) {
	p := newPolicyServer(t)
	release := make(chan struct{})
	p.answer("check_event_for_spam", policyAnswer{status: 403, body: `{"errcode":"M_FORBIDDEN"}`, block: release})
	conf := "      async:\n        check_event_for_spam: true\n"
	c := antispamStart(t, antispamEntry("antispam.http", p.baseURL(), conf, ""))
	s := c.s
	room := s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c.alice.Token).Expect(t, 200, "").Str("room_id")
	// The policy server holds every check_event_for_spam until released,
	// and would reject: the send must neither wait for it nor be rejected.
	done := make(chan testserver.Response, 1)
	go func() {
		done <- s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "a1"), map[string]any{"msgtype": "m.text", "body": "async"}, c.alice.Token)
	}()
	select {
	case r := <-done:
		r.Expect(t, 200, "")
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("an async callback held the send")
	}
	// The request did reach the policy server.
	deadline := time.After(5 * time.Second)
	for found := false; !found; {
		select {
		case path := <-p.got:
			found = path == "check_event_for_spam"
		case <-deadline:
			t.Fatal("the async check_event_for_spam never reached the policy server")
		}
	}
	close(release)
}

func TestAntispamHTTPConfig(t *testing.T) {
	cases := []struct{ name, config, want string }{
		{"missing base_url", "    config: {}\n", "config.base_url: failed to parse config for module \"antispam.http\": is required"},
		{"bad base_url", "    config: {base_url: 'ftp://x'}\n", "is not an http(s) URL"},
		{"unknown callback", "    config: {base_url: 'http://127.0.0.1:1', enabled_callbacks: [user_may_fly]}\n", `unknown callback "user_may_fly"`},
		{"unsupported callback", "    config: {base_url: 'http://127.0.0.1:1', enabled_callbacks: [check_media_file_for_spam]}\n", "not carried by the synapse-http-antispam protocol"},
		{"unknown fail_open key", "    config: {base_url: 'http://127.0.0.1:1', fail_open: {nope: true}}\n", `config.fail_open.nope: failed to parse config for module "antispam.http": unknown callback "nope"`},
		{"unknown key", "    config: {base_url: 'http://127.0.0.1:1', colour: blue}\n", "colour"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := modStartErr(t, "  - module: antispam.http\n"+tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start-up error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Synapse's module name works too, and callbacks only Synapse's
	// federation calls are accepted (with a warning).
	p := newPolicyServer(t)
	c := antispamStart(t, antispamEntry("synapse_http_antispam.HTTPAntispam", p.baseURL(), "      enabled_callbacks: [user_may_invite, federated_user_may_invite]\n", ""))
	c.s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c.alice.Token).Expect(t, 200, "")
	if n := len(p.requests("user_may_create_room")); n != 0 {
		t.Errorf("user_may_create_room was forwarded %d times though not enabled", n)
	}
}

// TestAntispamHTTPTwoServers: two entries of the module, one policy server
// each, both asked in order and told apart in the metrics.
func TestAntispamHTTPTwoServers(t *testing.T) {
	p1, p2 := newPolicyServer(t), newPolicyServer(t)
	p2.answer("user_may_create_room", policyAnswer{status: 403, body: `{"errcode":"M_FORBIDDEN","error":"second says no"}`})
	s := testserver.Start(t, testserver.Options{
		YAML: roomRegistrationOn + "enable_metrics: true\nmodules:\n" +
			antispamEntry("antispam.http", p1.baseURL(), "", "") + antispamEntry("antispam.http", p2.baseURL(), "", ""),
		Listeners: "listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n    resources: [{names: [client, metrics]}]\n",
	})
	alice := roomRegister(t, s, "alice")
	roomExpectError(t, s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, alice.Token), 403, "M_FORBIDDEN", "second says no")
	if len(p1.requests("user_may_create_room")) != 1 || len(p2.requests("user_may_create_room")) != 1 {
		t.Errorf("requests: first %d, second %d; want one each", len(p1.requests("user_may_create_room")), len(p2.requests("user_may_create_room")))
	}
	metrics := string(s.Do(t, "GET", "/_synapse/metrics", nil, "").Raw)
	for _, want := range []string{
		`sluice_module_callback_decisions_total{callback="user_may_create_room",decision="allow",module="antispam.http"} 1`,
		`sluice_module_callback_decisions_total{callback="user_may_create_room",decision="deny",module="antispam.http#2"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
