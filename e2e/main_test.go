package e2e_test

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	close(modHangRelease)
	os.Exit(code)
}
