// Package ratelimit is Synapse's leaky-bucket rate limiter: each key (a
// user, an IP address) may do burst_count actions at once, refilled at
// per_second actions per second. Limiters are in memory, per process, as
// Synapse's are.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Config is one limiter's settings, Synapse's shape.
type Config struct {
	PerSecond  float64 `yaml:"per_second"`
	BurstCount float64 `yaml:"burst_count"`
}

// Limiter limits actions per key.
type Limiter struct {
	cfg Config
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	lastGC  time.Time
}

type bucket struct {
	level float64 // actions "in the bucket", leaking at PerSecond
	at    time.Time
}

// New makes a limiter. A zero PerSecond disables limiting.
func New(c Config) *Limiter {
	return &Limiter{cfg: c, now: time.Now, buckets: map[string]*bucket{}}
}

// Allow records an action for key if the limit allows it. When it does
// not, it returns how long until one more action would be allowed.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	return l.allow(key, true)
}

// Check is Allow without recording the action.
func (l *Limiter) Check(key string) (ok bool, retryAfter time.Duration) {
	return l.allow(key, false)
}

func (l *Limiter) allow(key string, record bool) (bool, time.Duration) {
	if l == nil || l.cfg.PerSecond <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.gc(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{at: now}
		l.buckets[key] = b
	}
	b.level = math.Max(0, b.level-now.Sub(b.at).Seconds()*l.cfg.PerSecond)
	b.at = now
	burst := math.Max(1, l.cfg.BurstCount)
	if b.level+1 > burst {
		wait := (b.level + 1 - burst) / l.cfg.PerSecond
		return false, time.Duration(wait * float64(time.Second))
	}
	if record {
		b.level++
	}
	return true, 0
}

// gc drops empty buckets now and then so the map does not grow forever.
func (l *Limiter) gc(now time.Time) {
	if now.Sub(l.lastGC) < time.Minute {
		return
	}
	l.lastGC = now
	for k, b := range l.buckets {
		if b.level-now.Sub(b.at).Seconds()*l.cfg.PerSecond <= 0 {
			delete(l.buckets, k)
		}
	}
}
