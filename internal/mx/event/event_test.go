package event

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
)

func testSigner() Signer {
	return Signer{ServerName: "hs.test", KeyID: "ed25519:k", Key: ed25519.NewKeyFromSeed(make([]byte, 32))}
}

func mustVersion(t testing.TB, id string) *Version {
	v, ok := LookupVersion(id)
	if !ok {
		t.Fatalf("no version %s", id)
	}
	return v
}

func msgTemplate() Template {
	return Template{Type: "m.room.message", Sender: "@a:hs.test", RoomID: "!r:hs.test", Depth: 3,
		OriginServerTS: 1_700_000_000_000, Content: map[string]any{"msgtype": "m.text", "body": "hi"},
		PrevEvents: []string{"$p"}, AuthEvents: []string{"$c", "$m"}}
}

func TestBuildParseRoundTrip(t *testing.T) {
	for _, ver := range []string{"10", "11"} {
		t.Run("v"+ver, func(t *testing.T) {
			v := mustVersion(t, ver)
			e, err := Build(msgTemplate(), v, testSigner())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(e.ID(), "$") || len(e.ID()) != 44 {
				t.Errorf("event ID %q is not $ + 43 base64 characters", e.ID())
			}
			p, err := Parse(e.JSON(), v)
			if err != nil {
				t.Fatal(err)
			}
			if p.ID() != e.ID() || string(p.JSON()) != string(e.JSON()) {
				t.Errorf("parse changed the event: %s vs %s", p.ID(), e.ID())
			}
			if err := p.CheckContentHash(); err != nil {
				t.Error(err)
			}
			if err := p.VerifySignature("hs.test", "ed25519:k", testSigner().Key.Public().(ed25519.PublicKey)); err != nil {
				t.Error(err)
			}
			_, hasOrigin := p.Object()["origin"]
			if hasOrigin == v.V11Redaction {
				t.Errorf("top-level origin present = %v in room version %s", hasOrigin, ver)
			}
			// The event ID survives redaction; the signature still verifies.
			r, err := p.Redact()
			if err != nil {
				t.Fatal(err)
			}
			if r.ID() != p.ID() || len(r.Content()) != 0 {
				t.Errorf("redacted: id %s content %v", r.ID(), r.Content())
			}
			if err := r.VerifySignature("hs.test", "ed25519:k", testSigner().Key.Public().(ed25519.PublicKey)); err != nil {
				t.Errorf("redacted event signature: %v", err)
			}
			if err := r.CheckContentHash(); !errors.Is(err, ErrContentHash) {
				t.Errorf("redacted event's content hash should no longer match: %v", err)
			}
		})
	}
}

func TestTamperingIsDetected(t *testing.T) {
	v := mustVersion(t, "10")
	e, _ := Build(msgTemplate(), v, testSigner())
	tampered := strings.Replace(string(e.JSON()), `"body":"hi"`, `"body":"ho"`, 1)
	p, err := Parse([]byte(tampered), v)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() != e.ID() {
		t.Error("changing redactable content changed the event ID")
	}
	if err := p.CheckContentHash(); !errors.Is(err, ErrContentHash) {
		t.Errorf("content hash: %v", err)
	}
	// Changing a field the signature covers breaks it.
	tampered = strings.Replace(string(e.JSON()), `"depth":3`, `"depth":4`, 1)
	p, _ = Parse([]byte(tampered), v)
	if p.ID() == e.ID() {
		t.Error("changing depth kept the event ID")
	}
	if err := p.VerifySignature("hs.test", "ed25519:k", testSigner().Key.Public().(ed25519.PublicKey)); err == nil {
		t.Error("signature still verifies after tampering")
	}
}

