package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluice-im/sluice/module"
	"github.com/sluice-im/sluice/modules/wasm/guest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// abiVersion is the host/guest interface this host speaks
// (docs/modules/wasm.md).
const abiVersion = 1

// instantiateTimeout bounds starting one instance (the guest's runtime
// initialisation and its Init).
const instantiateTimeout = 30 * time.Second

// compilationCache is shared by every engine of the process: the same
// .wasm file is compiled to machine code once, however many servers (or
// check-config runs) load it.
var compilationCache = wazero.NewCompilationCache()

// engine runs one .wasm module: one wazero runtime, the compiled module,
// and a pool of instances. An instance serves one call at a time; an
// instance whose call failed in the guest (a trap, a panic, memory
// exhausted, the deadline) is closed and replaced, so that no call sees a
// guest left in a broken state.
type engine struct {
	cfg      *parsed
	log      *slog.Logger // nil: guest output is dropped (check-config)
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	modCfg   wazero.ModuleConfig

	idle  chan *instance
	slots chan struct{} // one per live instance, at most cfg.instances

	declared []string // the callbacks the guest implements

	closeOnce sync.Once

	// active counts calls under way, and closing refuses new ones: the
	// runtime is closed (and guest memory unmapped) only once no guest
	// code runs.
	mu      sync.Mutex
	closing bool
	active  sync.WaitGroup
}

type instance struct {
	mod   api.Module
	fns   map[string]api.Function
	stack []uint64
}

// callState is what the host functions of one call read and write. It
// travels in the call's context.
type callState struct {
	args    []string
	ev      module.Event
	evJSON  []byte         // ev.JSON(), fetched once
	content map[string]any // ev.Content(), fetched once

	errcode string
	errmsg  string
	config  []byte    // sluice_start only
	declare *[]string // sluice_start only
	log     *slog.Logger
}

type stateKey struct{}

func newEngine(cfg *parsed, log *slog.Logger) (*engine, error) {
	ctx := context.Background()
	rc := wazero.NewRuntimeConfig().
		WithCompilationCache(compilationCache).
		WithMemoryLimitPages(cfg.memoryPages).
		// A guest that never returns is stopped at its call's deadline.
		WithCloseOnContextDone(true)
	e := &engine{cfg: cfg, log: log, rt: wazero.NewRuntimeWithConfig(ctx, rc),
		idle: make(chan *instance, cfg.instances), slots: make(chan struct{}, cfg.instances)}
	ok := false
	defer func() {
		if !ok {
			e.rt.Close(ctx)
		}
	}()
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		return nil, fmt.Errorf("wasm: WASI: %w", err)
	}
	if err := e.hostModule(ctx); err != nil {
		return nil, err
	}
	compiled, err := e.rt.CompileModule(ctx, cfg.wasm)
	if err != nil {
		return nil, fmt.Errorf("wasm: %s is not a usable WebAssembly module: %w", cfg.path, err)
	}
	e.compiled = compiled
	for _, name := range []string{"sluice_abi_version", "sluice_start"} {
		def, found := compiled.ExportedFunctions()[name]
		if !found {
			return nil, fmt.Errorf("wasm: %s does not export %s: it was not built with Sluice's guest SDK (or ABI %d)", cfg.path, name, abiVersion)
		}
		if err := checkSignature(name, def); err != nil {
			return nil, fmt.Errorf("wasm: %s: %w", cfg.path, err)
		}
	}

	mc := wazero.NewModuleConfig().
		WithName(""). // several instances of one module in one runtime
		WithStartFunctions("_initialize").
		WithStdout(e.output(slog.LevelInfo)).
		WithStderr(e.output(slog.LevelWarn))
	if cfg.allowClock {
		// Sleeps are cut into short ones: a guest only notices its
		// deadline when control is back in its code, so one long sleep
		// would hold the call (and its instance) past the deadline. A Go
		// guest's scheduler sleeps again after an early wake-up.
		mc = mc.WithSysWalltime().WithSysNanotime().WithNanosleep(func(ns int64) {
			time.Sleep(min(time.Duration(ns), 10*time.Millisecond))
		})
	}
	if cfg.allowRandom {
		mc = mc.WithRandSource(rand.Reader)
	}
	e.modCfg = mc

	// The first instance is made now: it checks the ABI version, runs the
	// guest's Init with its config and learns the callbacks.
	e.slots <- struct{}{}
	inst, err := e.instantiate(ctx, &e.declared)
	if err != nil {
		<-e.slots
		return nil, err
	}
	e.idle <- inst
	ok = true
	return e, nil
}

func (e *engine) close() {
	e.closeOnce.Do(func() { e.rt.Close(context.Background()) })
}

