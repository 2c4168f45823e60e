package canonicaljson

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

func fuzzSeeds(f *testing.F) [][]byte {
	seeds := interestingInputs()
	for _, ex := range specExamples(f) {
		seeds = append(seeds, []byte(ex[0]))
	}
	seeds = append(seeds, []byte(benchEvent))
	g := newGen(3)
	for range 20 {
		seeds = append(seeds, g.text(g.value(0)))
	}
	return seeds
}

// FuzzRoundTrip: whatever Decode accepts, Canonicalize accepts too and
// Encode encodes; decode → encode → decode → encode is stable; canonical
// output is a fixed point; strict and IntegralFloats modes agree where
// both accept; nothing panics.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip(t, data, DefaultLimits)
		lenient := Limits{IntegralFloats: true}
		checkRoundTrip(t, data, lenient)
		strict, err := Canonicalize(data)
		// Decode and Encode taking over at the first reordering give the
		// same result.
		forced, ferr := appendCanonical(nil, data, DefaultLimits, -1)
		if !bytes.Equal(forced, strict) || (err == nil) != (ferr == nil) || err != nil && errors.Unwrap(err) != errors.Unwrap(ferr) {
			t.Fatalf("%q: Canonicalize %q, %v; through Decode and Encode %q, %v", data, strict, err, forced, ferr)
		}
		if err != nil {
			return
		}
		if out, err := CanonicalizeLimits(data, lenient); err != nil || !bytes.Equal(out, strict) {
			t.Fatalf("%q: strict gives %q, IntegralFloats %q, %v", data, strict, out, err)
		}
	})
}

// FuzzDecode: Decode never panics, whatever the limits; its errors say
// where, within the input; what it accepts encodes.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint8(0), uint16(0))
	}
	f.Add([]byte(`[[[[1]]]]`), uint8(3), uint16(0))
	f.Add([]byte(`{"a":[1,2,3]}`), uint8(0), uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, depth uint8, size uint16) {
		l := Limits{MaxDepth: int(depth), MaxSize: int(size)}
		v, err := DecodeLimits(data, l)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(data) || !utf8.ValidString(err.Error()) {
				t.Fatalf("%q: error %#v", data, err)
			}
			if _, err2 := CanonicalizeLimits(data, l); !errors.Is(err2, e.Err) {
				t.Fatalf("%q: Decode: %v, Canonicalize: %v", data, err, err2)
			}
			return
		}
		out, err := Encode(v)
		if err != nil {
			t.Fatalf("%q: accepted, but Encode fails: %v", data, err)
		}
		if c, err := CanonicalizeLimits(data, l); err != nil || !bytes.Equal(c, out) {
			t.Fatalf("%q: Encode gives %q, Canonicalize %q, %v", data, out, c, err)
		}
	})
}
