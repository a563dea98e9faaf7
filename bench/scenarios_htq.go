package main

// HTQ dispatch scenarios, against real htq-api, htq-scheduler and
// htq-dispatcher processes on a private redis-server (see htq.go):
//
//   dispatch_serial  1 queue, tasks preloaded, then 1 dispatcher started
//   dispatch_multi   100 queues × 200 tasks, same method
//   scale_out_1/2/4  dispatch_multi with 1, 2, 4 dispatcher processes
//   many_queues      100,000 queues × 2 tasks, 4 dispatchers: per-queue completion,
//                    slowest/mean; drain time; Redis memory per queue once drained
//
// Method: start Redis, the API and the scheduler; create the queues; preload
// every task through the REST batch API (batches of ≤ 500, each queue's
// batches in order) while no dispatcher runs; then take t0 and start the
// dispatcher(s). Throughput = tasks / (time of the arrival that completed the
// set − t0), so the dispatcher's process start (exec, Redis connection,
// script loading) is inside the measurement; extra.first_arrival_ms shows
// how much of it that is and extra.steady_tasks_per_s excludes it.
//
// Every run checks completeness and per-queue order at the target: a
// missing or out-of-order task fails the run; duplicates are reported (HTQ
// is at-least-once) in the note and extra.duplicates.

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/htq/htq/client"
)

func init() {
	Register(Scenario{
		Name: "dispatch_serial", Group: GroupHTQ,
		Desc: "1 queue, 20,000 tasks preloaded (quick 3,000), then 1 dispatcher: tasks/s, order verified",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runHTQDispatch(ctx, env, dispatchSpec{queues: 1, perQueue: env.Size(20000, 3000), dispatchers: 1, prefix: "serial", projection: true})
		},
	})
	Register(Scenario{
		Name: "dispatch_multi", Group: GroupHTQ,
		Desc: "100 queues x 200 tasks preloaded (quick 100 x 30), then 1 dispatcher: tasks/s, per-queue order verified",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runHTQDispatch(ctx, env, dispatchSpec{queues: 100, perQueue: multiPerQueue(env), dispatchers: 1, prefix: "multi"})
		},
	})
	for _, n := range scaleOutCounts {
		Register(Scenario{
			Name: scaleOutName(n), Group: GroupHTQ,
			Desc: fmt.Sprintf("dispatch_multi with %d dispatcher process(es)%s", n,
				map[bool]string{true: "; Redis CPU us and commands per task (projection inputs)"}[n == 1]),
			Run: func(ctx context.Context, env *Env) (Result, error) {
				return runHTQDispatch(ctx, env, dispatchSpec{queues: 100, perQueue: multiPerQueue(env), dispatchers: n,
					prefix: "scale" + strconv.Itoa(n), projection: n == 1})
			},
		})
	}
	Register(Scenario{
		Name: "many_queues", Group: GroupHTQ,
		Desc: "100,000 queues x 2 tasks (quick 2,000 x 2), 4 dispatchers: slowest queue's completion / mean; time to drain, Redis memory per queue once drained",
		Run:  runManyQueues, Timeout: 8 * time.Minute,
	})
}

// scaleOutCounts are the dispatcher processes of the scale_out_N scenarios.
var scaleOutCounts = []int{1, 2, 4}

func scaleOutName(n int) string { return "scale_out_" + strconv.Itoa(n) }

// scaleOutSummary sums the scale_out_N results up under the name,
// scale_out: its value is the throughput with the most dispatchers over the
// throughput with one (1.0: no gain), and its extra holds each count's
// tasks/s and Redis CPU µs per task. When only some ran, or one failed, the
// summary is an error saying so (with --merge, no older ratio stays beside
// new figures); ok is false when none ran.
func scaleOutSummary(results Results) (sum Result, ok bool) {
	extra := map[string]float64{}
	ran, complete := false, true
	for _, n := range scaleOutCounts {
		r, found := results[scaleOutName(n)]
		ran = ran || found
		if !found || r.Unit != "tasks/s" || r.Value <= 0 || strings.Contains(r.Note, "FAILED") {
			complete = false
			continue
		}
		extra[fmt.Sprintf("tasks_per_s_%d", n)] = r.Value
		if v, ok := r.Extra["redis_cpu_us_per_task"]; ok {
			extra[fmt.Sprintf("redis_cpu_us_per_task_%d", n)] = v
		}
	}
	if !complete {
		return Result{Unit: "error", Note: "not summed up: scale_out_1/2/4 did not all run, or one failed, in this run"}, ran
	}
	first, most := scaleOutCounts[0], scaleOutCounts[len(scaleOutCounts)-1]
	return Result{
		Value: roundSig(results[scaleOutName(most)].Value / results[scaleOutName(first)].Value),
		Unit:  "ratio",
		Note:  fmt.Sprintf("tasks/s with %d dispatchers / with %d (scale_out_N above; per-count figures in extra)", most, first),
		Extra: extra,
	}, true
}

