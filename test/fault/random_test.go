package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
)

// The randomized fault test's knobs: the seed (printed by every run), the
// length of the fault schedule, and Redis's appendfsync.
const (
	envSeed     = "HTQ_FAULT_SEED"
	envDuration = "HTQ_FAULT_DURATION"
	envFsync    = "HTQ_FAULT_FSYNC" // always (the default) or everysec
)

const defaultFaultDuration = 20 * time.Second

// faultRegressions are seeds that once failed: make test runs them besides
// a random seed (unless HTQ_FAULT_SEED picks one). A seed fixes the fault
// schedule, not the processes' timing, so a case is a strong hint, not a
// replay.
// Their durations are shorter than the runs that found them: a shorter run
// replays the first part of the same schedule, and make test keeps this
// test under 90 s.
var faultRegressions = []struct {
	seed     uint64
	duration time.Duration
	found    string
}{
	{1654277581124258822, 15 * time.Second, "timed tasks called out of due order after a scheduler kill (twice in three 25 s runs): a task due now passed its queue's due, unpromoted timed tasks; fixed in store (TestEnqueueNowKeepsBehindDueTimedTasks)"},
	{7320818364177947664, 15 * time.Second, "8 starts in 2 s on two rate-3 queues where 7.9 are allowed, just after the load stopped; not reproduced, cause unknown"},
}

// TestRandomFaults runs 3 dispatchers, 2 schedulers and 200 queues of five
// kinds under a steady load, through a random (seeded) schedule of faults:
// kill -9 and graceful restarts of dispatchers and schedulers, SIGSTOP of a
// dispatcher past its lease then SIGCONT, a Redis kill -9 and restart (AOF),
// timeout and concurrency changes, pause and resume, and queue delete and
// re-create. testcluster.CheckRecord then judges the target's record: no
// accepted task lost, no overlap in a serial queue, first calls in order,
// X-HTQ-Sequence rising, concurrency and rate kept; and every repeated call
// follows a failed or lost attempt.
//
//	HTQ_FAULT_SEED=42 HTQ_FAULT_DURATION=2m go test -count=1 -v -run TestRandomFaults ./test/fault/
//
// With HTQ_FAULT_FSYNC=everysec, tasks accepted in the 2 s before a Redis
// kill that are never called are counted and reported apart (the fsync
// window, RELIABILITY.md), not as lost; any other loss fails the test.
func TestRandomFaults(t *testing.T) {
	t.Parallel()
	seed := rand.Uint64() >> 1
	fixed := os.Getenv(envSeed) != ""
	if fixed {
		n, err := strconv.ParseUint(os.Getenv(envSeed), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", envSeed, err)
		}
		seed = n
	}
	dur := defaultFaultDuration
	if s := os.Getenv(envDuration); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 5*time.Second {
			t.Fatalf("%s=%q: want a Go duration of at least 5s", envDuration, s)
		}
		dur = d
	}
	fsync := "always"
	if s := os.Getenv(envFsync); s != "" {
		if s != "always" && s != "everysec" {
			t.Fatalf("%s=%q: want always or everysec", envFsync, s)
		}
		fsync = s
	}
	t.Logf("seed %d, %v of faults, appendfsync %s; rerun with %s=%d %s=%v %s=%s", seed, dur, fsync, envSeed, seed, envDuration, dur, envFsync, fsync)
	t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runFaults(t, seed, dur, fsync) })
	if fixed {
		return
	}
	for _, r := range faultRegressions {
		t.Run(fmt.Sprintf("regression/seed=%d", r.seed), func(t *testing.T) {
			t.Logf("found: %s", r.found)
			runFaults(t, r.seed, r.duration, "always")
		})
	}
}

// Queue kinds, by the first letter of the queue's name.
var faultKinds = []struct {
	prefix string
	n      int
	cfg    client.QueueSettings
}{
	{"s", 80, client.QueueSettings{}},                                                   // serial
	{"c", 40, client.QueueSettings{Concurrency: ptr(3)}},                                // concurrency 3 (changed by faults)
	{"r", 30, client.QueueSettings{Concurrency: ptr(2), Rate: ptr(3.0), Burst: ptr(1)}}, // rate-limited
	{"v", 20, client.QueueSettings{Type: "variable", SteppingTime: client.D(100 * time.Millisecond), MaxTimeInterval: client.D(300 * time.Millisecond)}}, // variable
	{"t", 30, client.QueueSettings{}}, // timed tasks, serial
}

