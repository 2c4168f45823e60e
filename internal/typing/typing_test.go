package typing

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// harness drives a tracker on a fake clock whose timer fires only when the
// test advances the clock past it.
type harness struct {
	now   time.Time
	armed bool
	at    time.Time     // when the armed timer fires
	delay time.Duration // the delay it was last set to
	woken []string
	tr    *Tracker
}

func newHarness() *harness {
	h := &harness{now: time.Unix(1_700_000_000, 0)}
	h.tr = newTracker(func(r string) { h.woken = append(h.woken, r) }, func() time.Time { return h.now },
		func(d time.Duration, f func()) timer {
			ft := (*fakeTimer)(h)
			ft.Reset(d)
			return ft
		})
	return h
}

type fakeTimer harness

func (f *fakeTimer) Reset(d time.Duration) bool {
	f.armed, f.at, f.delay = true, f.now.Add(d), d
	return true
}

func (f *fakeTimer) Stop() bool {
	was := f.armed
	f.armed = false
	return was
}

// advance moves the clock and fires the timer if it is due (fire may set
// it again, for a time already passed).
func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	for h.armed && !h.at.After(h.now) {
		h.armed = false
		h.tr.fire()
	}
}

type op struct {
	kind       string // "start", "stop" or "wait"
	room, user string
	d          time.Duration // the timeout of start, the time a wait lets pass
}

func start(room, user string, timeout time.Duration) op { return op{"start", room, user, timeout} }
func stop(room, user string) op                         { return op{"stop", room, user, 0} }
func wait(d time.Duration) op                           { return op{"wait", "", "", d} }

var allRooms = []string{"!r1:hs", "!r2:hs", "!r3:hs"}