// multiPerQueue is the tasks per queue of dispatch_multi and scale_out
// (--tasks sets the total).
func multiPerQueue(env *Env) int {
	if env.Cfg.Tasks > 0 {
		return max(1, env.Cfg.Tasks/100)
	}
	return env.Size(200, 30)
}

type dispatchSpec struct {
	queues, perQueue int
	dispatchers      int
	prefix           string
	projection       bool // add the Redis cost breakdown (projection inputs) to extra
	settings         []string
}

// queueNames returns n unique queue names for this run.
func queueNames(env *Env, prefix string, n int) []string {
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-r%d-%s-%d", prefix, env.Run, tag, i)
	}
	return names
}

// preload enqueues perQueue[i] tasks to names[i] through the REST batch API,
// batches of ≤ 500, each queue's batches in order, `workers` queues at a time.
// urlOf builds the URL of task (queue, index).
func preload(ctx context.Context, hc *client.Client, names []string, perQueue func(i int) int, workers int,
	urlOf func(queue string, index int) string) error {
	return parallel(ctx, len(names), workers, func(ctx context.Context, qi int) error {
		q := names[qi]
		n := perQueue(qi)
		for start := 0; start < n; start += 500 {
			end := min(start+500, n)
			tasks := make([]client.TaskRequest, 0, end-start)
			for i := start; i < end; i++ {
				tasks = append(tasks, client.TaskRequest{URL: urlOf(q, i)})
			}
			if err := enqueueBatch(ctx, hc, q, tasks); err != nil {
				return fmt.Errorf("preload: %w", err)
			}
		}
		return nil
	})
}

// verifyDelivery checks completeness and order of everything the target
// saw after a short grace for late duplicates. Missing, unexpected or
// out-of-order tasks are an error; duplicates are returned.
func verifyDelivery(env *Env, expected map[string]int) (OrderReport, error) {
	time.Sleep(150 * time.Millisecond) // late duplicates, if any
	rep := CheckOrder(env.Target.Arrivals(), expected)
	env.Debugf("order: %s", rep)
	if rep.Missing > 0 || rep.Unexpected > 0 || rep.Unparsed > 0 {
		return rep, fmt.Errorf("tasks lost or unexpected: %s", rep)
	}
	if rep.OutOfOrder > 0 {
		return rep, fmt.Errorf("per-queue order violated: %s", rep)
	}
	return rep, nil
}

func orderSummary(rep OrderReport) string {
	if rep.Duplicates > 0 {
		return fmt.Sprintf("order ok, %d DUPLICATES", rep.Duplicates)
	}
	return "order ok, no duplicates"
}

// addProblems puts the HTQ log warnings and dispatcher retry/lease counters
// into extra and the note when they are not zero.
func addProblems(ctx context.Context, env *Env, c *htqCluster, res *Result) {
	if len(c.Dispatchers) > 0 {
		var samples [][]promSample
		for _, p := range c.Dispatchers {
			if s, err := scrape(ctx, p.Health+"/metrics"); err == nil {
				samples = append(samples, s)
			}
		}
		sum := func(name, label, value string) float64 {
			t := 0.0
			for _, s := range samples {
				t += promSumWhere(s, name, label, value)
			}
			return t
		}
		for _, x := range []struct{ key, name, label, value string }{
			{"dispatcher_retries", "htq_dispatcher_calls_total", "outcome", "retry"},
			{"dispatcher_timeouts", "htq_dispatcher_calls_total", "outcome", "timeout"},
			{"dispatcher_leases_lost", "htq_dispatcher_leases_total", "event", "lost"},
			{"dispatcher_takeovers", "htq_dispatcher_leases_total", "event", "takeover"},
		} {
			if v := sum(x.name, x.label, x.value); v > 0 {
				res.Extra[x.key] = v
			}
		}
	}
	if n, first := c.LogProblems(); n > 0 {
		res.Extra["htq_log_warnings"] = float64(n)
		res.Note += fmt.Sprintf("; %d WARN/ERROR log lines", n)
		for _, l := range first {
			env.Logf("htq log: %s", l)
		}
	}
}

