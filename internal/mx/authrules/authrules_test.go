package authrules

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/mx/mxtest"
)

// ruleCase is one rule of the spec exercised in one room: setup builds on
// the base room (see newRoom), ev is the event under test, and want is ""
// when the rules must allow it or the number of the rule that must reject
// it.
type ruleCase struct {
	name  string
	only  string // "10" or "11": run in that room version only
	opts  roomOpts
	setup func(r *room)
	ev    func(r *room) *event.Event
	want  string
}

func spec(s mxtest.Spec) func(r *room) *event.Event {
	return func(r *room) *event.Event { r.t.Helper(); return r.build(s) }
}

func runCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, v := range versions {
		for _, c := range cases {
			if c.only != "" && c.only != v {
				continue
			}
			t.Run("v"+v+"/"+c.name, func(t *testing.T) {
				r := newRoom(t, v, c.opts)
				if c.setup != nil {
					c.setup(r)
				}
				e := c.ev(r)
				err := r.check(e)
				if got := ruleOf(err); got != c.want {
					t.Fatalf("got rule %q (%v), want %q", got, err, c.want)
				}
				if err != nil {
					var rej *Rejection
					if !errors.As(err, &rej) || rej.Reason == "" || rej.Error() != rej.Reason {
						t.Fatalf("not a Rejection with a reason: %#v", err)
					}
				}
			})
		}
	}
}

func TestSignatureRule(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "signature: event signed by the sender's server is allowed",
			setup: func(r *room) { r.join(rita) },
			ev:    spec(msg(rita))},
		{name: "signature: event not signed by the sender's server is rejected",
			setup: func(r *room) { r.join(rita) },
			ev:    func(r *room) *event.Event { return r.buildSignedBy("test.local", msg(rita)) },
			want:  "signature"},
	})
}

func createSpec(sender string, content map[string]any) mxtest.Spec {
	s := state(sender, "m.room.create", "", content)
	s.PrevEvents = []string{}
	return s
}

func TestCreateRules(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "1.5 create: well-formed create is allowed", only: "10",
			ev: spec(createSpec(alice, map[string]any{"creator": alice, "room_version": "10"}))},
		{name: "1.4 create: v11 needs no creator", only: "11",
			ev: spec(createSpec(alice, map[string]any{"room_version": "11"}))},
		{name: "1.1 create: prev_events are rejected",
			ev: func(r *room) *event.Event {
				s := createSpec(alice, map[string]any{"creator": alice, "room_version": r.Version.ID})
				s.PrevEvents = []string{r.Events[0].ID()}
				return r.build(s)
			},
			want: "1.1"},
		{name: "1.2 create: room_id domain must match sender domain",
			ev:   spec(createSpec(rita, map[string]any{"creator": rita})),
			want: "1.2"},
		{name: "1.3 create: unknown room_version is rejected",
			ev:   spec(createSpec(alice, map[string]any{"creator": alice, "room_version": "99"})),
			want: "1.3"},
		{name: "1.3 create: non-string room_version is rejected",
			ev:   spec(createSpec(alice, map[string]any{"creator": alice, "room_version": int64(10)})),
			want: "1.3"},
		{name: "1.3 create: absent room_version is allowed",
			ev: spec(createSpec(alice, map[string]any{"creator": alice}))},
		{name: "1.4 create: v10 requires content.creator", only: "10",
			ev:   spec(createSpec(alice, map[string]any{"room_version": "10"})),
			want: "1.4"},
		{name: "1.4 create: v11 ignores content.creator", only: "11",
			ev: spec(createSpec(alice, map[string]any{"creator": mallory, "room_version": "11"}))},
	})
}

func TestFederateRule(t *testing.T) {
	noFed := roomOpts{create: map[string]any{"m.federate": false}}
	runCases(t, []ruleCase{
		{name: "3 m.federate false: remote server's join is rejected", opts: noFed,
			ev: spec(member(rita, rita, "join")), want: "3"},
		{name: "3 m.federate false: remote server's message is rejected", opts: noFed,
			setup: func(r *room) { r.force(member(rita, rita, "join")) },
			ev:    spec(msg(rita)), want: "3"},
		{name: "3 m.federate false: the creator's server is allowed", opts: noFed,
			ev: spec(member(bob, bob, "join"))},
		{name: "3 m.federate true: remote server is allowed",
			opts: roomOpts{create: map[string]any{"m.federate": true}},
			ev:   spec(member(rita, rita, "join"))},
		{name: "3 m.federate absent: remote server is allowed",
			ev: spec(member(rita, rita, "join"))},
	})
}

