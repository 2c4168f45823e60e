// Package mxtest builds real, signed events for tests of the protocol core:
// a Room appends events with the right prev_events, auth_events and depth
// as a server would, so tests read like the room's history.
package mxtest

import (
	"crypto/ed25519"
	"testing"

	"github.com/sluice-im/sluice/internal/mx/event"
)

// Signer returns a deterministic signing identity for a server name.
func Signer(serverName string) event.Signer {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, serverName)
	return event.Signer{ServerName: serverName, KeyID: "ed25519:test", Key: ed25519.NewKeyFromSeed(seed)}
}

// Room is a linear room history under construction.
type Room struct {
	T       testing.TB
	Version *event.Version
	ID      string
	Signer  event.Signer
	// State is the current state after the last event added with Add.
	State  map[event.StateTuple]*event.Event
	Events []*event.Event
	ts     int64
}

// NewRoom starts an empty room of the given version.
func NewRoom(t testing.TB, version string) *Room { return NewRoomID(t, version, "!room:test.local") }

// NewRoomID starts an empty room with the given room ID.
func NewRoomID(t testing.TB, version, roomID string) *Room {
	v, ok := event.LookupVersion(version)
	if !ok {
		t.Fatalf("mxtest: unknown room version %s", version)
	}
	return &Room{T: t, Version: v, ID: roomID, Signer: Signer("test.local"),
		State: map[event.StateTuple]*event.Event{}, ts: 1_700_000_000_000}
}

// Spec describes one event to add.
type Spec struct {
	Type     string
	StateKey *string
	Sender   string
	Content  map[string]any
	Redacts  string
	// AuthEvents and PrevEvents override the defaults (the auth events the
	// spec selects from the current state, and the last event).
	AuthEvents []string
	PrevEvents []string
	Depth      int64
	// OriginServerTS overrides the room's increasing clock.
	OriginServerTS int64
	// SignAs signs with this server's key instead of the sender's server's
	// (to test the signature rule).
	SignAs string
}

// SK returns a pointer to a state key.
func SK(s string) *string { return &s }

// Build makes an event without adding it to the room.
func (r *Room) Build(s Spec) *event.Event {
	r.T.Helper()
	r.ts++
	prev := s.PrevEvents
	depth := s.Depth
	if prev == nil && len(r.Events) > 0 {
		last := r.Events[len(r.Events)-1]
		prev = []string{last.ID()}
	}
	if depth == 0 {
		// One more than the deepest parent known to the room.
		depth = 1
		for _, id := range prev {
			for _, e := range r.Events {
				if e.ID() == id && e.Depth()+1 > depth {
					depth = e.Depth() + 1
				}
			}
		}
	}
	ts := r.ts
	if s.OriginServerTS != 0 {
		ts = s.OriginServerTS
	}
	auth := s.AuthEvents
	if auth == nil {
		auth = r.DefaultAuthEvents(s)
	}
	if prev == nil {
		prev = []string{}
	}
	e, err := event.Build(event.Template{
		Type: s.Type, StateKey: s.StateKey, Sender: s.Sender, RoomID: r.ID, Content: s.Content,
		PrevEvents: prev, AuthEvents: auth, Depth: depth, OriginServerTS: ts, Redacts: s.Redacts,
	}, r.Version, r.signerFor(s))
	if err != nil {
		r.T.Fatalf("mxtest: build %s: %v", s.Type, err)
	}
	return e
}

// signerFor signs with the sender's own server, as a real server would:
// events of @x:other.test are signed by other.test.
func (r *Room) signerFor(s Spec) event.Signer {
	if s.SignAs != "" {
		return Signer(s.SignAs)
	}
	sender := s.Sender
	for i := 0; i < len(sender); i++ {
		if sender[i] == ':' {
			if server := sender[i+1:]; server != r.Signer.ServerName {
				return Signer(server)
			}
			break
		}
	}
	return r.Signer
}

// Add builds an event and appends it to the history, updating State.
// It does not run the auth rules: tests decide what is accepted.
func (r *Room) Add(s Spec) *event.Event {
	r.T.Helper()
	e := r.Build(s)
	r.Events = append(r.Events, e)
	if st, ok := e.StateTuple(); ok {
		r.State[st] = e
	}
	return e
}

// DefaultAuthEvents selects auth events from the current state as the
// spec's "auth events selection" says: create, power levels, the sender's
// member event, and for member events the target's member event, join
// rules (join/invite/knock) and third-party invite.
func (r *Room) DefaultAuthEvents(s Spec) []string {
	var out []string
	add := func(t, k string) {
		if e, ok := r.State[event.StateTuple{Type: t, StateKey: k}]; ok {
			for _, id := range out {
				if id == e.ID() {
					return
				}
			}
			out = append(out, e.ID())
		}
	}
	if s.Type == "m.room.create" {
		return []string{}
	}
	add("m.room.create", "")
	add("m.room.power_levels", "")
	add("m.room.member", s.Sender)
	if s.Type == "m.room.member" && s.StateKey != nil {
		add("m.room.member", *s.StateKey)
		m, _ := s.Content["membership"].(string)
		if m == "join" || m == "invite" || m == "knock" {
			add("m.room.join_rules", "")
		}
		if tpi, ok := s.Content["third_party_invite"].(map[string]any); ok && m == "invite" {
			if signed, ok := tpi["signed"].(map[string]any); ok {
				if tok, ok := signed["token"].(string); ok {
					add("m.room.third_party_invite", tok)
				}
			}
		}
		if via, ok := s.Content["join_authorised_via_users_server"].(string); ok && m == "join" {
			add("m.room.member", via)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// ByID indexes events by ID (for state resolution's fetch function).
func ByID(events ...*event.Event) map[string]*event.Event {
	m := make(map[string]*event.Event, len(events))
	for _, e := range events {
		m[e.ID()] = e
	}
	return m
}