func runHTQDispatch(ctx context.Context, env *Env, spec dispatchSpec) (Result, error) {
	total := spec.queues * spec.perQueue
	env.Target.Reset(total + 1024)
	settings := spec.settings
	if env.Cfg.ProfileDir != "" {
		settings = append(append([]string(nil), settings...), "HTQ_DEBUG_PPROF=true")
	}
	c, err := startHTQ(ctx, env, htqOptions{Settings: settings})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()

	names := queueNames(env, spec.prefix, spec.queues)
	if err := putQueues(ctx, c.HTQ, names, client.QueueSettings{}, 8); err != nil {
		return Result{}, err
	}
	expected := make(map[string]int, len(names))
	for _, q := range names {
		expected[q] = spec.perQueue
	}
	base := env.Target.URL
	if err := preload(ctx, c.HTQ, names, func(int) int { return spec.perQueue }, 8,
		func(q string, i int) string { return TaskURL(base, "/t", q, i) }); err != nil {
		return Result{}, err
	}
	if n := env.Target.Count(); n != 0 {
		return Result{}, fmt.Errorf("%d calls arrived before any dispatcher ran", n)
	}

	slowMark := int64(-2) // -2: no per-script breakdown (see slowlog.go)
	if slowlogOn(ctx, c.Redis.Client) {
		if slowMark, err = slowlogMark(ctx, c.Redis.Client); err != nil {
			return Result{}, err
		}
	}
	before, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	tr := newDeliveryTracker(expected)
	m := env.BeginMeasure()
	if _, err := c.StartDispatchers(ctx, spec.dispatchers); err != nil {
		return Result{}, err
	}
	profiled := make(chan error, 1)
	if env.Cfg.ProfileDir != "" {
		name := fmt.Sprintf("%s-%dq-%dd-run%d.pprof", spec.prefix, spec.queues, spec.dispatchers, env.Run)
		go func() {
			profiled <- fetchProfile(ctx, c.Dispatchers[0].Health, env.Cfg.ProfileSecs, filepath.Join(env.Cfg.ProfileDir, name))
		}()
	} else {
		profiled <- nil
	}
	tEnd, err := waitDelivered(ctx, env.Target, tr, 30*time.Second, c.Check)
	if err != nil {
		return Result{}, err
	}
	if err := <-profiled; err != nil { // before c.Close stops the dispatcher
		return Result{}, err
	}
	after, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	dispCPU := 0.0
	for _, p := range c.Dispatchers {
		v, _ := procCPU(p.Pid()) // whole life of the process: it started at t0
		dispCPU += v
	}
	rep, err := verifyDelivery(env, expected)
	if err != nil {
		return Result{}, err
	}

	res := throughputResult(total, m.T0, tEnd, before, after, m)
	res.Extra["queues"] = float64(spec.queues)
	res.Extra["dispatchers"] = float64(spec.dispatchers)
	res.Extra["duplicates"] = float64(rep.Duplicates)
	res.Extra["first_arrival_ms"] = float64(tr.first-m.T0) / 1e6
	if tEnd > tr.first {
		res.Extra["steady_tasks_per_s"] = float64(total-1) / (float64(tEnd-tr.first) / 1e9)
	}
	if dispCPU > 0 {
		res.Extra["dispatcher_cpu_us_per_task"] = dispCPU * 1e6 / float64(total)
	}
	if spec.projection {
		secs := float64(tEnd-m.T0) / 1e9
		d := after.Cmds.Sub(before.Cmds)
		// Time inside scripts (their inner commands included): no double count.
		res.Extra["redis_script_us_per_task"] = float64(d.ByCmd["evalsha"].Usec+d.ByCmd["eval"].Usec+d.ByCmd["fcall"].Usec) / float64(total)
		res.Extra["redis_cpu_utilisation"] = (after.CPUSeconds - before.CPUSeconds) / secs
		res.Extra["cpu_cores"] = float64(runtime.NumCPU())
		for _, kv := range topCommands(d, total, 8) {
			res.Extra["cmd_"+kv.name+"_per_task"] = kv.perTask
		}
	}
	if slowMark > -2 {
		if err := addTopLevelCosts(ctx, c.Redis.Client, slowMark, float64(total), res.Extra); err != nil {
			return Result{}, err
		}
	}
	res.Note = fmt.Sprintf("%d queue(s) x %d, %d dispatcher(s), %s; %s", spec.queues, spec.perQueue,
		spec.dispatchers, orderSummary(rep), c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// fetchProfile saves a CPU profile of secs seconds from an HTQ process with
// debug.pprof on (base is its metrics/health URL).
func fetchProfile(ctx context.Context, base string, secs int, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+10)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: HTTP %d", base, resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", base, err)
	}
	return f.Close()
}

type cmdPerTask struct {
	name    string
	perTask float64
}

// topCommands returns the k commands with the most calls per task
// (names with "|" made key-safe).
func topCommands(d CommandStats, tasks, k int) []cmdPerTask {
	return commandsPer(d, float64(tasks), k)
}

// ---- many_queues -------------------------------------------------------------------

// manyQueuesDispatchers is the dispatcher count of many_queues.
const manyQueuesDispatchers = 4