func TestMemberRules(t *testing.T) {
	restricted := func(rule string) func(r *room) {
		return func(r *room) { r.mustAdd(joinRules(alice, rule)) }
	}
	via := func(u string) map[string]any { return map[string]any{"join_authorised_via_users_server": u} }
	runCases(t, []ruleCase{
		// 4.1
		{name: "4.1 member: no state_key is rejected",
			ev: spec(mxtest.Spec{Type: "m.room.member", Sender: bob, Content: map[string]any{"membership": "join"}}), want: "4.1"},
		{name: "4.1 member: no membership is rejected",
			ev: spec(state(bob, "m.room.member", bob, map[string]any{"displayname": "Bob"})), want: "4.1"},

		// 4.2
		{name: "4.2 join_authorised_via_users_server: signed by the authoriser's server is allowed",
			setup: func(r *room) { r.join(rita); r.mustAdd(joinRules(alice, "restricted")) },
			ev: func(r *room) *event.Event {
				return cosign(r.t, r.build(member(bob, bob, "join", via(rita))), mxtest.Signer("remote.example"))
			}},
		{name: "4.2 join_authorised_via_users_server: not signed by the authoriser's server is rejected",
			setup: func(r *room) { r.join(rita); r.mustAdd(joinRules(alice, "restricted")) },
			ev:    spec(member(bob, bob, "join", via(rita))), want: "4.2"},
		{name: "4.2 join_authorised_via_users_server: not a user ID is rejected",
			setup: restricted("restricted"),
			ev:    spec(member(bob, bob, "join", map[string]any{"join_authorised_via_users_server": int64(1)})), want: "4.2"},

		// 4.3.1
		{name: "4.3.1 join: the creator's first join is allowed", opts: roomOpts{bare: true},
			ev: spec(member(alice, alice, "join"))},
		{name: "4.3.1 join: another user's join right after create is not the creator's", opts: roomOpts{bare: true},
			ev: spec(member(bob, bob, "join")), want: "4.3.7"},
		{name: "4.3.1 join: the creator's join after other events falls through", opts: roomOpts{bare: true},
			setup: func(r *room) { r.force(state(alice, "m.room.power_levels", "", plContent(nil))) },
			ev:    spec(member(alice, alice, "join")), want: "4.3.7"},
		{name: "4.3.1 join: v10 creator is content.creator, not the sender", only: "10",
			opts: roomOpts{bare: true, create: map[string]any{"creator": mallory}},
			ev:   spec(member(alice, alice, "join")), want: "4.3.7"},
		{name: "4.3.1 join: v11 creator is the create event's sender", only: "11",
			opts: roomOpts{bare: true, create: map[string]any{"creator": mallory}},
			ev:   spec(member(alice, alice, "join"))},
		// 4.3.2
		{name: "4.3.2 join: sender must match state_key",
			ev: spec(member(alice, bob, "join")), want: "4.3.2"},
		// 4.3.3
		{name: "4.3.3 join: banned user cannot join",
			setup: func(r *room) { r.mustAdd(member(alice, bob, "ban")) },
			ev:    spec(member(bob, bob, "join")), want: "4.3.3"},
		// 4.3.4
		{name: "4.3.4 join: invite rule, invited user may join",
			setup: func(r *room) { r.mustAdd(joinRules(alice, "invite")); r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(member(bob, bob, "join"))},
		{name: "4.3.4 join: invite rule, joined user may join again (profile change)",
			setup: func(r *room) { r.join(bob); r.mustAdd(joinRules(alice, "invite")) },
			ev:    spec(member(bob, bob, "join", map[string]any{"displayname": "Bob"}))},
		{name: "4.3.4 join: invite rule, user who left cannot join",
			setup: func(r *room) {
				r.join(bob)
				r.mustAdd(member(bob, bob, "leave"))
				r.mustAdd(joinRules(alice, "invite"))
			},
			ev: spec(member(bob, bob, "join")), want: "4.3.7"},
		{name: "4.3.4 join: knock rule, invited user may join",
			setup: func(r *room) { r.mustAdd(joinRules(alice, "knock")); r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(member(bob, bob, "join"))},
		{name: "4.3.4 join: knock rule, user who knocked cannot join without an invite",
			setup: func(r *room) { r.mustAdd(joinRules(alice, "knock")); r.mustAdd(member(bob, bob, "knock")) },
			ev:    spec(member(bob, bob, "join")), want: "4.3.7"},
		{name: "4.3.4 join: no join rules event means invite, uninvited user rejected", opts: roomOpts{noJoinRules: true},
			ev: spec(member(bob, bob, "join")), want: "4.3.7"},
		{name: "4.3.4 join: no join rules event means invite, invited user allowed", opts: roomOpts{noJoinRules: true},
			setup: func(r *room) { r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(member(bob, bob, "join"))},
		// 4.3.5
		{name: "4.3.5.3 restricted join: authoriser joined with invite power is allowed",
			setup: restricted("restricted"),
			ev:    spec(member(bob, bob, "join", via(alice)))},
		{name: "4.3.5.2 restricted join: authoriser below the invite level is rejected",
			setup: func(r *room) {
				r.join(carol)
				r.setPL(map[string]any{"invite": int64(50)})
				r.mustAdd(joinRules(alice, "restricted"))
			},
			ev: spec(member(bob, bob, "join", via(carol))), want: "4.3.5.2"},
		{name: "4.3.5.2 restricted join: authoriser at the invite level is allowed",
			setup: func(r *room) {
				r.join(carol)
				r.setPL(map[string]any{"invite": int64(50)}, carol, int64(50))
				r.mustAdd(joinRules(alice, "restricted"))
			},
			ev: spec(member(bob, bob, "join", via(carol)))},
		{name: "4.3.5.2 restricted join: authoriser who never joined is rejected",
			setup: restricted("restricted"),
			ev:    spec(member(bob, bob, "join", via(dave))), want: "4.3.5.2"},
		{name: "4.3.5.2 restricted join: authoriser who left is rejected",
			setup: func(r *room) {
				r.join(dave)
				r.mustAdd(member(dave, dave, "leave"))
				r.mustAdd(joinRules(alice, "restricted"))
			},
			ev: spec(member(bob, bob, "join", via(dave))), want: "4.3.5.2"},
		{name: "4.3.5.2 restricted join: no authoriser and no invite is rejected",
			setup: restricted("restricted"),
			ev:    spec(member(bob, bob, "join")), want: "4.3.5.2"},
		{name: "4.3.5.1 restricted join: invited user needs no authoriser",
			setup: func(r *room) { r.mustAdd(joinRules(alice, "restricted")); r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(member(bob, bob, "join"))},
		{name: "4.3.5.3 knock_restricted join: authoriser joined with invite power is allowed",
			setup: restricted("knock_restricted"),
			ev:    spec(member(bob, bob, "join", via(alice)))},
		{name: "4.3.5.2 knock_restricted join: authoriser who never joined is rejected",
			setup: restricted("knock_restricted"),
			ev:    spec(member(bob, bob, "join", via(dave))), want: "4.3.5.2"},
		{name: "4.3.5.1 knock_restricted join: invited user needs no authoriser",
			setup: func(r *room) {
				r.mustAdd(joinRules(alice, "knock_restricted"))
				r.mustAdd(member(alice, bob, "invite"))
			},
			ev: spec(member(bob, bob, "join"))},
		// 4.3.6, 4.3.7
		{name: "4.3.6 join: public rule, anyone may join",
			ev: spec(member(bob, bob, "join"))},
		{name: "4.3.6 join: public rule, user who left may join again",
			setup: func(r *room) { r.join(bob); r.mustAdd(member(bob, bob, "leave")) },
			ev:    spec(member(bob, bob, "join"))},
		{name: "4.3.6 join: public rule, user who knocked may join",
			setup: func(r *room) {
				r.mustAdd(joinRules(alice, "knock"))
				r.mustAdd(member(bob, bob, "knock"))
				r.mustAdd(joinRules(alice, "public"))
			},
			ev: spec(member(bob, bob, "join"))},
		{name: "4.3.7 join: private rule is rejected",
			setup: func(r *room) { r.mustAdd(joinRules(alice, "private")) },
			ev:    spec(member(bob, bob, "join")), want: "4.3.7"},
		{name: "4.3.7 join: unknown rule is rejected",
			setup: func(r *room) { r.mustAdd(joinRules(alice, "by_appointment")) },
			ev:    spec(member(bob, bob, "join")), want: "4.3.7"},

		// 4.4
		{name: "4.4.4 invite: joined sender at the invite level is allowed",
			ev: spec(member(alice, bob, "invite"))},
		{name: "4.4.4 invite: re-inviting an invited user is allowed",
			setup: func(r *room) { r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(member(alice, bob, "invite"))},
		{name: "4.4.4 invite: inviting a user who left is allowed",
			setup: func(r *room) { r.join(bob); r.mustAdd(member(bob, bob, "leave")) },
			ev:    spec(member(alice, bob, "invite"))},
		{name: "4.4.2 invite: sender not joined is rejected",
			ev: spec(member(bob, carol, "invite")), want: "4.4.2"},
		{name: "4.4.2 invite: invited sender is rejected",
			setup: func(r *room) { r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(member(bob, carol, "invite")), want: "4.4.2"},
		{name: "4.4.3 invite: target already joined is rejected",
			setup: func(r *room) { r.join(bob) },
			ev:    spec(member(alice, bob, "invite")), want: "4.4.3"},
		{name: "4.4.3 invite: banned target is rejected",
			setup: func(r *room) { r.mustAdd(member(alice, bob, "ban")) },
			ev:    spec(member(alice, bob, "invite")), want: "4.4.3"},
		{name: "4.4.5 invite: sender below the invite level is rejected",
			setup: func(r *room) { r.join(bob); r.setPL(map[string]any{"invite": int64(50)}) },
			ev:    spec(member(bob, carol, "invite")), want: "4.4.5"},

		// 4.5
		{name: "4.5.1 leave: joined user may leave",
			setup: func(r *room) { r.join(bob) },
			ev:    spec(member(bob, bob, "leave"))},
		{name: "4.5.1 leave: invited user may reject the invite",
			setup: func(r *room) { r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(member(bob, bob, "leave"))},
		{name: "4.5.1 leave: knocking user may rescind the knock",
			setup: func(r *room) { r.mustAdd(joinRules(alice, "knock")); r.mustAdd(member(bob, bob, "knock")) },
			ev:    spec(member(bob, bob, "leave"))},
		{name: "4.5.1 leave: banned user cannot leave",
			setup: func(r *room) { r.join(bob); r.mustAdd(member(alice, bob, "ban")) },
			ev:    spec(member(bob, bob, "leave")), want: "4.5.1"},
		{name: "4.5.1 leave: user not in the room cannot leave",
			ev: spec(member(bob, bob, "leave")), want: "4.5.1"},
		{name: "4.5.2 kick: sender not joined is rejected",
			setup: func(r *room) { r.join(bob); r.setPL(nil, carol, int64(100)) },
			ev:    spec(member(carol, bob, "leave")), want: "4.5.2"},
		{name: "4.5.3 unban: sender below the ban level is rejected",
			setup: func(r *room) {
				r.join(mod)
				r.setPL(map[string]any{"kick": int64(30), "ban": int64(60)}, mod, int64(50))
				r.mustAdd(member(alice, bob, "ban"))
			},
			ev: spec(member(mod, bob, "leave")), want: "4.5.3"},
		{name: "4.5.4 unban: sender at the ban and kick levels is allowed",
			setup: func(r *room) { r.mustAdd(member(alice, bob, "ban")) },
			ev:    spec(member(alice, bob, "leave"))},
		{name: "4.5.4 kick: sender at the kick level above the target is allowed",
			setup: func(r *room) { r.join(bob) },
			ev:    spec(member(alice, bob, "leave"))},
		{name: "4.5.4 kick: revoking an invite is allowed",
			setup: func(r *room) { r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(member(alice, bob, "leave"))},
		{name: "4.5.5 kick: sender below the kick level is rejected",
			setup: func(r *room) { r.join(bob, carol) },
			ev:    spec(member(bob, carol, "leave")), want: "4.5.5"},
		{name: "4.5.5 kick: target at the sender's level is rejected",
			setup: func(r *room) { r.join(mod, mod2); r.setPL(nil, mod, int64(50), mod2, int64(50)) },
			ev:    spec(member(mod, mod2, "leave")), want: "4.5.5"},

		// 4.6
		{name: "4.6.2 ban: sender at the ban level above the target is allowed",
			setup: func(r *room) { r.join(bob) },
			ev:    spec(member(alice, bob, "ban"))},
		{name: "4.6.2 ban: a user who was never in the room may be banned",
			ev: spec(member(alice, bob, "ban"))},
		{name: "4.6.1 ban: sender not joined is rejected",
			setup: func(r *room) { r.join(bob); r.setPL(nil, carol, int64(100)) },
			ev:    spec(member(carol, bob, "ban")), want: "4.6.1"},
		{name: "4.6.3 ban: sender below the ban level is rejected",
			setup: func(r *room) { r.join(bob, carol) },
			ev:    spec(member(bob, carol, "ban")), want: "4.6.3"},
		{name: "4.6.3 ban: target at the sender's level is rejected",
			setup: func(r *room) { r.join(mod, mod2); r.setPL(nil, mod, int64(50), mod2, int64(50)) },
			ev:    spec(member(mod, mod2, "ban")), want: "4.6.3"},

		// 4.7
		{name: "4.7.3 knock: knock rule allows a knock",
			setup: restricted("knock"),
			ev:    spec(member(bob, bob, "knock"))},
		{name: "4.7.3 knock: knock_restricted rule allows a knock",
			setup: restricted("knock_restricted"),
			ev:    spec(member(bob, bob, "knock"))},
		{name: "4.7.3 knock: user who left may knock",
			setup: func(r *room) { r.join(bob); r.mustAdd(member(bob, bob, "leave")); r.mustAdd(joinRules(alice, "knock")) },
			ev:    spec(member(bob, bob, "knock"))},
		{name: "4.7.1 knock: invite rule rejects a knock",
			setup: restricted("invite"),
			ev:    spec(member(bob, bob, "knock")), want: "4.7.1"},
		{name: "4.7.1 knock: public rule rejects a knock",
			ev: spec(member(bob, bob, "knock")), want: "4.7.1"},
		{name: "4.7.1 knock: restricted rule rejects a knock",
			setup: restricted("restricted"),
			ev:    spec(member(bob, bob, "knock")), want: "4.7.1"},
		{name: "4.7.2 knock: knocking for another user is rejected",
			setup: restricted("knock"),
			ev:    spec(member(alice, bob, "knock")), want: "4.7.2"},
		{name: "4.7.4 knock: banned user cannot knock",
			setup: func(r *room) { r.mustAdd(joinRules(alice, "knock")); r.mustAdd(member(alice, bob, "ban")) },
			ev:    spec(member(bob, bob, "knock")), want: "4.7.4"},
		{name: "4.7.4 knock: invited user cannot knock",
			setup: func(r *room) { r.mustAdd(joinRules(alice, "knock")); r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(member(bob, bob, "knock")), want: "4.7.4"},
		{name: "4.7.4 knock: joined user cannot knock",
			setup: func(r *room) { r.join(bob); r.mustAdd(joinRules(alice, "knock")) },
			ev:    spec(member(bob, bob, "knock")), want: "4.7.4"},

		// 4.8
		{name: "4.8 member: unknown membership is rejected",
			ev: spec(member(bob, bob, "dance")), want: "4.8"},
		{name: "4.8 member: non-string membership is rejected",
			ev: spec(state(bob, "m.room.member", bob, map[string]any{"membership": true})), want: "4.8"},
	})
}

func TestThirdPartyInviteRules(t *testing.T) {
	const token = "tokentoken"
	withTPI := func(r *room) { r.mustAdd(thirdPartyInviteEvent(alice, token, pubB64(idKey))) }
	tpi := func(r *room, signed map[string]any) map[string]any {
		return map[string]any{"display_name": "c...@e...", "signed": signed}
	}
	runCases(t, []ruleCase{
		{name: "4.4.1.7 third-party invite: valid signature is allowed", setup: withTPI,
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, signedBlock(r.t, carol, token, idKey))))
			}},
		{name: "4.4.1.7 third-party invite: key listed in public_keys only is allowed",
			setup: func(r *room) {
				r.mustAdd(thirdPartyInviteEvent(alice, token, pubB64(otherKey), pubB64(idKey)))
			},
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, signedBlock(r.t, carol, token, idKey))))
			}},
		{name: "4.4.1.7 third-party invite: URL-safe base64 public key is allowed",
			setup: func(r *room) {
				k := strings.NewReplacer("+", "-", "/", "_").Replace(pubB64(idKey))
				r.mustAdd(thirdPartyInviteEvent(alice, token, k))
			},
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, signedBlock(r.t, carol, token, idKey))))
			}},
		{name: "4.4.1.7 third-party invite: allowed without the sender being able to invite otherwise",
			setup: func(r *room) {
				withTPI(r)
				r.setPL(map[string]any{"invite": int64(100)}) // rule 4.4.1 does not look at it
			},
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, signedBlock(r.t, carol, token, idKey))))
			}},
		{name: "4.4.1.8 third-party invite: bad signature is rejected", setup: withTPI,
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, signedBlock(r.t, carol, token, otherKey))))
			},
			want: "4.4.1.8"},
		{name: "4.4.1.8 third-party invite: signed object altered after signing is rejected", setup: withTPI,
			ev: func(r *room) *event.Event {
				s := signedBlock(r.t, carol, token, idKey)
				s["sender"] = bob
				return r.build(tpInvite(alice, carol, tpi(r, s)))
			},
			want: "4.4.1.8"},
		{name: "4.4.1.8 third-party invite: signed without signatures is rejected", setup: withTPI,
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, map[string]any{"mxid": carol, "token": token})))
			},
			want: "4.4.1.8"},
		{name: "4.4.1.4 third-party invite: mxid mismatch is rejected", setup: withTPI,
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, signedBlock(r.t, dave, token, idKey))))
			},
			want: "4.4.1.4"},
		{name: "4.4.1.5 third-party invite: no m.room.third_party_invite for the token is rejected", setup: withTPI,
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, signedBlock(r.t, carol, "othertoken", idKey))))
			},
			want: "4.4.1.5"},
		{name: "4.4.1.5 third-party invite: missing token event is rejected",
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, signedBlock(r.t, carol, token, idKey))))
			},
			want: "4.4.1.5"},
		{name: "4.4.1.6 third-party invite: sender differs from the token event's sender is rejected",
			setup: func(r *room) { withTPI(r); r.join(bob) },
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(bob, carol, tpi(r, signedBlock(r.t, carol, token, idKey))))
			},
			want: "4.4.1.6"},
		{name: "4.4.1.1 third-party invite: banned target is rejected",
			setup: func(r *room) { withTPI(r); r.mustAdd(member(alice, carol, "ban")) },
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, tpi(r, signedBlock(r.t, carol, token, idKey))))
			},
			want: "4.4.1.1"},
		{name: "4.4.1.2 third-party invite: no signed object is rejected", setup: withTPI,
			ev: func(r *room) *event.Event {
				return r.build(tpInvite(alice, carol, map[string]any{"display_name": "c...@e..."}))
			},
			want: "4.4.1.2"},
		{name: "4.4.1.3 third-party invite: signed without token is rejected", setup: withTPI,
			ev: func(r *room) *event.Event {
				s := signedBlock(r.t, carol, token, idKey)
				delete(s, "token")
				return r.build(tpInvite(alice, carol, tpi(r, s)))
			},
			want: "4.4.1.3"},
		{name: "4.4.1.3 third-party invite: signed without mxid is rejected", setup: withTPI,
			ev: func(r *room) *event.Event {
				s := signedBlock(r.t, carol, token, idKey)
				delete(s, "mxid")
				return r.build(tpInvite(alice, carol, tpi(r, s)))
			},
			want: "4.4.1.3"},
	})
}

