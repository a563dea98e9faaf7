package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// BenchmarkCompleteAndReadNext measures the hot path: one completion that
// acknowledges a task and delivers the next, on one serial queue. It
// reports Redis's own time per script call (INFO commandstats).
func BenchmarkCompleteAndReadNext(b *testing.B) {
	rdb, st := benchStore(b)
	ctx := b.Context()
	cfg := task.DefaultQueueConfig()
	if _, err := st.PutQueue(ctx, "q", &cfg, store.PutCreate); err != nil {
		b.Fatal(err)
	}
	n := b.N + 1
	for i := 0; i < n; i += 500 {
		var ts []store.NewTask
		for j := i; j < min(i+500, n); j++ {
			ts = append(ts, store.NewTask{Spec: &task.Spec{URL: fmt.Sprintf("http://127.0.0.1:1/x?i=%d", j)}})
		}
		if _, err := st.Enqueue(ctx, "q", ts, store.EnqueueOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	c, err := st.Claim(ctx, "q", "bench~1", store.ClaimOptions{TTL: time.Minute, Grace: 0, Want: 1})
	if err != nil || c.Status != store.ClaimOK {
		b.Fatal(c, err)
	}
	d := c.Deliveries[0]
	rdb.ConfigResetStat(ctx)
	b.ResetTimer()
	for range b.N {
		next, err := c.Owned.Complete(ctx, &store.Completion{
			Delivery: &d, Outcome: store.OutcomeSucceeded, Retention: time.Hour, Want: 1, HistoryLen: 10,
			Attempt: &store.AttemptRecord{At: 1, Attempt: 1, Status: 200, LatencyMs: 1, Body: "ok", Seq: d.Seq},
		})
		if err != nil || len(next.Deliveries) != 1 {
			b.Fatalf("complete: %+v %v", next, err)
		}
		d = next.Deliveries[0]
	}
	b.StopTimer()
	stats, _ := rdb.Info(ctx, "commandstats").Result()
	for line := range strings.SplitSeq(stats, "\r\n") {
		if strings.HasPrefix(line, "cmdstat_evalsha:") {
			b.Logf("%s", line)
		}
	}
}

// benchStore starts a redis-server and a store on it, scripts loaded.
func benchStore(b *testing.B) (*redis.Client, *store.Store) {
	b.Helper()
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	st, err := store.New(rdb, "b:", clock.Real{})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Init(b.Context()); err != nil {
		b.Fatal(err)
	}
	return rdb, st
}
