package bench

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

// BenchmarkMediaUpload uploads a file of 1 MiB and 10 MiB over loopback
// HTTP on SQLite (POST /_matrix/media/v3/upload, octet-stream: no
// thumbnails). B/op is what the whole process (server and client)
// allocates per upload: uploads are streamed to disk, so it stays far
// below the file's size. Each upload is written and fsynced, so the time
// mostly measures the disk.
func BenchmarkMediaUpload(b *testing.B) {
	for _, size := range []int{1 << 20, 10 << 20} {
		b.Run(fmt.Sprintf("size=%dMiB", size>>20), func(b *testing.B) {
			s := testserver.Start(b, testserver.Options{YAML: "enable_registration: true\nenable_registration_without_verification: true\n"})
			_, tok := s.Register(b, "bench", "pw")
			data := make([]byte, size)
			if _, err := rand.Read(data); err != nil {
				b.Fatal(err)
			}
			client := &http.Client{}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req, _ := http.NewRequest("POST", s.URL+"/_matrix/media/v3/upload", bytes.NewReader(data))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/octet-stream")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d: %s", resp.StatusCode, body)
				}
			}
		})
	}
}
