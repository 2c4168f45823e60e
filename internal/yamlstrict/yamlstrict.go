// Package yamlstrict decodes a YAML node into a Go value strictly: a key the
// target has no field for is an error, and every error names the key's path
// and its line in the original file. yaml.v3 only offers KnownFields on a
// Decoder over text, which loses the lines of a node taken from a bigger file.
package yamlstrict

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is one problem found while decoding.
type Error struct {
	Line int    // 1-based line in the file, 0 if unknown
	Path string // dotted key path, e.g. listeners[0].port
	Msg  string
	// Column is the 1-based column of the offending value, 0 if unknown. A
	// type's UnmarshalYAML that sets it (with Line) gets the exact key path
	// even when the line holds several values, as in a flow mapping.
	Column int
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		fmt.Fprintf(&b, "%s: ", e.Path)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Decode checks node against the type of v (a non-nil pointer) for unknown
// keys, then decodes it. prefix is prepended to every reported path.
func Decode(node *yaml.Node, v any, prefix string) error {
	if node == nil {
		return nil
	}
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	rt := reflect.TypeOf(v)
	if rt == nil || rt.Kind() != reflect.Pointer {
		return &Error{Msg: "yamlstrict: Decode needs a pointer"}
	}
	if err := check(node, rt.Elem(), prefix); err != nil {
		return err
	}
	if err := node.Decode(v); err != nil {
		return translate(err, node, prefix)
	}
	return nil
}

var (
	unmarshalerType     = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	durationType        = reflect.TypeOf(time.Duration(0))
)

func check(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	pointer := false
	for t.Kind() == reflect.Pointer {
		t, pointer = t.Elem(), true
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return nil // the type validates itself
	}
	null := n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag
	if pointer && null {
		return nil // a nil pointer
	}
	if n.Kind == yaml.ScalarNode && (reflect.PointerTo(t).Implements(textUnmarshalerType) || t.Implements(textUnmarshalerType)) {
		return nil // yaml.v3 hands any scalar to UnmarshalText, which validates it
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(yaml.Node{}) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			if null {
				return nil
			}
			return mismatch(n, path, "a mapping")
		}
		fields := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				// `<<: *base` (or a list of them): the merged keys belong to
				// this mapping, so they are checked against the same type.
				if err := checkMerge(val, t, path); err != nil {
					return err
				}
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				return &Error{Line: k.Line, Path: join(path, k.Value), Msg: "unknown key"}
			}
			if err := check(val, ft, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			if null {
				return nil // an empty list, as yaml.v3 decodes it
			}
			return mismatch(n, path, "a list")
		}
		for i, c := range n.Content {
			if err := check(c, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if null {
				return nil
			}
			return mismatch(n, path, "a mapping")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.String:
		switch n.ShortTag() {
		case strTag, binaryTag:
			return nil
		}
		return mismatch(n, path, "a string")
	case reflect.Bool:
		if tag := n.ShortTag(); tag == boolTag || tag == strTag && plain(n) && yaml11Bools[n.Value] {
			// Plain yes/no/on/off are booleans in YAML 1.1, as Synapse's
			// PyYAML reads them; quoted, they are strings in any YAML.
			return nil
		}
		return mismatch(n, path, "true or false")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if t == durationType {
			return nil // yaml.v3 takes a time.ParseDuration string and reports the rest
		}
		switch n.ShortTag() {
		case intTag:
			return nil // overflow is yaml.v3's to report
		case floatTag:
			// yaml.v3 silently truncates a float into an integer (port: 8008.5
			// becomes 8008); a strict decoder refuses a fractional number.
			var f float64
			if err := n.Decode(&f); err == nil && (math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f)) {
				return &Error{Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf("expected an integer, got %s", n.Value)}
			}
			return nil
		}
		return mismatch(n, path, "an integer")
	case reflect.Float32, reflect.Float64:
		switch n.ShortTag() {
		case intTag, floatTag:
			return nil
		}
		return mismatch(n, path, "a number")
	}
	return nil
}

const (
	strTag    = "!!str"
	binaryTag = "!!binary"
	boolTag   = "!!bool"
	intTag    = "!!int"
	floatTag  = "!!float"
	nullTag   = "!!null"
)

// yaml11Bools are the plain scalars YAML 1.1 (PyYAML, so Synapse) reads as
// booleans beyond true and false. yaml.v3 also takes y and n into a bool;
// PyYAML reads those as strings, so they are refused.
var yaml11Bools = map[string]bool{
	"yes": true, "Yes": true, "YES": true, "no": true, "No": true, "NO": true,
	"on": true, "On": true, "ON": true, "off": true, "Off": true, "OFF": true,
}

// plain reports whether n is a plain scalar: not quoted, not a block
// scalar, without an explicit tag. Its type is what YAML resolves it to.
func plain(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode &&
		n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
}