func TestTypingTracker(t *testing.T) {
	for _, c := range []struct {
		name      string
		ops       []op
		wantPos   int64
		wantWoken []string
		wantNow   map[string][]string // Since(allRooms, 0)
	}{
		{"nothing", nil, 0, nil, map[string][]string{}},
		{"start", []op{start("!r1:hs", "@a:hs", 30*time.Second)},
			1, []string{"!r1:hs"}, map[string][]string{"!r1:hs": {"@a:hs"}}},
		{"users sorted", []op{start("!r1:hs", "@b:hs", time.Minute), start("!r1:hs", "@a:hs", time.Minute)},
			2, []string{"!r1:hs", "!r1:hs"}, map[string][]string{"!r1:hs": {"@a:hs", "@b:hs"}}},
		{"rooms apart", []op{start("!r1:hs", "@a:hs", time.Minute), start("!r2:hs", "@a:hs", time.Minute)},
			2, []string{"!r1:hs", "!r2:hs"}, map[string][]string{"!r1:hs": {"@a:hs"}, "!r2:hs": {"@a:hs"}}},
		// Synapse: starting again only moves the expiry, without a change.
		{"start again", []op{start("!r1:hs", "@a:hs", 10*time.Second), wait(5 * time.Second),
			start("!r1:hs", "@a:hs", 10*time.Second), wait(8 * time.Second)},
			1, []string{"!r1:hs"}, map[string][]string{"!r1:hs": {"@a:hs"}}},
		{"stop", []op{start("!r1:hs", "@a:hs", time.Minute), stop("!r1:hs", "@a:hs")},
			2, []string{"!r1:hs", "!r1:hs"}, map[string][]string{}},
		{"stop while not typing", []op{stop("!r1:hs", "@a:hs"), start("!r1:hs", "@b:hs", time.Minute), stop("!r1:hs", "@a:hs")},
			1, []string{"!r1:hs"}, map[string][]string{"!r1:hs": {"@b:hs"}}},
		{"expiry", []op{start("!r1:hs", "@a:hs", 10*time.Second), start("!r1:hs", "@b:hs", 20*time.Second), wait(10 * time.Second)},
			3, []string{"!r1:hs", "!r1:hs", "!r1:hs"}, map[string][]string{"!r1:hs": {"@b:hs"}}},
		{"expiry of all", []op{start("!r1:hs", "@a:hs", 10*time.Second), start("!r1:hs", "@b:hs", 20*time.Second), wait(10 * time.Second), wait(10 * time.Second)},
			4, []string{"!r1:hs", "!r1:hs", "!r1:hs", "!r1:hs"}, map[string][]string{}},
		{"not before the timeout", []op{start("!r1:hs", "@a:hs", 10*time.Second), wait(10*time.Second - time.Millisecond)},
			1, []string{"!r1:hs"}, map[string][]string{"!r1:hs": {"@a:hs"}}},
		{"expiry in several rooms at once", []op{start("!r2:hs", "@b:hs", 5*time.Second), start("!r1:hs", "@a:hs", 5*time.Second), wait(time.Minute)},
			4, []string{"!r2:hs", "!r1:hs", "!r1:hs", "!r2:hs"}, map[string][]string{}},
		// Synapse takes a zero or negative timeout: typing, then expired
		// at once.
		{"zero timeout", []op{start("!r1:hs", "@a:hs", 0), wait(0)},
			2, []string{"!r1:hs", "!r1:hs"}, map[string][]string{}},
		{"negative timeout", []op{start("!r1:hs", "@a:hs", -time.Second), wait(0)},
			2, []string{"!r1:hs", "!r1:hs"}, map[string][]string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness()
			for _, o := range c.ops {
				switch o.kind {
				case "start":
					h.tr.Set(o.room, o.user, true, o.d)
				case "stop":
					h.tr.Set(o.room, o.user, false, 0)
				case "wait":
					h.advance(o.d)
				}
			}
			if p := h.tr.Pos(); p != c.wantPos {
				t.Errorf("Pos = %d, want %d", p, c.wantPos)
			}
			if !reflect.DeepEqual(h.woken, c.wantWoken) {
				t.Errorf("woken %v, want %v", h.woken, c.wantWoken)
			}
			if got := h.tr.Since(allRooms, 0); !reflect.DeepEqual(got, c.wantNow) {
				t.Errorf("Since(0) = %v, want %v", got, c.wantNow)
			}
		})
	}
}

func TestTypingSince(t *testing.T) {
	h := newHarness()
	h.tr.Set("!r1:hs", "@a:hs", true, time.Minute)
	p1 := h.tr.Pos()
	h.tr.Set("!r2:hs", "@b:hs", true, time.Minute)
	p2 := h.tr.Pos()
	h.tr.Set("!r1:hs", "@a:hs", false, 0)
	p3 := h.tr.Pos()
	for _, c := range []struct {
		name  string
		rooms []string
		since int64
		want  map[string][]string
	}{
		{"initial: who types now", allRooms, 0, map[string][]string{"!r2:hs": {"@b:hs"}}},
		{"a stop is an empty list", allRooms, p1, map[string][]string{"!r1:hs": {}, "!r2:hs": {"@b:hs"}}},
		{"only changes after since", allRooms, p2, map[string][]string{"!r1:hs": {}}},
		{"nothing new", allRooms, p3, map[string][]string{}},
		{"only the rooms asked", []string{"!r2:hs"}, p1, map[string][]string{"!r2:hs": {"@b:hs"}}},
		{"no rooms", nil, 0, map[string][]string{}},
		// Positions restart with the process: a later one is from an
		// earlier process, so the answer is the initial one.
		{"from an earlier process", allRooms, p3 + 100, map[string][]string{"!r2:hs": {"@b:hs"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := h.tr.Since(c.rooms, c.since)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Since(%v, %d) = %v, want %v", c.rooms, c.since, got, c.want)
			}
			for r, users := range got {
				if users == nil {
					t.Errorf("room %s: nil list, want empty", r)
				}
			}
		})
	}
}