func TestSenderAndPowerRules(t *testing.T) {
	runCases(t, []ruleCase{
		// 5
		{name: "5 message: joined sender is allowed",
			setup: func(r *room) { r.join(bob) },
			ev:    spec(msg(bob))},
		{name: "5 message: sender never in the room is rejected",
			ev: spec(msg(bob)), want: "5"},
		{name: "5 message: invited sender is rejected",
			setup: func(r *room) { r.mustAdd(member(alice, bob, "invite")) },
			ev:    spec(msg(bob)), want: "5"},
		{name: "5 message: sender who left is rejected",
			setup: func(r *room) { r.join(bob); r.mustAdd(member(bob, bob, "leave")) },
			ev:    spec(msg(bob)), want: "5"},
		{name: "5 state: banned sender is rejected even with power",
			setup: func(r *room) { r.join(mod); r.setPL(nil, mod, int64(50)); r.mustAdd(member(alice, mod, "ban")) },
			ev:    spec(state(mod, "m.room.topic", "", map[string]any{"topic": "x"})), want: "5"},

		// 6
		{name: "6 third_party_invite: sender at the invite level is allowed",
			setup: func(r *room) { r.join(bob) },
			ev:    spec(thirdPartyInviteEvent(bob, "tok", pubB64(idKey)))},
		{name: "6 third_party_invite: the invite level decides, not events",
			setup: func(r *room) {
				r.join(bob)
				r.setPL(map[string]any{"events": map[string]any{"m.room.third_party_invite": int64(100)}})
			},
			ev: spec(thirdPartyInviteEvent(bob, "tok", pubB64(idKey)))},
		{name: "6 third_party_invite: sender below the invite level is rejected",
			setup: func(r *room) { r.join(bob); r.setPL(map[string]any{"invite": int64(50)}) },
			ev:    spec(thirdPartyInviteEvent(bob, "tok", pubB64(idKey))), want: "6"},

		// 7
		{name: "7 power: state event below state_default is rejected",
			setup: func(r *room) { r.join(bob) },
			ev:    spec(state(bob, "m.room.topic", "", map[string]any{"topic": "x"})), want: "7"},
		{name: "7 power: state event at state_default is allowed",
			ev: spec(state(alice, "m.room.topic", "", map[string]any{"topic": "x"}))},
		{name: "7 power: message below events_default is rejected",
			setup: func(r *room) { r.join(bob); r.setPL(map[string]any{"events_default": int64(10)}) },
			ev:    spec(msg(bob)), want: "7"},
		{name: "7 power: events entry lowers a state event's level",
			setup: func(r *room) {
				r.join(bob)
				r.setPL(map[string]any{"events": map[string]any{"m.room.topic": int64(0)}})
			},
			ev: spec(state(bob, "m.room.topic", "", map[string]any{"topic": "x"}))},
		{name: "7 power: events entry raises a message's level",
			setup: func(r *room) {
				r.join(bob)
				r.setPL(map[string]any{"events": map[string]any{"m.room.message": int64(20)}}, bob, int64(10))
			},
			ev: spec(msg(bob)), want: "7"},
		{name: "7 power: users_default applies to unlisted users",
			setup: func(r *room) { r.join(bob); r.setPL(map[string]any{"users_default": int64(50)}) },
			ev:    spec(state(bob, "m.room.topic", "", map[string]any{"topic": "x"}))},
		{name: "7 power: unknown state type defaults to state_default",
			setup: func(r *room) { r.join(bob); r.setPL(map[string]any{"state_default": int64(20)}, bob, int64(10)) },
			ev:    spec(state(bob, "com.example.setting", "", map[string]any{"x": true})), want: "7"},
		{name: "7 power: unknown message type defaults to events_default",
			setup: func(r *room) { r.join(bob) },
			ev:    spec(mxtest.Spec{Type: "com.example.ping", Sender: bob, Content: map[string]any{}})},
		{name: "7 power: no power levels event, the creator has 100", opts: roomOpts{noPL: true},
			ev: spec(state(alice, "m.room.topic", "", map[string]any{"topic": "x"}))},
		{name: "7 power: no power levels event, others have 0 and state_default is 50", opts: roomOpts{noPL: true},
			setup: func(r *room) { r.join(bob) },
			ev:    spec(state(bob, "m.room.topic", "", map[string]any{"topic": "x"})), want: "7"},
		{name: "7 power: no power levels event, events_default is 0", opts: roomOpts{noPL: true},
			setup: func(r *room) { r.join(bob) },
			ev:    spec(msg(bob))},
		{name: "7 power: no power levels event, v10 creator is content.creator", only: "10",
			opts:  roomOpts{noPL: true, noJoinRules: true, bare: true},
			setup: func(r *room) { r.join(alice); r.mustAdd(joinRules(alice, "public")); r.join(bob) },
			ev:    spec(state(bob, "m.room.name", "", map[string]any{"name": "x"})), want: "7"},

		// 8
		{name: "8 state_key: @-key of another user is rejected even for the admin",
			ev: spec(state(alice, "com.example.user_state", bob, map[string]any{})), want: "8"},
		{name: "8 state_key: @-key equal to the sender is allowed",
			setup: func(r *room) {
				r.join(bob)
				r.setPL(map[string]any{"events": map[string]any{"com.example.user_state": int64(0)}})
			},
			ev: spec(state(bob, "com.example.user_state", bob, map[string]any{}))},
		{name: "8 state_key: @-prefixed key that is not a user ID is rejected",
			ev: spec(state(alice, "com.example.user_state", "@alice:test.local_device", map[string]any{})), want: "8"},
		{name: "8 state_key: key not starting with @ is allowed",
			ev: spec(state(alice, "com.example.user_state", "alice", map[string]any{}))},
	})
}

