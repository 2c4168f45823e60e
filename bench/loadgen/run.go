package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// setupWorkers bounds the concurrent setup requests (registration hashes a
// password on the server, so more would mostly queue there).
const setupWorkers = 16

// failWindow: the run stops once at least failLimit sends in a row failed
// and none succeeded for this long.
const failWindow = 2 * time.Second

// progressEvery is how often a progress line is logged while sending.
const progressEvery = 5 * time.Second

// run sets up users and rooms, sends messages, and returns the results. The
// report is nil only if the setup failed; an aborted or interrupted run
// returns what it measured together with an error saying why it stopped.
func run(ctx context.Context, cfg config, log io.Writer) (*report, error) {
	rep := newReport(cfg)
	var server, self *procReader
	if cfg.PID > 0 {
		server = &procReader{pid: fmt.Sprint(cfg.PID)}
		if _, err := server.cpu(); err != nil {
			return nil, fmt.Errorf("-pid %d: %w", cfg.PID, err)
		}
	}
	if r := (&procReader{pid: "self"}); r.available() {
		self = r
	}

	hs := newHomeserver(cfg.URL, max(cfg.Clients, setupWorkers), cfg.Timeout, log)
	defer hs.close()
	p := plan{users: cfg.Users, rooms: cfg.Rooms, clients: cfg.Clients}

	// Setup: users, rooms, joins. Not measured.
	t0 := time.Now()
	password := randomHex(12)
	users := make([]user, cfg.Users)
	err := parallel(ctx, cfg.Users, setupWorkers, func(ctx context.Context, i int) error {
		u, err := hs.register(ctx, cfg.Secret, fmt.Sprintf("%s%d", cfg.Prefix, i), password)
		users[i] = u
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("registering users: %w", err)
	}
	rep.Setup.RegisterSeconds = time.Since(t0).Seconds()
	fmt.Fprintf(log, "loadgen: registered %d users (%s0 … %s%d) in %.1fs\n",
		cfg.Users, cfg.Prefix, cfg.Prefix, cfg.Users-1, rep.Setup.RegisterSeconds)

	t0 = time.Now()
	roomIDs := make([]string, cfg.Rooms)
	err = parallel(ctx, cfg.Rooms, setupWorkers, func(ctx context.Context, r int) error {
		id, err := hs.createRoom(ctx, users[p.creator(r)].Token)
		roomIDs[r] = id
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating rooms: %w", err)
	}
	joins := p.joins()
	err = parallel(ctx, len(joins), setupWorkers, func(ctx context.Context, i int) error {
		u, r := joins[i][0], joins[i][1]
		if err := hs.join(ctx, users[u].Token, roomIDs[r]); err != nil {
			return fmt.Errorf("%s joining %s: %w", users[u].Localpart, roomIDs[r], err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("joining rooms: %w", err)
	}
	rep.Setup.Joins = len(joins)
	rep.Setup.RoomsSeconds = time.Since(t0).Seconds()
	rep.Setup.RateLimited = hs.setup429.Load()
	fmt.Fprintf(log, "loadgen: created %d rooms and made %d joins in %.1fs\n", cfg.Rooms, len(joins), rep.Setup.RoomsSeconds)

	// Measurement.
	m := &measurement{
		cfg: cfg, hs: hs, plan: p, users: users, roomIDs: roomIDs,
		runID:     randomHex(4),
		stop:      make(chan struct{}),
		failLimit: int64(max(100, 2*cfg.Clients)),
		stats:     make([]clientStats, cfg.Clients),
	}
	m.remaining.Store(int64(cfg.Messages))
	start := time.Now()
	m.lastOK.Store(start.UnixNano())
	m.warmupEnd = start.Add(cfg.Warmup)
	m.measureEnd = m.warmupEnd.Add(cfg.Duration)
	if cfg.Messages > 0 {
		fmt.Fprintf(log, "loadgen: sending: %s warm-up, then %d messages from %d clients\n", cfg.Warmup, cfg.Messages, cfg.Clients)
	} else {
		fmt.Fprintf(log, "loadgen: sending: %s warm-up, then %s measured, from %d clients\n", cfg.Warmup, cfg.Duration, cfg.Clients)
	}

	var (
		serverStart, selfStart procSample
		sampled                bool
		interrupted            bool
	)
	warmupC := time.After(cfg.Warmup)
	var endC <-chan time.Time
	if cfg.Warmup == 0 {
		// Measuring from the start: sample now, as a short -messages run
		// may end before a timer would be served.
		warmupC, sampled = nil, true
		serverStart, _ = server.sample()
		selfStart, _ = self.sample()
		if cfg.Messages == 0 {
			endC = time.After(cfg.Duration)
		}
	}

	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.client(ctx, c)
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	ctxDone := ctx.Done()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
loop:
	for {
		select {
		case <-warmupC:
			warmupC = nil
			sampled = true
			serverStart, _ = server.sample()
			selfStart, _ = self.sample()
			if cfg.Messages == 0 {
				endC = time.After(time.Until(m.measureEnd))
			}
		case <-endC:
			endC = nil
			m.halt("")
		case <-ctxDone:
			ctxDone = nil
			interrupted = true
			m.halt("")
		case now := <-tick.C:
			fmt.Fprintf(log, "loadgen: %4.0fs: %d sent, %d errors, %d rate-limited (429)\n",
				now.Sub(start).Seconds(), m.totalOK.Load(), m.totalErr.Load(), m.total429.Load())
		case <-allDone:
			break loop
		}
	}
	if sampled {
		if server != nil {
			end, err := server.sample()
			var hwm, rss int64
			if err == nil {
				hwm, rss, err = server.memory()
			}
			if err == nil {
				rep.setServer(cfg.PID, serverStart, end, hwm, rss)
			} else {
				fmt.Fprintf(log, "loadgen: reading the server's /proc entry at the end: %v\n", err)
			}
		}
		if end, err := self.sample(); err == nil {
			rep.setLoadgen(selfStart, end)
		}
	}
	rep.addMeasurement(m)
	rep.Interrupted = interrupted
	switch {
	case m.abortReason != "":
		return rep, errors.New(m.abortReason)
	case interrupted:
		return rep, errors.New("interrupted; the results cover the time until then")
	}
	return rep, nil
}

// measurement is the shared state of the sending clients.
type measurement struct {
	cfg     config
	hs      *homeserver
	plan    plan
	users   []user
	roomIDs []string
	runID   string

	warmupEnd  time.Time // sends started from here on are measured
	measureEnd time.Time // duration mode: no send starts after this
	remaining  atomic.Int64

	stop        chan struct{}
	stopOnce    sync.Once
	abortReason string // set before stop is closed

	failLimit  int64
	consecFail atomic.Int64 // failures since the last success, over all clients
	lastOK     atomic.Int64 // time of the last success (UnixNano); starts at the first send
	totalOK    atomic.Int64 // for progress lines: all phases
	totalErr   atomic.Int64
	total429   atomic.Int64

	stats []clientStats // one per client, written by that client only
}

// clientStats is one client's tally. Fields without "warmup" cover the
// measured window only.
type clientStats struct {
	latencies   []time.Duration // of each 200 answer
	ok          int64
	rateLimited int64
	errors      map[string]int64
	lastDone    time.Time // end of the last measured request

	warmupOK, warmupRateLimited, warmupErrors int64
}

// halt stops all clients; a non-empty reason marks the run as aborted.
func (m *measurement) halt(reason string) {
	m.stopOnce.Do(func() {
		m.abortReason = reason
		close(m.stop)
	})
}

func (m *measurement) stopped() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// sleep waits d, or less if the run stops; it reports whether to go on.
func (m *measurement) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-m.stop:
		return false
	}
}

// client sends messages until the measured window or message budget ends.
func (m *measurement) client(ctx context.Context, c int) {
	st := &m.stats[c]
	st.errors = make(map[string]int64)
	token := m.users[m.plan.clientUser(c)].Token
	roomID := m.roomIDs[m.plan.clientRoom(c)]
	body := messageBody(m.cfg.BodySize)
	for seq := 0; ; seq++ {
		if m.stopped() {
			return
		}
		now := time.Now()
		measured := !now.Before(m.warmupEnd)
		if measured {
			if m.cfg.Messages > 0 {
				if m.remaining.Add(-1) < 0 {
					return
				}
			} else if !now.Before(m.measureEnd) {
				return
			}
		}
		// Unique per access token (clients may share a user) and per run.
		path := sendPath(roomID, fmt.Sprintf("lg%s.%d.%d", m.runID, c, seq))
		for {
			t0 := time.Now()
			_, err := m.hs.do(ctx, http.MethodPut, path, token, body)
			t1 := time.Now()
			if ctx.Err() != nil {
				return // interrupted: not the server's failure
			}
			if err == nil {
				m.consecFail.Store(0)
				m.lastOK.Store(t1.UnixNano())
				m.totalOK.Add(1)
				if measured {
					st.ok++
					st.latencies = append(st.latencies, t1.Sub(t0))
					st.lastDone = t1
				} else {
					st.warmupOK++
				}
				break
			}
			var me *matrixError
			if errors.As(err, &me) && me.Status == http.StatusTooManyRequests {
				m.total429.Add(1)
				if measured {
					st.rateLimited++
				} else {
					st.warmupRateLimited++
				}
				if !m.sleep(retryDelay(me)) {
					return
				}
				continue // same transaction ID: a retry of the same message
			}
			m.totalErr.Add(1)
			kind := errKind(err)
			if measured {
				st.errors[kind]++
				st.lastDone = t1
			} else {
				st.warmupErrors++
			}
			// Everything failing (a broken setup, a dead server) stops the
			// run; some failures among successes do not.
			if n := m.consecFail.Add(1); n >= m.failLimit && t1.Sub(time.Unix(0, m.lastOK.Load())) >= failWindow {
				m.halt(fmt.Sprintf("stopped early: %d sends in a row failed and none succeeded for %s (last: %v)", n, failWindow, err))
			}
			break
		}
	}
}
