// Package mx is the root of Sluice's Matrix protocol core: pure code (no
// I/O, no database, no HTTP) that decides what a room is. The room service
// and federation call it; it calls nothing outside the standard library.
//
// # The model in ten minutes
//
// A room is a directed acyclic graph of events. Every event (a PDU, for
// "persistent data unit") names the events that came just before it
// (prev_events: the edges of the graph) and the state events that allow it
// to exist (auth_events: the create event, the power levels, the sender's
// membership, ...). Its depth is one more than the deepest of its
// prev_events. Events that have a state_key are state events: the room's
// state at a point of the graph is a map from (type, state_key) to the
// state event that holds that slot, such as (m.room.member, @alice:x) or
// (m.room.topic, "").
//
// A room version fixes the rules of a room for its whole life: the event
// format, how event IDs are made, the redaction algorithm, the
// authorization rules and the state resolution algorithm. Sluice supports
// versions 10 (the default, as in Synapse) and 11; event.Version carries
// their differences as flags.
//
// Everything that is hashed or signed is first written in canonical JSON
// (package canonicaljson): object keys sorted by code point, no
// insignificant whitespace, integers only, in [-(2^53)+1, 2^53-1]. Two
// servers that hold the same event therefore produce the same bytes, and
// so the same hashes and signatures.
//
// An event carries two hashes and a signature (package event):
//
//   - The content hash (hashes.sha256) covers the whole event except
//     unsigned, signatures and hashes. A server that receives an event
//     whose content hash does not match must redact it before use.
//   - The sending server signs the redacted event (without signatures and
//     unsigned) with its ed25519 key; the signature goes under
//     signatures[server][ed25519:<key id>]. Signing the redacted form is
//     what lets a redacted event keep a valid signature.
//   - The reference hash is the SHA-256 of those same signed bytes; the
//     event ID is "$" followed by its unpadded URL-safe base64. An event ID
//     is thus a commitment to everything a redaction keeps.
//
// Redaction strips an event down to the keys that matter for
// authorization (type, sender, room_id, state_key, the graph edges, and a
// few content keys per event type, which differ between versions 10 and
// 11). Redacting never changes the event ID.
//
// The authorization rules (package authrules) decide, given an event and
// the state it cites as its auth events, whether it is allowed: membership
// transitions (join, invite, leave, ban, knock, restricted joins), power
// levels (who may send which event type, and how power level events may
// change), third-party invites, redactions. A rejected event is kept out
// of the room's state; the rule that rejected it is reported in words, and
// the client API turns it into M_FORBIDDEN with that reason.
//
// When the graph forks (two servers sent events concurrently), the room has
// several candidate states. State resolution v2 (package stateres) merges
// them deterministically: unconflicted entries are kept; among conflicting
// ones, power-related events (power levels, join rules, bans and kicks) are
// ordered by the senders' power and replayed through the auth rules first,
// then the remaining events are ordered along the power levels' "mainline"
// and replayed too. Every server that sees the same events reaches the same
// state, without talking to the others.
//
// # The packages
//
//   - canonicaljson: the encoder and a strict decoder (no floats, no
//     duplicate keys, valid UTF-8, bounded depth and size).
//   - id: user IDs, room IDs, event IDs, room aliases and server names.
//   - signedjson: signing and verifying any JSON object (server keys,
//     requests).
//   - event: room versions; parsing and validating PDUs; Build (template ->
//     hashed, signed event with its ID); Redact; signature and content-hash
//     checks; the 65,536-byte size limit.
//   - authrules: Check(event, auth events) and the selection of auth
//     events for a new event; power levels.
//   - stateres: state resolution v2.
//   - mxtest: builds real, signed events for tests, as a server would.
//
// # How a new local event is made
//
// The room service picks the template's prev_events (the room's forward
// extremities) and depth, asks authrules.AuthEventTypes which state entries
// are its auth events and takes their IDs from the current state, calls
// event.Build with the server's signer, runs authrules.Check against those
// auth events, and only then persists it. Received events go the other way:
// event.Parse, signature and content-hash checks, then the auth rules
// against their own auth events and against the current state.
package mx
