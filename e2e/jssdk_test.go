package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/testserver"
)

// TestMatrixJSSDK drives Sluice with matrix-js-sdk (npm, pinned in
// jssdk/package.json), the library Element is built on: two users register,
// start the SDK's own sync loop, meet in a room and each receives the
// other's message through it (jssdk/roundtrip.mjs). .ci/run installs Node
// and the package; without them the test skips with one line.
func TestMatrixJSSDK(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("matrix-js-sdk: node is not installed (Node >= 20, then npm ci --prefix e2e/jssdk); skipping")
	}
	if err := exec.Command(node, "-e", "process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)").Run(); err != nil {
		t.Skip("matrix-js-sdk: needs Node >= 20 (then npm ci --prefix e2e/jssdk); skipping")
	}
	if _, err := os.Stat("jssdk/node_modules/matrix-js-sdk/package.json"); err != nil {
		t.Skip("matrix-js-sdk: not installed (npm ci --prefix e2e/jssdk); skipping")
	}
	for _, driver := range []string{"sqlite3", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			s := testserver.Start(t, testserver.Options{Driver: driver, YAML: modRegistrationOn})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "jssdk/roundtrip.mjs", s.URL)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			var res struct {
				OK        bool     `json:"ok"`
				Error     string   `json:"error"`
				Users     []string `json:"users"`
				RoomID    string   `json:"room_id"`
				Events    []string `json:"events"`
				Endpoints []string `json:"endpoints"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || runErr != nil || !res.OK {
				t.Fatalf("matrix-js-sdk round trip failed (%v): %s\nstdout:\n%s\nSDK requests and logs:\n%s",
					runErr, res.Error, stdout.String(), stderr.String())
			}
			if len(res.Users) != 2 || !strings.HasSuffix(res.Users[0], ":test.local") || res.RoomID == "" || len(res.Events) != 2 {
				t.Fatalf("unexpected result: %s", stdout.String())
			}
			t.Logf("matrix-js-sdk called:\n  %s", strings.Join(res.Endpoints, "\n  "))
		})
	}
}
