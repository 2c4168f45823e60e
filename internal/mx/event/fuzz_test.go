package event

import "testing"

// FuzzParse: parsing never panics, and whatever parses re-parses to the
// same event (same ID, same canonical bytes) and redacts without error.
func FuzzParse(f *testing.F) {
	v10, _ := LookupVersion("10")
	v11, _ := LookupVersion("11")
	for _, ver := range []*Version{v10, v11} {
		e, _ := Build(msgTemplate(), ver, testSigner())
		f.Add(e.JSON(), ver.ID == "11")
	}
	f.Add([]byte(`{"type":"m.room.member","state_key":"@a:b","content":{"membership":"join"},"sender":"@a:b","room_id":"!r:b","depth":1,"origin_server_ts":1,"prev_events":[],"auth_events":[],"hashes":{"sha256":"x"}}`), false)
	f.Add([]byte(`{}`), true)
	f.Fuzz(func(t *testing.T, raw []byte, v11Room bool) {
		v := v10
		if v11Room {
			v = v11
		}
		e, err := Parse(raw, v)
		if err != nil {
			return
		}
		again, err := Parse(e.JSON(), v)
		if err != nil {
			t.Fatalf("re-parse of canonical form failed: %v", err)
		}
		if again.ID() != e.ID() || string(again.JSON()) != string(e.JSON()) {
			t.Fatal("re-parse changed the event")
		}
		r, err := e.Redact()
		if err != nil {
			t.Fatalf("redact: %v", err)
		}
		if r.ID() != e.ID() {
			t.Fatal("redaction changed the event ID")
		}
		_ = e.CheckContentHash()
	})
}
