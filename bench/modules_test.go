package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/modhost"
	"github.com/sluice-im/sluice/internal/mx/mxtest"
	"github.com/sluice-im/sluice/internal/testserver"
	"github.com/sluice-im/sluice/internal/wasmtest"
	"gopkg.in/yaml.v3"

	_ "github.com/sluice-im/sluice/modules/standard"
)

// moduleKinds are the spam checkers the module benchmarks compare: none,
// one Go module, one wasm module and one HTTP module on loopback, each
// answering check_event_for_spam with "allow" for an ordinary message
// after looking at it (the sender against a list; the body against a word
// list; a POST to a policy server answering 200 {}).
func moduleKinds(b *testing.B) []struct{ name, entries string } {
	policy := policyServer(b)
	wasm := wasmtest.Build(b, wasmtest.WordFilter)
	return []struct{ name, entries string }{
		{"none", ""},
		{"native", "  - module: example.ListSpamChecker\n    config: {evil_users: ['@evil:bench', '@worse:bench']}\n"},
		{"wasm", "  - module: wasm\n    config: {path: " + wasm + ", config: {words: [viagra, free bitcoin, casino]}}\n"},
		{"http", "  - module: antispam.http\n    config: {base_url: '" + policy.URL + "/antispam', enabled_callbacks: [check_event_for_spam]}\n"},
	}
}

// policyServer is a policy server on loopback that allows everything.
func policyServer(b *testing.B) *httptest.Server {
	policy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	}))
	b.Cleanup(policy.Close)
	return policy
}

// BenchmarkLoopbackRoundTrip is the reference for the HTTP module: one
// bare POST of a check_event_for_spam-sized JSON body to a loopback server
// answering 200 {}, over a kept-alive connection, with no module around it.
func BenchmarkLoopbackRoundTrip(b *testing.B) {
	policy := policyServer(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	body := strings.Repeat("x", 700)
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		resp, err := client.Post(policy.URL+"/antispam/check_event_for_spam", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// reportPercentiles adds p50 and p99 (µs) of per-iteration durations.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(q*float64(len(d))+0.5) - 1
		i = max(0, min(i, len(d)-1))
		return float64(d[i].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkCheckEventForSpam is the cost one module adds to a message
// send: the host asking check_event_for_spam of a real event through the
// module chain (deadline, panic isolation, metrics included), with no
// module, one Go module, one wasm module and one HTTP module on loopback.
func BenchmarkCheckEventForSpam(b *testing.B) {
	room := mxtest.NewRoom(b, "10")
	ev := room.Build(mxtest.Spec{Type: "m.room.message", Sender: "@alice:test.local",
		Content: map[string]any{"msgtype": "m.text", "body": "Hello there, this is an ordinary message of ordinary length."}})
	for _, k := range moduleKinds(b) {
		b.Run(k.name, func(b *testing.B) {
			var doc struct {
				Modules []config.Module `yaml:"modules"`
			}
			if err := yaml.Unmarshal([]byte("modules:\n"+k.entries), &doc); err != nil {
				b.Fatal(err)
			}
			h := modhost.New(modhost.Options{ServerName: "bench", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err := h.Load(context.Background(), doc.Modules, nil); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { h.Close(context.Background()) })
			ctx := context.Background()
			// Warm up: the first calls start instances and connections.
			for range 100 {
				if d, err := h.CheckEventForSpam(ctx, ev); err != nil || !d.Allowed() {
					b.Fatalf("decision %v, err %v", d, err)
				}
			}
			lat := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				d, err := h.CheckEventForSpam(ctx, ev)
				lat = append(lat, time.Since(start))
				if err != nil || !d.Allowed() {
					b.Fatalf("decision %v, err %v", d, err)
				}
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkSendWithModule is a whole message send (PUT .../send over
// loopback HTTP, SQLite with full durability) from one client, with each
// kind of module. The difference to "none" is what a module adds to the
// send; the send itself (an fsync per batch) dominates and varies more
// than a module's cost, so compare medians over -count runs.
func BenchmarkSendWithModule(b *testing.B) {
	for _, k := range moduleKinds(b) {
		b.Run(k.name, func(b *testing.B) {
			yaml := "enable_registration: true\nenable_registration_without_verification: true\n"
			if k.entries != "" {
				yaml += "modules:\n" + k.entries
			}
			s := testserver.Start(b, testserver.Options{YAML: yaml})
			_, tok := s.Register(b, "bench", "pw")
			room := s.Do(b, "POST", "/_matrix/client/v3/createRoom", map[string]any{}, tok).Expect(b, 200, "").Str("room_id")
			body := map[string]any{"msgtype": "m.text", "body": "Hello there, this is an ordinary message of ordinary length."}
			lat := make([]time.Duration, 0, 4096)
			i := 0
			b.ResetTimer()
			for b.Loop() {
				i++
				start := time.Now()
				s.Do(b, "PUT", fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/t%d", room, i), body, tok).Expect(b, 200, "")
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}
