package modhost

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// FailureKind says how a callback failed.
type FailureKind string

const (
	FailError   FailureKind = "error"   // the callback returned an error (Synapse: raised)
	FailPanic   FailureKind = "panic"   // the callback panicked
	FailTimeout FailureKind = "timeout" // the callback outlived its deadline
	FailInvalid FailureKind = "invalid" // the callback returned a value outside its type's range
	// FailOverload: too many of the module's calls are still running (hung
	// past their deadline); the call is failed at once instead of piling up
	// another goroutine.
	FailOverload FailureKind = "overload"
)

// MaxInflight bounds a module's calls that have not returned. A module that
// hangs on every call would otherwise grow one goroutine per request.
const MaxInflight = 1024

// CallbackError is a failed callback whose failure policy is to fail the
// request: the client gets 500 M_UNKNOWN, as when a Synapse module raises.
type CallbackError struct {
	Module   string
	Callback string
	Kind     FailureKind
	Err      error
}

func (e *CallbackError) Error() string {
	return fmt.Sprintf("module %q callback %s failed (%s): %v", e.Module, e.Callback, e.Kind, e.Err)
}

func (e *CallbackError) Unwrap() error { return e.Err }

// policy is what a failed callback counts as.
type policy int

const (
	policyFailRequest policy = iota // the request fails with 500
	policyAllow                     // as if the callback had passed (logged)
	policyDeny                      // as if the callback had rejected
)

// policy resolves the entry's on_error against the category's default.
func (m *loaded) policy(def policy) policy {
	switch m.onError {
	case "allow":
		return policyAllow
	case "deny":
		return policyDeny
	}
	return def
}

type result[R any] struct {
	v   R
	err error
}

// invoke runs one callback with the module's deadline. The callback runs on
// its own goroutine so that a hung module cannot hold the request past the
// deadline; it is also shielded from the client going away (as Synapse runs
// callbacks to completion), so only the deadline cancels its context.
func invoke[R any](ctx context.Context, h *Host, m *loaded, callback string, fn func(context.Context) (R, error)) (R, error) {
	if m.inflight.Load() >= MaxInflight {
		m.log.Error("module has too many calls still running; failing this one at once", "callback", callback, "inflight", m.inflight.Load())
		h.metrics.failure(m.name, callback, FailOverload)
		var zero R
		return zero, &CallbackError{Module: m.name, Callback: callback, Kind: FailOverload, Err: errors.New("too many calls still running")}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.timeout)
	defer cancel()
	ch := make(chan result[R], 1)
	start := time.Now()
	m.inflight.Add(1)
	go func() {
		defer m.inflight.Add(-1)
		defer func() {
			if r := recover(); r != nil {
				ch <- result[R]{err: &panicError{value: r, stack: debug.Stack()}}
			}
		}()
		v, err := fn(cctx)
		ch <- result[R]{v: v, err: err}
	}()
	var res result[R]
	select {
	case res = <-ch:
	case <-cctx.Done():
		res.err = &timeoutError{after: m.timeout}
	}
	h.metrics.observe(m.name, callback, time.Since(start))
	if res.err == nil {
		return res.v, nil
	}
	kind := FailError
	var pe *panicError
	var te *timeoutError
	switch {
	case errors.As(res.err, &pe):
		kind = FailPanic
		m.log.Error("module callback panicked", "callback", callback, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
	case errors.As(res.err, &te):
		kind = FailTimeout
		m.log.Error("module callback timed out", "callback", callback, "timeout", m.timeout.String())
	default:
		m.log.Error("module callback failed", "callback", callback, "err", res.err)
	}
	h.metrics.failure(m.name, callback, kind)
	var zero R
	return zero, &CallbackError{Module: m.name, Callback: callback, Kind: kind, Err: res.err}
}

type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string { return fmt.Sprintf("no answer within %s", e.after) }

// invalid makes a CallbackError for a return value outside the callback's
// type (Synapse raises an AssertionError there: 500).
func (h *Host) invalid(m *loaded, callback string, v any) error {
	m.log.Error("module callback returned an invalid value", "callback", callback, "value", fmt.Sprint(v))
	h.metrics.failure(m.name, callback, FailInvalid)
	return &CallbackError{Module: m.name, Callback: callback, Kind: FailInvalid, Err: fmt.Errorf("invalid return value %v", v)}
}
