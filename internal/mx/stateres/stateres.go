package stateres

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sluice-im/sluice/internal/mx/authrules"
	"github.com/sluice-im/sluice/internal/mx/event"
)

// Errors callers branch on.
var (
	// ErrMissingEvent: an event of a state set or of an auth chain could
	// not be fetched. Fetchers should wrap it when they do not know an
	// event; Resolve also uses it when a fetcher returns neither an event
	// nor an error.
	ErrMissingEvent = errors.New("stateres: missing event")
	// ErrInvalidInput: the events do not form a room's state sets (an event
	// of another room or room version, a state set entry whose event does
	// not have that type and state key, a cycle of auth events).
	ErrInvalidInput = errors.New("stateres: invalid input")
)

// Fetcher returns the event with the given ID, whether it was accepted or
// rejected. An unknown event is an error, preferably wrapping
// ErrMissingEvent; any error ends the resolution.
type Fetcher func(eventID string) (*event.Event, error)

// AuthChecker runs the authorization rules on e against auth, the auth
// events the rules need (by type and state key). It returns nil if e is
// allowed; any error means e is not. auth is only valid during the call.
type AuthChecker func(e *event.Event, auth map[event.StateTuple]*event.Event) error

// Options tune Resolve. The zero value (or a nil *Options) is the spec's
// algorithm with the real authorization rules.
type Options struct {
	// AuthCheck replaces the authorization rules (authrules.Check); tests
	// use it to watch what the replay checks.
	AuthCheck AuthChecker
	// Rejected reports whether the server rejected an event when it
	// received it. The replay does not take a rejected event from another
	// event's auth_events to stand in for a key the partially resolved
	// state lacks (spec: "Rejected auth events are deliberately excluded").
	// Rejected events of the full conflicted set are replayed like any
	// other, as the spec says; nil means no event is rejected.
	Rejected func(eventID string) bool
}

// DefaultAuthCheck is authrules.Check.
func DefaultAuthCheck(e *event.Event, auth map[event.StateTuple]*event.Event) error {
	return authrules.Check(e, authrules.StateMap(auth))
}

// Resolve resolves the state sets of room version v (see the package
// documentation) and returns the resolved state as a new map. fetch must
// supply every event the state sets name and every event of their auth
// chains. The result does not depend on the order of the state sets or of
// map iteration. The state sets are not modified.
func Resolve(v *event.Version, stateSets []map[event.StateTuple]string, fetch Fetcher, opts *Options) (map[event.StateTuple]string, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: no room version", ErrInvalidInput)
	}
	if fetch == nil {
		return nil, fmt.Errorf("%w: no fetch function", ErrInvalidInput)
	}
	switch len(stateSets) {
	case 0:
		return map[event.StateTuple]string{}, nil
	case 1:
		return maps.Clone(stateSets[0]), nil
	}
	r := &resolver{v: v, fetch: fetch, check: DefaultAuthCheck}
	if opts != nil {
		if opts.AuthCheck != nil {
			r.check = opts.AuthCheck
		}
		r.rejected = opts.Rejected
	}
	return r.resolve(stateSets)
}

// node is a loaded event: the auth graph is kept as indices into
// resolver.nodes.
type node struct {
	ev    *event.Event
	auth  []int32 // the auth events, without duplicates, in the event's order
	key   event.StateTuple
	state bool
}

type resolver struct {
	v        *event.Version
	fetch    Fetcher
	check    AuthChecker
	rejected func(string) bool
	roomID   string

	nodes []node
	idx   map[string]int32
}

