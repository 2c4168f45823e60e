package canonicaljson

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"strconv"
	"sync"
)

// Canonicalize re-encodes JSON text canonically. It accepts exactly what
// Decode accepts, and its result is what Encode gives for Decode's value,
// but it goes from bytes to bytes without building that value.
func Canonicalize(raw []byte) ([]byte, error) {
	return CanonicalizeLimits(raw, DefaultLimits)
}

// CanonicalizeLimits is Canonicalize with explicit limits.
func CanonicalizeLimits(raw []byte, l Limits) ([]byte, error) {
	out, err := AppendCanonicalLimits(nil, raw, l)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendCanonical appends the canonical form of the JSON text raw to dst.
// With a dst of enough capacity (the canonical form is never longer than
// raw unless Limits.IntegralFloats is set) it does not allocate. On error
// dst is returned with its length unchanged.
func AppendCanonical(dst, raw []byte) ([]byte, error) {
	return AppendCanonicalLimits(dst, raw, DefaultLimits)
}

// AppendCanonicalLimits is AppendCanonical with explicit limits.
func AppendCanonicalLimits(dst, raw []byte, l Limits) ([]byte, error) {
	return appendCanonical(dst, raw, l, 4*len(raw)+1<<12)
}

// appendCanonical is AppendCanonicalLimits where reordering may copy at
// most maxMove bytes before Decode and Encode take over.
func appendCanonical(dst, raw []byte, l Limits, maxMove int) ([]byte, error) {
	l = l.resolve()
	if len(raw) > l.MaxSize {
		return dst, errAt(l.MaxSize, ErrTooLarge, "")
	}
	c := canons.Get().(*canon)
	c.data, c.floats, c.maxDepth, c.moved, c.maxMove = raw, l.IntegralFloats, l.MaxDepth, 0, maxMove
	c.out = slices.Grow(dst, len(raw))
	err := c.top()
	out := c.out
	c.data, c.out = nil, nil
	c.fields, c.keys = c.fields[:0], c.keys[:0]
	if cap(c.tmp) > 1<<16 || cap(c.keys) > 1<<16 || cap(c.fields) > 1<<12 {
		c.tmp, c.keys, c.fields = nil, nil, nil
	}
	canons.Put(c)
	if err == errMovedTooMuch {
		v, err := DecodeLimits(raw, l)
		if err != nil {
			return dst, err
		}
		return AppendEncode(dst, v)
	}
	if err != nil {
		return dst, err
	}
	return out, nil
}

// errMovedTooMuch stops canon when reordering members has copied several
// times the input, which deep nests of unsorted objects can make it do
// (each level copies all it holds): Decode and Encode take over, and take
// O(n log n) time whatever the shape.
var errMovedTooMuch = errors.New("canonicaljson: reordering copied too much")

var canons = sync.Pool{New: func() any { return new(canon) }}

// canon writes the canonical form of its input to out as it reads it. An
// object's members are written in input order, each recording where its
// key and its canonical bytes are; at the object's end they are reordered
// if they were not already in order.
type canon struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
	floats   bool
	out      []byte
	fields   []field // open objects' members, innermost last
	keys     []byte  // unescaped keys that had escapes
	tmp      []byte  // reordering
	moved    int     // bytes copied by reordering
	maxMove  int     // bound on moved
}

type field struct {
	keyStart, keyEnd int  // the key's value, in data or (unescaped) in keys
	inKeys           bool // which
	start, end       int  // the member's canonical bytes in out
	off              int  // the key's offset in data, for errors
}

func (c *canon) key(f *field) []byte {
	if f.inKeys {
		return c.keys[f.keyStart:f.keyEnd]
	}
	return c.data[f.keyStart:f.keyEnd]
}

func (c *canon) top() error {
	c.pos, c.depth = skipSpace(c.data, 0), 0
	if c.pos == len(c.data) {
		return unexpected(c.data, c.pos, "a value")
	}
	if err := c.value(); err != nil {
		return err
	}
	if c.pos = skipSpace(c.data, c.pos); c.pos != len(c.data) {
		return unexpected(c.data, c.pos, "end of input")
	}
	return nil
}

// value reads the value at c.pos, which is not whitespace nor the end.
func (c *canon) value() error {
	var err error
	switch ch := c.data[c.pos]; ch {
	case '{':
		return c.object()
	case '[':
		return c.array()
	case '"':
		return c.string()
	case 't', 'f', 'n':
		start := c.pos
		word := "null"
		if ch == 't' {
			word = "true"
		} else if ch == 'f' {
			word = "false"
		}
		if c.pos, err = literal(c.data, c.pos, word); err != nil {
			return err
		}
		c.out = append(c.out, c.data[start:c.pos]...)
		return nil
	default:
		if ch != '-' && !isDigit(ch) {
			return unexpected(c.data, c.pos, "a value")
		}
		var n int64
		if n, c.pos, err = scanNumber(c.data, c.pos, c.floats); err != nil {
			return err
		}
		c.out = strconv.AppendInt(c.out, n, 10)
		return nil
	}
}

