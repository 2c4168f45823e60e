// Package cli is Sluice's command line: serve, generate-config,
// check-config and register-user. It is public so that a custom build with
// extra modules is a five-line main.go:
//
//	package main
//
//	import (
//		"github.com/sluice-im/sluice/cli"
//		_ "github.com/sluice-im/sluice/modules/standard"
//		_ "example.org/mymodule"
//	)
//
//	func main() { cli.Main() }
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/modhost"
	"github.com/sluice-im/sluice/internal/server"
	"github.com/sluice-im/sluice/module"
)

// DefaultDataDir is where `sluice serve` without a config keeps everything.
const DefaultDataDir = "sluice-data"

// Main runs the command line and exits.
func Main() {
	os.Exit(Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `Sluice, a Matrix homeserver built around modules.

Usage:
  sluice serve [-c FILE]            run the server (no -c: ./sluice-data/, created on first run)
  sluice generate-config [flags]    print or write a new configuration
  sluice check-config -c FILE       check a configuration, modules' configs included
  sluice register-user [flags] [SERVER_URL]
                                    create a user through shared-secret registration
  sluice modules                    list the modules built into this binary

Run "sluice <command> -h" for a command's flags.
`

// Run runs one command and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "generate-config":
		err = generateConfig(args[1:], stdout, stderr)
	case "check-config":
		err = checkConfig(args[1:], stdout, stderr)
	case "register-user":
		err = registerUser(ctx, args[1:], stdin, stdout, stderr)
	case "modules":
		for _, n := range module.Names() {
			fmt.Fprintln(stdout, n)
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "sluice %s: %v\n", args[0], err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

// Unwrap lets Run see flag.ErrHelp through a usageError ("-h" succeeds).
func (e usageError) Unwrap() error { return e.error }

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var path string
	fs.StringVar(&path, "c", "", "configuration file (default: ./sluice-data/sluice.yaml, generated on first run)")
	fs.StringVar(&path, "config-path", "", "same as -c")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	if path == "" {
		path = filepath.Join(DefaultDataDir, "sluice.yaml")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(DefaultDataDir, 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(path, config.Generate(config.GenerateOptions{}), 0o600); err != nil {
				return err
			}
			log.Info("first run: generated a configuration", "path", path)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log.Info("starting Sluice", "config", abs(path), "server_name", cfg.ServerName,
		"signing_key", cfg.SigningKeyPath, "media_store", cfg.MediaStorePath, "modules", len(cfg.Modules))
	// The first SIGINT or SIGTERM stops the server gracefully; one more
	// while it drains stops waiting for it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watching, watchDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-sigs:
			cancel()
		case <-watching:
		}
	}()
	// stopWatching hands the signals over to the drain below.
	stopWatching := sync.OnceFunc(func() { close(watching); <-watchDone })
	defer stopWatching()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	if cfg.RegistrationSharedSecret != "" {
		log.Info("create a user with: " + registerUserHint(os.Args[0], path))
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: letting in-flight requests finish (send the signal again to exit now)")
	case runErr = <-srv.Errors():
		log.Error("a listener failed; shutting down", "err", runErr)
	}
	stopWatching()
	sctx, cancelShutdown := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelShutdown()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(sctx) }()
	select {
	case err := <-shutdown:
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	case <-sigs:
		log.Warn("second signal: exiting now")
		return errSecondSignal
	}
	log.Info("stopped cleanly")
	return runErr
}

// errSecondSignal ends serve when a signal comes during the graceful stop.
var errSecondSignal = errors.New("interrupted again while shutting down: exited without finishing")

// registerUserHint is the command that creates a user on the server just
// started: under "go run" (a binary in the go-build cache's exe directory)
// there is no sluice binary to run, so it is "go run ./cmd/sluice".
func registerUserHint(argv0, configPath string) string {
	cmd := "sluice"
	a := filepath.ToSlash(argv0)
	if strings.Contains(a, "/go-build") && path.Base(path.Dir(a)) == "exe" {
		cmd = "go run ./cmd/sluice"
	}
	return cmd + " register-user -c " + configPath
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func generateConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("generate-config", stderr)
	var o config.GenerateOptions
	var out string
	fs.StringVar(&o.ServerName, "server-name", "localhost", "the server name (the domain of user IDs)")
	fs.StringVar(&o.ServerName, "H", "localhost", "same as -server-name")
	fs.IntVar(&o.Port, "port", 8008, "the HTTP listener's port")
	fs.StringVar(&o.BindAddress, "bind-address", "127.0.0.1", "the HTTP listener's address")
	fs.StringVar(&out, "o", "", "write to this file instead of standard output (refuses to overwrite)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	text := config.Generate(o)
	if out == "" {
		_, err := stdout.Write(text)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(text); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return f.Close()
}

func checkConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config", stderr)
	var path string
	fs.StringVar(&path, "c", "", "configuration file")
	fs.StringVar(&path, "config-path", "", "same as -c")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if path == "" {
		return usageError{errors.New("-c FILE is required")}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	// Modules' own configs are checked too, as Synapse runs parse_config
	// whenever it loads the configuration.
	if _, err := modhost.ParseConfigs(cfg.Modules); err != nil {
		return err
	}
	names := make([]string, len(cfg.Modules))
	for i, m := range cfg.Modules {
		names[i] = m.Module
	}
	fmt.Fprintf(stdout, "%s: OK (server_name %s, database %s, %d module(s)%s)\n", path, cfg.ServerName, cfg.Database.Name,
		len(cfg.Modules), prefixIf(": ", strings.Join(names, ", ")))
	return nil
}

func prefixIf(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
