package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/testcluster"
)

// load pushes a steady stream of tasks, one queue after another, each task
// URL naming its queue and its index in the queue. It records only tasks
// the API accepted (201): those must all be delivered.
type load struct {
	c      *testcluster.Cluster
	target string
	queues []string
	every  time.Duration // between two tasks of one queue

	mu       sync.Mutex
	accepted map[string][]int // queue -> indexes accepted
	acceptAt map[string]time.Time
	refused  int
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(c *testcluster.Cluster, target string, queues []string, every time.Duration) *load {
	l := &load{c: c, target: target, queues: queues, every: every,
		accepted: map[string][]int{}, acceptAt: map[string]time.Time{}, stop: make(chan struct{})}
	// tried once, as a lost answer must count as refused
	hc := c.Client(client.WithHTTPClient(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}),
		client.WithRetries(0, 0, 0))
	for _, q := range queues {
		l.wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			// start at a random phase so queues do not move in lockstep
			time.Sleep(time.Duration(rand.Int64N(int64(every))))
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				case <-t.C:
				}
				u := fmt.Sprintf("%s/load?q=%s&i=%d", target, q, i)
				if _, err := hc.CreateTask(context.Background(), q, client.TaskRequest{URL: u}); err == nil {
					l.mu.Lock()
					l.accepted[q] = append(l.accepted[q], i)
					l.acceptAt[q+"/"+strconv.Itoa(i)] = time.Now()
					l.mu.Unlock()
				} else {
					l.mu.Lock()
					l.refused++
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

func (l *load) Stop() {
	close(l.stop)
	l.wg.Wait()
}

func (l *load) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.accepted {
		n += len(a)
	}
	return n
}

// report is what the target saw against what was accepted.
type report struct {
	accepted   int
	calls      int
	lost       []string // accepted, never called
	duplicates int      // calls beyond the first of a task
	disorder   []string // a task started before an earlier one of its queue ended
}

// check compares the target's record with the accepted tasks: every
// accepted task called, each queue's calls in index order, one at a time (a
// redelivered task may repeat, never go back).
func (l *load) check(calls []testcluster.Call) report {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := report{calls: len(calls)}
	seen := map[string]int{}
	byQueue := map[string][]testcluster.Call{}
	for _, c := range calls {
		if c.Path != "/load" {
			continue
		}
		q := c.Query.Get("q")
		seen[q+"/"+c.Query.Get("i")]++
		byQueue[q] = append(byQueue[q], c)
	}
	for q, idx := range l.accepted {
		r.accepted += len(idx)
		for _, i := range idx {
			if seen[q+"/"+strconv.Itoa(i)] == 0 {
				r.lost = append(r.lost, q+"/"+strconv.Itoa(i))
			}
		}
	}
	for _, n := range seen {
		if n > 1 {
			r.duplicates += n - 1
		}
	}
	for q, cs := range byQueue {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
		for k := 1; k < len(cs); k++ {
			prev, cur := cs[k-1], cs[k]
			pi, _ := strconv.Atoi(prev.Query.Get("i"))
			ci, _ := strconv.Atoi(cur.Query.Get("i"))
			if ci < pi {
				r.disorder = append(r.disorder, fmt.Sprintf("queue %s: task %d started after task %d", q, ci, pi))
			}
			if cur.Start.Before(prev.End) {
				r.disorder = append(r.disorder, fmt.Sprintf("queue %s: task %d started before task %d ended", q, ci, pi))
			}
		}
	}
	sort.Strings(r.lost)
	return r
}

func (r report) String() string {
	return fmt.Sprintf("accepted %d, calls %d, lost %d, duplicates %d, order violations %d",
		r.accepted, r.calls, len(r.lost), r.duplicates, len(r.disorder))
}

func first(list []string, n int) []string { return list[:min(n, len(list))] }

func queueNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// createQueues makes the queues with the given settings.
func createQueues(t *testing.T, c *testcluster.Cluster, names []string, cfg client.QueueSettings) {
	t.Helper()
	hc := c.Client()
	for _, q := range names {
		if _, _, err := hc.PutQueue(t.Context(), q, cfg); err != nil {
			t.Fatalf("create queue %s: %v", q, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// randomLatency answers after 1 to max ms.
func randomLatency(max time.Duration) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		time.Sleep(time.Millisecond + time.Duration(rand.Int64N(int64(max))))
		_, _ = w.Write([]byte("ok"))
	}
}

// inspector is a client for reading the cluster's Redis directly: RESP2
// as HTQ itself speaks, with a read timeout (go-redis's RESP3
// push-notification peek once blocked for minutes on a busy Redis).
func inspector(c *testcluster.Cluster) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: c.Redis.Addr(), Protocol: 2, DisableIdentity: true, ReadTimeout: 5 * time.Second})
}

