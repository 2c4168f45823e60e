// Package canonicaljson is Matrix's canonical JSON: the encoding events and
// signed objects are hashed and signed in (spec, appendices, "Canonical
// JSON"). Keys are sorted by Unicode code point, there is no insignificant
// whitespace, strings use the shortest escapes (only '"', '\' and control
// characters are escaped; \b \t \n \f \r where JSON has them, else \u00XX
// in lower-case hex; '/', DEL, U+2028, U+2029 and all non-ASCII are raw
// UTF-8), and numbers are integers in [-(2^53)+1, 2^53-1] without fraction,
// exponent or sign on zero. RFC 8785 differs (UTF-16 key order, floats),
// so this is Matrix's own.
//
// Decode parses JSON into plain Go values, refusing what canonical JSON
// cannot represent; Encode writes such values canonically; Canonicalize
// and AppendCanonical go from JSON text to canonical JSON text directly,
// without building values, which is what hashing and signing want.
//
// The checks are the ones rooms from version 6 on require: floats,
// out-of-range integers, NaN and Infinity are refused, as Synapse refuses
// them. This package also refuses duplicate keys (Python's json module
// keeps the last one; the spec does not say) and lone surrogate escapes
// (Python decodes them but cannot encode them, so Synapse fails later).
// Events of room versions 1 to 5 may hold JSON that breaks these rules;
// callers handling them need their own lenient path.
package canonicaljson

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Integer bounds of canonical JSON.
const (
	MaxInt = 1<<53 - 1
	MinInt = -(1<<53 - 1)
)

// Errors of encoding and decoding. Decode and Canonicalize return them
// wrapped in an *Error that says where.
var (
	ErrFloat        = errors.New("canonicaljson: numbers must be integers")
	ErrIntRange     = errors.New("canonicaljson: integer out of range [-(2^53)+1, 2^53-1]")
	ErrInvalidUTF8  = errors.New("canonicaljson: invalid UTF-8")
	ErrDuplicateKey = errors.New("canonicaljson: duplicate key")
	ErrTooDeep      = errors.New("canonicaljson: nesting too deep")
	ErrTooLarge     = errors.New("canonicaljson: input too large")
	ErrSyntax       = errors.New("canonicaljson: invalid JSON")
	ErrUnsupported  = errors.New("canonicaljson: cannot encode this Go type")
)

// Marshal encodes a Go value canonically. The values Encode knows are
// encoded directly; anything else goes through encoding/json first (which
// replaces invalid UTF-8 in strings by U+FFFD rather than failing).
func Marshal(v any) ([]byte, error) {
	b, err := Encode(v)
	if !errors.Is(err, ErrUnsupported) {
		return b, err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, errors.Join(ErrUnsupported, err)
	}
	return Canonicalize(raw)
}

// Encode writes a value canonically. It takes what Decode returns
// (map[string]any, []any, string, int64, bool, nil) and also int, int32,
// uint32, float64 holding an integer, json.Number, json.RawMessage (which
// must pass Canonicalize), []string and map[string]string, nested in any
// way. A nil map or slice is null, as in encoding/json. Other types are
// ErrUnsupported.
func Encode(v any) ([]byte, error) {
	bp := encBufs.Get().(*[]byte)
	b, err := AppendEncode((*bp)[:0], v)
	var out []byte
	if err == nil {
		out = slices.Clone(b)
	}
	if cap(b) <= 1<<16 {
		*bp = b
		encBufs.Put(bp)
	}
	return out, err
}

var encBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// AppendEncode is Encode appending to dst. On error dst is returned with
// its length unchanged.
func AppendEncode(dst []byte, v any) ([]byte, error) {
	b, err := appendValue(dst, v, 0)
	if err != nil {
		return dst, err
	}
	return b, nil
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case string:
		return appendQuoted(b, x)
	case int64:
		return appendInt(b, x)
	case int:
		return appendInt(b, int64(x))
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) { // NaN fails the first test
			return b, &Error{Err: ErrFloat, Offset: -1, Detail: strconv.FormatFloat(x, 'g', -1, 64)}
		}
		if x > MaxInt || x < MinInt {
			return b, &Error{Err: ErrIntRange, Offset: -1, Detail: strconv.FormatFloat(x, 'g', -1, 64)}
		}
		return strconv.AppendInt(b, int64(x), 10), nil
	case json.Number:
		return appendNumber(b, x)
	case json.RawMessage:
		if x == nil {
			return append(b, "null"...), nil
		}
		return AppendCanonical(b, x)
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendObject(b, x, depth, appendValue)
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		if depth >= maxDepth {
			return b, &Error{Err: ErrTooDeep, Offset: -1}
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, at(err, "["+strconv.Itoa(i)+"]")
			}
		}
		return append(b, ']'), nil
	case map[string]string:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendObject(b, x, depth, appendQuotedAt)
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendQuoted(b, s); err != nil {
				return b, at(err, "["+strconv.Itoa(i)+"]")
			}
		}
		return append(b, ']'), nil
	}
	return b, &Error{Err: ErrUnsupported, Offset: -1, Detail: typeName(v)}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func appendNumber(b []byte, x json.Number) ([]byte, error) {
	s, sentinel := []byte(x), ErrSyntax
	if len(s) > 0 && (s[0] == '-' || isDigit(s[0])) {
		n, end, err := scanNumber(s, 0, false)
		if err == nil && end == len(s) {
			return strconv.AppendInt(b, n, 10), nil
		}
		if err != nil {
			sentinel = err.(*Error).Err
		}
	}
	return b, &Error{Err: sentinel, Offset: -1, Detail: "json.Number " + strconv.Quote(string(x))}
}

func appendInt(b []byte, n int64) ([]byte, error) {
	if n > MaxInt || n < MinInt {
		return b, &Error{Err: ErrIntRange, Offset: -1, Detail: strconv.FormatInt(n, 10)}
	}
	return strconv.AppendInt(b, n, 10), nil
}

// appendObject writes a map with its keys in code point order, which for
// valid UTF-8 (and keys are checked) is Go's byte order on strings.
func appendObject[V any](b []byte, m map[string]V, depth int, appendV func([]byte, V, int) ([]byte, error)) ([]byte, error) {
	if depth >= maxDepth {
		return b, &Error{Err: ErrTooDeep, Offset: -1}
	}
	var small [16]string
	keys := small[:0]
	if len(m) > len(small) {
		keys = make([]string, 0, len(m))
	}
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendQuoted(b, k); err != nil {
			return b, at(err, "(key)")
		}
		b = append(b, ':')
		if b, err = appendV(b, m[k], depth+1); err != nil {
			return b, at(err, "."+k)
		}
	}
	return append(b, '}'), nil
}

// at records where in a value an encoding error happened.
func at(err error, seg string) error {
	var e *Error
	if errors.As(err, &e) {
		e.Path = seg + e.Path
		return e
	}
	return err
}

func appendQuotedAt(b []byte, s string, _ int) ([]byte, error) { return appendQuoted(b, s) }

// appendQuoted writes s as a canonical JSON string.
func appendQuoted(b []byte, s string) ([]byte, error) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return b, &Error{Err: ErrInvalidUTF8, Offset: -1}
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		b = appendEscape(b, c)
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), nil
}
