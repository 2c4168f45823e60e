package canonicaljson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// specExamples reads testdata/spec_examples.txt: the appendix's examples,
// each an input and the canonical JSON the spec says it gives.
func specExamples(t testing.TB) [][2]string {
	t.Helper()
	raw, err := os.ReadFile("testdata/spec_examples.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for _, ex := range strings.Split(string(raw), "-- input\n")[1:] {
		in, want, ok := strings.Cut(ex, "-- canonical\n")
		if !ok {
			t.Fatalf("malformed example %q", ex)
		}
		out = append(out, [2]string{in, strings.TrimSuffix(want, "\n")})
	}
	if len(out) != 10 {
		t.Fatalf("%d spec examples, want 10", len(out))
	}
	return out
}

func TestSpecExamples(t *testing.T) {
	for i, ex := range specExamples(t) {
		in, want := ex[0], ex[1]
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			// The last example, {"a": -0, "b": 1e10}, writes a number with
			// an exponent: Synapse and rooms from v6 on refuse that, so the
			// strict default does too; IntegralFloats follows the example.
			floats := strings.Contains(in, "1e10")
			got, err := Canonicalize([]byte(in))
			if floats {
				if !errors.Is(err, ErrFloat) {
					t.Fatalf("strict Canonicalize(%q) = %q, %v; want ErrFloat", in, got, err)
				}
				got, err = CanonicalizeLimits([]byte(in), Limits{IntegralFloats: true})
			}
			if err != nil || string(got) != want {
				t.Fatalf("Canonicalize(%q) = %q, %v; want %q", in, got, err, want)
			}
			v, err := DecodeLimits([]byte(in), Limits{IntegralFloats: floats})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Encode(v); err != nil || string(got) != want {
				t.Fatalf("Encode(Decode(%q)) = %q, %v; want %q", in, got, err, want)
			}
		})
	}
}

// TestStringEscapes checks every ASCII character and the characters the
// spec singles out against the grammar of the appendix: only '"', '\'
// and control characters are escaped; \b \t \n \f \r have their short
// forms; the other controls are \u00XX with lower-case hex.
func TestStringEscapes(t *testing.T) {
	short := map[rune]string{'"': `\"`, '\\': `\\`, '\b': `\b`, '\t': `\t`, '\n': `\n`, '\f': `\f`, '\r': `\r`}
	for r := rune(0); r < 0x80; r++ {
		want := string(r)
		if s, ok := short[r]; ok {
			want = s
		} else if r < 0x20 {
			want = fmt.Sprintf(`\u%04x`, r)
		}
		checkString(t, string(r), `"`+want+`"`)
	}
	for s, want := range map[string]string{
		"/":               `"/"`,
		"\u007f":          "\"\u007f\"",
		"\u2028\u2029":    "\"\u2028\u2029\"",
		"\u00e9\u65e5":    `"é日"`,
		"\U0001F600":      "\"\U0001F600\"",
		"\uFFFD\uFEFF":    "\"\uFFFD\uFEFF\"",
		"<>&":             `"<>&"`,
		"a\x00b\x1fc\x0b": `"a\u0000b\u001fc\u000b"`,
	} {
		checkString(t, s, want)
	}
}