func (r *resolver) resolve(stateSets []map[event.StateTuple]string) (map[event.StateTuple]string, error) {
	// Split the entries. A key that some state set lacks is conflicted.
	unconflicted := map[event.StateTuple]string{}
	var conflicted []string
	for i, set := range stateSets {
	keys:
		for k, id := range set {
			for _, prev := range stateSets[:i] {
				if _, ok := prev[k]; ok {
					continue keys // seen with an earlier set
				}
			}
			if i == 0 && inAll(stateSets[1:], k, id) {
				unconflicted[k] = id
				continue
			}
			for _, other := range stateSets[i:] {
				if o, ok := other[k]; ok {
					conflicted = append(conflicted, o)
				}
			}
		}
	}
	if len(conflicted) == 0 {
		return unconflicted, nil
	}

	if err := r.load(stateSets); err != nil {
		return nil, err
	}
	diff, err := r.authDifference(stateSets)
	if err != nil {
		return nil, err
	}

	// The full conflicted set: the conflicted events and the auth
	// difference (state events only: an auth chain holds nothing else
	// unless an event cites a message, which the auth rules reject).
	inFull := diff
	for _, id := range conflicted {
		inFull[r.idx[id]] = true
	}
	var power []int32
	for n := range inFull {
		if !inFull[n] {
			continue
		}
		if !r.nodes[n].state {
			inFull[n] = false
			continue
		}
		if isPowerEvent(r.nodes[n].ev) {
			power = append(power, int32(n))
		}
	}

	// Step 1: the power events and the events of their auth chains that are
	// in the full conflicted set, in reverse topological power order.
	inX := make([]bool, len(r.nodes))
	sortedPower, err := r.reverseTopologicalPowerSort(power, inFull, inX)
	if err != nil {
		return nil, err
	}

	// Step 2: replay them on the unconflicted state.
	state := make(map[event.StateTuple]int32, len(unconflicted)+len(conflicted))
	for k, id := range unconflicted {
		state[k] = r.idx[id]
	}
	r.iterativeAuthChecks(state, sortedPower)

	// Step 3: the other events in mainline order of the resolved power
	// levels.
	var rest []int32
	for n := range inFull {
		if inFull[n] && !inX[n] {
			rest = append(rest, int32(n))
		}
	}
	pl, hasPL := state[event.StateTuple{Type: typePowerLevels}]
	if !hasPL {
		pl = -1
	}
	r.mainlineSort(rest, pl)

	// Step 4: replay them.
	r.iterativeAuthChecks(state, rest)

	// Step 5: the unconflicted entries win.
	out := make(map[event.StateTuple]string, len(state))
	for k, n := range state {
		out[k] = r.nodes[n].ev.ID()
	}
	maps.Copy(out, unconflicted)
	return out, nil
}

// inAll reports whether every state set maps k to id.
func inAll(stateSets []map[event.StateTuple]string, k event.StateTuple, id string) bool {
	for _, set := range stateSets {
		if o, ok := set[k]; !ok || o != id {
			return false
		}
	}
	return true
}

// load fetches every event of the state sets and of their auth chains.
func (r *resolver) load(stateSets []map[event.StateTuple]string) error {
	size := 0
	for _, set := range stateSets {
		size += len(set)
	}
	r.idx = make(map[string]int32, size)
	r.nodes = make([]node, 0, size)
	// Events fetch does not know are collected, so that the error names
	// the same one (the smallest ID, and the smallest ID citing it) whatever
	// the map iteration order.
	type miss struct {
		citedBy string
		err     error
	}
	missing := map[string]miss{}
	add := func(id, citedBy string) (int32, error) {
		if m, ok := missing[id]; ok {
			if citedBy < m.citedBy {
				_, err := r.add(id, citedBy)
				missing[id] = miss{citedBy, err}
			}
			return -1, nil
		}
		n, err := r.add(id, citedBy)
		if errors.Is(err, ErrMissingEvent) {
			missing[id] = miss{citedBy, err}
			return -1, nil
		}
		return n, err
	}
	for _, set := range stateSets {
		for k, id := range set {
			n, err := add(id, "")
			if err != nil {
				return err
			}
			if n < 0 {
				continue // missing
			}
			// Every state set entry must be the event for its key.
			if nd := &r.nodes[n]; !nd.state || nd.key != k {
				return fmt.Errorf("%w: state set entry (%q, %q) is event %s of type %q", ErrInvalidInput, k.Type, k.StateKey, id, nd.ev.Type())
			}
		}
	}
	// Breadth first through auth_events; nodes appended while walking are
	// walked in turn.
	var arena []int32 // backs the nodes' auth slices: one allocation per chunk
	for n := 0; n < len(r.nodes); n++ {
		ids := r.nodes[n].ev.AuthEvents()
		if cap(arena)-len(arena) < len(ids) {
			arena = make([]int32, 0, max(1024, len(ids)))
		}
		auth := arena[len(arena):len(arena):cap(arena)]
		for _, aid := range ids {
			a, err := add(aid, r.nodes[n].ev.ID())
			if err != nil {
				return err
			}
			if a >= 0 && !slices.Contains(auth, a) {
				auth = append(auth, a)
			}
		}
		r.nodes[n].auth = auth[:len(auth):len(auth)]
		arena = arena[:len(arena)+len(auth)]
	}
	if len(missing) > 0 {
		first := slices.Min(slices.Collect(maps.Keys(missing)))
		if len(missing) > 1 {
			return fmt.Errorf("%w (and %d more missing)", missing[first].err, len(missing)-1)
		}
		return missing[first].err
	}
	return nil
}

