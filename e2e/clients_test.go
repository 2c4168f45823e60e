package e2e_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

// TestMatrixNio drives account flows through matrix-nio (Debian's
// python3-matrix-nio), a client library Sluice did not write: what a real
// client sends must work, not only what our own tests send.
func TestMatrixNio(t *testing.T) {
	t.Parallel()
	python := nioPython(t)
	s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn})
	out, err := exec.Command(python, "testdata/nio_accounts.py", s.URL).CombinedOutput()
	if err != nil {
		t.Fatalf("nio script failed: %v\n%s", err, out)
	}
	want := []string{
		"register @niouser:test.local", "login @niouser:test.local", "whoami @niouser:test.local",
		"devices 1", "bad-login M_FORBIDDEN", "logout ok", "whoami-after-logout M_UNKNOWN_TOKEN",
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("nio saw:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
}

// TestMatrixNioMedia drives profiles and media through matrix-nio: a
// display name set and read back, a PNG uploaded, sent as m.image, received
// through nio's own sync with the sender's new name, downloaded back byte
// for byte and thumbnailed. nio 0.20 uses the legacy /_matrix/media/r0
// paths, which serve new media only with enable_authenticated_media off
// (as in Synapse).
func TestMatrixNioMedia(t *testing.T) {
	t.Parallel()
	python := nioPython(t)
	testserver.ForEachDB(t, testserver.Options{YAML: modRegistrationOn + "enable_authenticated_media: false\n"}, func(t *testing.T, s *testserver.Server) {
		out, err := exec.Command(python, "testdata/nio_media.py", s.URL).CombinedOutput()
		if err != nil {
			t.Fatalf("nio script failed: %v\n%s", err, out)
		}
		want := []string{
			"displayname Alice in Nio", "upload True", "received RoomMessageImage True",
			"sender-name Alice in Nio", "download image/png True", "thumbnail image/png True",
		}
		got := strings.Split(strings.TrimSpace(string(out)), "\n")
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("nio saw:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
		}
	})
}

// nioPython is the Python that has matrix-nio (Debian's), or skips the
// test with one line saying why.
func nioPython(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("matrix-nio: /usr/bin/python3 not found; skipping")
	}
	if err := exec.Command(python, "-c", "import nio").Run(); err != nil {
		t.Skip("matrix-nio: python3-matrix-nio is not installed (apt-get install python3-matrix-nio); skipping")
	}
	return python
}
