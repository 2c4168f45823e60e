package pushrules

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	raw := Defaults(`@al"ice:example.org`)
	var rs map[string][]struct {
		RuleID     string           `json:"rule_id"`
		Default    bool             `json:"default"`
		Enabled    *bool            `json:"enabled"`
		Conditions []map[string]any `json:"conditions"`
		Actions    []any            `json:"actions"`
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	for _, kind := range []string{"override", "content", "room", "sender", "underride"} {
		if _, ok := rs[kind]; !ok {
			t.Errorf("no %s list", kind)
		}
	}
	var ids []string
	for _, kind := range []string{"override", "underride"} {
		for _, r := range rs[kind] {
			if !r.Default || r.Enabled == nil || r.Actions == nil || !strings.HasPrefix(r.RuleID, ".m.rule.") {
				t.Errorf("rule %+v is not a well-formed predefined rule", r)
			}
			ids = append(ids, r.RuleID)
		}
	}
	// The first and last rules by the spec, and the master rule disabled.
	if ids[0] != ".m.rule.master" || *rs["override"][0].Enabled || ids[len(ids)-1] != ".m.rule.encrypted" {
		t.Errorf("rule order %v", ids)
	}
	if !slices.Contains(ids, ".m.rule.is_user_mention") || strings.Contains(string(raw), "{{user_id}}") ||
		!strings.Contains(string(raw), `"@al\"ice:example.org"`) {
		t.Errorf("user ID not substituted: %s", raw)
	}
}