func runManyQueues(ctx context.Context, env *Env) (Result, error) {
	const per = 2
	nq := env.Size(100000, 2000)
	if env.Cfg.Tasks > 0 {
		nq = max(1, env.Cfg.Tasks/per)
	}
	total := nq * per
	env.Target.Reset(total + 1024)
	// Queues are created by their first batch (auto_create_queues): one
	// request per queue instead of two during the (unmeasured) setup.
	c, err := startHTQ(ctx, env, htqOptions{Settings: []string{autoCreate}})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	mem0, err := settledMemory(ctx, c.Redis)
	if err != nil {
		return Result{}, err
	}
	names := queueNames(env, "mq", nq)
	expected := make(map[string]int, nq)
	for _, q := range names {
		expected[q] = per
	}
	base := env.Target.URL
	if err := preload(ctx, c.HTQ, names, func(int) int { return per }, 16,
		func(q string, i int) string { return TaskURL(base, "/t", q, i) }); err != nil {
		return Result{}, err
	}
	before, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	tr := newDeliveryTracker(expected)
	m := env.BeginMeasure()
	if _, err := c.StartDispatchers(ctx, manyQueuesDispatchers); err != nil {
		return Result{}, err
	}
	cpu := newCPUMeter(c.Dispatchers...)
	tEnd, err := waitDelivered(ctx, env.Target, tr, 30*time.Second, c.Check)
	if err != nil {
		return Result{}, err
	}
	after, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	dispSecs, dispOK := cpu.Seconds()
	rep, err := verifyDelivery(env, expected)
	if err != nil {
		return Result{}, err
	}
	// Drained: every queue handed back, Redis memory settled.
	if err := waitReleased(ctx, c, time.Minute); err != nil {
		return Result{}, err
	}
	memDrained, err := settledMemory(ctx, c.Redis)
	if err != nil {
		return Result{}, err
	}
	comp := queueCompletion(env.Target.Arrivals(), expected, m.T0)
	st := completionStats(comp)
	res := throughputResult(total, m.T0, tEnd, before, after, m)
	res.Value, res.Unit = st.max/st.mean, "ratio"
	res.Extra["tasks_per_s"] = float64(total) / (float64(tEnd-m.T0) / 1e9)
	res.Extra["queues"] = float64(nq)
	res.Extra["dispatchers"] = manyQueuesDispatchers
	res.Extra["completion_mean_s"] = st.mean
	res.Extra["completion_p50_s"] = st.p50
	res.Extra["completion_p99_s"] = st.p99
	res.Extra["completion_max_s"] = st.max
	res.Extra["duplicates"] = float64(rep.Duplicates)
	res.Extra["redis_mem_per_queue_drained_bytes"] = float64(memDrained-mem0) / float64(nq)
	res.Extra["redis_mem_drained_mb"] = float64(memDrained) / (1 << 20)
	if dispOK {
		res.Extra["dispatcher_cpu_us_per_task"] = dispSecs * 1e6 / float64(total)
	}
	if kinds, err := keyKindBytes(ctx, c.Redis.Client, 4000); err == nil {
		for k, b := range kinds {
			res.Extra["mem_"+k+"_bytes_per_queue"] = b / float64(nq)
		}
	} else {
		env.Logf("memory by key kind: %v", err)
	}
	res.Note = fmt.Sprintf("slowest/mean completion; %d queues x %d, %d dispatchers, all delivered in %.1fs, %s; "+
		"Redis memory once drained %.0f bytes/queue (used_memory delta from before the queues, task records kept for their retention); "+
		"%s (auto-create only speeds up the unmeasured setup)",
		nq, per, manyQueuesDispatchers, res.Extra["seconds"], orderSummary(rep), res.Extra["redis_mem_per_queue_drained_bytes"], c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// queueCompletion returns, per expected queue, the time of its last arrival
// minus t0, in seconds (first arrival of each (queue, index) only).
func queueCompletion(arr []Arrival, expected map[string]int, t0 int64) map[string]float64 {
	last := make(map[string]int64, len(expected))
	for _, a := range arr {
		q, i, ok := ArrivalKey(a)
		if n, known := expected[q]; !ok || !known || i < 0 || i >= n {
			continue
		}
		if a.T > last[q] {
			last[q] = a.T
		}
	}
	out := make(map[string]float64, len(last))
	for q, t := range last {
		out[q] = float64(t-t0) / 1e9
	}
	return out
}

type compStats struct{ mean, p50, p99, max float64 }

func completionStats(comp map[string]float64) compStats {
	if len(comp) == 0 {
		return compStats{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	}
	xs := make([]float64, 0, len(comp))
	sum := 0.0
	st := compStats{}
	for _, v := range comp {
		xs = append(xs, v)
		sum += v
		st.max = max(st.max, v)
	}
	st.mean = sum / float64(len(xs))
	st.p50 = Percentile(xs, 50)
	st.p99 = Percentile(xs, 99)
	return st
}