// faultRetry is every fault-test queue's retry policy.
func faultRetry() *client.Retry {
	return &client.Retry{MaxAttempts: ptr(100), MinBackoff: client.D(100 * time.Millisecond), MaxBackoff: client.D(300 * time.Millisecond)}
}

// Timeouts a fault toggles between. A slow call lasts 0.6 × the lowest
// timeout in force around its arrival: it ends well before the deadline it
// was handed out with (a call that times out is retried by design, and
// timeouts under load would only churn connections), yet outlives a
// lowered timeout plus the grace, so a recovery that forgot the stamped
// deadline would overlap it.
var faultTimeouts = []time.Duration{2 * time.Second, 8 * time.Second}

// faultRun is one run's shared state.
type faultRun struct {
	t   *testing.T
	c   *testcluster.Cluster
	api *client.Client // through faultClient, each call tried once
	tg  *testcluster.Target
	rng *rand.Rand // the schedule's, used by the test goroutine only

	mu        sync.Mutex
	ledger    testcluster.Ledger
	gens      map[string]int
	varCalls  map[string]int // variable task -> calls so far
	refused   int
	faults    map[string]int
	queues    []string
	ctl       map[string]chan func()
	loadStop  chan struct{}
	loadWG    sync.WaitGroup
	redisDown [][2]time.Time
	frozen    map[string]testcluster.Freeze // test goroutine only
	pauses    map[string][][2]time.Time     // queue -> [paused, resumed] (zero: not resumed)
}

func (r *faultRun) timeoutFloor(q string, at time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if low, _ := r.ledger.Rules[q].TimeoutsAround(at); low > 0 {
		return low
	}
	return faultTimeouts[0]
}

// respond is the target: mostly quick, sometimes 50-200 ms, 0.5 % slow; a
// variable task answers done at its third call. A call whose caller went
// away (killed, timed out) ends at once.
func (r *faultRun) respond(w http.ResponseWriter, req *http.Request, _ int) {
	start := time.Now()
	q := req.URL.Query().Get("q")
	var d time.Duration
	switch x := rand.Float64(); {
	case x < 0.005:
		d = r.timeoutFloor(q, start) * 6 / 10
	case x < 0.1:
		d = 50*time.Millisecond + rand.N(150*time.Millisecond)
	default:
		d = time.Millisecond + rand.N(20*time.Millisecond)
	}
	select {
	case <-time.After(d):
	case <-req.Context().Done():
		return
	}
	if strings.HasPrefix(q, "v") {
		key := q + "/" + req.URL.Query().Get("g") + "/" + req.URL.Query().Get("i")
		r.mu.Lock()
		r.varCalls[key]++
		n := r.varCalls[key]
		r.mu.Unlock()
		if n >= 3 {
			_, _ = w.Write([]byte("done"))
			return
		}
	}
	_, _ = w.Write([]byte("ok"))
}

