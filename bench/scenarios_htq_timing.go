package main

// HTQ timing scenarios:
//
//   pickup_latency   idle queues, one task at a time: enqueue → arrival
//   timed_lateness   2,000 timed tasks due at one instant, and 2,000 spread
//                    over 5 s: arrival − run_at (sub-results
//                    timed_lateness_same, timed_lateness_spread)
//   variable_scale   100,000 variable tasks, stepping 1 s, over 1,000 serial
//                    queues: the scheduler's promotion lag (due → promoted)
//                    from its htq_scheduler_promotion_lag_seconds histogram
//
// Times at the target are converted to wall-clock time (Target.WallTime) to
// compare with run_at, which HTQ reads as wall-clock time on this machine.

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/htq/htq/client"
)

func init() {
	Register(Scenario{
		Name: "pickup_latency", Group: GroupHTQ,
		Desc: "dispatcher running, idle queues, one task at a time, 1,000 samples (quick 200): ms from enqueue to arrival",
		Run:  runPickupLatency,
	})
	Register(Scenario{
		Name: "timed_lateness", Group: GroupHTQ,
		Desc: "2,000 timed tasks due at one instant, then 2,000 spread over 5 s (20 queues): arrival − run_at, ms; value = worse p99",
		Run:  runTimedLateness,
		Subs: []string{"timed_lateness_same", "timed_lateness_spread"},
	})
	Register(Scenario{
		Name: "variable_scale", Group: GroupHTQ,
		Desc: "100,000 variable tasks (quick 10,000), stepping 1 s, 1,000 queues: scheduler promotion lag p99 over a 20 s window (quick 8 s)",
		Run:  runVariableScale,
	})
}

// ---- pickup_latency ------------------------------------------------------------------

const pickupQueues = 100