func checkString(t *testing.T, s, want string) {
	t.Helper()
	got, err := Encode(s)
	if err != nil || string(got) != want {
		t.Errorf("Encode(%q) = %s, %v; want %s", s, got, err, want)
	}
	// Every way of writing s in JSON canonicalizes to the same bytes.
	for _, in := range jsonSpellings(s) {
		got, err := Canonicalize([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}

// jsonSpellings writes s as a JSON string in several valid ways.
func jsonSpellings(s string) []string {
	var all, upper bytes.Buffer
	for _, r := range s {
		if r > 0xFFFF {
			hi, lo := (r-0x10000)>>10+0xD800, (r-0x10000)&0x3FF+0xDC00
			fmt.Fprintf(&all, `\u%04x\u%04x`, hi, lo)
			fmt.Fprintf(&upper, `\u%04X\u%04X`, hi, lo)
		} else {
			fmt.Fprintf(&all, `\u%04x`, r)
			fmt.Fprintf(&upper, `\u%04X`, r)
		}
	}
	std, _ := json.Marshal(s) // escapes <, >, &, U+2028 and U+2029
	out := []string{`"` + all.String() + `"`, `"` + upper.String() + `"`, string(std)}
	if s == "/" {
		out = append(out, `"\/"`)
	}
	return out
}

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // canonical form, or "" when refused
		err  error
	}{
		{"0", "0", nil},
		{"-0", "0", nil}, // as Python's json and the spec's example
		{"1", "1", nil},
		{"-1", "-1", nil},
		{"9007199254740991", "9007199254740991", nil},
		{"-9007199254740991", "-9007199254740991", nil},
		{"9007199254740992", "", ErrIntRange},
		{"-9007199254740992", "", ErrIntRange},
		{"18446744073709551616", "", ErrIntRange},
		{"99999999999999999999999999999999999", "", ErrIntRange},
		{"1.0", "", ErrFloat},
		{"1.5", "", ErrFloat},
		{"1e10", "", ErrFloat},
		{"1E10", "", ErrFloat},
		{"1e+1", "", ErrFloat},
		{"-0.0", "", ErrFloat},
		{"0e0", "", ErrFloat},
		{"01", "", ErrSyntax},
		{"-01", "", ErrSyntax},
		{"00", "", ErrSyntax},
		{"+1", "", ErrSyntax},
		{"-", "", ErrSyntax},
		{"--1", "", ErrSyntax},
		{".5", "", ErrSyntax},
		{"1.", "", ErrSyntax},
		{"1.e5", "", ErrSyntax},
		{"1e", "", ErrSyntax},
		{"1e+", "", ErrSyntax},
		{"0x10", "", ErrSyntax},
		{"1_000", "", ErrSyntax},
		{"NaN", "", ErrSyntax},
		{"Infinity", "", ErrSyntax},
		{"-Infinity", "", ErrSyntax},
		{"１", "", ErrSyntax}, // fullwidth digit
	} {
		got, err := Canonicalize([]byte(tc.in))
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Canonicalize(%s) = %q, %v; want %v", tc.in, got, err, tc.err)
			}
			if _, err := Decode([]byte(tc.in)); !errors.Is(err, tc.err) {
				t.Errorf("Decode(%s): %v; want %v", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Canonicalize(%s) = %q, %v; want %s", tc.in, got, err, tc.want)
		}
		if v, err := Decode([]byte(tc.in)); err != nil || fmt.Sprint(v) != tc.want {
			t.Errorf("Decode(%s) = %#v, %v", tc.in, v, err)
		}
	}
}

func TestIntegralFloats(t *testing.T) {
	l := Limits{IntegralFloats: true}
	for in, want := range map[string]string{
		"1e10":                   "10000000000",
		"1E+10":                  "10000000000",
		"-0":                     "0",
		"-0.0":                   "0",
		"0e-999999999":           "0",
		"0.000e5":                "0",
		"2.50e1":                 "25",
		"1.0":                    "1",
		"-12.3400e2":             "-1234",
		"123000e-3":              "123",
		"9007199254740991.000":   "9007199254740991",
		"9.007199254740991e15":   "9007199254740991",
		"-9.007199254740991e+15": "-9007199254740991",
		"1.5":                    "ErrFloat",
		"1e-1":                   "ErrFloat",
		"123001e-3":              "ErrFloat",
		"9007199254740993.0":     "ErrIntRange", // a float64 would round it into range
		"9.007199254740992e15":   "ErrIntRange",
		"1e16":                   "ErrIntRange",
		"1e999999999999":         "ErrIntRange",
		"1e400":                  "ErrIntRange",
	} {
		got, err := CanonicalizeLimits([]byte(in), l)
		switch want {
		case "ErrFloat", "ErrIntRange":
			wantErr := map[string]error{"ErrFloat": ErrFloat, "ErrIntRange": ErrIntRange}[want]
			if !errors.Is(err, wantErr) {
				t.Errorf("%s: got %q, %v; want %v", in, got, err, wantErr)
			}
		default:
			if err != nil || string(got) != want {
				t.Errorf("%s: got %q, %v; want %s", in, got, err, want)
			}
		}
	}
}

// TestDecodeErrors is the table of what Decode and Canonicalize refuse,
// and where.
func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("[", 1001) + strings.Repeat("]", 1001)
	for _, tc := range []struct {
		in     string
		err    error
		offset int
	}{
		{"", ErrSyntax, 0},
		{"   ", ErrSyntax, 3},
		{"{", ErrSyntax, 1},
		{"[", ErrSyntax, 1},
		{"[1", ErrSyntax, 2},
		{`{"a"`, ErrSyntax, 4},
		{`{"a":`, ErrSyntax, 5},
		{`{"a":1`, ErrSyntax, 6},
		{`{"a":1,}`, ErrSyntax, 7},
		{`[1,]`, ErrSyntax, 3},
		{`[,1]`, ErrSyntax, 1},
		{`{,}`, ErrSyntax, 1},
		{`{a:1}`, ErrSyntax, 1},
		{`{'a':1}`, ErrSyntax, 1},
		{`{1:1}`, ErrSyntax, 1},
		{`{"a" 1}`, ErrSyntax, 5},
		{`{"a":1 "b":2}`, ErrSyntax, 7},
		{`[1 2]`, ErrSyntax, 3},
		{`{"a":1}}`, ErrSyntax, 7},
		{`{} {}`, ErrSyntax, 3},
		{`1 2`, ErrSyntax, 2},
		{`"a" x`, ErrSyntax, 4},
		{`tru`, ErrSyntax, 0},
		{`True`, ErrSyntax, 0},
		{`nul`, ErrSyntax, 0},
		{`nullx`, ErrSyntax, 4},
		{`undefined`, ErrSyntax, 0},
		{`[1]// comment`, ErrSyntax, 3},
		{`/* c */ 1`, ErrSyntax, 0},
		{"\ufeff{}", ErrSyntax, 0}, // byte order mark
		{"\x00", ErrSyntax, 0},
		{"[1]\x00", ErrSyntax, 3},
		{"\f1", ErrSyntax, 0}, // form feed is not JSON whitespace
		{"\u00a01", ErrSyntax, 0},
		// Strings.
		{`"abc`, ErrSyntax, 0},
		{`"abc\"`, ErrSyntax, 0},
		{`"\`, ErrSyntax, 0},
		{`"\x41"`, ErrSyntax, 1},
		{`"\a"`, ErrSyntax, 1},
		{`"\'"`, ErrSyntax, 1},
		{`"\U0041"`, ErrSyntax, 1},
		{`"\u41"`, ErrSyntax, 1},
		{`"\u004G"`, ErrSyntax, 1},
		{`"\u+041"`, ErrSyntax, 1},
		{"\"a\tb\"", ErrSyntax, 2},
		{"\"a\nb\"", ErrSyntax, 2},
		{"\"\x00\"", ErrSyntax, 1},
		{"\"\x1f\"", ErrSyntax, 1},
		// UTF-8.
		{"\"\xff\"", ErrInvalidUTF8, 1},
		{"\"a\xc3\"", ErrInvalidUTF8, 2},        // truncated sequence
		{"\"\xc0\xaf\"", ErrInvalidUTF8, 1},     // overlong '/'
		{"\"\xe0\x80\xaf\"", ErrInvalidUTF8, 1}, // overlong
		{"\"\xed\xa0\x80\"", ErrInvalidUTF8, 1}, // UTF-8 encoded surrogate
		{"\"\xf4\x90\x80\x80\"", ErrInvalidUTF8, 1},
		{"\"\x80\"", ErrInvalidUTF8, 1},
		{"{\"\xff\":1}", ErrInvalidUTF8, 2},
		{"\xff", ErrInvalidUTF8, 0},
		{"[1]\xff", ErrInvalidUTF8, 3},
		{`"\ud800"`, ErrInvalidUTF8, 1},
		{`"\uDBFF"`, ErrInvalidUTF8, 1},
		{`"\udc00"`, ErrInvalidUTF8, 1},
		{`"\ude00\ud83d"`, ErrInvalidUTF8, 1},
		{`"\ud83d\u0041"`, ErrInvalidUTF8, 1},
		{`"\ud83d\ud83d"`, ErrInvalidUTF8, 1},
		{`"\ud83dx"`, ErrInvalidUTF8, 1},
		{`"\ud83d\n"`, ErrInvalidUTF8, 1},
		{`"\ud83d\ude00\udc00"`, ErrInvalidUTF8, 13},
		{`{"\ud800":1}`, ErrInvalidUTF8, 2},
		// Numbers.
		{`{"a":1.5}`, ErrFloat, 5},
		{`[1e3]`, ErrFloat, 1},
		{`[01]`, ErrSyntax, 1},
		{`[9007199254740992]`, ErrIntRange, 1},
		{`[NaN]`, ErrSyntax, 1},
		{`[-Infinity]`, ErrSyntax, 1},
		{`{"a":Infinity}`, ErrSyntax, 5},
		// Keys.
		{`{"a":1,"a":2}`, ErrDuplicateKey, 7},
		{`{"a":1,"b":2,"a":3}`, ErrDuplicateKey, 13},
		{`{"b":1,"a":2,"b":3}`, ErrDuplicateKey, 13},
		{`{"a":1,"\u0061":2}`, ErrDuplicateKey, 7},
		{`{"\u00e9":1,"é":2}`, ErrDuplicateKey, 12},
		{`{"x":{"a":{},"a":[]}}`, ErrDuplicateKey, 13},
		{`{"":1,"":2}`, ErrDuplicateKey, 6},
		// Limits.
		{deep, ErrTooDeep, 1000},
	} {
		_, err := Decode([]byte(tc.in))
		checkErr(t, "Decode", tc.in, err, tc.err, tc.offset)
		out, err := Canonicalize([]byte(tc.in))
		checkErr(t, "Canonicalize", tc.in, err, tc.err, tc.offset)
		if out != nil {
			t.Errorf("Canonicalize(%q) = %q with an error", tc.in, out)
		}
	}
}

func checkErr(t *testing.T, fn, in string, err, want error, offset int) {
	t.Helper()
	if len(in) > 40 {
		in = in[:40] + "…"
	}
	var e *Error
	if !errors.Is(err, want) || !errors.As(err, &e) {
		t.Errorf("%s(%q): %v; want %v", fn, in, err, want)
		return
	}
	if e.Offset != offset {
		t.Errorf("%s(%q): %v; want offset %d", fn, in, err, offset)
	}
	if !strings.HasPrefix(err.Error(), "canonicaljson: ") || !utf8.ValidString(err.Error()) {
		t.Errorf("%s(%q): odd message %q", fn, in, err.Error())
	}
}

func TestLimits(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":[`, n) + "1" + strings.Repeat("]}", n))
	}
	// nest(n) has depth 2n.
	for _, tc := range []struct {
		l     Limits
		in    []byte
		error error
	}{
		{Limits{MaxDepth: 4}, nest(2), nil},
		{Limits{MaxDepth: 3}, nest(2), ErrTooDeep},
		{Limits{MaxDepth: 1}, []byte(`[1,2,3]`), nil},
		{Limits{MaxDepth: 1}, []byte(`[[]]`), ErrTooDeep},
		{Limits{MaxDepth: 1}, []byte(`"scalar"`), nil},
		{Limits{}, nest(500), nil},
		{Limits{}, nest(501), ErrTooDeep},
		{Limits{MaxDepth: 1 << 30}, nest(5000), nil},
		{Limits{MaxDepth: 1 << 30}, nest(5001), ErrTooDeep}, // capped at 10,000
		{Limits{MaxSize: 7}, []byte(`[1,2,3]`), nil},
		{Limits{MaxSize: 6}, []byte(`[1,2,3]`), ErrTooLarge},
		{Limits{}, []byte(`"` + strings.Repeat("a", 1<<20-2) + `"`), nil},
		{Limits{}, []byte(`"` + strings.Repeat("a", 1<<20-1) + `"`), ErrTooLarge},
	} {
		_, err1 := DecodeLimits(tc.in, tc.l)
		_, err2 := CanonicalizeLimits(tc.in, tc.l)
		for _, err := range []error{err1, err2} {
			if tc.error == nil && err != nil || tc.error != nil && !errors.Is(err, tc.error) {
				t.Errorf("%+v on %d bytes: %v; want %v", tc.l, len(tc.in), err, tc.error)
			}
		}
	}
	// Encode refuses the depth Decode can never produce, which stops a
	// value that contains itself.
	loop := []any{nil}
	loop[0] = loop
	if _, err := Encode(loop); !errors.Is(err, ErrTooDeep) {
		t.Errorf("Encode(cycle): %v", err)
	}
	m := map[string]any{}
	m["m"] = m
	if _, err := Encode(m); !errors.Is(err, ErrTooDeep) {
		t.Errorf("Encode(cycle): %v", err)
	}
}

