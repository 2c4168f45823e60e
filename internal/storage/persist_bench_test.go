package storage_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

// BenchmarkPersistEventConcurrent measures message sends through
// PersistEvent: G goroutines, each persisting messages one after the other
// into its own room, as G clients sending at once would. goroutines=1 is
// the serial figure (one commit per event); goroutines=50 shows what group
// commit makes of it. SQLite runs on a file in the test's temporary
// directory with synchronous=FULL (every commit is fsynced).
//
//	go test ./internal/storage -run '^$' -bench PersistEventConcurrent -benchtime 5000x
func BenchmarkPersistEventConcurrent(b *testing.B) {
	for _, db := range []struct{ name, driver string }{
		{"sqlite", storage.DriverSQLite},
		{"postgres", storage.DriverPostgres},
	} {
		for _, g := range []int{1, 50} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", db.name, g), func(b *testing.B) {
				benchmarkPersist(b, db.driver, g)
			})
		}
	}
}

func benchmarkPersist(b *testing.B, driver string, goroutines int) {
	st := storagetest.Open(b, storagetest.Fresh(b, driver))
	var batches, batched atomic.Int64
	storage.SetWriterHooks(st, func(n int) {
		batches.Add(1)
		batched.Add(int64(n))
	}, nil)
	rooms := make([]*testRoom, goroutines)
	for i := range rooms {
		rooms[i] = newTestRoom(b, st, fmt.Sprintf("!bench%d:example.org", i), fmt.Sprintf("@user%d:example.org", i))
	}
	// A realistic message: about 600 bytes of federation-format JSON.
	body := make([]byte, 200)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	batches.Store(0)
	batched.Store(0)

	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for _, r := range rooms {
		wg.Go(func() {
			sender := "@" + r.id[1:]
			for next.Add(1) <= int64(b.N) {
				r.seq++
				id := fmt.Sprintf("$%s-%d", r.id[1:8], r.seq)
				js := fmt.Appendf(nil, `{"auth_events":["$a","$b","$c"],"content":{"body":%q,"msgtype":"m.text"},"depth":%d,"event_id":%q,"hashes":{"sha256":"x"},"origin_server_ts":%d,"prev_events":[%q],"room_id":%q,"sender":%q,"signatures":{"example.org":{"ed25519:a":"sig"}},"type":"m.room.message"}`,
					body, r.depth+1, id, time.Now().UnixMilli(), r.prev[0], r.id, sender)
				e := storage.NewEvent{
					EventID: id, RoomID: r.id, Type: "m.room.message", Sender: sender, JSON: js,
					Depth: r.depth + 1, OriginServerTS: time.Now().UnixMilli(), PrevEvents: r.prev, StateGroupBefore: r.group,
					Txn: &storage.TxnKey{UserID: sender, DeviceID: "DEV", TxnID: id},
				}
				if _, err := st.PersistEvent(context.Background(), e); err != nil {
					b.Error(err)
					return
				}
				r.prev = []string{id}
				r.depth++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if n := batches.Load(); n > 0 {
		b.ReportMetric(float64(batched.Load())/float64(n), "events/batch")
	}
}
