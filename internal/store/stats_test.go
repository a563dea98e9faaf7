package store

import (
	"testing"
	"time"

	"github.com/htq/htq/internal/redistest"
)

// TestMinuteCounterFlushes: counts reach Redis within about a second
// without anyone asking, the flusher stops when idle, and close writes
// what is still pending.
func TestMinuteCounterFlushes(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	keys := NewKeys("htq:")
	c := newMinuteCounter(rdb, keys)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).UnixMilli()
	key := keys.StatsKey(at / 60000)
	c.add("dead", at)
	c.add("dead", at)
	c.add("succeeded", at+1)
	deadline := time.Now().Add(5 * time.Second)
	for rdb.HGet(t.Context(), key, "dead").Val() != "2" {
		if time.Now().After(deadline) {
			t.Fatalf("not flushed: %v", rdb.HGetAll(t.Context(), key).Val())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := rdb.HGet(t.Context(), key, "succeeded").Val(); got != "1" {
		t.Fatalf("succeeded = %q", got)
	}
	if ttl := rdb.TTL(t.Context(), key).Val(); ttl <= 0 || ttl > StatsTTL {
		t.Fatalf("TTL %v", ttl)
	}
	for { // idle: the flusher ends
		c.mu.Lock()
		running := c.running
		c.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flusher keeps running while idle")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.add("failed", at)
	c.close(t.Context())
	c.close(t.Context()) // twice is harmless
	if got := rdb.HGet(t.Context(), key, "failed").Val(); got != "1" {
		t.Fatalf("close did not write the pending count: failed = %q", got)
	}
	c.add("failed", at) // after close: not written, no goroutine left behind
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		t.Fatal("a flusher started after close")
	}
}
