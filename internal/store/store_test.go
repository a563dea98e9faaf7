package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// env is a store on a private Redis with a fake clock; every test gets its
// own key prefix, so tests can share one server and run in parallel.
type env struct {
	t   *testing.T
	ctx context.Context
	s   *store.Store
	rdb *redis.Client
	clk *clock.Fake
}

// now moves the fake clock to the real time, for tests that also depend on
// Redis's own clock (lease expiry, a stream entry's idle time).
func (e *env) now() { e.clk.Set(time.Now()) }

func newEnv(t *testing.T) *env {
	t.Helper()
	t.Parallel()
	return openEnv(t)
}

// openEnv is newEnv for a test that needs more than one server.
func openEnv(t *testing.T) *env {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	clk := clock.NewFake(time.Now())
	s, err := store.New(rdb, "t:", clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, s: s, rdb: rdb, clk: clk}
}

func (e *env) queue(name string, mut func(*task.QueueConfig)) task.QueueConfig {
	e.t.Helper()
	cfg := task.DefaultQueueConfig()
	if mut != nil {
		mut(&cfg)
	}
	if _, err := e.s.PutQueue(e.ctx, name, &cfg, store.PutCreate); err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

func (e *env) enqueue(q string, due time.Time, urls ...string) []string {
	e.t.Helper()
	var ts []store.NewTask
	for _, u := range urls {
		ts = append(ts, store.NewTask{Spec: &task.Spec{URL: u}, Due: due})
	}
	res, err := e.s.Enqueue(e.ctx, q, ts, store.EnqueueOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	ids := make([]string, len(res.Tasks))
	for i, r := range res.Tasks {
		ids[i] = r.ID
	}
	return ids
}

func (e *env) claim(q, consumer string, want int) *store.Claim {
	e.t.Helper()
	c, err := e.s.Claim(e.ctx, q, consumer, store.ClaimOptions{TTL: 10 * time.Second, Grace: 0, Want: want})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// settleAll settles every entry of every due index, as pollers do.
func (e *env) settleAll() {
	e.t.Helper()
	if err := e.s.FlushDue(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	for _, kind := range []store.DueKind{store.DueReady, store.DueTimers, store.DueDead} {
		all, err := e.s.AllDue(e.ctx, kind)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range all {
			if err := e.s.Settle(e.ctx, kind, d.Partition, d.At); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

func (e *env) complete(ow *store.Owned, d *store.Delivery, o store.Outcome, want int) *store.Next {
	e.t.Helper()
	n, err := ow.Complete(e.ctx, &store.Completion{
		Delivery: d, Outcome: o, Retention: time.Hour, Due: e.clk.Now(), Want: want, HistoryLen: 3,
		Attempt: &store.AttemptRecord{At: 1, Attempt: d.Attempt, Status: 200},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func urls(ds []store.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Spec.URL)
	}
	return out
}

func TestEnqueueClaimCompleteInOrder(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	ids := e.enqueue("q", time.Time{}, "http://x/1", "http://x/2", "http://x/3")
	for _, id := range ids {
		if len(id) != task.IDLength {
			t.Fatalf("id %q: want %d characters", id, task.IDLength)
		}
		if p, err := task.IDPartition(id); err != nil || p != task.Partition("q") {
			t.Fatalf("id %q names partition %d (%v), want %d", id, p, err, task.Partition("q"))
		}
	}
	ti, err := e.s.GetTask(e.ctx, ids[0])
	if err != nil || ti.State != task.StateQueued || ti.Queue != "q" || ti.Spec.URL != "http://x/1" {
		t.Fatalf("GetTask = %+v, %v", ti, err)
	}

	c := e.claim("q", "A", 1)
	if c.Status != store.ClaimOK || len(c.Deliveries) != 1 || c.Deliveries[0].Spec.URL != "http://x/1" {
		t.Fatalf("claim = %+v", c)
	}
	if d := c.Deliveries[0]; d.Attempt != 1 || d.Seq < e.clk.Now().UnixMilli()*1000 || d.TaskID != ids[0] {
		t.Fatalf("delivery = %+v (the sequence starts at the clock's ms × 1000)", d)
	}
	first := c.Deliveries[0].Seq
	if other := e.claim("q", "B", 1); other.Status != store.ClaimOwned {
		t.Fatalf("second claim = %v, want owned", other.Status)
	}
	ti, _ = e.s.GetTask(e.ctx, ids[0])
	if ti.State != task.StateActive || ti.Attempts != 1 {
		t.Fatalf("running task = %+v", ti)
	}

	var got []string
	d := c.Deliveries[0]
	for {
		got = append(got, d.Spec.URL)
		n := e.complete(c.Owned, &d, store.OutcomeSucceeded, 1)
		if n.Status == store.NextReleased {
			break
		}
		if n.Status != store.NextEntries || len(n.Deliveries) != 1 {
			t.Fatalf("complete = %+v", n)
		}
		d = n.Deliveries[0]
	}
	if strings.Join(got, " ") != "http://x/1 http://x/2 http://x/3" {
		t.Fatalf("order = %v", got)
	}
	if d.Seq != first+2 {
		t.Fatalf("last sequence = %d, want %d", d.Seq, first+2)
	}
	ti, _ = e.s.GetTask(e.ctx, ids[2])
	if ti.State != task.StateSucceeded || len(ti.History) != 1 || ti.History[0].Status != 200 {
		t.Fatalf("finished task = %+v", ti)
	}
	if ttl := e.rdb.PTTL(e.ctx, e.s.Keys().Spec(task.Partition("q"), ids[2])).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("finished spec ttl = %v, want the retention", ttl)
	}
	qk := e.s.Keys().Queue("q")
	if n := e.rdb.Exists(e.ctx, qk.Lease).Val(); n != 0 {
		t.Fatal("lease kept after the queue emptied")
	}
	if _, err := e.rdb.ZScore(e.ctx, qk.Ready, "q").Result(); !errors.Is(err, redis.Nil) {
		t.Fatal("empty queue left in the ready index")
	}
	if n := e.rdb.XLen(e.ctx, qk.Stream).Val(); n != 0 {
		t.Fatalf("stream keeps %d acknowledged entries", n)
	}
}

func TestEnqueueHintsOnlyIdleQueues(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	sub := e.s.SubscribeHints(e.ctx, "A", 16)
	defer sub.Close()
	if err := sub.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPartitions(e.ctx, []int{task.Partition("q")}); err != nil {
		t.Fatal(err)
	}
	<-sub.Resync() // the shard channel is subscribed
	e.enqueue("q", time.Time{}, "http://x/1")
	if h := <-sub.C(); h.Kind != store.HintQueue || h.Queue != "q" {
		t.Fatalf("hint %+v", h)
	}
	c := e.claim("q", "A", 1)
	e.enqueue("q", time.Time{}, "http://x/2") // owned: the owner reads it, no hint
	n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1)
	if n.Status != store.NextEntries {
		t.Fatalf("complete = %v", n.Status)
	}
	e.complete(c.Owned, &n.Deliveries[0], store.OutcomeSucceeded, 1)
	e.enqueue("q", time.Time{}, "http://x/3")
	select {
	case h := <-sub.C():
		if h.Kind != store.HintQueue || h.Queue != "q" {
			t.Fatalf("second hint = %+v", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no hint for the idle queue")
	}
	select {
	case h := <-sub.C():
		t.Fatalf("a third hint %+v: an owned queue must not be hinted", h)
	default:
	}
}

func TestEnqueueUnknownQueueAndAutoCreate(t *testing.T) {
	e := newEnv(t)
	_, err := e.s.Enqueue(e.ctx, "nope", []store.NewTask{{Spec: &task.Spec{URL: "http://x"}}}, store.EnqueueOptions{})
	if !errors.Is(err, task.ErrQueueNotFound) {
		t.Fatalf("err = %v, want ErrQueueNotFound", err)
	}
	cfg := task.DefaultQueueConfig()
	if _, err := e.s.Enqueue(e.ctx, "auto", []store.NewTask{{Spec: &task.Spec{URL: "http://x"}}}, store.EnqueueOptions{CreateQueue: &cfg}); err != nil {
		t.Fatal(err)
	}
	qs, more, err := e.s.ListQueues(e.ctx, "", 10)
	if err != nil || more || len(qs) != 1 || qs[0].Name != "auto" {
		t.Fatalf("queues = %v, %v, %v", qs, more, err)
	}
	qi, err := e.s.GetQueue(e.ctx, "auto")
	if err != nil || qi.Counts.Queued != 1 || qi.Config.Type != task.KindRealtime {
		t.Fatalf("queue = %+v, %v", qi, err)
	}
	if _, err := e.s.PutQueue(e.ctx, "auto", &cfg, store.PutCreate); !errors.Is(err, task.ErrQueueExists) {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := e.s.PutQueue(e.ctx, "other", &cfg, store.PutUpdate); !errors.Is(err, task.ErrQueueNotFound) {
		t.Fatalf("update missing: %v", err)
	}
}

func TestIdenticalTasksAreAllKept(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	ids := e.enqueue("q", time.Time{}, "http://x/same", "http://x/same", "http://x/same")
	if ids[0] == ids[1] || ids[1] == ids[2] {
		t.Fatalf("ids collapsed: %v", ids)
	}
	if n, _ := e.s.CountUnfinished(e.ctx, "q"); n != 3 {
		t.Fatalf("count = %d, want 3", n)
	}
}

func TestTimedTasksPromoteInDueThenEnqueueOrder(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	now := e.clk.Now()
	due := now.Add(time.Minute)
	// Three separate requests with the same due time, then one due earlier.
	e.enqueue("q", due, "http://x/b")
	e.enqueue("q", due, "http://x/a")
	e.enqueue("q", due, "http://x/c")
	early := e.enqueue("q", now.Add(30*time.Second), "http://x/early")
	ti, err := e.s.GetTask(e.ctx, early[0])
	if err != nil || ti.State != task.StateScheduled || !ti.RunAt.Equal(now.Add(30*time.Second).Truncate(time.Millisecond)) {
		t.Fatalf("scheduled task = %+v, %v", ti, err)
	}
	if n, _ := e.s.CountUnfinished(e.ctx, "q"); n != 4 {
		t.Fatalf("count with future tasks = %d, want 4", n)
	}
	p := task.Partition("q")
	if err := e.s.FlushDue(e.ctx); err != nil {
		t.Fatal(err)
	}
	_, later, err := e.s.Due(e.ctx, store.DueTimers, 10, 10)
	if err != nil || len(later) != 1 || later[0].Partition != p || !later[0].Time().Equal(now.Add(30*time.Second).Truncate(time.Millisecond)) {
		t.Fatalf("due timers = %+v, %v", later, err)
	}
	r, err := e.s.Promote(e.ctx, p, 100)
	if err != nil || r.Moved != 0 {
		t.Fatalf("early promote = %+v, %v", r, err)
	}
	e.clk.Advance(2 * time.Minute)
	r, err = e.s.Promote(e.ctx, p, 100)
	if err != nil || r.Moved != 4 || len(r.Dues) != 4 || !r.NextDue.IsZero() {
		t.Fatalf("promote = %+v, %v", r, err)
	}
	// promoting again (a second scheduler) moves nothing
	if r, _ := e.s.Promote(e.ctx, p, 100); r.Moved != 0 {
		t.Fatalf("second promote moved %d", r.Moved)
	}
	c := e.claim("q", "A", 10)
	if got := strings.Join(urls(c.Deliveries), " "); got != "http://x/early http://x/b http://x/a http://x/c" {
		t.Fatalf("order = %s", got)
	}
}

func TestPromoteBatchesAcrossQueues(t *testing.T) {
	e := newEnv(t)
	// queues in one partition share the timer index
	var names []string
	for i := 0; len(names) < 3; i++ {
		n := fmt.Sprintf("q%d", i)
		if task.Partition(n) == task.Partition("q0") {
			names = append(names, n)
			e.queue(n, nil)
		}
	}
	due := e.clk.Now().Add(time.Second)
	for _, n := range names {
		e.enqueue(n, due, "http://x/1", "http://x/2")
	}
	e.clk.Advance(2 * time.Second)
	p := task.Partition("q0")
	total := 0
	for {
		r, err := e.s.Promote(e.ctx, p, 4)
		if err != nil {
			t.Fatal(err)
		}
		if r.Moved > 4 {
			t.Fatalf("moved %d over the limit", r.Moved)
		}
		if r.Moved == 0 {
			break
		}
		total += r.Moved
	}
	if total != 6 {
		t.Fatalf("promoted %d, want 6", total)
	}
	for _, n := range names {
		if qi, _ := e.s.GetQueue(e.ctx, n); qi.Counts.Queued != 2 || qi.Counts.Scheduled != 0 {
			t.Fatalf("%s counts = %+v", n, qi.Counts)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	o := store.EnqueueOptions{IdempotencyWindow: time.Hour}
	first, err := e.s.Enqueue(e.ctx, "q", []store.NewTask{{Spec: &task.Spec{URL: "http://x/1"}, IdempotencyKey: "k"}}, o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.s.Enqueue(e.ctx, "q", []store.NewTask{
		{Spec: &task.Spec{URL: "http://x/2"}, IdempotencyKey: "k"},
		{Spec: &task.Spec{URL: "http://x/3"}, IdempotencyKey: "k2"},
		{Spec: &task.Spec{URL: "http://x/4"}, IdempotencyKey: "k2"},
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	if first.Tasks[0].Existed || !again.Tasks[0].Existed || again.Tasks[0].ID != first.Tasks[0].ID {
		t.Fatalf("first %+v again %+v", first, again)
	}
	if again.Tasks[1].Existed || !again.Tasks[2].Existed || again.Tasks[2].ID != again.Tasks[1].ID {
		t.Fatalf("repeat within a batch: %+v", again)
	}
	if n, _ := e.s.CountUnfinished(e.ctx, "q"); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
}

func TestBacklogLimitIsAllOrNothing(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.MaxBacklog = 3 })
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	_, err := e.s.Enqueue(e.ctx, "q", []store.NewTask{{Spec: &task.Spec{URL: "http://x/3"}}, {Spec: &task.Spec{URL: "http://x/4"}}}, store.EnqueueOptions{})
	var full *task.QueueFullError
	if !errors.As(err, &full) || !errors.Is(err, task.ErrQueueFull) || full.Backlog != 2 || full.Max != 3 {
		t.Fatalf("err = %v", err)
	}
	if n, _ := e.s.CountUnfinished(e.ctx, "q"); n != 2 {
		t.Fatalf("a refused batch left %d tasks, want 2", n)
	}
	e.enqueue("q", e.clk.Now().Add(time.Hour), "http://x/3") // future tasks count too
	if _, err := e.s.Enqueue(e.ctx, "q", []store.NewTask{{Spec: &task.Spec{URL: "http://x/4"}}}, store.EnqueueOptions{}); !errors.Is(err, task.ErrQueueFull) {
		t.Fatalf("err = %v", err)
	}
}

func TestStaleOwnerWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	c := e.claim("q", "A", 1)
	// A's lease is lost and B takes over after A cleanly released: A's completion must be refused.
	if ok, err := c.Owned.Release(e.ctx, time.Time{}, true); !ok || err != nil {
		t.Fatalf("release = %v, %v", ok, err)
	}
	cb := e.claim("q", "B", 1)
	if cb.Status != store.ClaimOK || cb.Deliveries[0].Spec.URL != "http://x/1" || cb.Deliveries[0].Attempt != 2 {
		t.Fatalf("takeover = %+v", cb)
	}
	n, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &c.Deliveries[0], Outcome: store.OutcomeSucceeded, Retention: time.Hour, Want: 1})
	if err != nil || n.Status != store.NextStale {
		t.Fatalf("stale complete = %+v, %v", n, err)
	}
	if ok, _ := c.Owned.Renew(e.ctx); ok {
		t.Fatal("stale renew succeeded")
	}
	ti, _ := e.s.GetTask(e.ctx, c.Deliveries[0].TaskID)
	if ti.State != task.StateActive {
		t.Fatalf("a stale write changed the task: %+v", ti)
	}
	if cb.Owned.Lease().Token == c.Owned.Lease().Token {
		t.Fatal("takeover kept the epoch")
	}
}

func TestDeadOwnerRecoveredAfterTimeoutAndGrace(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.Timeout = task.Duration(300 * time.Millisecond) })
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	start := time.Now() // before the delivery: Redis counts idle time from it
	c, err := e.s.Claim(e.ctx, "q", "A", store.ClaimOptions{TTL: 100 * time.Millisecond, Grace: 200 * time.Millisecond, Want: 1})
	if err != nil || c.Status != store.ClaimOK {
		t.Fatalf("claim = %+v, %v", c, err)
	}
	// A dies. B must wait until the lease expired AND the entry has been idle
	// for timeout (300ms) + grace (200ms).
	var cb *store.Claim
	for {
		e.now()
		cb, err = e.s.Claim(e.ctx, "q", "B", store.ClaimOptions{TTL: time.Second, Grace: 200 * time.Millisecond, Want: 1})
		if err != nil {
			t.Fatal(err)
		}
		if cb.Status == store.ClaimOK {
			break
		}
		if cb.Status != store.ClaimOwned && cb.Status != store.ClaimWait {
			t.Fatalf("claim = %v", cb.Status)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("never recovered")
		}
		time.Sleep(20 * time.Millisecond) // polling, as a dispatcher does
	}
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Fatalf("recovered after %v, before timeout+grace (500ms)", waited)
	}
	d := cb.Deliveries[0]
	if d.Spec.URL != "http://x/1" || d.Attempt != 2 || d.Seq <= c.Deliveries[0].Seq {
		t.Fatalf("recovered delivery = %+v", d)
	}
	// the dead consumer is gone from the group
	cons, _ := e.rdb.XInfoConsumers(e.ctx, e.s.Keys().Queue("q").Stream, "htq").Result()
	for _, c := range cons {
		if c.Name == "A" {
			t.Fatal("dead consumer kept")
		}
	}
}

func TestPerTaskTimeoutGovernsRecovery(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.Timeout = task.Duration(50 * time.Millisecond) })
	if _, err := e.s.Enqueue(e.ctx, "q", []store.NewTask{{Spec: &task.Spec{URL: "http://x/1", TimeoutMs: 60_000}}}, store.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.s.Claim(e.ctx, "q", "A", store.ClaimOptions{TTL: 50 * time.Millisecond, Grace: 0, Want: 1}); c.Status != store.ClaimOK {
		t.Fatal(c.Status)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		e.now()
		c, err := e.s.Claim(e.ctx, "q", "B", store.ClaimOptions{TTL: time.Second, Grace: 0, Want: 1})
		if err != nil {
			t.Fatal(err)
		}
		if c.Status == store.ClaimOK {
			t.Fatal("took over a call whose 60s timeout has not passed")
		}
		if c.Status == store.ClaimWait && c.Until.Sub(e.clk.Now()) > 55*time.Second {
			return // told to wait for the task's own timeout
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("never told to wait for the task timeout")
}

func TestVariableAgainAndHoldReattempt(t *testing.T) {
	e := newEnv(t)
	e.queue("v", func(c *task.QueueConfig) { c.Type = task.KindVariable })
	ids := e.enqueue("v", time.Time{}, "http://x/poll", "http://x/other")
	c := e.claim("v", "A", 1)
	d := c.Deliveries[0]
	// again now: back to the tail of the stream, behind "other"
	n, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &d, Outcome: store.OutcomeAgain, Due: e.clk.Now(), K: 1, SetK: true, Want: 1})
	if err != nil || n.Status != store.NextEntries || n.Deliveries[0].Spec.URL != "http://x/other" {
		t.Fatalf("again now = %+v, %v", n, err)
	}
	n = e.complete(c.Owned, &n.Deliveries[0], store.OutcomeSucceeded, 1)
	if n.Status != store.NextEntries || n.Deliveries[0].TaskID != ids[0] || n.Deliveries[0].K != 1 || n.Deliveries[0].Attempt != 1 {
		t.Fatalf("variable task again = %+v", n.Deliveries)
	}
	// again later: delayed
	d = n.Deliveries[0]
	n, err = c.Owned.Complete(e.ctx, &store.Completion{Delivery: &d, Outcome: store.OutcomeAgain, Due: e.clk.Now().Add(2 * time.Second), K: 2, SetK: true, Want: 1})
	if err != nil || n.Status != store.NextReleased {
		t.Fatalf("again later = %+v, %v", n, err)
	}
	ti, _ := e.s.GetTask(e.ctx, ids[0])
	if ti.State != task.StateScheduled || ti.K != 2 {
		t.Fatalf("rescheduled task = %+v", ti)
	}
	e.clk.Advance(3 * time.Second)
	if r, _ := e.s.Promote(e.ctx, task.Partition("v"), 10); r.Moved != 1 {
		t.Fatalf("promoted %d", r.Moved)
	}
	c = e.claim("v", "A", 1)
	d = c.Deliveries[0]
	// a strict retry holds the head; reattempt redelivers the same entry
	n, err = c.Owned.Complete(e.ctx, &store.Completion{Delivery: &d, Outcome: store.OutcomeHold, Due: e.clk.Now().Add(time.Second), Want: 1})
	if err != nil || n.Status != store.NextHeld {
		t.Fatalf("hold = %+v, %v", n, err)
	}
	ti, _ = e.s.GetTask(e.ctx, ids[0])
	if ti.State != task.StateRetrying {
		t.Fatalf("held task state = %s", ti.State)
	}
	n, err = c.Owned.Reattempt(e.ctx, &d)
	if err != nil || n.Status != store.NextEntries || n.Deliveries[0].EntryID != d.EntryID || n.Deliveries[0].Attempt != 2 {
		t.Fatalf("reattempt = %+v, %v", n, err)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	ids := e.enqueue("q", time.Time{}, "http://x/1", "http://x/2", "http://x/3")
	later := e.enqueue("q", e.clk.Now().Add(time.Hour), "http://x/later")
	for _, id := range []string{ids[1], later[0]} {
		if r, err := e.s.CancelTask(e.ctx, id, time.Hour); err != nil || r != store.Cancelled {
			t.Fatalf("cancel %s = %v, %v", id, r, err)
		}
	}
	if r, _ := e.s.Promote(e.ctx, task.Partition("q"), 10); r.Moved != 0 || !r.NextDue.IsZero() {
		t.Fatalf("cancelled timed task still scheduled: %+v", r)
	}
	c := e.claim("q", "A", 1)
	if r, err := e.s.CancelTask(e.ctx, ids[0], time.Hour); err != nil || r != store.Cancelling {
		t.Fatalf("cancel running = %v, %v", r, err)
	}
	// the running task's failure does not retry: it ends cancelled
	n, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &c.Deliveries[0], Outcome: store.OutcomeHold, Due: e.clk.Now(), Want: 1})
	if err != nil || n.Status != store.NextEntries || n.Deliveries[0].Spec.URL != "http://x/3" {
		t.Fatalf("after cancel = %+v, %v (the cancelled queued task must be skipped)", n, err)
	}
	for _, id := range []string{ids[0], ids[1], later[0]} {
		if ti, _ := e.s.GetTask(e.ctx, id); ti.State != task.StateCancelled {
			t.Fatalf("%s state = %s", id, ti.State)
		}
	}
	if _, err := e.s.CancelTask(e.ctx, ids[0], time.Hour); !errors.Is(err, task.ErrTaskFinished) {
		t.Fatalf("cancel twice: %v", err)
	}
	if _, err := e.s.CancelTask(e.ctx, "ff0000000000ff", time.Hour); !errors.Is(err, task.ErrTaskNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
	if _, err := e.s.CancelTask(e.ctx, "../etc", time.Hour); !errors.Is(err, task.ErrTaskNotFound) {
		t.Fatalf("cancel malformed: %v", err)
	}
}

func TestDeadLetters(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	ids := e.enqueue("q", time.Time{}, "http://x/1")
	c := e.claim("q", "A", 1)
	n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeDead, 1)
	if n.Status != store.NextReleased {
		t.Fatalf("complete = %v", n.Status)
	}
	qi, _ := e.s.GetQueue(e.ctx, "q")
	if qi.Counts.Dead != 1 || qi.Counts.Unfinished() != 0 {
		t.Fatalf("counts = %+v", qi.Counts)
	}
	dead, _, err := e.s.ListTasks(e.ctx, "q", task.StateDead, "", 10)
	if err != nil || len(dead) != 1 || dead[0].ID != ids[0] || dead[0].State != task.StateDead {
		t.Fatalf("dead list = %v, %v", dead, err)
	}
	if r, err := e.s.CancelTask(e.ctx, ids[0], time.Hour); err != nil || r != store.Discarded {
		t.Fatalf("discard dead = %v, %v", r, err)
	}
	if qi, _ := e.s.GetQueue(e.ctx, "q"); qi.Counts.Dead != 0 {
		t.Fatal("discarded dead task still listed")
	}
}

func TestDeleteQueueRemovesEverythingAndFencesOwner(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	var ts []store.NewTask
	for i := range 1200 {
		due := time.Time{}
		if i%3 == 0 {
			due = e.clk.Now().Add(time.Hour)
		}
		ts = append(ts, store.NewTask{Spec: &task.Spec{URL: fmt.Sprintf("http://x/%d", i)}, Due: due})
	}
	if _, err := e.s.Enqueue(e.ctx, "q", ts, store.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	c := e.claim("q", "A", 1)
	if err := e.s.DeleteQueue(e.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteQueue(e.ctx, "q"); !errors.Is(err, task.ErrQueueNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if n, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &c.Deliveries[0], Outcome: store.OutcomeSucceeded, Retention: time.Hour, Want: 1}); err != nil || n.Status != store.NextStale {
		t.Fatalf("owner of a deleted queue: %+v, %v", n, err)
	}
	// the due indexes still name the partition until a poller looks at it
	e.settleAll()
	keys, err := e.rdb.Keys(e.ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		// the task-id and epoch counters, and the sequence the name reached
		if !strings.HasSuffix(k, ":seq") && !strings.HasSuffix(k, ":epoch") && !strings.HasSuffix(k, ":seqs") {
			t.Fatalf("key %q survived the delete (of %d keys)", k, len(keys))
		}
	}
	// the name can be used again
	e.queue("q", nil)
	if n, _ := e.s.CountUnfinished(e.ctx, "q"); n != 0 {
		t.Fatalf("recreated queue has %d tasks", n)
	}
	if n := e.rdb.Exists(e.ctx, e.s.Keys().Seqs(task.Partition("q"))).Val(); n != 0 {
		t.Fatal("the kept sequence outlived the re-creation")
	}
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	if err := e.s.SetPaused(e.ctx, "q", true); err != nil {
		t.Fatal(err)
	}
	if c := e.claim("q", "A", 1); c.Status != store.ClaimPaused {
		t.Fatalf("claim paused = %v", c.Status)
	}
	if err := e.s.SetPaused(e.ctx, "q", false); err != nil {
		t.Fatal(err)
	}
	c := e.claim("q", "A", 1)
	if c.Status != store.ClaimOK {
		t.Fatalf("claim resumed = %v", c.Status)
	}
	// pausing while owned: the in-flight call finishes, nothing new starts
	if err := e.s.SetPaused(e.ctx, "q", true); err != nil {
		t.Fatal(err)
	}
	if n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1); n.Status != store.NextReleased {
		t.Fatalf("complete while paused = %v", n.Status)
	}
	if qi, _ := e.s.GetQueue(e.ctx, "q"); qi.Counts.Queued != 1 || !qi.Paused {
		t.Fatalf("paused queue = %+v", qi)
	}
	if err := e.s.SetPaused(e.ctx, "missing", true); !errors.Is(err, task.ErrQueueNotFound) {
		t.Fatalf("pause missing: %v", err)
	}
}

func TestRateLimitAcrossOwners(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.Rate, c.Burst = 1, 2 })
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2", "http://x/3", "http://x/4")
	c := e.claim("q", "A", 5)
	if len(c.Deliveries) != 2 {
		t.Fatalf("burst of 2 delivered %d", len(c.Deliveries))
	}
	n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1)
	if n.Status != store.NextRateWait || n.Until.Sub(e.clk.Now().Truncate(time.Millisecond)) != time.Second {
		t.Fatalf("complete = %+v, want a 1s rate wait", n)
	}
	e.complete(c.Owned, &c.Deliveries[1], store.OutcomeSucceeded, 0)
	if _, err := c.Owned.Release(e.ctx, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	// a new owner gets no fresh burst
	if cb := e.claim("q", "B", 5); cb.Status != store.ClaimWait {
		t.Fatalf("new owner claim = %v, want wait", cb.Status)
	}
	e.clk.Advance(time.Second)
	if cb := e.claim("q", "B", 5); cb.Status != store.ClaimOK || len(cb.Deliveries) != 1 {
		t.Fatalf("after 1s: %v with %d deliveries, want 1", cb.Status, len(cb.Deliveries))
	}
}

func TestRepairRestoresIndexes(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	e.enqueue("q", time.Time{}, "http://x/1")
	e.enqueue("q", e.clk.Now().Add(time.Hour), "http://x/2")
	k := e.s.Keys().Queue("q")
	e.rdb.ZRem(e.ctx, k.Ready, "q")
	e.rdb.ZRem(e.ctx, k.Timers, "q")
	e.rdb.ZRem(e.ctx, e.s.Keys().Names(), "q")
	p := task.Partition("q")
	if r, err := e.s.RepairStep(e.ctx, p, 0, 100); err != nil || r.Fixed != 2 || r.Checked != 1 || r.Next != 0 {
		t.Fatalf("repair = %+v, %v", r, err)
	}
	if qs, _, _ := e.s.ListQueues(e.ctx, "", 10); len(qs) != 1 {
		t.Fatalf("the sweep did not put the name back: %v", qs)
	}
	if r, _ := e.s.RepairStep(e.ctx, p, 0, 100); r.Fixed != 0 {
		t.Fatalf("second repair fixed %d", r.Fixed)
	}
	// after a script cache flush (as after a Redis restart) repair reloads
	e.rdb.ScriptFlush(e.ctx)
	if _, err := e.s.RepairStep(e.ctx, p, 0, 100); err != nil {
		t.Fatal(err)
	}
}

func TestListTasks(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	ids := e.enqueue("q", time.Time{}, "http://x/1", "http://x/2", "http://x/3", "http://x/4")
	e.enqueue("q", e.clk.Now().Add(time.Hour), "http://x/later")
	e.claim("q", "A", 1)
	active, _, err := e.s.ListTasks(e.ctx, "q", task.StateActive, "", 10)
	if err != nil || len(active) != 1 || active[0].ID != ids[0] {
		t.Fatalf("active = %v, %v", active, err)
	}
	page, next, err := e.s.ListTasks(e.ctx, "q", task.StateQueued, "", 2)
	if err != nil || len(page) != 2 || page[0].ID != ids[1] || next == "" {
		t.Fatalf("queued page 1 = %v, %q, %v", page, next, err)
	}
	page, _, err = e.s.ListTasks(e.ctx, "q", task.StateQueued, next, 2)
	if err != nil || len(page) != 1 || page[0].ID != ids[3] {
		t.Fatalf("queued page 2 = %v, %v", page, err)
	}
	sched, _, err := e.s.ListTasks(e.ctx, "q", task.StateScheduled, "", 10)
	if err != nil || len(sched) != 1 || sched[0].Spec.URL != "http://x/later" {
		t.Fatalf("scheduled = %v, %v", sched, err)
	}
	if _, _, err := e.s.ListTasks(e.ctx, "nope", task.StateQueued, "", 10); !errors.Is(err, task.ErrQueueNotFound) {
		t.Fatalf("unknown queue: %v", err)
	}
}

func TestCompleteIsIdempotent(t *testing.T) {
	e := newEnv(t)
	e.queue("v", func(c *task.QueueConfig) { c.Type = task.KindVariable })
	ids := e.enqueue("v", time.Time{}, "http://x/poll")
	c := e.claim("v", "A", 1)
	comp := &store.Completion{Delivery: &c.Deliveries[0], Outcome: store.OutcomeAgain, Due: e.clk.Now(), K: 1, SetK: true, Want: 0,
		Attempt: &store.AttemptRecord{Status: 200}, HistoryLen: 5}
	for range 2 { // the caller lost the first reply and sends it again
		if _, err := c.Owned.Complete(e.ctx, comp); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.rdb.XLen(e.ctx, e.s.Keys().Queue("v").Stream).Val(); n != 1 {
		t.Fatalf("a repeated completion re-added the task: %d entries", n)
	}
	if ti, _ := e.s.GetTask(e.ctx, ids[0]); len(ti.History) != 1 {
		t.Fatalf("history = %v", ti.History)
	}
}

func TestUncleanReleaseWaitsForRecovery(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.Timeout = task.Duration(time.Minute) })
	e.enqueue("q", time.Time{}, "http://x/1")
	c := e.claim("q", "A", 1)
	if ok, err := c.Owned.Release(e.ctx, time.Time{}, false); !ok || err != nil {
		t.Fatalf("release = %v, %v", ok, err)
	}
	if cb := e.claim("q", "B", 1); cb.Status != store.ClaimWait {
		t.Fatalf("claim after an unclean release = %v, want wait", cb.Status)
	}
}

func TestPullAfterRateWait(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.Rate, c.Burst = 1, 1 })
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	c := e.claim("q", "A", 0)
	if len(c.Deliveries) != 1 {
		t.Fatalf("delivered %d", len(c.Deliveries))
	}
	n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1)
	if n.Status != store.NextRateWait {
		t.Fatalf("complete = %v", n.Status)
	}
	e.clk.Advance(time.Second)
	n, err := c.Owned.Pull(e.ctx, 1)
	if err != nil || n.Status != store.NextEntries || n.Deliveries[0].Spec.URL != "http://x/2" {
		t.Fatalf("pull = %+v, %v", n, err)
	}
}

