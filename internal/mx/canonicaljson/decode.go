package canonicaljson

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"unicode/utf8"
)

// Limits bound what Decode accepts.
type Limits struct {
	MaxDepth int // nesting of objects and arrays; 0 means DefaultLimits.MaxDepth
	MaxSize  int // bytes of input; 0 means DefaultLimits.MaxSize
}

// DefaultLimits are generous for events (which are at most 65,536 bytes)
// and bound what a hostile peer can make us allocate.
var DefaultLimits = Limits{MaxDepth: 128, MaxSize: 1 << 20}

// Decode parses JSON strictly into map[string]any, []any, string, int64,
// bool and nil: floats, out-of-range integers, duplicate keys, invalid
// UTF-8 and lone surrogate escapes are errors.
func Decode(raw []byte) (any, error) { return DecodeLimits(raw, DefaultLimits) }

// DecodeLimits is Decode with explicit limits.
func DecodeLimits(raw []byte, l Limits) (any, error) {
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxSize == 0 {
		l.MaxSize = DefaultLimits.MaxSize
	}
	if len(raw) > l.MaxSize {
		return nil, ErrTooLarge
	}
	if !utf8.Valid(raw) {
		return nil, ErrInvalidUTF8
	}
	if bytes.Contains(raw, []byte(`\u`)) && hasLoneSurrogate(raw) {
		return nil, ErrInvalidUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec, 0, l.MaxDepth)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrSyntax
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth, max int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, ErrSyntax
	}
	return decodeToken(dec, tok, depth, max)
}

func decodeToken(dec *json.Decoder, tok json.Token, depth, max int) (any, error) {
	switch t := tok.(type) {
	case json.Delim:
		if depth >= max {
			return nil, ErrTooDeep
		}
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, ErrSyntax
				}
				k, ok := kt.(string)
				if !ok {
					return nil, ErrSyntax
				}
				if _, dup := m[k]; dup {
					return nil, ErrDuplicateKey
				}
				v, err := decodeValue(dec, depth+1, max)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, ErrSyntax
			}
			return m, nil
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1, max)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, ErrSyntax
			}
			return a, nil
		}
		return nil, ErrSyntax
	case json.Number:
		s := string(t)
		if bytes.ContainsAny([]byte(s), ".eE") {
			return nil, ErrFloat
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > MaxInt || n < MinInt {
			return nil, ErrIntRange
		}
		return n, nil
	case string, bool, nil:
		return t, nil
	}
	return nil, ErrSyntax
}

// hasLoneSurrogate reports a \uD800-\uDFFF escape that is not part of a
// valid pair: encoding/json would silently turn it into U+FFFD.
func hasLoneSurrogate(raw []byte) bool {
	for i := 0; i+5 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		r, ok := hex4(raw[i+2 : i+6])
		if !ok {
			return false // a syntax error the decoder reports
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if lo, ok := hex4(raw[i+8 : i+12]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
			}
			return true
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		}
		i += 5
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}
