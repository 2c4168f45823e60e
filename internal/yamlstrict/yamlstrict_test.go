package yamlstrict_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/yamlstrict"
	"gopkg.in/yaml.v3"
)

// level validates itself: it is an Unmarshaler reporting its own errors as
// *yamlstrict.Error with the line and column, as config.Duration does.
type level int

func (l *level) UnmarshalYAML(n *yaml.Node) error {
	switch n.Value {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return &yamlstrict.Error{Line: n.Line, Column: n.Column, Msg: fmt.Sprintf("unknown level %q", n.Value)}
	}
	return nil
}

// lineOnly is an Unmarshaler that knows the line but not the column.
type lineOnly string

func (l *lineOnly) UnmarshalYAML(n *yaml.Node) error {
	if n.Value == "bad" {
		return &yamlstrict.Error{Line: n.Line, Msg: "bad value"}
	}
	*l = lineOnly(n.Value)
	return nil
}

// plainErr is an Unmarshaler returning an ordinary error.
type plainErr struct{}

func (*plainErr) UnmarshalYAML(n *yaml.Node) error {
	if n.Value == "fail" {
		return errors.New("plain failure")
	}
	return nil
}

// free is an Unmarshaler over a mapping: its keys are its own business.
type free struct{ keys []string }

func (f *free) UnmarshalYAML(n *yaml.Node) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		f.keys = append(f.keys, n.Content[i].Value)
	}
	return nil
}

type inner struct {
	A int      `yaml:"a"`
	B []string `yaml:"b"`
}

type Embedded struct {
	E string `yaml:"e"`
}

type Other struct {
	O string `yaml:"o"`
}

type target struct {
	Name      string           `yaml:"name"`
	Inner     inner            `yaml:"inner"`
	Ptr       *inner           `yaml:"ptr"`
	List      []inner          `yaml:"list"`
	PtrList   []*inner         `yaml:"ptr_list"`
	Arr       [2]inner         `yaml:"arr"`
	Map       map[string]inner `yaml:"map"`
	Nested    map[string][]inner
	Labels    map[string]string `yaml:"labels"`
	Ints      []int             `yaml:"ints"`
	Port      int               `yaml:"port"`
	Small     uint8             `yaml:"small"`
	Ratio     float64           `yaml:"ratio"`
	Flag      bool              `yaml:"flag"`
	Wait      time.Duration     `yaml:"wait"`
	Level     level             `yaml:"level"`
	Levels    []level           `yaml:"levels"`
	LineOnly  lineOnly          `yaml:"line_only"`
	Plain     plainErr          `yaml:"plain"`
	Free      free              `yaml:"free"`
	Any       any               `yaml:"any"`
	Node      yaml.Node         `yaml:"node"`
	Skipped   string            `yaml:"-"`
	Untagged  string            // key "untagged", yaml.v3's default
	Embedded  `yaml:",inline"`
	*Other    `yaml:",inline"`
	unexposed string
}

func parse(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		t.Fatalf("test YAML does not parse: %v\n%s", err, text)
	}
	return &n
}

