package spectest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// event is a valid client event (with a room_id when room is set).
func event(id, room string) map[string]any {
	e := map[string]any{
		"event_id":         id,
		"type":             "m.room.message",
		"sender":           "@alice:example.org",
		"origin_server_ts": float64(1632491098485),
		"content":          map[string]any{"msgtype": "m.text", "body": "hi"},
		"unsigned":         map[string]any{"age": float64(12), "transaction_id": "t1"},
	}
	if room != "" {
		e["room_id"] = room
	}
	return e
}

func stateEvent(id, room string) map[string]any {
	e := event(id, room)
	e["type"], e["state_key"] = "m.room.member", "@alice:example.org"
	e["content"] = map[string]any{"membership": "join"}
	return e
}

// validSync is a /sync body using most of the schema.
func validSync() map[string]any {
	return map[string]any{
		"next_batch": "s72595_4483_1934",
		"rooms": map[string]any{
			"join": map[string]any{
				"!r:x": map[string]any{
					"summary": map[string]any{
						"m.heroes":              []any{"@bob:example.org"},
						"m.joined_member_count": float64(2),
					},
					"state":    map[string]any{"events": []any{stateEvent("$s1", "")}},
					"timeline": map[string]any{"events": []any{event("$e1", ""), stateEvent("$e2", "")}, "limited": true, "prev_batch": "p1"},
					"ephemeral": map[string]any{"events": []any{
						map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": []any{}}},
					}},
					"account_data":         map[string]any{"events": []any{}},
					"unread_notifications": map[string]any{"highlight_count": float64(0), "notification_count": float64(3)},
					"unread_thread_notifications": map[string]any{
						"$thread": map[string]any{"highlight_count": float64(1)},
					},
				},
			},
			"invite": map[string]any{
				"!i:x": map[string]any{"invite_state": map[string]any{"events": []any{
					map[string]any{"type": "m.room.name", "state_key": "", "sender": "@bob:example.org", "content": map[string]any{"name": "x"}},
				}}},
			},
			"leave": map[string]any{
				"!l:x": map[string]any{"timeline": map[string]any{"events": []any{}}},
			},
		},
		"presence":                   map[string]any{"events": []any{}},
		"account_data":               map[string]any{"events": []any{map[string]any{"type": "m.direct", "content": map[string]any{}}}},
		"to_device":                  map[string]any{"events": []any{}},
		"device_lists":               map[string]any{"changed": []any{}},
		"device_one_time_keys_count": map[string]any{"signed_curve25519": float64(20)},
	}
}

func validMessages() map[string]any {
	return map[string]any{
		"start": "t1",
		"end":   "t2",
		"chunk": []any{event("$e1", "!r:x"), stateEvent("$e2", "!r:x")},
		"state": []any{stateEvent("$s1", "!r:x")},
	}
}

func validContext() map[string]any {
	return map[string]any{
		"start":         "t1",
		"end":           "t2",
		"event":         event("$e", "!r:x"),
		"events_before": []any{event("$b", "!r:x")},
		"events_after":  []any{},
		"state":         []any{stateEvent("$s", "!r:x")},
	}
}

// at returns the value at a path of map keys and list indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			v = v.(map[string]any)[p]
		case int:
			v = v.([]any)[p]
		}
	}
	return v
}

func obj(v any, path ...any) map[string]any { return at(v, path...).(map[string]any) }

var (
	joined   = []any{"rooms", "join", "!r:x"}
	timeline = append(slices.Clone(joined), "timeline")
	tlEvent  = append(slices.Clone(timeline), "events", 0)
)

type specCase struct {
	name   string
	mutate func(body map[string]any)
	want   []string // substrings of one error each; none: valid
}

func runCases(t *testing.T, s *Schema, valid func() map[string]any, cases []specCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := valid()
			if c.mutate != nil {
				c.mutate(body)
			}
			errs := s.Validate(body)
			if len(c.want) == 0 {
				if len(errs) != 0 {
					t.Fatalf("valid body rejected:\n%s", strings.Join(errs, "\n"))
				}
				return
			}
			if len(errs) != len(c.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(errs), len(c.want), strings.Join(errs, "\n"))
			}
			for _, w := range c.want {
				if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, w) }) {
					t.Errorf("no error contains %q; got:\n%s", w, strings.Join(errs, "\n"))
				}
			}
			// The same through the encoded form.
			raw, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.ValidateJSON(raw); !slices.Equal(got, errs) {
				t.Errorf("ValidateJSON gave\n%s\nValidate gave\n%s", strings.Join(got, "\n"), strings.Join(errs, "\n"))
			}
		})
	}
}