// add returns the index of an event, fetching it if it is new.
func (r *resolver) add(id, citedBy string) (int32, error) {
	if n, ok := r.idx[id]; ok {
		return n, nil
	}
	e, err := r.fetch(id)
	if err != nil || e == nil {
		where := ""
		if citedBy != "" {
			where = " (an auth event of " + citedBy + ")"
		}
		if err != nil {
			return 0, fmt.Errorf("stateres: fetch %s%s: %w", id, where, err)
		}
		return 0, fmt.Errorf("%w: %s%s", ErrMissingEvent, id, where)
	}
	if e.ID() != id {
		return 0, fmt.Errorf("%w: fetching %s returned %s", ErrInvalidInput, id, e.ID())
	}
	if e.Version() == nil || e.Version().ID != r.v.ID {
		return 0, fmt.Errorf("%w: event %s is not of room version %s", ErrInvalidInput, id, r.v.ID)
	}
	if r.roomID == "" {
		r.roomID = e.RoomID()
	} else if e.RoomID() != r.roomID {
		return 0, fmt.Errorf("%w: event %s is in room %s, not %s", ErrInvalidInput, id, e.RoomID(), r.roomID)
	}
	n := int32(len(r.nodes))
	key, state := e.StateTuple()
	r.nodes = append(r.nodes, node{ev: e, key: key, state: state})
	r.idx[id] = n
	return n, nil
}

// authDifference returns, indexed by node, whether the event is in the auth
// chain of some state sets but not of all. Like Synapse (and unlike a
// literal reading of the spec, whose auth chain of an event excludes the
// event), a state set's auth chain includes the set's own events, so an
// unconflicted event is never in the difference.
func (r *resolver) authDifference(stateSets []map[event.StateTuple]string) ([]bool, error) {
	n := len(r.nodes)
	words := (len(stateSets) + 63) / 64
	reach := make([]uint64, n*words) // bit i of node x: state set i reaches x
	for i, set := range stateSets {
		for _, id := range set {
			reach[int(r.idx[id])*words+i/64] |= 1 << (i % 64)
		}
	}
	// Propagate from events to their auth events, visiting every event
	// before its auth events (Kahn's algorithm on the citing counts).
	cited := make([]int32, n)
	for x := range r.nodes {
		for _, a := range r.nodes[x].auth {
			cited[a]++
		}
	}
	queue := make([]int32, 0, n)
	for x := range r.nodes {
		if cited[x] == 0 {
			queue = append(queue, int32(x))
		}
	}
	for q := 0; q < len(queue); q++ {
		x := queue[q]
		from := reach[int(x)*words : int(x)*words+words]
		for _, a := range r.nodes[x].auth {
			to := reach[int(a)*words : int(a)*words+words]
			for w := range to {
				to[w] |= from[w]
			}
			if cited[a]--; cited[a] == 0 {
				queue = append(queue, a)
			}
		}
	}
	if len(queue) != n {
		return nil, fmt.Errorf("%w: the auth events form a cycle", ErrInvalidInput)
	}
	full := make([]uint64, words)
	for i := range stateSets {
		full[i/64] |= 1 << (i % 64)
	}
	diff := make([]bool, n)
	for x := range diff {
		diff[x] = !slices.Equal(reach[x*words:x*words+words], full)
	}
	return diff, nil
}

