package stateres

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"testing"

	"github.com/sluice-im/sluice/internal/mx/authrules"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/mx/mxtest"
)

// The users of the scenarios (their server must be the room's, test.local:
// the auth rules want the sender's server's signature).
const (
	alice   = "@alice:test.local"
	bob     = "@bob:test.local"
	charlie = "@charlie:test.local"
	evelyn  = "@evelyn:test.local"
	frank   = "@frank:test.local"
	grace   = "@grace:test.local"
	zara    = "@zara:test.local"
)

// ev is an event of a scenario, named by a short node name.
type ev struct {
	name    string
	sender  string
	typ     string
	sk      *string // nil: not a state event
	content map[string]any
	ts      int64 // origin_server_ts; 0: the room's clock (one more than the last event built)
}

func sk(s string) *string { return mxtest.SK(s) }

func member(name, sender, target, membership string) ev {
	return ev{name: name, sender: sender, typ: "m.room.member", sk: sk(target), content: map[string]any{"membership": membership}}
}

func power(name, sender string, users map[string]any, extra ...map[string]any) ev {
	c := map[string]any{"users": users}
	for _, x := range extra {
		maps.Copy(c, x)
	}
	return ev{name: name, sender: sender, typ: "m.room.power_levels", sk: sk(""), content: c}
}

func topic(name, sender string) ev {
	return ev{name: name, sender: sender, typ: "m.room.topic", sk: sk(""), content: map[string]any{"topic": name}}
}

func joinRule(name, sender, rule string) ev {
	return ev{name: name, sender: sender, typ: "m.room.join_rules", sk: sk(""), content: map[string]any{"join_rule": rule}}
}

func message(name, sender string) ev {
	return ev{name: name, sender: sender, typ: "m.room.message", content: map[string]any{"body": name}}
}

// initialEvents is the common start of every scenario, as in Synapse's
// tests/state/test_v2.py: Alice creates a public room where she has power
// 100, and Bob, Charlie and Zara join.
func initialEvents(version string) []ev {
	create := map[string]any{"room_version": version}
	if version == "10" {
		create["creator"] = alice
	}
	return []ev{
		{name: "CREATE", sender: alice, typ: "m.room.create", sk: sk(""), content: create},
		member("IMA", alice, alice, "join"),
		power("IPOWER", alice, map[string]any{alice: 100}),
		joinRule("IJR", alice, "public"),
		member("IMB", bob, bob, "join"),
		member("IMC", charlie, charlie, "join"),
		member("IMZ", zara, zara, "join"),
		message("START", zara),
		message("END", zara),
	}
}

var initialEdges = []string{"START", "IMZ", "IMC", "IMB", "IJR", "IPOWER", "IMA", "CREATE"}

// dag is a room history built from a scenario: each event's auth events
// are selected (authrules.AuthEventTypes) from the state before it, which
// at a merge is the resolution of the states after its prev events, as a
// server computes it.
type dag struct {
	t      testing.TB
	room   *mxtest.Room
	opts   *Options
	events map[string]*event.Event // by node name
	names  map[string]string       // event ID -> node name
	byID   map[string]*event.Event
	before map[string]map[event.StateTuple]string
	after  map[string]map[event.StateTuple]string
}

// buildDAG builds the initial events and then the scenario's, where edges
// are chains from later to earlier events ([A, B, C]: A's prev events
// include B, B's include C). Events are built in topological order, ties
// by node name (so origin_server_ts grows in that order), as Synapse's
// harness does.
func buildDAG(t testing.TB, version string, evs []ev, edges [][]string, opts *Options) *dag {
	t.Helper()
	d := &dag{t: t, room: mxtest.NewRoom(t, version), opts: opts,
		events: map[string]*event.Event{}, names: map[string]string{}, byID: map[string]*event.Event{},
		before: map[string]map[event.StateTuple]string{}, after: map[string]map[event.StateTuple]string{}}
	specs := map[string]ev{}
	prevs := map[string]map[string]bool{}
	for _, e := range append(initialEvents(version), evs...) {
		if _, dup := specs[e.name]; dup {
			t.Fatalf("duplicate node %s", e.name)
		}
		specs[e.name] = e
		prevs[e.name] = map[string]bool{}
	}
	for _, chain := range append([][]string{initialEdges}, edges...) {
		for i := 0; i+1 < len(chain); i++ {
			if _, ok := specs[chain[i]]; !ok {
				t.Fatalf("unknown node %s", chain[i])
			}
			if _, ok := specs[chain[i+1]]; !ok {
				t.Fatalf("unknown node %s", chain[i+1])
			}
			prevs[chain[i]][chain[i+1]] = true
		}
	}
	done := map[string]bool{}
	for len(done) < len(specs) {
		next := ""
		for name := range specs {
			if done[name] || (next != "" && name >= next) {
				continue
			}
			ready := true
			for p := range prevs[name] {
				ready = ready && done[p]
			}
			if ready {
				next = name
			}
		}
		if next == "" {
			t.Fatalf("the scenario's graph has a cycle")
		}
		d.add(specs[next], slices.Sorted(maps.Keys(prevs[next])))
		done[next] = true
	}
	return d
}