func TestSync(t *testing.T) {
	s := Response(t, "sync.yaml", "get", "/sync", 200)
	runCases(t, s, validSync, []specCase{
		{name: "valid"},
		{name: "minimal", mutate: func(b map[string]any) {
			for k := range b {
				if k != "next_batch" {
					delete(b, k)
				}
			}
		}},
		{name: "missing next_batch", mutate: func(b map[string]any) { delete(b, "next_batch") },
			want: []string{`$: missing required property "next_batch"`}},
		{name: "next_batch a number", mutate: func(b map[string]any) { b["next_batch"] = 5.0 },
			want: []string{`$.next_batch: got integer 5, want string`}},
		{name: "timeline origin_server_ts a string", mutate: func(b map[string]any) {
			obj(b, tlEvent...)["origin_server_ts"] = "1632491098485"
		}, want: []string{`$.rooms.join["!r:x"].timeline.events[0].origin_server_ts: got string "1632491098485", want integer`}},
		{name: "timeline origin_server_ts fractional", mutate: func(b map[string]any) {
			obj(b, tlEvent...)["origin_server_ts"] = 1.5
		}, want: []string{`$.rooms.join["!r:x"].timeline.events[0].origin_server_ts: got number 1.5, want integer`}},
		{name: "limited a string", mutate: func(b map[string]any) { obj(b, timeline...)["limited"] = "true" },
			want: []string{`$.rooms.join["!r:x"].timeline.limited: got string "true", want boolean`}},
		{name: "timeline event missing event_id", mutate: func(b map[string]any) { delete(obj(b, tlEvent...), "event_id") },
			want: []string{`$.rooms.join["!r:x"].timeline.events[0]: missing required property "event_id"`}},
		{name: "timeline without events", mutate: func(b map[string]any) { delete(obj(b, timeline...), "events") },
			want: []string{`$.rooms.join["!r:x"].timeline: missing required property "events"`}},
		{name: "event_id without $", mutate: func(b map[string]any) { obj(b, tlEvent...)["event_id"] = "e1" },
			want: []string{`$.rooms.join["!r:x"].timeline.events[0].event_id: string "e1" does not match pattern`}},
		{name: "state event content an array", mutate: func(b map[string]any) {
			obj(b, append(slices.Clone(joined), "state", "events", 0)...)["content"] = []any{}
		}, want: []string{`$.rooms.join["!r:x"].state.events[0].content: got array of 0 items, want object`}},
		{name: "unsigned.age a string", mutate: func(b map[string]any) {
			obj(b, append(slices.Clone(tlEvent), "unsigned")...)["age"] = "12"
		}, want: []string{`$.rooms.join["!r:x"].timeline.events[0].unsigned.age: got string`}},
		{name: "hero not a user ID", mutate: func(b map[string]any) {
			obj(b, append(slices.Clone(joined), "summary")...)["m.heroes"] = []any{"bob"}
		}, want: []string{`$.rooms.join["!r:x"].summary["m.heroes"][0]: string "bob" does not match pattern "^@"`}},
		{name: "thread notification count a string", mutate: func(b map[string]any) {
			obj(b, append(slices.Clone(joined), "unread_thread_notifications", "$thread")...)["highlight_count"] = "1"
		}, want: []string{`$.rooms.join["!r:x"].unread_thread_notifications["$thread"].highlight_count: got string "1", want integer`}},
		{name: "ephemeral event without content", mutate: func(b map[string]any) {
			delete(obj(b, append(slices.Clone(joined), "ephemeral", "events", 0)...), "content")
		}, want: []string{`$.rooms.join["!r:x"].ephemeral.events[0]: missing required property "content"`}},
		{name: "stripped state without sender", mutate: func(b map[string]any) {
			delete(obj(b, "rooms", "invite", "!i:x", "invite_state", "events", 0), "sender")
		}, want: []string{`$.rooms.invite["!i:x"].invite_state.events[0]: missing required property "sender"`}},
		{name: "one-time key count a string", mutate: func(b map[string]any) {
			obj(b, "device_one_time_keys_count")["signed_curve25519"] = "20"
		}, want: []string{`$.device_one_time_keys_count.signed_curve25519: got string "20", want integer`}},
		{name: "rooms.join a list", mutate: func(b map[string]any) { obj(b, "rooms")["join"] = []any{} },
			want: []string{`$.rooms.join: got array of 0 items, want object`}},
		{name: "two errors", mutate: func(b map[string]any) {
			delete(b, "next_batch")
			obj(b, timeline...)["limited"] = 1.0
		}, want: []string{`$: missing required property "next_batch"`, `$.rooms.join["!r:x"].timeline.limited: got integer 1, want boolean`}},
	})
}

