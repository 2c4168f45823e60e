// Package module is Sluice's public module API: the one package a module
// imports. It follows Synapse's pluggable module system (the `modules:`
// configuration, the callback categories and names, the chaining rules and
// the effects on clients) in idiomatic Go.
//
// A module registers a Factory under the name configuration refers to, from
// an init function:
//
//	func init() {
//		module.Register("acme.InviteGuard", module.Factory{
//			ParseConfig: parseConfig, // optional
//			New:         newInviteGuard,
//		})
//	}
//
// At start-up, for each entry of `modules:` in order, Sluice calls
// ParseConfig with the entry's `config:` and then New with the result and an
// *API. New registers callbacks and web resources through the API; after
// start-up the API refuses registrations.
package module

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Factory builds a module from its configuration.
type Factory struct {
	// ParseConfig turns the entry's raw `config:` into the value New
	// receives. It is optional: without it New receives the config as a
	// map[string]any (an empty map when `config:` is missing or null), as
	// Synapse passes a dict. Return a *ConfigError to point at the offending
	// key; any error stops start-up naming modules[i].config and the module.
	ParseConfig func(raw RawConfig) (any, error)
	// New creates the module once, at start-up, before any listener opens.
	// It registers callbacks and web resources through api. The returned
	// value is the module instance; if it has a Close(context.Context) error
	// method, Sluice calls it at shutdown. An error stops start-up.
	New func(config any, api *API) (any, error)
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a module available under name (the `module:` value in
// configuration). It is meant to be called from init and panics on an empty
// name, a nil New or a duplicate name: these are programming errors that must
// show at the first start, not in production.
func Register(name string, f Factory) {
	if strings.TrimSpace(name) == "" {
		panic("module: Register with an empty name")
	}
	if f.New == nil {
		panic(fmt.Sprintf("module: Register(%q) with a nil New", name))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("module: Register(%q) called twice", name))
	}
	registry[name] = f
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}

// Names lists the registered module names, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ConfigError reports a bad module configuration. Path names the key inside
// the module's `config:` (e.g. ["rules", "0", "match"]); Sluice prefixes it
// with modules[i].config when it reports the error.
type ConfigError struct {
	Path []string
	Msg  string
}

func (e *ConfigError) Error() string {
	if len(e.Path) == 0 {
		return e.Msg
	}
	return strings.Join(e.Path, ".") + ": " + e.Msg
}
