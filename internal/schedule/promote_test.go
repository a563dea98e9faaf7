package schedule

import (
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// steppingClock moves forward a millisecond every time it is read, so that
// every script call sees its own time.
type steppingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// TestPromotionTakesTurnsAcrossPartitions: a large due backlog in one
// partition does not hold back the timed tasks of the others: promotion
// takes one batch per due partition per round.
func TestPromotionTakesTurnsAcrossPartitions(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	clk := &steppingClock{now: time.Now()}
	st, err := store.New(rdb, "htq:", clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := st.Init(ctx); err != nil {
		t.Fatal(err)
	}
	big, small := "big", "small"
	for task.Partition(small) == task.Partition(big) {
		small += "x"
	}
	cfg := task.DefaultQueueConfig()
	enqueue := func(q string, n int, due time.Time) []string {
		var ts []store.NewTask
		for range n {
			ts = append(ts, store.NewTask{Spec: &task.Spec{URL: "http://x"}, Due: due})
		}
		r, err := st.Enqueue(ctx, q, ts, store.EnqueueOptions{CreateQueue: &cfg})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range r.Tasks {
			ids = append(ids, x.ID)
			// a state for each task (as a retried task has), where promote
			// writes the time it moved it
			rdb.HSet(ctx, st.Keys().State(task.Partition(q), x.ID), "st", "scheduled")
		}
		return ids
	}
	base := clk.Now()
	bigIDs := enqueue(big, 2000, base.Add(time.Second))    // due first
	smallIDs := enqueue(small, 1, base.Add(2*time.Second)) // due a second later
	clk.mu.Lock()
	clk.now = base.Add(time.Minute) // everything is due
	clk.mu.Unlock()
	if err := st.FlushDue(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{LockTTL: time.Second, PromoteBatch: 100, PollInterval: time.Second, JanitorInterval: time.Hour, MissedGrace: time.Second},
		st, clk, slog.New(slog.DiscardHandler), metrics.NewScheduler(prometheus.NewRegistry()), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.promoteDue(ctx)
	moved := func(q, id string) int64 {
		v, _ := rdb.HGet(ctx, st.Keys().State(task.Partition(q), id), "ts").Result()
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	last := moved(big, bigIDs[len(bigIDs)-1])
	if last == 0 || moved(small, smallIDs[0]) == 0 {
		t.Fatal("not everything was promoted")
	}
	if at := moved(small, smallIDs[0]); at >= last {
		t.Fatalf("the small partition's task moved at %d, after the big backlog's last batch (%d)", at, last)
	}
}