func TestRedactionRules(t *testing.T) {
	redaction := func(sender string) func(r *room) *event.Event {
		return func(r *room) *event.Event {
			var target string
			for _, e := range r.Events {
				if e.Type() == "m.room.message" {
					target = e.ID()
				}
			}
			return r.build(mxtest.Spec{Type: "m.room.redaction", Sender: sender, Redacts: target, Content: map[string]any{"reason": "spam"}})
		}
	}
	runCases(t, []ruleCase{
		{name: "7 redaction: the redact level is not an auth rule, any member may send one",
			setup: func(r *room) { r.join(bob); r.mustAdd(msg(alice)) },
			ev:    redaction(bob)},
		{name: "7 redaction: a remote member may send one for another server's event",
			setup: func(r *room) { r.join(rita); r.mustAdd(msg(alice)) },
			ev:    redaction(rita)},
		{name: "7 redaction: events[m.room.redaction] above the sender is rejected",
			setup: func(r *room) {
				r.join(bob)
				r.setPL(map[string]any{"events": map[string]any{"m.room.redaction": int64(50)}})
				r.mustAdd(msg(bob))
			},
			ev: redaction(bob), want: "7"},
		{name: "5 redaction: sender not joined is rejected",
			setup: func(r *room) { r.mustAdd(msg(alice)) },
			ev:    redaction(bob), want: "5"},
	})
}

