package fault

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
)

// soakTasks is the size of the load test: 200,000 in make test, 1,000,000
// with HTQ_SOAK=1 (make soak).
func soakTasks() int {
	if os.Getenv("HTQ_SOAK") != "" {
		return 1_000_000
	}
	return 200_000
}

// countingTarget counts the calls of each task (queue q, index i) in a flat
// array: a million recorded calls would not fit the general target.
type countingTarget struct {
	url    string
	per    int
	counts []atomic.Uint32
	total  atomic.Int64
}

func newCountingTarget(t *testing.T, queues, per int) *countingTarget {
	ct := &countingTarget{per: per, counts: make([]atomic.Uint32, queues*per)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, _ := strconv.Atoi(r.URL.Query().Get("q"))
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		if k := q*ct.per + i; k >= 0 && k < len(ct.counts) {
			ct.counts[k].Add(1)
		}
		ct.total.Add(1)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	ct.url = "http://" + l.Addr().String()
	return ct
}

// TestLoad accepts soakTasks() tasks through the batch API into 1,000
// queues, reports Redis memory per pending task, then drains them with three
// dispatchers: none may be lost.
func TestLoad(t *testing.T) {
	t.Parallel()
	total := soakTasks()
	const queues, batch, clients = 1000, 500, 8
	per := total / queues
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1})
	ct := newCountingTarget(t, queues, per)
	names := queueNames("load", queues)
	createQueues(t, c, names, client.QueueSettings{})
	rdb := redis.NewClient(&redis.Options{Addr: c.Redis.Addr()})
	defer rdb.Close()
	memBefore := usedMemory(t, rdb)

	start := time.Now()
	work := make(chan [2]int) // queue, first index of a batch
	var wg sync.WaitGroup
	var refused atomic.Int64
	hc := c.Client(client.WithRetries(0, 0, 0)) // a refused batch is counted, not retried
	for range clients {
		wg.Go(func() {
			for w := range work {
				q, from := w[0], w[1]
				tasks := make([]client.TaskRequest, 0, batch)
				for i := from; i < min(from+batch, per); i++ {
					// 100-byte URLs, as in the benchmark
					u := fmt.Sprintf("%s/load?q=%d&i=%d&pad=", ct.url, q, i)
					tasks = append(tasks, client.TaskRequest{URL: u + strings.Repeat("x", max(0, 100-len(u)))})
				}
				if _, err := hc.CreateTasks(context.Background(), names[q], tasks); err != nil {
					refused.Add(1)
				}
			}
		})
	}
	for q := range queues {
		for from := 0; from < per; from += batch {
			work <- [2]int{q, from}
		}
	}
	close(work)
	wg.Wait()
	enqueueTook := time.Since(start)
	if refused.Load() > 0 {
		t.Fatalf("%d batches refused", refused.Load())
	}
	memAfter := usedMemory(t, rdb)
	perTask := float64(memAfter-memBefore) / float64(total)

	drainStart := time.Now()
	for i := range 3 {
		c.Start("dispatcher", fmt.Sprintf("dispatcher-%d", i))
	}
	c.WaitFor("every task called", 10*time.Minute, func() bool { return ct.total.Load() >= int64(total) })
	drainTook := time.Since(drainStart)
	c.WaitFor("queues drained", 60*time.Second, c.Drained)
	lost, dups := 0, 0
	for k := range ct.counts {
		switch n := ct.counts[k].Load(); {
		case n == 0:
			lost++
		case n > 1:
			dups += int(n - 1)
		}
	}
	t.Logf("%d tasks: accepted in %v (%.0f/s); Redis memory %.0f bytes per pending task (100-byte URLs); drained by 3 dispatchers in %v (%.0f/s); lost %d, duplicates %d",
		total, enqueueTook.Round(time.Millisecond), float64(total)/enqueueTook.Seconds(), perTask,
		drainTook.Round(time.Millisecond), float64(total)/drainTook.Seconds(), lost, dups)
	if lost > 0 || dups > 0 {
		t.Errorf("lost %d, duplicated %d tasks in a clean run", lost, dups)
	}
}

func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO")
	return 0
}
