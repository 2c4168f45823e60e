package e2e_test

// The wasm module: guests built here with the Go toolchain (GOOS=wasip1),
// loaded into a real server, deciding through the same chains as Go
// modules; and guests that loop, panic or allocate past their memory cap
// failing only their own call. SQLite only: the database plays no part.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/cli"
	"github.com/sluice-im/sluice/internal/testserver"
	"github.com/sluice-im/sluice/internal/wasmtest"
)

func TestWasmWordFilter(t *testing.T) {
	wasm := wasmtest.Build(t, wasmtest.WordFilter)
	c := roomCBStart(t, nil, "  - module: wasm\n    config:\n      path: "+wasm+"\n      config:\n        words: [viagra, free bitcoin]\n        errcode: ORG_EXAMPLE_WORD\n")
	s := c.s
	room := s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c.alice.Token).Expect(t, 200, "").Str("room_id")
	cases := []struct {
		body    string
		allowed bool
	}{
		{"hello there", true},
		{"Buy VIAGRA now", false},
		{"get free bitcoin!", false},
		{"viagras are not a listed word", true},
		{"free  bitcoin (two spaces) is not the phrase", true},
		{"", true},
	}
	for i, tc := range cases {
		r := s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "w"+string(rune('a'+i))), map[string]any{"msgtype": "m.text", "body": tc.body}, c.alice.Token)
		if tc.allowed {
			r.Expect(t, 200, "")
		} else {
			roomExpectError(t, r, 403, "ORG_EXAMPLE_WORD", roomSpamMsg)
		}
	}
	// Other event types pass: the guest only looks at messages.
	s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.topic", ""), map[string]any{"topic": "viagra"}, c.alice.Token).Expect(t, 200, "")
}

func TestWasmConfigErrors(t *testing.T) {
	wasm := wasmtest.Build(t, wasmtest.WordFilter)
	notWasm := filepath.Join(t.TempDir(), "not.wasm")
	if err := os.WriteFile(notWasm, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, config, want string }{
		{"no path", "    config: {}\n", "modules[0].config.path"},
		{"missing file", "    config: {path: /nonexistent/x.wasm}\n", "no such file"},
		{"not wasm", "    config: {path: " + notWasm + "}\n", "is not a usable WebAssembly module"},
		{"guest refuses its config", "    config: {path: " + wasm + ", config: {words: []}}\n", "the guest refused to start: wordfilter: config: words: give at least one word"},
		{"guest config unknown key", "    config: {path: " + wasm + ", config: {words: [x], colour: red}}\n", `unknown field "colour"`},
		{"memory cap below the guest's needs", "    config: {path: " + wasm + ", memory_limit: 64K, config: {words: [x]}}\n", "modules[0].config.path"},
		{"bad memory_limit", "    config: {path: " + wasm + ", memory_limit: lots}\n", "memory_limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := modStartErr(t, "  - module: wasm\n"+tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start-up error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWasmMisbehavingGuest(t *testing.T) {
	wasm := wasmtest.Build(t, wasmtest.Misbehave)
	logs := &lockedBuffer{}
	entry := func(onError string) string {
		e := "  - module: wasm\n    timeout: 500ms\n"
		if onError != "" {
			e += "    on_error: " + onError + "\n"
		}
		return e + "    config: {path: " + wasm + ", memory_limit: 32M, instances: 2}\n"
	}
	c := roomCBStart(t, logs, entry(""))
	s := c.s
	room := s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c.alice.Token).Expect(t, 200, "").Str("room_id")
	send := func(txn, body string) testserver.Response {
		return s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", txn), map[string]any{"msgtype": "m.text", "body": body}, c.alice.Token)
	}
	send("ok0", "fine").Expect(t, 200, "")
	send("deny", "deny").Expect(t, 403, "M_LIMIT_EXCEEDED")
	for _, bad := range []string{"loop", "panic", "alloc", "error"} {
		t.Run(bad, func(t *testing.T) {
			start := time.Now()
			// check_event_for_spam fails closed (500 without internals),
			// as when a Synapse module raises.
			r := send("bad-"+bad, bad)
			roomExpectError(t, r, 500, "M_UNKNOWN", "Internal server error")
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the failed call took %s; the deadline is 500ms", d)
			}
			// The server and the module keep serving.
			send("after-"+bad, "fine").Expect(t, 200, "")
			s.Do(t, "GET", roomCS("account", "whoami"), nil, c.bob.Token).Expect(t, 200, "")
		})
	}
	for _, want := range []string{"misbehave: told to panic", "timed out", "misbehave: told to fail", "trapped", "fatal error: out of memory"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not mention %q", want)
		}
	}

	// Under on_error: allow the same failures let the message through.
	c2 := roomCBStart(t, nil, entry("allow"))
	room2 := c2.s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c2.alice.Token).Expect(t, 200, "").Str("room_id")
	for _, bad := range []string{"panic", "alloc", "loop"} {
		c2.s.Do(t, "PUT", roomCS("rooms", room2, "send", "m.room.message", "x-"+bad), map[string]any{"msgtype": "m.text", "body": bad}, c2.alice.Token).Expect(t, 200, "")
	}
}

