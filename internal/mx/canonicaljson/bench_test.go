package canonicaljson

import (
	"testing"
)

// benchEvent is a typical m.room.message PDU as it arrives over federation
// (about 1 KB, compact, keys in the sender's order, not sorted).
const benchEvent = `{"auth_events":["$lBRRcR1XWTdRyljXK3PMbwQ_5pB4H-8hTxSTuG0Pomw","$Ap7P33Ko_sAE_qZ8Jf8zQrJ-t-vUu3tCjp2j6Lq6z7A","$8XhDtePmjKYwTOT-AYLVE3t4xhgB8Vj5UyKNIk4xhf8"],"content":{"body":"Hello everyone! Has anyone tried the new build? It fixes the sync bug from last week, and adds \"quotes\" and emoji 🎉.","format":"org.matrix.custom.html","formatted_body":"<p>Hello everyone! Has anyone tried the <b>new build</b>? It fixes the sync bug from last week, and adds &quot;quotes&quot; and emoji 🎉.</p>","m.mentions":{"user_ids":["@bob:example.org"]},"msgtype":"m.text"},"depth":4217,"hashes":{"sha256":"thishashcoversallfieldsincasethisisredacted0"},"origin":"example.org","origin_server_ts":1700000000000,"prev_events":["$Xq7HG8bhd2nsTzVOmaDvwe0GTiDzD8GxwtK7ATeB3Gk"],"room_id":"!abcdefghijklmnopqr:example.org","sender":"@alice:example.org","type":"m.room.message","signatures":{"example.org":{"ed25519:a_kQxy":"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"}},"unsigned":{"age_ts":1700000000000,"transaction_id":"m1700000000000.42"}}`

func BenchmarkCanonicalize1KEvent(b *testing.B) {
	raw := []byte(benchEvent)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendCanonical1KEvent reuses its output buffer, as a hashing
// loop would.
func BenchmarkAppendCanonical1KEvent(b *testing.B) {
	raw := []byte(benchEvent)
	buf := make([]byte, 0, len(raw))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendCanonical(buf[:0], raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode1KEvent(b *testing.B) {
	raw := []byte(benchEvent)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode1KEvent(b *testing.B) {
	v, err := Decode([]byte(benchEvent))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendEncode1KEvent is Encode into a reused buffer: what is
// left is sorting keys.
func BenchmarkAppendEncode1KEvent(b *testing.B) {
	v, err := Decode([]byte(benchEvent))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = AppendEncode(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
}
