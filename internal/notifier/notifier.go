// Package notifier wakes requests that wait for something to happen to a
// user (a long-polling /sync) without polling the database: writers call
// Wake with the users an event concerns, and each waiting request holds a
// channel that is closed when one of them is woken.
//
// To miss nothing, a reader calls Listen before it reads what is new, and
// waits on the channel only if it found nothing: a Wake between the two
// closes a channel it already holds.
package notifier

import "sync"

// Notifier tracks waiting users. The zero value is not usable; use New.
type Notifier struct {
	mu    sync.Mutex
	users map[string]*waitSet
}

// waitSet is one user's current channel and how many listeners share it.
type waitSet struct {
	ch        chan struct{}
	listeners int
}

// New makes a notifier.
func New() *Notifier { return &Notifier{users: map[string]*waitSet{}} }

// Listen returns a channel closed at the next Wake of userID, and a
// function to call when the caller stops listening (whether or not it was
// woken), so that idle users cost nothing.
func (n *Notifier) Listen(userID string) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ws := n.users[userID]
	if ws == nil {
		ws = &waitSet{ch: make(chan struct{})}
		n.users[userID] = ws
	}
	ws.listeners++
	ch := ws.ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			// The set may have been replaced by a Wake; only the current
			// one is counted.
			if cur := n.users[userID]; cur != nil && cur.ch == ch {
				cur.listeners--
				if cur.listeners == 0 {
					delete(n.users, userID)
				}
			}
		})
	}
}

// Wake wakes every request listening for any of the users.
func (n *Notifier) Wake(userIDs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, u := range userIDs {
		if ws := n.users[u]; ws != nil {
			close(ws.ch)
			delete(n.users, u)
		}
	}
}

// Listening is the number of users with at least one listener.
func (n *Notifier) Listening() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.users)
}
