package store_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
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
	return e.indexedAt(q)
}

// indexedAt is readyAt without waiting for the marks still on their way.
func (e *env) indexedAt(q string) (ready, due int64) {
	e.t.Helper()
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
	// in the due index when Unhint returns: the dispatcher pokes its
	// poller next, which must find the queue
	if r, d := e.indexedAt("heard"); r != now || d != now {
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

// TestAClaimLooksForPendingEntriesOnlyWhenSomeMayBe: a queue its owner
// handed back with nothing pending is claimed without the recovery checks
// (no XPENDING); one handed back with an entry pending (cleanly, here) is
// claimed with them, and the entry is delivered again.
func TestAClaimLooksForPendingEntriesOnlyWhenSomeMayBe(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	e.enqueue("q", time.Time{}, "http://x/1")
	c := e.claim("q", "A", 1)
	if n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1); n.Status != store.NextReleased {
		t.Fatalf("complete = %v, want released", n.Status)
	}
	e.enqueue("q", time.Time{}, "http://x/2")
	xpending := func() int {
		info, err := e.rdb.Info(e.ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_xpending:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		return 0
	}
	before := xpending()
	c = e.claim("q", "B", 1)
	if c.Status != store.ClaimOK || len(c.Deliveries) != 1 || c.Deliveries[0].Spec.URL != "http://x/2" {
		t.Fatalf("claim after an idle release = %+v", c)
	}
	if n := xpending() - before; n != 0 {
		t.Fatalf("the claim after an idle release ran XPENDING %d times", n)
	}
	// B hands the queue back with its entry pending, uncalled.
	if ok, err := c.Owned.Release(e.ctx, time.Time{}, true); !ok || err != nil {
		t.Fatalf("release = %v, %v", ok, err)
	}
	c = e.claim("q", "C", 1)
	if c.Status != store.ClaimOK || len(c.Deliveries) != 1 || c.Deliveries[0].Spec.URL != "http://x/2" || c.Deliveries[0].Attempt != 2 {
		t.Fatalf("claim after a release with an entry pending = %+v", c)
	}
}

// TestClaimingAnEmptyQueueLeavesNothing: a claim that finds nothing to do
// (its work was taken between the hint and the claim) answers empty and
// leaves no lease, no token, no consumer and no ready entry behind, with
// and without a rate limit.
func TestClaimingAnEmptyQueueLeavesNothing(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"plain", "limited"} {
		e.queue(q, func(c *task.QueueConfig) {
			if q == "limited" {
				c.Rate, c.Burst = 10, 1
			}
		})
		e.enqueue(q, time.Time{}, "http://x/1")
		c := e.claim(q, "A", 1)
		if n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1); n.Status != store.NextReleased {
			t.Fatalf("%s: complete = %v", q, n.Status)
		}
		// work arrived and was taken between a hint and the claim
		e.enqueue(q, time.Time{}, "http://x/2")
		e.clk.Set(e.clk.Now().Add(time.Second)) // a rate token
		c = e.claim(q, "A", 1)
		if n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1); n.Status != store.NextReleased {
			t.Fatalf("%s: complete = %v", q, n.Status)
		}
		e.clk.Set(e.clk.Now().Add(time.Second))
		if c := e.claim(q, "B", 1); c.Status != store.ClaimEmpty {
			t.Fatalf("%s: claim of an empty queue = %+v", q, c)
		}
		k := e.s.Keys().Queue(q)
		if n, _ := e.rdb.Exists(e.ctx, k.Lease).Result(); n != 0 {
			t.Fatalf("%s: a lease is left", q)
		}
		if tok, _ := e.rdb.HMGet(e.ctx, k.Meta, "tok", "cons").Result(); tok[0] != nil || tok[1] != nil {
			t.Fatalf("%s: meta tok, cons = %v", q, tok)
		}
		if cs, err := e.rdb.XInfoConsumers(e.ctx, k.Stream, "htq").Result(); err != nil || len(cs) != 0 {
			t.Fatalf("%s: consumers = %v, %v", q, cs, err)
		}
		if _, err := e.rdb.ZScore(e.ctx, k.Ready, q).Result(); err == nil {
			t.Fatalf("%s: still in the ready index", q)
		}
	}
}

// TestAnEnqueueLooksForDueTimedTasksOnlyWhenSomeAreDelayed: a task due now
// of a queue with nothing delayed costs no read of the delayed set; with a
// timed task due, it still goes behind it.
func TestAnEnqueueLooksForDueTimedTasksOnlyWhenSomeAreDelayed(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	calls := func() int {
		info, err := e.rdb.Info(e.ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_zrangebyscore:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		return 0
	}
	before := calls()
	e.enqueue("q", time.Time{}, "http://x/1")
	if n := calls() - before; n != 0 {
		t.Fatalf("%d reads of the delayed set with nothing delayed", n)
	}
	e.enqueue("q", e.clk.Now().Add(time.Second), "http://x/timed")
	e.clk.Set(e.clk.Now().Add(2 * time.Second))
	e.enqueue("q", time.Time{}, "http://x/2")
	c := e.claim("q", "A", 3)
	if got := urls(c.Deliveries); strings.Join(got, " ") != "http://x/1 http://x/timed http://x/2" {
		t.Fatalf("delivered %v", got)
	}
}