// shutdown refuses new calls, waits (until ctx ends) for those under way,
// then closes. A call still running when ctx ends keeps the runtime open:
// it is left to the process's exit rather than unmapped under the guest.
func (e *engine) shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.active.Wait(); close(done) }()
	select {
	case <-done:
		e.close()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wasm: %s: calls still running at shutdown: %w", e.cfg.path, ctx.Err())
	}
}

// errClosing: a call after the module began to close.
var errClosing = errors.New("wasm: the module is closing")

// output is where a guest's stdout or stderr goes: the module's log, a
// line at a time (a Go guest's panic message arrives on stderr).
func (e *engine) output(level slog.Level) *lineLogger {
	return &lineLogger{log: e.log, level: level}
}

// instantiate starts a new instance and runs sluice_start. declared, when
// not nil, receives the callbacks the guest declares.
func (e *engine) instantiate(ctx context.Context, declared *[]string) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, instantiateTimeout)
	defer cancel()
	var names []string
	st := &callState{config: e.cfg.guestConfig, declare: &names, log: e.log}
	ctx = context.WithValue(ctx, stateKey{}, st)
	ctx = experimental.WithMemoryAllocator(ctx, memoryAllocator)
	mod, err := e.rt.InstantiateModule(ctx, e.compiled, e.modCfg)
	if err != nil {
		return nil, fmt.Errorf("wasm: starting %s: %w", e.cfg.path, err)
	}
	inst := &instance{mod: mod, fns: map[string]api.Function{}, stack: make([]uint64, 1)}
	fail := func(err error) (*instance, error) {
		mod.Close(context.Background())
		return nil, err
	}
	res, err := mod.ExportedFunction("sluice_abi_version").Call(ctx)
	if err != nil {
		return fail(fmt.Errorf("wasm: %s: sluice_abi_version: %w", e.cfg.path, err))
	}
	if v := uint32(res[0]); v != abiVersion {
		return fail(fmt.Errorf("wasm: %s speaks guest ABI %d; this Sluice speaks %d", e.cfg.path, v, abiVersion))
	}
	res, err = mod.ExportedFunction("sluice_start").Call(ctx)
	if err != nil {
		return fail(fmt.Errorf("wasm: %s: starting the guest: %w", e.cfg.path, err))
	}
	if int32(uint32(res[0])) != 0 {
		msg := st.errmsg
		if msg == "" {
			msg = "its start-up failed"
		}
		return fail(fmt.Errorf("wasm: %s: the guest refused to start: %s", e.cfg.path, msg))
	}
	for _, name := range names {
		fn := mod.ExportedFunction("sluice_" + name)
		if fn == nil {
			return fail(fmt.Errorf("wasm: %s declares %s but does not export sluice_%s", e.cfg.path, name, name))
		}
		if err := checkSignature("sluice_"+name, fn.Definition()); err != nil {
			return fail(fmt.Errorf("wasm: %s: %w", e.cfg.path, err))
		}
		inst.fns[name] = fn
	}
	if declared != nil {
		*declared = names
	}
	return inst, nil
}

// checkSignature refuses an ABI export that is not () -> i32.
func checkSignature(name string, def api.FunctionDefinition) error {
	if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 1 || def.ResultTypes()[0] != api.ValueTypeI32 {
		return fmt.Errorf("export %s must be a function () -> i32 (guest ABI %d)", name, abiVersion)
	}
	return nil
}

// get takes an idle instance, or starts a new one when fewer than the
// limit are alive, or waits for one until ctx ends.
func (e *engine) get(ctx context.Context) (*instance, error) {
	select {
	case inst := <-e.idle:
		return inst, nil
	default:
	}
	select {
	case inst := <-e.idle:
		return inst, nil
	case e.slots <- struct{}{}:
		// Starting an instance (a Go guest's runtime start takes several
		// milliseconds) is not bounded by this call's deadline: a short
		// deadline would otherwise fail every start after a replacement.
		inst, err := e.instantiate(context.WithoutCancel(ctx), nil)
		if err != nil {
			<-e.slots
			return nil, err
		}
		return inst, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wasm: no instance free before the deadline: %w", ctx.Err())
	}
}

func (e *engine) put(inst *instance) { e.idle <- inst }

// discard closes an instance whose guest state can no longer be trusted.
func (e *engine) discard(inst *instance) {
	inst.mod.Close(context.Background())
	<-e.slots
}

// Results of a callback export (docs/modules/wasm.md).
const (
	resultAllow int32 = 0
	resultDeny  int32 = 1
	resultError int32 = -1
)

// errGuest is a callback the guest failed on purpose (set_error).
type errGuest struct{ msg string }

