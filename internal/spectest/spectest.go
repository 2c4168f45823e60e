// Package spectest validates JSON response bodies against the Matrix
// specification's OpenAPI descriptions, for tests.
//
// The descriptions are read from a matrix-spec checkout (see [Dir]); where
// there is none, as in CI, [Response] skips the test and [Load] returns an
// error wrapping [ErrNoSpec]. Parsed YAML files and compiled schemas are
// cached for the life of the process, so many tests may share them.
//
//	s := spectest.Response(t, "sync.yaml", "get", "/sync", 200)
//	s.Check(t, r.Body) // one t.Errorf per violation, each naming a JSON path
//
// # Schema keywords
//
// The validator implements the JSON Schema (2020-12, as used by OpenAPI
// 3.1) keywords the client-server API uses, and a few more:
//
//   - $ref: a relative file, a "#/..." JSON pointer, or both
//     ("definitions/x.yaml#/a/b"), resolved against the referring file; its
//     sibling keywords apply too. Recursive references are fine.
//   - allOf, anyOf, oneOf (exactly one branch must match), not.
//   - type, a name or a list of names; "integer" is a number with no
//     fractional part. nullable: true (OpenAPI 3.0) also admits null.
//   - properties, required, additionalProperties (a boolean or a schema),
//     patternProperties, minProperties, maxProperties.
//   - items (a single schema), minItems, maxItems, uniqueItems.
//   - enum, const (numbers compare by value).
//   - pattern (an unanchored Go regexp, which the spec's patterns are
//     written to be compatible with), minLength, maxLength (in code points).
//   - minimum, maximum, exclusiveMinimum, exclusiveMaximum (a number, or
//     OpenAPI 3.0's boolean modifier), multipleOf.
//
// Deliberately ignored, since they do not constrain values: format (the
// spec's formats, such as mx-user-id, are descriptive; the constraint that
// matters is spelled out in a pattern beside it), description, title,
// example, examples, default, deprecated, readOnly, writeOnly,
// externalDocs, $schema, $id, $comment, $defs, definitions and every x-*
// extension (x-addedInMatrixVersion, x-pattern-format, ...).
//
// Any other keyword (prefixItems, contains, propertyNames, if/then/else,
// dependentRequired, unevaluatedProperties, ...) makes loading the schema
// fail rather than be silently skipped, so a spec change that the validator
// does not understand shows up as a test failure.
package spectest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is the module path that marks the repository root.
const module = "github.com/sluice-im/sluice"

// ErrNoSpec is wrapped by the error [Load] returns when there is no
// matrix-spec checkout.
var ErrNoSpec = errors.New("spectest: Matrix spec not found")

// Dir returns the matrix-spec checkout: $SLUICE_MATRIX_SPEC if set, else
// <root>/../shared/matrix-spec, where <root> is the repository root found
// by walking up from the working directory to the go.mod of module
// github.com/sluice-im/sluice. The boolean reports whether the checkout
// is there (it has data/api/client-server); the path is returned either
// way, when known, for messages.
func Dir() (string, bool) {
	d := os.Getenv("SLUICE_MATRIX_SPEC")
	if d == "" {
		root, ok := repoRoot()
		if !ok {
			return "", false
		}
		d = filepath.Join(root, "..", "shared", "matrix-spec")
	}
	if abs, err := filepath.Abs(d); err == nil {
		d = abs
	}
	fi, err := os.Stat(filepath.Join(d, "data", "api", "client-server"))
	return d, err == nil && fi.IsDir()
}

// repoRoot walks up from the working directory to the directory whose
// go.mod declares this module.
func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(raw) == module {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// modulePath returns the path of a go.mod's module directive.
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t' && rest[0] != '"') {
			continue
		}
		rest, _, _ = strings.Cut(rest, "//")
		rest = strings.TrimSpace(rest)
		if u, err := strconv.Unquote(rest); err == nil {
			return u
		}
		return rest
	}
	return ""
}

// Schema is the compiled schema of one response.
type Schema struct {
	root *node
	name string // "sync.yaml GET /sync 200", for messages
}

// String names the response the schema describes.
func (s *Schema) String() string { return s.name }