const (
	typeCreate      = "m.room.create"
	typePowerLevels = "m.room.power_levels"
	typeJoinRules   = "m.room.join_rules"
	typeMember      = "m.room.member"
)

// isPowerEvent: power levels, join rules, and a leave or ban sent by
// someone else (a kick or a ban). Like Synapse and ruma, the create event
// counts too (the spec's list omits it; it only matters when a create event
// is in the full conflicted set, which no real fork has).
func isPowerEvent(e *event.Event) bool {
	sk, ok := e.StateKey()
	if !ok {
		return false
	}
	switch e.Type() {
	case typePowerLevels, typeJoinRules, typeCreate:
		return sk == ""
	case typeMember:
		m := e.Membership()
		return (m == "leave" || m == "ban") && sk != e.Sender()
	}
	return false
}

// authEvent returns the first auth event of x with the key (typ, ""), or -1.
func (r *resolver) authEvent(x int32, typ string) int32 {
	for _, a := range r.nodes[x].auth {
		if nd := &r.nodes[a]; nd.state && nd.key.Type == typ && nd.key.StateKey == "" {
			return a
		}
	}
	return -1
}

// senderPower is the power level of x's sender according to the power
// levels event in x's auth events, read as the auth rules read it (with
// none, the creator named by the create event in x's auth events has 100).
func (r *resolver) senderPower(x int32) int64 {
	var create, pl *event.Event
	if c := r.authEvent(x, typeCreate); c >= 0 {
		create = r.nodes[c].ev
	}
	if p := r.authEvent(x, typePowerLevels); p >= 0 {
		pl = r.nodes[p].ev
	}
	return authrules.NewPowerLevels(create, pl).UserLevel(r.nodes[x].ev.Sender())
}

// reverseTopologicalPowerSort takes the power events, adds the events of
// their auth chains that are in the full conflicted set (walking, as
// Synapse does, only through events of the full conflicted set), marks them
// all in inX and returns them in the reverse topological power ordering.
func (r *resolver) reverseTopologicalPowerSort(power []int32, inFull, inX []bool) ([]int32, error) {
	var xs []int32
	stack := slices.Clone(power)
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if inX[x] {
			continue
		}
		inX[x] = true
		xs = append(xs, x)
		for _, a := range r.nodes[x].auth {
			if inFull[a] && !inX[a] {
				stack = append(stack, a)
			}
		}
	}
	if len(xs) == 0 {
		return nil, nil
	}

	// Kahn's algorithm from the events none of whose auth events are in X,
	// taking the smallest free event each time.
	type item struct {
		x     int32
		power int64
		ts    int64
		id    string
	}
	local := make(map[int32]int32, len(xs)) // node -> index in items
	items := make([]item, len(xs))
	for i, x := range xs {
		local[x] = int32(i)
		items[i] = item{x: x, power: r.senderPower(x), ts: r.nodes[x].ev.OriginServerTS(), id: r.nodes[x].ev.ID()}
	}
	pending := make([]int32, len(xs))   // auth events in X not yet output
	citedBy := make([][]int32, len(xs)) // events of X citing each
	for i, x := range xs {
		for _, a := range r.nodes[x].auth {
			if j, ok := local[a]; ok {
				pending[i]++
				citedBy[j] = append(citedBy[j], int32(i))
			}
		}
	}
	less := func(a, b int32) bool {
		p, q := &items[a], &items[b]
		if p.power != q.power {
			return p.power > q.power // greater power first
		}
		if p.ts != q.ts {
			return p.ts < q.ts
		}
		return p.id < q.id
	}
	h := &heap{less: less}
	for i := range items {
		if pending[i] == 0 {
			h.push(int32(i))
		}
	}
	out := make([]int32, 0, len(xs))
	for h.len() > 0 {
		i := h.pop()
		out = append(out, items[i].x)
		for _, j := range citedBy[i] {
			if pending[j]--; pending[j] == 0 {
				h.push(j)
			}
		}
	}
	if len(out) != len(xs) {
		return nil, fmt.Errorf("%w: the auth events form a cycle", ErrInvalidInput)
	}
	return out, nil
}

