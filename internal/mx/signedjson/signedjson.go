// Package signedjson signs and verifies JSON objects as the Matrix spec
// describes ("Signing JSON"): the signature covers the canonical JSON of the
// object without its "signatures" and "unsigned" keys, and is stored under
// signatures[<server name>][<key ID>] in unpadded base64.
package signedjson

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
)

// ErrNoSignature: the object has no signature by that server and key.
var ErrNoSignature = errors.New("signedjson: no signature by that server and key")

// ErrBadSignature: a signature is present but does not verify.
var ErrBadSignature = errors.New("signedjson: signature does not verify")

// SigningBytes is the canonical JSON a signature covers. obj is not
// modified (it may be shared between goroutines).
func SigningBytes(obj map[string]any) ([]byte, error) {
	tmp := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "signatures" && k != "unsigned" {
			tmp[k] = v
		}
	}
	return canonicaljson.Encode(tmp)
}

// Sign adds the server's signature to obj (in place).
func Sign(obj map[string]any, serverName, keyID string, key ed25519.PrivateKey) error {
	b, err := SigningBytes(obj)
	if err != nil {
		return err
	}
	AddSignature(obj, serverName, keyID, ed25519.Sign(key, b))
	return nil
}

// AddSignature records a signature computed elsewhere.
func AddSignature(obj map[string]any, serverName, keyID string, sig []byte) {
	sigs, _ := obj["signatures"].(map[string]any)
	if sigs == nil {
		sigs = map[string]any{}
		obj["signatures"] = sigs
	}
	byServer, _ := sigs[serverName].(map[string]any)
	if byServer == nil {
		byServer = map[string]any{}
		sigs[serverName] = byServer
	}
	byServer[keyID] = base64.RawStdEncoding.EncodeToString(sig)
}

// Signature returns the decoded signature of obj by serverName's keyID.
func Signature(obj map[string]any, serverName, keyID string) ([]byte, error) {
	sigs, _ := obj["signatures"].(map[string]any)
	byServer, _ := sigs[serverName].(map[string]any)
	s, ok := byServer[keyID].(string)
	if !ok {
		return nil, ErrNoSignature
	}
	// Unpadded per the spec; tolerate padding as other implementations do.
	sig, err := base64.RawStdEncoding.DecodeString(trimPad(s))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	return sig, nil
}

// Verify checks obj's signature by serverName's keyID.
func Verify(obj map[string]any, serverName, keyID string, pub ed25519.PublicKey) error {
	sig, err := Signature(obj, serverName, keyID)
	if err != nil {
		return err
	}
	b, err := SigningBytes(obj)
	if err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, b, sig) {
		return ErrBadSignature
	}
	return nil
}

func trimPad(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}
