package main

// HTQ dispatcher-cluster cost scenarios (issue 11, "Cost goals"):
//
//   wakeup    2,000 idle queues, tasks trickled in one at a time, each to an
//             idle queue, with 1, 2 and 4 dispatchers (each on its own
//             Redis): Redis CPU µs and commands per task, pick-up latency
//             (sub-results wakeup_1, wakeup_2, wakeup_4)
//   idle      100,000 idle queues, 4 dispatchers, 2 schedulers, no traffic:
//             Redis commands/s
//   restarts  10 dispatcher restarts (graceful and kill -9) with traffic:
//             stream consumers per queue afterwards
//
// An idle queue is one that has run one task: its first task is enqueued
// through the REST API (a batch of one, which creates the queue:
// api.auto_create_queues), the dispatchers deliver it and hand the queue
// back. That is how a real queue comes to exist and rest, so the keys the
// store keeps for it (meta, stream and group, registry and name index
// entries, the task's retained record) are all there.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/htq/htq/client"
	"github.com/redis/go-redis/v9"
)

func init() {
	Register(Scenario{
		Name: "wakeup", Group: GroupHTQ,
		Desc: "2,000 idle queues (quick 400), tasks trickled at 500/s for 10 s (quick 200/s for 2 s), each to an idle queue, " +
			"with 1, 2, 4 dispatchers: value = Redis CPU us/task with 4 over with 1",
		Run:     runWakeup,
		Subs:    wakeupSubs(),
		Timeout: 6 * time.Minute,
	})
	Register(Scenario{
		Name: "idle", Group: GroupHTQ,
		Desc: "100,000 idle queues (quick 2,000), 4 dispatchers, 2 schedulers, no traffic: Redis commands/s over 30 s after a 20 s settle (quick 4 s, 2 s)",
		Run:  runIdle, Timeout: 8 * time.Minute,
	})
	Register(Scenario{
		Name: "restarts", Group: GroupHTQ,
		Desc: "10 dispatcher restarts (graceful and kill -9 alternating, 0.7 s apart, quick 0.35 s) with traffic over 200 queues: most stream consumers in one queue afterwards",
		Run:  runRestarts, Timeout: 4 * time.Minute,
	})
}

// wakeupCounts are the dispatcher processes of the wakeup sub-results.
var wakeupCounts = []int{1, 2, 4}

func wakeupName(n int) string { return "wakeup_" + strconv.Itoa(n) }

func wakeupSubs() []string {
	out := make([]string, len(wakeupCounts))
	for i, n := range wakeupCounts {
		out[i] = wakeupName(n)
	}
	return out
}

// autoCreate makes a queue's first enqueue create it (the idle queues'
// setup; it changes nothing of dispatch).
const autoCreate = "HTQ_API_AUTO_CREATE_QUEUES=true"

// ---- shared helpers -------------------------------------------------------------

// makeIdleQueues gives each queue its first task (index 0) through the REST
// API, `workers` requests at a time, and waits until the running
// dispatchers delivered every one and handed every queue back.
func makeIdleQueues(ctx context.Context, env *Env, c *htqCluster, names []string, workers int) error {
	expected := make(map[string]int, len(names))
	for _, q := range names {
		expected[q] = 1
	}
	base := env.Target.URL
	if err := preload(ctx, c.HTQ, names, func(int) int { return 1 }, workers,
		func(q string, i int) string { return TaskURL(base, "/t", q, i) }); err != nil {
		return fmt.Errorf("idle queues: %w", err)
	}
	if _, err := waitDelivered(ctx, env.Target, newDeliveryTracker(expected), 30*time.Second, c.Check); err != nil {
		return fmt.Errorf("idle queues: first tasks: %w", err)
	}
	return waitReleased(ctx, c, time.Minute)
}

