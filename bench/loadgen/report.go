package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// latencySummary describes a set of request latencies. Percentiles use the
// nearest-rank method: pN is the smallest latency that at least N% of the
// requests did not exceed.
type latencySummary struct {
	Count int
	Min   time.Duration
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// summarize computes the summary; it does not modify lat.
func summarize(lat []time.Duration) latencySummary {
	if len(lat) == 0 {
		return latencySummary{}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return latencySummary{
		Count: len(s),
		Min:   s[0],
		Mean:  sum / time.Duration(len(s)),
		P50:   percentile(s, 50),
		P90:   percentile(s, 90),
		P99:   percentile(s, 99),
		Max:   s[len(s)-1],
	}
}

// percentile is the nearest-rank pct-th percentile of sorted (non-empty):
// the element of rank ceil(pct/100 × n), counting from 1. Integer
// arithmetic keeps 90% of 100 at rank 90 (in floating point 0.9×100 is
// not exactly 90).
func percentile(sorted []time.Duration, pct int) time.Duration {
	n := len(sorted)
	rank := (pct*n + 99) / 100
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 } // µs precision

func (l latencySummary) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Count int     `json:"count"`
		Min   float64 `json:"min"`
		Mean  float64 `json:"mean"`
		P50   float64 `json:"p50"`
		P90   float64 `json:"p90"`
		P99   float64 `json:"p99"`
		Max   float64 `json:"max"`
	}{l.Count, ms(l.Min), ms(l.Mean), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max)})
}

// report is the outcome of a run; its JSON form is what -json prints.
type report struct {
	URL      string     `json:"url"`
	Settings settings   `json:"settings"`
	Setup    setupStats `json:"setup"`

	// The measured window: from the end of the warm-up to the end of the
	// last measured request.
	WindowSeconds  float64          `json:"window_seconds"`
	Sends          int64            `json:"sends"` // 200 answers
	SendsPerSecond float64          `json:"sends_per_second"`
	LatencyMS      latencySummary   `json:"latency_ms"` // of the 200 answers
	Errors         int64            `json:"errors"`
	ErrorsByKind   map[string]int64 `json:"errors_by_kind"`
	RateLimited    int64            `json:"rate_limited"` // 429 answers, each waited out and retried
	Warmup         warmupStats      `json:"warmup"`

	Server  *serverStats  `json:"server,omitempty"`  // with -pid
	Loadgen *loadgenStats `json:"loadgen,omitempty"` // this process, on Linux

	Interrupted bool   `json:"interrupted,omitempty"`
	Aborted     string `json:"aborted,omitempty"`
}

