// Package server assembles a Sluice homeserver from its configuration:
// storage, the module host, the services, the HTTP listeners; and runs it
// until it is told to stop.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/clientapi"
	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/directory"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/keyserver"
	"github.com/sluice-im/sluice/internal/media"
	"github.com/sluice-im/sluice/internal/modhost"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/notifier"
	"github.com/sluice-im/sluice/internal/profiles"
	"github.com/sluice-im/sluice/internal/ratelimit"
	"github.com/sluice-im/sluice/internal/rooms"
	"github.com/sluice-im/sluice/internal/signingkey"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/syncapi"
	"github.com/sluice-im/sluice/internal/typing"
	"github.com/sluice-im/sluice/internal/userdir"
	"github.com/sluice-im/sluice/module"
)

// Server is an assembled homeserver.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	store    storage.Store
	host     *modhost.Host
	accounts *accounts.Service
	rooms    *rooms.Service
	notifier *notifier.Notifier
	typing   *typing.Tracker
	sync     *syncapi.Service
	dir      *directory.Service
	profiles *profiles.Service
	userdir  *userdir.Service
	media    *media.Service
	key      signingkey.Key
	// registrationLimiter is shared by every listener's client API.
	registrationLimiter *ratelimit.Limiter
	metrics             *prometheus.Registry

	servers []*http.Server
	addrs   []net.Addr
	wg      sync.WaitGroup
	errs    chan error

	// The janitor's goroutine, from Start to Shutdown.
	stopJanitor context.CancelFunc
	janitorDone chan struct{}
}

// UIASessionLifetime is how long a user-interactive authentication session
// lives: Synapse's 48 hours. It is the value of uiaSessionLifetime in
// internal/clientapi/uia.go, which refuses older sessions; the janitor
// deletes them. Keep the two equal.
const UIASessionLifetime = 48 * time.Hour

// janitorInterval is how often the janitor runs (and once at Start).
const janitorInterval = time.Hour

// moduleCloseTimeout bounds closing the modules that did load when New
// fails after some of them.
const moduleCloseTimeout = 10 * time.Second

// Option adjusts New beyond what the configuration says.
type Option func(*storage.Options)

// WithQueryCounter counts every SQL statement the server's store runs in
// c (storage.Options.Queries), for benchmarks and tests.
func WithQueryCounter(c *storage.QueryCounter) Option {
	return func(o *storage.Options) { o.Queries = c }
}

