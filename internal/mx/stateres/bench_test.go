package stateres

import (
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/sluice-im/sluice/internal/mx/authrules"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/mx/mxtest"
)

// forks is a room whose history splits in two after a common start, each
// branch with n joins and a few conflicting power events and topics:
//
//   - common: Alice creates a public room (Alice 100, Bob 50), Bob,
//     Charlie and ten more users join, Alice sets topic T0;
//   - branch A: Alice demotes Bob to 0, kicks common user c0, sets topic
//     TA, and n users a0… join;
//   - branch B: Bob kicks c1 and sets topic TB (at his old 50), and n users
//     b0… join.
//
// Resolved: Alice's demotion, so Bob's kick and topic fail; c0 kicked, c1
// still joined; topic TA; all 2n joins stand.
type forks struct {
	room  *mxtest.Room
	byID  map[string]*event.Event
	named map[string]*event.Event
	sets  []map[event.StateTuple]string
	n     int
}

type branch struct {
	f     *forks
	state map[event.StateTuple]*event.Event
	tip   *event.Event
}

func (b *branch) add(name string, e ev) {
	auth := []string{}
	for _, k := range authrules.AuthEventTypes(e.typ, e.sk, e.sender, e.content) {
		if x, ok := b.state[k]; ok {
			auth = append(auth, x.ID())
		}
	}
	prev, depth := []string{}, int64(1)
	if b.tip != nil {
		prev, depth = []string{b.tip.ID()}, b.tip.Depth()+1
	}
	x := b.f.room.Build(mxtest.Spec{Type: e.typ, StateKey: e.sk, Sender: e.sender, Content: e.content,
		AuthEvents: auth, PrevEvents: prev, Depth: depth})
	b.f.byID[x.ID()] = x
	b.f.named[name] = x
	if k, ok := x.StateTuple(); ok {
		b.state[k] = x
	}
	b.tip = x
}

func (b *branch) fork() *branch {
	return &branch{f: b.f, state: maps.Clone(b.state), tip: b.tip}
}

func (b *branch) ids() map[event.StateTuple]string {
	out := make(map[event.StateTuple]string, len(b.state))
	for k, x := range b.state {
		out[k] = x.ID()
	}
	return out
}

func user(prefix string, i int) string { return fmt.Sprintf("@%s%d:test.local", prefix, i) }

func newForks(tb testing.TB, version string, n int) *forks {
	f := &forks{room: mxtest.NewRoom(tb, version), byID: map[string]*event.Event{}, named: map[string]*event.Event{}, n: n}
	create := map[string]any{"room_version": version}
	if version == "10" {
		create["creator"] = alice
	}
	c := &branch{f: f, state: map[event.StateTuple]*event.Event{}}
	c.add("CREATE", ev{sender: alice, typ: "m.room.create", sk: sk(""), content: create})
	c.add("IMA", member("", alice, alice, "join"))
	c.add("P0", power("", alice, map[string]any{alice: 100, bob: 50}))
	c.add("IJR", joinRule("", alice, "public"))
	c.add("IMB", member("", bob, bob, "join"))
	c.add("IMC", member("", charlie, charlie, "join"))
	for i := range 10 {
		c.add(fmt.Sprintf("c%d", i), member("", user("c", i), user("c", i), "join"))
	}
	c.add("T0", topic("T0", alice))

	a, b := c.fork(), c.fork()
	a.add("PA", power("", alice, map[string]any{alice: 100, bob: 0}))
	a.add("KA", member("", alice, user("c", 0), "leave"))
	b.add("KB", member("", bob, user("c", 1), "leave"))
	b.add("TB", topic("TB", bob))
	for i := range n {
		a.add(fmt.Sprintf("a%d", i), member("", user("a", i), user("a", i), "join"))
		b.add(fmt.Sprintf("b%d", i), member("", user("b", i), user("b", i), "join"))
		if i == n/2 {
			a.add("TA", topic("TA", alice))
		}
	}
	f.sets = []map[event.StateTuple]string{a.ids(), b.ids()}
	return f
}

func (f *forks) fetch(id string) (*event.Event, error) {
	if e, ok := f.byID[id]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrMissingEvent, id)
}

func (f *forks) checkResult(t testing.TB, got map[event.StateTuple]string) {
	t.Helper()
	want := map[event.StateTuple]string{}
	for _, name := range []string{"CREATE", "IMA", "PA", "IJR", "IMB", "IMC", "KA", "TA"} {
		k, _ := f.named[name].StateTuple()
		want[k] = f.named[name].ID()
	}
	for i := 1; i < 10; i++ {
		want[event.StateTuple{Type: "m.room.member", StateKey: user("c", i)}] = f.named[fmt.Sprintf("c%d", i)].ID()
	}
	for i := range f.n {
		for _, p := range []string{"a", "b"} {
			want[event.StateTuple{Type: "m.room.member", StateKey: user(p, i)}] = f.named[fmt.Sprintf("%s%d", p, i)].ID()
		}
	}
	if len(got) != len(want) {
		t.Errorf("resolved %d entries, want %d", len(got), len(want))
	}
	for k, id := range want {
		if got[k] != id {
			t.Errorf("%v: got %s, want %s", k, got[k], id)
		}
	}
}

func TestTwoForks(t *testing.T) {
	for _, v := range versions {
		f := newForks(t, v, 200)
		got, err := Resolve(f.room.Version, f.sets, f.fetch, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.checkResult(t, got)
	}
}

var (
	benchOnce  sync.Once
	benchForks *forks
)

// BenchmarkResolveTwoForks1000 resolves two branches of about 1,000 state
// events each (1,000 joins, a demotion and a kick against a kick and a
// topic, conflicting topics) over a common start.
func BenchmarkResolveTwoForks1000(b *testing.B) {
	benchOnce.Do(func() { benchForks = newForks(b, "10", 1000) })
	f := benchForks
	got, err := Resolve(f.room.Version, f.sets, f.fetch, nil)
	if err != nil {
		b.Fatal(err)
	}
	f.checkResult(b, got)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Resolve(f.room.Version, f.sets, f.fetch, nil); err != nil {
			b.Fatal(err)
		}
	}
}