func TestMessages(t *testing.T) {
	s := Response(t, "message_pagination.yaml", "GET", "/rooms/{roomId}/messages", 200)
	runCases(t, s, validMessages, []specCase{
		{name: "valid"},
		{name: "minimal", mutate: func(b map[string]any) {
			delete(b, "end")
			delete(b, "state")
			b["chunk"] = []any{}
		}},
		{name: "missing start", mutate: func(b map[string]any) { delete(b, "start") },
			want: []string{`$: missing required property "start"`}},
		{name: "chunk an object", mutate: func(b map[string]any) { b["chunk"] = map[string]any{} },
			want: []string{`$.chunk: got object with 0 properties, want array`}},
		// room_id is required by client_event.yaml's second allOf branch,
		// the rest by the file it $refs.
		{name: "event missing room_id", mutate: func(b map[string]any) { delete(obj(b, "chunk", 1), "room_id") },
			want: []string{`$.chunk[1]: missing required property "room_id"`}},
		{name: "event missing event_id", mutate: func(b map[string]any) { delete(obj(b, "chunk", 0), "event_id") },
			want: []string{`$.chunk[0]: missing required property "event_id"`}},
		{name: "origin_server_ts a string", mutate: func(b map[string]any) { obj(b, "chunk", 0)["origin_server_ts"] = "5" },
			want: []string{`$.chunk[0].origin_server_ts: got string "5", want integer`}},
		{name: "state sender not a user ID", mutate: func(b map[string]any) { obj(b, "state", 0)["sender"] = "alice" },
			want: []string{`$.state[0].sender: string "alice" does not match pattern "^@"`}},
		{name: "room_id a number", mutate: func(b map[string]any) { obj(b, "chunk", 0)["room_id"] = 1.0 },
			want: []string{`$.chunk[0].room_id: got integer 1, want string`}},
	})
}

func TestContext(t *testing.T) {
	s := Response(t, "event_context.yaml", "get", "/rooms/{roomId}/context/{eventId}", 200)
	runCases(t, s, validContext, []specCase{
		{name: "valid"},
		{name: "event origin_server_ts a string", mutate: func(b map[string]any) { obj(b, "event")["origin_server_ts"] = "1" },
			want: []string{`$.event.origin_server_ts: got string "1", want integer`}},
		{name: "event missing event_id", mutate: func(b map[string]any) { delete(obj(b, "event"), "event_id") },
			want: []string{`$.event: missing required property "event_id"`}},
		{name: "events_before event missing sender", mutate: func(b map[string]any) { delete(obj(b, "events_before", 0), "sender") },
			want: []string{`$.events_before[0]: missing required property "sender"`}},
		{name: "events_after null", mutate: func(b map[string]any) { b["events_after"] = nil },
			want: []string{`$.events_after: got null, want array`}},
		{name: "state event missing room_id", mutate: func(b map[string]any) { delete(obj(b, "state", 0), "room_id") },
			want: []string{`$.state[0]: missing required property "room_id"`}},
	})
}

func TestOtherSchemas(t *testing.T) {
	versions := Response(t, "versions.yaml", "get", "/versions", 200)
	runCases(t, versions, func() map[string]any {
		return map[string]any{"versions": []any{"v1.1"}, "unstable_features": map[string]any{"org.example": true}}
	}, []specCase{
		{name: "valid"},
		{name: "feature not a boolean", mutate: func(b map[string]any) { obj(b, "unstable_features")["x"] = 1.0 },
			want: []string{`$.unstable_features.x: got integer 1, want boolean`}},
		{name: "version not a string", mutate: func(b map[string]any) { b["versions"] = []any{"v1.1", 2.0} },
			want: []string{`$.versions[1]: got integer 2, want string`}},
	})
	// maxProperties: 0.
	receipt := Response(t, "receipts.yaml", "post", "/rooms/{roomId}/receipt/{receiptType}/{eventId}", 200)
	runCases(t, receipt, func() map[string]any { return map[string]any{} }, []specCase{
		{name: "empty"},
		{name: "not empty", mutate: func(b map[string]any) { b["a"] = 1.0 },
			want: []string{`$: object has 1 properties, want at most 0`}},
	})
	// A response that is a $ref to a file whose schema is allOf a $ref.
	limited := Response(t, "typing.yaml", "put", "/rooms/{roomId}/typing/{userId}", 429)
	runCases(t, limited, func() map[string]any {
		return map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 2000.0}
	}, []specCase{
		{name: "valid"},
		{name: "retry_after_ms a string", mutate: func(b map[string]any) { b["retry_after_ms"] = "2000" },
			want: []string{`$.retry_after_ms: got string "2000", want integer`}},
		{name: "missing errcode", mutate: func(b map[string]any) { delete(b, "errcode") },
			want: []string{`$: missing required property "errcode"`}},
	})
}

