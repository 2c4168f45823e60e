package bench

// /sync over loopback HTTP on a real server, for a user in 10, 100 and
// 1,000 rooms: initial sync, incremental sync, and how long a waiting
// long-poll takes to answer a new message. Besides time, each reports the
// SQL statements the server ran per request (storage.QueryCounter).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/testserver"
)

// syncRoomCounts are the sizes of the syncing user's room list.
var syncRoomCounts = []int{10, 100, 1000}

// syncMessages is how many messages each room gets at setup (the second
// member sends all but the last, the syncing user the last), after its
// creation and the syncing user's join.
const syncMessages = 3

// syncSetupWorkers is how many rooms are set up at once.
const syncSetupWorkers = 8

// BenchmarkSync measures GET /sync for a user (alice) in N rooms, each
// created by a second member (bob, preset public_chat) with syncMessages
// messages, on SQLite and, when reachable, PostgreSQL. Each N gets one
// server, used in turn by:
//
//   - initial: /sync without since. Reports queries/op (the statements the
//     server ran for the request, authentication included) and resp-B/op.
//   - initial_timeline1: the same with a filter of one timeline event per
//     room ({"room":{"timeline":{"limit":1}}}), so that no timeline reaches
//     back to alice's join: history visibility has nothing to check.
//   - incremental: /sync?since=<latest>&timeout=0 after bob sends one
//     message (the send is not timed or counted).
//   - longpoll_wake: alice waits on /sync?since=<latest>&timeout=30000; bob
//     sends a message; the time from just before bob's send to alice's
//     response (so it includes persisting the event) is the wake latency,
//     reported as wake-p50-µs and wake-p99-µs; ns/op is its mean.
//
// Run: go test ./bench -run '^$' -bench Sync -count 3 -timeout 30m
// (bench/README.md has the figures).
func BenchmarkSync(b *testing.B) {
	for _, db := range []struct{ name, driver string }{{"sqlite", storage.DriverSQLite}, {"postgres", storage.DriverPostgres}} {
		b.Run(db.name, func(b *testing.B) {
			for _, n := range syncRoomCounts {
				b.Run(fmt.Sprintf("rooms=%d", n), func(b *testing.B) {
					f := newSyncFixture(b, db.driver, n)
					b.Run("initial", f.benchInitial)
					b.Run("initial_timeline1", f.benchInitialTimeline1)
					b.Run("incremental", f.benchIncremental)
					b.Run("longpoll_wake", f.benchLongPoll)
				})
			}
		})
	}
}

// syncUser is a registered user.
type syncUser struct{ id, token string }

// syncFixture is a server with alice in n rooms.
type syncFixture struct {
	db      string
	n       int
	s       *testserver.Server
	queries *storage.QueryCounter
	client  *http.Client
	alice   syncUser
	bob     syncUser
	rooms   []string
	txn     atomic.Int64
	next    int    // the room bob sends to next
	since   string // alice's latest next_batch
	// quiet is how long an incremental sync with nothing new takes: how
	// long a long-poll needs before it waits.
	quiet time.Duration
}

