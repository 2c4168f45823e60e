package event

import "sort"

// Version is a room version's behaviour as far as events are concerned.
type Version struct {
	ID     string
	Stable bool
	// V11Redaction selects room version 11's redaction algorithm and event
	// format: no top-level origin/membership/prev_state, m.room.create
	// keeps its whole content, redacts lives in m.room.redaction content.
	V11Redaction bool
	// V11CreateSender: the creator is the create event's sender (no
	// content.creator).
	V11CreateSender bool
	// IntegerPowerLevels: power level values must be JSON integers (v10+).
	IntegerPowerLevels bool
	// KnockRestricted: the knock_restricted join rule exists (v10+).
	KnockRestricted bool
	// RestrictedJoins: the restricted join rule exists (v8+).
	RestrictedJoins bool
	// Knocking: the knock membership and join rule exist (v7+).
	Knocking bool
}

var versions = map[string]*Version{
	"10": {ID: "10", Stable: true, IntegerPowerLevels: true, KnockRestricted: true, RestrictedJoins: true, Knocking: true},
	"11": {ID: "11", Stable: true, V11Redaction: true, V11CreateSender: true, IntegerPowerLevels: true, KnockRestricted: true, RestrictedJoins: true, Knocking: true},
}

// DefaultVersion is the room version of new rooms unless configured
// otherwise (Synapse's default).
const DefaultVersion = "10"

// LookupVersion returns a supported room version.
func LookupVersion(id string) (*Version, bool) {
	v, ok := versions[id]
	return v, ok
}

// SupportedVersions lists the supported room version IDs, sorted, with
// their stability, as GET /capabilities reports them.
func SupportedVersions() map[string]string {
	out := make(map[string]string, len(versions))
	for id, v := range versions {
		if v.Stable {
			out[id] = "stable"
		} else {
			out[id] = "unstable"
		}
	}
	return out
}

// VersionIDs lists the supported room versions in order.
func VersionIDs() []string {
	ids := make([]string, 0, len(versions))
	for id := range versions {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		return len(ids[i]) < len(ids[j]) || (len(ids[i]) == len(ids[j]) && ids[i] < ids[j])
	})
	return ids
}
