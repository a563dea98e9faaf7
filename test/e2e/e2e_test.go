package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/testcluster"
)

// TestOrderAcrossDispatchers: 50 queues × 100 tasks, half through the legacy
// API and half through REST, on 3 dispatchers and 2 schedulers: every task
// is delivered exactly once, in order, one at a time per queue.
func TestOrderAcrossDispatchers(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 2, Dispatchers: 3})
	tg := testcluster.NewTarget(t)
	const queues, perQueue = 50, 100
	res := testcluster.RunCore(t, c, tg, queues, perQueue, false, nil)
	calls := tg.Calls()
	if len(calls) != queues*perQueue {
		t.Fatalf("%d calls, want exactly %d (a clean run delivers nothing twice)", len(calls), queues*perQueue)
	}
	testcluster.CheckSerial(t, calls, perQueue)
	t.Logf("%d tasks: enqueued in %v, all delivered after %v (%.0f tasks/s end to end)",
		len(calls), res.Enqueued.Round(time.Millisecond), res.Took.Round(time.Millisecond), float64(len(calls))/res.Took.Seconds())
}

// TestKillDispatcherMidCall: kill -9 the dispatcher in the middle of a slow
// call; another dispatcher calls it again once its timeout and the recovery
// grace have passed, and the queue's later tasks run only after it.
func TestKillDispatcherMidCall(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 3, Config: `dispatcher:
  lease_ttl: 1s
  recovery_grace: 500ms
  poll_max: 100ms
`})
	tg := testcluster.NewTarget(t)
	first := make(chan time.Time, 1)
	tg.Respond = func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/slow" && n == 1 {
			first <- time.Now()
			select { // hang until the caller goes away
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	const timeout = 2 * time.Second
	hc := c.Client()
	if _, created, err := hc.PutQueue(t.Context(), "slow", client.QueueSettings{Timeout: client.D(timeout)}); err != nil || !created {
		t.Fatalf("create queue: created=%v %v", created, err)
	}
	if _, err := hc.CreateTask(t.Context(), "slow", client.TaskRequest{URL: tg.URL + "/slow?q=slow&i=0"}); err != nil {
		t.Logf("create task: %v", err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := hc.CreateTask(t.Context(), "slow", client.TaskRequest{URL: fmt.Sprintf("%s/fast?q=slow&i=%d", tg.URL, i)}); err != nil {
			t.Logf("create task: %v", err)
		}
	}
	var started time.Time
	select {
	case started = <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow call never started")
	}
	rdb := redis.NewClient(&redis.Options{Addr: c.Redis.Addr()})
	defer rdb.Close()
	owner, err := rdb.Get(t.Context(), store.NewKeys("htq:").Queue("slow").Lease).Result()
	if err != nil {
		t.Fatalf("read lease: %v", err)
	}
	var victim *testcluster.Proc
	for _, p := range c.Procs("dispatcher") {
		// the lease is "<dispatcher id>~<nonce of its run>:<epoch>"
		if len(owner) > len(p.Name) && owner[:len(p.Name)+1] == p.Name+"~" {
			victim = p
		}
	}
	if victim == nil {
		t.Fatalf("no dispatcher owns the lease %q", owner)
	}
	victim.Signal(t, syscall.SIGKILL)

	c.WaitFor("every task", 30*time.Second, func() bool { return tg.Count() >= 7 })
	c.WaitFor("queue drained", 10*time.Second, c.Drained)
	calls := tg.Calls()
	if len(calls) != 7 {
		t.Fatalf("%d calls, want 7 (slow twice, then 5 fast)", len(calls))
	}
	var redelivery testcluster.Call
	for _, cl := range calls {
		if cl.Path == "/slow" && cl.Attempt == "2" {
			redelivery = cl
		}
	}
	if redelivery.TaskID == "" {
		t.Fatalf("no second attempt of the slow task: %+v", calls)
	}
	if waited := redelivery.Start.Sub(started); waited < timeout+500*time.Millisecond-100*time.Millisecond {
		t.Fatalf("redelivered %v after the first call started, before timeout + grace (2.5s)", waited)
	}
	for _, cl := range calls {
		if cl.Path == "/fast" && cl.Start.Before(redelivery.End) {
			t.Fatalf("task %s ran before the redelivered slow task finished", cl.Query.Get("i"))
		}
	}
	testcluster.CheckSerial(t, calls[1:], 6)
	t.Logf("the slow call was redelivered %v after it started (timeout 2s + grace 0.5s)", redelivery.Start.Sub(started).Round(time.Millisecond))
}

// TestSchedulerFailover: kill -9 the leading scheduler; the other takes over
// within the lock TTL and a timed task still fires exactly once.
func TestSchedulerFailover(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 2, Dispatchers: 1, Config: fmt.Sprintf("scheduler:\n  lock_ttl: %s\n", ttl)})
	tg := testcluster.NewTarget(t)
	leader, follower := c.Leaders()
	hc := c.Client()
	if _, _, err := hc.PutQueue(t.Context(), "timed", client.QueueSettings{}); err != nil {
		t.Logf("create queue: %v", err)
	}
	due := time.Now().Add(1500 * time.Millisecond).UTC()
	created, err := hc.CreateTask(t.Context(), "timed", client.TaskRequest{URL: tg.URL + "/timed?q=timed&i=0", RunAt: &due})
	if err != nil {
		created = &client.Created{}
		t.Logf("create task: %v", err)
	}

	killed := time.Now()
	leader.Signal(t, syscall.SIGKILL)
	c.WaitFor("the follower to lead", 2*ttl, func() bool { return follower.Metric("htq_scheduler_is_leader") == 1 })
	takeover := time.Since(killed)
	if takeover > ttl+300*time.Millisecond {
		t.Fatalf("takeover took %v, lock TTL is %v", takeover, ttl)
	}
	c.WaitFor("the timed task", 10*time.Second, func() bool { return tg.Count() >= 1 })
	c.WaitFor("queue drained", 10*time.Second, c.Drained)
	calls := tg.Calls()
	if len(calls) != 1 || calls[0].TaskID != created.ID {
		t.Fatalf("calls = %+v, want the timed task once", calls)
	}
	if calls[0].Start.Before(due) {
		t.Fatalf("fired %v early", due.Sub(calls[0].Start))
	}
	t.Logf("takeover after %v; the task due at +1.5s fired %v late", takeover.Round(time.Millisecond), calls[0].Start.Sub(due).Round(time.Millisecond))
}

