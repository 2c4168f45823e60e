package spectest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

var (
	// mu guards the caches, which Load fills. Compiled nodes are
	// immutable once in compiled, so validation takes no lock.
	mu       sync.Mutex
	files    = map[string]yamlFile{} // by clean absolute path
	compiled = map[string]*node{}    // by loc.key()
)

type yamlFile struct {
	doc any
	err error
}

// loadFile parses a YAML file, once; mu is held.
func loadFile(path string) (any, error) {
	if f, ok := files[path]; ok {
		return f.doc, f.err
	}
	var doc any
	raw, err := os.ReadFile(path)
	if err == nil {
		err = yaml.Unmarshal(raw, &doc)
		if err != nil {
			err = fmt.Errorf("%s: %v", path, err)
		}
	}
	doc = normalize(doc)
	files[path] = yamlFile{doc, err}
	return doc, err
}

// normalize turns a YAML tree into the shapes encoding/json produces:
// string-keyed maps and float64 numbers.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalize(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = normalize(e)
		}
		return v
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	}
	return v
}

// loc is a place in a spec file: the file and a JSON pointer into it.
type loc struct {
	file string
	ptr  []string
}

func (l loc) child(keys ...string) loc {
	return loc{l.file, append(slices.Clip(l.ptr), keys...)}
}

// key identifies l across spec checkouts.
func (l loc) key() string {
	return l.file + loc{ptr: l.ptr}.String()
}

// String is the file relative to the spec's data directory, when it is
// inside it, and the pointer: "api/client-server/sync.yaml#/paths/~1sync".
func (l loc) String() string {
	f := l.file
	if i := strings.LastIndex(filepath.ToSlash(f), "/data/"); i >= 0 {
		f = filepath.ToSlash(f)[i+len("/data/"):]
	}
	var b strings.Builder
	b.WriteString(f)
	b.WriteString("#")
	for _, p := range l.ptr {
		b.WriteString("/")
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(p))
	}
	return b.String()
}

// value returns what is at l; mu is held.
func (l loc) value() (any, error) {
	v, err := loadFile(l.file)
	if err != nil {
		return nil, err
	}
	for i, p := range l.ptr {
		switch c := v.(type) {
		case map[string]any:
			e, ok := c[p]
			if !ok {
				return nil, fmt.Errorf("%s: no such key", loc{l.file, l.ptr[:i+1]})
			}
			v = e
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n >= len(c) {
				return nil, fmt.Errorf("%s: no such index", loc{l.file, l.ptr[:i+1]})
			}
			v = c[n]
		default:
			return nil, fmt.Errorf("%s: %s is not an object or array", loc{l.file, l.ptr[:i+1]}, loc{l.file, l.ptr[:i]})
		}
	}
	return v, nil
}

// resolve returns where a $ref found in file points.
func resolve(file, ref string) (loc, error) {
	path, frag, _ := strings.Cut(ref, "#")
	if strings.Contains(path, "://") {
		return loc{}, fmt.Errorf("remote $ref %q is not supported", ref)
	}
	target := loc{file: file}
	if path != "" {
		p, err := url.PathUnescape(path)
		if err != nil {
			return loc{}, fmt.Errorf("$ref %q: %v", ref, err)
		}
		target.file = filepath.Join(filepath.Dir(file), filepath.FromSlash(p))
	}
	if frag == "" {
		return target, nil
	}
	if frag[0] != '/' {
		return loc{}, fmt.Errorf("$ref %q: only JSON-pointer fragments are supported", ref)
	}
	for _, p := range strings.Split(frag[1:], "/") {
		p, err := url.PathUnescape(p)
		if err != nil {
			return loc{}, fmt.Errorf("$ref %q: %v", ref, err)
		}
		target.ptr = append(target.ptr, strings.NewReplacer("~1", "/", "~0", "~").Replace(p))
	}
	return target, nil
}

