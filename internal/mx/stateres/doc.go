// Package stateres is state resolution v2, the algorithm room versions 2 to
// 11 use to merge the room states of the branches of a forked event graph
// into one (spec, rooms/v2 "State resolution"; room version 12's v2.1 is
// not implemented). It is pure: events come from a fetch function the
// caller supplies, and nothing is stored.
//
// Given state sets S1, S2, … (maps from (type, state_key) to event ID), an
// entry that every set holds with the same event is unconflicted and is
// kept as it is. Every other event of a state set is conflicted. To those
// the algorithm adds the auth difference: the events that are in the auth
// chain of some state sets but not of all (the auth chain of a state set is
// its events and everything reachable from them through auth_events). The
// union is the full conflicted set, and only its events are replayed.
// First the power events among them (power levels, join rules, the create
// event, and bans and kicks: leave or ban memberships sent by someone other
// than their target), together with the events of their auth chains that
// are also in the full conflicted set, are sorted in the reverse topological
// power ordering — auth events before the events that cite them, and among
// the events that are free to come next, the one whose sender has the
// highest power level (as the power levels event in its own auth events
// says), then the earliest origin_server_ts, then the smallest event ID —
// and replayed through the authorization rules on top of the unconflicted
// state: each event that passes replaces its (type, state_key) entry, each
// that fails is skipped. This settles who has power before anything else is
// judged, so that, say, a ban on one branch beats a join on another.
//
// The remaining events are then sorted along the mainline of the power
// levels event that won: the chain of power levels events reached by
// following each one's power levels auth event back to the start of the
// room. An event's position is that of the first mainline event on its own
// chain of power levels auth events; events based on older power levels
// come first, ties go to the earliest origin_server_ts, then the smallest
// event ID. They are replayed through the authorization rules in that
// order, so the latest event that is still allowed wins. Finally the
// unconflicted entries are put back over the result.
//
// In the replay, the auth events an event is checked against are the
// entries of the partially resolved state for the keys the auth rules need
// (authrules.AuthEventTypes); a key the state lacks is taken from the
// event's own auth_events, unless the caller marks that auth event as
// rejected (Options.Rejected).
//
// When the state sets agree, Resolve returns their common state without
// fetching anything. Otherwise it needs every event of the state sets and
// of their whole auth chains: the auth chains decide what is conflicted, so
// resolving without part of them could give another answer than other
// servers get. An event fetch cannot supply is an error (ErrMissingEvent),
// not a rejection; the caller should fetch the missing auth chain
// (federation's /event_auth) and try again.
//
// Where the spec's wording and Synapse differ, this package does as Synapse
// does, since servers must agree: a state set's auth chain includes the
// set's own events; the create event is a power event; the auth chains of
// power events are walked only through events of the full conflicted set.
package stateres
