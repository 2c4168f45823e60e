package canonicaljson

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// The lexical layer shared by Decode (which builds values) and
// AppendCanonical (which streams canonical bytes): both accept exactly the
// same inputs because they use these functions for every token.

// Error is the error of every function of this package: Err is one of the
// Err* values (test with errors.Is). Decode and Canonicalize set Offset,
// the byte of the input where the problem was found; Encode sets it to -1
// and sets Path, where in the value the problem is (".content.body",
// "[2]").
type Error struct {
	Err    error
	Offset int
	Path   string
	Detail string // what was wrong, for people
}

func (e *Error) Error() string {
	s := e.Err.Error()
	if e.Path != "" {
		s += " at " + e.Path
	}
	if e.Offset >= 0 {
		s += " at offset " + strconv.Itoa(e.Offset)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func errAt(off int, err error, detail string) error {
	return &Error{Err: err, Offset: off, Detail: detail}
}

// plain[c] is true for bytes that stand for themselves inside a string, in
// the input and in canonical output: printable ASCII other than '"' and '\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// unexpected describes the byte at i, which no rule of the grammar allows.
func unexpected(data []byte, i int, what string) error {
	if i >= len(data) {
		return errAt(i, ErrSyntax, "unexpected end of input, expected "+what)
	}
	c := data[i]
	r, size := utf8.DecodeRune(data[i:])
	if r == utf8.RuneError && size <= 1 {
		return errAt(i, ErrInvalidUTF8, "")
	}
	switch {
	case c == 'N' && hasPrefix(data[i:], "NaN"), c == 'I' && hasPrefix(data[i:], "Infinity"):
		return errAt(i, ErrSyntax, "NaN and Infinity are not JSON")
	case c == '+' || c == '.':
		return errAt(i, ErrSyntax, "a number must start with a digit or '-'")
	case c == '/':
		return errAt(i, ErrSyntax, "comments are not JSON")
	}
	return errAt(i, ErrSyntax, "unexpected "+strconv.QuoteRuneToASCII(r)+", expected "+what)
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// literal checks that data[i:] starts with word (true, false or null).
func literal(data []byte, i int, word string) (int, error) {
	if !hasPrefix(data[i:], word) {
		return i, unexpected(data, i, "a value")
	}
	return i + len(word), nil
}

// scanString checks the string starting with the '"' at data[i]: escapes
// well formed, surrogate escapes paired, no raw control characters, valid
// UTF-8. It returns the offset just past the closing quote and whether the
// string contains escapes (if not, its bytes are its value).
func scanString(data []byte, i int) (end int, escaped bool, err error) {
	start := i
	i++
	for {
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i >= len(data) {
			return i, escaped, errAt(start, ErrSyntax, "unterminated string")
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(data) {
				return i, escaped, errAt(start, ErrSyntax, "unterminated string")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(data, i+2)
				if !ok {
					return i, escaped, errAt(i, ErrSyntax, `\u must be followed by four hex digits`)
				}
				switch {
				case r >= 0xD800 && r <= 0xDBFF:
					lo, ok := rune(0), false
					if i+7 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
						lo, ok = hex4(data, i+8)
					}
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						return i, escaped, errAt(i, ErrInvalidUTF8, "unpaired surrogate escape")
					}
					i += 12
				case r >= 0xDC00 && r <= 0xDFFF:
					return i, escaped, errAt(i, ErrInvalidUTF8, "unpaired surrogate escape")
				default:
					i += 6
				}
			default:
				return i, escaped, errAt(i, ErrSyntax, "invalid escape "+strconv.QuoteRuneToASCII(rune(data[i+1])))
			}
		case c < 0x20:
			return i, escaped, errAt(i, ErrSyntax, "control character in string must be escaped")
		default: // c >= 0x80
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				return i, escaped, errAt(i, ErrInvalidUTF8, "")
			}
			i += size
		}
	}
}