func TestPurgeKeepsRunningAndDead(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	ids := e.enqueue("q", time.Time{}, "http://x/1", "http://x/2", "http://x/dead")
	c := e.claim("q", "A", 1) // x/1 runs
	later := e.enqueue("q", e.clk.Now().Add(time.Hour), "http://x/later")
	var more []store.NewTask
	for i := range 1100 {
		more = append(more, store.NewTask{Spec: &task.Spec{URL: fmt.Sprintf("http://x/m%d", i)}})
	}
	if _, err := e.s.Enqueue(e.ctx, "q", more, store.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := e.s.Purge(e.ctx, "q")
	if err != nil || n != 2+1100+1 {
		t.Fatalf("purged %d, %v; want 1103", n, err)
	}
	qi, _ := e.s.GetQueue(e.ctx, "q")
	if qi.Counts.Queued != 0 || qi.Counts.Scheduled != 0 || qi.Counts.Active != 1 {
		t.Fatalf("after purge: %+v", qi.Counts)
	}
	for _, id := range []string{ids[1], ids[2], later[0]} {
		if _, err := e.s.GetTask(e.ctx, id); !errors.Is(err, task.ErrTaskNotFound) {
			t.Fatalf("purged task %s still readable: %v", id, err)
		}
	}
	if n := e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1); n.Status != store.NextReleased {
		t.Fatalf("the running call's completion = %v", n.Status)
	}
	if _, err := e.s.Purge(e.ctx, "missing"); !errors.Is(err, task.ErrQueueNotFound) {
		t.Fatalf("purge missing: %v", err)
	}
}

