package syncapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Token is a position in every stream /sync reads: the event stream (which
// carries joins, invites and leaves too), account data, receipts and
// typing. Clients treat it as opaque; its text is s<events>_<account
// data>_<receipts>_<typing>.
type Token struct {
	Events      int64
	AccountData int64
	Receipts    int64
	Typing      int64
}

func (t Token) String() string {
	return fmt.Sprintf("s%d_%d_%d_%d", t.Events, t.AccountData, t.Receipts, t.Typing)
}

// ErrBadToken is a token that is not one of ours.
var ErrBadToken = errors.New("syncapi: invalid stream token")

// ParseToken reads a token written by String.
func ParseToken(s string) (Token, error) {
	rest, ok := strings.CutPrefix(s, "s")
	if !ok {
		return Token{}, ErrBadToken
	}
	parts := strings.Split(rest, "_")
	if len(parts) != 4 {
		return Token{}, ErrBadToken
	}
	var v [4]int64
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 || (len(p) > 1 && p[0] == '0') {
			return Token{}, ErrBadToken
		}
		v[i] = n
	}
	return Token{Events: v[0], AccountData: v[1], Receipts: v[2], Typing: v[3]}, nil
}

// A room position (/messages, /context and a timeline's prev_batch) is the
// point just after the event at that stream position: t<pos>. /messages
// also takes a sync token, whose event position it uses.

// roomPos formats a room position.
func roomPos(pos int64) string { return "t" + strconv.FormatInt(pos, 10) }

// parseRoomPos reads a room position or a sync token.
func parseRoomPos(s string) (int64, error) {
	if rest, ok := strings.CutPrefix(s, "t"); ok {
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || n < 0 {
			return 0, ErrBadToken
		}
		return n, nil
	}
	t, err := ParseToken(s)
	if err != nil {
		return 0, err
	}
	return t.Events, nil
}