// gapsOf returns, for the calls to one path, the time from the end of each
// call to the start of the next.
func gapsOf(calls []testcluster.Call, path string) []time.Duration {
	var cs []testcluster.Call
	for _, c := range calls {
		if c.Path == path {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
	var gaps []time.Duration
	for i := 1; i < len(cs); i++ {
		gaps = append(gaps, cs[i].Start.Sub(cs[i-1].End))
	}
	return gaps
}

func checkGaps(t *testing.T, name string, got []time.Duration, want []time.Duration, slack time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d gaps %v, want %d %v", name, len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] < want[i]-5*time.Millisecond || got[i] > want[i]+slack {
			t.Errorf("%s: gap %d = %v, want %v (+%v)", name, i+1, got[i].Round(time.Millisecond), want[i], slack)
		}
	}
	t.Logf("%s gaps: %v", name, got)
}

// TestVariableQueue checks the variable gap rule with sub-second REST
// durations: reset and done from the body and from X-HTQ-Action, and
// X-HTQ-Next-In.
func TestVariableQueue(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 2})
	tg := testcluster.NewTarget(t)
	tg.Respond = func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/body":
			switch n {
			case 6:
				_, _ = w.Write([]byte(" reset\n"))
			case 10:
				_, _ = w.Write([]byte("done"))
			default:
				_, _ = w.Write([]byte("ok"))
			}
		case "/header":
			switch n {
			case 3:
				w.Header().Set("X-HTQ-Action", "reset")
			case 4:
				w.Header().Set("X-HTQ-Next-In", "0.45")
			case 6:
				w.Header().Set("X-HTQ-Action", "done")
			}
			_, _ = w.Write([]byte("body is ignored when the header says"))
		}
	}
	hc := c.Client()
	if _, created, err := hc.PutQueue(t.Context(), "var", client.QueueSettings{Type: "variable",
		SteppingTime: client.D(300 * time.Millisecond), MaxTimeInterval: client.D(700 * time.Millisecond)}); err != nil || !created {
		t.Fatalf("create: created=%v %v", created, err)
	}
	// Raw on purpose: the durations as numbers of seconds, which the API
	// also takes and the Go client never sends.
	if code := c.REST("PUT", "/v1/queues/var2", map[string]any{"type": "variable", "stepping_time": 0.2, "max_time_interval": 1}, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var ids []string
	for q, path := range map[string]string{"var": "/body", "var2": "/header"} {
		cr, err := hc.CreateTask(t.Context(), q, client.TaskRequest{URL: tg.URL + path})
		if err != nil {
			t.Logf("create task in %s: %v", q, err)
			cr = &client.Created{}
		}
		ids = append(ids, cr.ID)
	}
	for _, id := range ids {
		c.WaitFor("task "+id+" done", 30*time.Second, func() bool {
			ti, err := hc.GetTask(t.Context(), id)
			return err == nil && ti.State == "succeeded"
		})
	}
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	calls := tg.Calls()
	// Never early (checkGaps allows 5 ms); up to 250 ms late: a gap is a
	// promotion by the scheduler then a claim and a call, and a loaded
	// 2-core machine (CI runs other system tests beside this one) has been
	// seen to delay that chain by 161 ms once (a header gap: 361 ms for 200).
	// k: 0,1,2,3,4 -> gaps 0,300,600,700,700; reset -> 300; then 0,300,600; done.
	checkGaps(t, "body", gapsOf(calls, "/body"), ms(0, 300, 600, 700, 700, 300, 0, 300, 600), 250*time.Millisecond)
	// 0, 200; reset -> 200; Next-In 450 (k counts on); k=1 -> 200; done.
	checkGaps(t, "header", gapsOf(calls, "/header"), ms(0, 200, 200, 450, 200), 250*time.Millisecond)
}

