package wasm

import (
	"encoding/json"
	"testing"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"65536", 65536, true},
		{"64K", 64 << 10, true},
		{"64M", 64 << 20, true},
		{"64mb", 64 << 20, true},
		{" 1G ", 1 << 30, true},
		{"4G", 4 << 30, true},
		{"", 0, false},
		{"lots", 0, false},
		{"-1M", 0, false},
		{"1.5M", 0, false},
		{"99999999999G", 0, false},
	}
	for _, tc := range cases {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestJSONable(t *testing.T) {
	in := map[string]any{"a": map[any]any{1: "x", "b": []any{map[any]any{true: 2}}}}
	b, err := json.Marshal(jsonable(in))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"a":{"1":"x","b":[{"true":2}]}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