func TestDecodeValid(t *testing.T) {
	text := `name: n
inner: {a: 1, b: [x, y]}
ptr: {a: 2}
list:
  - a: 3
  - {a: 4, b: [z]}
ptr_list: [{a: 5}]
arr: [{a: 6}, {a: 7}]
map:
  k1: {a: 8}
nested:
  k2: [{a: 9}]
ints: [1, 2, 3]
port: 8008
small: 255
ratio: 0.5
flag: true
wait: 1m30s
level: high
levels: [low, high]
line_only: fine
plain: ok
free: {anything: 1, goes: 2}
any: {whatever: [1, 2], deep: {x: y}}
node: {kept: as is}
untagged: u
e: inline
o: inline pointer
`
	var got target
	if err := yamlstrict.Decode(parse(t, text), &got, ""); err != nil {
		t.Fatal(err)
	}
	want := target{
		Name:     "n",
		Inner:    inner{A: 1, B: []string{"x", "y"}},
		Ptr:      &inner{A: 2},
		List:     []inner{{A: 3}, {A: 4, B: []string{"z"}}},
		PtrList:  []*inner{{A: 5}},
		Arr:      [2]inner{{A: 6}, {A: 7}},
		Map:      map[string]inner{"k1": {A: 8}},
		Nested:   map[string][]inner{"k2": {{A: 9}}},
		Ints:     []int{1, 2, 3},
		Port:     8008,
		Small:    255,
		Ratio:    0.5,
		Flag:     true,
		Wait:     90 * time.Second,
		Level:    2,
		Levels:   []level{1, 2},
		LineOnly: "fine",
		Free:     free{keys: []string{"anything", "goes"}},
		Any:      map[string]any{"whatever": []any{1, 2}, "deep": map[string]any{"x": "y"}},
		Untagged: "u",
		Embedded: Embedded{E: "inline"},
		Other:    &Other{O: "inline pointer"},
	}
	node := got.Node
	got.Node = yaml.Node{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if node.Kind != yaml.MappingNode || len(node.Content) != 2 || node.Content[1].Value != "as is" || node.Line != 25 {
		t.Errorf("yaml.Node field: kind %v, line %d, content %d", node.Kind, node.Line, len(node.Content))
	}
}

func TestDecodeNullAndEmpty(t *testing.T) {
	var got target
	if err := yamlstrict.Decode(nil, &got, ""); err != nil {
		t.Errorf("nil node: %v", err)
	}
	if err := yamlstrict.Decode(parse(t, "null\n"), &got, ""); err != nil {
		t.Errorf("null document: %v", err)
	}
	if err := yamlstrict.Decode(parse(t, "inner: ~\nptr: null\nlist: []\n"), &got, ""); err != nil {
		t.Errorf("null values: %v", err)
	}
	if got.Ptr != nil || len(got.List) != 0 {
		t.Errorf("null values decoded to %+v", got)
	}
}

func TestDecodeNeedsPointer(t *testing.T) {
	for _, v := range []any{target{}, nil, 5} {
		err := yamlstrict.Decode(parse(t, "name: x\n"), v, "")
		if err == nil || !strings.Contains(err.Error(), "pointer") {
			t.Errorf("Decode(%T): %v, want an error asking for a pointer", v, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		prefix string
		path   string
		line   int
		msg    string // substring of Msg
	}{
		{"unknown top-level key", "name: x\nnmae: y\n", "", "nmae", 2, "unknown key"},
		{"unknown key in a struct", "inner:\n  a: 1\n  c: 2\n", "", "inner.c", 3, "unknown key"},
		{"unknown key in a flow struct", "inner: {a: 1, zz: 2}\n", "", "inner.zz", 1, "unknown key"},
		{"unknown key behind a pointer", "ptr:\n  zz: 1\n", "", "ptr.zz", 2, "unknown key"},
		{"unknown key in a slice of structs", "list:\n  - a: 1\n  - a: 2\n    bb: [x]\n", "", "list[1].bb", 4, "unknown key"},
		{"unknown key in a slice of pointers", "ptr_list:\n  - {a: 1}\n  - {q: 1}\n", "", "ptr_list[1].q", 3, "unknown key"},
		{"unknown key in an array", "arr:\n  - {a: 1}\n  - {q: 1}\n", "", "arr[1].q", 3, "unknown key"},
		{"unknown key in a map value", "map:\n  first:\n    a: 1\n  second:\n    zz: 1\n", "", "map.second.zz", 5, "unknown key"},
		{"unknown key in a map of slices", "nested:\n  k:\n    - a: 1\n    - zz: 1\n", "", "nested.k[1].zz", 4, "unknown key"},
		{"skipped field is unknown", "skipped: x\n", "", "skipped", 1, "unknown key"},
		{"unexported field is unknown", "unexposed: x\n", "", "unexposed", 1, "unknown key"},
		{"inline struct's keys only", "e: x\nE: y\n", "", "E", 2, "unknown key"},
		{"prefix", "inner:\n  zz: 1\n", "modules[0].config", "modules[0].config.inner.zz", 2, "unknown key"},
		{"through an alias", "any: &x {a: 1, zz: 2}\ninner: *x\n", "", "inner.zz", 1, "unknown key"},
		{"through a merge key", "any: &x {zz: 2}\ninner:\n  a: 1\n  <<: *x\n", "", "inner.zz", 1, "unknown key"},
		{"through a list of merge keys", "any: [&x {a: 1}, &y {zz: 2}]\ninner:\n  <<: [*x, *y]\n", "", "inner.zz", 1, "unknown key"},
		{"struct given a scalar", "inner: 5\n", "", "inner", 1, "expected a mapping"},
		{"struct given a list", "list:\n  - [1]\n", "", "list[0]", 2, "expected a mapping"},
		{"document is not a mapping", "- a\n- b\n", "", "", 1, "expected a mapping"},

		{"string into int", "name: x\nport: abc\n", "", "port", 2, `expected an integer, got a string ("abc")`},
		{"quoted number into int", "port: \"8008\"\n", "", "port", 1, `expected an integer, got a string ("8008")`},
		{"list into int", "port: [1, 2]\n", "", "port", 1, "expected an integer, got a list"},
		{"list into int in a list item", "list:\n  - a: [1, 2]\n", "", "list[0].a", 2, "got a list"},
		{"mapping into list", "ints: {a: 1}\n", "", "ints", 1, "expected a list, got a mapping"},
		{"scalar into list", "ints: 5\n", "", "ints", 1, "expected a list, got an integer (5)"},
		{"bad element of a flow list", "ints: [1, x, 3]\n", "", "ints[1]", 1, `got a string ("x")`},
		{"bad field in a flow mapping", "list: [{a: 1}, {b: [y], a: x}]\n", "", "list[1].a", 1, `got a string ("x")`},
		// Overflow is the type error left to yaml.v3: its message says the
		// line only, and the value (cut when long) tells which one it is.
		{"overflow in a flow mapping, truncated in yaml's message", "inner: {a: 100000000000000000000, b: [abcdefghijklmnop]}\n", "", "inner.a", 1, "`1000000...`"},
		{"overflow in a flow list", "ints: [1, 100000000000000000000, 3]\n", "", "ints[1]", 1, "into int"},
		{"value in a map", "map:\n  k:\n    a: nope\n", "", "map.k.a", 3, "nope"},
		{"overflow", "small: 256\n", "", "small", 1, "into uint8"},
		{"negative into unsigned", "small: -1\n", "", "small", 1, "into uint8"},
		{"fraction into int", "name: x\nport: 8008.5\n", "", "port", 2, "expected an integer, got 8008.5"},
		{"fraction into unsigned", "small: 1.5\n", "", "small", 1, "expected an integer"},
		{"infinity into int", "port: .inf\n", "", "port", 1, "expected an integer"},
		{"fraction in a list of ints", "ints: [1, 2.5]\n", "", "ints[1]", 1, "expected an integer"},
		{"bad bool", "flag: maybe\n", "", "flag", 1, `expected true or false, got a string ("maybe")`},
		{"bad time.Duration", "wait: soon\n", "", "wait", 1, "into time.Duration"},
		{"duplicate key", "name: a\nport: 1\nname: b\n", "", "name", 3, "already defined at line 1"},

		// The YAML type of a scalar must fit the target's kind.
		{"integer into string", "name: 5\n", "", "name", 1, "expected a string, got an integer (5); quote it"},
		{"float into string", "name: 0.5\n", "", "name", 1, "expected a string, got a float (0.5); quote it"},
		{"boolean into string", "name: true\n", "", "name", 1, "expected a string, got a boolean (true); quote it"},
		{"null into string", "name: ~\n", "", "name", 1, "expected a string, got null (~); quote it"},
		{"empty value into string", "port: 1\nname:\n", "", "name", 2, "expected a string, got an empty value"},
		{"timestamp into string", "name: 2001-12-14\n", "", "name", 1, "got a timestamp (2001-12-14); quote it"},
		{"explicit !!int into string", "name: !!int 5\n", "", "name", 1, "expected a string, got an integer (5)"},
		{"mapping into string", "name: {a: 1}\n", "", "name", 1, "expected a string, got a mapping"},
		{"integer in a list of strings", "inner:\n  b: [x, 5]\n", "", "inner.b[1]", 2, "quote it"},
		{"integer in a map of strings", "labels: {a: x, b: 2}\n", "", "labels.b", 1, "expected a string, got an integer (2)"},
		{"quoted yes into bool", "flag: \"yes\"\n", "", "flag", 1, `expected true or false, got a string ("yes")`},
		{"quoted true into bool", "flag: 'true'\n", "", "flag", 1, `got a string ("true")`},
		{"y into bool", "flag: y\n", "", "flag", 1, `got a string ("y")`},
		{"integer into bool", "flag: 1\n", "", "flag", 1, "expected true or false, got an integer (1)"},
		{"null into bool", "flag: null\n", "", "flag", 1, "expected true or false, got null (null)"},
		{"boolean into int", "port: true\n", "", "port", 1, "expected an integer, got a boolean (true)"},
		{"null into int", "port:\n", "", "port", 1, "expected an integer, got an empty value"},
		{"string into unsigned", "small: '1'\n", "", "small", 1, `expected an integer, got a string ("1")`},
		{"string into float", "ratio: '0.5'\n", "", "ratio", 1, `expected a number, got a string ("0.5")`},
		{"boolean into float", "ratio: on\n", "", "ratio", 1, `expected a number, got a string ("on")`},
		{"null into float", "ratio: ~\n", "", "ratio", 1, "expected a number, got null"},

		// A collection of the wrong shape.
		{"mapping into array", "arr: {a: 1}\n", "", "arr", 1, "expected a list, got a mapping"},
		{"list into map", "map: [a]\n", "", "map", 1, "expected a mapping, got a list"},
		{"scalar into map", "name: x\nlabels: x\n", "", "labels", 2, `expected a mapping, got a string ("x")`},
		{"scalar into a map of slices", "nested:\n  k: 5\n", "", "nested.k", 2, "expected a list, got an integer (5)"},
		{"list into struct", "inner: [1]\n", "", "inner", 1, "expected a mapping, got a list"},
		{"scalar into struct through a pointer", "ptr: x\n", "", "ptr", 1, "expected a mapping"},
		{"the value of an alias", "any: &x {a: 1}\nints: *x\n", "", "ints", 1, "expected a list, got a mapping"},

		{"Unmarshaler error", "name: x\nlevel: medium\n", "", "level", 2, `unknown level "medium"`},
		{"Unmarshaler error in a flow mapping", "list: [{a: 1}]\nlevels: [low, medium, high]\n", "", "levels[1]", 2, `"medium"`},
		{"Unmarshaler error with a prefix", "level: x\n", "p", "p.level", 1, "unknown level"},
		{"Unmarshaler error without a column", "name: a\nline_only: bad\n", "", "line_only", 2, "bad value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got target
			err := yamlstrict.Decode(parse(t, tt.text), &got, tt.prefix)
			var ye *yamlstrict.Error
			if !errors.As(err, &ye) {
				t.Fatalf("error %v (%T), want a *yamlstrict.Error", err, err)
			}
			if ye.Path != tt.path || ye.Line != tt.line || !strings.Contains(ye.Msg, tt.msg) {
				t.Errorf("got path %q line %d msg %q\nwant path %q line %d msg containing %q", ye.Path, ye.Line, ye.Msg, tt.path, tt.line, tt.msg)
			}
			text := err.Error()
			if !strings.Contains(text, fmt.Sprintf("line %d: ", tt.line)) || !strings.Contains(text, tt.path) {
				t.Errorf("error text %q does not name line %d and %q", text, tt.line, tt.path)
			}
		})
	}
}

// A node taken out of a bigger file keeps that file's lines: this is why
// the package exists (yaml.v3's KnownFields needs text).
func TestDecodeSubNodeKeepsFileLines(t *testing.T) {
	for _, tt := range []struct {
		config string
		path   string
		line   int
	}{
		{"      a: 1\n      b: [ok]\n      cc: 3\n", "modules[0].config.cc", 7},
		{"      b: [ok]\n      a: nope\n", "modules[0].config.a", 6},
	} {
		doc := parse(t, "server: x\nmodules:\n  - module: m\n    config:\n"+tt.config)
		cfg := doc.Content[0].Content[3].Content[0].Content[3] // modules[0].config
		var got inner
		err := yamlstrict.Decode(cfg, &got, "modules[0].config")
		var ye *yamlstrict.Error
		if !errors.As(err, &ye) || ye.Path != tt.path || ye.Line != tt.line {
			t.Errorf("got %v, want %s at line %d", err, tt.path, tt.line)
		}
	}
}

func TestDecodeUnmarshalerMappingIsNotChecked(t *testing.T) {
	var got target
	if err := yamlstrict.Decode(parse(t, "free:\n  unknown: 1\n  keys: 2\n"), &got, ""); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Free.keys, []string{"unknown", "keys"}) {
		t.Errorf("free keys %v", got.Free.keys)
	}
}

func TestDecodePlainUnmarshalerError(t *testing.T) {
	var got target
	err := yamlstrict.Decode(parse(t, "plain: fail\n"), &got, "pre")
	var ye *yamlstrict.Error
	if !errors.As(err, &ye) || !strings.Contains(ye.Msg, "plain failure") || ye.Path != "pre" {
		t.Fatalf("got %#v, want the plain error's text under the prefix", err)
	}
}

func TestDecodeIntoMap(t *testing.T) {
	var m map[string]any
	if err := yamlstrict.Decode(parse(t, "a: 1\nb: [x]\n"), &m, ""); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, map[string]any{"a": 1, "b": []any{"x"}}) {
		t.Errorf("got %v", m)
	}
	var mi map[string]int
	err := yamlstrict.Decode(parse(t, "a: 1\nb: x\n"), &mi, "")
	var ye *yamlstrict.Error
	if !errors.As(err, &ye) || ye.Path != "b" || ye.Line != 2 {
		t.Fatalf("got %v, want b at line 2", err)
	}
}