func TestMissingOperation(t *testing.T) {
	if _, ok := Dir(); !ok {
		t.Skip("Matrix spec not found; skipping")
	}
	for _, c := range []struct{ file, method, path string }{
		{"sync.yaml", "get", "/nope"},
		{"sync.yaml", "post", "/sync"},
		{"no-such-file.yaml", "get", "/sync"},
	} {
		_, err := Load(c.file, c.method, c.path, 200)
		if err == nil || errors.Is(err, ErrNoSpec) {
			t.Errorf("Load(%s %s %s): %v, want an error", c.file, c.method, c.path, err)
		}
	}
	_, err := Load("sync.yaml", "get", "/sync", 299)
	if err == nil || !strings.Contains(err.Error(), "has 200") {
		t.Errorf("missing status: %v, want one listing the statuses there are", err)
	}
}

// TestWholeClientServerAPI compiles every JSON response schema of the
// client-server API, so a keyword the validator does not know shows up,
// and checks each response's examples, where they are self-contained.
func TestWholeClientServerAPI(t *testing.T) {
	dir, ok := Dir()
	if !ok {
		t.Skip("Matrix spec not found; skipping")
	}
	paths, err := filepath.Glob(filepath.Join(dir, "data", "api", "client-server", "*.yaml"))
	if err != nil || len(paths) < 50 {
		t.Fatalf("client-server API files: %d, %v", len(paths), err)
	}
	schemas, examples := 0, 0
	for _, p := range paths {
		file := filepath.Base(p)
		mu.Lock()
		doc, err := loadFile(p)
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		pathItems, _ := doc.(map[string]any)["paths"].(map[string]any)
		for path, item := range pathItems {
			for method, op := range item.(map[string]any) {
				responses, _ := at(op, "responses").(map[string]any)
				for status, resp := range responses {
					code, err := strconv.Atoi(status)
					if err != nil {
						continue // "default", "4XX"
					}
					s, err := Load(file, method, path, code)
					if err != nil {
						if msg := err.Error(); strings.Contains(msg, "response has no content") || strings.Contains(msg, "no application/json") {
							continue // not a JSON response
						}
						t.Error(err)
						continue
					}
					schemas++
					var exs map[string]any
					if r, _ := resp.(map[string]any); r["content"] != nil {
						exs, _ = at(r, "content", "application/json").(map[string]any)["examples"].(map[string]any)
					}
					for name, ex := range exs {
						if hasRef(ex) {
							continue // examples built from the spec's example files
						}
						value := at(ex, "value")
						examples++
						for _, e := range s.Validate(value) {
							t.Errorf("%s: example %q: %s", s, name, e)
						}
					}
				}
			}
		}
	}
	t.Logf("%d response schemas, %d examples", schemas, examples)
	if schemas < 200 {
		t.Errorf("only %d response schemas found", schemas)
	}
}

func hasRef(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["$ref"]; ok {
			return true
		}
		for _, e := range v {
			if hasRef(e) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(v, hasRef)
	}
	return false
}

// writeSpec makes a fake spec checkout with the given client-server API
// files and points SLUICE_MATRIX_SPEC at it.
func writeSpec(t *testing.T, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, "data", "api", "client-server", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SLUICE_MATRIX_SPEC", dir)
}

