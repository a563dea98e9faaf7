package schedule_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/schedule"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

type sched struct {
	s      *schedule.Scheduler
	m      *metrics.Scheduler
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, st *store.Store, ttl time.Duration) *sched {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.NewScheduler(reg)
	b := metrics.NewBacklog(reg, 2)
	s, err := schedule.New(schedule.Config{LockTTL: ttl, PollInterval: 200 * time.Millisecond, PromoteBatch: 100,
		JanitorInterval: 100 * time.Millisecond, BacklogInterval: 50 * time.Millisecond, MissedGrace: time.Second},
		st, clock.Real{}, slog.New(slog.DiscardHandler), m, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &sched{s: s, m: m, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() { _ = s.Run(ctx); close(r.done) }()
	t.Cleanup(r.stop)
	return r
}

func (r *sched) stop() {
	r.cancel()
	<-r.done
}

func newStore(t *testing.T) (*store.Store, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	st, err := store.New(srv.Client(t), "htq:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st, srv
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOneLeaderAndHandOver(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	a, b := start(t, st, time.Second), start(t, st, time.Second)
	leaders := func() int { return int(testutil.ToFloat64(a.m.IsLeader) + testutil.ToFloat64(b.m.IsLeader)) }
	waitFor(t, "a leader", 5*time.Second, func() bool { return leaders() == 1 })
	for range 20 { // stays exactly one across several extensions
		if leaders() != 1 {
			t.Fatalf("%d leaders", leaders())
		}
		time.Sleep(50 * time.Millisecond)
	}
	leader, other := a, b
	if testutil.ToFloat64(b.m.IsLeader) == 1 {
		leader, other = b, a
	}
	begin := time.Now()
	leader.stop() // a graceful step-down gives the lock up at once
	waitFor(t, "the other to lead", 2*time.Second, func() bool { return testutil.ToFloat64(other.m.IsLeader) == 1 })
	if took := time.Since(begin); took > 600*time.Millisecond {
		t.Fatalf("hand-over after a graceful stop took %v", took)
	}
}

func TestLeaderStepsDownWhenItLosesTheLock(t *testing.T) {
	t.Parallel()
	st, srv := newStore(t)
	a := start(t, st, time.Second)
	waitFor(t, "leader", 5*time.Second, func() bool { return testutil.ToFloat64(a.m.IsLeader) == 1 })
	// the lock is stolen (as if it had expired and another scheduler took it)
	srv.Client(t).Set(t.Context(), st.Keys().LeaderLock(), "someone-else", 10*time.Second)
	waitFor(t, "step down", 2*time.Second, func() bool { return testutil.ToFloat64(a.m.IsLeader) == 0 })
}

func TestPromotesTimedTasksOnTime(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	cfg := task.DefaultQueueConfig()
	if _, err := st.PutQueue(t.Context(), "q", &cfg, store.PutCreate); err != nil {
		t.Fatal(err)
	}
	s := start(t, st, time.Second)
	waitFor(t, "leader", 5*time.Second, func() bool { return testutil.ToFloat64(s.m.IsLeader) == 1 })
	// due in 300ms: the leader learns of it from the hint, not a poll. Due
	// times are kept in whole milliseconds: a due time between two would be
	// promoted up to 1 ms before it.
	due := time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond)
	if _, err := st.Enqueue(t.Context(), "q", []store.NewTask{{Spec: &task.Spec{URL: "http://x"}, Due: due}}, store.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "promotion", 3*time.Second, func() bool { return testutil.ToFloat64(s.m.Promoted) == 1 })
	late := time.Since(due)
	if late < 0 || late > 100*time.Millisecond {
		t.Fatalf("promoted %v after its due time", late)
	}
	qi, err := st.GetQueue(t.Context(), "q")
	if err != nil || qi.Counts.Queued != 1 || qi.Counts.Scheduled != 0 {
		t.Fatalf("queue = %+v, %v", qi, err)
	}
}

func TestJanitorFinishesDeletesAndRepairs(t *testing.T) {
	t.Parallel()
	st, srv := newStore(t)
	cfg := task.DefaultQueueConfig()
	if _, err := st.PutQueue(t.Context(), "q", &cfg, store.PutCreate); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(t.Context(), "q", []store.NewTask{{Spec: &task.Spec{URL: "http://x"}}}, store.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client(t)
	k := st.Keys().Queue("q")
	rdb.ZRem(t.Context(), k.Ready, "q") // an index entry lost by a manual change
	s := start(t, st, time.Second)
	waitFor(t, "repair", 5*time.Second, func() bool { return testutil.ToFloat64(s.m.JanitorFixes) >= 1 })
	if _, err := rdb.ZScore(t.Context(), k.Ready, "q").Result(); err != nil {
		t.Fatalf("ready entry not restored: %v", err)
	}
}

func TestOnlyTheLeaderExportsBacklog(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	cfg := task.DefaultQueueConfig()
	for i, n := range []int{5, 3, 1} { // three queues, top 2 get their own label
		name := string(rune('a' + i))
		if _, err := st.PutQueue(t.Context(), name, &cfg, store.PutCreate); err != nil {
			t.Fatal(err)
		}
		var ts []store.NewTask
		for range n {
			ts = append(ts, store.NewTask{Spec: &task.Spec{URL: "http://x"}})
		}
		if _, err := st.Enqueue(t.Context(), name, ts, store.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The backlog is read from the queues the due indexes name, and an
	// enqueue's due mark is written asynchronously: without this, a leader
	// whose first refresh comes before the marks may count a queue only at
	// the next refresh (seen on a loaded machine: queue c missing).
	if err := st.FlushDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, b := start(t, st, time.Second), start(t, st, time.Second)
	series := func(r *sched) int { n, _ := testutil.GatherAndCount(r.reg, "htq_queue_tasks"); return n }
	waitFor(t, "backlog exported by the leader", 5*time.Second, func() bool { return series(a)+series(b) > 0 })
	leader, other := a, b
	if series(b) > 0 {
		leader, other = b, a
	}
	if series(other) != 0 {
		t.Fatal("both schedulers export the backlog")
	}
	want := `
# HELP htq_queue_tasks Tasks by queue and state (queued, active, scheduled, dead). Only the scheduler leader exports it; queue is one of the top N queues by backlog, or _other for the sum of all others.
# TYPE htq_queue_tasks gauge
htq_queue_tasks{queue="_other",state="active"} 0
htq_queue_tasks{queue="_other",state="dead"} 0
htq_queue_tasks{queue="_other",state="queued"} 1
htq_queue_tasks{queue="_other",state="scheduled"} 0
htq_queue_tasks{queue="a",state="active"} 0
htq_queue_tasks{queue="a",state="dead"} 0
htq_queue_tasks{queue="a",state="queued"} 5
htq_queue_tasks{queue="a",state="scheduled"} 0
htq_queue_tasks{queue="b",state="active"} 0
htq_queue_tasks{queue="b",state="dead"} 0
htq_queue_tasks{queue="b",state="queued"} 3
htq_queue_tasks{queue="b",state="scheduled"} 0
`
	if err := testutil.GatherAndCompare(leader.reg, strings.NewReader(want), "htq_queue_tasks"); err != nil {
		t.Fatal(err)
	}
	leader.stop()
	waitFor(t, "the new leader to export", 5*time.Second, func() bool { return series(other) > 0 })
	if series(leader) != 0 {
		t.Fatal("a stopped leader still exports the backlog")
	}
}
