package authrules

import (
	"crypto/ed25519"
	"encoding/base64"
	"sort"
	"strings"

	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
	"github.com/sluice-im/sluice/internal/mx/event"
)

// checkThirdPartyInvite is rule 4.4.1: an invite that claims a third-party
// invite, authorized by the identity server's signature over
// third_party_invite.signed.
func checkThirdPartyInvite(e *event.Event, a *authState, target, targetMS string, tpi any) error {
	// 4.4.1.1
	if targetMS == membershipBan {
		return reject("4.4.1.1", "%s is banned from the room", target)
	}
	// 4.4.1.2
	tpiObj, _ := tpi.(map[string]any)
	signed, ok := tpiObj["signed"].(map[string]any)
	if !ok {
		return reject("4.4.1.2", "content.third_party_invite has no signed object")
	}
	// 4.4.1.3
	mxid, mxidOK := signed["mxid"].(string)
	token, tokenOK := signed["token"].(string)
	if !mxidOK || !tokenOK {
		return reject("4.4.1.3", "content.third_party_invite.signed must have string mxid and token properties")
	}
	// 4.4.1.4
	if mxid != target {
		return reject("4.4.1.4", "third_party_invite.signed.mxid %s does not match the invited user %s", mxid, target)
	}
	// 4.4.1.5
	inv, err := a.lookup(e, typeThirdPartyInvite, token)
	if err != nil {
		return err
	}
	if inv == nil {
		return reject("4.4.1.5", "there is no m.room.third_party_invite event with the token %q", token)
	}
	// 4.4.1.6
	if inv.Sender() != e.Sender() {
		return reject("4.4.1.6", "the sender %s did not send the m.room.third_party_invite (sent by %s)", e.Sender(), inv.Sender())
	}
	// 4.4.1.7, 4.4.1.8
	if !thirdPartySignatureValid(signed, publicKeys(inv)) {
		return reject("4.4.1.8", "no signature in third_party_invite.signed matches a public key of the m.room.third_party_invite")
	}
	return nil
}

// publicKeys are the keys of an m.room.third_party_invite event: its
// public_key and each public_keys[].public_key, undecodable ones skipped.
func publicKeys(inv *event.Event) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	add := func(x any) {
		s, _ := x.(string)
		if k := decodeKey(s); k != nil {
			out = append(out, k)
		}
	}
	c := inv.Content()
	add(c["public_key"])
	if list, ok := c["public_keys"].([]any); ok {
		for _, x := range list {
			if m, ok := x.(map[string]any); ok {
				add(m["public_key"])
			}
		}
	}
	return out
}

// decodeKey decodes an Ed25519 public key in unpadded base64 of the
// standard or URL-safe alphabet (padding tolerated).
func decodeKey(s string) ed25519.PublicKey {
	s = strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b)
		}
	}
	return nil
}

// thirdPartySignatureValid reports whether any ed25519 signature in
// signed.signatures verifies, under the signed JSON rules, with any of the
// keys. It does not modify signed (which belongs to an immutable event).
func thirdPartySignatureValid(signed map[string]any, keys []ed25519.PublicKey) bool {
	if len(keys) == 0 {
		return false
	}
	sigs, _ := signed["signatures"].(map[string]any)
	if len(sigs) == 0 {
		return false
	}
	// The signed bytes: canonical JSON without signatures and unsigned.
	body := make(map[string]any, len(signed))
	for k, x := range signed {
		if k != "signatures" && k != "unsigned" {
			body[k] = x
		}
	}
	msg, err := canonicaljson.Encode(body)
	if err != nil {
		return false
	}
	servers := make([]string, 0, len(sigs))
	for s := range sigs {
		servers = append(servers, s)
	}
	sort.Strings(servers)
	for _, server := range servers {
		byKey, _ := sigs[server].(map[string]any)
		for keyID, x := range byKey {
			if !strings.HasPrefix(keyID, "ed25519:") {
				continue
			}
			s, _ := x.(string)
			sig, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
			if err != nil || len(sig) != ed25519.SignatureSize {
				continue
			}
			for _, k := range keys {
				if ed25519.Verify(k, msg, sig) {
					return true
				}
			}
		}
	}
	return false
}
