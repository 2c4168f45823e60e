// Package modhost is the host side of modules: it loads the modules named
// in configuration, keeps each callback's chain in `modules:` order, runs
// callbacks with a deadline and panic isolation, applies Synapse's chaining
// rules and failure policies, records metrics, and collects web resources.
// Only this package knows how callbacks are chained.
package modhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/module"
)

// DefaultTimeout is a callback's deadline when the module entry sets no
// `timeout:`. Synapse has none; a hung module there hangs the request.
const DefaultTimeout = 10 * time.Second

// Services is what the host needs from the rest of the server to answer the
// module API's helpers.
type Services interface {
	GetUserByRequest(r *http.Request, allowExpired bool) (module.Requester, error)
	GetUserInfo(ctx context.Context, userID string) (module.UserInfo, error)
	CheckUserExists(ctx context.Context, userID string) (string, error)
	RegisterUser(ctx context.Context, localpart string, opts module.RegisterUserOptions) (string, error)
	ModuleRoomState(ctx context.Context, roomID string) (module.StateMap, error)
	ModuleSendEvent(ctx context.Context, dict map[string]any) (module.Event, error)
	ModuleUpdateMembership(ctx context.Context, sender, target, roomID, membership string, content map[string]any) (module.Event, error)
	ModuleCreateRoom(ctx context.Context, userID string, config map[string]any) (string, error)
	// ModuleGetAccountData returns a user's global account data of one type
	// (a JSON object), or module.ErrNotFound.
	ModuleGetAccountData(ctx context.Context, userID, accountDataType string) ([]byte, error)
	// ModulePutAccountData stores a user's global account data of one type.
	ModulePutAccountData(ctx context.Context, userID, accountDataType string, content []byte) error
}

// Options configure a Host.
type Options struct {
	ServerName    string
	PublicBaseURL string
	Logger        *slog.Logger
	Registerer    prometheus.Registerer // nil: metrics are not exported
}

// Host holds the loaded modules and their callbacks.
type Host struct {
	opts     Options
	log      *slog.Logger
	services Services
	metrics  *metrics

	mu      sync.Mutex
	started bool // set once loading is over: registrations are refused after
	mods    []*loaded

	spam       spamChains
	validity   validityChains
	thirdParty thirdPartyChains

	accountData accountDataChains

	deprecationWarned sync.Map // module + callback -> true, once warned
	newEvents         orderedQueue

	resources []WebResource
}

// loaded is one instantiated module entry.
type loaded struct {
	// inflight counts calls whose callback has not returned, including those
	// that outlived their deadline (their goroutine cannot be stopped).
	inflight atomic.Int64
	index    int
	name     string
	timeout  time.Duration
	onError  string // "", "allow" or "deny"
	instance any
	log      *slog.Logger
}

// WebResource is a path a module serves.
type WebResource struct {
	Path    string
	Module  string
	Handler http.Handler
}

// New makes an empty host. Call Load to instantiate the configured modules.
func New(o Options) *Host {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Host{opts: o, log: o.Logger, metrics: newMetrics(o.Registerer)}
}

// reservedPrefixes are served by Sluice itself: a module resource under one
// of them would be unreachable in Synapse, so Sluice refuses it outright.
var reservedPrefixes = []string{"/_matrix/client", "/_matrix/federation", "/_matrix/key", "/_matrix/media", "/_synapse/admin"}

// ParseConfigs runs each module's ParseConfig (or builds its map), as
// Synapse does at config-load time. check-config uses it alone.
func ParseConfigs(entries []config.Module) ([]any, error) {
	out := make([]any, len(entries))
	for i, e := range entries {
		f, ok := module.Lookup(e.Module)
		if !ok {
			return nil, fmt.Errorf("modules[%d] (line %d): unknown module %q; this build has: %s",
				i, e.Line, e.Module, strings.Join(module.Names(), ", "))
		}
		node := e.Config
		raw := module.NewRawConfig(&node)
		if node.Kind == 0 {
			raw = module.NewRawConfig(nil)
		}
		raw = raw.WithDir(e.Dir)
		if f.ParseConfig == nil {
			out[i] = raw.Map()
			continue
		}
		c, err := safeParse(f.ParseConfig, raw)
		if err != nil {
			var ce *module.ConfigError
			if errors.As(err, &ce) && len(ce.Path) > 0 {
				msg := ce.Msg
				if !strings.Contains(msg, "(line ") {
					msg += fmt.Sprintf(" (entry at line %d)", e.Line)
				}
				return nil, fmt.Errorf("modules[%d].config.%s: failed to parse config for module %q: %s",
					i, strings.Join(ce.Path, "."), e.Module, msg)
			}
			return nil, fmt.Errorf("modules[%d].config (line %d): failed to parse config for module %q: %v",
				i, e.Line, e.Module, err)
		}
		out[i] = c
	}
	return out, nil
}

