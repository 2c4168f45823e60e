package cli

import "testing"

func TestRegisterUserHint(t *testing.T) {
	for _, tt := range []struct{ argv0, want string }{
		{"sluice", "sluice register-user -c conf/sluice.yaml"},
		{"/usr/local/bin/sluice", "sluice register-user -c conf/sluice.yaml"},
		{"./sluice", "sluice register-user -c conf/sluice.yaml"},
		// go run builds into $WORK/b001/exe/<name>.
		{"/tmp/go-build3036551262/b001/exe/sluice", "go run ./cmd/sluice register-user -c conf/sluice.yaml"},
		{"/home/u/.cache/go-build/tmp/go-build123/b001/exe/sluice", "go run ./cmd/sluice register-user -c conf/sluice.yaml"},
		// go test's binary is there too, but is no "go run".
		{"/tmp/go-build3036551262/b001/cli.test", "sluice register-user -c conf/sluice.yaml"},
	} {
		if got := registerUserHint(tt.argv0, "conf/sluice.yaml"); got != tt.want {
			t.Errorf("registerUserHint(%q) = %q, want %q", tt.argv0, got, tt.want)
		}
	}
}