func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		e    yamlstrict.Error
		want string
	}{
		{yamlstrict.Error{Line: 3, Path: "a.b", Msg: "m"}, "line 3: a.b: m"},
		{yamlstrict.Error{Path: "a.b", Msg: "m"}, "a.b: m"},
		{yamlstrict.Error{Line: 3, Column: 7, Msg: "m"}, "line 3: m"},
		{yamlstrict.Error{Msg: "m"}, "m"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

// text is a encoding.TextUnmarshaler: yaml.v3 gives it any scalar.
type text string

func (x *text) UnmarshalText(b []byte) error {
	*x = text("text:" + string(b))
	return nil
}

// Every scalar here fits its target: a string target takes any !!str
// (plain, quoted, block, tagged) and !!binary; a bool takes !!bool and the
// YAML 1.1 words Synapse's PyYAML reads as booleans; an integer takes !!int
// and a whole !!float; a float takes both; a pointer takes null.
func TestDecodeScalarTypes(t *testing.T) {
	type scalars struct {
		S   string        `yaml:"s"`
		B   bool          `yaml:"b"`
		I   int           `yaml:"i"`
		U   uint16        `yaml:"u"`
		F   float64       `yaml:"f"`
		PS  *string       `yaml:"ps"`
		PI  *int          `yaml:"pi"`
		D   time.Duration `yaml:"d"`
		T   text          `yaml:"t"`
		Any any           `yaml:"any"`
	}
	str := func(s string) *string { return &s }
	for _, tt := range []struct {
		text string
		want scalars
	}{
		{"s: plain", scalars{S: "plain"}},
		{"s: 'single'", scalars{S: "single"}},
		{`s: "5"`, scalars{S: "5"}},
		{"s: 'true'", scalars{S: "true"}},
		{"s: ''", scalars{}},
		{"s: |\n  block\n", scalars{S: "block\n"}},
		{"s: >-\n  folded\n", scalars{S: "folded"}},
		{"s: !!str 5", scalars{S: "5"}},
		{"s: !!binary aGVsbG8=", scalars{S: "hello"}},
		{"s: yes", scalars{S: "yes"}}, // a string in YAML 1.2, which yaml.v3 reads
		{"b: true", scalars{B: true}},
		{"b: False", scalars{}},
		{"b: yes", scalars{B: true}},
		{"b: ON", scalars{B: true}},
		{"b: off", scalars{}},
		{"b: !!bool true", scalars{B: true}},
		{"i: 5", scalars{I: 5}},
		{"i: -3", scalars{I: -3}},
		{"i: 0x10", scalars{I: 16}},
		{"i: 8008.0", scalars{I: 8008}},
		{"i: 1e3", scalars{I: 1000}},
		{"u: 65535", scalars{U: 65535}},
		{"f: 1", scalars{F: 1}},
		{"f: 1.5", scalars{F: 1.5}},
		{"ps: ~", scalars{}},
		{"ps: x", scalars{PS: str("x")}},
		{"pi:", scalars{}},
		{"d: 1m", scalars{D: time.Minute}},
		{"t: 5", scalars{T: "text:5"}},
		{"t: true", scalars{T: "text:true"}},
		{"any: 5", scalars{Any: 5}},
		{"any: ~", scalars{}},
	} {
		var got scalars
		if err := yamlstrict.Decode(parse(t, tt.text+"\n"), &got, ""); err != nil {
			t.Errorf("%q: %v", tt.text, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q decoded to %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

// A null collection is an empty one, as yaml.v3 decodes it; only a value of
// another shape is refused.
func TestDecodeNullCollections(t *testing.T) {
	var got target
	if err := yamlstrict.Decode(parse(t, "ints: ~\nmap:\nlabels: null\narr: ~\nnested: {k: ~}\n"), &got, ""); err != nil {
		t.Fatal(err)
	}
}
