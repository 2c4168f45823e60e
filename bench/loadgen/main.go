// Command loadgen is a load generator for Matrix homeservers: Sluice,
// Synapse, Dendrite or any server offering Synapse's shared-secret
// registration API. It registers users, creates rooms, then sends messages
// from many concurrent clients and reports sends/s, latency percentiles,
// the server's CPU time and its peak RSS.
//
//	go run ./bench/loadgen -url http://127.0.0.1:8008 -secret SECRET [flags]
//
// See bench/README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// config holds the command's settings, one field per flag.
type config struct {
	URL      string
	Secret   string
	Users    int
	Rooms    int
	Clients  int
	Duration time.Duration // measured window (after the warm-up); unused with Messages
	Messages int           // total measured sends; 0: run for Duration
	Warmup   time.Duration
	PID      int
	Prefix   string
	JSON     bool
	BodySize int
	Timeout  time.Duration
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep, err := run(ctx, cfg, os.Stderr)
	if rep != nil {
		// With -json, stdout carries only the JSON document (for `> out.json`
		// or `| jq`); the table goes to stderr so it is still seen.
		table := io.Writer(os.Stdout)
		if cfg.JSON {
			table = os.Stderr
		}
		rep.writeTable(table)
		if cfg.JSON {
			if jerr := rep.writeJSON(os.Stdout); jerr != nil {
				fmt.Fprintln(os.Stderr, "loadgen:", jerr)
				os.Exit(1)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "", "homeserver base URL, e.g. http://127.0.0.1:8008 (required)")
	fs.StringVar(&c.Secret, "secret", "", "the server's registration_shared_secret (required)")
	fs.IntVar(&c.Users, "users", 50, "users to register")
	fs.IntVar(&c.Rooms, "rooms", 50, "rooms to create; clients are spread over them round-robin")
	fs.IntVar(&c.Clients, "clients", 50, "concurrent senders (client i sends as user i%users in room i%rooms)")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured window, after the warm-up")
	fs.IntVar(&c.Messages, "messages", 0, "send this many measured messages in total instead of running for -duration")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "sending time before the measured window, excluded from the results")
	fs.IntVar(&c.PID, "pid", 0, "server process ID, to report its CPU time and peak RSS from /proc (same machine only)")
	fs.StringVar(&c.Prefix, "prefix", "", "user localpart prefix (default: random, so reruns do not collide)")
	fs.BoolVar(&c.JSON, "json", false, "print the results as JSON on stdout (the table then goes to stderr)")
	fs.IntVar(&c.BodySize, "body-size", 100, "message body length in bytes")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "timeout of each HTTP request")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: go run ./bench/loadgen -url URL -secret SECRET [flags]\n\n"+
			"Registers users through the shared-secret admin API, creates rooms, then sends\n"+
			"m.room.message events from concurrent clients and reports sends/s and latency.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "duration" {
			durationSet = true
		}
	})
	switch {
	case c.URL == "":
		return c, errors.New("-url is required")
	case c.Secret == "":
		return c, errors.New("-secret is required")
	case c.Users < 1 || c.Rooms < 1 || c.Clients < 1:
		return c, errors.New("-users, -rooms and -clients must be at least 1")
	case c.Messages < 0:
		return c, errors.New("-messages must not be negative")
	case c.Messages > 0 && durationSet:
		return c, errors.New("give -duration or -messages, not both")
	case c.Messages == 0 && c.Duration <= 0:
		return c, errors.New("-duration must be positive")
	case c.Warmup < 0:
		return c, errors.New("-warmup must not be negative")
	case c.BodySize < 1:
		return c, errors.New("-body-size must be at least 1")
	case c.Timeout <= 0:
		return c, errors.New("-timeout must be positive")
	case c.PID < 0:
		return c, errors.New("-pid must not be negative")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("-url %q: want http://HOST[:PORT] or https://HOST[:PORT]", c.URL)
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Messages > 0 {
		c.Duration = 0
	}
	if c.Prefix == "" {
		c.Prefix = "lg" + randomHex(4) + "_"
	}
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
