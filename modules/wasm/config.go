package wasm

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/sluice-im/sluice/module"
)

// Config is the wasm module's `config:`.
type Config struct {
	// Path is the .wasm file, relative to the configuration file's
	// directory.
	Path string `yaml:"path"`
	// Config is handed to the guest's Init as JSON.
	Config any `yaml:"config"`
	// MemoryLimit caps each instance's linear memory: bytes, or a size
	// with a unit (K, M, G; powers of 1024). Default 64M.
	MemoryLimit string `yaml:"memory_limit"`
	// Instances is the most instances (each serves one call at a time)
	// that run in parallel. Default: the number of CPUs Go uses.
	Instances int `yaml:"instances"`
	// AllowClock gives the guest the real wall and monotonic clocks and
	// sleeping; without it they are fakes that tick 1 ms per reading.
	AllowClock bool `yaml:"allow_clock"`
	// AllowRandom gives the guest the system's secure random source;
	// without it, random bytes are a fixed sequence.
	AllowRandom bool `yaml:"allow_random"`
}

const (
	defaultMemoryLimit = 64 << 20
	pageSize           = 64 << 10
	// maxMemoryLimit is WebAssembly's 32-bit address space.
	maxMemoryLimit = 4 << 30
)

// parsed is the checked configuration, with the module file read.
type parsed struct {
	path        string
	wasm        []byte
	guestConfig []byte // JSON
	memoryPages uint32
	instances   int
	allowClock  bool
	allowRandom bool
}

func parseConfig(raw module.RawConfig) (any, error) {
	var c Config
	if err := raw.Decode(&c); err != nil {
		return nil, err
	}
	if c.Path == "" {
		return nil, &module.ConfigError{Path: []string{"path"}, Msg: "is required (the .wasm file of the module)"}
	}
	p := &parsed{path: raw.ResolvePath(c.Path), allowClock: c.AllowClock, allowRandom: c.AllowRandom, instances: c.Instances}
	b, err := os.ReadFile(p.path)
	if err != nil {
		return nil, &module.ConfigError{Path: []string{"path"}, Msg: err.Error()}
	}
	p.wasm = b
	limit := int64(defaultMemoryLimit)
	if c.MemoryLimit != "" {
		limit, err = parseSize(c.MemoryLimit)
		if err != nil || limit < pageSize || limit > maxMemoryLimit {
			return nil, &module.ConfigError{Path: []string{"memory_limit"}, Msg: fmt.Sprintf("%q is not a size between 64K and 4G", c.MemoryLimit)}
		}
	}
	p.memoryPages = uint32((limit + pageSize - 1) / pageSize)
	if p.instances == 0 {
		p.instances = runtime.GOMAXPROCS(0)
	}
	if p.instances < 1 || p.instances > 1024 {
		return nil, &module.ConfigError{Path: []string{"instances"}, Msg: fmt.Sprintf("%d is not between 1 and 1024", c.Instances)}
	}
	p.guestConfig, err = json.Marshal(jsonable(c.Config))
	if err != nil {
		return nil, &module.ConfigError{Path: []string{"config"}, Msg: "cannot be given to the guest as JSON: " + err.Error()}
	}
	// Compile the module and start one instance now, so that a bad file,
	// a guest that does not speak the ABI or refuses its config is found
	// by `sluice check-config` too, not only at start-up.
	e, err := newEngine(p, nil)
	if err != nil {
		return nil, &module.ConfigError{Path: []string{"path"}, Msg: err.Error()}
	}
	e.close()
	return p, nil
}

// parseSize reads "65536", "512K", "64M", "1G" (also with a trailing B).
func parseSize(s string) (int64, error) {
	s = strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxMemoryLimit/mult+1 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// jsonable turns YAML-decoded values into ones encoding/json accepts
// (YAML allows non-string map keys).
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	}
	return v
}