// pendingOf returns the tasks a consumer holds delivered but not
// acknowledged: after it is killed or frozen, the only tasks that may be
// called again (nobody can claim them before its lease runs out).
func pendingOf(t *testing.T, c *testcluster.Cluster, queues []string, consumer string) map[string]bool {
	t.Helper()
	rdb := inspector(c)
	defer rdb.Close()
	keys := store.NewKeys("htq:")
	out := map[string]bool{}
	for _, q := range queues {
		k := keys.Queue(q)
		pend, err := rdb.XPendingExt(t.Context(), &redis.XPendingExtArgs{Stream: k.Stream, Group: "htq", Start: "-", End: "+", Count: 100}).Result()
		if err != nil {
			continue
		}
		for _, p := range pend {
			if !strings.HasPrefix(p.Consumer, consumer+"~") { // "<dispatcher id>~<nonce of its run>"
				continue
			}
			if msgs, err := rdb.XRange(t.Context(), k.Stream, p.ID, p.ID).Result(); err == nil && len(msgs) == 1 {
				out[fmt.Sprint(msgs[0].Values["t"])] = true
			}
		}
	}
	return out
}

// unexplainedDuplicates returns the tasks whose repeated calls the failures
// do not explain. A task may be called again only for a new attempt (two
// calls never carry the same attempt number) after the previous attempt
// failed (its history records the failure) or was lost with a dispatcher
// that died or froze mid-call (no history record for it). A repeat after a
// recorded success is a bug. This holds whatever the timing, unlike a count
// of calls in flight at a kill.
func unexplainedDuplicates(t *testing.T, c *testcluster.Cluster, calls []testcluster.Call) []string {
	t.Helper()
	attempts := map[string][]string{}
	for _, cl := range calls {
		attempts[cl.TaskID] = append(attempts[cl.TaskID], cl.Attempt)
	}
	var out []string
	for id, as := range attempts {
		if len(as) < 2 {
			continue
		}
		seen := map[string]bool{}
		for _, a := range as {
			if seen[a] {
				out = append(out, fmt.Sprintf("%s: attempt %s called twice", id, a))
			}
			seen[a] = true
		}
		ti, err := c.Client().GetTask(t.Context(), id)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: GET /v1/tasks failed (%v): its history cannot explain the repeat", id, err))
			continue
		}
		last := 0
		for a := range seen {
			n, _ := strconv.Atoi(a)
			last = max(last, n)
		}
		for _, h := range ti.History {
			ok := h.Error == "" && h.Status >= 200 && h.Status < 300
			if ok && h.Attempt < last {
				out = append(out, fmt.Sprintf("%s: attempt %d succeeded, yet attempt %d was made", id, h.Attempt, last))
			}
		}
	}
	return out
}

// dumpStuck logs, for every queue of names that still has stream work, what
// the dispatchers decide by: its meta hash, lease (value and TTL), ready-index
// score, stream length and pending entries, and its partition's due-index
// entry, and returns those queues. A run that does not drain is a liveness
// failure; this is the state that explains it.
func dumpStuck(t *testing.T, c *testcluster.Cluster, names []string) []string {
	t.Helper()
	rdb := inspector(c)
	defer rdb.Close()
	ctx := context.Background()
	keys := store.NewKeys("htq:")
	now := time.Now().UnixMilli()
	var stuck []string
	for _, q := range names {
		k := keys.Queue(q)
		n, err := rdb.XLen(ctx, k.Stream).Result()
		if err != nil || n == 0 {
			continue
		}
		if stuck = append(stuck, q); len(stuck) > 10 {
			t.Logf("stuck: more queues with stream work not shown")
			return stuck[:10]
		}
		meta, _ := rdb.HGetAll(ctx, k.Meta).Result()
		delete(meta, "cfg")
		lease, _ := rdb.Get(ctx, k.Lease).Result()
		ttl, _ := rdb.PTTL(ctx, k.Lease).Result()
		ready, rerr := rdb.ZScore(ctx, k.Ready, q).Result()
		pend, _ := rdb.XPending(ctx, k.Stream, "htq").Result()
		due, derr := rdb.ZScore(ctx, keys.DueIndex(store.DueReady), strconv.Itoa(k.Partition)).Result()
		t.Logf("stuck %s (now %d): xlen %d, pending %+v, lease %q ttl %v, ready %v (err %v), due[%d] %v (err %v), meta %v",
			q, now, n, pend, lease, ttl, int64(ready), rerr, k.Partition, int64(due), derr, meta)
		if cons, err := rdb.XInfoConsumers(ctx, k.Stream, "htq").Result(); err == nil {
			t.Logf("stuck %s: consumers %+v", q, cons)
		}
		// Entries neither pending nor after the group's last-delivered id
		// can never be read again: compare the ids.
		if groups, err := rdb.XInfoGroups(ctx, k.Stream).Result(); err == nil {
			t.Logf("stuck %s: groups %+v", q, groups)
		}
		if head, err := rdb.XRangeN(ctx, k.Stream, "-", "+", 3).Result(); err == nil {
			t.Logf("stuck %s: first entries %+v", q, head)
		}
	}
	return stuck
}
