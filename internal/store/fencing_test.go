package store_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// The regression tests of the dispatcher cluster's correctness fixes (issue
// 11): each one failed before its fix.

// TestRecoveryWaitsForTheTimeoutTheCallWasHandedOutWith: lowering a queue's
// timeout while a long call runs must not let another owner redeliver the
// task before that call's own deadline.
func TestRecoveryWaitsForTheTimeoutTheCallWasHandedOutWith(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.Timeout = task.Duration(10 * time.Second) })
	e.enqueue("q", time.Time{}, "http://x/long")
	e.now()
	handedOut := e.clk.Now()
	a, err := e.s.Claim(e.ctx, "q", "A", store.ClaimOptions{TTL: 50 * time.Millisecond, Grace: 100 * time.Millisecond, Want: 1})
	if err != nil || a.Status != store.ClaimOK || a.Deliveries[0].Timeout != 10*time.Second {
		t.Fatalf("claim = %+v, %v (want the call's timeout, 10s)", a, err)
	}
	// The operator lowers the timeout while A's 10 s call runs; A is cut off.
	cfg := task.DefaultQueueConfig()
	cfg.Timeout = task.Duration(100 * time.Millisecond)
	if _, err := e.s.PutQueue(e.ctx, "q", &cfg, store.PutUpdate); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		e.now()
		b, err := e.s.Claim(e.ctx, "q", "B", store.ClaimOptions{TTL: time.Second, Grace: 100 * time.Millisecond, Want: 1})
		if err != nil {
			t.Fatal(err)
		}
		if b.Status == store.ClaimOK {
			t.Fatalf("B redelivered the task %v after it was handed out, while its 10 s call may still run", time.Since(handedOut))
		}
		if b.Status == store.ClaimWait {
			if min := handedOut.Add(10*time.Second + 100*time.Millisecond); b.Until.Before(min.Add(-time.Millisecond)) {
				t.Fatalf("B waits until %v, before the call's deadline plus grace %v", b.Until, min)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("claim stays %v", b.Status)
		}
		time.Sleep(10 * time.Millisecond) // the lease runs out on Redis's clock
	}
}

// TestFencingSurvivesAnEpochRewind: after a failover rewinds the epoch
// counter, a deposed owner and a new owner hold the same epoch number; the
// deposed one must not take the queue back.
func TestFencingSurvivesAnEpochRewind(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	k := e.s.Keys().Queue("q")
	a := e.claim("q", "A", 1)
	// A failover to a replica that missed A's claim: the counter, the lease
	// and the meta are as before it.
	e.rdb.Set(e.ctx, k.Epoch, 0, 0)
	e.rdb.Del(e.ctx, k.Lease)
	e.rdb.HDel(e.ctx, k.Meta, "epoch", "cons", "tok")
	e.rdb.XGroupDelConsumer(e.ctx, k.Stream, "htq", "A")
	e.rdb.XGroupSetID(e.ctx, k.Stream, "htq", "0")
	b := e.claim("q", "B", 1)
	if b.Status != store.ClaimOK {
		t.Fatalf("claim B = %v", b.Status)
	}
	aEpoch := a.Owned.Lease().Token[len("A:"):]
	bEpoch := b.Owned.Lease().Token[len("B:"):]
	if aEpoch != bEpoch {
		t.Fatalf("the rewind did not repeat the epoch (%s, %s): the test proves nothing", aEpoch, bEpoch)
	}
	// B is slow: its lease ran out, nobody claimed the queue meanwhile.
	e.rdb.Del(e.ctx, k.Lease)
	n, err := a.Owned.Complete(e.ctx, &store.Completion{Delivery: &a.Deliveries[0], Outcome: store.OutcomeSucceeded, Retention: time.Hour, Want: 1})
	if err != nil || n.Status != store.NextStale {
		t.Fatalf("the deposed owner's completion = %+v, %v: want stale", n, err)
	}
	if ok, _ := a.Owned.Renew(e.ctx); ok {
		t.Fatal("the deposed owner renewed the lease")
	}
	if v := e.rdb.Get(e.ctx, k.Lease).Val(); v != "" {
		t.Fatalf("lease = %q after the deposed owner's writes, want none", v)
	}
	// B, the sole owner, takes its expired lease back and goes on.
	if n := e.complete(b.Owned, &b.Deliveries[0], store.OutcomeSucceeded, 1); n.Status != store.NextEntries {
		t.Fatalf("the owner's completion = %+v", n)
	}
}

