//go:build unix

package cli_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-im/sluice/module"
)

// clitest.HangingClose is a module whose Close ignores its context and
// hangs until the test releases it, so that serve's drain lasts.
// hangRelease is made anew by each run of the test that uses it (tests may
// run several times with -count).
var hangRelease chan struct{}

type hangingClose struct{ release chan struct{} }

func (h hangingClose) Close(context.Context) error {
	<-h.release
	return nil
}

func init() {
	module.Register("clitest.HangingClose", module.Factory{New: func(any, *module.API) (any, error) {
		return hangingClose{release: hangRelease}, nil
	}})
}

// signalServe starts serve with cfgExtra appended to a one-listener
// configuration and waits until it answers.
func signalServe(t *testing.T, cfgExtra string) (logs *syncBuffer, done <-chan struct{}, code func() int) {
	t.Helper()
	port := freePort(t)
	cfg := writeFile(t, filepath.Join(t.TempDir(), "sluice.yaml"), fmt.Sprintf(`server_name: test.local
listeners:
  - port: %d
    bind_addresses: ['127.0.0.1']
    type: http
    resources: [{names: [client]}]
bcrypt_rounds: 4
`, port)+cfgExtra)
	logs, done, stop := serveInBackground(t, "-c", cfg)
	if err := waitReady("http://127.0.0.1:"+strconv.Itoa(port)+"/_matrix/client/versions", done); err != nil {
		t.Fatalf("%v; logs:\n%s", err, logs)
	}
	return logs, done, stop
}

func waitDone(t *testing.T, done <-chan struct{}, within time.Duration, logs *syncBuffer, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("serve did not return within %v %s; logs:\n%s", within, what, logs)
	}
}

// The first SIGINT stops serve gracefully.
func TestServeSignalStopsGracefully(t *testing.T) {
	logs, done, code := signalServe(t, "")
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done, 30*time.Second, logs, "after SIGINT")
	if c := code(); c != 0 {
		t.Errorf("exit %d after one SIGINT, want 0; logs:\n%s", c, logs)
	}
	for _, w := range []string{"shutting down", "stopped cleanly"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("logs lack %q:\n%s", w, logs)
		}
	}
}

// A second signal during the drain makes serve return at once, non-zero.
func TestServeSecondSignalExitsNow(t *testing.T) {
	hangRelease = make(chan struct{})
	release := hangRelease
	t.Cleanup(func() { close(release) })
	logs, done, code := signalServe(t, "modules:\n  - module: clitest.HangingClose\n")
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The drain is under way (and stuck on the module for 30 s).
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "shutting down"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start shutting down after SIGTERM; logs:\n%s", logs)
		}
	}
	select {
	case <-done:
		t.Fatalf("serve returned before the second signal; logs:\n%s", logs)
	case <-time.After(100 * time.Millisecond):
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done, 5*time.Second, logs, "after a second signal")
	if c := code(); c == 0 {
		t.Errorf("exit 0 after a second signal, want non-zero; logs:\n%s", logs)
	}
	text := logs.String()
	if !strings.Contains(text, "second signal: exiting now") || strings.Contains(text, "stopped cleanly") {
		t.Errorf("logs:\n%s\nwant %q and not a clean stop", text, "second signal: exiting now")
	}
}