// derefObject follows $refs that replace an OpenAPI object (a path item,
// a response, ...); mu is held.
func derefObject(l loc) (loc, error) {
	for range 32 {
		v, err := l.value()
		if err != nil {
			return loc{}, err
		}
		m, _ := v.(map[string]any)
		ref, ok := m["$ref"].(string)
		if !ok {
			return l, nil
		}
		from := l
		if l, err = resolve(l.file, ref); err != nil {
			return loc{}, fmt.Errorf("%s: %v", from, err)
		}
	}
	return loc{}, fmt.Errorf("%s: $ref chain too long", l)
}

// node is a compiled schema.
type node struct {
	at loc

	always *bool // a boolean schema: true accepts anything, false nothing

	types    []string // "object", "integer", ...
	nullable bool

	ref                 *node
	allOf, anyOf, oneOf []*node
	not                 *node

	enum     []any
	hasConst bool
	constVal any

	properties    map[string]*node
	patternProps  []patternProp
	additional    *node
	required      []string
	minProperties int
	maxProperties int // -1: none

	items       *node
	minItems    int
	maxItems    int // -1: none
	uniqueItems bool

	pattern   *regexp.Regexp
	minLength int
	maxLength int // -1: none

	minimum, maximum *bound
	multipleOf       float64
}

type patternProp struct {
	re     *regexp.Regexp
	schema *node
}

type bound struct {
	n         float64
	exclusive bool
}

var jsonTypes = []string{"null", "boolean", "object", "array", "number", "integer", "string"}

// annotations are keywords that do not constrain values.
var annotations = map[string]bool{
	"description": true, "title": true, "example": true, "examples": true,
	"format": true, "default": true, "deprecated": true, "readOnly": true,
	"writeOnly": true, "externalDocs": true, "$schema": true, "$id": true,
	"$comment": true, "$defs": true, "definitions": true,
}

// compiler compiles schemas; mu is held. Nodes go to pending, keyed by
// location so recursive references terminate, and only reach the shared
// cache once the whole schema compiled.
type compiler struct {
	pending map[string]*node
}