func runFaults(t *testing.T, seed uint64, dur time.Duration, fsync string) {
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 2, Dispatchers: 3,
		RedisArgs: []string{"--appendonly", "yes", "--appendfsync", fsync},
		Config: `dispatcher:
  lease_ttl: 1s
  recovery_grace: 500ms
  shutdown_grace: 1s
  poll_max: 200ms
scheduler:
  lock_ttl: 2s
`})
	r := &faultRun{t: t, c: c, api: c.Client(client.WithHTTPClient(faultClient), client.WithRetries(0, 0, 0)), tg: testcluster.NewTarget(t), rng: rand.New(rand.NewPCG(seed, seed^0x5deece66d)),
		gens: map[string]int{}, varCalls: map[string]int{},
		faults: map[string]int{}, frozen: map[string]testcluster.Freeze{}, pauses: map[string][][2]time.Time{}, ctl: map[string]chan func(){}, loadStop: make(chan struct{})}
	r.ledger = testcluster.Ledger{Accepted: map[testcluster.TaskRef]time.Time{}, Deleted: map[string]map[int]time.Time{}, Rules: map[string]*testcluster.QueueRules{}}
	r.tg.Respond = r.respond
	ds := c.Procs("dispatcher")
	r.tg.TrackCallers(ds...)
	c.Launched = func(*testcluster.Proc) { r.tg.TrackCallers(c.Procs("dispatcher")...) }

	start := time.Now()
	for _, k := range faultKinds {
		for i := range k.n {
			q := fmt.Sprintf("%s%03d", k.prefix, i)
			to := faultTimeouts[r.rng.IntN(len(faultTimeouts))]
			cfg := k.cfg
			cfg.Timeout, cfg.Retry = client.D(to), faultRetry()
			if _, created, err := c.Client().PutQueue(t.Context(), q, cfg); err != nil || !created {
				t.Fatalf("create %s: created=%v %v", q, created, err)
			}
			conc, rate, burst := 0, 0.0, 0
			if cfg.Concurrency != nil {
				conc = *cfg.Concurrency
			}
			if cfg.Rate != nil {
				rate = *cfg.Rate
			}
			if cfg.Burst != nil {
				burst = *cfg.Burst
			}
			r.ledger.Rules[q] = &testcluster.QueueRules{Concurrency: []testcluster.Step{{N: max(conc, 1)}}, Rate: rate, Burst: burst,
				Ordered: k.prefix != "v", Recurring: k.prefix == "v", Timeouts: []testcluster.Step{{N: int(to.Milliseconds())}}}
			r.queues = append(r.queues, q)
			r.ctl[q] = make(chan func(), 16)
		}
	}
	for _, q := range r.queues {
		r.loadWG.Go(func() { r.load(q) })
	}

	steps := r.schedule(dur, len(ds), 2, fsync == "everysec")
	t.Logf("%d queues set up in %v; %d scheduled steps", len(r.queues), time.Since(start).Round(time.Millisecond), len(steps))
	faultStart := time.Now()
	for _, s := range steps {
		time.Sleep(time.Until(faultStart.Add(s.at)))
		r.do(s)
	}
	time.Sleep(time.Until(faultStart.Add(dur)))
	close(r.loadStop)
	r.c.Launched = nil
	r.loadWG.Wait()
	stopped := time.Now()
	final := c.Client(client.WithRetries(0, 0, 0))
	for _, q := range r.queues { // a pause whose resume was lost to a Redis restart
		if _, err := final.ResumeQueue(t.Context(), q); err != nil {
			t.Errorf("resume %s failed at the end: %v", q, err)
		}
	}

	// RateJitter: how much later than its token a call may arrive at the
	// target. The bucket lives in Redis; on a loaded 2-core machine a
	// dispatcher's send runs up to ~0.5 s behind it (seed
	// 7320818364177947664 saw 8 starts where 0.3 s allowed 7.9, at load 13).
	opts := testcluster.CheckOptions{RateWindow: 2 * time.Second, RateJitter: 500 * time.Millisecond}
	check := func() testcluster.Findings {
		r.mu.Lock()
		defer r.mu.Unlock()
		return testcluster.CheckRecord(r.tg.Calls(), &r.ledger, opts)
	}
	drained := waitUntil(90*time.Second, func() bool { return len(check().Lost) == 0 && c.Drained() })
	tookDrain := time.Since(stopped)
	waitUntil(5*time.Second, func() bool {
		n := r.tg.Count()
		time.Sleep(300 * time.Millisecond)
		return r.tg.Count() == n && r.tg.InFlight() == 0
	})
	f := check()
	calls := r.tg.Calls()

	var kinds []string
	total := 0
	for k, n := range r.faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(kinds)
	t.Logf("seed %d: %d faults (%s); %d enqueues refused while Redis was down", seed, total, strings.Join(kinds, ", "), r.refused)
	t.Logf("seed %d: %v; drained %v after the load stopped", seed, f, tookDrain.Round(time.Millisecond))
	r.mu.Lock()
	for _, z := range r.ledger.Freezes {
		t.Logf("froze %s %s..%s holding %d tasks", z.Caller, z.Stop.Format("15:04:05.000"), z.Con.Format("15:04:05.000"), len(z.Held))
	}
	r.mu.Unlock()
	if len(f.StaleList) > 0 {
		t.Logf("stale sends (a freeze between the lease check and the send): %v", first(f.StaleList, 10))
	}
	if len(f.HeldOpen) > 0 {
		t.Logf("held open by a frozen caller past their deadline (a freeze during a call): %v", first(f.HeldOpen, 10))
	}
	if !drained {
		t.Errorf("not drained (every accepted task called and no queue with work) within 90 s of the load's end")
		for _, q := range dumpStuck(t, r.c, r.queues) {
			r.mu.Lock()
			t.Logf("stuck %s: timeouts %v, deleted %v, paused %v", q, r.ledger.Rules[q].Timeouts, r.ledger.Deleted[q], r.pauses[q])
			r.mu.Unlock()
			traceQueue(t, r.c, q, 40)
		}
	}
	if len(f.LostInWindow) > 0 {
		t.Logf("lost within the fsync window before a Redis kill (appendfsync %s): %d: %v", fsync, len(f.LostInWindow), first(f.LostInWindow, 10))
		if fsync == "always" {
			t.Errorf("appendfsync always lost %d accepted tasks", len(f.LostInWindow))
		}
	}
	for name, list := range map[string][]string{"lost": f.Lost, "overlaps": f.Overlaps, "concurrency exceeded": f.Concurrency,
		"order violations": f.Disorder, "sequence violations": f.Sequence, "rate exceeded": f.Rate} {
		if len(list) > 0 {
			t.Errorf("seed %d: %s: %d: %v", seed, name, len(list), first(list, 10))
		}
	}
	// Every repeat follows a failed or lost attempt (tasks of a deleted
	// generation are gone from the API; a variable task starts a new run of
	// attempts after each success; with everysec a repeat around a Redis
	// kill may have lost its record).
	var kept []testcluster.Call
	r.mu.Lock()
	for _, cl := range calls {
		ref, ok := testcluster.RefOf(cl)
		if !ok || !r.ledger.Deleted[ref.Queue][ref.Gen].IsZero() || r.ledger.Rules[ref.Queue].Recurring {
			continue
		}
		if fsync != "always" && aroundRedisKill(cl, r.redisDown) {
			continue
		}
		kept = append(kept, cl)
	}
	r.mu.Unlock()
	if odd := unexplainedDuplicates(t, c, kept); len(odd) > 0 {
		t.Errorf("seed %d: %d tasks called again without a failed or lost attempt before: %v", seed, len(odd), first(odd, 10))
	}
	for _, p := range c.Procs("") {
		if p.Exited() {
			t.Errorf("%s exited by itself", p.Name)
		}
	}
	if f.Accepted < 1000 {
		t.Errorf("only %d tasks accepted: the load did not run", f.Accepted)
	}
	if t.Failed() {
		traceTasks(t, c, append(append(first(f.Disorder, 2), first(f.Overlaps, 2)...), first(f.Sequence, 2)...))
		t.Logf("FAILED with seed %d: rerun with %s=%d %s=%v %s=%s, and add the seed to faultRegressions", seed, envSeed, seed, envDuration, dur, envFsync, fsync)
	}
}

