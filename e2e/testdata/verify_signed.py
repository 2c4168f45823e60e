"""Checks Matrix signatures with python3-signedjson, an implementation
independent of Sluice's.

Usage: verify_signed.py SERVER_NAME KEY_ID BASE64_PUBLIC_KEY < objects.jsonl
Each input line is a JSON object: a key response, or an event in the
federation format (marked {"event": ..., "redact": true} to check the
signature over the redacted event, as the spec requires for events).
Prints "ok N" when every signature verifies; exits 1 otherwise.
"""
import json
import sys

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from unpaddedbase64 import decode_base64

server, key_id, key_b64 = sys.argv[1:4]
verify_key = decode_verify_key_bytes(key_id, decode_base64(key_b64))

# The redaction algorithm of room version 10 (for "redact": true lines).
KEEP_TOP = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
            "depth", "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts", "membership"}
KEEP_CONTENT = {
    "m.room.member": ["membership", "join_authorised_via_users_server"],
    "m.room.create": ["creator"],
    "m.room.join_rules": ["join_rule", "allow"],
    "m.room.power_levels": ["ban", "events", "events_default", "kick", "redact", "state_default",
                            "users", "users_default"],
    "m.room.history_visibility": ["history_visibility"],
}


def redact_v10(ev):
    out = {k: v for k, v in ev.items() if k in KEEP_TOP}
    keep = KEEP_CONTENT.get(ev["type"], [])
    out["content"] = {k: v for k, v in ev.get("content", {}).items() if k in keep}
    return out


n = 0
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    obj = json.loads(line)
    if obj.get("redact"):
        obj = redact_v10(obj["event"])
    verify_signed_json(obj, server, verify_key)  # raises on failure
    n += 1
print("ok", n)
