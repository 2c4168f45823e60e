package canonicaljson

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// The tests here compare with independent implementations: the spec's own
// event examples, and Synapse's canonical JSON (Python's json module and
// python-canonicaljson, Debian's python3-canonicaljson) on those examples
// and on generated and mutated inputs.

// specDir finds the machine-readable Matrix spec: $SLUICE_MATRIX_SPEC, else
// a matrix-spec checkout next to the repository.
func specDir() string {
	if d := os.Getenv("SLUICE_MATRIX_SPEC"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "..", "shared", "matrix-spec")
}

type example struct {
	name string
	raw  []byte
}

func eventExamples(t *testing.T) []example {
	t.Helper()
	dir := filepath.Join(specDir(), "data", "event-schemas", "examples")
	var out []example
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, example{rel, raw})
		return nil
	})
	if err != nil || len(out) == 0 {
		t.Skipf("spec event examples not found in %s (set SLUICE_MATRIX_SPEC); skipping", dir)
	}
	return out
}

// floatExamples are the spec's examples that hold a number with a
// fraction: valid JSON, but not canonical JSON.
var floatExamples = map[string]bool{
	"m.tag.yaml": true, // "order": 0.9
}

// TestSpecEventExamples: every event example of the spec (JSON, though
// some files are named .yaml) decodes and re-encodes canonically, except
// those with floats, which are refused.
func TestSpecEventExamples(t *testing.T) {
	exs := eventExamples(t)
	for _, ex := range exs {
		out, err := Canonicalize(ex.raw)
		if floatExamples[ex.name] {
			if !errors.Is(err, ErrFloat) {
				t.Errorf("%s: %v; want ErrFloat", ex.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", ex.name, err)
			continue
		}
		checkRoundTrip(t, ex.raw, DefaultLimits)
		var std any
		if err := json.Unmarshal(out, &std); err != nil {
			t.Errorf("%s: canonical form is not JSON: %v", ex.name, err)
		}
	}
	t.Logf("%d spec event examples", len(exs))
}

type oracleResult struct {
	ok  bool
	out []byte // canonical JSON, when ok
	err string
}

// pythonOracle runs testdata/oracle.py on the inputs, or skips the test
// when Python or python3-canonicaljson is missing.
func pythonOracle(t *testing.T, inputs [][]byte) []oracleResult {
	t.Helper()
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("python oracle: /usr/bin/python3 not found; skipping")
	}
	if err := exec.Command(python, "-c", "import canonicaljson").Run(); err != nil {
		t.Skip("python oracle: python3-canonicaljson is not installed (apt-get install python3-canonicaljson); skipping")
	}
	enc := make([]string, len(inputs))
	for i, in := range inputs {
		enc[i] = base64.StdEncoding.EncodeToString(in)
	}
	stdin, _ := json.Marshal(enc)
	cmd := exec.Command(python, "testdata/oracle.py")
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle.py: %v\n%s", err, stderr.Bytes())
	}
	var res []oracleResult
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		status, rest, _ := strings.Cut(sc.Text(), " ")
		if status == "OK" {
			out, err := base64.StdEncoding.DecodeString(rest)
			if err != nil {
				t.Fatal(err)
			}
			res = append(res, oracleResult{ok: true, out: out})
		} else {
			res = append(res, oracleResult{err: rest})
		}
	}
	if len(res) != len(inputs) {
		t.Fatalf("oracle.py answered %d of %d inputs", len(res), len(inputs))
	}
	return res
}

// compareWithPython checks that we accept what Synapse accepts and produce
// the same bytes. The one known difference: Python's json keeps the last
// of duplicate keys, we refuse them.
func compareWithPython(t *testing.T, inputs [][]byte) map[string]int {
	t.Helper()
	res := pythonOracle(t, inputs)
	stats := map[string]int{}
	for i, in := range inputs {
		ours, err := Canonicalize(in)
		py := res[i]
		switch {
		case err == nil && py.ok:
			stats["both accept"]++
			if !bytes.Equal(ours, py.out) {
				t.Errorf("input %q:\n  ours   %q\n  python %q", in, ours, py.out)
			}
		case err != nil && !py.ok:
			stats["both refuse"]++
		case err != nil && py.ok:
			if errors.Is(err, ErrDuplicateKey) {
				stats["duplicate keys (python keeps the last)"]++
				continue
			}
			t.Errorf("input %q: we refuse (%v), python gives %q", in, err, py.out)
		default:
			t.Errorf("input %q: we give %q, python refuses (%s)", in, ours, py.err)
		}
	}
	return stats
}