// traceQueue logs each process's last n log lines about queue q.
func traceQueue(t *testing.T, c *testcluster.Cluster, q string, n int) {
	needle := fmt.Sprintf("%q:%q", "queue", q)
	for _, p := range c.Procs("") {
		lines := logLines(p, func(line string) bool { return strings.Contains(line, needle) })
		for _, line := range lines[max(0, len(lines)-n):] {
			t.Logf("trace %s %s: %s", q, p.Name, line)
		}
	}
}

// logLines returns the lines of a process's log that match.
func logLines(p *testcluster.Proc, match func(string) bool) []string {
	var out []string
	for _, line := range strings.Split(p.Log(), "\n") {
		if match(line) {
			out = append(out, line)
		}
	}
	return out
}

var taskIDRE = regexp.MustCompile(`id ([0-9a-f]{14})`)

// traceTasks logs every process's log lines about the tasks the findings
// name, for the diagnosis of a failing seed.
func traceTasks(t *testing.T, c *testcluster.Cluster, findings []string) {
	ids := map[string]bool{}
	for _, f := range findings {
		for _, m := range taskIDRE.FindAllStringSubmatch(f, -1) {
			ids[m[1]] = true
		}
	}
	for _, p := range c.Procs("") {
		for _, line := range logLines(p, func(line string) bool {
			for id := range ids {
				if strings.Contains(line, id) {
					return true
				}
			}
			return false
		}) {
			t.Logf("trace %s: %s", p.Name, line)
		}
	}
}