func TestRetryDeadAndCancelled(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	ids := e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	c := e.claim("q", "A", 1)
	e.complete(c.Owned, &c.Deliveries[0], store.OutcomeDead, 0)
	if _, err := e.s.CancelTask(e.ctx, ids[1], time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.s.RetryTask(e.ctx, "ff0000000000ff"); !errors.Is(err, task.ErrTaskNotFound) {
		t.Fatalf("retry unknown: %v", err)
	}
	for _, id := range ids {
		if err := e.s.RetryTask(e.ctx, id); err != nil {
			t.Fatalf("retry %s: %v", id, err)
		}
	}
	if err := e.s.RetryTask(e.ctx, ids[0]); !errors.Is(err, task.ErrTaskNotDead) {
		t.Fatalf("retry a queued task: %v", err)
	}
	qi, _ := e.s.GetQueue(e.ctx, "q")
	if qi.Counts.Dead != 0 || qi.Counts.Queued != 2 {
		t.Fatalf("counts after retry: %+v", qi.Counts)
	}
	if ttl := e.rdb.PTTL(e.ctx, e.s.Keys().Spec(task.Partition("q"), ids[0])).Val(); ttl != -1 {
		t.Fatalf("a retried task still expires in %v", ttl)
	}
	c = e.claim("q", "A", 2)
	// the cancelled task kept its place in the stream; the dead one went to the tail
	if len(c.Deliveries) != 2 || c.Deliveries[0].TaskID != ids[1] || c.Deliveries[1].TaskID != ids[0] || c.Deliveries[1].Attempt != 1 {
		t.Fatalf("redelivered = %+v", c.Deliveries)
	}
	ti, _ := e.s.GetTask(e.ctx, ids[0])
	if len(ti.History) != 1 {
		t.Fatalf("history lost on retry: %+v", ti.History)
	}
}

func TestCancelKeepsTaskForItsQueuesRetention(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.Retention = task.Duration(5 * time.Minute) })
	ids := e.enqueue("q", time.Time{}, "http://x/1")
	if _, err := e.s.CancelTask(e.ctx, ids[0], time.Hour); err != nil {
		t.Fatal(err)
	}
	ttl := e.rdb.PTTL(e.ctx, e.s.Keys().Spec(task.Partition("q"), ids[0])).Val()
	if ttl <= 0 || ttl > 5*time.Minute {
		t.Fatalf("cancelled task kept for %v, want the queue's 5m", ttl)
	}
}

