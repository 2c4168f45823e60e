package authrules

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/mx/mxtest"
	"github.com/sluice-im/sluice/internal/mx/signedjson"
)

// Users of the test rooms ("!room:test.local", created by alice).
const (
	alice   = "@alice:test.local"
	bob     = "@bob:test.local"
	carol   = "@carol:test.local"
	dave    = "@dave:test.local"
	mod     = "@mod:test.local"
	mod2    = "@mod2:test.local"
	mallory = "@mallory:test.local"
	rita    = "@rita:remote.example" // on another server
)

var versions = []string{"10", "11"}

// room is an mxtest.Room whose events are signed by their sender's server
// and whose setup events must pass the rules under test.
type room struct {
	*mxtest.Room
	t testing.TB
}

type roomOpts struct {
	create      map[string]any // merged into the create content (nil values delete)
	bare        bool           // only the create event
	noPL        bool           // no m.room.power_levels
	noJoinRules bool           // no m.room.join_rules
}

// newRoom makes the base room: create (alice), alice joins, power levels
// {users: {alice: 100}}, join rule public.
func newRoom(t testing.TB, version string, o roomOpts) *room {
	t.Helper()
	r := &room{Room: mxtest.NewRoom(t, version), t: t}
	c := map[string]any{"room_version": version}
	if version == "10" {
		c["creator"] = alice
	}
	for k, v := range o.create {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	r.mustAdd(state(alice, "m.room.create", "", c))
	if o.bare {
		return r
	}
	r.mustAdd(member(alice, alice, "join"))
	if !o.noPL {
		r.mustAdd(state(alice, "m.room.power_levels", "", plContent(nil)))
	}
	if !o.noJoinRules {
		r.mustAdd(joinRules(alice, "public"))
	}
	return r
}

// build signs the event with its sender's server's key (mxtest's default).
func (r *room) build(s mxtest.Spec) *event.Event {
	r.t.Helper()
	return r.Build(s)
}

// buildSignedBy signs the event with another server's key than the
// sender's.
func (r *room) buildSignedBy(server string, s mxtest.Spec) *event.Event {
	r.t.Helper()
	s.SignAs = server
	return r.Build(s)
}

func (r *room) append(e *event.Event) *event.Event {
	r.Events = append(r.Events, e)
	if st, ok := e.StateTuple(); ok {
		r.State[st] = e
	}
	return e
}

// mustAdd adds an event that must pass the rules.
func (r *room) mustAdd(s mxtest.Spec) *event.Event {
	r.t.Helper()
	e := r.build(s)
	if err := r.check(e); err != nil {
		r.t.Fatalf("setup: %s %v by %s: %v", s.Type, deref(s.StateKey), s.Sender, err)
	}
	return r.append(e)
}

// force adds an event without checking it.
func (r *room) force(s mxtest.Spec) *event.Event {
	r.t.Helper()
	return r.append(r.build(s))
}

func deref(p *string) string {
	if p == nil {
		return "<none>"
	}
	return *p
}

// selected is the auth state for e: the entries of the current state the
// auth events selection picks.
func (r *room) selected(e *event.Event) StateMap {
	m := StateMap{}
	for _, t := range authEventTypesOf(e) {
		if x := r.State[t]; x != nil {
			m[t] = x
		}
	}
	return m
}

func (r *room) byID() map[string]*event.Event { return mxtest.ByID(r.Events...) }

// authEventsOf resolves e's auth_events in the room's history.
func (r *room) authEventsOf(e *event.Event) []*event.Event {
	ids := r.byID()
	var out []*event.Event
	for _, id := range e.AuthEvents() {
		if x, ok := ids[id]; ok {
			out = append(out, x)
		}
	}
	return out
}

// check runs the rules three ways that must agree: against the selected
// state, against the whole current state, and against the event's own
// auth_events (rule 2 included).
func (r *room) check(e *event.Event) error {
	r.t.Helper()
	err := Check(e, r.selected(e))
	errFull := Check(e, StateMap(r.State))
	errAuth := CheckWithAuthEvents(e, r.authEventsOf(e), nil)
	if ruleOf(err) != ruleOf(errFull) || ruleOf(err) != ruleOf(errAuth) {
		r.t.Fatalf("%s: selected state: %v; full state: %v; auth events: %v", e.Type(), err, errFull, errAuth)
	}
	return err
}

// ruleOf is the rule a Rejection names, "" for nil, "?" for other errors.
func ruleOf(err error) string {
	if err == nil {
		return ""
	}
	var rej *Rejection
	if errors.As(err, &rej) {
		return rej.Rule
	}
	return "?" + err.Error()
}

// Event specs.

func state(sender, typ, sk string, content map[string]any) mxtest.Spec {
	return mxtest.Spec{Type: typ, StateKey: mxtest.SK(sk), Sender: sender, Content: content}
}

func member(sender, target, membership string, extra ...map[string]any) mxtest.Spec {
	c := map[string]any{"membership": membership}
	for _, m := range extra {
		for k, v := range m {
			c[k] = v
		}
	}
	return state(sender, "m.room.member", target, c)
}

func msg(sender string) mxtest.Spec {
	return mxtest.Spec{Type: "m.room.message", Sender: sender, Content: map[string]any{"msgtype": "m.text", "body": "hello"}}
}

func joinRules(sender, rule string) mxtest.Spec {
	c := map[string]any{"join_rule": rule}
	if rule == "restricted" || rule == "knock_restricted" {
		c["allow"] = []any{map[string]any{"type": "m.room_membership", "room_id": "!space:test.local"}}
	}
	return state(sender, "m.room.join_rules", "", c)
}

// plContent is power levels content with alice at 100, the given users
// (pairs of user ID and level; a nil level leaves the user out) and extra
// top-level keys (nil values leave the key out).
func plContent(extra map[string]any, users ...any) map[string]any {
	u := map[string]any{alice: int64(100)}
	for i := 0; i+1 < len(users); i += 2 {
		if users[i+1] == nil {
			delete(u, users[i].(string))
		} else {
			u[users[i].(string)] = users[i+1]
		}
	}
	c := map[string]any{"users": u}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// setPL: alice sends new power levels.
func (r *room) setPL(extra map[string]any, users ...any) *event.Event {
	r.t.Helper()
	return r.mustAdd(state(alice, "m.room.power_levels", "", plContent(extra, users...)))
}

func (r *room) join(users ...string) {
	r.t.Helper()
	for _, u := range users {
		r.mustAdd(member(u, u, "join"))
	}
}

// cosign adds a second server's signature to an event.
func cosign(t testing.TB, e *event.Event, s event.Signer) *event.Event {
	t.Helper()
	v, err := canonicaljson.Decode(e.JSON())
	if err != nil {
		t.Fatal(err)
	}
	obj := v.(map[string]any)
	if _, err := event.HashAndSign(obj, e.Version(), s); err != nil {
		t.Fatal(err)
	}
	raw, err := canonicaljson.Encode(obj)
	if err != nil {
		t.Fatal(err)
	}
	out, err := event.Parse(raw, e.Version())
	if err != nil {
		t.Fatal(err)
	}
	if out.ID() != e.ID() {
		t.Fatalf("cosign changed the event ID")
	}
	return out
}

// Third-party invites: an identity server's keys.

func keyFromSeed(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = b
	}
	return ed25519.NewKeyFromSeed(seed)
}

var (
	idKey    = keyFromSeed('i')
	otherKey = keyFromSeed('o')
)

func pubB64(k ed25519.PrivateKey) string {
	return base64.RawStdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
}

// thirdPartyInviteEvent is alice's m.room.third_party_invite for a token.
func thirdPartyInviteEvent(sender, token string, publicKey string, publicKeys ...string) mxtest.Spec {
	c := map[string]any{
		"display_name":     "c...@e...",
		"key_validity_url": "https://id.example/_matrix/identity/v2/pubkey/isvalid",
		"public_key":       publicKey,
	}
	if len(publicKeys) > 0 {
		var list []any
		for _, k := range publicKeys {
			list = append(list, map[string]any{"public_key": k})
		}
		c["public_keys"] = list
	}
	return state(sender, "m.room.third_party_invite", token, c)
}

// signedBlock is what the identity server signs for a bound invite.
func signedBlock(t testing.TB, mxid, token string, key ed25519.PrivateKey) map[string]any {
	t.Helper()
	s := map[string]any{"mxid": mxid, "token": token, "sender": alice}
	if err := signedjson.Sign(s, "id.example", "ed25519:0", key); err != nil {
		t.Fatal(err)
	}
	return s
}

func tpInvite(sender, target string, tpi map[string]any) mxtest.Spec {
	return member(sender, target, "invite", map[string]any{"third_party_invite": tpi})
}