// TestVariableQueueLegacy: a variable queue made with the legacy API in whole
// seconds (stepping 1, max 2) calls at gaps 0, 1, 2, 2 until "done".
func TestVariableQueueLegacy(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 1})
	tg := testcluster.NewTarget(t)
	tg.Respond = func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 5 {
			_, _ = w.Write([]byte("done"))
			return
		}
		_, _ = w.Write([]byte("not yet"))
	}
	if r := c.Legacy("addQueue", "queue_name", "feeds", "type", "variable", "stepping_time", "1", "max_time_interval", "2"); r["error_code"] != float64(0) {
		t.Fatalf("addQueue: %v", r)
	}
	if r := c.Legacy("addTask", "queue_name", "feeds", "url", tg.URL+"/feed", "execute_time", "0", "method", "get", "header", "[]", "data", "[]"); r["error_code"] != float64(0) {
		t.Fatalf("addTask: %v", r)
	}
	c.WaitFor("five calls", 20*time.Second, func() bool { return tg.Count() >= 5 })
	c.WaitFor("task finished", 5*time.Second, func() bool {
		r := c.Legacy("countQueue", "queue_name", "feeds")
		return r["count"] == float64(0)
	})
	s := time.Second
	// 400 ms late at most: the rule's steps are a second apart, and a loaded
	// machine delays a promotion and its call by 200 ms now and then (never
	// early: checkGaps allows 5 ms)
	checkGaps(t, "legacy", gapsOf(tg.Calls(), "/feed"), []time.Duration{0, s, 2 * s, 2 * s}, 400*time.Millisecond)
}