func TestClaimAgainAfterALostReplyGetsTheEntriesBack(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.Timeout = task.Duration(time.Minute) })
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	first := e.claim("q", "A~1", 1) // its reply is "lost": the caller never saw it
	again := e.claim("q", "A~1", 1)
	if again.Status != store.ClaimOK || again.Owned.Lease().Token != first.Owned.Lease().Token || len(again.Deliveries) != 1 ||
		again.Deliveries[0].TaskID != first.Deliveries[0].TaskID {
		t.Fatalf("repeated claim = %+v, want the same lease and entry back", again)
	}
	// another process still waits for the lease
	if other := e.claim("q", "B~1", 1); other.Status != store.ClaimOwned {
		t.Fatalf("another consumer's claim = %v", other.Status)
	}
	if n := e.complete(again.Owned, &again.Deliveries[0], store.OutcomeSucceeded, 1); n.Status != store.NextEntries || n.Deliveries[0].Spec.URL != "http://x/2" {
		t.Fatalf("complete after the recovered claim = %+v", n)
	}
}

func TestNotApplied(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	st, err := store.New(srv.Client(t), "t:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := st.Init(ctx); err != nil {
		t.Fatal(err)
	}
	// a Redis error reply: nothing ran
	srv.Client(t).ConfigSet(ctx, "maxmemory", "1")
	cfg := task.DefaultQueueConfig()
	_, err = st.PutQueue(ctx, "q", &cfg, store.PutCreate)
	if err == nil || !st.NotApplied(err) {
		t.Fatalf("OOM reply: err %v, NotApplied %v", err, st.NotApplied(err))
	}
	// no connection at all: nothing was sent
	down, err := store.NewClient(store.Options{Addrs: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := store.New(down, "t:", clock.Real{})
	_, err = st2.PutQueue(ctx, "q", &cfg, store.PutCreate)
	if err == nil || !st2.NotApplied(err) {
		t.Fatalf("refused connection: err %v, NotApplied %v", err, st2.NotApplied(err))
	}
	if st.NotApplied(nil) || st.NotApplied(context.DeadlineExceeded) {
		t.Fatal("a timeout must leave the outcome unknown")
	}
}

func TestRateLimitedRetryWaitsForAToken(t *testing.T) {
	e := newEnv(t)
	e.queue("q", func(c *task.QueueConfig) { c.Rate, c.Burst = 1, 1 })
	e.enqueue("q", time.Time{}, "http://x/1", "http://x/2")
	c := e.claim("q", "A", 1)
	d := c.Deliveries[0]
	n, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &d, Outcome: store.OutcomeHold, Due: e.clk.Now(), Want: 1})
	if err != nil || n.Status != store.NextHeld {
		t.Fatalf("hold = %+v, %v", n, err)
	}
	// the retry is a new call: the one token went to the first attempt
	n, err = c.Owned.Reattempt(e.ctx, &d)
	if err != nil || n.Status != store.NextRateWait || n.Until.Sub(e.clk.Now().Truncate(time.Millisecond)) != time.Second {
		t.Fatalf("reattempt without a token = %+v, %v; want a 1s rate wait", n, err)
	}
	// renewing the claim of a delivered entry is not a call: no token needed
	if n, err = c.Owned.Reclaim(e.ctx, &d); err != nil || n.Status != store.NextEntries {
		t.Fatalf("reclaim = %+v, %v", n, err)
	}
	e.clk.Advance(time.Second)
	n, err = c.Owned.Reattempt(e.ctx, &d)
	if err != nil || n.Status != store.NextEntries || n.Deliveries[0].EntryID != d.EntryID {
		t.Fatalf("reattempt with a token = %+v, %v", n, err)
	}
	// and it spent that token
	if n, _ = c.Owned.Reattempt(e.ctx, &d); n.Status != store.NextRateWait {
		t.Fatalf("second reattempt in the same second = %v, want a rate wait", n.Status)
	}
}

