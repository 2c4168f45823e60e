package event

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
	"github.com/sluice-im/sluice/internal/mx/signedjson"
)

// Template is what a new event is built from. The room service fills
// PrevEvents, AuthEvents and Depth from the room's state and forward
// extremities.
type Template struct {
	Type           string
	StateKey       *string
	Sender         string
	RoomID         string
	Content        map[string]any // any JSON-encodable values
	PrevEvents     []string
	AuthEvents     []string
	Depth          int64
	OriginServerTS int64
	Redacts        string // m.room.redaction only
}

// Signer is the server's signing identity.
type Signer struct {
	ServerName string
	KeyID      string // "ed25519:<version>"
	Key        ed25519.PrivateKey
}

// Build makes a new event of room version v from a template: it adds the
// content hash, signs it with the server's key and computes its event ID.
func Build(t Template, v *Version, s Signer) (*Event, error) {
	content, err := toCanonicalValue(t.Content)
	if err != nil {
		return nil, fmt.Errorf("event: content: %w", err)
	}
	cm, ok := content.(map[string]any)
	if !ok {
		cm = map[string]any{}
	}
	obj := map[string]any{
		"type":             t.Type,
		"sender":           t.Sender,
		"room_id":          t.RoomID,
		"content":          cm,
		"depth":            t.Depth,
		"origin_server_ts": t.OriginServerTS,
		"prev_events":      stringsToAny(t.PrevEvents),
		"auth_events":      stringsToAny(t.AuthEvents),
	}
	if !v.V11Redaction {
		obj["origin"] = s.ServerName // still part of the v10 format
	}
	if t.StateKey != nil {
		obj["state_key"] = *t.StateKey
	}
	if t.Type == "m.room.redaction" && t.Redacts != "" {
		if v.V11Redaction {
			cm["redacts"] = t.Redacts
		} else {
			obj["redacts"] = t.Redacts
		}
	}
	signing, err := HashAndSign(obj, v, s)
	if err != nil {
		return nil, err
	}
	return fromObject(obj, v, idFromBytes(signing))
}

// HashAndSign sets an event object's content hash and adds the server's
// signature, in place, following the spec's event signing algorithm. It
// returns the bytes signed (the redacted event in canonical JSON), whose
// SHA-256 is the reference hash.
func HashAndSign(obj map[string]any, v *Version, s Signer) ([]byte, error) {
	h, err := contentHash(obj)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	obj["hashes"] = map[string]any{"sha256": base64.RawStdEncoding.EncodeToString(h[:])}
	signing, err := redactedSigningBytes(obj, v)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	signedjson.AddSignature(obj, s.ServerName, s.KeyID, ed25519.Sign(s.Key, signing))
	return signing, nil
}

// VerifySignature checks the event's signature by a server's key, over the
// redacted event as the spec requires.
func (e *Event) VerifySignature(serverName, keyID string, pub ed25519.PublicKey) error {
	sig, err := signedjson.Signature(e.obj, serverName, keyID)
	if err != nil {
		return err
	}
	b, err := redactedSigningBytes(e.obj, e.version)
	if err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, b, sig) {
		return signedjson.ErrBadSignature
	}
	return nil
}

// HasSignature reports whether serverName signed the event (with any key).
func (e *Event) HasSignature(serverName string) bool {
	sigs, _ := e.obj["signatures"].(map[string]any)
	m, _ := sigs[serverName].(map[string]any)
	return len(m) > 0
}

// Signatures returns the key IDs each server signed the event with.
func (e *Event) Signatures() map[string][]string {
	out := map[string][]string{}
	sigs, _ := e.obj["signatures"].(map[string]any)
	for server, v := range sigs {
		m, _ := v.(map[string]any)
		for kid := range m {
			out[server] = append(out[server], kid)
		}
	}
	return out
}

// toCanonicalValue turns arbitrary JSON-encodable Go values into the
// canonical decoded types.
func toCanonicalValue(v any) (any, error) {
	if v == nil {
		return map[string]any{}, nil
	}
	if m, ok := v.(map[string]any); ok && isCanonicalMap(m) {
		return cloneValue(m), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return canonicaljson.Decode(b)
}

// isCanonicalMap reports whether m holds only canonical decoded types, so
// Build can skip a JSON round trip for the common case.
func isCanonicalMap(m map[string]any) bool {
	for _, x := range m {
		if !isCanonicalValue(x) {
			return false
		}
	}
	return true
}

func isCanonicalValue(x any) bool {
	switch y := x.(type) {
	case nil, bool, string:
		return true
	case int64:
		return y <= canonicaljson.MaxInt && y >= canonicaljson.MinInt
	case []any:
		for _, e := range y {
			if !isCanonicalValue(e) {
				return false
			}
		}
		return true
	case map[string]any:
		return isCanonicalMap(y)
	}
	return false
}

func cloneValue(x any) any {
	switch y := x.(type) {
	case []any:
		out := make([]any, len(y))
		for i, e := range y {
			out[i] = cloneValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(y))
		for k, e := range y {
			out[k] = cloneValue(e)
		}
		return out
	}
	return x
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
