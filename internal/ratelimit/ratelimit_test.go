package ratelimit

import (
	"testing"
	"time"
)

func TestLeakyBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(Config{PerSecond: 1, BurstCount: 3})
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("action %d refused within the burst", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != time.Second {
		t.Fatalf("4th action: ok=%v wait=%v, want refused with 1s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key is limited too")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Check("a"); !ok {
		t.Fatal("not refilled after 1s")
	}
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("Check recorded an action")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("bucket over-refilled")
	}
}

func TestDisabled(t *testing.T) {
	l := New(Config{})
	for range 1000 {
		if ok, _ := l.Allow("x"); !ok {
			t.Fatal("a zero per_second limits")
		}
	}
	var nilLimiter *Limiter
	if ok, _ := nilLimiter.Allow("x"); !ok {
		t.Fatal("a nil limiter limits")
	}
}
