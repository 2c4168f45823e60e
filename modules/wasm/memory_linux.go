//go:build linux

package wasm

import (
	"sync/atomic"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// A guest's linear memory is one anonymous mapping of its whole
// memory_limit, made without reserving swap. The kernel backs only the
// pages the guest touches, so growing never copies (a Go guest grows its
// memory many times), and freeing an instance returns its pages to the
// system at once. (A Go slice of the whole limit, wazero's option, is
// reused by the Go heap after a replaced instance is collected, and the
// zeroing of every reuse makes the whole limit resident.)
var memoryAllocator experimental.MemoryAllocator = experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return &sliceMemory{buf: make([]byte, 0, capacity), max: max}
	}
	return &mappedMemory{buf: b}
})

type mappedMemory struct {
	buf   []byte
	freed atomic.Bool
}

func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size]
}

// Free unmaps the memory. wazero frees a memory when its module is closed
// outside a call, or at the end of the call that was running when its
// deadline closed it: never under running guest code.
func (m *mappedMemory) Free() {
	if m.freed.CompareAndSwap(false, true) {
		_ = syscall.Munmap(m.buf)
	}
}