// TestDeepUnsorted: objects nested deep, each out of order, make each
// level copy all it holds when it reorders; past a bound Decode and Encode
// take over. Both ways give the same bytes and the same errors.
func TestDeepUnsorted(t *testing.T) {
	for _, depth := range []int{3, 999} {
		in := "1"
		for range depth {
			in = `{"b":` + in + `,"a":"` + strings.Repeat("x", 100) + `"}`
		}
		checkRoundTrip(t, []byte(in), DefaultLimits)
		want, _ := Encode(mustDecode(t, in))
		for _, maxMove := range []int{-1, 1 << 30, 4*len(in) + 1<<12} {
			got, err := appendCanonical(nil, []byte(in), DefaultLimits, maxMove)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("depth %d, maxMove %d: %v", depth, maxMove, err)
			}
			// An error after the point where Decode takes over.
			bad := []byte(in[:len(in)-1] + `,"c":1.5}`)
			if _, err := appendCanonical(nil, bad, DefaultLimits, maxMove); !errors.Is(err, ErrFloat) {
				t.Fatalf("depth %d, maxMove %d: %v, want ErrFloat", depth, maxMove, err)
			}
		}
	}
}

func mustDecode(t *testing.T, in string) any {
	t.Helper()
	v, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDecodeTypes(t *testing.T) {
	v, err := Decode([]byte(` { "s" : "x\u0041\/" , "n" : -5 , "z": 0, "t" : true , "f" : false , "null" : null , "a" : [ ] , "o" : { } , "big": 9007199254740991 } `))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"s": "xA/", "n": int64(-5), "z": int64(0), "t": true, "f": false, "null": nil,
		"a": []any{}, "o": map[string]any{}, "big": int64(MaxInt),
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("Decode = %#v\nwant %#v", v, want)
	}
	for in, want := range map[string]any{`"x"`: "x", `12`: int64(12), `null`: nil, `true`: true, `[null]`: []any{nil}} {
		if v, err := Decode([]byte(in)); err != nil || !reflect.DeepEqual(v, want) {
			t.Errorf("Decode(%s) = %#v, %v", in, v, err)
		}
	}
}

