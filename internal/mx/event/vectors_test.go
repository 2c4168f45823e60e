package event

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"

	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
	"github.com/sluice-im/sluice/internal/mx/signedjson"
)

// The spec's "Cryptographic Test Vectors" (appendices).
func specSigner(t testing.TB) Signer {
	seed, err := base64.RawStdEncoding.DecodeString("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	if err != nil {
		t.Fatal(err)
	}
	return Signer{ServerName: "domain", KeyID: "ed25519:1", Key: ed25519.NewKeyFromSeed(seed)}
}

func decodeObj(t testing.TB, s string) map[string]any {
	t.Helper()
	v, err := canonicaljson.Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}

func TestSpecJSONSigningVectors(t *testing.T) {
	s := specSigner(t)
	for _, tc := range []struct{ in, sig string }{
		{`{}`, "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"},
		{`{"one": 1, "two": "Two"}`, "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"},
	} {
		obj := decodeObj(t, tc.in)
		if err := signedjson.Sign(obj, s.ServerName, s.KeyID, s.Key); err != nil {
			t.Fatal(err)
		}
		got := obj["signatures"].(map[string]any)["domain"].(map[string]any)["ed25519:1"]
		if got != tc.sig {
			t.Errorf("sign(%s) = %v, want %s", tc.in, got, tc.sig)
		}
		if err := signedjson.Verify(obj, "domain", "ed25519:1", s.Key.Public().(ed25519.PublicKey)); err != nil {
			t.Errorf("verify: %v", err)
		}
	}
}

func TestSpecEventSigningVectors(t *testing.T) {
	s := specSigner(t)
	v, _ := LookupVersion("10") // the vectors predate v11; v10 keeps origin
	for _, tc := range []struct{ in, hash, sig string }{
		{`{"room_id": "!x:domain", "sender": "@a:domain", "origin": "domain", "origin_server_ts": 1000000,
		   "signatures": {}, "hashes": {}, "type": "X", "content": {}, "prev_events": [], "auth_events": [],
		   "depth": 3, "unsigned": {"age_ts": 1000000}}`,
			"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos",
			"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"},
		{`{"content": {"body": "Here is the message content"}, "event_id": "$0:domain", "origin": "domain",
		   "origin_server_ts": 1000000, "type": "m.room.message", "room_id": "!r:domain", "sender": "@u:domain",
		   "signatures": {}, "unsigned": {"age_ts": 1000000}}`,
			"onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g",
			"Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"},
	} {
		obj := decodeObj(t, tc.in)
		delete(obj, "signatures") // the vectors start from an empty signature set
		if _, err := HashAndSign(obj, v, s); err != nil {
			t.Fatal(err)
		}
		if got := obj["hashes"].(map[string]any)["sha256"]; got != tc.hash {
			t.Errorf("content hash %v, want %s", got, tc.hash)
		}
		if got := obj["signatures"].(map[string]any)["domain"].(map[string]any)["ed25519:1"]; got != tc.sig {
			t.Errorf("signature %v, want %s", got, tc.sig)
		}
		if u, _ := obj["unsigned"].(map[string]any); u["age_ts"] != int64(1000000) {
			t.Errorf("unsigned lost: %v", obj["unsigned"])
		}
	}
}