func TestPowerLevelsRules(t *testing.T) {
	pl := func(sender string, extra map[string]any, users ...any) func(r *room) *event.Event {
		return spec(state(sender, "m.room.power_levels", "", plContent(extra, users...)))
	}
	// modRoom: mod and mod2 at 50 may send power levels; bob at 10; ban
	// at 100; events and notifications have entries above 50.
	modExtra := func(changes map[string]any) map[string]any {
		base := map[string]any{
			"ban":           int64(100),
			"events":        map[string]any{"m.room.power_levels": int64(50), "m.room.tombstone": int64(100)},
			"notifications": map[string]any{"room": int64(100)},
		}
		for k, v := range changes {
			base[k] = v
		}
		return base
	}
	modUsers := func(changes ...any) []any {
		return append([]any{mod, int64(50), mod2, int64(50), bob, int64(10)}, changes...)
	}
	modRoom := func(r *room) {
		r.join(mod, mod2, bob)
		r.setPL(modExtra(nil), modUsers()...)
	}
	modPL := func(changes map[string]any, users ...any) func(r *room) *event.Event {
		return pl(mod, modExtra(changes), modUsers(users...)...)
	}
	runCases(t, []ruleCase{
		// 9.1
		{name: "9.1 power levels: integer values are allowed",
			ev: pl(alice, map[string]any{"ban": int64(50), "kick": int64(50), "redact": int64(50), "invite": int64(0),
				"users_default": int64(0), "events_default": int64(0), "state_default": int64(50)})},
		{name: "9.1 power levels: string ban is rejected",
			ev: pl(alice, map[string]any{"ban": "50"}), want: "9.1"},
		{name: "9.1 power levels: string users_default is rejected",
			ev: pl(alice, map[string]any{"users_default": "0"}), want: "9.1"},
		{name: "9.1 power levels: boolean kick is rejected",
			ev: pl(alice, map[string]any{"kick": true}), want: "9.1"},
		{name: "9.1 power levels: null redact is rejected",
			ev: func(r *room) *event.Event {
				c := plContent(nil)
				c["redact"] = nil
				return r.build(state(alice, "m.room.power_levels", "", c))
			},
			want: "9.1"},
		{name: "9.1 power levels: object state_default is rejected",
			ev: pl(alice, map[string]any{"state_default": map[string]any{}}), want: "9.1"},
		// 9.2
		{name: "9.2 power levels: integer events and notifications are allowed",
			ev: pl(alice, map[string]any{"events": map[string]any{"m.room.name": int64(50)}, "notifications": map[string]any{"room": int64(50)}})},
		{name: "9.2 power levels: string events value is rejected",
			ev: pl(alice, map[string]any{"events": map[string]any{"m.room.name": "50"}}), want: "9.2"},
		{name: "9.2 power levels: events not an object is rejected",
			ev: pl(alice, map[string]any{"events": []any{}}), want: "9.2"},
		{name: "9.2 power levels: boolean notifications value is rejected",
			ev: pl(alice, map[string]any{"notifications": map[string]any{"room": false}}), want: "9.2"},
		{name: "9.2 power levels: notifications not an object is rejected",
			ev: pl(alice, map[string]any{"notifications": int64(50)}), want: "9.2"},
		// 9.3
		{name: "9.3 power levels: string users value is rejected",
			ev: pl(alice, nil, bob, "50"), want: "9.3"},
		{name: "9.3 power levels: boolean users value is rejected",
			ev: pl(alice, nil, bob, true), want: "9.3"},
		{name: "9.3 power levels: users key without @ is rejected",
			ev: pl(alice, nil, "bob:test.local", int64(10)), want: "9.3"},
		{name: "9.3 power levels: users key without server name is rejected",
			ev: pl(alice, nil, "@bob", int64(10)), want: "9.3"},
		{name: "9.3 power levels: users key with an empty server name is rejected",
			ev: pl(alice, nil, "@bob:", int64(10)), want: "9.3"},
		{name: "9.3 power levels: users key with a bad server name is rejected",
			ev: pl(alice, nil, "@bob:bad host", int64(10)), want: "9.3"},
		{name: "9.3 power levels: users not an object is rejected",
			ev: pl(alice, map[string]any{"users": []any{alice}}), want: "9.3"},
		{name: "9.3 power levels: historical localpart and server with port are allowed",
			ev: pl(alice, nil, "@Bob Old!:test.local:8448", int64(10), "@:test.local", int64(2), "@x:[::1]:8448", int64(1), "@y:1.2.3.4", int64(1))},
		{name: "9.3 power levels: no users key is allowed",
			ev: pl(alice, map[string]any{"users": nil, "users_default": int64(100)})},
		// 9.4
		{name: "9.4 power levels: the first power levels event is allowed", opts: roomOpts{noPL: true},
			ev: pl(alice, nil, bob, int64(1000))},
		{name: "9.4 power levels: the first one still needs the state level", opts: roomOpts{noPL: true},
			setup: func(r *room) { r.join(bob) },
			ev:    pl(bob, nil, bob, int64(100)), want: "7"},
		// 9.5
		{name: "9.5 power levels: lowering a level at or below own level is allowed", setup: modRoom,
			ev: modPL(map[string]any{"kick": int64(40)})},
		{name: "9.5.1 power levels: changing a level above own level is rejected", setup: modRoom,
			ev: modPL(map[string]any{"ban": int64(50)}), want: "9.5.1"},
		{name: "9.5.1 power levels: removing a level above own level is rejected", setup: modRoom,
			ev: modPL(map[string]any{"ban": nil}), want: "9.5.1"},
		{name: "9.5.2 power levels: raising a level above own level is rejected", setup: modRoom,
			ev: modPL(map[string]any{"kick": int64(60)}), want: "9.5.2"},
		{name: "9.5.2 power levels: raising a level to own level is allowed", setup: modRoom,
			ev: modPL(map[string]any{"invite": int64(50)})},
		// 9.6, 9.7
		{name: "9.6 power levels: changing an events entry above own level is rejected", setup: modRoom,
			ev: modPL(map[string]any{"events": map[string]any{"m.room.power_levels": int64(50), "m.room.tombstone": int64(50)}}), want: "9.6"},
		{name: "9.6 power levels: removing an events entry above own level is rejected", setup: modRoom,
			ev: modPL(map[string]any{"events": map[string]any{"m.room.power_levels": int64(50)}}), want: "9.6"},
		{name: "9.6 power levels: changing a notifications entry above own level is rejected", setup: modRoom,
			ev: modPL(map[string]any{"notifications": map[string]any{"room": int64(0)}}), want: "9.6"},
		{name: "9.7 power levels: adding an events entry above own level is rejected", setup: modRoom,
			ev: modPL(map[string]any{"events": map[string]any{"m.room.power_levels": int64(50), "m.room.tombstone": int64(100), "m.room.topic": int64(60)}}), want: "9.7"},
		{name: "9.7 power levels: adding an events entry at own level is allowed", setup: modRoom,
			ev: modPL(map[string]any{"events": map[string]any{"m.room.power_levels": int64(50), "m.room.tombstone": int64(100), "m.room.topic": int64(50)}})},
		{name: "9.7 power levels: adding a notifications entry above own level is rejected", setup: modRoom,
			ev: modPL(map[string]any{"notifications": map[string]any{"room": int64(100), "com.example": int64(51)}}), want: "9.7"},
		// 9.8, 9.9
		{name: "9.8 power levels: demoting a peer at own level is rejected", setup: modRoom,
			ev: modPL(nil, mod2, int64(0)), want: "9.8"},
		{name: "9.8 power levels: removing a peer at own level is rejected", setup: modRoom,
			ev: modPL(nil, mod2, nil), want: "9.8"},
		{name: "9.8 power levels: changing a user above own level is rejected", setup: modRoom,
			ev: modPL(nil, alice, int64(50)), want: "9.8"},
		{name: "9.8 power levels: demoting a user below own level is allowed", setup: modRoom,
			ev: modPL(nil, bob, int64(0))},
		{name: "9.8 power levels: removing a user below own level is allowed", setup: modRoom,
			ev: modPL(nil, bob, nil)},
		{name: "9.8 power levels: demoting oneself is allowed", setup: modRoom,
			ev: modPL(nil, mod, int64(20))},
		{name: "9.9 power levels: raising a user above own level is rejected", setup: modRoom,
			ev: modPL(nil, bob, int64(60)), want: "9.9"},
		{name: "9.9 power levels: adding a user above own level is rejected", setup: modRoom,
			ev: modPL(nil, carol, int64(51)), want: "9.9"},
		{name: "9.9 power levels: raising a user to own level is allowed", setup: modRoom,
			ev: modPL(nil, bob, int64(50))},
		{name: "9.10 power levels: unchanged content is allowed", setup: modRoom,
			ev: modPL(nil)},
		{name: "7 power levels: sender below the power levels event level is rejected", setup: modRoom,
			ev: pl(bob, modExtra(nil), modUsers()...), want: "7"},
	})
}

