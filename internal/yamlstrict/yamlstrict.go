// Package yamlstrict decodes a YAML node into a Go value strictly: a key the
// target has no field for is an error, and every error names the key's path
// and its line in the original file. yaml.v3 only offers KnownFields on a
// Decoder over text, which loses the lines of a node taken from a bigger file.
package yamlstrict

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem found while decoding.
type Error struct {
	Line int    // 1-based line in the file, 0 if unknown
	Path string // dotted key path, e.g. listeners[0].port
	Msg  string
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

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func check(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return nil // the type validates itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(yaml.Node{}) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return nil
			}
			return &Error{Line: n.Line, Path: path, Msg: "expected a mapping"}
		}
		fields := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
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
			return nil // a type error node.Decode will report with its line
		}
		for i, c := range n.Content {
			if err := check(c, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	}
	return nil
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
// `abc` into int") into Errors carrying the key path of that line.
func translate(err error, root *yaml.Node, prefix string) error {
	if e, ok := err.(*Error); ok {
		// From a type's own UnmarshalYAML: it knows the line, not the path.
		if e.Path == "" {
			e.Path = pathAtLine(root, e.Line, prefix)
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
	p := pathAtLine(root, line, prefix)
	return &Error{Line: line, Path: p, Msg: m}
}

// pathAtLine finds the deepest key path whose value starts on line.
func pathAtLine(n *yaml.Node, line int, path string) string {
	best := path
	var walk func(n *yaml.Node, p string)
	walk = func(n *yaml.Node, p string) {
		if n.Line == line {
			best = p
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], join(p, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, p+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	if line > 0 {
		walk(n, path)
	}
	return best
}