func (e *errGuest) Error() string { return "wasm guest: " + e.msg }

// call runs one callback export and returns its result.
func (e *engine) call(ctx context.Context, name string, st *callState) (int32, error) {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return 0, errClosing
	}
	e.active.Add(1)
	e.mu.Unlock()
	defer e.active.Done()
	_ = growStack()
	inst, err := e.get(ctx)
	if err != nil {
		return 0, err
	}
	fn := inst.fns[name]
	if fn == nil {
		e.put(inst)
		return 0, fmt.Errorf("wasm: the guest does not implement %s", name)
	}
	st.log = e.log
	err = fn.CallWithStack(context.WithValue(ctx, stateKey{}, st), inst.stack)
	if err != nil {
		e.discard(inst)
		return 0, describe(err)
	}
	r := int32(uint32(inst.stack[0]))
	if ctx.Err() != nil {
		// The deadline passed as the call returned: wazero may close the
		// instance an instant later, so it is not put back.
		e.discard(inst)
	} else {
		e.put(inst)
	}
	if r == resultError {
		return 0, &errGuest{msg: st.errmsg}
	}
	return r, nil
}

// growStack makes the calling goroutine's stack big enough for a guest
// call at once, while the stack is still shallow. The module host runs
// each callback on a fresh goroutine, whose small stack would otherwise
// grow (and be copied, frames adjusted) a few times inside every guest
// call: more than the rest of a short call costs.
//
//go:noinline
func growStack() byte {
	var pad [16 << 10]byte
	// An index the compiler cannot know keeps the array (and the frame).
	pad[stackIndex%len(pad)] = 1
	return pad[(stackIndex*7)%len(pad)]
}

// stackIndex is only read (written by no one): growStack's callers never
// race on it.
var stackIndex = 1

// describe says what happened to a guest whose call failed.
func describe(err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("wasm guest: stopped at its deadline: %w", err)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("wasm guest: cancelled: %w", err)
		}
		// A Go guest that panics or runs out of memory prints why on
		// stderr (logged) and exits with code 2.
		return fmt.Errorf("wasm guest: exited with code %d (a panic or memory exhausted; see the log): %w", exit.ExitCode(), err)
	}
	return fmt.Errorf("wasm guest: trapped: %w", err)
}

// hostModule defines the "sluice" imports every guest may call.
func (e *engine) hostModule(ctx context.Context) error {
	i32 := api.ValueTypeI32
	i64 := api.ValueTypeI64
	b := e.rt.NewHostModuleBuilder("sluice")
	fn := func(name string, f api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(f, params, results).Export(name)
	}
	// arg(index, buf, cap) -> len | -1
	fn("arg", func(ctx context.Context, m api.Module, stack []uint64) {
		st := state(ctx)
		i := int(uint32(stack[0]))
		if i >= len(st.args) {
			stack[0] = api.EncodeI32(-1)
			return
		}
		stack[0] = copyOut(m, stack[1], stack[2], st.args[i])
	}, []api.ValueType{i32, i32, i32}, []api.ValueType{i32})
	// event_field(field, buf, cap) -> len | -1
	fn("event_field", func(ctx context.Context, m api.Module, stack []uint64) {
		st := state(ctx)
		v, ok := st.eventField(uint32(stack[0]))
		if !ok {
			stack[0] = api.EncodeI32(-1)
			return
		}
		stack[0] = copyOut(m, stack[1], stack[2], v)
	}, []api.ValueType{i32, i32, i32}, []api.ValueType{i32})
	// event_ts() -> origin_server_ts
	fn("event_ts", func(ctx context.Context, m api.Module, stack []uint64) {
		st := state(ctx)
		var ts int64
		if st.ev != nil {
			ts = st.ev.OriginServerTS()
		}
		stack[0] = api.EncodeI64(ts)
	}, nil, []api.ValueType{i64})
	// content_string(key, keyLen, buf, cap) -> len | -1
	fn("content_string", func(ctx context.Context, m api.Module, stack []uint64) {
		st := state(ctx)
		key := readString(m, stack[0], stack[1])
		if st.ev == nil {
			stack[0] = api.EncodeI32(-1)
			return
		}
		// The common case, a present non-empty string, without copying
		// the content; "" needs the content to tell absent from empty.
		v, ok := st.ev.ContentString(key), true
		if v == "" {
			if st.content == nil {
				st.content = st.ev.Content()
			}
			v, ok = st.content[key].(string)
		}
		if !ok {
			stack[0] = api.EncodeI32(-1)
			return
		}
		stack[0] = copyOut(m, stack[2], stack[3], v)
	}, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32})
	// config(buf, cap) -> len
	fn("config", func(ctx context.Context, m api.Module, stack []uint64) {
		st := state(ctx)
		stack[0] = copyOut(m, stack[0], stack[1], string(st.config))
	}, []api.ValueType{i32, i32}, []api.ValueType{i32})
	fn("set_errcode", func(ctx context.Context, m api.Module, stack []uint64) {
		state(ctx).errcode = readString(m, stack[0], stack[1])
	}, []api.ValueType{i32, i32}, nil)
	fn("set_error", func(ctx context.Context, m api.Module, stack []uint64) {
		state(ctx).errmsg = readString(m, stack[0], stack[1])
	}, []api.ValueType{i32, i32}, nil)
	fn("log", func(ctx context.Context, m api.Module, stack []uint64) {
		st := state(ctx)
		msg := readString(m, stack[1], stack[2])
		if st.log == nil {
			return
		}
		if int32(uint32(stack[0])) > 0 {
			st.log.Error("wasm guest: " + msg)
		} else {
			st.log.Info("wasm guest: " + msg)
		}
	}, []api.ValueType{i32, i32, i32}, nil)
	fn("declare", func(ctx context.Context, m api.Module, stack []uint64) {
		st := state(ctx)
		if st.declare == nil {
			panic("declare outside sluice_start")
		}
		*st.declare = append(*st.declare, readString(m, stack[0], stack[1]))
	}, []api.ValueType{i32, i32}, nil)
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasm: host functions: %w", err)
	}
	return nil
}