// Rule 2 is about the auth_events list itself: CheckAuthEvents.
func TestAuthEventsRules(t *testing.T) {
	type tc struct {
		name     string
		build    func(r *room) (e *event.Event, auth []*event.Event, rejected func(string) bool)
		want     string
		wantMiss bool
	}
	st := func(r *room, typ, sk string) *event.Event { return r.State[event.StateTuple{Type: typ, StateKey: sk}] }
	ids := func(evs ...*event.Event) []string {
		out := []string{}
		for _, e := range evs {
			out = append(out, e.ID())
		}
		return out
	}
	withAuth := func(r *room, s mxtest.Spec, evs ...*event.Event) (*event.Event, []*event.Event, func(string) bool) {
		s.AuthEvents = ids(evs...)
		return r.build(s), evs, nil
	}
	cases := []tc{
		{name: "2 auth events: the selected auth events are allowed",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				e := r.build(msg(alice))
				return e, r.authEventsOf(e), nil
			}},
		{name: "2 auth events: a subset of the selection is allowed",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				return withAuth(r, msg(alice), st(r, "m.room.create", ""), st(r, "m.room.member", alice))
			}},
		{name: "2.1 auth events: duplicate (type, state_key) is rejected",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				old := st(r, "m.room.member", alice)
				r.mustAdd(member(alice, alice, "join", map[string]any{"displayname": "Alice"}))
				return withAuth(r, msg(alice), st(r, "m.room.create", ""), st(r, "m.room.power_levels", ""), old, st(r, "m.room.member", alice))
			},
			want: "2.1"},
		{name: "2.1 auth events: the same event twice is rejected",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				c := st(r, "m.room.create", "")
				return withAuth(r, msg(alice), c, st(r, "m.room.member", alice), c)
			},
			want: "2.1"},
		{name: "2.2 auth events: an entry the selection does not pick is rejected",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				return withAuth(r, msg(alice), st(r, "m.room.create", ""), st(r, "m.room.member", alice), st(r, "m.room.join_rules", ""))
			},
			want: "2.2"},
		{name: "2.2 auth events: another user's member event is rejected for a message",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				r.join(bob)
				return withAuth(r, msg(alice), st(r, "m.room.create", ""), st(r, "m.room.member", alice), st(r, "m.room.member", bob))
			},
			want: "2.2"},
		{name: "2.2 auth events: a non-state event is rejected",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				m := r.mustAdd(msg(alice))
				return withAuth(r, msg(alice), st(r, "m.room.create", ""), st(r, "m.room.member", alice), m)
			},
			want: "2.2"},
		{name: "2.3 auth events: a rejected auth event is rejected",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				e := r.build(msg(alice))
				bad := st(r, "m.room.power_levels", "").ID()
				return e, r.authEventsOf(e), func(id string) bool { return id == bad }
			},
			want: "2.3"},
		{name: "2.4 auth events: no create event is rejected",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				return withAuth(r, msg(alice), st(r, "m.room.power_levels", ""), st(r, "m.room.member", alice))
			},
			want: "2.4"},
		{name: "2.5 auth events: an event of another room is rejected",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				other := newRoom(r.t, r.Version.ID, roomOpts{})
				other.ID = "!other:test.local"
				other.Events, other.State = nil, map[event.StateTuple]*event.Event{}
				c := other.mustAdd(createSpec(alice, map[string]any{"creator": alice, "room_version": r.Version.ID}))
				return withAuth(r, msg(alice), c, st(r, "m.room.member", alice))
			},
			want: "2.5"},
		{name: "2 auth events: missing auth events are reported, not rejected",
			build: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				e := r.build(msg(alice))
				return e, r.authEventsOf(e)[:1], nil
			},
			wantMiss: true},
	}
	for _, v := range versions {
		for _, c := range cases {
			t.Run("v"+v+"/"+c.name, func(t *testing.T) {
				r := newRoom(t, v, roomOpts{})
				e, auth, rejected := c.build(r)
				err := CheckWithAuthEvents(e, auth, rejected)
				if c.wantMiss {
					if !errors.Is(err, ErrMissingAuthEvents) {
						t.Fatalf("got %v, want ErrMissingAuthEvents", err)
					}
					return
				}
				if got := ruleOf(err); got != c.want {
					t.Fatalf("got rule %q (%v), want %q", got, err, c.want)
				}
			})
		}
	}
}