// New opens the database, loads the signing key and the modules (in
// `modules:` order, before any listener opens) and builds the handlers.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, options ...Option) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log, metrics: prometheus.NewRegistry(), errs: make(chan error, 8)}
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	key, generated, err := signingkey.LoadOrGenerate(cfg.SigningKeyPath)
	if err != nil {
		return nil, err
	}
	s.key = key
	if generated {
		log.Info("generated a new signing key", "path", cfg.SigningKeyPath, "key_id", key.ID)
	}
	if err := os.MkdirAll(cfg.MediaStorePath, 0o750); err != nil {
		return nil, fmt.Errorf("server: media store: %w", err)
	}

	opts, err := StorageOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts.Logger = log.With("component", "storage")
	for _, o := range options {
		o(&opts)
	}
	s.store, err = storage.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	if cfg.Database.Name == "sqlite3" {
		log.Info("database", "engine", "sqlite3", "path", cfg.Database.Args.Database)
	} else {
		log.Info("database", "engine", "postgres")
	}

	baseURL := cfg.PublicBaseURL
	if baseURL == "" {
		baseURL = "https://" + cfg.ServerName + "/" // Synapse's default for modules
	}
	s.host = modhost.New(modhost.Options{
		ServerName:    cfg.ServerName,
		PublicBaseURL: baseURL,
		Logger:        log.With("component", "modules"),
		Registerer:    s.metrics,
	})
	s.accounts = accounts.New(s.store, s.host, cfg.ServerName, cfg.BcryptRounds, log.With("component", "accounts"))
	s.notifier = notifier.New()
	s.rooms = rooms.New(rooms.Options{
		ServerName:     cfg.ServerName,
		Signer:         event.Signer{ServerName: cfg.ServerName, KeyID: key.ID, Key: key.Private},
		DefaultVersion: cfg.DefaultRoomVersion,
		Logger:         log.With("component", "rooms"),
		MessageLimiter: ratelimit.New(*cfg.RCMessage),
		JoinLimiter:    ratelimit.New(*cfg.RCJoins.Local),
		Notifier:       s.notifier,
		StopTyping:     func(roomID, userID string) { s.typing.Set(roomID, userID, false, 0) },
		PublicationAllowed: func(userID, roomID string, aliases []string) bool {
			return config.DirectoryAllowed(cfg.RoomListPublicationRules, userID, roomID, aliases)
		},
	}, s.store, s.host, s.accounts)
	s.typing = typing.New(func(roomID string) { _ = s.rooms.WakeRoom(context.Background(), roomID) })
	s.dir = newDirectory(cfg, s.store, s.rooms, s.host, s.accounts, log)
	s.sync = syncapi.New(s.store, s.notifier, s.typing, s.store, log.With("component", "sync"))
	s.newProfileServices()
	if err := s.newMedia(); err != nil {
		s.typing.Close()
		s.store.Close()
		return nil, err
	}
	s.accounts.Limits = accounts.Limits{
		LoginAddress: ratelimit.New(*cfg.RCLogin.Address),
		LoginAccount: ratelimit.New(*cfg.RCLogin.Account),
		LoginFailed:  ratelimit.New(*cfg.RCLogin.FailedAttempts),
	}
	s.registrationLimiter = ratelimit.New(*cfg.RCRegistration)
	if err := s.host.Load(ctx, cfg.Modules, services{s.accounts, s.rooms, s.store, s.notifier, s.profiles}); err != nil {
		// The modules loaded before the failing one are running: close
		// them (Host.Close skips the entries that never got an instance).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), moduleCloseTimeout)
		s.closeModules(cctx)
		cancel()
		s.typing.Close()
		s.store.Close()
		return nil, err
	}
	return s, nil
}

// StorageOptions turns `database:` into storage options.
func StorageOptions(cfg *config.Config) (storage.Options, error) {
	a := cfg.Database.Args
	if cfg.Database.Name == "sqlite3" {
		return storage.Options{Driver: "sqlite3", SQLitePath: a.Database}, nil
	}
	dsn := a.DSN
	if dsn == "" {
		u := url.URL{Scheme: "postgres", Path: "/"}
		host := a.Host
		if host == "" {
			host = "localhost"
		}
		if a.Port != 0 {
			host = net.JoinHostPort(host, strconv.Itoa(a.Port))
		}
		u.Host = host
		if a.User != "" {
			if a.Password != "" {
				u.User = url.UserPassword(a.User, a.Password)
			} else {
				u.User = url.User(a.User)
			}
		}
		name := a.DBName
		if name == "" {
			name = a.Database
		}
		u.Path = "/" + name
		q := url.Values{}
		if a.SSLMode != "" {
			q.Set("sslmode", a.SSLMode)
		}
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	return storage.Options{Driver: "postgres", PostgresDSN: dsn, MaxOpenConns: a.CPMax}, nil
}

// Accounts exposes the account service (for tests and tools).
func (s *Server) Accounts() *accounts.Service { return s.accounts }

// Store exposes the store (for tests and tools).
func (s *Server) Store() storage.Store { return s.store }

// Handler builds the HTTP handler of one listener.
func (s *Server) Handler(l config.Listener) http.Handler {
	rt := httpx.NewRouter()
	names := map[string]bool{}
	for _, r := range l.Resources {
		for _, n := range r.Names {
			names[n] = true
		}
	}
	if l.Type == "metrics" {
		names = map[string]bool{"metrics": true}
	}
	if names["client"] {
		clientapi.New(clientapi.Options{
			ServerName:               s.cfg.ServerName,
			PublicBaseURL:            s.cfg.PublicBaseURL,
			EnableRegistration:       s.cfg.EnableRegistration,
			RegistrationSharedSecret: s.cfg.RegistrationSharedSecret,
			DefaultRoomVersion:       s.cfg.DefaultRoomVersion,
			RegistrationLimiter:      s.registrationLimiter,
			AccountData:              s.host,
			Notifier:                 s.notifier,
			Typing:                   s.typing,
			Sync:                     s.sync,
			WakeRoom:                 s.rooms.WakeRoom,
			Directory:                s.dir,
			Profiles:                 s.profiles,
			UserDirectory:            s.userdir,

			RequireAuthForProfileRequests: s.cfg.RequireAuthForProfileRequests,
		}, s.store, s.accounts, s.rooms).Register(rt)
	}
	if names["client"] || names["media"] {
		media.NewHandler(s.media, s.accounts).Register(rt)
	}
	if names["metrics"] && s.cfg.EnableMetrics {
		rt.Handle("GET /_synapse/metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}))
	}
	if names["federation"] || names["keys"] {
		// As in Synapse, both resources serve the key endpoint.
		(&keyserver.Handler{ServerName: s.cfg.ServerName, Key: s.key}).Register(rt)
	}
	if names["health"] {
		rt.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("OK"))
		})
	}
	// Module resources are mounted on every http listener, as in Synapse
	// (metrics listeners serve metrics only).
	if l.Type == "http" {
		for _, res := range s.host.WebResources() {
			rt.Handle(res.Path, res.Handler)
			rt.Handle(res.Path+"/", res.Handler)
		}
	}
	var h http.Handler = rt
	if l.XForwarded {
		h = forwardedFor(h)
	}
	return httpx.Middleware(s.log.With("component", "http"), h)
}