// rateLimitedDeadOwner makes a queue (1 call/s, burst 3, concurrency 3)
// whose owner A dies holding three calls of its four tasks, and returns the
// tasks and the claim by which B, one second of tokens later, recovers them.
func (e *env) rateLimitedDeadOwner() ([]string, *store.Claim) {
	e.t.Helper()
	e.queue("q", func(c *task.QueueConfig) {
		c.Rate, c.Burst, c.Concurrency = 1, 3, 3
		c.Timeout = task.Duration(50 * time.Millisecond)
	})
	ids := e.enqueue("q", time.Time{}, "http://x/1", "http://x/2", "http://x/3", "http://x/4")
	if a, err := e.s.Claim(e.ctx, "q", "A", store.ClaimOptions{TTL: 100 * time.Millisecond, Grace: 0, Want: 3}); err != nil || len(a.Deliveries) != 3 {
		e.t.Fatalf("claim A = %+v, %v", a, err)
	}
	e.clk.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := e.s.Claim(e.ctx, "q", "B", store.ClaimOptions{TTL: 10 * time.Second, Grace: 0, Want: 3})
		if err != nil {
			e.t.Fatal(err)
		}
		if b.Status == store.ClaimOK {
			return ids, b
		}
		if b.Status != store.ClaimOwned && b.Status != store.ClaimWait || time.Now().After(deadline) {
			e.t.Fatalf("never recovered: %v", b.Status)
		}
		time.Sleep(20 * time.Millisecond) // polling, as a dispatcher does
	}
}