// TestDecodeDoesNotAlias: values do not share memory with the input.
func TestDecodeDoesNotAlias(t *testing.T) {
	in := []byte(`{"key":["value"]}`)
	v, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'X'
	}
	if !reflect.DeepEqual(v, map[string]any{"key": []any{"value"}}) {
		t.Fatalf("value changed with the input: %#v", v)
	}
}

func TestEncodeTypes(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
		err  error
	}{
		{nil, `null`, nil},
		{int(7), `7`, nil},
		{int32(-7), `-7`, nil},
		{uint32(math.MaxUint32), `4294967295`, nil},
		{int64(MinInt), `-9007199254740991`, nil},
		{int64(MinInt - 1), ``, ErrIntRange},
		{int(MaxInt + 1), ``, ErrIntRange},
		{float64(3), `3`, nil},
		{math.Copysign(0, -1), `0`, nil},
		{float64(MaxInt), `9007199254740991`, nil},
		{float64(MaxInt + 1), ``, ErrIntRange},
		{1e300, ``, ErrIntRange},
		{1.5, ``, ErrFloat},
		{math.NaN(), ``, ErrFloat},
		{math.Inf(-1), ``, ErrFloat},
		{json.Number("12"), `12`, nil},
		{json.Number("-0"), `0`, nil},
		{json.Number("1.0"), ``, ErrFloat},
		{json.Number("1e400"), ``, ErrFloat},
		{json.Number("9007199254740992"), ``, ErrIntRange},
		{json.Number("12abc"), ``, ErrSyntax},
		{json.Number(""), ``, ErrSyntax},
		{json.RawMessage(`{"b": 1, "a": "\u00e9"}`), `{"a":"é","b":1}`, nil},
		{json.RawMessage(`{"b": 1.5}`), ``, ErrFloat},
		{json.RawMessage(nil), `null`, nil},
		{[]string{"b", "a"}, `["b","a"]`, nil},
		{[]string(nil), `null`, nil},
		{map[string]string{"b": "1", "a": "2"}, `{"a":"2","b":"1"}`, nil},
		{map[string]any(nil), `null`, nil},
		{[]any(nil), `null`, nil},
		{map[string]any{"a": []any{1, map[string]string{"y": "\n"}}}, `{"a":[1,{"y":"\n"}]}`, nil},
		{"\xff", ``, ErrInvalidUTF8},
		{map[string]any{"\xff": 1}, ``, ErrInvalidUTF8},
		{map[string]any{"a": uint64(1)}, ``, ErrUnsupported},
		{struct{}{}, ``, ErrUnsupported},
	} {
		got, err := Encode(tc.v)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || got != nil {
				t.Errorf("Encode(%#v) = %q, %v; want %v", tc.v, got, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Encode(%#v) = %q, %v; want %s", tc.v, got, err, tc.want)
		}
	}
}

func TestEncodeErrorPath(t *testing.T) {
	_, err := Encode(map[string]any{"content": map[string]any{"list": []any{"ok", 1.5}}})
	var e *Error
	if !errors.As(err, &e) || e.Path != ".content.list[1]" || e.Offset != -1 {
		t.Fatalf("error %v (%#v)", err, e)
	}
	if want := "canonicaljson: numbers must be integers at .content.list[1]: 1.5"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
}

func TestMarshal(t *testing.T) {
	type inner struct {
		B string `json:"b"`
		A int    `json:"a"`
	}
	got, err := Marshal(map[string]any{"z": inner{"<&>\u2028", 2}, "y": []int{3, 1}})
	if want := "{\"y\":[3,1],\"z\":{\"a\":2,\"b\":\"<&>\u2028\"}}"; err != nil || string(got) != want {
		t.Fatalf("Marshal = %s, %v; want %s", got, err, want)
	}
	if got, err := Marshal(map[string]any{"n": int64(5)}); err != nil || string(got) != `{"n":5}` {
		t.Fatalf("Marshal = %s, %v", got, err)
	}
	if _, err := Marshal(struct{ F float64 }{1.5}); !errors.Is(err, ErrFloat) {
		t.Fatalf("Marshal(float field): %v", err)
	}
	if _, err := Marshal(map[string]any{"s": "\xff"}); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("Marshal(invalid UTF-8): %v", err)
	}
	if _, err := Marshal(make(chan int)); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Marshal(chan): %v", err)
	}
}