// TestNothingAfterAReleaseBringsTheLeaseBack: a renewal (or a retried
// completion) that lands after the owner's release must not re-create the
// lease, or the queue stalls until it expires.
func TestNothingAfterAReleaseBringsTheLeaseBack(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	a := e.claim("q", "A", 1)
	if ok, err := a.Owned.Release(e.ctx, time.Time{}, true); !ok || err != nil {
		t.Fatalf("release = %v, %v", ok, err)
	}
	if ok, _ := a.Owned.Renew(e.ctx); ok {
		t.Fatal("a renewal after the release took the lease back")
	}
	n, err := a.Owned.Complete(e.ctx, &store.Completion{Delivery: &a.Deliveries[0], Outcome: store.OutcomeSucceeded, Retention: time.Hour, Want: 1})
	if err != nil || n.Status != store.NextStale {
		t.Fatalf("a completion after the release = %+v, %v", n, err)
	}
	if v := e.rdb.Get(e.ctx, e.s.Keys().Queue("q").Lease).Val(); v != "" {
		t.Fatalf("lease = %q after the release", v)
	}
	if b := e.claim("q", "B", 1); b.Status != store.ClaimOK || b.Deliveries[0].Spec.URL != "http://x/1" {
		t.Fatalf("the next owner = %+v", b)
	}
}

// TestSequenceRisesAcrossDeleteRecreateAndRewind: X-HTQ-Sequence never goes
// back for a queue name: not when the queue is deleted and created again
// (even by a dispatcher whose clock is behind), not when a failover loses
// the last writes.
func TestSequenceRisesAcrossDeleteRecreateAndRewind(t *testing.T) {
	e := newEnv(t)
	cfg := task.DefaultQueueConfig()
	opts := store.EnqueueOptions{CreateQueue: &cfg}
	var last int64
	deliverOne := func(what string) {
		t.Helper()
		if _, err := e.s.Enqueue(e.ctx, "q", []store.NewTask{{Spec: &task.Spec{URL: "http://x/" + what}}}, opts); err != nil {
			t.Fatal(err)
		}
		c := e.claim("q", "A"+what, 1)
		if c.Status != store.ClaimOK {
			t.Fatalf("%s: claim = %v", what, c.Status)
		}
		d := c.Deliveries[0]
		if d.Seq <= last {
			t.Fatalf("%s: sequence %d after %d", what, d.Seq, last)
		}
		last = d.Seq
		e.complete(c.Owned, &d, store.OutcomeSucceeded, 0)
	}
	deliverOne("1")
	deliverOne("2")
	if err := e.s.DeleteQueue(e.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(-time.Minute) // the next dispatcher's clock is behind
	deliverOne("3")             // auto-created again (the legacy deleteQueue then addTask)
	if err := e.s.DeleteQueue(e.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	e.queue("q", nil) // created again through PUT
	deliverOne("4")
	// A failover loses the last writes: the stored sequence is rewound.
	e.rdb.HSet(e.ctx, e.s.Keys().Queue("q").Meta, "seq", strconv.FormatInt(last-5, 10))
	e.clk.Advance(time.Minute + time.Millisecond)
	deliverOne("5")
}

// TestConsumersDoNotPileUp: every dispatcher run has its own consumer name;
// one that lets a queue go with nothing pending must not stay in the
// stream's group, and the repair sweep removes those earlier versions left.
func TestConsumersDoNotPileUp(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	k := e.s.Keys().Queue("q")
	for i := range 10 { // ten dispatcher runs, each taking the queue once
		e.enqueue("q", time.Time{}, "http://x/"+strconv.Itoa(i))
		c := e.claim("q", "run"+strconv.Itoa(i), 1)
		if n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1); n.Status != store.NextReleased {
			t.Fatalf("complete = %v", n.Status)
		}
	}
	e.enqueue("q", time.Time{}, "http://x/last")
	c := e.claim("q", "yielder", 1)
	if ok, err := c.Owned.Release(e.ctx, time.Time{}, true); !ok || err != nil {
		t.Fatal(ok, err)
	}
	cons, err := e.rdb.XInfoConsumers(e.ctx, k.Stream, "htq").Result()
	if err != nil {
		t.Fatal(err)
	}
	// the yielder hands its delivered entry back pending: its consumer stays
	// until the next owner takes the entry over
	if len(cons) != 1 || cons[0].Name != "yielder" {
		t.Fatalf("consumers = %+v, want only the yielder's", cons)
	}
	b := e.claim("q", "next", 1)
	e.complete(b.Owned, &b.Deliveries[0], store.OutcomeSucceeded, 1)
	if cons, _ := e.rdb.XInfoConsumers(e.ctx, k.Stream, "htq").Result(); len(cons) != 0 {
		t.Fatalf("consumers after the queue emptied = %+v", cons)
	}
	// what earlier versions left behind
	for i := range 5 {
		e.rdb.XGroupCreateConsumer(e.ctx, k.Stream, "htq", "old"+strconv.Itoa(i))
	}
	r, err := e.s.RepairStep(e.ctx, task.Partition("q"), 0, 100)
	if err != nil || r.Consumers != 5 {
		t.Fatalf("repair = %+v, %v: want 5 consumers removed", r, err)
	}
}

// TestDeadLettersPastRetentionAreTrimmed: the dead-letter index drops
// entries past the queue's dead-letter retention without waiting for
// another task of the queue to die.
func TestDeadLettersPastRetentionAreTrimmed(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.DeadRetention = task.Duration(time.Minute) })
	e.enqueue("q", time.Time{}, "http://x/1")
	c := e.claim("q", "A", 1)
	n, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &c.Deliveries[0], Outcome: store.OutcomeDead, Retention: time.Minute, Want: 1})
	if err != nil || n.Status != store.NextReleased {
		t.Fatal(n, err)
	}
	if err := e.s.FlushDue(e.ctx); err != nil {
		t.Fatal(err)
	}
	p := task.Partition("q")
	due, later, err := e.s.Due(e.ctx, store.DueDead, 10, 10)
	if err != nil || len(due) != 0 || len(later) != 1 || later[0].Partition != p {
		t.Fatalf("dead due index = %v, %v, %v", due, later, err)
	}
	if qi, _ := e.s.GetQueue(e.ctx, "q"); qi.Counts.Dead != 1 {
		t.Fatalf("dead = %d", qi.Counts.Dead)
	}
	e.clk.Advance(time.Minute + time.Second)
	if due, _, _ := e.s.Due(e.ctx, store.DueDead, 10, 10); len(due) != 1 {
		t.Fatalf("not due after the retention: %v", due)
	}
	if n, err := e.s.TrimDead(e.ctx, p, 100); err != nil || n != 1 {
		t.Fatalf("trim = %d, %v", n, err)
	}
	if qi, _ := e.s.GetQueue(e.ctx, "q"); qi.Counts.Dead != 0 {
		t.Fatalf("dead after the trim = %d", qi.Counts.Dead)
	}
	e.settleAll()
	if all, _ := e.s.AllDue(e.ctx, store.DueDead); len(all) != 0 {
		t.Fatalf("dead due index after the trim = %v", all)
	}
}

