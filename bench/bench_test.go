// Package bench holds Sluice's benchmarks: figures to read, not pass/fail
// tests. Run: go test ./bench/ -run '^$' -bench . -benchmem
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/modhost"
	"github.com/sluice-im/sluice/internal/testserver"
	"github.com/sluice-im/sluice/module"
)

func init() {
	module.Register("bench.NotExpired", module.Factory{New: func(_ any, api *module.API) (any, error) {
		return nil, api.RegisterAccountValidityCallbacks(module.AccountValidityCallbacks{
			IsUserExpired: func(context.Context, string) (module.Expiry, error) { return module.ExpiryUnknown, nil },
		})
	}})
}

// BenchmarkIsUserExpiredChain measures the host's cost per callback call
// (deadline, goroutine, panic isolation, metrics) for chains of 1 and 3.
func BenchmarkIsUserExpiredChain(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("modules=%d", n), func(b *testing.B) {
			h := modhost.New(modhost.Options{ServerName: "bench", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			entries := make([]config.Module, n)
			for i := range entries {
				entries[i] = config.Module{Module: "bench.NotExpired"}
			}
			if err := h.Load(context.Background(), entries, nil); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.IsUserExpired(ctx, "@u:bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWhoami is an authenticated request end to end over loopback HTTP
// on SQLite (token lookup, user lookup, JSON), with and without an
// is_user_expired module, from parallel clients.
func BenchmarkWhoami(b *testing.B) {
	for _, withModule := range []bool{false, true} {
		b.Run(fmt.Sprintf("is_user_expired_module=%v", withModule), func(b *testing.B) {
			yaml := "enable_registration: true\nenable_registration_without_verification: true\n"
			if withModule {
				yaml += "modules:\n  - module: bench.NotExpired\n"
			}
			s := testserver.Start(b, testserver.Options{YAML: yaml})
			_, tok := s.Register(b, "bench", "pw")
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			url := s.URL + "/_matrix/client/v3/account/whoami"
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", url, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !strings.Contains(string(body), "@bench:") {
						b.Fatalf("status %d: %s", resp.StatusCode, body)
					}
				}
			})
		})
	}
}