// A dead owner's in-flight entries are recovered under the rate limit: the
// new owner calls them in order, no faster than the limit, before new ones.
func TestRecoveryUnderRateLimitKeepsOrderAndRate(t *testing.T) {
	e := newEnv(t)
	_, b := e.rateLimitedDeadOwner()
	var err error
	if got := urls(b.Deliveries); len(got) != 1 || got[0] != "http://x/1" || b.Deliveries[0].Attempt != 2 {
		t.Fatalf("recovered with one token = %v (%+v)", got, b.Deliveries)
	}
	n := e.complete(b.Owned, &b.Deliveries[0], store.OutcomeSucceeded, 3)
	if n.Status != store.NextRateWait {
		t.Fatalf("complete without tokens = %v, want a rate wait", n.Status)
	}
	e.clk.Advance(2 * time.Second)
	n, err = b.Owned.Pull(e.ctx, 3)
	if err != nil || n.Status != store.NextEntries {
		t.Fatalf("pull = %+v, %v", n, err)
	}
	if got := urls(n.Deliveries); strings.Join(got, " ") != "http://x/2 http://x/3" {
		t.Fatalf("two tokens delivered %v, want the two recovered entries in order", got)
	}
	for _, d := range n.Deliveries {
		if d.Attempt != 2 {
			t.Fatalf("recovered entry %s attempt %d, want 2", d.Spec.URL, d.Attempt)
		}
	}
	e.clk.Advance(time.Second)
	n = e.complete(b.Owned, &n.Deliveries[0], store.OutcomeSucceeded, 2)
	if got := urls(n.Deliveries); n.Status != store.NextEntries || strings.Join(got, " ") != "http://x/4" {
		t.Fatalf("after the recovered entries = %+v", n)
	}
}