func aroundRedisKill(cl testcluster.Call, downs [][2]time.Time) bool {
	for _, w := range downs {
		if cl.End.After(w[0].Add(-2*time.Second)) && cl.Start.Before(w[1]) {
			return true
		}
	}
	return false
}

func waitUntil(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

var faultClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// load enqueues the queue's tasks (4 at a time every 2 s on a rate-limited
// queue, else one every 2 s, at a random phase) and runs the queue's
// administrative faults between two enqueues, so that every enqueue of a
// generation was answered before its delete was sent.
func (r *faultRun) load(q string) {
	every := 2 * time.Second
	batch := 1
	if q[0] == 'r' {
		batch = 4
	}
	time.Sleep(rand.N(every))
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastDue time.Time
	for i := 0; ; {
		select {
		case <-r.loadStop:
			return
		case f := <-r.ctl[q]:
			f()
			continue
		case <-tick.C:
		}
		r.mu.Lock()
		gen := r.gens[q]
		r.mu.Unlock()
		for range batch {
			task := client.TaskRequest{URL: fmt.Sprintf("%s/f?q=%s&g=%d&i=%d", r.tg.URL, q, gen, i)}
			if q[0] == 't' {
				// Due times rise with the index and are always in the future
				// when sent (a due time already past is enqueued at once,
				// ahead of an earlier timed task a dead scheduler has not
				// promoted yet).
				due := time.Now().Add(200*time.Millisecond + rand.N(3*time.Second)).Truncate(time.Millisecond)
				if !due.After(lastDue) {
					due = lastDue.Add(time.Millisecond)
				}
				lastDue = due
				runAt := due.UTC()
				task.RunAt = &runAt
			}
			_, err := r.api.CreateTask(context.Background(), q, task)
			r.mu.Lock()
			if err == nil {
				r.ledger.Accepted[testcluster.TaskRef{Queue: q, Gen: gen, Index: i}] = time.Now()
			} else {
				r.refused++
			}
			r.mu.Unlock()
			i++
		}
	}
}

// step is one action of the fault schedule.
type step struct {
	at    time.Duration
	kind  string
	role  string
	proc  int
	hold  time.Duration // how long the process stays down or frozen, the queue paused
	queue []string
	n     int
}

// schedule draws the faults from the seed: one every 0.4 to 1.4 s; a
// process fault only on a process that is up and not in another fault; a
// Redis kill and restart only while no process fault runs, at most one per
// 10 s (drawn four times as often with moreRedis).
func (r *faultRun) schedule(dur time.Duration, dispatchers, schedulers int, moreRedis bool) []step {
	redisWeight := 1
	if moreRedis { // the everysec variant is about Redis kills
		redisWeight = 4
	}
	busy := map[string]time.Duration{}
	lastRedis := -time.Hour
	var steps []step
	pick := func(n int) []string {
		var out []string
		for range n {
			out = append(out, r.queues[r.rng.IntN(len(r.queues))])
		}
		return out
	}
	free := func(role string, n int, at time.Duration) int {
		start := r.rng.IntN(n)
		for k := range n {
			i := (start + k) % n
			if busy[fmt.Sprint(role, i)] < at && busy["redis"] < at {
				return i
			}
		}
		return -1
	}
	u := func(a, b time.Duration) time.Duration { return a + time.Duration(r.rng.Int64N(int64(b-a))) }
	kinds := []struct {
		name   string
		weight int
	}{{"kill", 3}, {"freeze", 3}, {"restart", 2}, {"kill-scheduler", 1}, {"redis", redisWeight}, {"timeout", 2}, {"concurrency", 2}, {"pause", 2}, {"recreate", 2}}
	sum := 0
	for _, k := range kinds {
		sum += k.weight
	}
	for at := u(time.Second, 2*time.Second); at < dur-2*time.Second; at += u(400*time.Millisecond, 1400*time.Millisecond) {
		x := r.rng.IntN(sum)
		kind := ""
		for _, k := range kinds {
			if x < k.weight {
				kind = k.name
				break
			}
			x -= k.weight
		}
		s := step{at: at, kind: kind}
		switch kind {
		case "kill", "freeze", "restart", "kill-scheduler":
			s.role, s.hold = "dispatcher", u(300*time.Millisecond, 2*time.Second)
			n := dispatchers
			if kind == "kill-scheduler" || (kind == "restart" && r.rng.IntN(3) == 0) {
				s.role, n = "scheduler", schedulers
			}
			if kind == "freeze" {
				s.hold = u(1300*time.Millisecond, 3500*time.Millisecond) // past the 1 s lease
			}
			if s.proc = free(s.role, n, at); s.proc < 0 {
				continue
			}
			busy[fmt.Sprint(s.role, s.proc)] = at + s.hold + 3*time.Second // room for a slow start
		case "redis":
			ok := at-lastRedis > 10*time.Second && at+3*time.Second < dur
			for k, b := range busy {
				ok = ok && (k == "redis" || b < at)
			}
			if !ok {
				continue
			}
			s.hold, lastRedis = u(200*time.Millisecond, 1500*time.Millisecond), at
			busy["redis"] = at + s.hold + 3*time.Second
		case "timeout":
			s.queue = pick(10)
		case "concurrency":
			for len(s.queue) < 4 {
				if q := r.queues[r.rng.IntN(len(r.queues))]; q[0] == 'c' {
					s.queue = append(s.queue, q)
				}
			}
			s.n = 1 + r.rng.IntN(4)
		case "pause":
			s.queue, s.hold = pick(5), u(500*time.Millisecond, 3*time.Second)
		case "recreate":
			s.queue = pick(2)
		}
		steps = append(steps, s)
		switch kind {
		case "kill", "kill-scheduler":
			steps = append(steps, step{at: at + s.hold, kind: "start", role: s.role, proc: s.proc})
		case "freeze":
			steps = append(steps, step{at: at + s.hold, kind: "cont", role: s.role, proc: s.proc})
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	return steps
}

// do runs a step in the test goroutine: process and Redis faults, each
// undone by a later step (start, cont); queue changes go through the
// queue's loader.
func (r *faultRun) do(s step) {
	t := r.t
	if s.kind != "start" && s.kind != "cont" {
		r.mu.Lock()
		r.faults[s.kind]++
		r.mu.Unlock()
	}
	switch s.kind {
	case "kill", "kill-scheduler":
		r.c.Procs(s.role)[s.proc].Signal(t, syscall.SIGKILL)
	case "restart":
		p := r.c.Procs(s.role)[s.proc]
		p.Signal(t, syscall.SIGTERM)
		r.c.Restart(p)
	case "start":
		r.c.Restart(r.c.Procs(s.role)[s.proc])
	case "freeze":
		p := r.c.Procs(s.role)[s.proc]
		stopAt := time.Now()
		p.Signal(t, syscall.SIGSTOP)
		r.frozen[p.Name] = testcluster.Freeze{Caller: p.Name, Stop: stopAt, Held: pendingOf(t, r.c, r.queues, p.Name)}
	case "cont":
		p := r.c.Procs(s.role)[s.proc]
		z := r.frozen[p.Name]
		z.Con = time.Now()
		r.mu.Lock()
		r.ledger.Freezes = append(r.ledger.Freezes, z)
		r.mu.Unlock()
		p.Signal(t, syscall.SIGCONT)
	case "redis":
		at := time.Now()
		r.c.Redis.Kill()
		time.Sleep(s.hold)
		r.c.Redis.Restart()
		r.mu.Lock()
		r.redisDown = append(r.redisDown, [2]time.Time{at, time.Now()})
		r.ledger.LossWindows = append(r.ledger.LossWindows, [2]time.Time{at.Add(-2 * time.Second), at})
		r.mu.Unlock()
	case "timeout":
		for _, q := range s.queue {
			r.admin(q, func() {
				r.mu.Lock()
				rules := r.ledger.Rules[q]
				steps := rules.Timeouts
				to := faultTimeouts[0]
				if steps[len(steps)-1].N == int(to.Milliseconds()) {
					to = faultTimeouts[1]
				}
				// Recorded before it can be in force: the target's slow
				// calls lean on the lowest timeout in force.
				rules.Timeouts = append(steps, testcluster.Step{At: time.Now(), N: int(to.Milliseconds())})
				r.mu.Unlock()
				_, _, _ = r.api.PutQueue(context.Background(), q, client.QueueSettings{Timeout: client.D(to)})
			})
		}
	case "concurrency":
		for _, q := range s.queue {
			r.admin(q, func() {
				if _, _, err := r.api.PutQueue(context.Background(), q, client.QueueSettings{Concurrency: ptr(s.n)}); err == nil {
					r.mu.Lock()
					rules := r.ledger.Rules[q]
					rules.Concurrency = append(rules.Concurrency, testcluster.Step{At: time.Now(), N: s.n})
					r.mu.Unlock()
				}
			})
		}
	case "pause":
		for _, q := range s.queue {
			r.admin(q, func() {
				at := time.Now()
				_, _ = r.api.PauseQueue(context.Background(), q)
				r.mu.Lock()
				r.pauses[q] = append(r.pauses[q], [2]time.Time{at})
				r.mu.Unlock()
			})
			time.AfterFunc(s.hold, func() { r.admin(q, func() { r.resume(q) }) })
		}
	case "recreate":
		for _, q := range s.queue {
			r.admin(q, func() { r.recreate(q) })
		}
	}
}

// resume resumes a paused queue, retrying through a Redis outage as an
// operator would: a resume refused while Redis restarts would otherwise
// leave the queue paused until the load ends, with a backlog its rate
// limit cannot drain in the drain window. It gives up when the load
// stops (the test then resumes every queue).
func (r *faultRun) resume(q string) {
	for {
		_, err := r.api.ResumeQueue(context.Background(), q)
		if err == nil || client.IsNotFound(err) {
			r.mu.Lock()
			if ps := r.pauses[q]; len(ps) > 0 {
				ps[len(ps)-1][1] = time.Now()
			}
			r.mu.Unlock()
			return
		}
		select {
		case <-r.loadStop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// admin hands a queue change to the queue's loader (dropped after the load
// stopped).
func (r *faultRun) admin(q string, f func()) {
	select {
	case r.ctl[q] <- f:
	case <-r.loadStop:
	}
}

// recreate deletes the queue and creates it again with its current
// settings, as the next generation. It retries through a Redis outage.
func (r *faultRun) recreate(q string) {
	r.mu.Lock()
	gen := r.gens[q]
	rules := r.ledger.Rules[q]
	conc := rules.Concurrency[len(rules.Concurrency)-1].N
	to := time.Duration(rules.Timeouts[len(rules.Timeouts)-1].N) * time.Millisecond
	r.mu.Unlock()
	var deletedAt time.Time
	for {
		deletedAt = time.Now()
		if err := r.api.DeleteQueue(context.Background(), q); err == nil || client.IsNotFound(err) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var cfg client.QueueSettings
	for _, k := range faultKinds {
		if k.prefix == q[:1] {
			cfg = k.cfg
		}
	}
	cfg.Timeout, cfg.Concurrency, cfg.Retry = client.D(to), ptr(conc), faultRetry()
	for {
		if _, created, err := r.api.PutQueue(context.Background(), q, cfg); err == nil && created {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.mu.Lock()
	if r.ledger.Deleted[q] == nil {
		r.ledger.Deleted[q] = map[int]time.Time{}
	}
	r.ledger.Deleted[q][gen] = deletedAt
	r.gens[q] = gen + 1
	r.mu.Unlock()
}