func TestPythonSpecEventExamples(t *testing.T) {
	exs := eventExamples(t)
	inputs := make([][]byte, len(exs))
	for i, ex := range exs {
		inputs[i] = ex.raw
	}
	stats := compareWithPython(t, inputs)
	if stats["both accept"] != len(exs)-len(floatExamples) || stats["both refuse"] != len(floatExamples) {
		t.Errorf("stats %v", stats)
	}
	t.Logf("%d spec examples: %v", len(exs), stats)
}

// TestPythonGenerated compares with Python on generated JSON texts, written
// with random whitespace and escapes, and on random mutations of them.
func TestPythonGenerated(t *testing.T) {
	g := newGen(1)
	var inputs [][]byte
	for range 3000 {
		inputs = append(inputs, g.text(g.value(0)))
	}
	for i := range 4000 {
		inputs = append(inputs, g.mutate(inputs[i%3000]))
	}
	inputs = append(inputs, interestingInputs()...)
	stats := compareWithPython(t, inputs)
	keys := make([]string, 0, len(stats))
	for k := range stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%s: %d", k, stats[k])
	}
	if stats["both accept"] < 3000 || stats["both refuse"] < 1000 {
		t.Errorf("the corpus is not testing much: %v", stats)
	}
}

// interestingInputs are edge cases for both oracles and the fuzz seeds.
func interestingInputs() [][]byte {
	var out [][]byte
	for _, s := range []string{
		`{}`, `[]`, `""`, `0`, `-0`, `[-0]`, `1`, `-1`, `null`, `true`, `false`,
		`9007199254740991`, `-9007199254740991`, `9007199254740992`, `-9007199254740992`,
		`1.0`, `1e10`, `-0.0`, `01`, `NaN`, `Infinity`, `-Infinity`, `[1,]`, `{"a":1,}`,
		`"\u0000"`, `"\u001F\u007F\u0080"`, `"\/"`, `"\u2028\u2029"`, `"\ud83d\ude00"`, `"\uD83D\uDE00"`,
		`"\ud800"`, `"\udc00"`, `"\ud800\ud800"`, `"\uDBFF\uDFFF"`, `"\uFFFF"`, `"\uFEFF"`,
		"\"\xed\xa0\x80\"", "\"\xc0\x80\"", "\"\xff\"", "\"\x7f\"", "\"\t\"", "\ufeff[]",
		`{"a":1,"a":1}`, `{"a":1,"\u0061":1}`, `{"b":1,"a":2,"c":{"z":[],"y":{}}}`,
		` { "b" : 1 , "a" : [ 1 , 2 ] } `, "\t\n\r[\t\n\r]\t\n\r", "[1]\f", `[1] [2]`,
		`{"\uffff":1,"\ud800\udc00":2}`, `{"\n":1," ":2}`,
		strings.Repeat("[", 100) + strings.Repeat("]", 100),
	} {
		out = append(out, []byte(s))
	}
	return out
}

// gen makes random JSON values and writes them in random valid ways.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, seed))} }

var genRunes = []rune{
	'a', 'b', 'z', 'A', 'Z', '0', '9', ' ', '~', '/', '"', '\\', '<', '>', '&', '\'',
	0x00, 0x01, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x1b, 0x1f, 0x7f, 0x80, 0x9f,
	'é', 'ß', '日', '本', 0x2028, 0x2029, 0xd7ff, 0xe000, 0xfb01, 0xfeff, 0xfffd, 0xffff,
	0x10000, 0x1f600, 0x1f389, 0x10ffff,
}

func (g *gen) string() string {
	var b strings.Builder
	for range g.r.IntN(8) {
		b.WriteRune(genRunes[g.r.IntN(len(genRunes))])
	}
	return b.String()
}