// forwardedFor takes the client address from X-Forwarded-For, for
// listeners behind a reverse proxy (x_forwarded: true).
func forwardedFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first := strings.TrimSpace(strings.Split(xff, ",")[0])
			if ip := net.ParseIP(first); ip != nil {
				r.RemoteAddr = net.JoinHostPort(ip.String(), "0")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Start opens every listener and starts the background janitor. It returns
// once all are listening.
func (s *Server) Start() error {
	for _, l := range s.cfg.Listeners {
		if l.Type == "metrics" && !s.cfg.EnableMetrics {
			s.log.Warn("metrics listener configured, but enable_metrics is not true; not listening", "port", l.Port)
			continue
		}
		for _, r := range l.Resources {
			for _, n := range r.Names {
				if !config.ServedResource(n) {
					s.log.Warn("listener resource is not provided by Sluice; ignored", "resource", n, "port", l.Port)
				}
				if n == "metrics" && !s.cfg.EnableMetrics {
					s.log.Warn("listener has the metrics resource, but enable_metrics is not true; /_synapse/metrics is not served", "port", l.Port)
				}
			}
		}
		lns, err := listenAll(l.BindAddresses, l.Port)
		if err != nil {
			s.Shutdown(context.Background())
			return err
		}
		handler := s.Handler(l)
		for _, ln := range lns {
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
			s.servers = append(s.servers, srv)
			s.addrs = append(s.addrs, ln.Addr())
			s.log.Info("listening", "address", "http://"+ln.Addr().String(), "type", l.Type)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					s.errs <- err
				}
			}()
		}
	}
	s.startJanitor()
	return nil
}

// listenAll opens one listener's addresses. With port 0 the first address
// gets a free port and the others that same port, so that the listener has
// one port however many addresses it has; when that port is taken on a
// later address, it starts over with another free port (a few times).
func listenAll(addrs []string, port int) ([]net.Listener, error) {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		lns, retry, err := listenOnce(addrs, port)
		if err == nil || !retry || attempt == attempts {
			return lns, err
		}
	}
}

// listenOnce is one attempt of listenAll. retry reports a port 0 that was
// free on the first address but taken on a later one.
func listenOnce(addrs []string, port int) (lns []net.Listener, retry bool, err error) {
	var boundV6Any bool
	p := port
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
		if err != nil {
			// "::" usually covers IPv4 too, so Synapse's default pair
			// ["::", "0.0.0.0"] then fails on the second: not an error.
			if addr == "0.0.0.0" && boundV6Any && errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			for _, l := range lns {
				l.Close()
			}
			retry = port == 0 && len(lns) > 0 && errors.Is(err, syscall.EADDRINUSE)
			return nil, retry, fmt.Errorf("server: listen on %s port %d: %w", addr, p, err)
		}
		if addr == "::" {
			boundV6Any = true
		}
		if p == 0 {
			if a, ok := ln.Addr().(*net.TCPAddr); ok {
				p = a.Port
			}
		}
		lns = append(lns, ln)
	}
	return lns, false, nil
}