// TestKeyOrder: keys sort by code point, which is UTF-8 byte order and
// not UTF-16 order (RFC 8785's): U+FFFF sorts before U+10000 although
// its UTF-16 unit is larger than U+10000's first surrogate.
func TestKeyOrder(t *testing.T) {
	in := `{"\uffff":1,"\ud800\udc00":2,"\u00e9":3,"e":4,"E":5,"":6,"\u0000":7,"ee":8,"\ufb01":9}`
	want := "{\"\":6,\"\\u0000\":7,\"E\":5,\"e\":4,\"ee\":8,\"é\":3,\"\ufb01\":9,\"\uffff\":1,\"\U00010000\":2}"
	got, err := Canonicalize([]byte(in))
	if err != nil || string(got) != want {
		t.Fatalf("Canonicalize = %s, %v\nwant %s", got, err, want)
	}
	v, _ := Decode([]byte(in))
	if got, err := Encode(v); err != nil || string(got) != want {
		t.Fatalf("Encode = %s, %v\nwant %s", got, err, want)
	}
	// Keys that differ only in how they are escaped sort by value:
	// "\n" (U+000A) before " " (U+0020), though its escape starts with '\'.
	got, err = Canonicalize([]byte(`{" ":1,"\n":2,"\u0041":3,"@":4}`))
	if want := `{"\n":2," ":1,"@":4,"A":3}`; err != nil || string(got) != want {
		t.Fatalf("Canonicalize = %s, %v; want %s", got, err, want)
	}
}