func safeParse(f func(module.RawConfig) (any, error), raw module.RawConfig) (c any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f(raw)
}

// Load instantiates the configured modules in order (ParseConfig, then New),
// before any listener opens. Any failure is returned naming modules[i] and
// the module; the server must not start. After Load, registrations fail.
func (h *Host) Load(ctx context.Context, entries []config.Module, svc Services) error {
	h.services = svc
	configs, err := ParseConfigs(entries)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for i, e := range entries {
		f, _ := module.Lookup(e.Module)
		// A module configured more than once (two policy servers, two
		// wasm files) is told apart in metrics and logs: the second entry
		// of a name is "name#2", and so on.
		seen[e.Module]++
		label := e.Module
		if n := seen[e.Module]; n > 1 {
			label = fmt.Sprintf("%s#%d", e.Module, n)
		}
		lm := &loaded{
			index:   i,
			name:    label,
			timeout: time.Duration(e.Timeout),
			onError: e.OnError,
			log:     h.log.With("module", label),
		}
		if lm.timeout == 0 {
			lm.timeout = DefaultTimeout
		}
		h.mu.Lock()
		h.mods = append(h.mods, lm)
		h.mu.Unlock()
		api := module.NewAPI(e.Module, &hostAPI{h: h, mod: lm})
		inst, err := safeNew(f.New, configs[i], api)
		if err != nil {
			return fmt.Errorf("modules[%d] (line %d): module %q failed to start: %v", i, e.Line, e.Module, err)
		}
		lm.instance = inst
		h.log.Info("loaded module", "index", i, "module", e.Module, "timeout", lm.timeout.String(), "on_error", orDefault(e.OnError, "synapse"))
	}
	h.mu.Lock()
	h.started = true
	h.mu.Unlock()
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func safeNew(f func(any, *module.API) (any, error), cfg any, api *module.API) (inst any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f(cfg, api)
}

// Close calls Close(ctx) on every module that has one, in reverse order.
func (h *Host) Close(ctx context.Context) {
	// Deliver the on_new_event calls still queued before modules close.
	h.newEvents.drain(ctx)
	h.mu.Lock()
	mods := append([]*loaded(nil), h.mods...)
	h.mu.Unlock()
	for i := len(mods) - 1; i >= 0; i-- {
		if c, ok := mods[i].instance.(interface{ Close(context.Context) error }); ok {
			if err := c.Close(ctx); err != nil {
				mods[i].log.Warn("module close failed", "err", err)
			}
		}
	}
}

// WebResources returns the registered module resources in registration order.
func (h *Host) WebResources() []WebResource {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]WebResource(nil), h.resources...)
}

var errAfterStartup = errors.New("modules can only register during start-up (from their New function)")

func (h *Host) registerWebResource(mod *loaded, path string, handler http.Handler) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return fmt.Errorf("module %q: RegisterWebResource(%q): %w", mod.name, path, errAfterStartup)
	}
	if handler == nil {
		return fmt.Errorf("module %q: RegisterWebResource(%q): nil handler", mod.name, path)
	}
	if !strings.HasPrefix(path, "/") || strings.Contains(path, "//") || strings.ContainsAny(path, "{}?#") {
		return fmt.Errorf("module %q: RegisterWebResource(%q): the path must be absolute, like /_synapse/client/%s/...", mod.name, path, mod.name)
	}
	for _, r := range path {
		// Unreserved and sub-delimiter characters of RFC 3986 paths only:
		// anything else would not route (and spaces upset ServeMux).
		// No '%': the router matches decoded paths, so an encoded path
		// could reach a reserved prefix (or never match at all).
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/-._~!$&'()*+,;=:@", r)) {
			return fmt.Errorf("module %q: RegisterWebResource(%q): invalid character %q in the path", mod.name, path, r)
		}
	}
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("module %q: RegisterWebResource(%q): dot segments never match a request", mod.name, path)
		}
	}
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return fmt.Errorf("module %q: RegisterWebResource(\"/\"): a module cannot serve the whole server; use /_synapse/client/%s/...", mod.name, mod.name)
	}
	for _, p := range reservedPrefixes {
		// A parent of a reserved prefix would catch its unknown paths,
		// which must stay 404 M_UNRECOGNIZED.
		if path == p || strings.HasPrefix(path, p+"/") || strings.HasPrefix(p, path+"/") {
			return fmt.Errorf("module %q: RegisterWebResource(%q): paths under %s are served by Sluice itself; use /_synapse/client/<module>/...", mod.name, path, p)
		}
	}
	for _, r := range h.resources {
		if r.Path == path {
			// Synapse's rule: the first registration wins, the rest are
			// ignored with a warning (not an error, which would stop start-up).
			mod.log.Warn("module tried to register a web resource for a path another module already registered; the first registration wins",
				"path", path, "registered_by", r.Module)
			return nil
		}
	}
	h.resources = append(h.resources, WebResource{Path: path, Module: mod.name, Handler: handler})
	return nil
}
