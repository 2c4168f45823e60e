package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHS is a test double of an external homeserver: just the five
// endpoints loadgen calls, checked against the shapes in the Matrix spec
// and Synapse's shared-secret registration.
type fakeHS struct {
	t        *testing.T
	secret   string
	bodySize int

	// Knobs, set before the server starts.
	limitEvery   int                                           // every Nth send attempt answers 429
	limitHeader  bool                                          // give the delay as Retry-After, not retry_after_ms
	limitCreates int                                           // the first N createRoom calls answer 429
	failSend     func(roomIndex int) (status int, body string) // a non-zero status fails the send

	mu          sync.Mutex
	nonces      map[string]bool   // issued, not yet used
	tokens      map[string]string // access token -> user ID
	rooms       map[string]map[string]bool
	roomIndex   map[string]int
	creates     int
	joins       int
	attempts    int
	sends       int             // accepted
	txns        map[string]bool // token + txnId of accepted sends
	limited     map[string]bool // token + txnId answered 429 and not yet accepted
	rateLimited int
	failed      int
	problems    []string
}

func newFake(t *testing.T, secret string, bodySize int) *fakeHS {
	return &fakeHS{
		t: t, secret: secret, bodySize: bodySize,
		nonces: map[string]bool{}, tokens: map[string]string{},
		rooms: map[string]map[string]bool{}, roomIndex: map[string]int{},
		txns: map[string]bool{}, limited: map[string]bool{},
	}
}

func (f *fakeHS) start() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_synapse/admin/v1/register", f.nonce)
	mux.HandleFunc("POST /_synapse/admin/v1/register", f.register)
	mux.HandleFunc("POST /_matrix/client/v3/createRoom", f.createRoom)
	mux.HandleFunc("POST /_matrix/client/v3/join/{roomIdOrAlias}", f.join)
	mux.HandleFunc("PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}", f.send)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.problem("unexpected request %s %s", r.Method, r.URL.RawPath)
		writeJSON(w, 404, map[string]any{"errcode": "M_UNRECOGNIZED", "error": "unrecognized"})
	})
	srv := httptest.NewServer(mux)
	f.t.Cleanup(srv.Close)
	return srv
}

// problem records a protocol violation by the client (checked at the end:
// handlers run on server goroutines).
func (f *fakeHS) problem(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, fmt.Sprintf(format, a...))
}

func (f *fakeHS) check() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.problems {
		f.t.Error("fake homeserver:", p)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func forbidden(w http.ResponseWriter, msg string) {
	writeJSON(w, 403, map[string]any{"errcode": "M_FORBIDDEN", "error": msg})
}

// readBody decodes a JSON object body, requiring the JSON content type.
func (f *fakeHS) readBody(r *http.Request, into any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.problem("%s %s: Content-Type %q", r.Method, r.URL.Path, ct)
	}
	if err := json.NewDecoder(r.Body).Decode(into); err != nil {
		f.problem("%s %s: body: %v", r.Method, r.URL.Path, err)
		return false
	}
	return true
}

// auth returns the user ID of the request's bearer token.
func (f *fakeHS) auth(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	uid, known := f.tokens[tok]
	f.mu.Unlock()
	if !ok || !known {
		f.problem("%s %s: bad access token", r.Method, r.URL.Path)
		writeJSON(w, 401, map[string]any{"errcode": "M_UNKNOWN_TOKEN", "error": "unknown token"})
		return "", false
	}
	return uid, true
}

// userNumber is N in "@PREFIX_N:fake.test".
func userNumber(uid string) int {
	i := strings.LastIndexByte(uid, '_')
	j := strings.IndexByte(uid, ':')
	n, err := strconv.Atoi(uid[i+1 : j])
	if err != nil {
		panic(uid)
	}
	return n
}

func (f *fakeHS) nonce(w http.ResponseWriter, r *http.Request) {
	n := randomHex(8)
	f.mu.Lock()
	f.nonces[n] = true
	f.mu.Unlock()
	writeJSON(w, 200, map[string]string{"nonce": n})
}

