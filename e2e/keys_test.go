package e2e_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/signingkey"
	"github.com/sluice-im/sluice/internal/testserver"
)

// keysServerKey reads a running test server's signing key from its file.
func keysServerKey(t *testing.T, s *testserver.Server) signingkey.Key {
	t.Helper()
	raw, err := os.ReadFile(s.Config.SigningKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	k, err := signingkey.Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServerKeyEndpoint(t *testing.T) {
	t.Parallel()
	s := testserver.Start(t, testserver.Options{})
	key := keysServerKey(t, s)
	for _, path := range []string{"/_matrix/key/v2/server", "/_matrix/key/v2/server/" + key.ID} {
		r := s.Do(t, "GET", path, nil, "").Expect(t, 200, "")
		// Served in canonical JSON: exactly the bytes that were signed (plus signatures).
		if canon, err := canonicaljson.Canonicalize(r.Raw); err != nil || !bytes.Equal(canon, r.Raw) {
			t.Errorf("%s: response is not canonical JSON (%v):\n%s", path, err, r.Raw)
		}
		if r.Str("server_name") != "test.local" {
			t.Errorf("server_name %q", r.Str("server_name"))
		}
		vk := r.Body["verify_keys"].(map[string]any)[key.ID].(map[string]any)["key"].(string)
		if vk != base64.RawStdEncoding.EncodeToString(key.Public()) {
			t.Errorf("verify key %s does not match the key file", vk)
		}
		until := int64(r.Body["valid_until_ts"].(float64))
		if d := time.Until(time.UnixMilli(until)); d < 23*time.Hour || d > 25*time.Hour {
			t.Errorf("valid_until_ts is %v from now, want about a day", d)
		}
		if _, ok := r.Body["old_verify_keys"].(map[string]any); !ok {
			t.Errorf("old_verify_keys missing")
		}
	}
	// The client API does not serve it on a client-only listener.
	c := testserver.Start(t, testserver.Options{Listeners: "listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n    resources: [{names: [client]}]\n"})
	c.Do(t, "GET", "/_matrix/key/v2/server", nil, "").Expect(t, 404, "M_UNRECOGNIZED")
}

// TestSignaturesCheckedBySignedjson has an independent implementation
// (Debian's python3-signedjson) verify our key response and events we sign.
func TestSignaturesCheckedBySignedjson(t *testing.T) {
	t.Parallel()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import signedjson.sign, unpaddedbase64").Run(); err != nil {
		t.Skip("signedjson: python3-signedjson is not installed (apt-get install python3-signedjson); skipping")
	}
	s := testserver.Start(t, testserver.Options{})
	key := keysServerKey(t, s)
	var lines bytes.Buffer
	keyResp := s.Do(t, "GET", "/_matrix/key/v2/server", nil, "").Expect(t, 200, "")
	lines.Write(keyResp.Raw)
	lines.WriteByte('\n')

	v, _ := event.LookupVersion("10")
	signer := event.Signer{ServerName: "test.local", KeyID: key.ID, Key: key.Private}
	for _, tmpl := range []event.Template{
		{Type: "m.room.message", Sender: "@a:test.local", RoomID: "!r:test.local", Depth: 5, OriginServerTS: 1_700_000_000_000,
			Content: map[string]any{"msgtype": "m.text", "body": "héllo \u2028 \"quoted\" ✓"}, PrevEvents: []string{"$prev"}, AuthEvents: []string{"$a", "$b"}},
		{Type: "m.room.member", StateKey: ptr("@a:test.local"), Sender: "@a:test.local", RoomID: "!r:test.local", Depth: 2,
			OriginServerTS: 1_700_000_000_001, Content: map[string]any{"membership": "join", "displayname": "A"}, PrevEvents: []string{}, AuthEvents: []string{}},
	} {
		e, err := event.Build(tmpl, v, signer)
		if err != nil {
			t.Fatal(err)
		}
		line, _ := json.Marshal(map[string]any{"event": json.RawMessage(e.JSON()), "redact": true})
		lines.Write(line)
		lines.WriteByte('\n')
	}
	cmd := exec.Command(python, "testdata/verify_signed.py", "test.local", key.ID, base64.RawStdEncoding.EncodeToString(key.Public()))
	cmd.Stdin = &lines
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok 3" {
		t.Fatalf("signedjson rejected our signatures: %v\n%s", err, out)
	}
	// And it must reject a tampered object: the check is not vacuous.
	tampered := bytes.Replace(keyResp.Raw, []byte("test.local"), []byte("test.locaX"), 1)
	cmd = exec.Command(python, "testdata/verify_signed.py", "test.locaX", key.ID, base64.RawStdEncoding.EncodeToString(key.Public()))
	cmd.Stdin = bytes.NewReader(append(tampered, '\n'))
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("signedjson accepted a tampered response: %s", out)
	}
}

func ptr(s string) *string { return &s }

func TestCapabilities(t *testing.T) {
	t.Parallel()
	s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn + "default_room_version: \"11\"\n"})
	_, tok := s.Register(t, "cap", "pw")
	r := s.Do(t, "GET", "/_matrix/client/v3/capabilities", nil, tok).Expect(t, 200, "")
	rv := r.Body["capabilities"].(map[string]any)["m.room_versions"].(map[string]any)
	if rv["default"] != "11" {
		t.Errorf("default room version %v", rv["default"])
	}
	av := rv["available"].(map[string]any)
	if av["10"] != "stable" || av["11"] != "stable" || len(av) != 2 {
		t.Errorf("available %v", av)
	}
	s.Do(t, "GET", "/_matrix/client/v3/capabilities", nil, "").Expect(t, 401, "M_MISSING_TOKEN")
}
