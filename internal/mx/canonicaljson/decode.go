package canonicaljson

import (
	"sync"
	"unicode/utf8"
)

// Limits bound what Decode and Canonicalize accept.
type Limits struct {
	// MaxDepth bounds the nesting of objects and arrays: a bare scalar is
	// depth 0, [] is 1, [[]] is 2. 0 means DefaultLimits.MaxDepth; values
	// above 10,000 mean 10,000 (Encode's own bound).
	MaxDepth int
	// MaxSize bounds the input, in bytes. 0 means DefaultLimits.MaxSize.
	MaxSize int
	// IntegralFloats accepts numbers written with a fraction or an exponent
	// when their value is an integer in range, as the spec's example
	// {"a": -0, "b": 1e10} → {"a":0,"b":10000000000} does. Matrix servers
	// (Synapse, and rooms from version 6 on, which "strictly enforce" the
	// format) refuse such numbers, so it is off unless asked for.
	IntegralFloats bool
}

// DefaultLimits are generous for events (at most 65,536 bytes) and bound
// what a hostile peer can make us allocate. The depth is about what
// Python's json module reaches under its default recursion limit (995 in
// CPython 3.11; Synapse parses with it): a shallower bound would refuse
// events Synapse accepts.
var DefaultLimits = Limits{MaxDepth: 1000, MaxSize: 1 << 20}

// maxDepth bounds nesting everywhere, including in Encode, which would
// otherwise recurse without end on a value that contains itself.
const maxDepth = 10000

func (l Limits) resolve() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	l.MaxDepth = min(l.MaxDepth, maxDepth)
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultLimits.MaxSize
	}
	return l
}

// Decode parses JSON strictly into map[string]any, []any, string, int64,
// bool and nil. Refused, with an *Error: numbers with a fraction or an
// exponent, integers outside [MinInt, MaxInt], leading zeros, NaN and
// Infinity, duplicate keys, invalid UTF-8 (raw, or escaped lone
// surrogates), invalid escapes, raw control characters in strings, a byte
// order mark, trailing data, and input beyond DefaultLimits. Insignificant
// whitespace is allowed; -0 reads as 0.
func Decode(raw []byte) (any, error) { return DecodeLimits(raw, DefaultLimits) }

// DecodeLimits is Decode with explicit limits.
func DecodeLimits(raw []byte, l Limits) (any, error) {
	l = l.resolve()
	if len(raw) > l.MaxSize {
		return nil, errAt(l.MaxSize, ErrTooLarge, "")
	}
	d := decoders.Get().(*decoder)
	d.data, d.floats, d.maxDepth = raw, l.IntegralFloats, l.MaxDepth
	v, err := d.top()
	d.data = nil
	if cap(d.buf) > 1<<16 || cap(d.members) > 1<<12 || cap(d.elems) > 1<<12 {
		d.buf, d.members, d.elems = nil, nil, nil
	}
	decoders.Put(d)
	if err != nil {
		return nil, err
	}
	return v, nil
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

type decoder struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
	floats   bool
	members  []member // open objects' members, innermost last
	elems    []any    // open arrays' elements, innermost last
	buf      []byte   // unescaping
}

type member struct {
	key string
	val any
	off int
}

func (d *decoder) top() (any, error) {
	d.pos, d.depth = skipSpace(d.data, 0), 0
	if d.pos == len(d.data) {
		return nil, unexpected(d.data, d.pos, "a value")
	}
	v, err := d.value()
	// Drop references into the value so the pool does not keep it alive.
	clear(d.members[:cap(d.members)])
	clear(d.elems[:cap(d.elems)])
	d.members, d.elems = d.members[:0], d.elems[:0]
	if err != nil {
		return nil, err
	}
	if d.pos = skipSpace(d.data, d.pos); d.pos != len(d.data) {
		return nil, unexpected(d.data, d.pos, "end of input")
	}
	return v, nil
}

// value reads the value at d.pos, which is not whitespace nor the end.
func (d *decoder) value() (any, error) {
	var err error
	switch c := d.data[d.pos]; c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		return d.string()
	case 't':
		d.pos, err = literal(d.data, d.pos, "true")
		return true, err
	case 'f':
		d.pos, err = literal(d.data, d.pos, "false")
		return false, err
	case 'n':
		d.pos, err = literal(d.data, d.pos, "null")
		return nil, err
	default:
		if c != '-' && !isDigit(c) {
			return nil, unexpected(d.data, d.pos, "a value")
		}
		var n int64
		n, d.pos, err = scanNumber(d.data, d.pos, d.floats)
		if err != nil {
			return nil, err
		}
		return n, nil
	}
}

func (d *decoder) string() (string, error) {
	start := d.pos
	end, escaped, err := scanString(d.data, start)
	if err != nil {
		return "", err
	}
	d.pos = end
	if !escaped {
		return string(d.data[start+1 : end-1]), nil
	}
	d.buf = appendString(d.buf[:0], d.data[start+1:end-1], false)
	return string(d.buf), nil
}