// independentMAC is Synapse's MAC, written out separately from the code
// under test: HMAC-SHA1 over nonce, user, password, "notadmin", NUL-joined.
func independentMAC(secret, nonce, user, password string) []byte {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(bytes.Join([][]byte{[]byte(nonce), []byte(user), []byte(password), []byte("notadmin")}, []byte{0}))
	return m.Sum(nil)
}

func (f *fakeHS) register(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Nonce    string `json:"nonce"`
		Username string `json:"username"`
		Password string `json:"password"`
		Admin    *bool  `json:"admin"`
		MAC      string `json:"mac"`
	}
	if !f.readBody(r, &req) {
		writeJSON(w, 400, map[string]any{"errcode": "M_NOT_JSON"})
		return
	}
	f.mu.Lock()
	known := f.nonces[req.Nonce]
	delete(f.nonces, req.Nonce)
	f.mu.Unlock()
	if !known {
		f.problem("register %s: unknown or reused nonce", req.Username)
		writeJSON(w, 400, map[string]any{"errcode": "M_UNKNOWN", "error": "unrecognised nonce"})
		return
	}
	if req.Admin == nil || *req.Admin {
		f.problem("register %s: admin is %v, want false", req.Username, req.Admin)
	}
	got, err := hex.DecodeString(req.MAC)
	if err != nil || !hmac.Equal(got, independentMAC(f.secret, req.Nonce, req.Username, req.Password)) {
		forbidden(w, "HMAC incorrect")
		return
	}
	uid := "@" + req.Username + ":fake.test"
	tok := "tok_" + randomHex(8)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.tokens {
		if u == uid {
			writeJSON(w, 400, map[string]any{"errcode": "M_USER_IN_USE", "error": "taken"})
			return
		}
	}
	f.tokens[tok] = uid
	writeJSON(w, 200, map[string]any{"user_id": uid, "access_token": tok, "home_server": "fake.test", "device_id": "D"})
}

func (f *fakeHS) createRoom(w http.ResponseWriter, r *http.Request) {
	uid, ok := f.auth(w, r)
	if !ok {
		return
	}
	var req map[string]any
	if !f.readBody(r, &req) {
		return
	}
	if req["preset"] != "public_chat" {
		f.problem("createRoom: preset %v", req["preset"])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limitCreates > 0 {
		f.limitCreates--
		writeJSON(w, 429, map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 1})
		return
	}
	// A slash and a colon: the client must escape the ID in paths.
	id := fmt.Sprintf("!r%d/x:fake.test", f.creates)
	// loadgen's room r is created by user r%users: with users >= rooms,
	// the creator's number is the room's index.
	f.roomIndex[id] = userNumber(uid)
	f.creates++
	f.rooms[id] = map[string]bool{uid: true}
	writeJSON(w, 200, map[string]string{"room_id": id})
}

func (f *fakeHS) join(w http.ResponseWriter, r *http.Request) {
	uid, ok := f.auth(w, r)
	if !ok {
		return
	}
	var req map[string]any
	if !f.readBody(r, &req) {
		return
	}
	id := r.PathValue("roomIdOrAlias")
	f.mu.Lock()
	defer f.mu.Unlock()
	members, ok := f.rooms[id]
	if !ok {
		f.problems = append(f.problems, fmt.Sprintf("join: unknown room %q (raw path %q)", id, r.URL.EscapedPath()))
		writeJSON(w, 404, map[string]any{"errcode": "M_NOT_FOUND", "error": "no room"})
		return
	}
	if members[uid] {
		f.problems = append(f.problems, fmt.Sprintf("join: %s joins %s twice", uid, id))
	}
	members[uid] = true
	f.joins++
	writeJSON(w, 200, map[string]string{"room_id": id})
}