func TestParseRejects(t *testing.T) {
	v := mustVersion(t, "10")
	base := func() map[string]any {
		e, _ := Build(msgTemplate(), v, testSigner())
		return canonicalClone(e.Object())
	}
	long := strings.Repeat("x", 256)
	cases := []struct {
		name   string
		mutate func(m map[string]any)
		want   string
	}{
		{"no type", func(m map[string]any) { delete(m, "type") }, `missing "type"`},
		{"type not a string", func(m map[string]any) { m["type"] = int64(1) }, `"type" is not a string`},
		{"no content", func(m map[string]any) { delete(m, "content") }, `"content"`},
		{"content not an object", func(m map[string]any) { m["content"] = "x" }, `"content"`},
		{"no depth", func(m map[string]any) { delete(m, "depth") }, `"depth"`},
		{"negative depth", func(m map[string]any) { m["depth"] = int64(-1) }, `negative`},
		{"prev_events not array", func(m map[string]any) { m["prev_events"] = "x" }, `"prev_events"`},
		{"auth_events with a number", func(m map[string]any) { m["auth_events"] = []any{int64(1)} }, `"auth_events"[0]`},
		{"no hashes", func(m map[string]any) { delete(m, "hashes") }, `hashes`},
		{"sender not a user ID", func(m map[string]any) { m["sender"] = "alice" }, `"sender"`},
		{"room_id not a room ID", func(m map[string]any) { m["room_id"] = "#alias:hs.test" }, `"room_id"`},
		{"sender too long", func(m map[string]any) { m["sender"] = "@" + long + ":hs" }, `"sender" is longer`},
		{"state_key too long", func(m map[string]any) { m["state_key"] = long }, `"state_key" is longer`},
		{"too large", func(m map[string]any) {
			m["content"] = map[string]any{"body": strings.Repeat("a", MaxEventSize)}
		}, "larger than 65536"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.mutate(m)
			raw, err := canonicaljson.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(raw, v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %s", err, tc.want)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"a":1.5}`, `{"a":1,"a":2}`, "not json"} {
		if _, err := Parse([]byte(bad), v); !errors.Is(err, ErrFormat) {
			t.Errorf("Parse(%s) = %v, want ErrFormat", bad, err)
		}
	}
}

func canonicalClone(m map[string]any) map[string]any { return cloneValue(m).(map[string]any) }

func TestRedactionByVersion(t *testing.T) {
	content := map[string]any{
		"membership": "join", "displayname": "A", "join_authorised_via_users_server": "@b:hs.test",
		"third_party_invite": map[string]any{"signed": map[string]any{"token": "t"}, "display_name": "x"},
		"creator":            "@a:hs.test", "room_version": "10", "m.federate": true,
		"join_rule": "restricted", "allow": []any{}, "ban": int64(50), "invite": int64(0), "users": map[string]any{},
		"history_visibility": "shared", "redacts": "$x", "body": "gone",
	}
	type want struct{ v10, v11 []string }
	cases := map[string]want{
		"m.room.member":             {[]string{"join_authorised_via_users_server", "membership"}, []string{"join_authorised_via_users_server", "membership", "third_party_invite"}},
		"m.room.create":             {[]string{"creator"}, keysOf(content)},
		"m.room.join_rules":         {[]string{"allow", "join_rule"}, []string{"allow", "join_rule"}},
		"m.room.power_levels":       {[]string{"ban", "users"}, []string{"ban", "invite", "users"}},
		"m.room.history_visibility": {[]string{"history_visibility"}, []string{"history_visibility"}},
		"m.room.redaction":          {nil, []string{"redacts"}},
		"m.room.message":            {nil, nil},
	}
	for typ, w := range cases {
		for _, ver := range []string{"10", "11"} {
			v := mustVersion(t, ver)
			obj := map[string]any{"type": typ, "content": canonicalClone(content), "origin": "hs.test", "membership": "join",
				"prev_state": []any{}, "unsigned": map[string]any{"age": int64(1)}, "event_id": "$e", "sender": "@a:hs.test"}
			r := RedactObject(obj, v)
			got := keysOf(r["content"].(map[string]any))
			exp := w.v10
			if ver == "11" {
				exp = w.v11
			}
			if strings.Join(got, ",") != strings.Join(exp, ",") {
				t.Errorf("v%s %s keeps %v, want %v", ver, typ, got, exp)
			}
			if tpi, ok := r["content"].(map[string]any)["third_party_invite"].(map[string]any); ok && typ == "m.room.member" && len(tpi) != 1 {
				t.Errorf("v%s third_party_invite keeps %v, want only signed", ver, tpi)
			}
			_, origin := r["origin"]
			if origin != (ver == "10") {
				t.Errorf("v%s keeps origin = %v", ver, origin)
			}
			if _, u := r["unsigned"]; u {
				t.Errorf("v%s keeps unsigned", ver)
			}
		}
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestRedactsLocation(t *testing.T) {
	for _, ver := range []string{"10", "11"} {
		v := mustVersion(t, ver)
		tmpl := Template{Type: "m.room.redaction", Sender: "@a:hs.test", RoomID: "!r:hs.test", Depth: 2, Redacts: "$target",
			Content: map[string]any{"reason": "spam"}, PrevEvents: []string{}, AuthEvents: []string{}}
		e, err := Build(tmpl, v, testSigner())
		if err != nil {
			t.Fatal(err)
		}
		if e.Redacts() != "$target" {
			t.Errorf("v%s Redacts() = %q", ver, e.Redacts())
		}
		_, top := e.Object()["redacts"]
		_, inContent := e.Content()["redacts"]
		if top != (ver == "10") || inContent != (ver == "11") {
			t.Errorf("v%s redacts top-level %v, in content %v", ver, top, inContent)
		}
	}
}
