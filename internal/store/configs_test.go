package store

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/task"
)

// Claims of queues that share a configuration decode it once; a queue
// whose configuration changed gets the new one.
func TestClaimsDecodeASharedConfigurationOnce(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	s, err := New(rdb, "t:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := task.DefaultQueueConfig()
	claim := func(q string) *Claim {
		t.Helper()
		if _, err := s.Enqueue(ctx, q, []NewTask{{Spec: &task.Spec{URL: "http://127.0.0.1:1/"}}},
			EnqueueOptions{CreateQueue: &cfg}); err != nil {
			t.Fatal(err)
		}
		c, err := s.Claim(ctx, q, "c~1", ClaimOptions{TTL: time.Minute, Grace: time.Second, Want: 1})
		if err != nil || c.Status != ClaimOK {
			t.Fatalf("claim %s: %+v %v", q, c, err)
		}
		return c
	}
	for i := range 5 {
		if c := claim(fmt.Sprintf("q%d", i)); c.Config != cfg {
			t.Fatalf("claim %d: config %+v, want %+v", i, c.Config, cfg)
		}
	}
	if s.cfgs.misses != 1 {
		t.Fatalf("%d decodings for 5 claims of one configuration", s.cfgs.misses)
	}
	cfg.Concurrency = 3
	if c := claim("other"); c.Config != cfg || s.cfgs.misses != 2 {
		t.Fatalf("another configuration: %+v after %d decodings", c.Config, s.cfgs.misses)
	}
}

func TestTheConfigurationCacheIsBoundedAndHandsOutCopies(t *testing.T) {
	t.Parallel()
	var c configCache
	legacy := "variable"
	cfg := task.DefaultQueueConfig()
	cfg.Legacy = &task.LegacyAttr{Type: &legacy}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.decode(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	*a.Legacy.Type = "realtime" // a caller's change stays its own
	a.Legacy.SteppingTime = &legacy
	if b, err := c.decode(string(raw)); err != nil || b.Legacy.Type == nil || *b.Legacy.Type != legacy || b.Legacy.SteppingTime != nil {
		t.Fatalf("second decoding %+v (%v) sees the first caller's change", b.Legacy, err)
	}
	for i := range configCacheMax + 10 {
		cfg.MaxBacklog = int64(i)
		raw, _ := json.Marshal(cfg)
		if _, err := c.decode(string(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.m); n > configCacheMax {
		t.Fatalf("%d configurations kept, at most %d", n, configCacheMax)
	}
	if _, err := c.decode("{"); err == nil {
		t.Fatal("bad JSON decoded")
	}
}