func (f *fakeHS) send(w http.ResponseWriter, r *http.Request) {
	uid, ok := f.auth(w, r)
	if !ok {
		return
	}
	var content map[string]any
	if !f.readBody(r, &content) {
		return
	}
	if et := r.PathValue("eventType"); et != "m.room.message" {
		f.problem("send: event type %q", et)
	}
	if body, _ := content["body"].(string); content["msgtype"] != "m.text" || len(body) != f.bodySize {
		f.problem("send: content %v, want m.text with a %d-byte body", content, f.bodySize)
	}
	id, txn := r.PathValue("roomId"), r.PathValue("txnId")
	key := r.Header.Get("Authorization") + " " + txn
	f.mu.Lock()
	defer f.mu.Unlock()
	members, ok := f.rooms[id]
	if !ok || !members[uid] {
		f.problems = append(f.problems, fmt.Sprintf("send: %s is not in room %q", uid, id))
		forbidden(w, "not in room")
		return
	}
	f.attempts++
	if f.limitEvery > 0 && f.attempts%f.limitEvery == 0 {
		f.rateLimited++
		f.limited[key] = true
		if f.limitHeader {
			w.Header().Set("Retry-After", "0")
			writeJSON(w, 429, map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "slow down"})
		} else {
			writeJSON(w, 429, map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 1})
		}
		return
	}
	if f.failSend != nil {
		if status, body := f.failSend(f.roomIndex[id]); status != 0 {
			f.failed++
			w.WriteHeader(status)
			io.WriteString(w, body)
			return
		}
	}
	if f.txns[key] {
		f.problems = append(f.problems, fmt.Sprintf("send: transaction %q reused", txn))
	}
	f.txns[key] = true
	delete(f.limited, key)
	f.sends++
	writeJSON(w, 200, map[string]string{"event_id": fmt.Sprintf("$e%d", f.sends)})
}

// testConfig is a short run against url.
func testConfig(url string) config {
	return config{
		URL: url, Secret: "s3cret", Users: 4, Rooms: 3, Clients: 8,
		Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Prefix: "t" + randomHex(3) + "_", BodySize: 37, Timeout: 5 * time.Second,
	}
}

// logWriter sends loadgen's log lines to the test log.
type logWriter struct{ t *testing.T }

func (l logWriter) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestRunAgainstFake(t *testing.T) {
	f := newFake(t, "s3cret", 37)
	srv := f.start()
	cfg := testConfig(srv.URL)
	if fileExists("/proc/self/stat") {
		cfg.PID = os.Getpid() // the fake runs in this process
	}
	rep, err := run(context.Background(), cfg, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	f.check()

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokens) != 4 || f.creates != 3 {
		t.Errorf("fake saw %d users and %d rooms, want 4 and 3", len(f.tokens), f.creates)
	}
	// Room r is created by user r%4; user u lives in room u%3; client c
	// (c < 8) sends as user c%4 in room c%3.
	want := map[int][]int{0: {0, 2, 3}, 1: {0, 1, 3}, 2: {1, 2}}
	for id, idx := range f.roomIndex {
		var got []int
		for uid := range f.rooms[id] {
			got = append(got, userNumber(uid))
		}
		slices.Sort(got)
		if !slices.Equal(got, want[idx]) {
			t.Errorf("room %d members: %v, want users %v", idx, got, want[idx])
		}
	}
	if f.joins != 5 || rep.Setup.Joins != 5 {
		t.Errorf("joins: fake %d, report %d, want 5", f.joins, rep.Setup.Joins)
	}
	if rep.Sends == 0 || rep.Warmup.Sends == 0 {
		t.Errorf("sends: %d measured, %d in warm-up; want both > 0", rep.Sends, rep.Warmup.Sends)
	}
	if got := rep.Sends + rep.Warmup.Sends; got != int64(f.sends) {
		t.Errorf("report counts %d sends, fake accepted %d", got, f.sends)
	}
	if rep.Errors != 0 || rep.RateLimited != 0 || rep.Aborted != "" {
		t.Errorf("errors %d (%v), 429s %d, aborted %q", rep.Errors, rep.ErrorsByKind, rep.RateLimited, rep.Aborted)
	}
	if rep.LatencyMS.Count != int(rep.Sends) || rep.LatencyMS.P50 <= 0 || rep.LatencyMS.Max < rep.LatencyMS.P99 {
		t.Errorf("latency summary %+v for %d sends", rep.LatencyMS, rep.Sends)
	}
	if rep.WindowSeconds < 0.29 || rep.WindowSeconds > 2 || rep.SendsPerSecond <= 0 {
		t.Errorf("window %.3fs, %.1f sends/s", rep.WindowSeconds, rep.SendsPerSecond)
	}
	if cfg.PID != 0 {
		if rep.Server == nil || rep.Server.PeakRSSBytes <= 0 || rep.Server.EndRSSBytes <= 0 || rep.Server.CPUSeconds < 0 {
			t.Errorf("server stats %+v", rep.Server)
		}
	}
	var table, js bytes.Buffer
	rep.writeTable(&table)
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s%s", table.String(), js.String())
}