// Check on a state map (rather than the auth_events list) applies rules
// 2.4 and 2.5 to the entries it uses.
func TestCheckStateMapRules(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v+"/2.4 state: no create event is rejected", func(t *testing.T) {
			r := newRoom(t, v, roomOpts{})
			e := r.build(msg(alice))
			s := r.selected(e)
			delete(s, event.StateTuple{Type: "m.room.create"})
			if got := ruleOf(Check(e, s)); got != "2.4" {
				t.Fatalf("got %q", got)
			}
			if got := ruleOf(Check(e, nil)); got != "2.4" {
				t.Fatalf("nil state: got %q", got)
			}
		})
		t.Run("v"+v+"/2.5 state: an entry of another room is rejected", func(t *testing.T) {
			r := newRoom(t, v, roomOpts{})
			other := newRoom(t, v, roomOpts{})
			other.ID = "!other:test.local"
			other.Events, other.State = nil, map[event.StateTuple]*event.Event{}
			other.mustAdd(createSpec(alice, map[string]any{"creator": alice, "room_version": v}))
			other.mustAdd(member(alice, alice, "join"))
			e := r.build(msg(alice))
			s := r.selected(e)
			s[event.StateTuple{Type: "m.room.member", StateKey: alice}] = other.State[event.StateTuple{Type: "m.room.member", StateKey: alice}]
			if got := ruleOf(Check(e, s)); got != "2.5" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// The room versions' floats can't reach the rules: canonical JSON has no
// floats, so such an event fails to parse (and is dropped). The content
// check still refuses them.
func TestFloatPowerLevels(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v+"/9.1 power levels: a float is rejected", func(t *testing.T) {
			ver, _ := event.LookupVersion(v)
			raw := fmt.Sprintf(`{"type":"m.room.power_levels","state_key":"","sender":%q,"room_id":"!room:test.local",`+
				`"content":{"ban":50.5,"users":{%q:100}},"depth":3,"origin_server_ts":1,"prev_events":[],"auth_events":[],`+
				`"hashes":{"sha256":"x"},"signatures":{}}`, alice, alice)
			if _, err := event.Parse([]byte(raw), ver); !errors.Is(err, event.ErrFormat) {
				t.Fatalf("Parse of a float power level: %v, want ErrFormat", err)
			}
			r := newRoom(t, v, roomOpts{})
			_, err := event.Build(event.Template{Type: "m.room.power_levels", StateKey: mxtest.SK(""), Sender: alice,
				RoomID: r.ID, Content: map[string]any{"users": map[string]any{alice: 99.5}}}, ver, r.Signer)
			if err == nil {
				t.Fatal("Build accepted a float power level")
			}
			for name, c := range map[string]map[string]any{
				"9.1": {"ban": 50.5},
				"9.2": {"events": map[string]any{"m.room.name": 50.0}},
				"9.3": {"users": map[string]any{alice: float64(100)}},
			} {
				if got := ruleOf(checkPowerLevelsContent(c)); got != name {
					t.Errorf("%v: got rule %q, want %s", c, got, name)
				}
			}
		})
	}
}

func TestAuthEventTypes(t *testing.T) {
	tup := func(t, k string) event.StateTuple { return event.StateTuple{Type: t, StateKey: k} }
	base := []event.StateTuple{tup("m.room.create", ""), tup("m.room.power_levels", ""), tup("m.room.member", bob)}
	cases := []struct {
		name string
		typ  string
		sk   *string
		c    map[string]any
		want []event.StateTuple
	}{
		{"create", "m.room.create", mxtest.SK(""), nil, nil},
		{"message", "m.room.message", nil, nil, base},
		{"state", "m.room.topic", mxtest.SK(""), nil, base},
		{"join", "m.room.member", mxtest.SK(bob), map[string]any{"membership": "join"},
			append(base[:3:3], tup("m.room.join_rules", ""))},
		{"restricted join", "m.room.member", mxtest.SK(bob), map[string]any{"membership": "join", "join_authorised_via_users_server": alice},
			append(base[:3:3], tup("m.room.join_rules", ""), tup("m.room.member", alice))},
		{"invite", "m.room.member", mxtest.SK(carol), map[string]any{"membership": "invite"},
			append(base[:3:3], tup("m.room.member", carol), tup("m.room.join_rules", ""))},
		{"third-party invite", "m.room.member", mxtest.SK(carol),
			map[string]any{"membership": "invite", "third_party_invite": map[string]any{"signed": map[string]any{"token": "abc"}}},
			append(base[:3:3], tup("m.room.member", carol), tup("m.room.join_rules", ""), tup("m.room.third_party_invite", "abc"))},
		{"knock", "m.room.member", mxtest.SK(bob), map[string]any{"membership": "knock"},
			append(base[:3:3], tup("m.room.join_rules", ""))},
		{"leave (kick)", "m.room.member", mxtest.SK(carol), map[string]any{"membership": "leave"},
			append(base[:3:3], tup("m.room.member", carol))},
		{"ban", "m.room.member", mxtest.SK(carol), map[string]any{"membership": "ban", "join_authorised_via_users_server": alice},
			append(base[:3:3], tup("m.room.member", carol))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := AuthEventTypes(c.typ, c.sk, bob, c.c)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %v\nwant %v", got, c.want)
			}
		})
	}
	// It agrees with mxtest's selection on a room where everything exists.
	for _, v := range versions {
		r := newRoom(t, v, roomOpts{})
		r.join(bob, carol)
		r.mustAdd(thirdPartyInviteEvent(alice, "abc", pubB64(idKey)))
		for _, c := range cases[1:] {
			s := mxtest.Spec{Type: c.typ, StateKey: c.sk, Sender: bob, Content: c.c}
			want := map[string]bool{}
			for _, id := range r.DefaultAuthEvents(s) {
				want[id] = true
			}
			got := map[string]bool{}
			for _, tu := range AuthEventTypes(c.typ, c.sk, bob, c.c) {
				if e := r.State[tu]; e != nil {
					got[e.ID()] = true
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("v%s %s: AuthEventTypes picks %v, mxtest %v", v, c.name, got, want)
			}
		}
	}
}