func (c *compiler) compile(at loc) (*node, error) {
	key := at.key()
	if n, ok := compiled[key]; ok {
		return n, nil
	}
	if n, ok := c.pending[key]; ok {
		return n, nil
	}
	v, err := at.value()
	if err != nil {
		return nil, err
	}
	n := &node{at: at, maxProperties: -1, maxItems: -1, maxLength: -1}
	c.pending[key] = n
	if b, ok := v.(bool); ok {
		n.always = &b
		return n, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: a schema must be an object or a boolean, not %T", at, v)
	}
	bad := func(k string, why string) error {
		return fmt.Errorf("%s: %s %s", at.child(k), k, why)
	}
	var exclusiveMin, exclusiveMax bool // OpenAPI 3.0's boolean forms
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "$ref":
			ref, ok := v.(string)
			if !ok {
				return nil, bad(k, "is not a string")
			}
			target, err := resolve(at.file, ref)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", at, err)
			}
			if n.ref, err = c.compile(target); err != nil {
				return nil, err
			}
		case "type":
			switch t := v.(type) {
			case string:
				n.types = []string{t}
			case []any:
				for _, e := range t {
					s, _ := e.(string)
					n.types = append(n.types, s)
				}
			}
			if len(n.types) == 0 {
				return nil, bad(k, "is neither a type name nor a list of them")
			}
			for _, t := range n.types {
				if !slices.Contains(jsonTypes, t) {
					return nil, bad(k, fmt.Sprintf("has an unknown type %q", t))
				}
			}
		case "nullable":
			if n.nullable, ok = v.(bool); !ok {
				return nil, bad(k, "is not a boolean")
			}
		case "allOf", "anyOf", "oneOf":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return nil, bad(k, "is not a non-empty list")
			}
			var subs []*node
			for i := range list {
				s, err := c.compile(at.child(k, strconv.Itoa(i)))
				if err != nil {
					return nil, err
				}
				subs = append(subs, s)
			}
			switch k {
			case "allOf":
				n.allOf = subs
			case "anyOf":
				n.anyOf = subs
			default:
				n.oneOf = subs
			}
		case "not":
			if n.not, err = c.compile(at.child(k)); err != nil {
				return nil, err
			}
		case "enum":
			if n.enum, ok = v.([]any); !ok {
				return nil, bad(k, "is not a list")
			}
		case "const":
			n.hasConst, n.constVal = true, v
		case "properties":
			props, ok := v.(map[string]any)
			if !ok {
				return nil, bad(k, "is not an object")
			}
			n.properties = make(map[string]*node, len(props))
			for p := range props {
				if n.properties[p], err = c.compile(at.child(k, p)); err != nil {
					return nil, err
				}
			}
		case "patternProperties":
			props, ok := v.(map[string]any)
			if !ok {
				return nil, bad(k, "is not an object")
			}
			for _, p := range sortedKeys(props) {
				re, err := regexp.Compile(p)
				if err != nil {
					return nil, bad(k, fmt.Sprintf("has a pattern Go cannot compile: %v", err))
				}
				s, err := c.compile(at.child(k, p))
				if err != nil {
					return nil, err
				}
				n.patternProps = append(n.patternProps, patternProp{re, s})
			}
		case "additionalProperties":
			if n.additional, err = c.compile(at.child(k)); err != nil {
				return nil, err
			}
		case "required":
			list, ok := v.([]any)
			if !ok {
				return nil, bad(k, "is not a list")
			}
			for _, e := range list {
				s, ok := e.(string)
				if !ok {
					return nil, bad(k, "has a non-string entry")
				}
				n.required = append(n.required, s)
			}
		case "items":
			if _, isList := v.([]any); isList {
				return nil, bad(k, "is a list (tuple validation is not supported)")
			}
			if n.items, err = c.compile(at.child(k)); err != nil {
				return nil, err
			}
		case "uniqueItems":
			if n.uniqueItems, ok = v.(bool); !ok {
				return nil, bad(k, "is not a boolean")
			}
		case "minProperties", "maxProperties", "minItems", "maxItems", "minLength", "maxLength":
			f, ok := v.(float64)
			if !ok || f < 0 || f != math.Trunc(f) {
				return nil, bad(k, "is not a non-negative integer")
			}
			switch k {
			case "minProperties":
				n.minProperties = int(f)
			case "maxProperties":
				n.maxProperties = int(f)
			case "minItems":
				n.minItems = int(f)
			case "maxItems":
				n.maxItems = int(f)
			case "minLength":
				n.minLength = int(f)
			default:
				n.maxLength = int(f)
			}
		case "pattern":
			s, ok := v.(string)
			if !ok {
				return nil, bad(k, "is not a string")
			}
			if n.pattern, err = regexp.Compile(s); err != nil {
				return nil, bad(k, fmt.Sprintf("is a pattern Go cannot compile: %v", err))
			}
		case "minimum", "maximum":
			f, ok := v.(float64)
			if !ok {
				return nil, bad(k, "is not a number")
			}
			if k == "minimum" {
				n.minimum = &bound{n: f}
			} else {
				n.maximum = &bound{n: f}
			}
		case "exclusiveMinimum", "exclusiveMaximum":
			switch e := v.(type) {
			case bool:
				if k == "exclusiveMinimum" {
					exclusiveMin = e
				} else {
					exclusiveMax = e
				}
			case float64:
				b := &bound{n: e, exclusive: true}
				if k == "exclusiveMinimum" {
					n.minimum = tighter(n.minimum, b, true)
				} else {
					n.maximum = tighter(n.maximum, b, false)
				}
			default:
				return nil, bad(k, "is neither a number nor a boolean")
			}
		case "multipleOf":
			if n.multipleOf, ok = v.(float64); !ok || n.multipleOf <= 0 {
				return nil, bad(k, "is not a positive number")
			}
		default:
			if !annotations[k] && !strings.HasPrefix(k, "x-") {
				return nil, fmt.Errorf("%s: unsupported schema keyword %q", at, k)
			}
		}
	}
	if exclusiveMin && n.minimum != nil {
		n.minimum.exclusive = true
	}
	if exclusiveMax && n.maximum != nil {
		n.maximum.exclusive = true
	}
	return n, nil
}