// TestReleaseWithWorkLeftAnnouncesIt: an owner that lets a queue go with
// unread work (it stopped asking for more) announces it, so the work does
// not wait for a poll.
func TestReleaseWithWorkLeftAnnouncesIt(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	sub := e.s.SubscribeHints(e.ctx, "B", 16)
	defer sub.Close()
	if err := sub.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPartitions(e.ctx, []int{task.Partition("q")}); err != nil {
		t.Fatal(err)
	}
	<-sub.Resync()
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	<-sub.C() // the enqueue's hint
	c := e.claim("q", "A", 1)
	// A is shutting down: it records its call and asks for nothing more
	if n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 0); n.Status != store.NextReleased {
		t.Fatalf("complete = %v", n.Status)
	}
	select {
	case h := <-sub.C():
		if h.Kind != store.HintQueue || h.Queue != "q" {
			t.Fatalf("hint = %+v", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the work left behind was not announced")
	}
}

// TestSettleKeepsTheDueIndexRight: a poller raises a partition's due entry
// to the partition's earliest entry, removes it when the partition is
// empty, and never undoes a lower entry a writer set meanwhile.
func TestSettleKeepsTheDueIndexRight(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	p := task.Partition("q")
	now := e.clk.Now().UnixMilli()
	e.enqueue("q", e.clk.Now().Add(time.Hour), "http://x/later")
	if err := e.s.FlushDue(e.ctx); err != nil {
		t.Fatal(err)
	}
	due := e.s.Keys().DueIndex(store.DueTimers)
	want := float64(now + time.Hour.Milliseconds())
	if sc := e.rdb.ZScore(e.ctx, due, strconv.Itoa(p)).Val(); sc != want {
		t.Fatalf("due entry = %v, want %v", sc, want)
	}
	// a stale entry (the poller saw 10) moves up to the partition's earliest
	e.rdb.ZAdd(e.ctx, due, redisZ(10, p))
	if err := e.s.Settle(e.ctx, store.DueTimers, p, 10); err != nil {
		t.Fatal(err)
	}
	if sc := e.rdb.ZScore(e.ctx, due, strconv.Itoa(p)).Val(); sc != want {
		t.Fatalf("settled entry = %v, want %v", sc, want)
	}
	// a writer lowered it after the poller read 10: the poller leaves it
	e.rdb.ZAdd(e.ctx, due, redisZ(5, p))
	if err := e.s.Settle(e.ctx, store.DueTimers, p, 10); err != nil {
		t.Fatal(err)
	}
	if sc := e.rdb.ZScore(e.ctx, due, strconv.Itoa(p)).Val(); sc != 5 {
		t.Fatalf("entry = %v: the poller undid a writer's lower entry", sc)
	}
	// the partition empties: the entry goes
	if err := e.s.DeleteQueue(e.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Settle(e.ctx, store.DueTimers, p, 5); err != nil {
		t.Fatal(err)
	}
	if n := e.rdb.ZCard(e.ctx, due).Val(); n != 0 {
		t.Fatalf("due index keeps %d entries for an empty partition", n)
	}
}

func redisZ(score float64, p int) redis.Z { return redis.Z{Score: score, Member: p} }