func newSyncFixture(b *testing.B, driver string, n int) *syncFixture {
	b.Helper()
	f := &syncFixture{db: driver, n: n, queries: &storage.QueryCounter{},
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * syncSetupWorkers}}}
	f.s = testserver.Start(b, testserver.Options{
		Driver:  driver,
		YAML:    "enable_registration: true\nenable_registration_without_verification: true\n",
		Queries: f.queries,
	})
	b.Cleanup(f.client.CloseIdleConnections)
	var err error
	start := time.Now()
	f.alice.id, f.alice.token = f.s.Register(b, "alice", "pw-alice")
	f.bob.id, f.bob.token = f.s.Register(b, "bob", "pw-bob")
	f.rooms = make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, syncSetupWorkers)
	for range syncSetupWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f.setupRoom(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err = <-errs; err != nil {
		b.Fatal(err)
	}
	setup := time.Since(start)

	// Check the initial sync once (and warm the caches), and take its
	// token for the incremental benchmarks.
	raw, err := f.get("/sync", f.alice)
	if err != nil {
		b.Fatal(err)
	}
	var r struct {
		NextBatch string `json:"next_batch"`
		Rooms     struct {
			Join map[string]struct {
				Timeline struct {
					Events []json.RawMessage `json:"events"`
				} `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		b.Fatal(err)
	}
	if len(r.Rooms.Join) != n {
		b.Fatalf("initial sync has %d joined rooms, want %d", len(r.Rooms.Join), n)
	}
	for id, jr := range r.Rooms.Join {
		if len(jr.Timeline.Events) == 0 {
			b.Fatalf("room %s has an empty timeline", id)
		}
	}
	f.since = r.NextBatch
	t0 := time.Now()
	if _, err := f.syncSince(f.since, 0); err != nil {
		b.Fatal(err)
	}
	f.quiet = time.Since(t0)
	b.Logf("setup: %d rooms in %v; empty incremental sync %v", n, setup.Round(time.Millisecond), f.quiet.Round(time.Microsecond))
	return f
}

// setupRoom makes room i: bob creates it, alice joins, bob then alice
// send syncMessages messages.
func (f *syncFixture) setupRoom(i int) error {
	raw, err := f.do("POST", "/createRoom", f.bob, map[string]any{"preset": "public_chat", "name": fmt.Sprintf("room %d", i)})
	if err != nil {
		return err
	}
	var cr struct {
		RoomID string `json:"room_id"`
	}
	if err := json.Unmarshal(raw, &cr); err != nil || cr.RoomID == "" {
		return fmt.Errorf("createRoom: %s", raw)
	}
	f.rooms[i] = cr.RoomID
	if _, err := f.do("POST", "/rooms/"+url.PathEscape(cr.RoomID)+"/join", f.alice, map[string]any{}); err != nil {
		return err
	}
	for m := range syncMessages {
		from := f.bob
		if m == syncMessages-1 {
			from = f.alice
		}
		if _, err := f.send(from, cr.RoomID, fmt.Sprintf("message %d", m)); err != nil {
			return err
		}
	}
	return nil
}

// do sends a client-server API request as u and returns the body of its
// 200 answer.
func (f *syncFixture) do(method, path string, u syncUser, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.s.URL+"/_matrix/client/v3"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+u.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
	}
	return raw, nil
}

func (f *syncFixture) get(path string, u syncUser) ([]byte, error) { return f.do("GET", path, u, nil) }

// send sends a message as u and returns its event ID.
func (f *syncFixture) send(u syncUser, roomID, text string) (string, error) {
	raw, err := f.do("PUT", fmt.Sprintf("/rooms/%s/send/m.room.message/t%d", url.PathEscape(roomID), f.txn.Add(1)), u,
		map[string]any{"msgtype": "m.text", "body": text})
	if err != nil {
		return "", err
	}
	var r struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.EventID == "" {
		return "", fmt.Errorf("send: %s", raw)
	}
	return r.EventID, nil
}

// sendNext has bob send a message to the next room in turn.
func (f *syncFixture) sendNext() (string, error) {
	room := f.rooms[f.next%len(f.rooms)]
	f.next++
	return f.send(f.bob, room, "hello")
}

// syncSince runs alice's incremental sync.
func (f *syncFixture) syncSince(since string, timeout time.Duration) ([]byte, error) {
	return f.get(fmt.Sprintf("/sync?since=%s&timeout=%d", url.QueryEscape(since), timeout.Milliseconds()), f.alice)
}

// nextBatch reads a sync response's next_batch.
func nextBatch(raw []byte) (string, error) {
	var r struct {
		NextBatch string `json:"next_batch"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.NextBatch == "" {
		return "", fmt.Errorf("sync response without next_batch: %.200s", raw)
	}
	return r.NextBatch, nil
}

func (f *syncFixture) benchInitial(b *testing.B) { f.initial(b, "initial", "/sync") }
func (f *syncFixture) benchInitialTimeline1(b *testing.B) {
	f.initial(b, "initial_timeline1", "/sync?filter="+url.QueryEscape(timeline1))
}

// timeline1 is a filter of one timeline event per room.
const timeline1 = `{"room":{"timeline":{"limit":1}}}`

func (f *syncFixture) initial(b *testing.B, kind, path string) {
	var queries, size int64
	var lat []time.Duration
	for b.Loop() {
		q0 := f.queries.Load()
		t0 := time.Now()
		raw, err := f.get(path, f.alice)
		lat = append(lat, time.Since(t0))
		queries += f.queries.Load() - q0
		if err != nil {
			b.Fatal(err)
		}
		size += int64(len(raw))
	}
	f.report(b, kind, lat, queries, size, nil)
}

func (f *syncFixture) benchIncremental(b *testing.B) {
	var queries, size int64
	var lat []time.Duration
	for b.Loop() {
		b.StopTimer()
		id, err := f.sendNext()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		q0 := f.queries.Load()
		t0 := time.Now()
		raw, err := f.syncSince(f.since, 0)
		lat = append(lat, time.Since(t0))
		queries += f.queries.Load() - q0
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if !bytes.Contains(raw, []byte(id)) {
			b.Fatalf("incremental sync lacks %s: %.500s", id, raw)
		}
		if f.since, err = nextBatch(raw); err != nil {
			b.Fatal(err)
		}
		size += int64(len(raw))
		b.StartTimer()
	}
	f.report(b, "incremental", lat, queries, size, nil)
}

func (f *syncFixture) benchLongPoll(b *testing.B) {
	// Give the long-poll time to reach the server, run its first (empty)
	// read and start waiting before the message is sent.
	settle := max(5*time.Millisecond, 3*f.quiet)
	type answer struct {
		at  time.Time
		raw []byte
		err error
	}
	var queries, size int64
	var wake, sends []time.Duration
	for b.Loop() {
		b.StopTimer()
		done := make(chan answer, 1)
		since := f.since
		q0 := f.queries.Load()
		go func() {
			raw, err := f.syncSince(since, 30*time.Second)
			done <- answer{time.Now(), raw, err}
		}()
		time.Sleep(settle)
		b.StartTimer()
		t0 := time.Now()
		id, err := f.sendNext()
		sent := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		a := <-done
		b.StopTimer()
		if a.err != nil {
			b.Fatal(a.err)
		}
		if !bytes.Contains(a.raw, []byte(id)) {
			b.Fatalf("long-poll answer lacks %s: %.500s", id, a.raw)
		}
		wake = append(wake, a.at.Sub(t0))
		sends = append(sends, sent)
		// Both requests: the long-poll's two reads and the send.
		queries += f.queries.Load() - q0
		size += int64(len(a.raw))
		if f.since, err = nextBatch(a.raw); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	f.report(b, "longpoll_wake", wake, queries, size, sends)
}

// percentile returns the p-th percentile (nearest rank) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// syncResult is one sub-benchmark's figures, for the table printed at the
// end.
type syncResult struct {
	db, kind   string
	rooms      int
	ops        int
	mean, p50  time.Duration
	p99        time.Duration
	queries    float64
	respBytes  float64
	sendMedian time.Duration
}

var syncResults struct {
	mu   sync.Mutex
	rows []syncResult
}

// report reports the metrics of one sub-benchmark and keeps them for the
// table. sends, for longpoll_wake, are the sends' own latencies.
func (f *syncFixture) report(b *testing.B, kind string, lat []time.Duration, queries, size int64, sends []time.Duration) {
	n := len(lat)
	if n == 0 {
		return
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	r := syncResult{db: f.db, kind: kind, rooms: f.n, ops: n, mean: sum / time.Duration(n),
		p50: percentile(lat, 50), p99: percentile(lat, 99),
		queries: float64(queries) / float64(n), respBytes: float64(size) / float64(n)}
	b.ReportMetric(r.queries, "queries/op")
	b.ReportMetric(r.respBytes, "resp-B/op")
	if kind == "longpoll_wake" {
		slices.Sort(sends)
		r.sendMedian = percentile(sends, 50)
		b.ReportMetric(float64(r.p50.Microseconds()), "wake-p50-µs")
		b.ReportMetric(float64(r.p99.Microseconds()), "wake-p99-µs")
		b.ReportMetric(float64(r.sendMedian.Microseconds()), "send-p50-µs")
	} else {
		b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
	}
	syncResults.mu.Lock()
	syncResults.rows = append(syncResults.rows, r)
	syncResults.mu.Unlock()
}

// TestMain prints, after BenchmarkSync ran, a table of its figures: the
// median over -count runs of each.
func TestMain(m *testing.M) {
	code := m.Run()
	printSyncTable(os.Stdout)
	os.Exit(code)
}

func printSyncTable(w io.Writer) {
	syncResults.mu.Lock()
	defer syncResults.mu.Unlock()
	if len(syncResults.rows) == 0 {
		return
	}
	type key struct {
		db, kind string
		rooms    int
	}
	var keys []key
	runs := map[key][]syncResult{}
	for _, r := range syncResults.rows {
		k := key{r.db, r.kind, r.rooms}
		if runs[k] == nil {
			keys = append(keys, k)
		}
		runs[k] = append(runs[k], r)
	}
	median := func(rs []syncResult, f func(syncResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Fprintln(w, "\n/sync (medians over runs; times in ms)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "db\tsync\trooms\truns\tmean\tp50\tp99\tqueries/req\tresp KB\tsend p50\t")
	for _, k := range keys {
		rs := runs[k]
		send := "-"
		if k.kind == "longpoll_wake" {
			send = fmt.Sprintf("%.2f", median(rs, func(r syncResult) float64 { return ms(r.sendMedian) }))
		}
		db := strings.TrimSuffix(k.db, "3")
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%s\t\n", db, k.kind, k.rooms, len(rs),
			median(rs, func(r syncResult) float64 { return ms(r.mean) }),
			median(rs, func(r syncResult) float64 { return ms(r.p50) }),
			median(rs, func(r syncResult) float64 { return ms(r.p99) }),
			median(rs, func(r syncResult) float64 { return r.queries }),
			median(rs, func(r syncResult) float64 { return r.respBytes / 1024 }), send)
	}
	tw.Flush()
}