func TestWasmCallbackArguments(t *testing.T) {
	wasm := wasmtest.Build(t, wasmtest.Misbehave)
	logs := &lockedBuffer{}
	c := roomCBStart(t, logs, "  - module: wasm\n    config: {path: "+wasm+"}\n")
	s := c.s
	room := s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c.alice.Token).Expect(t, 200, "").Str("room_id")
	ev := s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "f"), map[string]any{"msgtype": "m.text", "body": "fields"}, c.alice.Token).Expect(t, 200, "").Str("event_id")
	s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": c.bob.ID}, c.alice.Token).Expect(t, 200, "")
	s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, c.bob.Token).Expect(t, 200, "")
	roomRegister(t, s, "blocked")
	roomExpectError(t, s.Do(t, "POST", roomCS("rooms", room, "invite"), map[string]any{"user_id": "@blocked:test.local"}, c.alice.Token), 403, "M_FORBIDDEN", "")
	for _, want := range []string{
		ev + "|m.room.message|" + c.alice.ID + "|" + room + "||false|{\"body\":\"fields\",\"msgtype\":\"m.text\"}",
		"user_may_invite " + c.alice.ID + " " + c.bob.ID + " " + room,
		"user_may_join_room " + c.bob.ID + " " + room + " true",
	} {
		// The text log quotes the message: undo its escaping of quotes.
		if !strings.Contains(strings.ReplaceAll(logs.String(), `\"`, `"`), want) {
			t.Errorf("the guest did not log %q; log:\n%s", want, logs.String())
		}
	}
}

// TestWasmSleepingGuest: with the real clock granted, a guest that sleeps
// past its deadline is stopped at the deadline and does not hold its
// (only) instance: the next call is served at once.
func TestWasmSleepingGuest(t *testing.T) {
	wasm := wasmtest.Build(t, wasmtest.Misbehave)
	c := roomCBStart(t, nil, "  - module: wasm\n    timeout: 300ms\n    config: {path: "+wasm+", allow_clock: true, instances: 1}\n")
	room := c.s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c.alice.Token).Expect(t, 200, "").Str("room_id")
	start := time.Now()
	roomExpectError(t, c.s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "z1"), map[string]any{"msgtype": "m.text", "body": "sleep"}, c.alice.Token), 500, "M_UNKNOWN", "")
	c.s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "z2"), map[string]any{"msgtype": "m.text", "body": "fine"}, c.alice.Token).Expect(t, 200, "")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a guest sleeping 5 s held its instance for %s; the deadline is 300ms", d)
	}
}

// TestWasmReplacedInstancesMemory: instances replaced after failures give
// their memory back. (Reserving each instance's whole memory_limit up front
// once made every replacement add it to the process's resident memory:
// this test saw 149 MB then, and nothing now.)
func TestWasmReplacedInstancesMemory(t *testing.T) {
	wasm := wasmtest.Build(t, wasmtest.Misbehave)
	c := roomCBStart(t, nil, "  - module: wasm\n    on_error: allow\n    config: {path: "+wasm+", memory_limit: 64M, instances: 2}\n")
	room := c.s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c.alice.Token).Expect(t, 200, "").Str("room_id")
	before := residentMB(t)
	for i := range 40 {
		c.s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "p"+strconv.Itoa(i)), map[string]any{"msgtype": "m.text", "body": "panic"}, c.alice.Token).Expect(t, 200, "")
	}
	if grew := residentMB(t) - before; grew > 100 {
		t.Errorf("40 replaced instances of 64M grew the process by %d MB", grew)
	}
}

// residentMB is the process's resident memory (Linux), after a GC.
func residentMB(t *testing.T) int {
	runtime.GC()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status here")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}

// TestWasmSandbox: a guest cannot read the host's files, and its clock is
// a fake unless allow_clock grants the real one.
func TestWasmSandbox(t *testing.T) {
	wasm := wasmtest.Build(t, wasmtest.Misbehave)
	year := strconv.Itoa(time.Now().Year())
	for _, clock := range []bool{false, true} {
		logs := &lockedBuffer{}
		c := roomCBStart(t, logs, "  - module: wasm\n    config: {path: "+wasm+", allow_clock: "+strconv.FormatBool(clock)+"}\n")
		room := c.s.Do(t, "POST", roomCS("createRoom"), map[string]any{}, c.alice.Token).Expect(t, 200, "").Str("room_id")
		c.s.Do(t, "PUT", roomCS("rooms", room, "send", "m.room.message", "s"), map[string]any{"msgtype": "m.text", "body": "sandbox"}, c.alice.Token).Expect(t, 200, "")
		if !strings.Contains(logs.String(), "sandbox fs=refused") {
			t.Errorf("allow_clock=%v: the guest read a host file, or did not say; log:\n%s", clock, logs.String())
		}
		if got := strings.Contains(logs.String(), "year="+year); got != clock {
			t.Errorf("allow_clock=%v: the guest saw the real year: %v; log:\n%s", clock, got, logs.String())
		}
	}
}

// TestWasmCheckConfig: `sluice check-config` compiles the guest and runs
// its Init with its config, without starting a server; a relative path is
// taken from the configuration file's directory.
func TestWasmCheckConfig(t *testing.T) {
	wasm := wasmtest.Build(t, wasmtest.WordFilter)
	dir := t.TempDir()
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wordfilter.wasm"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(guestConfig string) string {
		p := filepath.Join(dir, "sluice.yaml")
		text := "server_name: test.local\nmodules:\n  - module: wasm\n    config:\n      path: wordfilter.wasm\n      config: " + guestConfig + "\n"
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var out, errOut bytes.Buffer
	if code := cli.Run(context.Background(), []string{"check-config", "-c", write("{words: [spam]}")}, nil, &out, &errOut); code != 0 {
		t.Fatalf("check-config of a good file: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := cli.Run(context.Background(), []string{"check-config", "-c", write("{words: ['']}")}, nil, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "an empty word would match everything") {
		t.Fatalf("check-config of a config the guest refuses: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
