// Package signingkey reads and writes the server's ed25519 signing key in
// Synapse's file format: one line per key, "ed25519 <version> <unpadded
// base64 seed>", so a key file carries over between the two servers.
package signingkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Key is a signing key with its ID ("ed25519:<version>").
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// Public is the key's public half.
func (k Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// LoadOrGenerate reads the key file, or creates it with a new key when it
// does not exist. generated reports which happened.
func LoadOrGenerate(path string) (k Key, generated bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err = Generate()
		if err != nil {
			return Key{}, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return Key{}, false, fmt.Errorf("signingkey: %w", err)
		}
		if err := os.WriteFile(path, []byte(Format(k)), 0o600); err != nil {
			return Key{}, false, fmt.Errorf("signingkey: write %s: %w", path, err)
		}
		return k, true, nil
	}
	if err != nil {
		return Key{}, false, fmt.Errorf("signingkey: %w", err)
	}
	k, err = Parse(string(data))
	if err != nil {
		return Key{}, false, fmt.Errorf("signingkey: %s: %w", path, err)
	}
	return k, false, nil
}

// Generate makes a new key with a random version, as Synapse's "a_XXXX".
func Generate() (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("signingkey: %w", err)
	}
	v := make([]byte, 3)
	if _, err := rand.Read(v); err != nil {
		return Key{}, fmt.Errorf("signingkey: %w", err)
	}
	version := "a_" + strings.NewReplacer("-", "A", "_", "B").Replace(base64.RawURLEncoding.EncodeToString(v))
	return Key{ID: "ed25519:" + version, Private: priv}, nil
}

// Format renders a key as a line of a key file.
func Format(k Key) string {
	version := strings.TrimPrefix(k.ID, "ed25519:")
	return "ed25519 " + version + " " + base64.RawStdEncoding.EncodeToString(k.Private.Seed()) + "\n"
}

// Parse reads the first key of a key file.
func Parse(text string) (Key, error) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || f[0] != "ed25519" {
			return Key{}, errors.New(`expected a line "ed25519 <version> <base64 seed>"`)
		}
		seed, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(f[2], "="))
		if err != nil || len(seed) != ed25519.SeedSize {
			return Key{}, errors.New("the key is not a base64 ed25519 seed")
		}
		return Key{ID: "ed25519:" + f[1], Private: ed25519.NewKeyFromSeed(seed)}, nil
	}
	return Key{}, errors.New("no key in the file")
}
