package signingkey

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSynapseFormat(t *testing.T) {
	// A key line in Synapse's format (seed of 32 zero bytes).
	k, err := Parse("ed25519 a_AbCd AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != "ed25519:a_AbCd" || !k.Private.Equal(ed25519.NewKeyFromSeed(make([]byte, 32))) {
		t.Fatalf("parsed %s", k.ID)
	}
	if got := Format(k); got != "ed25519 a_AbCd AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n" {
		t.Fatalf("Format = %q", got)
	}
	for _, bad := range []string{"", "rsa a_x AAAA", "ed25519 a_x notbase64!", "ed25519 a_x AAAA"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestLoadOrGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "signing.key")
	k1, gen, err := LoadOrGenerate(path)
	if err != nil || !gen || !strings.HasPrefix(k1.ID, "ed25519:a_") {
		t.Fatalf("generate: %v %v %s", err, gen, k1.ID)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	k2, gen, err := LoadOrGenerate(path)
	if err != nil || gen || k2.ID != k1.ID || !k2.Private.Equal(k1.Private) {
		t.Fatalf("reload gave a different key: %v %v", err, gen)
	}
}
