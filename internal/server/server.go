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
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/keyserver"
	"github.com/sluice-im/sluice/internal/modhost"
	"github.com/sluice-im/sluice/internal/signingkey"
	"github.com/sluice-im/sluice/internal/storage"
)

// Server is an assembled homeserver.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	store    storage.Store
	host     *modhost.Host
	accounts *accounts.Service
	key      signingkey.Key
	metrics  *prometheus.Registry

	servers []*http.Server
	addrs   []net.Addr
	wg      sync.WaitGroup
	errs    chan error
}

// New opens the database, loads the signing key and the modules (in
// `modules:` order, before any listener opens) and builds the handlers.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
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
	if err := s.host.Load(ctx, cfg.Modules, s.accounts); err != nil {
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
		}, s.store, s.accounts).Register(rt)
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

// Start opens every listener. It returns once all are listening.
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
		handler := s.Handler(l)
		var boundV6Any bool
		for _, addr := range l.BindAddresses {
			ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(l.Port)))
			if err != nil {
				// "::" usually covers IPv4 too, so Synapse's default pair
				// ["::", "0.0.0.0"] then fails on the second: not an error.
				if addr == "0.0.0.0" && boundV6Any && errors.Is(err, syscall.EADDRINUSE) {
					continue
				}
				s.Shutdown(context.Background())
				return fmt.Errorf("server: listen on %s port %d: %w", addr, l.Port, err)
			}
			if addr == "::" {
				boundV6Any = true
			}
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
	return nil
}

// Addrs are the addresses the listeners are bound to, in configuration order.
func (s *Server) Addrs() []net.Addr { return append([]net.Addr(nil), s.addrs...) }

// Errors reports listeners that stopped on their own.
func (s *Server) Errors() <-chan error { return s.errs }

// Shutdown stops accepting requests, lets in-flight ones finish (until ctx
// ends), closes the modules, then closes the database cleanly.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	s.host.Close(ctx)
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