// TestTypingTimer: one timer, set for the earliest expiry.
func TestTypingTimer(t *testing.T) {
	h := newHarness()
	expect := func(what string, armed bool, delay time.Duration) {
		t.Helper()
		if h.armed != armed || (armed && h.delay != delay) {
			t.Errorf("%s: timer armed %v for %v, want armed %v for %v", what, h.armed, h.delay, armed, delay)
		}
	}
	h.tr.Set("!r1:hs", "@a:hs", true, 30*time.Second)
	expect("first", true, 30*time.Second)
	h.tr.Set("!r1:hs", "@b:hs", true, 10*time.Second)
	expect("earlier", true, 10*time.Second)
	h.tr.Set("!r2:hs", "@c:hs", true, 20*time.Second)
	expect("later", true, 10*time.Second)
	h.advance(10 * time.Second)
	expect("after b expired", true, 10*time.Second)
	h.tr.Set("!r2:hs", "@c:hs", false, 0)
	h.advance(10 * time.Second) // nothing to expire: set again for a
	expect("after nothing expired", true, 10*time.Second)
	if p := h.tr.Pos(); p != 5 {
		t.Errorf("Pos = %d, want 5", p)
	}
	h.advance(10 * time.Second)
	expect("after everyone expired", false, 0)
	if got := h.tr.Since(allRooms, 0); len(got) != 0 {
		t.Errorf("Since(0) = %v", got)
	}
}

func TestTypingClose(t *testing.T) {
	h := newHarness()
	h.tr.Set("!r1:hs", "@a:hs", true, time.Minute)
	h.tr.Close()
	if h.armed {
		t.Error("the timer still runs after Close")
	}
	h.tr.Set("!r1:hs", "@b:hs", true, time.Minute)
	h.tr.Set("!r1:hs", "@a:hs", false, 0)
	h.tr.fire()
	if p := h.tr.Pos(); p != 1 || len(h.woken) != 1 {
		t.Errorf("after Close: Pos %d, woken %v; want 1 and one wake", p, h.woken)
	}
	if got := h.tr.Since(allRooms, 0); !reflect.DeepEqual(got, map[string][]string{"!r1:hs": {"@a:hs"}}) {
		t.Errorf("Since after Close = %v", got)
	}
	h.tr.Close() // twice is fine
}

// TestTypingRealClock: with the real timer, typing expires by itself and wakes
// the room.
func TestTypingRealClock(t *testing.T) {
	woken := make(chan string, 10)
	tr := New(func(r string) { woken <- r })
	defer tr.Close()
	tr.Set("!r1:hs", "@a:hs", true, 20*time.Millisecond)
	for i, what := range []string{"start", "expiry"} {
		select {
		case r := <-woken:
			if r != "!r1:hs" {
				t.Fatalf("%s woke %s", what, r)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake for the %s (%d)", what, i)
		}
	}
	if p := tr.Pos(); p != 2 {
		t.Errorf("Pos = %d, want 2", p)
	}
	if got := tr.Since(allRooms, 1); !reflect.DeepEqual(got, map[string][]string{"!r1:hs": {}}) {
		t.Errorf("Since(1) = %v", got)
	}
}

// TestTypingConcurrent is for the race detector.
func TestTypingConcurrent(t *testing.T) {
	var mu sync.Mutex
	wakes := 0
	tr := New(func(string) { mu.Lock(); wakes++; mu.Unlock() })
	defer tr.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := fmt.Sprintf("!r%d:hs", i%3)
			for j := range 200 {
				user := fmt.Sprintf("@u%d:hs", j%5)
				tr.Set(room, user, j%3 != 0, time.Duration(j%4)*time.Millisecond)
				tr.Since(allRooms, tr.Pos()-3)
			}
		}()
	}
	wg.Wait()
	if tr.Pos() == 0 {
		t.Error("no change recorded")
	}
}