// hex4 reads the four hex digits at data[i:i+4].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendString appends the value of s, the inside of a string scanString
// has accepted: unescaped if canon is false, else as canonical JSON string
// content (the spec's shortest escapes).
func appendString(dst, s []byte, canon bool) []byte {
	for len(s) > 0 {
		n := bytes.IndexByte(s, '\\')
		if n < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:n]...)
		var r rune
		switch e := s[n+1]; e {
		case 'u':
			r, _ = hex4(s, n+2)
			n += 6
			if r >= 0xD800 && r <= 0xDBFF {
				lo, _ := hex4(s, n+2)
				r = (r-0xD800)<<10 | (lo - 0xDC00) + 0x10000
				n += 6
			}
		default:
			r = rune(unescapeByte[e])
			n += 2
		}
		if canon && r < utf8.RuneSelf && !plain[r] {
			dst = appendEscape(dst, byte(r))
		} else {
			dst = utf8.AppendRune(dst, r)
		}
		s = s[n:]
	}
	return dst
}

var unescapeByte = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

const hexDigits = "0123456789abcdef"

// appendEscape appends the canonical escape of c, which is '"', '\' or a
// control character: the two-character forms where JSON has them, else
// \u00XX in lower-case hex. Everything else (DEL, U+2028, U+2029, '/',
// non-ASCII) is written raw.
func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// scanNumber reads the number at data[i] (a '-' or a digit). Canonical
// JSON numbers are integers in [MinInt, MaxInt] without fraction or
// exponent; -0 is read as 0, as by Python's json module and Synapse, and as
// in the spec's own example. With integralFloats, a fraction or exponent
// is accepted when the value it writes is such an integer (1e10, 2.50e1).
func scanNumber(data []byte, i int, integralFloats bool) (int64, int, error) {
	start := i
	neg := data[i] == '-'
	if neg {
		i++
	}
	if i >= len(data) || !isDigit(data[i]) {
		if i < len(data) && data[i] == 'I' && hasPrefix(data[i:], "Infinity") {
			return 0, i, errAt(start, ErrSyntax, "NaN and Infinity are not JSON")
		}
		return 0, i, errAt(start, ErrSyntax, "'-' must be followed by a digit")
	}
	intStart := i
	var n uint64
	big := false
	if data[i] == '0' {
		i++
		if i < len(data) && isDigit(data[i]) {
			return 0, i, errAt(start, ErrSyntax, "leading zero")
		}
	} else {
		for ; i < len(data) && isDigit(data[i]); i++ {
			if n > MaxInt {
				big = true
			} else {
				n = n*10 + uint64(data[i]-'0')
			}
		}
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(data) && data[i] == '.' {
		i++
		fracStart = i
		for i < len(data) && isDigit(data[i]) {
			i++
		}
		fracEnd = i
		if fracStart == fracEnd {
			return 0, i, errAt(start, ErrSyntax, "'.' must be followed by a digit")
		}
	}
	exp, hasExp := 0, false
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		hasExp = true
		i++
		expNeg := false
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			expNeg = data[i] == '-'
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return 0, i, errAt(start, ErrSyntax, "exponent must have a digit")
		}
		for ; i < len(data) && isDigit(data[i]); i++ {
			if exp < 1e6 {
				exp = exp*10 + int(data[i]-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	if fracEnd > fracStart || hasExp {
		if !integralFloats {
			return 0, i, errAt(start, ErrFloat, "")
		}
		var ok bool
		n, ok, big = integralValue(data[intStart:intEnd], data[fracStart:fracEnd], exp)
		if !ok {
			return 0, i, errAt(start, ErrFloat, "not an integer")
		}
	}
	if big || n > MaxInt {
		return 0, i, errAt(start, ErrIntRange, "")
	}
	if neg {
		return -int64(n), i, nil
	}
	return int64(n), i, nil
}

// integralValue computes the value of intPart.fracPart × 10^exp exactly:
// ok is false if it is not an integer, big is true if it is more than
// MaxInt.
func integralValue(intPart, fracPart []byte, exp int) (n uint64, ok, big bool) {
	digits := make([]byte, 0, len(intPart)+len(fracPart))
	digits = append(append(digits, intPart...), fracPart...)
	exp -= len(fracPart)
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, true, false
	}
	for digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if exp < 0 {
		return 0, false, false
	}
	if len(digits)+exp > 16 { // MaxInt has 16 digits
		return 0, true, true
	}
	for _, d := range digits {
		n = n*10 + uint64(d-'0')
	}
	for ; exp > 0; exp-- {
		n *= 10
	}
	return n, true, n > MaxInt
}