func TestAppendCanonical(t *testing.T) {
	dst := []byte("prefix:")
	out, err := AppendCanonical(dst, []byte(`{"b": [1, 2], "a": {"d": 1, "c": 2}}`))
	if err != nil || string(out) != `prefix:{"a":{"c":2,"d":1},"b":[1,2]}` {
		t.Fatalf("AppendCanonical = %q, %v", out, err)
	}
	out, err = AppendCanonical(dst, []byte(`{"b": 1.5}`))
	if err == nil || string(out) != "prefix:" {
		t.Fatalf("AppendCanonical on error = %q, %v", out, err)
	}
	// With room to spare, no allocation.
	if raceEnabled {
		return
	}
	raw := []byte(benchEvent)
	buf := make([]byte, 0, len(raw))
	if n := testing.AllocsPerRun(100, func() {
		buf, _ = AppendCanonical(buf[:0], raw)
	}); n != 0 {
		t.Errorf("AppendCanonical allocates %v times per run", n)
	}
}

// TestRoundTrip: canonical output is a fixed point and equals what Encode
// gives for the decoded value, on inputs of every shape.
func TestRoundTrip(t *testing.T) {
	inputs := []string{
		benchEvent,
		`{"a":{"b":{"c":{"d":[1,[2,[3,{"e":"f"}]]]}}}}`,
		`[{"z":1,"y":2,"x":3,"w":4,"v":5,"u":6,"t":7,"s":8,"r":9,"q":10,"p":11,"o":12,"n":13,"m":14,"l":15,"k":16,"j":17,"i":18}]`,
		`{"\u0022":"\u005c","\/":"\b\f\n\r\t","\u007F":"\u2028\u2029"}`,
		`  [ "" , { } , [ ] , -0 , 0 , null , true , false ]  `,
	}
	for _, ex := range specExamples(t)[:9] {
		inputs = append(inputs, ex[0])
	}
	for _, in := range inputs {
		checkRoundTrip(t, []byte(in), DefaultLimits)
	}
}