func TestMessagesMode(t *testing.T) {
	f := newFake(t, "s3cret", 37)
	cfg := testConfig(f.start().URL)
	cfg.Messages, cfg.Duration, cfg.Warmup, cfg.Clients = 200, 0, 0, 5
	rep, err := run(context.Background(), cfg, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	f.check()
	if rep.Sends != 200 || f.sends != 200 || rep.LatencyMS.Count != 200 {
		t.Errorf("sends: report %d, fake %d, latencies %d; want 200", rep.Sends, f.sends, rep.LatencyMS.Count)
	}
	if rep.Loadgen == nil && fileExists("/proc/self/stat") {
		t.Error("no CPU sample for a run without warm-up")
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestServerUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := run(context.Background(), testConfig(url), logWriter{t})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestRetryDelayAndErrKind(t *testing.T) {
	ms := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		e    matrixError
		want time.Duration
	}{
		{matrixError{Status: 429, RetryAfterMS: ms(1500)}, 1500 * time.Millisecond},
		{matrixError{Status: 429, RetryAfterMS: ms(0)}, 0},
		{matrixError{Status: 429}, 500 * time.Millisecond},
	} {
		if got := retryDelay(&tc.e); got != tc.want {
			t.Errorf("retryDelay(%v) = %s, want %s", tc.e, got, tc.want)
		}
	}
	if k := errKind(&matrixError{Status: 403, ErrCode: "M_FORBIDDEN", Message: "varies"}); k != "HTTP 403 M_FORBIDDEN" {
		t.Errorf("errKind = %q", k)
	}
	if k := errKind(&matrixError{Status: 502}); k != "HTTP 502" {
		t.Errorf("errKind = %q", k)
	}
}

func TestRateLimited(t *testing.T) {
	for _, header := range []bool{false, true} {
		t.Run(fmt.Sprintf("retry-after-header=%v", header), func(t *testing.T) {
			f := newFake(t, "s3cret", 37)
			f.limitEvery, f.limitHeader, f.limitCreates = 3, header, 2
			cfg := testConfig(f.start().URL)
			cfg.Messages, cfg.Duration, cfg.Warmup = 150, 0, 0
			rep, err := run(context.Background(), cfg, logWriter{t})
			if err != nil {
				t.Fatal(err)
			}
			f.check()
			f.mu.Lock()
			defer f.mu.Unlock()
			if rep.Sends != 150 || f.sends != 150 {
				t.Errorf("sends: report %d, fake %d; want 150 (each 429 retried)", rep.Sends, f.sends)
			}
			if rep.RateLimited == 0 || rep.RateLimited != int64(f.rateLimited) {
				t.Errorf("429s: report %d, fake %d", rep.RateLimited, f.rateLimited)
			}
			if len(f.limited) != 0 {
				t.Errorf("%d rate-limited transactions never retried", len(f.limited))
			}
			if rep.Setup.RateLimited != 2 {
				t.Errorf("setup 429s: %d, want 2", rep.Setup.RateLimited)
			}
			if rep.Errors != 0 {
				t.Errorf("errors: %v", rep.ErrorsByKind)
			}
			var table bytes.Buffer
			rep.writeTable(&table)
			if !strings.Contains(table.String(), "WARNING") {
				t.Errorf("no rate-limit warning in\n%s", table.String())
			}
		})
	}
}

func TestErrorsCounted(t *testing.T) {
	f := newFake(t, "s3cret", 37)
	f.failSend = func(room int) (int, string) {
		switch room {
		case 1:
			return 403, `{"errcode":"M_FORBIDDEN","error":"no"}`
		case 2:
			return 500, "oops, not JSON"
		}
		return 0, ""
	}
	cfg := testConfig(f.start().URL)
	rep, err := run(context.Background(), cfg, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	f.check()
	f.mu.Lock()
	defer f.mu.Unlock()
	if rep.ErrorsByKind["HTTP 403 M_FORBIDDEN"] == 0 || rep.ErrorsByKind["HTTP 500"] == 0 || len(rep.ErrorsByKind) != 2 {
		t.Errorf("errors by kind: %v", rep.ErrorsByKind)
	}
	if got := rep.Errors + rep.Warmup.Errors; got != int64(f.failed) {
		t.Errorf("report counts %d errors, fake failed %d", got, f.failed)
	}
	if rep.Sends == 0 || rep.LatencyMS.Count != int(rep.Sends) {
		t.Errorf("sends %d, latencies %d", rep.Sends, rep.LatencyMS.Count)
	}
}

func TestStopsWhenEverythingFails(t *testing.T) {
	f := newFake(t, "s3cret", 37)
	f.failSend = func(int) (int, string) { return 502, "bad gateway" }
	cfg := testConfig(f.start().URL)
	cfg.Duration = time.Minute
	start := time.Now()
	rep, err := run(context.Background(), cfg, logWriter{t})
	if err == nil || !strings.Contains(err.Error(), "in a row failed") {
		t.Fatalf("err = %v, want an early stop", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("took %s to give up", time.Since(start))
	}
	if rep == nil || rep.Aborted == "" || rep.Sends != 0 {
		t.Fatalf("report %+v", rep)
	}
	f.check()
}

func TestSetupFailure(t *testing.T) {
	f := newFake(t, "the real secret", 37)
	cfg := testConfig(f.start().URL) // secret "s3cret": wrong
	rep, err := run(context.Background(), cfg, logWriter{t})
	if rep != nil || err == nil || !strings.Contains(err.Error(), "M_FORBIDDEN") {
		t.Fatalf("rep %v, err %v; want a registration failure", rep, err)
	}
}

func TestInterrupted(t *testing.T) {
	f := newFake(t, "s3cret", 37)
	cfg := testConfig(f.start().URL)
	cfg.Duration, cfg.Warmup = time.Minute, 0
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	rep, err := run(ctx, cfg, logWriter{t})
	if err == nil || rep == nil || !rep.Interrupted || rep.Sends == 0 || rep.Errors != 0 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

func TestRegistrationMAC(t *testing.T) {
	// From Python: hmac.new(b"SECRET", b"abcdef\0alice\0pw\0notadmin", hashlib.sha1).hexdigest()
	if got, want := registrationMAC("SECRET", "abcdef", "alice", "pw"), "9d9fbc64a87c30b6f802b67f70846c2dd80db830"; got != want {
		t.Errorf("MAC %s, want %s", got, want)
	}
	if got, want := registrationMAC("k", "n", "u", "p"), hex.EncodeToString(independentMAC("k", "n", "u", "p")); got != want {
		t.Errorf("MAC %s, want %s", got, want)
	}
}

func TestSummarize(t *testing.T) {
	msd := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, x := range n {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	var hundred []int
	for i := 100; i >= 1; i-- { // reversed: summarize must sort
		hundred = append(hundred, i)
	}
	var thousand []int
	for i := 1; i <= 1000; i++ {
		thousand = append(thousand, i)
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want latencySummary
	}{
		{"empty", nil, latencySummary{}},
		{"one", msd(7), latencySummary{Count: 1, Min: 7 * ms, Mean: 7 * ms, P50: 7 * ms, P90: 7 * ms, P99: 7 * ms, Max: 7 * ms}},
		{"1..100", msd(hundred...), latencySummary{Count: 100, Min: ms, Mean: 50*ms + 500*time.Microsecond, P50: 50 * ms, P90: 90 * ms, P99: 99 * ms, Max: 100 * ms}},
		{"1..1000", msd(thousand...), latencySummary{Count: 1000, Min: ms, Mean: 500*ms + 500*time.Microsecond, P50: 500 * ms, P90: 900 * ms, P99: 990 * ms, Max: 1000 * ms}},
		// Ranks ceil(5)=5, ceil(9)=9, ceil(9.9)=10.
		{"ten", msd(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), latencySummary{Count: 10, Min: ms, Mean: 5*ms + 500*time.Microsecond, P50: 5 * ms, P90: 9 * ms, P99: 10 * ms, Max: 10 * ms}},
		// One slow outlier in 200: p99 (rank 198) does not see it, max does.
		{"outlier", append(msd(slices.Repeat([]int{1}, 199)...), time.Second), latencySummary{Count: 200, Min: ms, Mean: (199*ms + time.Second) / 200, P50: ms, P90: ms, P99: ms, Max: time.Second}},
	} {
		in := slices.Clone(tc.in)
		if got := summarize(tc.in); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("%s: summarize modified its input", tc.name)
		}
	}
}

func TestParseProc(t *testing.T) {
	// The command name holds spaces and parentheses; utime=1234 and
	// stime=566 ticks are fields 14 and 15.
	stat := "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 566 0 0 20 0 8 0 12345 1000000 500 18446744073709551615\n"
	got, err := parseStatCPU(stat)
	if err != nil || got != 18*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 18s", got, err)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Error("short stat accepted")
	}
	status := "Name:\tsluice\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"
	hwm, err1 := parseStatusKB(status, "VmHWM")
	rss, err2 := parseStatusKB(status, "VmRSS")
	if hwm != 20<<20 || rss != 10<<20 || err1 != nil || err2 != nil {
		t.Errorf("VmHWM %d (%v), VmRSS %d (%v)", hwm, err1, rss, err2)
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Error("missing key accepted")
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-url", "http://127.0.0.1:8008/", "-secret", "s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "http://127.0.0.1:8008" || cfg.Users != 50 || cfg.Rooms != 50 || cfg.Clients != 50 ||
		cfg.Duration != 30*time.Second || cfg.Warmup != 3*time.Second || cfg.BodySize != 100 || !strings.HasPrefix(cfg.Prefix, "lg") {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg2, _ := parseFlags([]string{"-url", "http://h", "-secret", "s"}, io.Discard)
	if cfg2.Prefix == cfg.Prefix {
		t.Error("the default prefix is not random")
	}
	cfg, err = parseFlags([]string{"-url", "http://h", "-secret", "s", "-messages", "1000"}, io.Discard)
	if err != nil || cfg.Messages != 1000 || cfg.Duration != 0 {
		t.Errorf("-messages: %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{
		{"-secret", "s"},
		{"-url", "http://h"},
		{"-url", "127.0.0.1:8008", "-secret", "s"},
		{"-url", "http://h", "-secret", "s", "-messages", "10", "-duration", "5s"},
		{"-url", "http://h", "-secret", "s", "-clients", "0"},
		{"-url", "http://h", "-secret", "s", "extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPlanJoins(t *testing.T) {
	// 50/50/50: each client alone in its own room, nobody joins.
	if j := (plan{users: 50, rooms: 50, clients: 50}).joins(); len(j) != 0 {
		t.Errorf("50/50/50: joins %v", j)
	}
	// 10 users in 2 rooms: 8 joins.
	if j := (plan{users: 10, rooms: 2, clients: 10}).joins(); len(j) != 8 {
		t.Errorf("10/2/10: %d joins, want 8", len(j))
	}
}

func TestReportJSON(t *testing.T) {
	r := newReport(testConfig("http://h"))
	r.LatencyMS = summarize([]time.Duration{1500 * time.Microsecond, 2 * time.Millisecond})
	r.ErrorsByKind["HTTP 500"] = 3
	var buf bytes.Buffer
	if err := r.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	lat := got["latency_ms"].(map[string]any)
	if lat["p50"] != 1.5 || lat["max"] != 2.0 || lat["count"] != 2.0 {
		t.Errorf("latency_ms %v", lat)
	}
	keys := slices.Sorted(maps.Keys(got))
	for _, k := range []string{"sends", "sends_per_second", "errors", "errors_by_kind", "rate_limited", "settings", "setup", "window_seconds"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %q in %v", k, keys)
		}
	}
}
