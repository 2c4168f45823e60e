// Package wasmtest builds WebAssembly guest modules with the Go toolchain,
// for the tests and benchmarks of the wasm module.
package wasmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Guest packages of this repository.
const (
	WordFilter = "modules/wasm/guest/example/wordfilter"
	Misbehave  = "modules/wasm/testdata/misbehave"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
)

// Build compiles a guest package (a directory relative to the repository
// root) for GOOS=wasip1 as a reactor (-buildmode=c-shared) and returns the
// .wasm file's path. Each package is built once per process; the file
// lives in a temporary directory for the process's life.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	dir, err := os.MkdirTemp("", "sluice-guest-")
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg)+".wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, "./"+pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("wasmtest: building %s for wasip1: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}
