package store_test

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/htq/htq/internal/store"
)

// TestHintGraceMatchesTheScripts: the Go constant and the scripts' agree.
func TestHintGraceMatchesTheScripts(t *testing.T) {
	src, err := os.ReadFile("lua/common.lua")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^local HINT_GRACE = (\d+)`).FindSubmatch(src)
	if m == nil {
		t.Fatal("common.lua defines no HINT_GRACE")
	}
	if ms, _ := strconv.Atoi(string(m[1])); time.Duration(ms)*time.Millisecond != store.HintGrace {
		t.Fatalf("HINT_GRACE = %d ms, store.HintGrace = %v", ms, store.HintGrace)
	}
}

// readyAt returns the queue's ready-index time (ms), or -1 when it is not
// listed, and its partition's due entry (ms), or -1.
func (e *env) readyAt(q string) (ready, due int64) {
	e.t.Helper()
	if err := e.s.FlushDue(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	k := e.s.Keys().Queue(q)
	ready, due = -1, -1
	if s, err := e.rdb.ZScore(e.ctx, k.Ready, q).Result(); err == nil {
		ready = int64(s)
	}
	all, err := e.s.AllDue(e.ctx, store.DueReady)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range all {
		if d.Partition == k.Partition {
			due = d.At
		}
	}
	return ready, due
}

// TestAHeardHintKeepsThePollersAway: a wake-up whose hint reached a
// dispatcher is listed HintGrace ahead, in the ready index and in the due
// index, so pollers do not settle the partition for it; one nobody heard is
// listed at once. Unhint gives it back to the pollers at once, unless the
// queue was claimed meanwhile.
func TestAHeardHintKeepsThePollersAway(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now().UnixMilli()
	grace := store.HintGrace.Milliseconds()

	e.queue("unheard", nil)
	e.enqueue("unheard", time.Time{}, "http://x/1")
	if r, d := e.readyAt("unheard"); r != now || d != now {
		t.Fatalf("unheard hint: ready %d, due %d, want both %d", r, d, now)
	}

	for _, q := range []string{"heard", "claimed"} {
		k := e.s.Keys().Queue(q)
		sub := e.rdb.SSubscribe(e.ctx, e.s.Keys().HintChannel(k.Partition))
		if _, err := sub.Receive(e.ctx); err != nil { // the subscription's confirmation
			t.Fatal(err)
		}
		e.queue(q, nil)
		e.enqueue(q, time.Time{}, "http://x/1")
		if r, d := e.readyAt(q); r != now+grace || d > now+grace || d < 0 {
			t.Fatalf("%s: ready %d, due %d, want %d", q, r, d, now+grace)
		}
		if qs, err := e.s.ReadyIn(e.ctx, k.Partition, 10, 0); err != nil || len(qs) != 0 {
			t.Fatalf("%s: ready now = %v, %v; want none", q, qs, err)
		}
		if qs, err := e.s.ReadyIn(e.ctx, k.Partition, 10, store.HintGrace); err != nil || len(qs) != 1 || qs[0].Queue != q {
			t.Fatalf("%s: ready within the grace = %v, %v", q, qs, err)
		}
		_ = sub.Close()
	}

	if err := e.s.Unhint(e.ctx, "heard"); err != nil {
		t.Fatal(err)
	}
	if r, d := e.readyAt("heard"); r != now || d != now {
		t.Fatalf("unhinted: ready %d, due %d, want both %d", r, d, now)
	}

	// a lease shorter than the grace: only the lease tells it from a hint
	c, err := e.s.Claim(e.ctx, "claimed", "A", store.ClaimOptions{TTL: store.HintGrace / 2, Want: 1})
	if err != nil || c.Status != store.ClaimOK {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	before, _ := e.readyAt("claimed")
	if err := e.s.Unhint(e.ctx, "claimed"); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.readyAt("claimed"); r != before || r <= now {
		t.Fatalf("unhint moved an owned queue's entry from %d to %d", before, r)
	}
}
