package e2e_test

import (
	"crypto/rand"
	"runtime"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

// TestMediaUploadMemory checks that an upload is streamed: the bytes
// allocated in the process (server and test client together) while a
// 10 MB upload is stored stay far below its size. It is a bound on
// allocation, not on time.
func TestMediaUploadMemory(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		data := make([]byte, 10<<20)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		mediaID(t, s, tok, "application/octet-stream", "warm.bin", data) // warm up pools and connections
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		id := mediaID(t, s, tok, "application/octet-stream", "big.bin", data)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("a 10 MiB upload allocated %d bytes (%.1f%% of its size)", alloc, 100*float64(alloc)/float64(len(data)))
		if alloc > 4<<20 {
			t.Fatalf("a 10 MiB upload allocated %d bytes: it is not streamed", alloc)
		}
		m, err := s.Srv.Store().GetLocalMedia(t.Context(), id)
		if err != nil || m.Length != int64(len(data)) {
			t.Fatalf("stored %+v, %v", m, err)
		}
	})
}