// tighter returns the stricter of two lower (or upper) bounds.
func tighter(a, b *bound, lower bool) *bound {
	if a == nil {
		return b
	}
	if a.n == b.n {
		return &bound{a.n, a.exclusive || b.exclusive}
	}
	if (a.n > b.n) == lower {
		return a
	}
	return b
}

// validate appends to errs a message for each way v breaks n; at is v's
// JSON path.
func (n *node) validate(v any, at string, errs *[]string) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, at+": "+fmt.Sprintf(format, args...))
	}
	if n.always != nil {
		if !*n.always {
			fail("%s is not allowed here", describe(v))
		}
		return
	}
	if v == nil && n.nullable {
		return
	}
	if len(n.types) > 0 && !slices.ContainsFunc(n.types, func(t string) bool { return hasType(v, t) }) {
		fail("got %s, want %s", describe(v), strings.Join(n.types, " or "))
		return // the rest would be noise
	}
	if n.ref != nil {
		n.ref.validate(v, at, errs)
	}
	if n.enum != nil && !slices.ContainsFunc(n.enum, func(e any) bool { return jsonEqual(v, e) }) {
		var want []string
		for _, e := range n.enum {
			want = append(want, describe(e))
		}
		fail("got %s, want one of %s", describe(v), strings.Join(want, ", "))
	}
	if n.hasConst && !jsonEqual(v, n.constVal) {
		fail("got %s, want %s", describe(v), describe(n.constVal))
	}
	for _, s := range n.allOf {
		s.validate(v, at, errs)
	}
	if n.anyOf != nil {
		if _, failures := matches(n.anyOf, v, at); len(failures) == len(n.anyOf) {
			fail("matches no anyOf branch: %s", strings.Join(failures, "; "))
		}
	}
	if n.oneOf != nil {
		matched, failures := matches(n.oneOf, v, at)
		switch {
		case len(matched) == 0:
			fail("matches no oneOf branch: %s", strings.Join(failures, "; "))
		case len(matched) > 1:
			fail("matches oneOf branches %v, want exactly one", matched)
		}
	}
	if n.not != nil {
		var sub []string
		if n.not.validate(v, at, &sub); len(sub) == 0 {
			fail("matches a schema it must not (%s)", n.not.at)
		}
	}
	switch v := v.(type) {
	case string:
		if n.pattern != nil && !n.pattern.MatchString(v) {
			fail("%s does not match pattern %q", describe(v), n.pattern)
		}
		if l := utf8.RuneCountInString(v); l < n.minLength || (n.maxLength >= 0 && l > n.maxLength) {
			fail("%s has %d characters, want %s", describe(v), l, span(n.minLength, n.maxLength))
		}
	case float64, json.Number:
		f, _ := number(v)
		if b := n.minimum; b != nil && (f < b.n || (b.exclusive && f == b.n)) {
			fail("%s is below the minimum %s%s", describe(v), formatNumber(b.n), exclusive(b))
		}
		if b := n.maximum; b != nil && (f > b.n || (b.exclusive && f == b.n)) {
			fail("%s is above the maximum %s%s", describe(v), formatNumber(b.n), exclusive(b))
		}
		if n.multipleOf > 0 {
			if q := f / n.multipleOf; q != math.Trunc(q) {
				fail("%s is not a multiple of %s", describe(v), formatNumber(n.multipleOf))
			}
		}
	case map[string]any:
		n.validateObject(v, at, errs)
		if len(v) < n.minProperties || (n.maxProperties >= 0 && len(v) > n.maxProperties) {
			fail("object has %d properties, want %s", len(v), span(n.minProperties, n.maxProperties))
		}
	case []any:
		if n.items != nil {
			for i, e := range v {
				n.items.validate(e, fmt.Sprintf("%s[%d]", at, i), errs)
			}
		}
		if len(v) < n.minItems || (n.maxItems >= 0 && len(v) > n.maxItems) {
			fail("array has %d items, want %s", len(v), span(n.minItems, n.maxItems))
		}
		if n.uniqueItems {
			for i := range v {
				for j := i + 1; j < len(v); j++ {
					if jsonEqual(v[i], v[j]) {
						fail("items %d and %d are equal, want unique items", i, j)
					}
				}
			}
		}
	}
}