type settings struct {
	Users           int     `json:"users"`
	Rooms           int     `json:"rooms"`
	Clients         int     `json:"clients"`
	BodySize        int     `json:"body_size"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	Messages        int     `json:"messages,omitempty"`
	TimeoutSeconds  float64 `json:"timeout_seconds"`
	Prefix          string  `json:"prefix"`
}

type setupStats struct {
	RegisterSeconds float64 `json:"register_seconds"`
	RoomsSeconds    float64 `json:"rooms_seconds"` // createRoom and joins
	Joins           int     `json:"joins"`
	RateLimited     int64   `json:"rate_limited"`
}

type warmupStats struct {
	Sends       int64 `json:"sends"`
	Errors      int64 `json:"errors"`
	RateLimited int64 `json:"rate_limited"`
}

type serverStats struct {
	PID              int     `json:"pid"`
	CPUSeconds       float64 `json:"cpu_seconds"`         // user+sys over the measured window
	CPUPercentOfCore float64 `json:"cpu_percent_of_core"` // 100 = one core busy
	PeakRSSBytes     int64   `json:"peak_rss_bytes"`      // VmHWM: since the process started
	EndRSSBytes      int64   `json:"end_rss_bytes"`       // VmRSS at the end
}

type loadgenStats struct {
	CPUSeconds       float64 `json:"cpu_seconds"`
	CPUPercentOfCore float64 `json:"cpu_percent_of_core"`
}

func newReport(cfg config) *report {
	return &report{
		URL: cfg.URL,
		Settings: settings{
			Users: cfg.Users, Rooms: cfg.Rooms, Clients: cfg.Clients, BodySize: cfg.BodySize,
			WarmupSeconds:   cfg.Warmup.Seconds(),
			DurationSeconds: cfg.Duration.Seconds(),
			Messages:        cfg.Messages,
			TimeoutSeconds:  cfg.Timeout.Seconds(),
			Prefix:          cfg.Prefix,
		},
		ErrorsByKind: map[string]int64{},
	}
}

// cpuUse is the CPU time between two samples and its share of one core.
func cpuUse(start, end procSample) (seconds, percent float64) {
	seconds = (end.cpu - start.cpu).Seconds()
	if wall := end.at.Sub(start.at).Seconds(); wall > 0 {
		percent = 100 * seconds / wall
	}
	return seconds, percent
}

func (r *report) setServer(pid int, start, end procSample, hwm, rss int64) {
	s, p := cpuUse(start, end)
	r.Server = &serverStats{PID: pid, CPUSeconds: s, CPUPercentOfCore: p, PeakRSSBytes: hwm, EndRSSBytes: rss}
}

func (r *report) setLoadgen(start, end procSample) {
	s, p := cpuUse(start, end)
	r.Loadgen = &loadgenStats{CPUSeconds: s, CPUPercentOfCore: p}
}

// addMeasurement folds the clients' tallies into the report.
func (r *report) addMeasurement(m *measurement) {
	var lat []time.Duration
	var last time.Time
	for i := range m.stats {
		st := &m.stats[i]
		lat = append(lat, st.latencies...)
		r.Sends += st.ok
		r.RateLimited += st.rateLimited
		for k, n := range st.errors {
			r.ErrorsByKind[k] += n
			r.Errors += n
		}
		r.Warmup.Sends += st.warmupOK
		r.Warmup.Errors += st.warmupErrors
		r.Warmup.RateLimited += st.warmupRateLimited
		if st.lastDone.After(last) {
			last = st.lastDone
		}
	}
	r.LatencyMS = summarize(lat)
	if !last.IsZero() {
		r.WindowSeconds = last.Sub(m.warmupEnd).Seconds()
	}
	if r.WindowSeconds > 0 {
		r.SendsPerSecond = float64(r.Sends) / r.WindowSeconds
	}
	r.Aborted = m.abortReason
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (r *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, a...)...) }
	s := r.Settings
	fmt.Fprintf(tw, "loadgen results for %s\n", r.URL)
	row("clients", "%d, as %d users in %d rooms (%s), %d-byte bodies", s.Clients, s.Users, s.Rooms, clientsPerRoom(s.Clients, s.Rooms), s.BodySize)
	if s.Messages > 0 {
		row("run", "%d messages after a %gs warm-up; request timeout %gs", s.Messages, s.WarmupSeconds, s.TimeoutSeconds)
	} else {
		row("run", "%gs after a %gs warm-up; request timeout %gs", s.DurationSeconds, s.WarmupSeconds, s.TimeoutSeconds)
	}
	row("setup", "%d users in %.1fs; %d rooms and %d joins in %.1fs; %d rate-limited (429)",
		s.Users, r.Setup.RegisterSeconds, s.Rooms, r.Setup.Joins, r.Setup.RoomsSeconds, r.Setup.RateLimited)
	row("warm-up", "%d sends, %d errors, %d rate-limited (not counted below)", r.Warmup.Sends, r.Warmup.Errors, r.Warmup.RateLimited)
	row("window", "%.2fs", r.WindowSeconds)
	row("sends", "%d (200 OK)", r.Sends)
	row("throughput", "%.1f sends/s", r.SendsPerSecond)
	l := r.LatencyMS
	for _, p := range []struct {
		k string
		d time.Duration
	}{{"latency p50", l.P50}, {"latency p90", l.P90}, {"latency p99", l.P99}, {"latency max", l.Max}, {"latency mean", l.Mean}} {
		row(p.k, "%.2f ms", ms(p.d))
	}
	row("errors", "%d", r.Errors)
	for _, k := range slices.Sorted(maps.Keys(r.ErrorsByKind)) {
		row("", "%d × %s", r.ErrorsByKind[k], k)
	}
	row("rate-limited", "%d (429, waited out and retried)", r.RateLimited)
	if r.Server != nil {
		row("server CPU", "%.2fs user+sys, %.1f%% of one core (pid %d)", r.Server.CPUSeconds, r.Server.CPUPercentOfCore, r.Server.PID)
		row("server RSS", "peak %s (VmHWM, since the process started); %s at the end", mib(r.Server.PeakRSSBytes), mib(r.Server.EndRSSBytes))
	} else {
		row("server CPU", "not measured (no -pid)")
	}
	if r.Loadgen != nil {
		row("loadgen CPU", "%.2fs, %.1f%% of one core", r.Loadgen.CPUSeconds, r.Loadgen.CPUPercentOfCore)
	}
	if r.RateLimited > 0 || r.Setup.RateLimited > 0 || r.Warmup.RateLimited > 0 {
		row("WARNING", "the server rate-limited the benchmark: raise its limits (bench/README.md)")
	}
	if r.Aborted != "" {
		row("ABORTED", "%s", r.Aborted)
	}
	if r.Interrupted {
		row("INTERRUPTED", "the results cover the time until the interrupt")
	}
	tw.Flush()
}

func clientsPerRoom(clients, rooms int) string {
	if clients <= rooms {
		if clients == rooms {
			return "one room per client"
		}
		return fmt.Sprintf("one room per client, %d rooms without a sender", rooms-clients)
	}
	lo, hi := clients/rooms, (clients+rooms-1)/rooms
	if lo == hi {
		return fmt.Sprintf("%d clients per room", lo)
	}
	return fmt.Sprintf("%d–%d clients per room", lo, hi)
}
