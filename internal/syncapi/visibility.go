package syncapi

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/sluice-im/sluice/internal/storage"
)

// History visibility, as Synapse applies it (visibility.py): an event is
// judged by the state just after it. The rankings below go from the most
// open to the most closed.
var (
	visibilityRank = []string{"world_readable", "shared", "invited", "joined"}
	membershipRank = []string{"join", "invite", "knock", "leave", "ban"}
)

// visState is what visibility reads of a room's state at one point.
type visState struct {
	visibility string // effective: "shared" when unset or unknown
	membership string // the user's; "" when none
}

// stateReader is the part of a snapshot visibility needs.
type stateReader interface {
	StateAt(ctx context.Context, groups []int64, f storage.StateFilter) (map[int64][]storage.StoredEvent, error)
}

// contentField reads a string field of a stored event's content.
func contentField(se storage.StoredEvent, field string) string {
	var p struct {
		Content map[string]json.RawMessage `json:"content"`
	}
	if json.Unmarshal(se.JSON, &p) != nil {
		return ""
	}
	var v string
	if json.Unmarshal(p.Content[field], &v) != nil {
		return ""
	}
	return v
}

// visStates reads the visibility and the user's membership at each group,
// in one query.
func visStates(ctx context.Context, r stateReader, userID string, groups []int64) (map[int64]visState, error) {
	st, err := r.StateAt(ctx, groups, storage.StateFilter{
		Types:   []string{"m.room.history_visibility", "m.room.member"},
		Members: []string{userID},
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int64]visState, len(groups))
	for _, g := range groups {
		vs := visState{visibility: "shared"}
		for _, se := range st[g] {
			switch se.Type {
			case "m.room.history_visibility":
				if v := contentField(se, "history_visibility"); slices.Contains(visibilityRank, v) {
					vs.visibility = v
				}
			case "m.room.member":
				vs.membership = contentField(se, "membership")
			}
		}
		out[g] = vs
	}
	return out, nil
}

// filterVisible keeps the events the user may see. isPeeking is true for
// a user who never had a membership of the room (a world-readable room's
// reader).
func filterVisible(ctx context.Context, r stateReader, userID string, evs []storage.StoredEvent, isPeeking bool) ([]storage.StoredEvent, error) {
	if len(evs) == 0 {
		return evs, nil
	}
	var groups []int64
	for _, e := range evs {
		groups = append(groups, e.StateGroupAfter)
		if ownChange(e, userID) || e.Type == "m.room.history_visibility" {
			groups = append(groups, e.StateGroupBefore)
		}
	}
	states, err := visStates(ctx, r, userID, groups)
	if err != nil {
		return nil, err
	}
	out := evs[:0:0]
	for _, e := range evs {
		if allowed(userID, e, states[e.StateGroupAfter], states[e.StateGroupBefore], isPeeking) {
			out = append(out, e)
		}
	}
	return out, nil
}

func ownChange(e storage.StoredEvent, userID string) bool {
	return e.Type == "m.room.member" && e.StateKey != nil && *e.StateKey == userID
}

func rank(list []string, v, def string) int {
	if i := slices.Index(list, v); i >= 0 {
		return i
	}
	return slices.Index(list, def)
}

// allowed is Synapse's _check_client_allowed_to_see_event for an event
// with the state after it and before it.
func allowed(userID string, e storage.StoredEvent, after, before visState, isPeeking bool) bool {
	if e.Type == "m.room.aliases" || e.Type == "org.matrix.dummy_event" {
		return false
	}
	vis := after.visibility
	if e.Type == "m.room.history_visibility" && e.StateGroupBefore != 0 {
		// A change of visibility is visible under both rules.
		if rank(visibilityRank, before.visibility, "shared") < rank(visibilityRank, vis, "shared") {
			vis = before.visibility
		}
	}
	if (vis == "shared" && !isPeeking) || vis == "world_readable" {
		return true
	}
	membership := after.membership
	if ownChange(e, userID) {
		// The user's own membership change counts as the more joined of
		// old and new; leaving (or refusing an invite) is always seen.
		now, prev := membership, before.membership
		if !slices.Contains(membershipRank, now) {
			now = "leave"
		}
		if !slices.Contains(membershipRank, prev) {
			prev = "leave"
		}
		if now == "leave" && (prev == "join" || prev == "invite") {
			return true
		}
		membership = now
		if rank(membershipRank, prev, "leave") < rank(membershipRank, now, "leave") {
			membership = prev
		}
	}
	switch {
	case membership == "join":
		return true
	case vis == "joined":
		return false
	case vis == "invited":
		return membership == "invite"
	case vis == "shared" && isPeeking:
		return false
	}
	return true
}