// waitReleased waits until no dispatcher owns a queue.
func waitReleased(ctx context.Context, c *htqCluster, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		owned := 0.0
		for _, p := range c.Dispatchers {
			s, err := scrape(ctx, p.Health+"/metrics")
			if err != nil {
				return err
			}
			v, _ := promSum(s, "htq_dispatcher_owned_queues")
			owned += v
		}
		if owned == 0 {
			return nil
		}
		if err := c.Check(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the dispatchers still own %.0f queue(s) after %v", owned, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// trickle enqueues n tasks one at a time through the REST API at a steady
// rate (an open loop: task j is due at start + j/rate whatever the answers
// before it took). Task j goes to queue names[j % len(names)] with index
// first + j / len(names). A queue's tasks are always sent by the same one of
// `senders` goroutines, so they are enqueued in index order. It returns each
// task's send time on the target's clock (taken just before its request).
// stop, when closed, ends the trickle early; sent is then the count sent.
func trickle(ctx context.Context, env *Env, rc *restClient, names []string, first, n int, rate float64,
	senders int, stop <-chan struct{}) (sendT []int64, sent int, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sendT = make([]int64, n)
	chans := make([]chan int, senders)
	for i := range chans {
		chans[i] = make(chan int, n)
	}
	base := env.Target.URL
	var wg sync.WaitGroup
	for k := range senders {
		wg.Go(func() {
			for j := range chans[k] {
				qi := j % len(names)
				q := names[qi]
				body := []byte(`{"url":"` + TaskURL(base, "/t", q, first+j/len(names)) + `"}`)
				sendT[j] = env.Target.Now()
				st, b, err := rc.do(ctx, http.MethodPost, queuePath(q)+"/tasks", body, "application/json")
				if err == nil && st != http.StatusCreated {
					err = fmt.Errorf("enqueue to %s: HTTP %d %s", q, st, clipBytes(b, 200))
				}
				if err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	start := time.Now()
	for sent = 0; sent < n; sent++ {
		due := start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
			case <-stop:
			case <-t.C:
			}
			t.Stop()
		}
		if ctx.Err() != nil || closed(stop) {
			break
		}
		chans[(sent%len(names))%senders] <- sent
	}
	for _, ch := range chans {
		close(ch)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, 0, err
	}
	return sendT[:sent], sent, nil
}

func closed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// trickleExpected is what the target must have seen after trickle sent
// `sent` tasks over names, on top of `first` tasks per queue before.
func trickleExpected(names []string, first, sent int) map[string]int {
	exp := make(map[string]int, len(names))
	for qi, q := range names {
		exp[q] = first + sent/len(names)
		if qi < sent%len(names) {
			exp[q]++
		}
	}
	return exp
}

// pickupLatencies returns arrival − send time (ns) of each trickled task
// (its first arrival).
func pickupLatencies(arr []Arrival, names []string, first int, sendT []int64) ([]int64, error) {
	qi := make(map[string]int, len(names))
	for i, q := range names {
		qi[q] = i
	}
	firstArr := make([]int64, len(sendT))
	for i := range firstArr {
		firstArr[i] = -1
	}
	for _, a := range arr {
		q, idx, ok := ArrivalKey(a)
		i, known := qi[q]
		if !ok || !known || idx < first {
			continue
		}
		j := (idx-first)*len(names) + i
		if j < len(sendT) && firstArr[j] < 0 {
			firstArr[j] = a.T
		}
	}
	lat := make([]int64, len(sendT))
	for j, t := range firstArr {
		if t < 0 {
			return nil, fmt.Errorf("task %d (queue %s, index %d) did not arrive", j, names[j%len(names)], first+j/len(names))
		}
		lat[j] = t - sendT[j]
	}
	return lat, nil
}

// claimsByResult sums htq_dispatcher_claims_total over the dispatchers, by
// result label.
func claimsByResult(ctx context.Context, c *htqCluster) map[string]float64 {
	out := map[string]float64{}
	for _, p := range c.Dispatchers {
		s, err := scrape(ctx, p.Health+"/metrics")
		if err != nil {
			continue
		}
		for _, x := range s {
			if x.Name != "htq_dispatcher_claims_total" {
				continue
			}
			if r, ok := promLabel(x.Labels, "result"); ok {
				out[r] += x.Value
			}
		}
	}
	return out
}

// commandsPer returns the k commands with the most calls, per unit of denom
// (names with "|" made key-safe; the INFO calls left out).
func commandsPer(d CommandStats, denom float64, k int) []cmdPerTask {
	var out []cmdPerTask
	for name, st := range d.ByCmd {
		if name == "info" {
			continue
		}
		out = append(out, cmdPerTask{strings.ReplaceAll(name, "|", "_"), float64(st.Calls) / denom})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].perTask > out[j].perTask })
	if len(out) > k {
		out = out[:k]
	}
	return out
}

// ---- wakeup ---------------------------------------------------------------------

func runWakeup(ctx context.Context, env *Env) (Result, error) {
	subs := map[string]Result{}
	extra := map[string]float64{}
	for _, n := range wakeupCounts {
		env.Logf("wakeup with %d dispatcher(s)", n)
		r, err := runWakeupWith(ctx, env, n)
		if err != nil {
			return Result{}, fmt.Errorf("%d dispatcher(s): %w", n, err)
		}
		subs[wakeupName(n)] = r
		extra[fmt.Sprintf("redis_cpu_us_per_task_%d", n)] = r.Value
		extra[fmt.Sprintf("redis_cmds_per_task_%d", n)] = r.Extra["redis_cmds_per_task"]
		extra[fmt.Sprintf("pickup_p99_ms_%d", n)] = *r.P99
	}
	first, most := wakeupCounts[0], wakeupCounts[len(wakeupCounts)-1]
	cpu1, cpuN := extra[fmt.Sprintf("redis_cpu_us_per_task_%d", first)], extra[fmt.Sprintf("redis_cpu_us_per_task_%d", most)]
	cmd1, cmdN := extra[fmt.Sprintf("redis_cmds_per_task_%d", first)], extra[fmt.Sprintf("redis_cmds_per_task_%d", most)]
	extra["cmds_ratio"] = cmdN / cmd1
	return Result{
		Value: cpuN / cpu1, Unit: "ratio", Extra: extra, Sub: subs,
		Note: fmt.Sprintf("Redis CPU us/task with %d dispatchers / with %d (commands: %.2f x); wakeup_N below, each on its own Redis",
			most, first, cmdN/cmd1),
	}, nil
}

func runWakeupWith(ctx context.Context, env *Env, dispatchers int) (Result, error) {
	nq := env.Size(2000, 400)
	rate := 500.0
	secs := 10.0
	if env.Cfg.Quick {
		rate, secs = 200, 2
	}
	n := int(rate * secs)
	if env.Cfg.Tasks > 0 {
		n = env.Cfg.Tasks
	}
	env.Target.Reset(nq + n + 1024)
	settings := []string{autoCreate}
	if env.Cfg.ProfileDir != "" {
		settings = append(settings, "HTQ_DEBUG_PPROF=true")
	}
	c, err := startHTQ(ctx, env, htqOptions{Dispatchers: dispatchers, Settings: settings})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	names := queueNames(env, fmt.Sprintf("wake%d", dispatchers), nq)
	if err := makeIdleQueues(ctx, env, c, names, 16); err != nil {
		return Result{}, err
	}
	if err := pause(ctx, time.Second); err != nil { // whatever the setup left behind settles
		return Result{}, err
	}
	rc := newRESTClient(c.API, benchToken, 8)
	defer rc.hc.CloseIdleConnections()

	claims0 := claimsByResult(ctx, c)
	slowMark := int64(-2) // -2: no per-script breakdown (see slowlog.go)
	if slowlogOn(ctx, c.Redis.Client) {
		if slowMark, err = slowlogMark(ctx, c.Redis.Client); err != nil {
			return Result{}, err
		}
	}
	cpu := newCPUMeter(c.Dispatchers...)
	apiCPU := newCPUMeter(c.APIProc)
	before, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	w0 := time.Now()
	profiled := make(chan error, 1)
	if env.Cfg.ProfileDir != "" { // the first dispatcher's CPU during the trickle
		path := filepath.Join(env.Cfg.ProfileDir, fmt.Sprintf("wakeup-%dd-run%d.pprof", dispatchers, env.Run))
		go func() { profiled <- fetchProfile(ctx, c.Dispatchers[0].Health, env.Cfg.ProfileSecs, path) }()
	} else {
		profiled <- nil
	}
	sendT, sent, err := trickle(ctx, env, rc, names, 1, n, rate, 8, nil)
	if err != nil {
		return Result{}, err
	}
	if err := <-profiled; err != nil {
		return Result{}, err
	}
	expected := trickleExpected(names, 1, sent)
	if _, err := waitDelivered(ctx, env.Target, newDeliveryTracker(expected), 30*time.Second, c.Check); err != nil {
		return Result{}, err
	}
	// The last owners hand their queues back: their release is part of the
	// wake-ups' cost.
	if err := waitReleased(ctx, c, 30*time.Second); err != nil {
		return Result{}, err
	}
	after, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	window := time.Since(w0).Seconds()
	dispSecs, dispOK := cpu.Seconds()
	apiSecs, apiOK := apiCPU.Seconds()
	rtt, err := roundTripCPU(ctx, c.Redis.Client, 3000)
	if err != nil {
		return Result{}, err
	}
	claims1 := claimsByResult(ctx, c)
	rep, err := verifyDelivery(env, expected)
	if err != nil {
		return Result{}, err
	}
	lat, err := pickupLatencies(env.Target.Arrivals(), names, 1, sendT)
	if err != nil {
		return Result{}, err
	}
	p50, p99, mean, mx := msStats(lat)

	tasks := float64(sent)
	d := after.Cmds.Sub(before.Cmds)
	res := Result{
		Value: (after.CPUSeconds - before.CPUSeconds) * 1e6 / tasks, Unit: "redis_us/task",
		P50: F(p50), P99: F(p99),
		Extra: map[string]float64{
			"tasks": tasks, "queues": float64(nq), "dispatchers": float64(dispatchers),
			"rate_per_s": rate, "window_s": window,
			"redis_cpu_us_per_task":    (after.CPUSeconds - before.CPUSeconds) * 1e6 / tasks,
			"redis_cmds_per_task":      float64(after.Commands(before)) / tasks,
			"redis_reads_per_task":     float64(after.ReadsSince(before)) / tasks,
			"redis_script_us_per_task": float64(d.ByCmd["evalsha"].Usec+d.ByCmd["eval"].Usec) / tasks,
			"pickup_p50_ms":            p50, "pickup_p99_ms": p99, "pickup_mean_ms": mean, "pickup_max_ms": mx,
			"duplicates":                    float64(rep.Duplicates),
			"redis_cpu_us_per_ping_request": rtt,
		},
	}
	if dispOK {
		res.Extra["dispatcher_cpu_us_per_task"] = dispSecs * 1e6 / tasks
	}
	if apiOK {
		res.Extra["api_cpu_us_per_task"] = apiSecs * 1e6 / tasks
	}
	for r, v := range claims1 {
		if dv := v - claims0[r]; dv > 0 {
			res.Extra["claims_"+r+"_per_task"] = dv / tasks
		}
	}
	for _, kv := range commandsPer(d, tasks, 14) {
		res.Extra["cmd_"+kv.name+"_per_task"] = kv.perTask
	}
	if slowMark > -2 {
		if err := addTopLevelCosts(ctx, c.Redis.Client, slowMark, tasks, res.Extra); err != nil {
			return Result{}, err
		}
	}
	res.Note = fmt.Sprintf("value = Redis CPU us/task (idle polling in the window included), p50/p99 = pick-up ms (enqueue request sent -> call at the target); "+
		"%d tasks at %.0f/s over %d idle queues, %d dispatcher(s), %.1f Redis commands/task; %s; %s",
		sent, rate, nq, dispatchers, res.Extra["redis_cmds_per_task"], orderSummary(rep), c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// ---- idle -----------------------------------------------------------------------

func runIdle(ctx context.Context, env *Env) (Result, error) {
	nq := env.Size(100000, 2000)
	settle, window := 20*time.Second, 30*time.Second
	if env.Cfg.Quick {
		settle, window = 2*time.Second, 4*time.Second
	}
	env.Target.Reset(nq + 1024)
	c, err := startHTQ(ctx, env, htqOptions{Dispatchers: 4, Schedulers: 2, Settings: []string{autoCreate}})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	if err := c.WaitLeader(ctx); err != nil {
		return Result{}, err
	}
	names := queueNames(env, "idle", nq)
	t0 := time.Now()
	if err := makeIdleQueues(ctx, env, c, names, 16); err != nil {
		return Result{}, err
	}
	setup := time.Since(t0).Seconds()
	env.Logf("%d idle queues in %.1fs; settling %v, then measuring %v", nq, setup, settle, window)
	if err := pause(ctx, settle); err != nil {
		return Result{}, err
	}
	before, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	w0 := time.Now()
	if err := pause(ctx, window); err != nil {
		return Result{}, err
	}
	after, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	secs := time.Since(w0).Seconds()
	if err := c.Check(); err != nil {
		return Result{}, err
	}
	if n := env.Target.Count(); n != nq {
		return Result{}, fmt.Errorf("%d calls arrived, want %d (one per queue)", n, nq)
	}
	d := after.Cmds.Sub(before.Cmds)
	res := Result{
		Value: float64(after.Commands(before)) / secs, Unit: "cmds/s",
		Extra: map[string]float64{
			"queues": float64(nq), "dispatchers": 4, "schedulers": float64(len(c.Schedulers)),
			"setup_s": setup, "settle_s": settle.Seconds(), "window_s": secs,
			"redis_cpu_us_per_s": (after.CPUSeconds - before.CPUSeconds) * 1e6 / secs,
			"redis_mem_mb":       float64(after.UsedMemory) / (1 << 20),
		},
	}
	for _, kv := range commandsPer(d, secs, 14) {
		res.Extra["cmd_"+kv.name+"_per_s"] = kv.perTask
	}
	res.Note = fmt.Sprintf("Redis commands/s (INFO stats) over %.0fs, %.0fs after the last of %d queues went idle; 4 dispatchers, %d schedulers, no traffic; %s",
		secs, settle.Seconds(), nq, len(c.Schedulers), c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// ---- restarts -------------------------------------------------------------------

// restartSettings and restartTimeout (the queues' call timeout) shorten
// the wait before a killed dispatcher's calls are redelivered (lease TTL,
// then the call's timeout plus the recovery grace: 45 s with the
// defaults), so that the run recovers them within seconds; what is
// measured does not depend on them.
var restartSettings = []string{autoCreate, "HTQ_DISPATCHER_LEASE_TTL=2s", "HTQ_DISPATCHER_RECOVERY_GRACE=1s"}

const restartTimeout = 2 * time.Second

func runRestarts(ctx context.Context, env *Env) (Result, error) {
	const restarts, dispatchers = 10, 2
	nq := 200
	rate := 400.0
	gap := 700 * time.Millisecond
	if env.Cfg.Quick {
		gap = 350 * time.Millisecond
	}
	maxTasks := int(rate * 60)
	env.Target.Reset(nq + maxTasks + 1024)
	c, err := startHTQ(ctx, env, htqOptions{Dispatchers: dispatchers, Settings: restartSettings})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	names := queueNames(env, "restart", nq)
	if err := putQueues(ctx, c.HTQ, names, client.QueueSettings{Timeout: client.D(restartTimeout)}, 8); err != nil {
		return Result{}, err
	}
	if err := makeIdleQueues(ctx, env, c, names, 16); err != nil {
		return Result{}, err
	}
	rc := newRESTClient(c.API, benchToken, 4)
	defer rc.hc.CloseIdleConnections()

	stop := make(chan struct{})
	type trickled struct {
		sent int
		err  error
	}
	done := make(chan trickled, 1)
	go func() {
		_, sent, err := trickle(ctx, env, rc, names, 1, maxTasks, rate, 4, stop)
		done <- trickled{sent, err}
	}()
	graceful, killed := 0, 0
	var restartErr error
	for i := range restarts {
		if restartErr = pause(ctx, gap); restartErr != nil {
			break
		}
		// Start the successor first, then stop the oldest dispatcher:
		// even restarts are graceful (SIGTERM), odd ones kill -9.
		if _, restartErr = c.StartDispatchers(ctx, 1); restartErr != nil {
			break
		}
		old := c.Dispatchers[0]
		t0 := time.Now()
		if restartErr = c.StopDispatcher(old, i%2 == 0, 30*time.Second); restartErr != nil {
			break
		}
		env.Debugf("restart %d: %s stopped (graceful %v) in %v", i+1, old.Name, i%2 == 0, time.Since(t0).Round(time.Millisecond))
		if i%2 == 0 {
			graceful++
		} else {
			killed++
		}
	}
	// Under traffic, right after the last restart: every queue has at most
	// its owner's consumer and, until the next claim of it, a killed
	// owner's.
	var live consumerCount
	if restartErr == nil {
		live, restartErr = streamConsumers(ctx, c.Redis.Client, htqPrefix, names)
	}
	if restartErr == nil {
		restartErr = pause(ctx, gap) // traffic after the last restart too
	}
	close(stop)
	tk := <-done
	if err := errors.Join(restartErr, tk.err); err != nil {
		return Result{}, err
	}
	expected := trickleExpected(names, 1, tk.sent)
	t0 := time.Now()
	if _, err := waitDelivered(ctx, env.Target, newDeliveryTracker(expected), 30*time.Second, c.Check); err != nil {
		return Result{}, err
	}
	env.Debugf("restarts: the rest delivered %v after the traffic stopped", time.Since(t0).Round(time.Millisecond))
	rep, err := verifyDelivery(env, expected)
	if err != nil {
		return Result{}, err
	}
	if err := waitReleased(ctx, c, 30*time.Second); err != nil {
		return Result{}, err
	}
	cs, err := streamConsumers(ctx, c.Redis.Client, htqPrefix, names)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		Value: float64(cs.max), Unit: "consumers",
		Extra: map[string]float64{
			"queues": float64(nq), "tasks": float64(tk.sent), "restarts": float64(graceful + killed),
			"graceful": float64(graceful), "killed": float64(killed),
			"consumers_total": float64(cs.total), "consumers_max": float64(cs.max),
			"queues_over_one": float64(cs.overOne), "consumers_with_pending": float64(cs.withPending),
			"duplicates":                    float64(rep.Duplicates),
			"consumers_max_under_traffic":   float64(live.max),
			"consumers_total_under_traffic": float64(live.total),
		},
	}
	res.Note = fmt.Sprintf("value = most consumers in one queue's stream group (XINFO CONSUMERS) after %d restarts (%d graceful, %d kill -9) "+
		"with %.0f tasks/s over %d queues (call timeout %s), all queues handed back; %d consumers in all; %s; %s",
		graceful+killed, graceful, killed, rate, nq, restartTimeout, cs.total, orderSummary(rep), c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// streamGroup is the consumer group of every queue's stream (internal/store).
const streamGroup = "htq"

// streamKey is the key of a queue's stream, as internal/store/keys.go
// builds it: "<prefix>{pNNN}:s:<queue>", NNN the queue's partition, the
// CRC-32 (IEEE) of its name modulo 256 (internal/task.Partition).
func streamKey(prefix, queue string) string {
	return fmt.Sprintf("%s{p%03d}:s:%s", prefix, crc32.ChecksumIEEE([]byte(queue))%256, queue)
}

type consumerCount struct {
	total, max, overOne, withPending int
}

// streamConsumers counts the consumers in each queue's stream group. A
// queue whose stream does not exist is an error (the key names above no
// longer match the store's).
func streamConsumers(ctx context.Context, rdb *redis.Client, prefix string, queues []string) (consumerCount, error) {
	var cc consumerCount
	for start := 0; start < len(queues); start += 100 {
		end := min(start+100, len(queues))
		p := rdb.Pipeline()
		cmds := make([]*redis.XInfoConsumersCmd, 0, end-start)
		for _, q := range queues[start:end] {
			cmds = append(cmds, p.XInfoConsumers(ctx, streamKey(prefix, q), streamGroup))
		}
		if _, err := p.Exec(ctx); err != nil {
			return cc, fmt.Errorf("XINFO CONSUMERS (is %s still the stream key?): %w", streamKey(prefix, queues[start]), err)
		}
		for _, cmd := range cmds {
			cs := cmd.Val()
			cc.total += len(cs)
			cc.max = max(cc.max, len(cs))
			if len(cs) > 1 {
				cc.overOne++
			}
			for _, x := range cs {
				if x.Pending > 0 {
					cc.withPending++
				}
			}
		}
	}
	return cc, nil
}