// mismatch is the error for a node whose YAML type does not fit the target:
// "expected a string, got an integer (5); quote it".
func mismatch(n *yaml.Node, path, want string) *Error {
	msg := "expected " + want + ", got " + describe(n)
	if want == "a string" && plain(n) {
		switch n.ShortTag() {
		case intTag, floatTag, boolTag, nullTag, "!!timestamp":
			msg += "; quote it"
		}
	}
	return &Error{Line: n.Line, Column: n.Column, Path: path, Msg: msg}
}

// describe names the YAML type of a node, with the value of a scalar.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	value := n.Value
	if len(value) > 40 {
		value = value[:37] + "..."
	}
	switch tag := n.ShortTag(); tag {
	case nullTag:
		if n.Value == "" {
			return "an empty value"
		}
		return "null (" + value + ")"
	case strTag:
		return "a string (" + strconv.Quote(value) + ")"
	case intTag:
		return "an integer (" + value + ")"
	case floatTag:
		return "a float (" + value + ")"
	case boolTag:
		return "a boolean (" + value + ")"
	case "!!timestamp":
		return "a timestamp (" + value + ")"
	case binaryTag:
		return "binary data"
	default:
		return tag + " (" + value + ")"
	}
}

func checkMerge(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.SequenceNode {
		for _, c := range n.Content {
			if err := checkMerge(c, t, path); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return nil // yaml.v3 reports a bad merge itself
	}
	return check(n, t, path)
}

// structFields maps YAML keys to field types, following yaml.v3's tag rules
// (lower-cased field name by default, ",inline" flattening, "-" skipped).
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// translate turns yaml.v3's type errors ("line 3: cannot unmarshal !!str
// `abc` into int") into Errors carrying the key path of that value.
func translate(err error, root *yaml.Node, prefix string) error {
	if e, ok := err.(*Error); ok {
		// From a type's own UnmarshalYAML: it knows the line (and maybe the
		// column), not the path.
		if e.Path == "" {
			e.Path = pathAt(root, e.Line, e.Column, nil, prefix)
		}
		return e
	}
	te, ok := err.(*yaml.TypeError)
	if !ok || len(te.Errors) == 0 {
		return &Error{Path: prefix, Msg: err.Error()}
	}
	m := te.Errors[0]
	var line int
	if n, _ := fmt.Sscanf(m, "line %d:", &line); n == 1 {
		if i := strings.Index(m, ":"); i >= 0 {
			m = strings.TrimSpace(m[i+1:])
		}
	}
	p := pathAt(root, line, 0, quotedNode(m), prefix)
	return &Error{Line: line, Path: p, Msg: m}
}

// quotedNode returns a test for the node a yaml.v3 type error quotes
// ("cannot unmarshal !!str `abc` into int": its tag and its value, cut to
// seven bytes and "..." when longer than ten), or nil for other messages.
func quotedNode(msg string) func(*yaml.Node) bool {
	rest, ok := strings.CutPrefix(msg, "cannot unmarshal ")
	if !ok {
		return nil
	}
	tag, rest, _ := strings.Cut(rest, " ")
	if !strings.HasPrefix(tag, "!!") {
		return nil
	}
	if tag == "!!seq" || tag == "!!map" {
		return func(n *yaml.Node) bool { return n.ShortTag() == tag }
	}
	value, ok := strings.CutPrefix(rest, "`")
	if !ok {
		return nil
	}
	end := strings.LastIndex(value, "` into ")
	if end < 0 {
		return nil
	}
	value = value[:end]
	cut, truncated := strings.CutSuffix(value, "...")
	return func(n *yaml.Node) bool {
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tag {
			return false
		}
		if truncated && len(n.Value) > 10 {
			return strings.HasPrefix(n.Value, cut)
		}
		return n.Value == value
	}
}

// pathAt finds the key path of the value an error is about. yaml.v3 only
// says the line, and a line can hold several values (`- port: [1, 2]`, a
// flow mapping): the value at column, when known, wins; then the deepest
// value on the line that match accepts (the first of equals); then the
// deepest, last value on the line.
func pathAt(n *yaml.Node, line, column int, match func(*yaml.Node) bool, path string) string {
	if line <= 0 {
		return path
	}
	best, exact, matched := path, "", ""
	hasExact, matchDepth := false, -1
	var walk func(n *yaml.Node, p string, depth int)
	walk = func(n *yaml.Node, p string, depth int) {
		if n.Line == line {
			best = p
			if column > 0 && n.Column == column {
				exact, hasExact = p, true
			}
			if match != nil && depth > matchDepth && match(n) {
				matched, matchDepth = p, depth
			}
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], join(p, n.Content[i].Value), depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, p+"["+strconv.Itoa(i)+"]", depth+1)
			}
		}
	}
	walk(n, path, 0)
	switch {
	case hasExact:
		return exact
	case matchDepth >= 0:
		return matched
	}
	return best
}