func (g *gen) value(depth int) any {
	n := 7
	if depth > 4 {
		n = 5 // scalars only
	}
	switch g.r.IntN(n) {
	case 0:
		return nil
	case 1:
		return g.r.IntN(2) == 0
	case 2:
		return g.string()
	case 3, 4:
		return []int64{0, 1, -1, 255, 256, -256, MaxInt, MinInt, MaxInt - 1, 1 << 40, 1700000000000}[g.r.IntN(11)] +
			int64(g.r.IntN(3)) - 1
	case 5:
		a := make([]any, g.r.IntN(5))
		for i := range a {
			a[i] = g.value(depth + 1)
		}
		return a
	default:
		m := map[string]any{}
		for range g.r.IntN(6) {
			m[g.string()] = g.value(depth + 1)
		}
		return m
	}
}

func (g *gen) space(b *bytes.Buffer) {
	b.WriteString([]string{"", "", "", " ", "\n", "\t", "\r\n  "}[g.r.IntN(7)])
}

// text writes v as JSON (values out of range written as such) with random
// whitespace, key order and escapes.
func (g *gen) text(v any) []byte {
	var b bytes.Buffer
	g.space(&b)
	g.write(&b, v)
	g.space(&b)
	return b.Bytes()
}

func (g *gen) write(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		fmt.Fprint(b, x)
	case int64:
		if x == 0 && g.r.IntN(4) == 0 {
			b.WriteString("-0")
		} else {
			fmt.Fprint(b, x)
		}
	case string:
		g.writeString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				g.space(b)
				b.WriteByte(',')
			}
			g.space(b)
			g.write(b, e)
		}
		g.space(b)
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		i := 0
		for k, e := range x { // random order
			if i > 0 {
				b.WriteByte(',')
			}
			g.space(b)
			g.writeString(b, k)
			g.space(b)
			b.WriteByte(':')
			g.space(b)
			g.write(b, e)
			i++
		}
		g.space(b)
		b.WriteByte('}')
	}
}

func (g *gen) writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		short := map[rune]string{'"': `\"`, '\\': `\\`, '/': `\/`, '\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`}[r]
		raw := r >= 0x20 && r != '"' && r != '\\'
		switch c := g.r.IntN(4); {
		case c == 0 && raw:
			b.WriteRune(r)
		case c == 1 && short != "":
			b.WriteString(short)
		case r > 0xffff:
			hi, lo := (r-0x10000)>>10+0xd800, (r-0x10000)&0x3ff+0xdc00
			if c == 2 {
				fmt.Fprintf(b, `\u%04x\u%04x`, hi, lo)
			} else {
				fmt.Fprintf(b, `\u%04X\u%04X`, hi, lo)
			}
		case c == 2 || !raw && short == "":
			fmt.Fprintf(b, `\u%04x`, r)
		case c == 3:
			fmt.Fprintf(b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

var mutationBytes = []byte(`"\,:{}[]0-.eEu+1 9x` + "\x00\x1f\x7f\xff\xc3\xa9\xed\xa0\xf0\t\n")

// mutate changes a few bytes of in, usually making it invalid.
func (g *gen) mutate(in []byte) []byte {
	b := bytes.Clone(in)
	for range 1 + g.r.IntN(3) {
		if len(b) == 0 {
			b = append(b, mutationBytes[g.r.IntN(len(mutationBytes))])
			continue
		}
		i := g.r.IntN(len(b))
		switch g.r.IntN(4) {
		case 0:
			b = append(b[:i], b[i+1:]...)
		case 1:
			b = append(b[:i], append([]byte{mutationBytes[g.r.IntN(len(mutationBytes))]}, b[i:]...)...)
		case 2:
			b[i] = mutationBytes[g.r.IntN(len(mutationBytes))]
		default:
			j := i + g.r.IntN(len(b)-i)
			b = append(b[:j], append(bytes.Clone(b[i:j]), b[j:]...)...)
		}
	}
	return b
}

// TestGeneratedRoundTrip runs the round-trip properties on the generated
// corpus without Python.
func TestGeneratedRoundTrip(t *testing.T) {
	g := newGen(2)
	accepted := 0
	for i := range 5000 {
		in := g.text(g.value(0))
		if i%2 == 1 {
			in = g.mutate(in)
		}
		checkRoundTrip(t, in, DefaultLimits)
		checkRoundTrip(t, in, Limits{IntegralFloats: true})
		if _, err := Decode(in); err == nil {
			accepted++
			if !utf8.Valid(in) {
				t.Fatalf("accepted invalid UTF-8 %q", in)
			}
		}
	}
	if accepted < 2500 {
		t.Errorf("only %d of 5000 inputs accepted", accepted)
	}
}
