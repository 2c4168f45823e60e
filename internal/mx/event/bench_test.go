package event

import (
	"crypto/ed25519"
	"strings"
	"testing"
)

// A ~1 KB message event, the typical size.
func benchTemplate() Template {
	t := msgTemplate()
	t.Content = map[string]any{"msgtype": "m.text", "body": strings.Repeat("Lorem ipsum dolor sit amet. ", 25),
		"format": "org.matrix.custom.html", "formatted_body": "<p>" + strings.Repeat("Lorem ipsum. ", 20) + "</p>"}
	t.AuthEvents = []string{"$" + strings.Repeat("A", 43), "$" + strings.Repeat("B", 43), "$" + strings.Repeat("C", 43)}
	t.PrevEvents = []string{"$" + strings.Repeat("D", 43)}
	return t
}

func BenchmarkEd25519SignAlone(b *testing.B) {
	key := testSigner().Key
	msg := make([]byte, 700)
	for b.Loop() {
		ed25519.Sign(key, msg)
	}
}

func BenchmarkBuildHashSign(b *testing.B) {
	v, _ := LookupVersion("10")
	t, s := benchTemplate(), testSigner()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(t, v, s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	v, _ := LookupVersion("10")
	s := testSigner()
	e, _ := Build(benchTemplate(), v, s)
	pub := s.Key.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.VerifySignature("hs.test", "ed25519:k", pub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	v, _ := LookupVersion("10")
	e, _ := Build(benchTemplate(), v, testSigner())
	raw := e.JSON()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw, v); err != nil {
			b.Fatal(err)
		}
	}
}