func (c *canon) string() error {
	start := c.pos
	end, escaped, err := scanString(c.data, start)
	if err != nil {
		return err
	}
	c.pos = end
	if !escaped {
		// Without escapes, every byte of the input stands for itself in
		// canonical form too.
		c.out = append(c.out, c.data[start:end]...)
		return nil
	}
	c.out = append(c.out, '"')
	c.out = appendString(c.out, c.data[start+1:end-1], true)
	c.out = append(c.out, '"')
	return nil
}

func (c *canon) enter() error {
	if c.depth >= c.maxDepth {
		return errAt(c.pos, ErrTooDeep, "")
	}
	c.depth++
	c.pos = skipSpace(c.data, c.pos+1)
	return nil
}

func (c *canon) object() error {
	if err := c.enter(); err != nil {
		return err
	}
	open := len(c.out)
	c.out = append(c.out, '{')
	base, keysBase := len(c.fields), len(c.keys)
	if c.pos < len(c.data) && c.data[c.pos] == '}' {
		c.pos++
		c.depth--
		c.out = append(c.out, '}')
		return nil
	}
	for {
		if c.pos >= len(c.data) || c.data[c.pos] != '"' {
			return unexpected(c.data, c.pos, "a string key")
		}
		if len(c.fields) > base {
			c.out = append(c.out, ',')
		}
		f := field{off: c.pos, start: len(c.out)}
		end, escaped, err := scanString(c.data, c.pos)
		if err != nil {
			return err
		}
		if escaped {
			f.inKeys, f.keyStart = true, len(c.keys)
			c.keys = appendString(c.keys, c.data[c.pos+1:end-1], false)
			f.keyEnd = len(c.keys)
		} else {
			f.keyStart, f.keyEnd = c.pos+1, end-1
		}
		if err := c.string(); err != nil {
			return err
		}
		if c.pos = skipSpace(c.data, c.pos); c.pos >= len(c.data) || c.data[c.pos] != ':' {
			return unexpected(c.data, c.pos, "':'")
		}
		c.out = append(c.out, ':')
		if c.pos = skipSpace(c.data, c.pos+1); c.pos >= len(c.data) {
			return unexpected(c.data, c.pos, "a value")
		}
		if err := c.value(); err != nil {
			return err
		}
		f.end = len(c.out)
		c.fields = append(c.fields, f)
		if c.pos = skipSpace(c.data, c.pos); c.pos < len(c.data) && c.data[c.pos] == ',' {
			c.pos = skipSpace(c.data, c.pos+1)
			continue
		}
		if c.pos >= len(c.data) || c.data[c.pos] != '}' {
			return unexpected(c.data, c.pos, "',' or '}'")
		}
		c.pos++
		break
	}
	c.depth--
	fs := c.fields[base:]
	sorted := true
	for i := 1; i < len(fs); i++ {
		switch bytes.Compare(c.key(&fs[i-1]), c.key(&fs[i])) {
		case 0:
			return c.duplicate(fs)
		case 1:
			sorted = false
		}
	}
	if !sorted {
		slices.SortFunc(fs, func(a, b field) int { return bytes.Compare(c.key(&a), c.key(&b)) })
		for i := 1; i < len(fs); i++ {
			if bytes.Equal(c.key(&fs[i-1]), c.key(&fs[i])) {
				return c.duplicate(fs)
			}
		}
		// Members start after the '{' or after a ','; write them back in
		// order with their commas.
		body := open + 1
		if c.moved += len(c.out) - body; c.moved > c.maxMove {
			return errMovedTooMuch
		}
		c.tmp = append(c.tmp[:0], c.out[body:]...)
		c.out = c.out[:body]
		for i := range fs {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			c.out = append(c.out, c.tmp[fs[i].start-body:fs[i].end-body]...)
		}
	}
	c.out = append(c.out, '}')
	c.fields, c.keys = c.fields[:base], c.keys[:keysBase]
	return nil
}

// duplicate reports the first key, in input order, that repeats an
// earlier one: the error Decode gives.
func (c *canon) duplicate(fs []field) error {
	slices.SortFunc(fs, func(a, b field) int { return cmp.Compare(a.off, b.off) })
	ms := make([]member, len(fs))
	for i := range fs {
		ms[i] = member{key: string(c.key(&fs[i])), off: fs[i].off}
	}
	return duplicate(ms)
}

func (c *canon) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.out = append(c.out, '[')
	if c.pos < len(c.data) && c.data[c.pos] == ']' {
		c.pos++
		c.depth--
		c.out = append(c.out, ']')
		return nil
	}
	for {
		if c.pos >= len(c.data) {
			return unexpected(c.data, c.pos, "a value")
		}
		if err := c.value(); err != nil {
			return err
		}
		if c.pos = skipSpace(c.data, c.pos); c.pos < len(c.data) && c.data[c.pos] == ',' {
			c.pos = skipSpace(c.data, c.pos+1)
			c.out = append(c.out, ',')
			continue
		}
		if c.pos >= len(c.data) || c.data[c.pos] != ']' {
			return unexpected(c.data, c.pos, "',' or ']'")
		}
		c.pos++
		c.depth--
		c.out = append(c.out, ']')
		return nil
	}
}
