package notifier

import (
	"sort"
	"sync"
	"testing"
	"time"
)

func TestWakeOnlyTheUser(t *testing.T) {
	n := New()
	a, stopA := n.Listen("@a")
	defer stopA()
	b, stopB := n.Listen("@b")
	defer stopB()
	n.Wake("@a")
	select {
	case <-a:
	default:
		t.Fatal("@a not woken")
	}
	select {
	case <-b:
		t.Fatal("@b woken by @a's wake")
	default:
	}
}

func TestNoLostWakeBetweenListenAndWait(t *testing.T) {
	n := New()
	ch, stop := n.Listen("@a")
	defer stop()
	n.Wake("@a") // happens while the reader is "reading the database"
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("a wake between Listen and the wait was lost")
	}
	// The next Listen gets a fresh channel.
	ch2, stop2 := n.Listen("@a")
	defer stop2()
	select {
	case <-ch2:
		t.Fatal("a new listener saw an old wake")
	default:
	}
}

func TestIdleUsersAreForgotten(t *testing.T) {
	n := New()
	var stops []func()
	for range 3 {
		_, stop := n.Listen("@a")
		stops = append(stops, stop)
	}
	_, stopB := n.Listen("@b")
	if n.Listening() != 2 {
		t.Fatalf("listening %d", n.Listening())
	}
	for _, s := range stops {
		s()
		s() // idempotent
	}
	stopB()
	if n.Listening() != 0 {
		t.Fatalf("listening %d after every listener stopped", n.Listening())
	}
	// Stopping after a wake is harmless.
	_, stop := n.Listen("@c")
	n.Wake("@c")
	stop()
	if n.Listening() != 0 {
		t.Fatal("woken user still listed")
	}
}

func TestConcurrentListenWake(t *testing.T) {
	n := New()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				ch, stop := n.Listen("@u")
				n.Wake("@u", "@v")
				<-ch // our own wake, or an earlier one: never blocks forever
				stop()
			}
		}()
	}
	wg.Wait()
	if n.Listening() != 0 {
		t.Fatalf("listening %d", n.Listening())
	}
}

// BenchmarkWakeLatency measures how long a waiting goroutine takes to run
// after Wake (the long-poll wake-up latency, without HTTP).
func BenchmarkWakeLatency(b *testing.B) {
	n := New()
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		ch, stop := n.Listen("@a")
		done := make(chan time.Duration)
		go func() {
			<-ch
			done <- 0
		}()
		start := time.Now()
		n.Wake("@a")
		<-done
		lat = append(lat, time.Since(start))
		stop()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	}
}
