package fault

// Scenario 8, Redis Cluster: the core end-to-end scenario
// (testcluster.RunCore, which test/e2e TestOrderAcrossDispatchers runs on one
// Redis) run unchanged against a local 3-master Redis Cluster, once clean and
// once with a shard restarted in the middle.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/testcluster"
)

// rtDupStats counts the calls beyond the first of each task.
type rtDupStats struct {
	Redelivered int // the same task id called again
	Reenqueued  int // a second task for the same index (an enqueue retried after an error whose first try was stored)
	// ReenqueuedKeys are the "queue/index" of the second copies.
	ReenqueuedKeys []string
}

// rtCheckOrderWithDuplicates asserts, per queue: every index 0..perQueue-1
// was called at least once; the first calls of the indexes came in index
// order; a repeated call is only ever of the latest index so far (the task
// in flight at the fault, called again before the next one starts); and no
// call started before the previous one had finished.
func rtCheckOrderWithDuplicates(t *testing.T, calls []testcluster.Call, queues, perQueue int) rtDupStats {
	t.Helper()
	var st rtDupStats
	byQueue := map[string][]testcluster.Call{}
	for _, c := range calls {
		byQueue[c.Query.Get("q")] = append(byQueue[c.Query.Get("q")], c)
	}
	if len(byQueue) != queues {
		t.Errorf("calls for %d queues, want %d", len(byQueue), queues)
	}
	for q, cs := range byQueue {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
		last := -1
		ids := map[int]map[string]bool{}
		for n, c := range cs {
			i, err := strconv.Atoi(c.Query.Get("i"))
			if err != nil {
				t.Errorf("queue %s: bad index %q", q, c.Query.Get("i"))
				break
			}
			switch i {
			case last + 1:
				last = i
			case last:
				if ids[i][c.TaskID] {
					st.Redelivered++
				} else {
					st.Reenqueued++
					st.ReenqueuedKeys = append(st.ReenqueuedKeys, fmt.Sprintf("%s/%d", q, i))
				}
			default:
				t.Errorf("queue %s: call %d was task %d after task %d (out of order)", q, n, i, last)
			}
			if ids[i] == nil {
				ids[i] = map[string]bool{}
			}
			ids[i][c.TaskID] = true
			if n > 0 && c.Start.Before(cs[n-1].End) {
				t.Errorf("queue %s: a call of task %d started before the call of task %s had finished", q, i, cs[n-1].Query.Get("i"))
			}
		}
		if last != perQueue-1 {
			t.Errorf("queue %s: tasks %d..%d never called", q, last+1, perQueue-1)
		}
	}
	return st
}

// rtLongestWait returns the longest time a task waited for its first call
// once it could run: from when its accepted enqueue was sent, or from the
// end of the previous call of its queue if that was later.
func rtLongestWait(calls []testcluster.Call, sent map[string]time.Time) (time.Duration, string) {
	byQueue := map[string][]testcluster.Call{}
	for _, c := range calls {
		byQueue[c.Query.Get("q")] = append(byQueue[c.Query.Get("q")], c)
	}
	var worst time.Duration
	var worstKey string
	for q, cs := range byQueue {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
		seen := map[string]bool{}
		for n, c := range cs {
			key := q + "/" + c.Query.Get("i")
			if seen[key] {
				continue
			}
			seen[key] = true
			from, ok := sent[key]
			if !ok {
				continue
			}
			if n > 0 && cs[n-1].End.After(from) {
				from = cs[n-1].End
			}
			if w := c.Start.Sub(from); w > worst {
				worst, worstKey = w, key
			}
		}
	}
	return worst, worstKey
}

// TestRedisClusterEndToEnd runs the core scenario unchanged on a 3-master
// Redis Cluster: every task exactly once, in order, one at a time per
// queue; and the partition hash tags spread the keys over the 3 shards.
func TestRedisClusterEndToEnd(t *testing.T) {
	rc := startRTRedisCluster(t, 3)
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 2, Dispatchers: 3, RedisConfig: rc.RedisConfig()})
	tg := testcluster.NewTarget(t)
	const queues, perQueue = 50, 100
	res := testcluster.RunCore(t, c, tg, queues, perQueue, false, nil)
	calls := tg.Calls()
	if len(calls) != queues*perQueue {
		t.Fatalf("%d calls, want exactly %d (a clean run delivers nothing twice)", len(calls), queues*perQueue)
	}
	testcluster.CheckSerial(t, calls, perQueue)
	sizes := rc.DBSizes()
	for i, n := range sizes {
		if n == 0 {
			t.Errorf("shard %d (%s) holds no key: the partition hash tags do not spread the queues (DBSIZE %v)", i, rc.Nodes[i].Addr(), sizes)
		}
	}
	t.Logf("Redis Cluster, 3 masters: %d tasks enqueued in %v, all delivered exactly once after %v (%.0f tasks/s end to end); keys per shard %v",
		len(calls), res.Enqueued.Round(time.Millisecond), res.Took.Round(time.Millisecond), float64(len(calls))/res.Took.Seconds(), sizes)
}