// checkRoundTrip checks the properties every accepted input must have.
func checkRoundTrip(t *testing.T, in []byte, l Limits) {
	t.Helper()
	v, err := DecodeLimits(in, l)
	c, cerr := CanonicalizeLimits(in, l)
	if (err == nil) != (cerr == nil) || err != nil && errors.Unwrap(err) != errors.Unwrap(cerr) {
		t.Fatalf("%q: Decode error %v, Canonicalize error %v", in, err, cerr)
	}
	if err != nil {
		return
	}
	e1, err := Encode(v)
	if err != nil {
		t.Fatalf("%q: Encode(Decode) failed: %v", in, err)
	}
	if !bytes.Equal(e1, c) {
		t.Fatalf("%q: Encode(Decode) = %q, Canonicalize = %q", in, e1, c)
	}
	v2, err := Decode(e1)
	if err != nil {
		t.Fatalf("%q: canonical output %q does not decode: %v", in, e1, err)
	}
	if !reflect.DeepEqual(v, v2) {
		t.Fatalf("%q: value changed through encoding: %#v then %#v", in, v, v2)
	}
	if e2, err := Encode(v2); err != nil || !bytes.Equal(e1, e2) {
		t.Fatalf("%q: Encode not stable: %q then %q, %v", in, e1, e2, err)
	}
	if c2, err := Canonicalize(c); err != nil || !bytes.Equal(c, c2) {
		t.Fatalf("%q: Canonicalize not idempotent: %q then %q, %v", in, c, c2, err)
	}
	if len(c) > len(in) && !l.IntegralFloats {
		t.Fatalf("%q: canonical form %q is longer than the input", in, c)
	}
	// What we accept is JSON, and means the same to encoding/json.
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var std any
	if err := dec.Decode(&std); err != nil || !json.Valid(in) {
		t.Fatalf("%q: accepted, but encoding/json refuses it: %v", in, err)
	}
	if !l.IntegralFloats && !reflect.DeepEqual(numbersToInt64(std), v) {
		t.Fatalf("%q: encoding/json reads %#v, we read %#v", in, std, v)
	}
}

func numbersToInt64(v any) any {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return x
		}
		return n
	case []any:
		for i := range x {
			x[i] = numbersToInt64(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbersToInt64(x[k])
		}
	}
	return v
}