func TestPowerLevels(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v+"/defaults without a power levels event", func(t *testing.T) {
			r := newRoom(t, v, roomOpts{noPL: true})
			p := PowerLevelsFromState(StateMap(r.State))
			if p.Exists() {
				t.Fatal("Exists")
			}
			got := []int64{p.UserLevel(alice), p.UserLevel(bob), p.EventLevel("m.room.message", false), p.EventLevel("m.room.topic", true),
				p.Invite(), p.Kick(), p.Ban(), p.Redact(), p.RoomNotificationLevel(), p.UsersDefault()}
			want := []int64{100, 0, 0, 50, 0, 50, 50, 50, 50, 0}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
		t.Run("v"+v+"/defaults of an empty power levels event", func(t *testing.T) {
			r := newRoom(t, v, roomOpts{})
			r.setPL(map[string]any{"users": nil})
			p := PowerLevelsFromState(StateMap(r.State))
			got := []int64{p.UserLevel(alice), p.EventLevel("m.room.message", false), p.EventLevel("m.room.topic", true),
				p.Invite(), p.Kick(), p.Ban(), p.Redact(), p.NotificationLevel("room"), p.NotificationLevel("other")}
			want := []int64{0, 0, 50, 0, 50, 50, 50, 50, 50}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
		t.Run("v"+v+"/explicit values", func(t *testing.T) {
			r := newRoom(t, v, roomOpts{})
			r.setPL(map[string]any{"users_default": int64(5), "events_default": int64(7), "state_default": int64(60),
				"invite": int64(1), "kick": int64(2), "ban": int64(3), "redact": int64(4),
				"events":        map[string]any{"m.room.name": int64(11)},
				"notifications": map[string]any{"room": int64(12)}}, bob, int64(30))
			p := PowerLevelsFromState(StateMap(r.State))
			got := []int64{p.UserLevel(alice), p.UserLevel(bob), p.UserLevel(carol), p.EventLevel("m.room.message", false),
				p.EventLevel("m.room.topic", true), p.EventLevel("m.room.name", true), p.Invite(), p.Kick(), p.Ban(), p.Redact(),
				p.RoomNotificationLevel(), p.StateDefault(), p.EventsDefault()}
			want := []int64{100, 30, 5, 7, 60, 11, 1, 2, 3, 4, 12, 60, 7}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if u := p.Users(); len(u) != 2 || u[bob] != 30 {
				t.Fatalf("Users() = %v", u)
			}
			if ev := p.Events(); ev["m.room.name"] != 11 || p.Notifications()["room"] != 12 {
				t.Fatalf("Events() = %v", ev)
			}
		})
	}
	t.Run("creator per version", func(t *testing.T) {
		for _, v := range versions {
			r := newRoom(t, v, roomOpts{bare: true, create: map[string]any{"creator": mallory}})
			p := NewPowerLevels(r.State[event.StateTuple{Type: "m.room.create"}], nil)
			wantAlice, wantMallory := int64(0), int64(100)
			if v == "11" {
				wantAlice, wantMallory = 100, 0
			}
			if p.UserLevel(alice) != wantAlice || p.UserLevel(mallory) != wantMallory {
				t.Errorf("v%s: alice %d, mallory %d", v, p.UserLevel(alice), p.UserLevel(mallory))
			}
		}
	})
	t.Run("zero value", func(t *testing.T) {
		var p PowerLevels
		if p.UserLevel("") != 0 || p.StateDefault() != 50 || p.Ban() != 50 {
			t.Fatal("zero value defaults")
		}
	})
}

func TestRedactionAllowed(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v+"/handling redactions", func(t *testing.T) {
			r := newRoom(t, v, roomOpts{})
			r.join(bob, rita, mod)
			r.setPL(nil, mod, int64(50))
			m := r.mustAdd(msg(alice))
			rm := r.mustAdd(msg(rita))
			red := func(sender, target string) *event.Event {
				return r.mustAdd(mxtest.Spec{Type: "m.room.redaction", Sender: sender, Redacts: target, Content: map[string]any{}})
			}
			p := PowerLevelsFromState(StateMap(r.State))
			for _, c := range []struct {
				name      string
				redaction *event.Event
				original  *event.Event
				want      bool
			}{
				{"same server as the original sender", red(bob, m.ID()), m, true},
				{"other server below the redact level", red(rita, m.ID()), m, false},
				{"own event from another server", red(rita, rm.ID()), rm, true},
				{"at the redact level", red(mod, rm.ID()), rm, true},
				{"redacts another event", red(rita, rm.ID()), m, false},
			} {
				if got := RedactionAllowed(c.redaction, c.original, p); got != c.want {
					t.Errorf("%s: got %v", c.name, got)
				}
			}
			if r.Version.V11Redaction {
				if _, top := r.Events[len(r.Events)-1].Object()["redacts"]; top {
					t.Error("v11 redaction has a top-level redacts")
				}
			}
		})
	}
}

func TestRequiredSigners(t *testing.T) {
	r := newRoom(t, "10", roomOpts{})
	cases := []struct {
		e    *event.Event
		want string
	}{
		{r.build(msg(rita)), "[remote.example]"},
		{r.build(member(bob, bob, "join", map[string]any{"join_authorised_via_users_server": rita})), "[test.local remote.example]"},
		{r.build(tpInvite(rita, carol, map[string]any{"signed": map[string]any{}})), "[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(RequiredSigners(c.e)); got != c.want {
			t.Errorf("%s by %s: got %s, want %s", c.e.Type(), c.e.Sender(), got, c.want)
		}
	}
}

func TestValidUserID(t *testing.T) {
	for s, want := range map[string]bool{
		"@alice:example.org":                   true,
		"@a:b":                                 true,
		"@a:b:8448":                            true,
		"@a:[2001:db8::1]:443":                 true,
		"@a:1.2.3.4":                           true,
		"@Ünicode Bob:example.org":             true, // historical localparts
		"@:example.org":                        true,
		"@a\x00b:example.org":                  false,
		"@a\xffb:example.org":                  false,
		"@a:":                                  false,
		"@a":                                   false,
		"@a:exa mple.org":                      false,
		"@a:example.org:":                      false,
		"@a:example.org:123456":                false,
		"@a:[zz]":                              false,
		"alice:example.org":                    false,
		"@a" + strings.Repeat("b", 260) + ":x": false,
		"@" + strings.Repeat("b", 251) + ":x":  true,
	} {
		if got := validUserID(s); got != want {
			t.Errorf("validUserID(%q) = %v", s, got)
		}
	}
}

// The rules never modify the events they read, so concurrent checks of
// one event are safe (go test -race).
func TestConcurrentCheck(t *testing.T) {
	r := newRoom(t, "11", roomOpts{})
	r.mustAdd(thirdPartyInviteEvent(alice, "tok", pubB64(idKey)))
	e := r.build(tpInvite(alice, carol, map[string]any{"signed": signedBlock(t, carol, "tok", idKey)}))
	s := r.selected(e)
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			var err error
			for j := 0; j < 20 && err == nil; j++ {
				err = Check(e, s)
			}
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// benchRoom is a room with n joined members, all listed in the power
// levels.
func benchRoom(b *testing.B, n int) (*room, *event.Event) {
	r := newRoom(b, "10", roomOpts{})
	users := []any{}
	for i := 0; i < n; i++ {
		u := fmt.Sprintf("@user%04d:test.local", i)
		r.append(r.build(member(u, u, "join")))
		users = append(users, u, int64(i%50))
	}
	r.append(r.build(state(alice, "m.room.power_levels", "", plContent(nil, users...))))
	e := r.build(msg("@user0500:test.local"))
	return r, e
}

func BenchmarkCheckMessage1000Members(b *testing.B) {
	r, e := benchRoom(b, 1000)
	auth := r.selected(e)
	if len(auth) != 3 {
		b.Fatalf("auth state has %d entries", len(auth))
	}
	if err := Check(e, auth); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := Check(e, auth); err != nil {
			b.Fatal(err)
		}
	}
}

// The same against the whole room state (1,000+ entries), as for the
// current-state (soft failure) check.
func BenchmarkCheckMessage1000MembersFullState(b *testing.B) {
	r, e := benchRoom(b, 1000)
	state := StateMap(r.State)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := Check(e, state); err != nil {
			b.Fatal(err)
		}
	}
}

// A power levels change in that room: rule 9 walks the 1,000 users.
func BenchmarkCheckPowerLevels1000Users(b *testing.B) {
	r, _ := benchRoom(b, 1000)
	old := r.State[event.StateTuple{Type: "m.room.power_levels"}].Content()["users"].(map[string]any)
	users := []any{}
	for k, v := range old {
		users = append(users, k, v)
	}
	users = append(users, "@user0001:test.local", int64(7))
	e := r.build(state(alice, "m.room.power_levels", "", plContent(nil, users...)))
	auth := r.selected(e)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := Check(e, auth); err != nil {
			b.Fatal(err)
		}
	}
}

// Reasons are what clients read (M_FORBIDDEN's error), and deterministic.
func TestRejectionReasons(t *testing.T) {
	r := newRoom(t, "11", roomOpts{})
	r.join(bob)
	for _, c := range []struct {
		s    mxtest.Spec
		want string
	}{
		{state(bob, "m.room.topic", "", map[string]any{"topic": "x"}),
			"sender's power level 0 is below the level 50 required to send m.room.topic"},
		{msg(carol), `@carol:test.local is not joined to the room (membership "leave")`},
		{member(bob, carol, "ban"), "sender's power level 0 is below the ban level 50"},
		{state(alice, "m.room.power_levels", "", plContent(nil, "@z", int64(1), "@b", int64(1), "@y:ok", "1")),
			`power levels users key "@b" is not a valid user ID`},
		{state(alice, "m.room.power_levels", "", plContent(map[string]any{"ban": "50"})),
			`power level "ban" must be an integer, not "50" (a string)`},
	} {
		for i := 0; i < 5; i++ {
			err := r.check(r.build(c.s))
			if err == nil || err.Error() != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		}
	}
}