func (n *node) validateObject(obj map[string]any, at string, errs *[]string) {
	for _, k := range n.required {
		if _, ok := obj[k]; !ok {
			*errs = append(*errs, fmt.Sprintf("%s: missing required property %q", at, k))
		}
	}
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		kat := at + pathKey(k)
		matched := false
		if s, ok := n.properties[k]; ok {
			matched = true
			s.validate(v, kat, errs)
		}
		for _, pp := range n.patternProps {
			if pp.re.MatchString(k) {
				matched = true
				pp.schema.validate(v, kat, errs)
			}
		}
		if matched || n.additional == nil {
			continue
		}
		if a := n.additional.always; a != nil && !*a {
			*errs = append(*errs, fmt.Sprintf("%s: unexpected property %q", at, k))
			continue
		}
		n.additional.validate(v, kat, errs)
	}
}

// matches returns which of schemas v satisfies and, for the others, the
// first violation of each.
func matches(schemas []*node, v any, at string) (matched []int, failures []string) {
	for i, s := range schemas {
		var sub []string
		if s.validate(v, at, &sub); len(sub) == 0 {
			matched = append(matched, i)
		} else {
			more := ""
			if len(sub) > 1 {
				more = fmt.Sprintf(" (and %d more)", len(sub)-1)
			}
			failures = append(failures, fmt.Sprintf("branch %d: %s%s", i, sub[0], more))
		}
	}
	return matched, failures
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pathKey is how a property name extends a JSON path.
func pathKey(k string) string {
	if identifier.MatchString(k) {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

func hasType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "number":
		_, ok := number(v)
		return ok
	case "integer":
		return isInteger(v)
	}
	return false
}

// number returns the value of a JSON number.
func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case json.Number:
		f, err := v.Float64()
		// A range error is a valid JSON number too large for a float64,
		// which then holds ±Inf.
		return f, err == nil || errors.Is(err, strconv.ErrRange)
	}
	return 0, false
}

func isInteger(v any) bool {
	if n, ok := v.(json.Number); ok {
		if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return true
		}
	}
	f, ok := number(v)
	return ok && !math.IsInf(f, 0) && f == math.Trunc(f)
}

// jsonEqual compares JSON values, numbers by value.
func jsonEqual(a, b any) bool {
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, e := range a {
			f, ok := b[k]
			if !ok || !jsonEqual(e, f) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, jsonEqual)
	}
	return a == b
}

// describe renders a value for a message: its type, and scalars in full
// (long strings cut short).
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case string:
		if utf8.RuneCountInString(v) > 60 {
			v = string([]rune(v)[:57]) + "..."
		}
		return "string " + strconv.Quote(v)
	case float64, json.Number:
		kind := "number"
		if isInteger(v) {
			kind = "integer"
		}
		return kind + " " + formatNumber(v)
	case map[string]any:
		return fmt.Sprintf("object with %d properties", len(v))
	case []any:
		return fmt.Sprintf("array of %d items", len(v))
	}
	return fmt.Sprintf("%T %v", v, v)
}

// formatNumber writes integers in full rather than in exponent form.
func formatNumber(v any) string {
	if n, ok := v.(json.Number); ok {
		return string(n)
	}
	f, _ := number(v)
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func span(lo, hi int) string {
	switch {
	case hi < 0:
		return fmt.Sprintf("at least %d", lo)
	case lo == 0:
		return fmt.Sprintf("at most %d", hi)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

func exclusive(b *bound) string {
	if b.exclusive {
		return " (exclusive)"
	}
	return ""
}