func (d *dag) fetch(id string) (*event.Event, error) {
	if e, ok := d.byID[id]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrMissingEvent, id)
}

func (d *dag) add(s ev, prevNames []string) {
	t := d.t
	t.Helper()
	var stateBefore map[event.StateTuple]string
	switch len(prevNames) {
	case 0:
		stateBefore = map[event.StateTuple]string{}
	case 1:
		stateBefore = maps.Clone(d.after[prevNames[0]])
	default:
		var sets []map[event.StateTuple]string
		for _, p := range prevNames {
			sets = append(sets, d.after[p])
		}
		var err error
		stateBefore, err = Resolve(d.room.Version, sets, d.fetch, d.opts)
		if err != nil {
			t.Fatalf("resolving the state before %s: %v", s.name, err)
		}
	}
	auth := []string{}
	for _, k := range authrules.AuthEventTypes(s.typ, s.sk, s.sender, s.content) {
		if id, ok := stateBefore[k]; ok {
			auth = append(auth, id)
		}
	}
	prevIDs := []string{}
	depth := int64(1)
	for _, p := range prevNames {
		prevIDs = append(prevIDs, d.events[p].ID())
		depth = max(depth, d.events[p].Depth()+1)
	}
	var e *event.Event
	if s.ts == 0 {
		e = d.room.Build(mxtest.Spec{Type: s.typ, StateKey: s.sk, Sender: s.sender, Content: s.content,
			AuthEvents: auth, PrevEvents: prevIDs, Depth: depth})
	} else {
		var err error
		e, err = event.Build(event.Template{Type: s.typ, StateKey: s.sk, Sender: s.sender, RoomID: d.room.ID,
			Content: s.content, PrevEvents: prevIDs, AuthEvents: auth, Depth: depth, OriginServerTS: s.ts},
			d.room.Version, d.room.Signer)
		if err != nil {
			t.Fatalf("building %s: %v", s.name, err)
		}
	}
	d.events[s.name] = e
	d.names[e.ID()] = s.name
	d.byID[e.ID()] = e
	d.before[s.name] = stateBefore
	after := maps.Clone(stateBefore)
	if k, ok := e.StateTuple(); ok {
		after[k] = e.ID()
	}
	d.after[s.name] = after
}

// id is the event ID of a node.
func (d *dag) id(name string) string {
	e, ok := d.events[name]
	if !ok {
		d.t.Fatalf("unknown node %s", name)
	}
	return e.ID()
}

// named renders a state as node names, sorted, for messages.
func (d *dag) named(state map[event.StateTuple]string) []string {
	var out []string
	for k, id := range state {
		name := d.names[id]
		if name == "" {
			name = id
		}
		out = append(out, fmt.Sprintf("%s[%s]=%s", k.Type, k.StateKey, name))
	}
	sort.Strings(out)
	return out
}

// changed is the state before END restricted, as Synapse's do_check does,
// to the keys of the expected events and the keys whose event differs from
// the state before START.
func (d *dag) changed(expected []string) map[event.StateTuple]string {
	keys := map[event.StateTuple]bool{}
	for _, name := range expected {
		k, ok := d.events[name].StateTuple()
		if !ok {
			d.t.Fatalf("%s is not a state event", name)
		}
		keys[k] = true
	}
	start := d.after["START"]
	out := map[event.StateTuple]string{}
	for k, id := range d.before["END"] {
		if keys[k] || start[k] != id {
			out[k] = id
		}
	}
	return out
}

// checkEnd asserts that the state before END, restricted as changed says,
// is exactly the expected events.
func (d *dag) checkEnd(expected []string) {
	d.t.Helper()
	want := map[event.StateTuple]string{}
	for _, name := range expected {
		k, _ := d.events[name].StateTuple()
		want[k] = d.id(name)
	}
	if got := d.changed(expected); !maps.Equal(got, want) {
		d.t.Errorf("state before END:\n got  %v\n want %v", d.named(got), d.named(want))
	}
}
