//go:build wasip1

// Command wordfilter is an example Sluice module for the `wasm` sandbox: it
// rejects messages whose body contains a listed word.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o wordfilter.wasm ./modules/wasm/guest/example/wordfilter
//
// Configuration (the `config:` under the wasm module's `config:`):
//
//	words: [viagra, "free bitcoin"]  # matched case-insensitively, on word boundaries
//	errcode: M_FORBIDDEN             # the errcode of a rejection (default M_FORBIDDEN)
package main

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/sluice-im/sluice/modules/wasm/guest"
)

type config struct {
	Words   []string `json:"words"`
	Errcode string   `json:"errcode"`
}

var (
	words   []string
	errcode = "M_FORBIDDEN"
)

func init() {
	guest.Register(guest.Module{
		Init:              setup,
		CheckEventForSpam: checkEvent,
	})
}

func setup(raw []byte) error {
	var c config
	if string(raw) != "null" {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return errors.New("wordfilter: config: " + err.Error())
		}
	}
	if len(c.Words) == 0 {
		return errors.New("wordfilter: config: words: give at least one word")
	}
	for _, w := range c.Words {
		w = strings.ToLower(strings.TrimSpace(w))
		if w == "" {
			return errors.New("wordfilter: config: words: an empty word would match everything")
		}
		words = append(words, w)
	}
	if c.Errcode != "" {
		errcode = c.Errcode
	}
	return nil
}

// checkEvent reads only the event's type and body from the host: the event
// is never decoded as a whole.
func checkEvent(ev guest.Event) (guest.Decision, error) {
	if ev.Type() != "m.room.message" {
		return guest.Allow, nil
	}
	body, ok := ev.ContentString("body")
	if !ok {
		return guest.Allow, nil
	}
	body = lower(body)
	for _, w := range words {
		if containsWord(body, w) {
			return guest.Deny(errcode), nil
		}
	}
	return guest.Allow, nil
}

// lowerBuf is reused across calls: an instance serves one call at a time.
var lowerBuf []byte

// lower is strings.ToLower without an allocation per call for ASCII text
// (allocation is what a Go guest pays most for). The result is only valid
// until the next call.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
	}
	lowerBuf = lowerBuf[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lowerBuf = append(lowerBuf, c)
	}
	return unsafe.String(unsafe.SliceData(lowerBuf), len(lowerBuf))
}

// containsWord reports whether w occurs in s with no letter or digit
// directly before or after it.
func containsWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(w)
		if !wordRune(lastRune(s[:start])) && !wordRune(firstRune(s[end:])) {
			return true
		}
		i = start + 1
	}
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func firstRune(s string) rune {
	for _, r := range s {
		return r
	}
	return ' '
}

func lastRune(s string) rune {
	r := ' '
	for _, c := range s {
		r = c
	}
	return r
}

func main() {}
