package fault

import (
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
)

// TestRedisRestarts: with AOF appendfsync everysec, Redis is restarted under
// load, first gracefully (SIGTERM: it syncs the AOF, nothing accepted may be
// lost), then with SIGKILL (loss bounded by the fsync window). The roles
// reconnect by themselves: readiness goes false and back to true, and no
// process restarts.
func TestRedisRestarts(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 2,
		RedisArgs: []string{"--appendonly", "yes", "--appendfsync", "everysec"},
		Config:    "dispatcher:\n  poll_max: 200ms\n"})
	tg := testcluster.NewTarget(t)
	tg.Respond = randomLatency(5 * time.Millisecond)
	queues := queueNames("rr", 50)
	createQueues(t, c, queues, client.QueueSettings{Timeout: client.D(5 * time.Second)})
	procs := c.Procs("")
	pids := map[string]int{}
	for _, p := range procs {
		pids[p.Name] = p.Pid()
	}
	l := startLoad(c, tg.URL, queues, 200*time.Millisecond) // ~250 tasks/s

	outage := func(name string, stop func()) (time.Time, time.Duration) {
		time.Sleep(2 * time.Second)
		at := time.Now()
		stop()
		// readiness goes false on every role…
		c.WaitFor("every role to see Redis down", 10*time.Second, func() bool {
			for _, p := range procs {
				if p.Ready() {
					return false
				}
			}
			return true
		})
		c.Redis.Restart()
		restarted := time.Now()
		// … and back to true, without a process restart
		c.WaitFor("every role ready again", 30*time.Second, func() bool {
			for _, p := range procs {
				if !p.Ready() {
					return false
				}
			}
			return true
		})
		back := time.Since(at)
		t.Logf("%s: Redis down for %v; every role ready again %v after Redis answered",
			name, restarted.Sub(at).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
		return at, back
	}
	outage("graceful restart", c.Redis.Stop)
	gracefulAccepted := l.total()
	killedAt, _ := outage("SIGKILL", c.Redis.Kill)
	time.Sleep(2 * time.Second)
	l.Stop()

	c.WaitFor("queues drained", 60*time.Second, c.Drained)
	c.WaitFor("the target to settle", 10*time.Second, func() bool { n := tg.Count(); time.Sleep(300 * time.Millisecond); return tg.Count() == n })
	calls := tg.Calls()
	r := l.check(calls)
	// A task lost to the SIGKILL was accepted at most one fsync period (1 s,
	// plus the time the fsync itself takes) before the kill.
	var lostOutside []string
	for _, id := range r.lost {
		l.mu.Lock()
		at := l.acceptAt[id]
		l.mu.Unlock()
		if at.Before(killedAt.Add(-2*time.Second)) || at.After(killedAt) {
			lostOutside = append(lostOutside, id+" accepted at "+at.Format("05.000"))
		}
	}
	t.Logf("%v (%d accepted before the SIGKILL phase; %d refused while Redis was down); lost tasks were accepted within %v before the SIGKILL",
		r, gracefulAccepted, l.refused, "2s")
	if len(lostOutside) > 0 {
		t.Errorf("lost %d accepted tasks outside the fsync window of the SIGKILL: %v", len(lostOutside), first(lostOutside, 10))
	}
	if len(r.disorder) > 0 {
		t.Errorf("order broken %d times: %v", len(r.disorder), first(r.disorder, 10))
	}
	// A call whose outcome could not be written while Redis was down is made
	// again, as a new attempt; nothing else may be.
	if odd := unexplainedDuplicates(t, c, calls); len(odd) > 0 {
		t.Errorf("%d tasks called again without a failed or lost attempt before: %v", len(odd), first(odd, 10))
	}
	for _, p := range procs {
		if p.Exited() || p.Pid() != pids[p.Name] {
			t.Errorf("%s restarted or exited", p.Name)
		}
	}
	if r.accepted < 1000 {
		t.Errorf("only %d tasks accepted", r.accepted)
	}
}
