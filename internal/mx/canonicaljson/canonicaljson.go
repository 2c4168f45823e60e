// Package canonicaljson is Matrix's canonical JSON: the encoding events and
// signed objects are hashed and signed in. Keys are sorted by Unicode code
// point, there is no insignificant whitespace, strings use the shortest
// escapes the spec allows, and numbers are integers in [-(2^53)+1, 2^53-1].
// RFC 8785 differs (UTF-16 key order, floats), so this is Matrix's own.
package canonicaljson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Integer bounds of canonical JSON.
const (
	MaxInt = 1<<53 - 1
	MinInt = -(1<<53 - 1)
)

// Errors of encoding and decoding.
var (
	ErrFloat        = errors.New("canonicaljson: numbers must be integers")
	ErrIntRange     = errors.New("canonicaljson: integer out of range [-(2^53)+1, 2^53-1]")
	ErrInvalidUTF8  = errors.New("canonicaljson: invalid UTF-8")
	ErrDuplicateKey = errors.New("canonicaljson: duplicate key")
	ErrTooDeep      = errors.New("canonicaljson: nesting too deep")
	ErrTooLarge     = errors.New("canonicaljson: input too large")
	ErrSyntax       = errors.New("canonicaljson: invalid JSON")
)

// Marshal encodes a Go value (anything encoding/json can encode) as
// canonical JSON.
func Marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonicaljson: %w", err)
	}
	return Canonicalize(raw)
}

// Canonicalize re-encodes JSON text canonically. The input must pass the
// same checks as Decode (integers in range, no duplicate keys, valid UTF-8).
func Canonicalize(raw []byte) ([]byte, error) {
	v, err := Decode(raw)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(raw))
	if err := encode(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Encode writes a decoded value (as Decode returns: map[string]any, []any,
// string, int64, bool, nil; also json.Number and int) canonically.
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encode(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		return encodeString(b, x)
	case int64:
		if x > MaxInt || x < MinInt {
			return ErrIntRange
		}
		b.WriteString(strconv.FormatInt(x, 10))
	case int:
		return encode(b, int64(x))
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return ErrFloat
		}
		return encode(b, n)
	case float64:
		if x != float64(int64(x)) {
			return ErrFloat
		}
		return encode(b, int64(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encode(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// Go compares strings bytewise; for valid UTF-8 that is code point order.
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeString(b, k); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := encode(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("canonicaljson: cannot encode %T", v)
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// encodeString escapes only what JSON requires, with the spec's shortest
// forms: \" \\ \b \f \n \r \t, other control characters as \u00XX
// (lower-case hex), everything else (including U+2028/U+2029 and non-ASCII)
// as raw UTF-8.
func encodeString(b *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
	return nil
}