// TestKeywords covers the keywords the real spec does not exercise, with
// a fake spec, so it runs without a checkout.
func TestKeywords(t *testing.T) {
	writeSpec(t, map[string]string{
		"api.yaml": `
openapi: 3.1.0
paths:
  /thing:
    get:
      responses:
        200:
          content:
            application/json:
              schema:
                $ref: "defs/thing.yaml#/components/Thing"
        404:
          $ref: "#/components/responses/NotFound"
components:
  responses:
    NotFound:
      content:
        application/json:
          schema:
            type: object
            additionalProperties: false
            properties:
              errcode: {const: M_NOT_FOUND}
`,
		"defs/thing.yaml": `
components:
  Thing:
    type: object
    required: [kind]
    properties:
      kind: {enum: [a, b, 3]}
      tree: {$ref: "#/components/Tree"}
      either:
        oneOf:
          - {type: string}
          - {type: integer, minimum: 0, exclusiveMaximum: 10}
      any:
        anyOf:
          - {type: "null"}
          - {type: string, minLength: 2, maxLength: 3}
      maybe: {type: string, nullable: true}
      multi: {type: [string, integer]}
      list: {type: array, items: {type: integer}, minItems: 1, maxItems: 2, uniqueItems: true}
      notnull: {not: {type: "null"}}
      sub: {$ref: "../sub.yaml"}
      even: {type: number, multipleOf: 2, maximum: 100}
      ptr: {$ref: "../api.yaml#/components/responses/NotFound/content/application~1json/schema"}
  Tree:
    type: object
    properties:
      children: {type: array, items: {$ref: "#/components/Tree"}}
      name: {type: string, pattern: "^[a-z]+$"}
`,
		"sub.yaml": `
type: object
x-anything: [1, 2]
format: whatever
patternProperties:
  "^n_": {type: number}
additionalProperties: {type: boolean}
`,
	})
	s := Response(t, "api.yaml", "GET", "/thing", 200)
	cases := []struct {
		body string
		want []string
	}{
		{`{"kind": "a"}`, nil},
		{`{"kind": 3.0, "tree": {"name": "r", "children": [{"name": "c", "children": []}]}}`, nil},
		{`{"kind": "c"}`, []string{`$.kind: got string "c", want one of string "a", string "b", integer 3`}},
		{`{}`, []string{`$: missing required property "kind"`}},
		{`{"kind": "a", "tree": {"children": [{"children": [{"name": "X"}]}]}}`,
			[]string{`$.tree.children[0].children[0].name: string "X" does not match pattern "^[a-z]+$"`}},
		{`{"kind": "a", "either": "s"}`, nil},
		{`{"kind": "a", "either": 9}`, nil},
		{`{"kind": "a", "either": 10}`, []string{`$.either: matches no oneOf branch: branch 0: $.either: got integer 10, want string; branch 1: $.either: integer 10 is above the maximum 10 (exclusive)`}},
		{`{"kind": "a", "either": -1}`, []string{`$.either: matches no oneOf branch`}},
		{`{"kind": "a", "any": null}`, nil},
		{`{"kind": "a", "any": "abc"}`, nil},
		{`{"kind": "a", "any": "abcd"}`, []string{`$.any: matches no anyOf branch: branch 0: $.any: got string "abcd", want null; branch 1: $.any: string "abcd" has 4 characters, want 2 to 3`}},
		{`{"kind": "a", "maybe": null, "multi": 1}`, nil},
		{`{"kind": "a", "multi": "x"}`, nil},
		{`{"kind": "a", "multi": true}`, []string{`$.multi: got boolean true, want string or integer`}},
		{`{"kind": "a", "list": [1, 2]}`, nil},
		{`{"kind": "a", "list": []}`, []string{`$.list: array has 0 items, want 1 to 2`}},
		{`{"kind": "a", "list": [1, 1.0]}`, []string{`$.list: items 0 and 1 are equal`}},
		{`{"kind": "a", "list": [1, 2, 3]}`, []string{`$.list: array has 3 items, want 1 to 2`}},
		{`{"kind": "a", "list": [9007199254740993]}`, nil},
		{`{"kind": "a", "list": [1e400]}`, []string{`$.list[0]: got number 1e400, want integer`}},
		{`{"kind": "a", "notnull": null}`, []string{`$.notnull: matches a schema it must not`}},
		{`{"kind": "a", "sub": {"n_1": 1.5, "flag": true}}`, nil},
		{`{"kind": "a", "sub": {"n_1": "x", "flag": 1}}`, []string{`$.sub.flag: got integer 1, want boolean`, `$.sub.n_1: got string "x", want number`}},
		{`{"kind": "a", "even": 4}`, nil},
		{`{"kind": "a", "even": 3}`, []string{`$.even: integer 3 is not a multiple of 2`}},
		{`{"kind": "a", "even": 102}`, []string{`$.even: integer 102 is above the maximum 100`}},
		{`{"kind": "a", "ptr": {"errcode": "M_NOT_FOUND"}}`, nil},
		{`{"kind": "a", "ptr": {"errcode": "x"}}`, []string{`$.ptr.errcode: got string "x", want string "M_NOT_FOUND"`}},
		{`{"kind": "a"} {}`, []string{`$: body has data after its JSON value`}},
		{`{"kind": `, []string{`$: body is not JSON`}},
	}
	for _, c := range cases {
		errs := s.ValidateJSON([]byte(c.body))
		ok := len(errs) == len(c.want)
		for i := 0; ok && i < len(errs); i++ {
			ok = strings.HasPrefix(errs[i], c.want[i])
		}
		if !ok {
			t.Errorf("%s:\ngot  %q\nwant %q", c.body, errs, c.want)
		}
	}

	notFound := Response(t, "api.yaml", "get", "/thing", 404)
	if errs := notFound.Validate(map[string]any{"errcode": "M_NOT_FOUND"}); len(errs) != 0 {
		t.Errorf("valid 404 body: %q", errs)
	}
	if errs := notFound.Validate(map[string]any{"errcode": "M_FORBIDDEN", "error": "x"}); !slices.Equal(errs, []string{
		`$.errcode: got string "M_FORBIDDEN", want string "M_NOT_FOUND"`,
		`$: unexpected property "error"`,
	}) {
		t.Errorf("invalid 404 body: %q", errs)
	}
	// Go values other than encoding/json's are converted.
	type body struct {
		Kind string `json:"kind"`
		List []int  `json:"list"`
	}
	if errs := s.Validate(body{Kind: "a", List: []int{1, 2}}); len(errs) != 0 {
		t.Errorf("struct body: %q", errs)
	}
	if errs := s.Validate(body{Kind: "z", List: []int{1, 2}}); len(errs) != 1 {
		t.Errorf("invalid struct body: %q", errs)
	}
}