func state(ctx context.Context) *callState {
	st, _ := ctx.Value(stateKey{}).(*callState)
	if st == nil {
		// A host function called outside a call (e.g. from the guest's
		// own start-up code): it sees an empty call.
		return &callState{}
	}
	return st
}

func (st *callState) eventField(f uint32) (string, bool) {
	ev := st.ev
	if ev == nil {
		return "", false
	}
	switch f {
	case guest.FieldEventID:
		return ev.EventID(), true
	case guest.FieldType:
		return ev.Type(), true
	case guest.FieldSender:
		return ev.Sender(), true
	case guest.FieldRoomID:
		return ev.RoomID(), true
	case guest.FieldStateKey:
		return ev.StateKey()
	case guest.FieldRedacts:
		return ev.Redacts(), true
	case guest.FieldMembership:
		return ev.Membership(), true
	case guest.FieldContent:
		if st.evJSON == nil {
			st.evJSON = ev.JSON()
		}
		var c struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(st.evJSON, &c) != nil || c.Content == nil {
			return "{}", true
		}
		return string(c.Content), true
	case guest.FieldJSON:
		if st.evJSON == nil {
			st.evJSON = ev.JSON()
		}
		return string(st.evJSON), true
	}
	return "", false
}

// copyOut writes v into guest memory at ptr when it fits in capacity, and
// returns its length either way (the guest asks again with a bigger
// buffer). A pointer outside the guest's memory fails the call.
func copyOut(m api.Module, ptr, capacity uint64, v string) uint64 {
	n := uint32(len(v))
	if n <= uint32(capacity) && n > 0 {
		if !m.Memory().WriteString(uint32(ptr), v) {
			panic(fmt.Sprintf("wasm guest: buffer %#x+%d is outside its memory", uint32(ptr), n))
		}
	}
	return api.EncodeI32(int32(n))
}

// maxGuestString bounds what the host reads from the guest at once.
const maxGuestString = 1 << 20

func readString(m api.Module, ptr, n uint64) string {
	if uint32(n) == 0 {
		return ""
	}
	if uint32(n) > maxGuestString {
		panic(fmt.Sprintf("wasm guest: string of %d bytes is over the %d limit", uint32(n), maxGuestString))
	}
	b, ok := m.Memory().Read(uint32(ptr), uint32(n))
	if !ok {
		panic(fmt.Sprintf("wasm guest: string %#x+%d is outside its memory", uint32(ptr), uint32(n)))
	}
	return string(b)
}

// lineLogger logs what a guest writes to stdout or stderr, a line at a
// time, and bounds what it keeps of an unfinished line.
type lineLogger struct {
	mu    sync.Mutex
	log   *slog.Logger
	level slog.Level
	buf   bytes.Buffer
}

func (l *lineLogger) Write(p []byte) (int, error) {
	if l.log == nil {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(l.buf.Next(i+1)), "\r\n")
		l.log.Log(context.Background(), l.level, "wasm guest output", "line", line)
	}
	if l.buf.Len() > 4096 {
		l.log.Log(context.Background(), l.level, "wasm guest output", "line", l.buf.String())
		l.buf.Reset()
	}
	return len(p), nil
}