// Entries a new owner keeps aside for rate tokens stay aside when its claim
// is repeated after a lost reply, and one cancelled while it waits there is
// finished as cancelled, not called.
func TestRecoveredEntriesAsideSurviveARepeatedClaimAndCancel(t *testing.T) {
	e := newEnv(t)
	ids, b := e.rateLimitedDeadOwner()
	var err error
	if got := urls(b.Deliveries); strings.Join(got, " ") != "http://x/1" {
		t.Fatalf("recovered with one token = %v", got)
	}
	// B's reply was lost and it claims again: it gets back what that reply
	// delivered, not the entries kept aside.
	again := e.claim("q", "B", 3)
	if got := urls(again.Deliveries); again.Status != store.ClaimOK || strings.Join(got, " ") != "http://x/1" {
		t.Fatalf("repeated claim = %v %v, want x/1 only", again.Status, got)
	}
	if r, err := e.s.CancelTask(e.ctx, ids[1], time.Hour); err != nil || r != store.Cancelling {
		t.Fatalf("cancel of a task the dead owner had in flight = %v, %v", r, err)
	}
	n := e.complete(again.Owned, &again.Deliveries[0], store.OutcomeSucceeded, 3)
	if n.Status != store.NextRateWait {
		t.Fatalf("complete without tokens = %v", n.Status)
	}
	e.clk.Advance(2 * time.Second)
	n, err = again.Owned.Pull(e.ctx, 3)
	if err != nil || n.Status != store.NextEntries {
		t.Fatalf("pull = %+v, %v", n, err)
	}
	if got := urls(n.Deliveries); strings.Join(got, " ") != "http://x/3 http://x/4" {
		t.Fatalf("two tokens delivered %v, want x/3 (recovered) then x/4, the cancelled x/2 skipped", got)
	}
	ti, err := e.s.GetTask(e.ctx, ids[1])
	if err != nil || ti.State != task.StateCancelled || ti.Attempts != 1 {
		t.Fatalf("cancelled task = %+v, %v; want cancelled after its one attempt", ti, err)
	}
}

// TestEnqueueNowKeepsBehindDueTimedTasks: a task due now must not pass a
// task of its queue that fell due earlier but still waits in the delayed
// set because no scheduler promoted it yet (the leader died, a lock TTL
// passes before another leads). Found by the randomized fault test
// (test/fault TestRandomFaults: timed tasks called out of due order after a
// scheduler kill).
func TestEnqueueNowKeepsBehindDueTimedTasks(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	e.enqueue("q", e.clk.Now().Add(time.Second), "http://x/timed1", "http://x/timed2")
	e.enqueue("q", e.clk.Now().Add(time.Hour), "http://x/later")
	e.clk.Advance(2 * time.Second) // due, but no scheduler ran
	e.enqueue("q", e.clk.Now(), "http://x/now")
	c := e.claim("q", "A", 10)
	if got := strings.Join(urls(c.Deliveries), " "); got != "http://x/timed1 http://x/timed2 http://x/now" {
		t.Fatalf("order = %s, want the due timed tasks first", got)
	}
	if n, _ := e.s.CountUnfinished(e.ctx, "q"); n != 4 {
		t.Fatalf("count = %d, want 4 (the later task still scheduled)", n)
	}
}

