package schedule_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/recur"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/schedule"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// realEnv is a store and a scheduler on the real clock (the look-ahead
// sleeps until an instant), with an every-second schedule on queue q whose
// first instant is a whole second at least 1.5 s away.
type realEnv struct {
	st      *store.Store
	s       *schedule.Scheduler
	rdb     *redis.Client
	q       store.QueueKeys
	instant time.Time
}

func newRealEnv(t *testing.T) *realEnv {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	st, err := store.New(rdb, "htq:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := st.Init(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := schedule.New(schedule.Config{LockTTL: time.Second, PollInterval: time.Second, PromoteBatch: 100,
		JanitorInterval: time.Minute, MissedGrace: time.Second}, st, clock.Real{}, slog.New(slog.DiscardHandler),
		metrics.NewScheduler(prometheus.NewRegistry()), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := task.DefaultQueueConfig()
	if _, err := st.PutQueue(ctx, "q", &cfg, store.PutCreate); err != nil {
		t.Fatal(err)
	}
	instant := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	def := recur.Schedule{Name: "x", Queue: "q", Cron: "* * * * * *", Overlap: recur.OverlapAllow, StartAt: &instant,
		Spec: &task.Spec{Method: "POST", URL: "http://example.test/hook"}}
	p, err := def.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if next := def.First(p, time.Now()); !next.Equal(instant) {
		t.Fatalf("first instant %v, want %v", next, instant)
	}
	if _, err := st.PutSchedule(ctx, &def, instant, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.FlushDue(ctx); err != nil {
		t.Fatal(err)
	}
	return &realEnv{st: st, s: s, rdb: rdb, q: st.Keys().Queue("q"), instant: instant}
}

// tasks counts the queue's tasks, queued (in its stream) or delayed.
func (e *realEnv) tasks(ctx context.Context) (int64, error) {
	pipe := e.rdb.Pipeline()
	xl := pipe.XLen(ctx, e.q.Stream)
	zc := pipe.ZCard(ctx, e.q.Delayed)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	return xl.Val() + zc.Val(), nil
}

// TestLookAheadFiresAtTheInstantNotBefore: a schedule read ahead of its
// instant is fired at the instant: no task of it exists before then, in
// the stream (where a dispatcher would call it) or delayed, and the task is
// appended to the stream at the instant or after it, by Redis's clock.
func TestLookAheadFiresAtTheInstantNotBefore(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t)
	ctx := t.Context()
	// Watch the queue from well before the look until the task appears.
	appeared := make(chan time.Time, 1)
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for watchCtx.Err() == nil {
			if n, err := e.tasks(watchCtx); err == nil && n > 0 {
				appeared <- time.Now()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(time.Until(e.instant.Add(-300 * time.Millisecond)))
	e.s.FireDueAhead(ctx, 500*time.Millisecond)
	if returned := time.Now(); returned.Before(e.instant) {
		t.Errorf("returned at %v, before the instant %v", returned, e.instant)
	}
	select {
	case at := <-appeared:
		if at.Before(e.instant) {
			t.Errorf("task seen at %v, before its instant %v", at, e.instant)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no task fired")
	}
	entries, err := e.rdb.XRange(ctx, e.q.Stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d stream entries, want 1", len(entries))
	}
	ms, _, _ := strings.Cut(entries[0].ID, "-")
	if added, _ := strconv.ParseInt(ms, 10, 64); added < e.instant.UnixMilli() {
		t.Errorf("task appended at %d ms, before its instant %d ms", added, e.instant.UnixMilli())
	}
	st, err := e.st.GetSchedule(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if want := e.instant.Add(time.Second); !st.Next.Equal(want) {
		t.Errorf("next %v, want %v", st.Next, want)
	}
}

// TestLookAheadCancelledFiresNothing: a leader whose term ends while it
// waits for the instant of schedules it read ahead fires none of them; the
// schedule stays due, and the next look fires it once.
func TestLookAheadCancelledFiresNothing(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t)
	ctx := t.Context()
	time.Sleep(time.Until(e.instant.Add(-300 * time.Millisecond)))
	term, end := context.WithTimeout(ctx, 100*time.Millisecond)
	defer end()
	e.s.FireDueAhead(term, 500*time.Millisecond)
	if n, err := e.tasks(ctx); err != nil || n != 0 {
		t.Fatalf("%d tasks after the term ended (err %v), want 0", n, err)
	}
	st, err := e.st.GetSchedule(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Next.Equal(e.instant) {
		t.Fatalf("next %v, want it still %v", st.Next, e.instant)
	}
	time.Sleep(time.Until(e.instant.Add(10 * time.Millisecond)))
	e.s.FireDue(ctx)
	if n, err := e.tasks(ctx); err != nil || n != 1 {
		t.Errorf("%d tasks after the next look (err %v), want 1", n, err)
	}
}
