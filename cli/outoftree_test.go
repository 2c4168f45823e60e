package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOutOfTreeModule builds testdata/outoftree, a custom Sluice with a
// module from another Go module (example.org/sluice-custom/greeter), the way
// an operator would: its own go.mod requiring Sluice, a five-line main.go
// calling cli.Main. It then runs the binary and talks to the module.
func TestOutOfTreeModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a custom binary (a few seconds with a warm build cache)")
	}
	if runtime.GOOS == "windows" {
		t.Skip("stops the server with SIGTERM")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the custom binary with: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}

	// The source: testdata/outoftree, with the replace pointing at this
	// repository, the repository's go version and its go.sum (not kept in
	// testdata, where it would drift).
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	copyTree(t, filepath.Join(root, "testdata", "outoftree"), src)
	copyFile(t, filepath.Join(root, "go.sum"), filepath.Join(src, "go.sum"))
	goVersion := goDirective(t, filepath.Join(root, "go.mod"))

	env := append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod "+os.Getenv("GOFLAGS"))
	gocmd := func(env []string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = src
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := gocmd(env, "mod", "edit", "-replace=github.com/sluice-im/sluice="+root, "-go="+goVersion); err != nil {
		t.Fatalf("go mod edit: %v\n%s", err, out)
	}
	bin := filepath.Join(tmp, "sluice-custom")
	start := time.Now()
	// Offline first: the module cache has everything the repository uses.
	out, err := gocmd(append(env, "GOPROXY=off"), "build", "-o", bin, ".")
	if err != nil && strings.Contains(out, "GOPROXY=off") {
		t.Logf("offline build needs modules missing from the cache; retrying with the configured GOPROXY:\n%s", out)
		out, err = gocmd(env, "build", "-o", bin, ".")
	}
	if err != nil {
		t.Fatalf("go build of the custom binary: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))

	// exe runs the custom binary to completion.
	exe := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			code = ee.ExitCode()
		default:
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		return code, o.String(), e.String()
	}

	code, stdout, stderr := exe("modules")
	if code != 0 {
		t.Fatalf("modules: exit %d: %s", code, stderr)
	}
	names := strings.Fields(stdout)
	for _, want := range []string{"acme.Greeter", "example.DemoModule"} {
		if !slices.Contains(names, want) {
			t.Errorf("modules lists %q, want %s among them", names, want)
		}
	}
	if slices.Contains(names, "clitest.Strict") {
		t.Errorf("modules lists this test binary's clitest.Strict: %q", names)
	}

	run := filepath.Join(tmp, "run")
	port := freePort(t)
	cfg := writeFile(t, filepath.Join(run, "sluice.yaml"), `server_name: test.local
listeners:
  - port: `+strconv.Itoa(port)+`
    bind_addresses: ['127.0.0.1']
    type: http
    resources: [{names: [client]}]
registration_shared_secret: custom-secret
bcrypt_rounds: 4
modules:
  - module: acme.Greeter
    config: {greeting: Hello}
  - module: example.DemoModule
`)
	// The module's own config checks run in check-config.
	if code, stdout, stderr := exe("check-config", "-c", cfg); code != 0 || !strings.Contains(stdout, "OK") {
		t.Errorf("check-config: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	bad := writeFile(t, filepath.Join(tmp, "bad", "sluice.yaml"),
		"server_name: test.local\nmodules:\n  - module: acme.Greeter\n    config:\n      greetng: Hi\n")
	code, _, stderr = exe("check-config", "-c", bad)
	if code != 1 || !strings.Contains(stderr, `modules[0].config.greetng: failed to parse config for module "acme.Greeter": unknown key (line 5)`) {
		t.Errorf("check-config of a bad module config: exit %d, stderr %q", code, stderr)
	}

	// serve, until SIGTERM.
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "-c", cfg)
	srv.Stdout, srv.Stderr = &logs, &logs
	srv.WaitDelay = 10 * time.Second
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = srv.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = srv.Process.Kill()
			<-done
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(base+"/_matrix/client/versions", done); err != nil {
		t.Fatalf("%v; logs:\n%s", err, logs.String())
	}

	get := func(path, token string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("GET %s: %d, not JSON: %q", path, resp.StatusCode, raw)
		}
		return resp.StatusCode, body
	}
	if status, body := get("/_synapse/client/greeter/hi?name=Bob", ""); status != 200 || len(body) != 1 || body["greeting"] != "Hello Bob" {
		t.Errorf("greeter: %d %v, want 200 {greeting: Hello Bob}", status, body)
	}
	if status, body := get("/_synapse/client/demo/hello?name=Bob", ""); status != 200 || body["hello"] != "Bob" {
		t.Errorf("standard module in the custom build: %d %v", status, body)
	}
	if status, body := get("/_synapse/client/greeter/hi?name=Bob&whoami=1", ""); status != 401 || body["errcode"] != "M_MISSING_TOKEN" {
		t.Errorf("greeter whoami without a token: %d %v, want 401 M_MISSING_TOKEN", status, body)
	}

	// A user, through this package's register-user against the custom
	// binary, then the module's authenticated answer.
	if code, out, errOut := runCLI(t, "register-user", "-k", "custom-secret", "-u", "bob", "-p", "pw", "--no-admin", base); code != 0 {
		t.Fatalf("register-user: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	token := login(t, base, "bob", "pw")
	if status, body := get("/_synapse/client/greeter/hi?name=Bob&whoami=1", token); status != 200 ||
		body["greeting"] != "Hello Bob" || body["user_id"] != "@bob:test.local" {
		t.Errorf("greeter whoami: %d %v, want the greeting and user_id @bob:test.local", status, body)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit within 60s of SIGTERM; logs:\n%s", logs.String())
	}
	if waitErr != nil {
		t.Fatalf("serve after SIGTERM: %v; logs:\n%s", waitErr, logs.String())
	}
	text := logs.String()
	for _, w := range []string{`module=acme.Greeter`, "stopped cleanly"} {
		if !strings.Contains(text, w) {
			t.Errorf("logs lack %q:\n%s", w, text)
		}
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return run(t, "", args...)
}

func login(t *testing.T, base, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user}, "password": password,
	})
	resp, err := http.Post(base+"/_matrix/client/v3/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 || r.AccessToken == "" {
		t.Fatalf("login %s: %d, %v", user, resp.StatusCode, err)
	}
	return r.AccessToken
}

// goDirective returns the go version a go.mod declares.
func goDirective(t *testing.T, gomod string) string {
	t.Helper()
	b, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no go directive", gomod)
	return ""
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
