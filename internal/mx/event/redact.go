package event

// Keys the redaction algorithm keeps at the top level.
var (
	keepTopV10 = setOf("event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
		"depth", "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts", "membership")
	keepTopV11 = setOf("event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
		"depth", "prev_events", "auth_events", "origin_server_ts")
)

func setOf(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// keptContent lists the content keys an event type keeps when redacted;
// nil means none, all means every key.
func keptContent(typ string, v *Version) (keys []string, all bool) {
	switch typ {
	case "m.room.member":
		return []string{"membership", "join_authorised_via_users_server"}, false
	case "m.room.create":
		if v.V11Redaction {
			return nil, true
		}
		return []string{"creator"}, false
	case "m.room.join_rules":
		return []string{"join_rule", "allow"}, false
	case "m.room.power_levels":
		if v.V11Redaction {
			return []string{"ban", "events", "events_default", "invite", "kick", "redact", "state_default", "users", "users_default"}, false
		}
		return []string{"ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"}, false
	case "m.room.history_visibility":
		return []string{"history_visibility"}, false
	case "m.room.redaction":
		if v.V11Redaction {
			return []string{"redacts"}, false
		}
	}
	return nil, false
}

// redactObject applies the version's redaction algorithm to an event
// object, returning a new object that shares unchanged values with obj.
func redactObject(obj map[string]any, v *Version) map[string]any {
	keep := keepTopV10
	if v.V11Redaction {
		keep = keepTopV11
	}
	out := make(map[string]any, len(keep))
	for k, x := range obj {
		if keep[k] {
			out[k] = x
		}
	}
	content, _ := obj["content"].(map[string]any)
	typ, _ := obj["type"].(string)
	keys, all := keptContent(typ, v)
	newContent := map[string]any{}
	switch {
	case all:
		newContent = content
	default:
		for _, k := range keys {
			if x, ok := content[k]; ok {
				newContent[k] = x
			}
		}
		// v11 keeps third_party_invite.signed of a member event.
		if v.V11Redaction && typ == "m.room.member" {
			if tpi, ok := content["third_party_invite"].(map[string]any); ok {
				if signed, ok := tpi["signed"]; ok {
					newContent["third_party_invite"] = map[string]any{"signed": signed}
				}
			}
		}
	}
	out["content"] = newContent
	return out
}

// Redact returns the event as the redaction algorithm of its room version
// leaves it. The event ID is unchanged (it is computed over the redacted
// form). Unsigned data is dropped.
func (e *Event) Redact() (*Event, error) {
	return fromObject(redactObject(e.obj, e.version), e.version, e.id)
}

// RedactObject applies the redaction algorithm of version v to any event
// object (for example one that failed other checks).
func RedactObject(obj map[string]any, v *Version) map[string]any { return redactObject(obj, v) }