func runPickupLatency(ctx context.Context, env *Env) (Result, error) {
	samples := env.Size(1000, 200)
	budget := 60 * time.Second
	if env.Cfg.Quick {
		budget = 20 * time.Second
	}
	env.Target.Reset(samples + 2*pickupQueues)
	c, err := startHTQ(ctx, env, htqOptions{Dispatchers: 1})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	names := queueNames(env, "pick", pickupQueues)
	if err := putQueues(ctx, c.HTQ, names, client.QueueSettings{}, 8); err != nil {
		return Result{}, err
	}
	rc := newRESTClient(c.API, benchToken, 1)
	defer rc.hc.CloseIdleConnections()
	base := env.Target.URL

	// One round over every queue first (not measured): connections to the
	// API and from the dispatcher to the target exist, scripts are loaded.
	// Then each queue waits ~pickupQueues samples between its tasks, so every
	// measured task lands on a queue that is idle (empty, no call running;
	// HTQ hands an emptied queue back at once).
	lat := make([]int64, 0, samples)
	var measStart time.Time
	for s := -pickupQueues; s < samples; s++ {
		if s == 0 {
			measStart = time.Now()
		}
		if s > 0 && time.Since(measStart) > budget {
			break
		}
		qi := (s + pickupQueues) % pickupQueues
		q := names[qi]
		idx := (s + pickupQueues) / pickupQueues
		body := []byte(`{"url":"` + TaskURL(base, "/t", q, idx) + `"}`)
		n := env.Target.Count()
		t0 := env.Target.Now()
		st, b, err := rc.do(ctx, http.MethodPost, queuePath(q)+"/tasks", body, "application/json")
		if err != nil {
			return Result{}, err
		}
		if st != http.StatusCreated {
			return Result{}, fmt.Errorf("enqueue: %d %s", st, clipBytes(b, 200))
		}
		tArr, err := waitOneArrival(ctx, env.Target, n, q, idx, 5*time.Second, c.Check)
		if err != nil {
			return Result{}, fmt.Errorf("sample %d: %w", s, err)
		}
		if s >= 0 {
			lat = append(lat, tArr-t0)
		}
	}
	p50, p99, mean, mx := msStats(lat)
	res := Result{Value: p50, Unit: "ms", P50: F(p50), P99: F(p99), Extra: map[string]float64{
		"samples": float64(len(lat)), "mean_ms": mean, "max_ms": mx, "queues": pickupQueues,
	}}
	note := ""
	if len(lat) < samples {
		note = fmt.Sprintf(" (time budget %v reached after %d of %d samples)", budget, len(lat), samples)
	}
	res.Note = fmt.Sprintf("value = p50; %d samples round-robin over %d idle queues, 1 keep-alive client, REST single enqueue%s; %s",
		len(lat), pickupQueues, note, c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// waitOneArrival waits for the arrival of (queue, index) among the arrivals
// after index `from` and returns its time.
func waitOneArrival(ctx context.Context, t *Target, from int, queue string, index int, limit time.Duration, check func() error) (int64, error) {
	deadline := time.Now().Add(limit)
	for {
		for _, a := range t.ArrivalsSince(from) {
			from++
			if q, i, ok := ArrivalKey(a); ok && q == queue && i == index {
				return a.T, nil
			}
		}
		if time.Now().After(deadline) {
			if err := check(); err != nil {
				return -1, err
			}
			return -1, fmt.Errorf("task %s/%d did not arrive within %v", queue, index, limit)
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(200 * time.Microsecond):
		}
	}
}

// ---- timed_lateness ----------------------------------------------------------------

const (
	timedQueues = 20
	timedLead   = 3 * time.Second
	timedSpread = 5 * time.Second
)

func runTimedLateness(ctx context.Context, env *Env) (Result, error) {
	n := env.Size(2000, 2000)
	env.Target.Reset(2*n + 1024)
	c, err := startHTQ(ctx, env, htqOptions{Dispatchers: 1})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	if err := c.WaitLeader(ctx); err != nil {
		return Result{}, err
	}
	same, err := timedPhase(ctx, env, c, "same", n, 0)
	if err != nil {
		return Result{}, fmt.Errorf("same instant: %w", err)
	}
	spread, err := timedPhase(ctx, env, c, "spread", n, timedSpread)
	if err != nil {
		return Result{}, fmt.Errorf("spread: %w", err)
	}
	worse, which := same, "same"
	if *spread.P99 > *same.P99 {
		worse, which = spread, "spread"
	}
	res := Result{Value: *worse.P99, Unit: "ms", P50: worse.P50, P99: worse.P99,
		Extra: map[string]float64{"same_p99_ms": *same.P99, "spread_p99_ms": *spread.P99},
		Sub:   map[string]Result{"timed_lateness_same": same, "timed_lateness_spread": spread},
	}
	res.Note = fmt.Sprintf("value = worse p99 of timed_lateness_same/_spread (here: %s); %s", which, c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// timedPhase enqueues n tasks over timedQueues fresh queues, due from
// now+timedLead evenly over `spread` (all at once when 0), waits for all,
// and returns the lateness (arrival − run_at) in ms, value = p99.
func timedPhase(ctx context.Context, env *Env, c *htqCluster, name string, n int, spread time.Duration) (Result, error) {
	names := queueNames(env, "timed-"+name, timedQueues)
	if err := putQueues(ctx, c.HTQ, names, client.QueueSettings{}, 8); err != nil {
		return Result{}, err
	}
	schedBefore, err := scrape(ctx, c.Scheduler.Health+"/metrics")
	if err != nil {
		return Result{}, err
	}
	// Task j goes to queue j % timedQueues (index j / timedQueues) and is
	// due at base + j × spread/n; run_at has millisecond precision.
	base := time.Now().Add(timedLead).Truncate(time.Millisecond)
	runAt := make(map[string][]time.Time, timedQueues)
	batches := make(map[string][]client.TaskRequest, timedQueues)
	expected := make(map[string]int, timedQueues)
	for j := range n {
		q := names[j%timedQueues]
		due := base
		if spread > 0 {
			due = base.Add(time.Duration(int64(spread) * int64(j) / int64(n))).Truncate(time.Millisecond)
		}
		runAt[q] = append(runAt[q], due)
		dueUTC := due.UTC()
		batches[q] = append(batches[q], client.TaskRequest{URL: TaskURL(env.Target.URL, "/t", q, j/timedQueues), RunAt: &dueUTC})
		expected[q]++
	}
	from := env.Target.Count()
	err = parallel(ctx, len(names), 8, func(ctx context.Context, i int) error {
		q := names[i]
		ts := batches[q]
		for s := 0; s < len(ts); s += batchSize {
			e := min(s+batchSize, len(ts))
			if err := enqueueBatch(ctx, c.HTQ, q, ts[s:e]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if left := time.Until(base); left < 500*time.Millisecond {
		return Result{}, fmt.Errorf("enqueueing took too long: only %v left before the due time", left)
	}
	tr := newDeliveryTracker(expected)
	if _, err := waitDelivered(ctx, env.Target, tr, 30*time.Second, c.Check); err != nil {
		return Result{}, err
	}
	time.Sleep(150 * time.Millisecond) // late duplicates, if any
	// This phase's arrivals only (the previous phase's queues are not expected).
	arr := env.Target.ArrivalsSince(from)
	rep := CheckOrder(arr, expected)
	if rep.Missing > 0 || rep.Unexpected > 0 || rep.Unparsed > 0 || rep.OutOfOrder > 0 {
		return Result{}, fmt.Errorf("delivery: %s", rep)
	}
	var late []float64
	early := 0
	seen := map[string]map[int]bool{}
	for _, a := range arr {
		q, i, ok := ArrivalKey(a)
		if !ok || seen[q][i] {
			continue
		}
		if seen[q] == nil {
			seen[q] = map[int]bool{}
		}
		seen[q][i] = true
		d := env.Target.WallTime(a.T).Sub(runAt[q][i])
		if d < 0 {
			early++
		}
		late = append(late, float64(d)/1e6)
	}
	schedAfter, err := scrape(ctx, c.Scheduler.Health+"/metrics")
	if err != nil {
		return Result{}, err
	}
	lag := histDelta(promHistogram(schedAfter, "htq_scheduler_promotion_lag_seconds"),
		promHistogram(schedBefore, "htq_scheduler_promotion_lag_seconds"))
	p50, p99 := Percentile(late, 50), Percentile(late, 99)
	mx := 0.0
	for _, v := range late {
		mx = max(mx, v)
	}
	res := Result{Value: p99, Unit: "ms", P50: F(p50), P99: F(p99), Extra: map[string]float64{
		"tasks": float64(n), "queues": timedQueues, "max_ms": mx, "early": float64(early),
		"duplicates":           float64(rep.Duplicates),
		"promotion_lag_p50_ms": nanToZero(histQuantile(0.5, lag) * 1000),
		"promotion_lag_p99_ms": nanToZero(histQuantile(0.99, lag) * 1000),
		"promotions":           histTotal(lag),
	}}
	if spread > 0 {
		res.Note = fmt.Sprintf("value = p99; %d tasks due evenly over %v from now+%v, %d serial queues; %s", n, spread, timedLead, timedQueues, orderSummary(rep))
	} else {
		res.Note = fmt.Sprintf("value = p99; %d tasks due at one instant (now+%v), %d serial queues of %d: includes waiting behind the queue's earlier tasks; %s",
			n, timedLead, timedQueues, n/timedQueues, orderSummary(rep))
	}
	if early > 0 {
		res.Note += fmt.Sprintf("; %d EARLY", early)
	}
	return res, nil
}

func nanToZero(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// ---- variable_scale ------------------------------------------------------------------

const (
	varQueues      = 1000
	varStepping    = 1   // seconds
	varMaxInterval = 120 // seconds: steady rate N/120 (833 calls/s for 100,000)
	varTargetRate  = 1000
)

// variableCallsBy is the number of calls a variable task has had by age a
// (seconds since its first call) with stepping 1 s: calls at ages 0, 0,
// 1, 3, 6, 10, … (gap after the k-th call is min(k × stepping, max)).
func variableCallsBy(age float64, stepping, maxInterval float64) int {
	if age < 0 {
		return 0
	}
	calls, t := 1, 0.0
	for k := 0; ; k++ {
		gap := math.Min(float64(k)*stepping, maxInterval)
		if t+gap > age {
			return calls
		}
		t += gap
		calls++
		if calls > 1e6 {
			return calls
		}
	}
}

// variableGap is the gap after the k-th call (k from 0).
func variableGap(k int, stepping, maxInterval time.Duration) time.Duration {
	return min(time.Duration(k)*stepping, maxInterval)
}

func runVariableScale(ctx context.Context, env *Env) (Result, error) {
	n := env.Size(100000, 10000)
	window, settle := 20*time.Second, 3*time.Second
	if env.Cfg.Quick {
		window, settle = 8*time.Second, 2*time.Second
	}
	// The first calls are spread evenly over a ramp so that the call rate
	// stays under varTargetRate until the window ends: a fresh variable task
	// is called at ages 0, 0, 1, 3, 6, 10 … s, so with tasks starting at rate
	// λ the call rate at time T is about λ × calls(T). The window ends at
	// ~expectedEnd (enqueueing, settling, window).
	expectedEnd := window + settle + time.Duration(n/20000+2)*time.Second
	perTask := variableCallsBy(expectedEnd.Seconds(), varStepping, varMaxInterval)
	lambda := float64(varTargetRate) / float64(perTask)
	ramp := time.Duration(float64(n) / lambda * float64(time.Second))

	env.Target.Reset(int(float64(varTargetRate)*expectedEnd.Seconds()) + n/10 + 1024)
	c, err := startHTQ(ctx, env, htqOptions{Dispatchers: 1})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	if err := c.WaitLeader(ctx); err != nil {
		return Result{}, err
	}
	nq := min(varQueues, n)
	names := queueNames(env, "var", nq)
	qcfg := client.QueueSettings{Type: "variable", SteppingTime: client.D(varStepping * time.Second),
		MaxTimeInterval: client.D(varMaxInterval * time.Second)}
	if err := putQueues(ctx, c.HTQ, names, qcfg, 8); err != nil {
		return Result{}, err
	}
	// Task j: queue j % nq, index j / nq, first due at start + j × ramp/n.
	start := time.Now().Truncate(time.Millisecond)
	perQ := split(n, nq)
	firstDue := func(qi, idx int) time.Time {
		j := idx*nq + qi
		return start.Add(time.Duration(int64(ramp) * int64(j) / int64(n))).Truncate(time.Millisecond)
	}
	qIndex := make(map[string]int, nq)
	for i, q := range names {
		qIndex[q] = i
	}
	err = parallel(ctx, nq, 8, func(ctx context.Context, qi int) error {
		q := names[qi]
		for s := 0; s < perQ[qi]; s += batchSize {
			e := min(s+batchSize, perQ[qi])
			ts := make([]client.TaskRequest, 0, e-s)
			for idx := s; idx < e; idx++ {
				due := firstDue(qi, idx).UTC()
				ts = append(ts, client.TaskRequest{URL: TaskURL(env.Target.URL, "/v", q, idx), RunAt: &due})
			}
			if err := enqueueBatch(ctx, c.HTQ, q, ts); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	enqSecs := time.Since(start).Seconds()
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-time.After(settle):
	}

	before, err := scrape(ctx, c.Scheduler.Health+"/metrics")
	if err != nil {
		return Result{}, err
	}
	w0 := env.Target.Now()
	snapB, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-time.After(window):
	}
	if err := c.Check(); err != nil {
		return Result{}, err
	}
	after, err := scrape(ctx, c.Scheduler.Health+"/metrics")
	if err != nil {
		return Result{}, err
	}
	w1 := env.Target.Now()
	snapA, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	lag := histDelta(promHistogram(after, "htq_scheduler_promotion_lag_seconds"),
		promHistogram(before, "htq_scheduler_promotion_lag_seconds"))
	promoted := histTotal(lag)
	if promoted == 0 {
		return Result{}, fmt.Errorf("no promotions in the %v window (scheduler metrics: %d series)", window, len(after))
	}
	p50, p99 := histQuantile(0.5, lag)*1000, histQuantile(0.99, lag)*1000

	// Call lateness at the target: a call's due time is the previous call's
	// arrival + the gap after it (the first call: its run_at). The previous
	// call's duration (the target answers at once) is counted as lateness.
	arr := env.Target.Arrivals()
	type tstate struct {
		calls int
		last  int64
	}
	st := map[string]*tstate{}
	var late []float64
	calls := 0
	for _, a := range arr {
		q, i, ok := ArrivalKey(a)
		qi, known := qIndex[q]
		if !ok || !known || i < 0 || i >= perQ[qi] {
			continue
		}
		key := fmt.Sprintf("%s/%d", q, i)
		s := st[key]
		var due int64
		if s == nil {
			s = &tstate{}
			st[key] = s
			due = env.Target.TargetTime(firstDue(qi, i))
		} else {
			due = s.last + int64(variableGap(s.calls-1, varStepping*time.Second, varMaxInterval*time.Second))
		}
		if a.T >= w0 && a.T < w1 {
			calls++
			late = append(late, float64(a.T-due)/1e6)
		}
		s.calls++
		s.last = a.T
	}
	secs := float64(w1-w0) / 1e9
	res := Result{Value: p99, Unit: "ms", P50: F(p50), P99: F(p99), Extra: map[string]float64{
		"tasks": float64(n), "queues": float64(nq), "window_s": secs,
		"promotions":                 float64(promoted),
		"promotions_over_200ms":      histAbove(lag, 0.25), // bucket bounds: 0.1, 0.25
		"promotion_p99_bucket_le_s":  bucketBound(lag, 0.99),
		"calls_per_s_window":         float64(calls) / secs,
		"predicted_peak_calls_per_s": lambda * float64(perTask),
		"ramp_s":                     ramp.Seconds(),
		"max_time_interval_s":        varMaxInterval,
		"steady_calls_per_s":         float64(n) / varMaxInterval,
		"enqueue_s":                  enqSecs,
		"redis_cpu_utilisation":      (snapA.CPUSeconds - snapB.CPUSeconds) / secs,
	}}
	if len(late) > 0 {
		res.Extra["call_lateness_p50_ms"] = Percentile(late, 50)
		res.Extra["call_lateness_p99_ms"] = Percentile(late, 99)
	}
	res.Note = fmt.Sprintf("value = p99 promotion lag (scheduler histogram, interpolated in buckets) over %.0fs; "+
		"%d tasks on %d variable queues, each queue serial (one call at a time); stepping %ds, max_time_interval %ds; "+
		"first calls spread over %.0fs so calls stay under ~%d/s; %s",
		secs, n, nq, varStepping, varMaxInterval, ramp.Seconds(), varTargetRate, c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// bucketBound returns the upper bound of the bucket holding quantile q.
func bucketBound(b []histBucket, q float64) float64 {
	rank := q * histTotal(b)
	for i, x := range b {
		if x.Count >= rank {
			if math.IsInf(x.LE, 1) && i > 0 {
				return b[i-1].LE
			}
			return x.LE
		}
	}
	return math.NaN()
}