// TestRedisClusterShardRestart runs the core scenario on a 3-master Redis
// Cluster and restarts one master (SIGTERM, then again on the same data
// directory and nodes.conf, AOF on) once a third of the tasks have been
// called; the HTQ processes keep running. Enqueues refused while the shard
// is down are tried again by the client. Every accepted task is called at
// least once, per-queue order is kept; duplicates are counted.
func TestRedisClusterShardRestart(t *testing.T) {
	rc := startRTRedisCluster(t, 3)
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 2, Dispatchers: 3, RedisConfig: rc.RedisConfig()})
	tg := testcluster.NewTarget(t)
	const queues, perQueue = 50, 100
	victim := rc.Nodes[1]
	var stopAt, downFor, okAfter time.Duration
	var callsAtStop int
	var stopped time.Time
	res := testcluster.RunCore(t, c, tg, queues, perQueue, true, func() {
		start := time.Now()
		rtPoll(t, "a third of the tasks called", 60*time.Second, func() bool { return tg.Count() >= queues*perQueue/3 })
		callsAtStop = tg.Count()
		stopped = time.Now()
		stopAt = stopped.Sub(start)
		victim.Stop()
		victim.Restart()
		downFor = time.Since(stopped)
		rc.WaitOK(30 * time.Second)
		okAfter = time.Since(stopped)
	})
	calls := tg.Calls()
	dups := rtCheckOrderWithDuplicates(t, calls, queues, perQueue)
	// How long each task waited for its first call once it could run: from
	// when it was sent (or its predecessor's call ended, if later) to the
	// start of its first call.
	slowest, slowestKey := rtLongestWait(calls, res.Sent)
	// A queue that a failed Redis operation left leased is free at the
	// latest when its lease expires (lease_ttl 10 s by default); nothing
	// was running, so nobody needs to wait for a call's timeout.
	const leaseTTL = 10 * time.Second
	if limit := leaseTTL + 5*time.Second; slowest > limit {
		t.Errorf("task %s waited %v for its first call after a %v shard outage (limit: lease_ttl %v + 5 s): a queue stalled although no call of it was running",
			slowestKey, slowest.Round(time.Millisecond), okAfter.Round(time.Millisecond), leaseTTL)
	}
	sizes := rc.DBSizes()
	for i, n := range sizes {
		if n == 0 {
			t.Errorf("shard %d (%s) holds no key after the restart (DBSIZE %v)", i, rc.Nodes[i].Addr(), sizes)
		}
	}
	var stale float64
	for _, p := range c.Procs("dispatcher") {
		if v := p.Metric("htq_dispatcher_stale_writes_total"); v > 0 {
			stale += v
		}
	}
	t.Logf("shard %s stopped (SIGTERM) %v into the run after %d of %d calls; back up after %v, cluster_state:ok on all nodes after %v",
		victim.Addr(), stopAt.Round(time.Millisecond), callsAtStop, queues*perQueue, downFor.Round(time.Millisecond), okAfter.Round(time.Millisecond))
	t.Logf("enqueue requests refused or failed meanwhile and tried again: %d (first: %.200s)", res.Failures, res.FirstError)
	// A second copy of a task is stored by a refused try when its first
	// call started before the accepted try was even sent. A refusal that
	// said "nothing was changed" was then untrue, and a client that follows
	// its advice ("try again") creates the duplicate.
	firstCall := map[string]time.Time{}
	for _, cl := range calls {
		k := cl.Query.Get("q") + "/" + cl.Query.Get("i")
		if f, ok := firstCall[k]; !ok || cl.Start.Before(f) {
			firstCall[k] = cl.Start
		}
	}
	for _, k := range dups.ReenqueuedKeys {
		byRefused := firstCall[k].Before(res.Sent[k])
		t.Logf("task %s was stored twice (two task ids, both called); first call %v before the accepted try was sent: %v; refused tries: %q",
			k, res.Sent[k].Sub(firstCall[k]).Round(time.Millisecond), byRefused, res.Refused[k])
		if !byRefused {
			continue
		}
		for _, r := range res.Refused[k] {
			if strings.Contains(r, "nothing was changed") {
				t.Errorf("task %s: the API refused an enqueue with %q, yet that try was stored (its task was called before the accepted retry was sent): after a lost Redis reply the outcome is unknown, and a client that retries as told creates a duplicate", k, r)
				break
			}
		}
	}
	t.Logf("%d calls for %d accepted tasks: %d duplicates (%d redeliveries of the same task, %d second copies from retried enqueues); longest wait of a task for its first call %v (%s); stale writes %v; all delivered after %v",
		len(calls), queues*perQueue, len(calls)-queues*perQueue, dups.Redelivered, dups.Reenqueued, slowest.Round(time.Millisecond), slowestKey, stale, res.Took.Round(time.Millisecond))
	// A redelivery of the same task is a new attempt after one whose outcome
	// the outage kept from being written; nothing else.
	if odd := unexplainedDuplicates(t, c, calls); len(odd) > 0 {
		t.Errorf("%d tasks called again without a failed or lost attempt before: %v", len(odd), first(odd, 10))
	}
}