// startJanitor runs the periodic clean-ups in the background, once now and
// then every janitorInterval, until Shutdown.
func (s *Server) startJanitor() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopJanitor, s.janitorDone = cancel, done
	go func() {
		defer close(done)
		t := time.NewTicker(janitorInterval)
		defer t.Stop()
		for {
			s.janitorTick(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// janitorTick is one run of the janitor. It logs its errors and never
// panics out: a failed clean-up is retried at the next tick.
func (s *Server) janitorTick(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("janitor panicked", "panic", r)
		}
	}()
	if err := s.DeleteExpiredUIASessions(ctx, time.Now()); err != nil && ctx.Err() == nil {
		s.log.Error("janitor: deleting expired UIA sessions failed", "err", err)
	}
}

// DeleteExpiredUIASessions deletes the user-interactive authentication
// sessions created more than UIASessionLifetime before now. The janitor
// calls it every hour.
func (s *Server) DeleteExpiredUIASessions(ctx context.Context, now time.Time) error {
	return s.store.DeleteUIASessionsBefore(ctx, now.Add(-UIASessionLifetime).UnixMilli())
}

// Addrs are the addresses the listeners are bound to, in configuration order.
func (s *Server) Addrs() []net.Addr { return append([]net.Addr(nil), s.addrs...) }

// Errors reports listeners that stopped on their own.
func (s *Server) Errors() <-chan error { return s.errs }

// Shutdown stops accepting requests, lets in-flight ones finish (until ctx
// ends), stops the janitor, closes the modules (waiting for them until ctx
// ends), then closes the database cleanly.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.sync != nil {
		// Long-polls answer now rather than hold the shutdown.
		s.sync.Stop()
	}
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	if s.stopJanitor != nil {
		s.stopJanitor()
		select {
		case <-s.janitorDone:
		case <-ctx.Done():
			s.log.Warn("the janitor did not stop in time; closing the database under it")
		}
	}
	s.closeModules(ctx)
	if s.typing != nil {
		s.typing.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// closeModules closes the modules, but waits no longer than ctx: a module's
// Close may ignore its context and hang.
func (s *Server) closeModules(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("a module panicked while closing", "panic", r)
			}
		}()
		s.host.Close(ctx)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("modules did not close in time; going on without them", "err", ctx.Err())
	}
}

// services is what the module API's helpers call: accounts and rooms.
type services struct {
	*accounts.Service
	rooms    *rooms.Service
	store    storage.Store
	notifier *notifier.Notifier
	profiles *profiles.Service
}

func (v services) ModuleRoomState(ctx context.Context, roomID string) (module.StateMap, error) {
	return v.rooms.ModuleRoomState(ctx, roomID)
}

func (v services) ModuleSendEvent(ctx context.Context, dict map[string]any) (module.Event, error) {
	return v.rooms.ModuleSendEvent(ctx, dict)
}

func (v services) ModuleUpdateMembership(ctx context.Context, sender, target, roomID, membership string, content map[string]any) (module.Event, error) {
	return v.rooms.ModuleUpdateMembership(ctx, sender, target, roomID, membership, content)
}

func (v services) ModuleCreateRoom(ctx context.Context, userID string, config map[string]any) (string, error) {
	return v.rooms.ModuleCreateRoom(ctx, userID, config)
}

func (v services) ModuleGetAccountData(ctx context.Context, userID, accountDataType string) ([]byte, error) {
	b, err := v.store.GetAccountData(ctx, userID, "", accountDataType)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, module.ErrNotFound
	}
	return b, err
}

func (v services) ModulePutAccountData(ctx context.Context, userID, accountDataType string, content []byte) error {
	if _, err := v.store.SetAccountData(ctx, userID, "", accountDataType, content); err != nil {
		return err
	}
	v.notifier.Wake(userID)
	return nil
}
