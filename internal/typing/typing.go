// Package typing tracks who is typing in which room: in memory only, as in
// Synapse (typing notifications are not persisted and do not survive a
// restart), on a stream position /sync compares tokens against.
package typing

import (
	"slices"
	"sync"
	"time"
)

// Tracker is the typing state of every room. It is safe for concurrent use.
type Tracker struct {
	wake      func(roomID string)
	now       func() time.Time
	afterFunc func(d time.Duration, f func()) timer

	mu    sync.Mutex
	pos   int64
	rooms map[string]*room
	// One timer for every user: it fires at the earliest expiry (due) and
	// is then set again for the next one.
	timer  timer
	due    time.Time // zero: not set
	closed bool
}

// room is one room's typing set. A room stays in the map once someone has
// typed in it, so that Since can still report that they stopped; that is
// one small entry per room, like Synapse's per-room serials.
type room struct {
	until   map[string]time.Time // typing user -> when their typing expires
	changed int64                // position of the set's last change
}

// timer is the part of *time.Timer the tracker uses (tests replace it).
type timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// New makes a tracker. wake (which may be nil) is called, outside the
// tracker's lock, whenever a room's typing set changes, including when a
// user's typing expires.
func New(wake func(roomID string)) *Tracker {
	return newTracker(wake, time.Now, func(d time.Duration, f func()) timer { return time.AfterFunc(d, f) })
}

func newTracker(wake func(string), now func() time.Time, afterFunc func(time.Duration, func()) timer) *Tracker {
	return &Tracker{wake: wake, now: now, afterFunc: afterFunc, rooms: map[string]*room{}}
}

// Set records that a user started (typing true) or stopped typing in a
// room. Typing expires after timeout unless set again; setting it again
// only moves the expiry (no change, as in Synapse). Stopping a user who is
// not typing changes nothing. Set after Close does nothing.
func (t *Tracker) Set(roomID, userID string, typing bool, timeout time.Duration) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	changed := false
	r := t.rooms[roomID]
	if typing {
		if r == nil {
			r = &room{until: map[string]time.Time{}}
			t.rooms[roomID] = r
		}
		_, was := r.until[userID]
		until := t.now().Add(timeout)
		r.until[userID] = until
		if !was {
			t.changedLocked(r)
			changed = true
		}
		t.scheduleLocked(until)
	} else if r != nil {
		if _, ok := r.until[userID]; ok {
			delete(r.until, userID)
			t.changedLocked(r)
			changed = true
		}
	}
	t.mu.Unlock()
	if changed && t.wake != nil {
		t.wake(roomID)
	}
}

// Pos is the typing stream's position: it increases on every change of any
// room's typing set, and starts at 0 with the process.
func (t *Tracker) Pos() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos
}

// Since returns, for each of roomIDs whose typing set changed after
// position since, the users typing now, sorted; an empty (not nil) list
// means that everyone stopped. With since 0 it returns the rooms where
// someone is typing now. A since beyond Pos comes from a token of an
// earlier process (positions restart with it) and counts as 0.
func (t *Tracker) Since(roomIDs []string, since int64) map[string][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if since > t.pos {
		since = 0
	}
	out := map[string][]string{}
	for _, id := range roomIDs {
		r := t.rooms[id]
		if r == nil || r.changed <= since || (since == 0 && len(r.until) == 0) {
			continue
		}
		users := make([]string, 0, len(r.until))
		for u := range r.until {
			users = append(users, u)
		}
		slices.Sort(users)
		out[id] = users
	}
	return out
}

// Close stops the expiry timer; Set does nothing afterwards.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.timer != nil {
		t.timer.Stop()
	}
	t.due = time.Time{}
}

func (t *Tracker) changedLocked(r *room) {
	t.pos++
	r.changed = t.pos
}

// scheduleLocked makes the timer fire by until.
func (t *Tracker) scheduleLocked(until time.Time) {
	if !t.due.IsZero() && !until.Before(t.due) {
		return
	}
	t.due = until
	d := until.Sub(t.now())
	if t.timer == nil {
		t.timer = t.afterFunc(d, t.fire)
		return
	}
	t.timer.Reset(d)
}

// fire expires the users whose typing timed out and sets the timer for
// the next expiry.
func (t *Tracker) fire() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.due = time.Time{}
	now := t.now()
	var changed []string
	var next time.Time
	for id, r := range t.rooms {
		expired := false
		for u, until := range r.until {
			if !until.After(now) {
				delete(r.until, u)
				expired = true
			} else if next.IsZero() || until.Before(next) {
				next = until
			}
		}
		if expired {
			t.changedLocked(r)
			changed = append(changed, id)
		}
	}
	if !next.IsZero() {
		t.scheduleLocked(next)
	}
	t.mu.Unlock()
	slices.Sort(changed)
	if t.wake != nil {
		for _, id := range changed {
			t.wake(id)
		}
	}
}