// mainlineSort sorts xs in the mainline ordering based on the power levels
// event pl (-1: none, so every event is off the mainline).
func (r *resolver) mainlineSort(xs []int32, pl int32) {
	if len(xs) == 0 {
		return
	}
	const infinity = int(^uint(0) >> 1)
	memo := map[int32]int{} // power levels event -> position of its chain
	for i := 0; pl >= 0; i++ {
		memo[pl] = i
		pl = r.authEvent(pl, typePowerLevels)
	}
	// position of x: that of the first mainline event among x's power
	// levels auth event, its power levels auth event, and so on.
	var path []int32
	position := func(x int32) int {
		path = path[:0]
		pos := infinity
		for p := r.authEvent(x, typePowerLevels); p >= 0; p = r.authEvent(p, typePowerLevels) {
			if known, ok := memo[p]; ok {
				pos = known
				break
			}
			path = append(path, p)
		}
		for _, p := range path {
			memo[p] = pos
		}
		return pos
	}
	type item struct {
		x   int32
		pos int
		ts  int64
		id  string
	}
	items := make([]item, len(xs))
	for i, x := range xs {
		e := r.nodes[x].ev
		items[i] = item{x: x, pos: position(x), ts: e.OriginServerTS(), id: e.ID()}
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.pos != b.pos {
			if a.pos > b.pos { // based on an older power levels event: first
				return -1
			}
			return 1
		}
		if a.ts != b.ts {
			if a.ts < b.ts {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	for i := range items {
		xs[i] = items[i].x
	}
}

// iterativeAuthChecks replays xs in order on state: each event the auth
// rules allow against the state (or, for keys the state lacks, its own
// non-rejected auth events) takes its key.
func (r *resolver) iterativeAuthChecks(state map[event.StateTuple]int32, xs []int32) {
	auth := make(map[event.StateTuple]*event.Event, 8)
	for _, x := range xs {
		nd := &r.nodes[x]
		e := nd.ev
		clear(auth)
		sk, _ := e.StateKey()
		for _, k := range authrules.AuthEventTypes(e.Type(), &sk, e.Sender(), e.Content()) {
			if s, ok := state[k]; ok {
				auth[k] = r.nodes[s].ev
				continue
			}
			for _, a := range nd.auth {
				an := &r.nodes[a]
				if an.state && an.key == k && (r.rejected == nil || !r.rejected(an.ev.ID())) {
					auth[k] = an.ev
					break
				}
			}
		}
		if r.check(e, auth) == nil {
			state[nd.key] = x
		}
	}
}

// heap is a binary min-heap of indices under less.
type heap struct {
	a    []int32
	less func(a, b int32) bool
}

func (h *heap) len() int { return len(h.a) }

func (h *heap) push(x int32) {
	h.a = append(h.a, x)
	for i := len(h.a) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(h.a[i], h.a[p]) {
			break
		}
		h.a[i], h.a[p] = h.a[p], h.a[i]
		i = p
	}
}

func (h *heap) pop() int32 {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < last && h.less(h.a[l], h.a[m]) {
			m = l
		}
		if l+1 < last && h.less(h.a[l+1], h.a[m]) {
			m = l + 1
		}
		if m == i {
			break
		}
		h.a[i], h.a[m] = h.a[m], h.a[i]
		i = m
	}
	return top
}