// Load returns the application/json schema of a response in the spec's
// client-server API: file is relative to data/api/client-server (for
// example "sync.yaml"), method is an HTTP method in either case, path is
// the path as written in the file (for example "/rooms/{roomId}/messages")
// and status the response's status code. Without a spec checkout the
// error wraps [ErrNoSpec].
func Load(file, method, path string, status int) (*Schema, error) {
	dir, ok := Dir()
	if !ok {
		if dir == "" {
			return nil, fmt.Errorf("%w: no repository root (go.mod of %s) above the working directory; set SLUICE_MATRIX_SPEC to a matrix-spec checkout", ErrNoSpec, module)
		}
		return nil, fmt.Errorf("%w at %s; set SLUICE_MATRIX_SPEC to a matrix-spec checkout", ErrNoSpec, dir)
	}
	name := fmt.Sprintf("%s %s %s %d", file, strings.ToUpper(method), path, status)
	fpath := filepath.Join(dir, "data", "api", "client-server", filepath.FromSlash(file))

	mu.Lock()
	defer mu.Unlock()
	at := loc{file: fpath}
	for _, step := range []struct{ key, what string }{
		{"paths", "no paths"},
		{path, "no path " + path},
		{strings.ToLower(method), "no operation " + strings.ToUpper(method) + " " + path},
		{"responses", "no responses for " + strings.ToUpper(method) + " " + path},
		{strconv.Itoa(status), "no response " + strconv.Itoa(status) + " for " + strings.ToUpper(method) + " " + path},
		{"content", "response has no content"},
		{"application/json", "response has no application/json content"},
		{"schema", "response has no application/json schema"},
	} {
		var err error
		// Everything on the way is an OpenAPI object, which a $ref
		// replaces; the schema's own $ref is the validator's business.
		if at, err = derefObject(at); err != nil {
			return nil, fmt.Errorf("spectest: %s: %v", name, err)
		}
		v, err := at.value()
		if err != nil {
			return nil, fmt.Errorf("spectest: %s: %v", name, err)
		}
		m, _ := v.(map[string]any)
		if _, ok := m[step.key]; !ok {
			msg := step.what
			if step.key == strconv.Itoa(status) {
				msg += " (has " + strings.Join(sortedKeys(m), ", ") + ")"
			}
			return nil, fmt.Errorf("spectest: %s: %s in %s", name, msg, at)
		}
		at = at.child(step.key)
	}
	c := compiler{pending: map[string]*node{}}
	root, err := c.compile(at)
	if err != nil {
		return nil, fmt.Errorf("spectest: %s: %v", name, err)
	}
	for k, n := range c.pending {
		compiled[k] = n
	}
	return &Schema{root: root, name: name}, nil
}

// Response is [Load] for a test: it skips the test with a one-line message
// when there is no spec checkout, and fails it when the spec does not
// describe the response.
func Response(t testing.TB, file, method, path string, status int) *Schema {
	t.Helper()
	s, err := Load(file, method, path, status)
	if errors.Is(err, ErrNoSpec) {
		t.Skipf("%v; skipping validation against the spec", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Validate checks a JSON value, as encoding/json decodes into an any
// (map[string]any, []any, string, float64 or json.Number, bool, nil),
// and returns one message per violation, each starting with the JSON path
// of the offending value ("$.rooms.join[\"!r:x\"].timeline.events[0]").
// Other Go values are first converted with a JSON round trip.
func (s *Schema) Validate(body any) []string {
	if !isJSONValue(body) {
		raw, err := json.Marshal(body)
		if err != nil {
			return []string{"$: cannot encode the body as JSON: " + err.Error()}
		}
		return s.ValidateJSON(raw)
	}
	var errs []string
	s.root.validate(body, "$", &errs)
	return dedupe(errs)
}

// ValidateJSON is [Schema.Validate] for an encoded body. Numbers keep
// their exact text (json.Number), so large integers are judged exactly.
func (s *Schema) ValidateJSON(raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var body any
	if err := dec.Decode(&body); err != nil {
		return []string{"$: body is not JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return []string{"$: body has data after its JSON value"}
	}
	return s.Validate(body)
}

// Check reports each violation of [Schema.Validate] with t.Errorf.
func (s *Schema) Check(t testing.TB, body any) {
	t.Helper()
	for _, e := range s.Validate(body) {
		t.Errorf("%s: %s", s.name, e)
	}
}

// CheckJSON reports each violation of [Schema.ValidateJSON] with t.Errorf.
func (s *Schema) CheckJSON(t testing.TB, raw []byte) {
	t.Helper()
	for _, e := range s.ValidateJSON(raw) {
		t.Errorf("%s: %s", s.name, e)
	}
}

// isJSONValue reports whether v holds only the types encoding/json
// decodes into an any.
func isJSONValue(v any) bool {
	switch v := v.(type) {
	case nil, bool, string, float64, json.Number:
		return true
	case map[string]any:
		for _, e := range v {
			if !isJSONValue(e) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range v {
			if !isJSONValue(e) {
				return false
			}
		}
		return true
	}
	return false
}

func dedupe(errs []string) []string {
	seen := make(map[string]bool, len(errs))
	out := errs[:0]
	for _, e := range errs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