func TestBadSchemas(t *testing.T) {
	writeSpec(t, map[string]string{"api.yaml": `
paths:
  /unknown-keyword:
    get: {responses: {200: {content: {application/json: {schema: {type: object, propertyNames: {pattern: "^a"}}}}}}}
  /dangling:
    get: {responses: {200: {content: {application/json: {schema: {$ref: "nowhere.yaml"}}}}}}
  /bad-pointer:
    get: {responses: {200: {content: {application/json: {schema: {$ref: "#/no/such"}}}}}}
  /bad-type:
    get: {responses: {200: {content: {application/json: {schema: {type: int}}}}}}
  /no-json:
    get: {responses: {200: {content: {image/png: {}}}}}
`})
	for path, want := range map[string]string{
		"/unknown-keyword": `unsupported schema keyword "propertyNames"`,
		"/dangling":        "nowhere.yaml",
		"/bad-pointer":     "#/no: no such key",
		"/bad-type":        `unknown type "int"`,
		"/no-json":         "no application/json content",
	} {
		_, err := Load("api.yaml", "get", path, 200)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", path, err, want)
		}
	}
}

func TestNoSpec(t *testing.T) {
	t.Setenv("SLUICE_MATRIX_SPEC", t.TempDir())
	if _, ok := Dir(); ok {
		t.Fatal("an empty directory is taken for the spec")
	}
	_, err := Load("sync.yaml", "get", "/sync", 200)
	if !errors.Is(err, ErrNoSpec) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Load without a spec: %v, want a one-line ErrNoSpec", err)
	}
}

func TestModulePath(t *testing.T) {
	for in, want := range map[string]string{
		"module github.com/sluice-im/sluice\n\ngo 1.26\n":     module,
		"// c\nmodule \"github.com/sluice-im/sluice\" // x\n": module,
		"modules x\nmodule example.com/other\n":               "example.com/other",
		"go 1.26\n":                                           "",
	} {
		if got := modulePath([]byte(in)); got != want {
			t.Errorf("modulePath(%q) = %q, want %q", in, got, want)
		}
	}
	t.Setenv("SLUICE_MATRIX_SPEC", "")
	root, ok := repoRoot()
	if !ok {
		t.Fatal("repository root not found")
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "spectest")); err != nil {
		t.Errorf("root %s: %v", root, err)
	}
	if d, _ := Dir(); d != filepath.Join(filepath.Dir(root), "shared", "matrix-spec") {
		t.Errorf("Dir() = %s for root %s", d, root)
	}
}
