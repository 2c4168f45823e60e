package event

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
)

// ErrContentHash: the event's content hash does not match its content.
var ErrContentHash = errors.New("event: content hash mismatch")

// contentHash is the SHA-256 of the event without unsigned, signatures and
// hashes, in canonical JSON.
func contentHash(obj map[string]any) ([32]byte, error) {
	tmp := make(map[string]any, len(obj))
	for k, v := range obj {
		switch k {
		case "unsigned", "signatures", "hashes":
		default:
			tmp[k] = v
		}
	}
	b, err := canonicaljson.Encode(tmp)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// redactedSigningBytes is the canonical JSON of the redacted event without
// signatures and unsigned: both what the server signs and what the
// reference hash covers.
func redactedSigningBytes(obj map[string]any, v *Version) ([]byte, error) {
	r := redactObject(obj, v)
	delete(r, "signatures")
	delete(r, "unsigned")
	return canonicaljson.Encode(r)
}

func idFromBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return "$" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// referenceID computes the event ID of room versions 4 and later.
func referenceID(obj map[string]any, v *Version) (string, error) {
	b, err := redactedSigningBytes(obj, v)
	if err != nil {
		return "", err
	}
	return idFromBytes(b), nil
}

// CheckContentHash verifies hashes.sha256 against the event. A mismatch
// means the event must be redacted before use (the spec's rule for
// received events).
func (e *Event) CheckContentHash() error {
	h, _ := e.obj["hashes"].(map[string]any)
	s, _ := h["sha256"].(string)
	got, err := base64.RawStdEncoding.DecodeString(trimPad(s))
	if err != nil {
		return ErrContentHash
	}
	want, err := contentHash(e.obj)
	if err != nil {
		return err
	}
	if len(got) != len(want) || string(got) != string(want[:]) {
		return ErrContentHash
	}
	return nil
}

func trimPad(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}
