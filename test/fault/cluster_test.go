package fault

// Scenario 8, Redis Cluster: the core end-to-end scenario (test/e2e
// TestOrderAcrossDispatchers) run unchanged against a local 3-master Redis
// Cluster, once clean and once with a shard restarted in the middle.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htq/htq/internal/testcluster"
)

// rtCheckSerial (copied from test/e2e) asserts that each queue's calls arrived
// in index order, one at a time, each index exactly once.
func rtCheckSerial(t *testing.T, calls []testcluster.Call, perQueue int) {
	t.Helper()
	byQueue := map[string][]testcluster.Call{}
	for _, c := range calls {
		byQueue[c.Query.Get("q")] = append(byQueue[c.Query.Get("q")], c)
	}
	for q, cs := range byQueue {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
		if len(cs) != perQueue {
			t.Errorf("queue %s: %d calls, want %d", q, len(cs), perQueue)
		}
		for i, c := range cs {
			if got := c.Query.Get("i"); got != strconv.Itoa(i) {
				t.Errorf("queue %s: call %d was task %s (out of order or duplicated)", q, i, got)
				break
			}
			if i > 0 && c.Start.Before(cs[i-1].End) {
				t.Errorf("queue %s: task %d started before task %d finished", q, i, i-1)
				break
			}
		}
	}
}

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

var rtHTTP = &http.Client{Timeout: 15 * time.Second}

// rtEnqueueREST creates one task through REST; it reports whether it was accepted.
func rtEnqueueREST(c *testcluster.Cluster, queue, url string, extra map[string]any) (bool, string) {
	body := map[string]any{"url": url}
	for k, v := range extra {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, c.API+"/v1/queues/"+queue+"/tasks", bytes.NewReader(b))
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+testcluster.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := rtHTTP.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return false, fmt.Sprintf("%d %s", resp.StatusCode, rb)
	}
	return true, ""
}

// rtEnqueueLegacy adds one task through the legacy API as the PHP SDK does.
func rtEnqueueLegacy(c *testcluster.Cluster, queue, url string) (bool, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, kv := range [][2]string{
		{"app_key", testcluster.LegacyKey}, {"app_token", testcluster.LegacyToken},
		{"queue_name", queue}, {"url", url}, {"execute_time", "0"}, {"method", "get"}, {"header", "[]"}, {"data", "[]"},
	} {
		_ = w.WriteField(kv[0], kv[1])
	}
	_ = w.Close()
	resp, err := rtHTTP.Post(c.API+"/api/addTask", w.FormDataContentType(), &buf)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(rb, &out); err != nil || out["error_code"] != float64(0) {
		return false, fmt.Sprintf("%d %s", resp.StatusCode, rb)
	}
	return true, ""
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

// rtCoreResult is what rtRunCore measured.
type rtCoreResult struct {
	Enqueued   time.Duration // until every task was accepted
	Took       time.Duration // until every task was called and the queues drained
	Failures   int64         // enqueue requests refused or failed (then tried again)
	FirstError string
	// Refused maps "queue/index" to the answers of its refused tries.
	Refused map[string][]string
	// Sent maps "queue/index" to when its accepted try was sent.
	Sent map[string]time.Time
}

// rtRunCore is the core end-to-end scenario: 50 queues × 100 tasks, even
// queues through the legacy API and odd ones through REST, pushed by one
// goroutine per queue. With retry, a refused enqueue is tried again (the
// task counts as accepted when one try is); without, it is an error. fault,
// when set, runs in the test goroutine while the tasks flow.
func rtRunCore(t *testing.T, c *testcluster.Cluster, tg *testcluster.Target, queues, perQueue int, retry bool, fault func()) rtCoreResult {
	t.Helper()
	var res rtCoreResult
	var failures atomic.Int64
	var firstErr sync.Once
	var mu sync.Mutex
	res.Refused = map[string][]string{}
	res.Sent = map[string]time.Time{}
	start := time.Now()
	for qi := range queues {
		if qi%2 == 1 {
			name := fmt.Sprintf("q%02d", qi)
			if code := c.REST("PUT", "/v1/queues/"+name, map[string]any{}, nil); code != http.StatusCreated {
				t.Fatalf("create %s: %d", name, code)
			}
		}
	}
	var wg sync.WaitGroup
	for qi := range queues {
		name := fmt.Sprintf("q%02d", qi)
		legacy := qi%2 == 0
		wg.Go(func() {
			for i := range perQueue {
				u := fmt.Sprintf("%s/task?q=%s&i=%d", tg.URL, name, i)
				deadline := time.Now().Add(40 * time.Second)
				for {
					var ok bool
					var detail string
					sent := time.Now()
					if legacy {
						ok, detail = rtEnqueueLegacy(c, name, u)
					} else {
						ok, detail = rtEnqueueREST(c, name, u, nil)
					}
					if ok {
						mu.Lock()
						res.Sent[fmt.Sprintf("%s/%d", name, i)] = sent
						mu.Unlock()
						break
					}
					failures.Add(1)
					firstErr.Do(func() { res.FirstError = detail })
					mu.Lock()
					key := fmt.Sprintf("%s/%d", name, i)
					res.Refused[key] = append(res.Refused[key], fmt.Sprintf("%s after %v: %s", map[bool]string{true: "legacy", false: "REST"}[legacy], time.Since(start).Round(time.Millisecond), detail))
					mu.Unlock()
					if !retry || time.Now().After(deadline) {
						t.Errorf("enqueue %s #%d: %s", name, i, detail)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	if fault != nil {
		fault()
	}
	wg.Wait()
	res.Enqueued = time.Since(start)
	res.Failures = failures.Load()
	distinct := func() int {
		seen := map[string]bool{}
		for _, cl := range tg.Calls() {
			seen[cl.Query.Get("q")+"/"+cl.Query.Get("i")] = true
		}
		return len(seen)
	}
	rtPoll(t, "every task called", 60*time.Second, func() bool { return tg.Count() >= queues*perQueue && distinct() == queues*perQueue })
	rtPoll(t, "queues drained", 30*time.Second, c.Drained)
	res.Took = time.Since(start)
	return res
}

// TestRedisClusterEndToEnd runs the core scenario unchanged on a 3-master
// Redis Cluster: every task exactly once, in order, one at a time per
// queue; and the partition hash tags spread the keys over the 3 shards.
func TestRedisClusterEndToEnd(t *testing.T) {
	rc := startRTRedisCluster(t, 3)
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 2, Dispatchers: 3, RedisConfig: rc.RedisConfig()})
	tg := testcluster.NewTarget(t)
	const queues, perQueue = 50, 100
	res := rtRunCore(t, c, tg, queues, perQueue, false, nil)
	calls := tg.Calls()
	if len(calls) != queues*perQueue {
		t.Fatalf("%d calls, want exactly %d (a clean run delivers nothing twice)", len(calls), queues*perQueue)
	}
	rtCheckSerial(t, calls, perQueue)
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
	res := rtRunCore(t, c, tg, queues, perQueue, true, func() {
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