// TestEnqueueNowWaitsBehindMoreDueTasksThanItPromotes: the enqueue moves at
// most 100 due timed tasks itself; with more due, the task due now joins
// the delayed set behind them and the scheduler's promotion keeps the order.
func TestEnqueueNowWaitsBehindMoreDueTasksThanItPromotes(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	var timed []string
	for i := range 101 {
		timed = append(timed, fmt.Sprintf("http://x/timed%d", i))
	}
	e.enqueue("q", e.clk.Now().Add(time.Second), timed...)
	e.clk.Advance(2 * time.Second) // due, but no scheduler ran
	e.enqueue("q", e.clk.Now(), "http://x/now")
	if r, err := e.s.Promote(e.ctx, task.Partition("q"), 1000); err != nil || r.Moved != 2 {
		t.Fatalf("promote: %+v, %v; want the last timed task and the task due now moved", r, err)
	}
	got := urls(e.claim("q", "A", 200).Deliveries)
	if want := append(timed, "http://x/now"); !slices.Equal(got, want) {
		t.Fatalf("order = %v, want the 101 timed tasks, then the task due now", got)
	}
}

// TestStartKUntilTheFirstCall: a variable task created with a call count
// (moved from the original by migrate-legacy) is delivered with it and
// shows it until its first call writes its own; then the state's k wins,
// a reset to 0 included.
func TestStartKUntilTheFirstCall(t *testing.T) {
	e := newEnv(t)
	e.queue("v", func(c *task.QueueConfig) { c.Type = task.KindVariable })
	res, err := e.s.Enqueue(e.ctx, "v", []store.NewTask{{Spec: &task.Spec{URL: "http://x/poll", StartK: 7}}}, store.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Tasks[0].ID
	if ti, err := e.s.GetTask(e.ctx, id); err != nil || ti.K != 7 {
		t.Fatalf("before the first call: k = %+v, %v; want 7", ti, err)
	}
	c := e.claim("v", "A", 1)
	d := c.Deliveries[0]
	if d.K != 7 {
		t.Fatalf("delivered with k %d, want the start count 7", d.K)
	}
	// the call resets the task (k 0): the spec's start count must not come back
	n, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &d, Outcome: store.OutcomeAgain, Due: e.clk.Now(), K: 0, SetK: true, Want: 1})
	if err != nil || n.Status != store.NextEntries {
		t.Fatalf("again now = %+v, %v", n, err)
	}
	if n.Deliveries[0].K != 0 {
		t.Fatalf("after a reset delivered with k %d, want 0", n.Deliveries[0].K)
	}
	if ti, _ := e.s.GetTask(e.ctx, id); ti.K != 0 {
		t.Fatalf("after a reset k = %d, want 0", ti.K)
	}
}

// TestNewTaskIDsSurviveACounterRewind: a failover or an AOF loss can set a
// partition's task-id counter back; a new task must then get an id no task
// holds, leaving the existing task's spec as it was.
func TestNewTaskIDsSurviveACounterRewind(t *testing.T) {
	e := newEnv(t)
	e.queue("r", nil)
	first := e.enqueue("r", time.Time{}, "http://x/first")[0]
	seq := e.s.Keys().Queue("r").Seq
	if err := e.rdb.Set(e.ctx, seq, 0, 0).Err(); err != nil { // rewind
		t.Fatal(err)
	}
	second := e.enqueue("r", time.Time{}, "http://x/second")[0]
	if second == first {
		t.Fatalf("the rewound counter gave the id %s twice", first)
	}
	ti, err := e.s.GetTask(e.ctx, first)
	if err != nil || ti.Spec.URL != "http://x/first" {
		t.Fatalf("the first task's spec after the rewind: %+v, %v", ti, err)
	}
	if ti, err := e.s.GetTask(e.ctx, second); err != nil || ti.Spec.URL != "http://x/second" {
		t.Fatalf("the second task: %+v, %v", ti, err)
	}
}

// listed reports whether the names index holds q.
func (e *env) listed(q string) bool {
	e.t.Helper()
	_, err := e.rdb.ZScore(e.ctx, e.s.Keys().Names(), q).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		e.t.Fatal(err)
	}
	return err == nil
}

// A queue's creator adds its name to the index after its script, so another
// request's enqueue can run in between: that enqueue adds the name too while
// the queue is young, once per process, and leaves the index alone once the
// queue is not young.
func TestAnEnqueueListsAQueueCreatedAMomentAgo(t *testing.T) {
	e := newEnv(t)
	other, err := store.New(e.rdb, "t:", e.clk) // another API process
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Init(e.ctx); err != nil {
		t.Fatal(err)
	}
	create := store.EnqueueOptions{CreateQueue: new(task.DefaultQueueConfig())}
	push := func(s *store.Store) {
		t.Helper()
		if _, err := s.Enqueue(e.ctx, "q", []store.NewTask{{Spec: &task.Spec{URL: "http://x/"}}}, create); err != nil {
			t.Fatal(err)
		}
	}
	unlist := func() { e.rdb.ZRem(e.ctx, e.s.Keys().Names(), "q") }
	push(e.s)
	if !e.listed("q") {
		t.Fatal("the creating enqueue did not list the queue")
	}
	unlist() // as if the creator's ZADD had not run yet
	e.clk.Advance(4 * time.Second)
	push(other)
	if !e.listed("q") {
		t.Fatal("an enqueue 4s after the queue was created did not list it")
	}
	// the process listed it once: its next enqueues cost what an old queue's do
	young, _ := e.commands(func() { push(other) })
	e.clk.Advance(2 * time.Second)
	old, _ := e.commands(func() { push(other) })
	if young != old {
		t.Fatalf("an enqueue into a young queue this process listed ran %d commands, into an old queue %d", young, old)
	}
	unlist()
	push(e.s)
	if e.listed("q") {
		t.Fatal("an enqueue 6s after creation still writes the names index (it should cost nothing once the creator has listed it)")
	}
	// a queue deleted and created again is new to every process
	if err := e.s.DeleteQueue(e.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Millisecond)
	push(e.s)
	unlist()
	push(other)
	if !e.listed("q") {
		t.Fatal("an enqueue into a re-created queue did not list it")
	}
}

// The listing drops names whose queue it did not find; a queue re-created
// between that read and the drop keeps its name.
func TestTheListingKeepsTheNameOfAQueueCreatedMeanwhile(t *testing.T) {
	e := newEnv(t)
	e.queue("back", nil)
	e.rdb.ZAdd(e.ctx, e.s.Keys().Names(), redis.Z{Member: "gone"})
	store.DropNames(e.s, e.ctx, []string{"back", "gone"})
	if !e.listed("back") {
		t.Fatal("the name of an existing queue was dropped")
	}
	if e.listed("gone") {
		t.Fatal("the name of a missing queue was kept")
	}
}
