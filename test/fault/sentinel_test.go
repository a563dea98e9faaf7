package fault

// Scenario 8, Sentinel: one primary, one replica, three sentinels; the
// primary is killed (SIGKILL) under a steady stream of tasks, the sentinels
// promote the replica, and the API, scheduler and dispatchers follow it
// without a restart.

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
)

// rtPush is one enqueue request of the sentinel load.
type rtPush struct {
	queue      string
	index      int
	sent, done time.Time
	accepted   bool
}

// rtReadiness records when a process answered /readyz with something other
// than 200 (or nothing).
type rtReadiness struct {
	name                  string
	firstDown, lastDown   time.Time
	downSamples, nSamples int
}

// TestSentinelFailover: API, a scheduler and 2 dispatchers in sentinel
// mode; tasks pushed continuously on 20 queues; kill -9 the primary; the
// sentinels promote the replica. Without any restart, the roles follow:
// every task accepted after the kill is delivered; tasks accepted before it
// may be lost only within the replication lag (at most those accepted in
// the last second before the kill); the unavailability of the API and the
// dispatchers is measured.
func TestSentinelFailover(t *testing.T) {
	ss := startRTSentinels(t)
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 2, RedisConfig: ss.RedisConfig(), Config: `dispatcher:
  lease_ttl: 3s
  recovery_grace: 1s
  poll_max: 200ms
`})
	tg := testcluster.NewTarget(t)
	tg.Respond = func(w http.ResponseWriter, _ *http.Request, _ int) {
		time.Sleep(5 * time.Millisecond) // some calls are in flight at the kill
		_, _ = w.Write([]byte("ok"))
	}
	const queues = 20
	for qi := range queues {
		name := fmt.Sprintf("s%02d", qi)
		cfg := client.QueueSettings{Timeout: client.D(2 * time.Second),
			Retry: &client.Retry{MinBackoff: client.D(100 * time.Millisecond), MaxBackoff: client.D(500 * time.Millisecond)}}
		if _, created, err := c.Client().PutQueue(t.Context(), name, cfg); err != nil || !created {
			t.Fatalf("create %s: created=%v %v", name, created, err)
		}
	}

	// Readiness of every role, sampled every 50 ms.
	watched := c.Procs("")
	ready := make([]*rtReadiness, len(watched))
	for i, p := range watched {
		ready[i] = &rtReadiness{name: p.Name}
	}
	stopWatch := make(chan struct{})
	var watchWG sync.WaitGroup
	watchWG.Go(func() {
		for {
			for i, p := range watched {
				r := ready[i]
				r.nSamples++
				if !rtReady(p) {
					now := time.Now()
					if r.firstDown.IsZero() {
						r.firstDown = now
					}
					r.lastDown, r.downSamples = now, r.downSamples+1
				}
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(50 * time.Millisecond): // sampling pace
			}
		}
	})

	// The load: one pusher per queue, a task every 100 ms each.
	var mu sync.Mutex
	var pushes []rtPush
	stopPush := make(chan struct{})
	var pushWG sync.WaitGroup
	for qi := range queues {
		name := fmt.Sprintf("s%02d", qi)
		pushWG.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopPush:
					return
				default:
				}
				p := rtPush{queue: name, index: i, sent: time.Now()}
				p.accepted, _ = testcluster.EnqueueREST(c, name, client.TaskRequest{URL: fmt.Sprintf("%s/task?q=%s&i=%d", tg.URL, name, i)})
				p.done = time.Now()
				mu.Lock()
				pushes = append(pushes, p)
				mu.Unlock()
				select {
				case <-stopPush:
					return
				case <-time.After(100 * time.Millisecond): // pacing the load
				}
			}
		})
	}
	acceptedSince := func(since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, p := range pushes {
			if p.accepted && !p.sent.Before(since) {
				n++
			}
		}
		return n
	}

	// Let the load run, then kill the primary.
	loadStart := time.Now()
	rtPoll(t, "3 s of load, tasks flowing", 30*time.Second, func() bool { return time.Since(loadStart) > 3*time.Second && tg.Count() >= 300 })
	oldPrimary := ss.Primary.Addr()
	killed := time.Now()
	ss.Primary.Kill()
	rtPoll(t, "the sentinels to promote the replica", 30*time.Second, func() bool { return ss.MasterAddr() == ss.Replica.Addr() })
	promoted := time.Since(killed)
	rtPoll(t, "the API to accept tasks again", 30*time.Second, func() bool { return acceptedSince(killed) > 0 })
	apiBack := time.Since(killed)
	// Timed tasks pushed now reach their streams only through the scheduler,
	// which must have followed the failover too.
	timedAt := time.Now().Add(time.Second)
	for qi := range queues {
		name := fmt.Sprintf("s%02d", qi)
		rtPoll(t, "a timed task accepted", 10*time.Second, func() bool {
			runAt := timedAt.UTC()
			ok, _ := testcluster.EnqueueREST(c, name, client.TaskRequest{URL: fmt.Sprintf("%s/timed?q=%s", tg.URL, name), RunAt: &runAt})
			return ok
		})
	}
	// Keep pushing for 3 s more against the new primary.
	rtPoll(t, "3 s of load after the failover", 30*time.Second, func() bool { return time.Since(killed) > apiBack+3*time.Second })
	close(stopPush)
	pushWG.Wait()

	accepted := map[string]rtPush{}
	var before, after, lastSecond, refused int
	for _, p := range pushes {
		if !p.accepted {
			refused++
			continue
		}
		accepted[fmt.Sprintf("%s/%d", p.queue, p.index)] = p
		if p.sent.Before(killed) {
			before++
			if p.done.After(killed.Add(-time.Second)) {
				lastSecond++
			}
		} else {
			after++
		}
	}
	called := func() map[string][]testcluster.Call {
		out := map[string][]testcluster.Call{}
		for _, cl := range tg.Calls() {
			if cl.Path != "/task" {
				continue
			}
			k := cl.Query.Get("q") + "/" + cl.Query.Get("i")
			out[k] = append(out[k], cl)
		}
		return out
	}
	allAfterCalled := func() bool {
		got := called()
		for k, p := range accepted {
			if !p.sent.Before(killed) && len(got[k]) == 0 {
				return false
			}
		}
		return true
	}
	rtPoll(t, "every task accepted after the kill delivered", 45*time.Second, allAfterCalled)
	timedCalls := func() int {
		n := 0
		for _, cl := range tg.Calls() {
			if cl.Path == "/timed" {
				n++
			}
		}
		return n
	}
	rtPoll(t, "the timed tasks pushed after the failover called", 30*time.Second, func() bool { return timedCalls() >= queues })
	rtPoll(t, "queues drained", 30*time.Second, c.Drained)
	close(stopWatch)
	watchWG.Wait()

	// What was lost, duplicated, reordered.
	got := called()
	var lost []string
	for k, p := range accepted {
		if len(got[k]) == 0 && p.sent.Before(killed) {
			lost = append(lost, k)
		}
	}
	sort.Strings(lost)
	var calls, dups, reordered, unaccepted int
	for k, cs := range got {
		calls += len(cs)
		dups += len(cs) - 1
		if _, ok := accepted[k]; !ok {
			unaccepted++ // refused, yet stored
		}
	}
	byQueue := map[string][]testcluster.Call{}
	for _, cl := range tg.Calls() {
		if cl.Path != "/task" {
			continue
		}
		byQueue[cl.Query.Get("q")] = append(byQueue[cl.Query.Get("q")], cl)
	}
	for q, cs := range byQueue {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
		last, seen := -1, map[int]bool{}
		for _, cl := range cs {
			i, _ := strconv.Atoi(cl.Query.Get("i"))
			if seen[i] {
				continue // a redelivery
			}
			seen[i] = true
			if i < last {
				reordered++
				t.Errorf("queue %s: task %d first called after task %d", q, i, last)
			}
			last = max(last, i)
		}
	}
	// Dispatch unavailability: from the kill to the first call of a task
	// accepted after it.
	firstAfter := time.Time{}
	for k, cs := range got {
		if p, ok := accepted[k]; ok && !p.sent.Before(killed) {
			for _, cl := range cs {
				if firstAfter.IsZero() || cl.Start.Before(firstAfter) {
					firstAfter = cl.Start
				}
			}
		}
	}
	// The longest pause in calls after the kill.
	var starts []time.Time
	for _, cl := range tg.Calls() {
		starts = append(starts, cl.Start)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	var pause time.Duration
	for i := 1; i < len(starts); i++ {
		if starts[i].After(killed) && starts[i].Sub(starts[i-1]) > pause {
			pause = starts[i].Sub(starts[i-1])
		}
	}

	for _, p := range c.Procs("") {
		if p.Exited() {
			t.Errorf("%s exited: the roles must follow the failover without a restart", p.Name)
		} else if !rtReady(p) {
			t.Errorf("%s is not ready after the failover", p.Name)
		}
	}
	if ov := tg.OverlapList(); len(ov) > 0 {
		t.Errorf("two calls of a serial queue at once: %v", rtFirst(ov, 5))
	}
	// A task handed out in the last second before the kill may be called
	// again with the same attempt number: the old primary's last writes (the
	// delivery that counted the attempt, or the outcome) can be missing from
	// the replica it promoted (asynchronous replication). Such a task's
	// first call can start before the kill, or after it: a dispatcher goes
	// on calling the entries it holds while its lease lasts, and until the
	// promotion no call can come from anywhere else (there is no primary to
	// deliver from). So the calls that started from a second before the
	// kill to the promotion are excused; any other repeat must be explained
	// by a failed or lost attempt.
	calledBefore := map[string]bool{} // called from a second before the kill to the promotion
	for _, cl := range tg.Calls() {
		if cl.Start.After(killed.Add(-time.Second)) && cl.Start.Before(killed.Add(promoted)) {
			calledBefore[cl.TaskID] = true
		}
	}
	others := slices.DeleteFunc(tg.Calls(), func(cl testcluster.Call) bool { return calledBefore[cl.TaskID] })
	if odd := unexplainedDuplicates(t, c, others); len(odd) > 0 {
		t.Errorf("%d tasks not called in the second before the kill were called again without a failed or lost attempt before: %v", len(odd), rtFirst(odd, 10))
	}
	if len(lost) > lastSecond {
		t.Errorf("%d tasks accepted before the kill were lost (%v…), more than the %d accepted in the last second before it", len(lost), rtFirst(lost, 5), lastSecond)
	}
	if after == 0 {
		t.Errorf("no task was accepted after the failover")
	}
	// The roles follow the sentinels' switch quickly (go-redis asks the
	// sentinels again when the old primary's connections fail).
	if follow := promoted + 10*time.Second; apiBack > follow {
		t.Errorf("the API accepted tasks again %v after the kill, more than 10 s after the promotion (%v)", apiBack, promoted)
	} else if d := firstAfter.Sub(killed); d > follow {
		t.Errorf("the dispatchers called a post-kill task %v after the kill, more than 10 s after the promotion (%v)", d, promoted)
	}

	t.Logf("primary %s killed %v into the load; sentinels promoted the replica %s %v after the kill",
		oldPrimary, killed.Sub(loadStart).Round(time.Millisecond), ss.Replica.Addr(), promoted.Round(time.Millisecond))
	t.Logf("API: first task accepted again %v after the kill; %d enqueue requests refused or failed", apiBack.Round(time.Millisecond), refused)
	t.Logf("dispatch: first call of a post-kill task %v after the kill; longest pause in calls %v", firstAfter.Sub(killed).Round(time.Millisecond), pause.Round(time.Millisecond))
	for _, r := range ready {
		if r.downSamples == 0 {
			t.Logf("readiness %s: always ready (%d samples every 50 ms)", r.name, r.nSamples)
			continue
		}
		t.Logf("readiness %s: not ready from %v to %v after the kill (%d of %d samples)",
			r.name, r.firstDown.Sub(killed).Round(time.Millisecond), r.lastDown.Sub(killed).Round(time.Millisecond), r.downSamples, r.nSamples)
	}
	t.Logf("accepted %d tasks before the kill (%d in its last second) and %d after; lost %d accepted before the kill %v; all %d accepted after it delivered",
		before, lastSecond, after, len(lost), rtFirst(lost, 10), after)
	t.Logf("%d calls: %d duplicates, %d tasks stored although their enqueue was refused, %d reordered, %d overlaps", calls, dups, unaccepted, reordered, len(tg.OverlapList()))
}

func rtFirst(list []string, n int) []string { return list[:min(n, len(list))] }

var rtProbe = &http.Client{Timeout: time.Second}

// rtReady reports whether a process answers /readyz with 200 within a second.
func rtReady(p *testcluster.Proc) bool {
	resp, err := rtProbe.Get(p.Health + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
