package fault

import (
	"maps"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
)

// TestDispatcherCrashUnderLoad: 3 dispatchers, 200 queues, a steady stream
// of tasks, a target with random latency; kill -9 one dispatcher, then
// another, then start both again. Every accepted task is called, each
// queue's order holds, and duplicates stay within the calls that were in
// flight at the kills.
func TestDispatcherCrashUnderLoad(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 3, Config: `dispatcher:
  lease_ttl: 1s
  recovery_grace: 500ms
  poll_max: 200ms
`})
	tg := testcluster.NewTarget(t)
	tg.Respond = randomLatency(100 * time.Millisecond) // calls are in flight at the kills
	queues := queueNames("crash", 200)
	// A timeout well above any call's duration on a busy machine: a call that
	// times out is retried by design, which is not what this test is about.
	createQueues(t, c, queues, client.QueueSettings{Timeout: client.D(5 * time.Second)})
	l := startLoad(c, tg.URL, queues, time.Second) // ~200 tasks/s

	ds := c.Procs("dispatcher")
	tg.TrackCallers(ds...)
	type killing struct {
		name string
		at   time.Time
	}
	var kills []killing
	pending := map[string]bool{}
	// kill stops the dispatcher where it is, and kills it once it holds
	// delivered entries (a crash that catches no work in hand would prove
	// nothing); otherwise it lets it go on and tries again.
	kill := func(p *testcluster.Proc) {
		t.Helper()
		for try := 0; ; try++ {
			c.WaitFor(p.Name+" to be calling", 10*time.Second, func() bool { return p.Metric("htq_dispatcher_inflight_calls") > 0 })
			at := time.Now()
			p.Signal(t, syscall.SIGSTOP)
			held := pendingOf(t, c, queues, p.Name)
			if len(held) > 0 || try == 20 {
				p.Signal(t, syscall.SIGKILL)
				kills = append(kills, killing{p.Name, at})
				maps.Copy(pending, held)
				return
			}
			p.Signal(t, syscall.SIGCONT)
		}
	}
	time.Sleep(2 * time.Second) // load before the first kill
	kill(ds[0])
	time.Sleep(2 * time.Second) // the survivors carry the load alone
	kill(ds[1])
	time.Sleep(2 * time.Second)
	c.Restart(ds[0])
	c.Restart(ds[1])
	tg.TrackCallers(ds...)
	time.Sleep(2 * time.Second)
	l.Stop()
	stopped := time.Now()

	c.WaitFor("every accepted task called", 90*time.Second, func() bool { return len(l.check(tg.Calls()).lost) == 0 })
	c.WaitFor("queues drained", 30*time.Second, c.Drained)
	calls := tg.Calls()
	r := l.check(calls)
	// In flight at a kill: a call of the killed process that the target was
	// handling around the kill. A killed process sends nothing, so a call the
	// target starts just after the kill was sent just before (the busy target
	// lags); one that ended just before may not have been recorded in Redis.
	inFlightAtKills := 0
	for _, k := range kills {
		for _, cl := range calls {
			if cl.Caller == k.name && cl.Start.Before(k.at.Add(100*time.Millisecond)) && cl.End.After(k.at.Add(-100*time.Millisecond)) {
				inFlightAtKills++
			}
		}
	}
	shown := 0
	seen := map[string][]testcluster.Call{}
	for _, cl := range calls {
		seen[cl.TaskID] = append(seen[cl.TaskID], cl)
	}
	for id, cs := range seen {
		for _, cl := range cs {
			if len(cs) > 1 && shown < 10 {
				shown++
				t.Logf("duplicate %s: attempt %s by %s %s..%s", id, cl.Attempt, cl.Caller, cl.Start.Format("05.000"), cl.End.Format("05.000"))
			}
		}
	}
	for _, k := range kills {
		t.Logf("killed %s at %s", k.name, k.at.Format("05.000"))
	}
	var durs []time.Duration
	for _, cl := range calls {
		durs = append(durs, cl.End.Sub(cl.Start))
	}
	slices.Sort(durs)
	t.Logf("target-side call durations: p50 %v p99 %v max %v", durs[len(durs)/2], durs[len(durs)*99/100], durs[len(durs)-1])
	t.Logf("%v; in flight at the kills: %d; drained %v after the load stopped", r, inFlightAtKills, time.Since(stopped).Round(time.Millisecond))
	if len(r.lost) > 0 {
		t.Errorf("lost %d accepted tasks: %v", len(r.lost), first(r.lost, 10))
	}
	if len(r.disorder) > 0 {
		t.Errorf("order broken %d times: %v", len(r.disorder), first(r.disorder, 10))
	}
	if odd := unexplainedDuplicates(t, c, calls); len(odd) > 0 {
		t.Errorf("%d tasks called again without a failed or lost attempt before: %v", len(odd), first(odd, 10))
	}
	t.Logf("tasks held by the killed dispatchers: %d", len(pending))
	if len(pending) == 0 {
		t.Errorf("the killed dispatchers held no task: the redelivery path was not exercised")
	}
	// Only a task a killed dispatcher held (delivered, not acknowledged) can
	// be called again; each at most once more, by the dispatcher that
	// recovers it.
	if r.duplicates > len(pending) {
		t.Errorf("%d duplicate calls, more than the %d tasks the killed dispatchers held", r.duplicates, len(pending))
	}
	for id, cs := range seen {
		if len(cs) > 1 && !pending[id] {
			t.Errorf("task %s was called %d times but was not held by a killed dispatcher", id, len(cs))
		}
	}
	if r.accepted < 1000 {
		t.Errorf("only %d tasks accepted: the load did not run", r.accepted)
	}
}