// key is string for object keys: the keys of events come from a small
// set, so those are not allocated again for every event.
func (d *decoder) key() (string, error) {
	start := d.pos
	end, escaped, err := scanString(d.data, start)
	if err != nil {
		return "", err
	}
	d.pos = end
	if escaped {
		d.buf = appendString(d.buf[:0], d.data[start+1:end-1], false)
		return string(d.buf), nil
	}
	if k, ok := commonKeys[string(d.data[start+1:end-1])]; ok {
		return k, nil
	}
	return string(d.data[start+1 : end-1]), nil
}

var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		// PDUs and client events
		"auth_events", "content", "depth", "event_id", "hashes", "sha256", "origin",
		"origin_server_ts", "prev_events", "prev_state", "redacts", "room_id", "sender",
		"signatures", "state_key", "type", "unsigned", "age", "age_ts", "membership",
		"transaction_id", "prev_content", "replaces_state", "invite_room_state", "redacted_because",
		// common content
		"body", "msgtype", "format", "formatted_body", "m.relates_to", "rel_type", "event_id",
		"m.mentions", "user_ids", "room", "displayname", "avatar_url", "reason", "join_authorised_via_users_server",
		"creator", "room_version", "predecessor", "m.federate", "join_rule", "allow", "history_visibility",
		"users", "users_default", "events", "events_default", "state_default", "ban", "kick", "redact",
		"invite", "notifications", "name", "topic", "alias", "alt_aliases", "url", "info", "mimetype",
		"size", "w", "h", "thumbnail_url", "thumbnail_info", "key", "algorithm", "ciphertext",
		"device_id", "sender_key", "session_id", "via", "third_party_invite", "signed", "mxid", "token",
		"additional_creators", "guest_access", "m.new_content", "m.in_reply_to",
		// federation
		"pdus", "edus", "edu_type", "server_name", "verify_keys", "old_verify_keys", "valid_until_ts",
		"expired_ts", "auth_chain", "state", "event", "room_state",
	} {
		m[k] = k
	}
	return m
}()

// enter and leave bracket a container, bounding the depth.
func (d *decoder) enter() error {
	if d.depth >= d.maxDepth {
		return errAt(d.pos, ErrTooDeep, "")
	}
	d.depth++
	d.pos = skipSpace(d.data, d.pos+1)
	return nil
}

func (d *decoder) object() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	base := len(d.members)
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return map[string]any{}, nil
	}
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, unexpected(d.data, d.pos, "a string key")
		}
		off := d.pos
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		if d.pos = skipSpace(d.data, d.pos); d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, unexpected(d.data, d.pos, "':'")
		}
		if d.pos = skipSpace(d.data, d.pos+1); d.pos >= len(d.data) {
			return nil, unexpected(d.data, d.pos, "a value")
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.members = append(d.members, member{k, v, off})
		if d.pos = skipSpace(d.data, d.pos); d.pos < len(d.data) && d.data[d.pos] == ',' {
			d.pos = skipSpace(d.data, d.pos+1)
			continue
		}
		if d.pos >= len(d.data) || d.data[d.pos] != '}' {
			return nil, unexpected(d.data, d.pos, "',' or '}'")
		}
		d.pos++
		break
	}
	d.depth--
	ms := d.members[base:]
	m := make(map[string]any, len(ms))
	for _, e := range ms {
		m[e.key] = e.val
	}
	if len(m) != len(ms) {
		return nil, duplicate(ms)
	}
	clear(ms)
	d.members = d.members[:base]
	return m, nil
}

// duplicate reports the second occurrence of a key in ms, which has one.
func duplicate(ms []member) error {
	seen := make(map[string]bool, len(ms))
	for _, e := range ms {
		if seen[e.key] {
			return errAt(e.off, ErrDuplicateKey, quoteKey(e.key))
		}
		seen[e.key] = true
	}
	return ErrDuplicateKey // unreachable: callers saw a duplicate
}

func quoteKey(k string) string {
	if len(k) > 64 {
		n := 64
		for n > 0 && !utf8.RuneStart(k[n]) {
			n--
		}
		k = k[:n] + "…"
	}
	b, _ := AppendEncode(nil, k)
	return string(b)
}

func (d *decoder) array() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	base := len(d.elems)
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return []any{}, nil
	}
	for {
		if d.pos >= len(d.data) {
			return nil, unexpected(d.data, d.pos, "a value")
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.elems = append(d.elems, v)
		if d.pos = skipSpace(d.data, d.pos); d.pos < len(d.data) && d.data[d.pos] == ',' {
			d.pos = skipSpace(d.data, d.pos+1)
			continue
		}
		if d.pos >= len(d.data) || d.data[d.pos] != ']' {
			return nil, unexpected(d.data, d.pos, "',' or ']'")
		}
		d.pos++
		break
	}
	d.depth--
	a := make([]any, len(d.elems)-base)
	copy(a, d.elems[base:])
	clear(d.elems[base:])
	d.elems = d.elems[:base]
	return a, nil
}
