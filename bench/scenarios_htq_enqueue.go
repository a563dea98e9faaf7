package main

// HTQ enqueue scenarios (no dispatcher runs; the API and the scheduler do):
//
//   enqueue_single         one task per REST request, 32 keep-alive clients
//   enqueue_single_legacy  the same through /api/addTask, multipart as the PHP SDK sends it
//   enqueue_batch          REST batches of 500, 8 clients
//   redis_bytes_per_task   used_memory per pending task, 100-byte URLs
//
// Request bodies are built before the measurement. The clients first warm
// one keep-alive connection each (on a separate queue); the measurement is
// from the first request to the last answer. Every answer is checked (201,
// or legacy error_code 0) and afterwards the queues' counts must add up to
// the tasks sent, else the run fails.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htq/htq/client"
)

func init() {
	Register(Scenario{
		Name: "enqueue_single", Group: GroupHTQ,
		Desc: "REST, one task per request, 32 keep-alive clients, 30,000 requests (quick 5,000): tasks/s, p50/p99 request ms",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runEnqueueSingle(ctx, env, false)
		},
	})
	Register(Scenario{
		Name: "enqueue_single_legacy", Group: GroupHTQ,
		Desc: "legacy /api/addTask (multipart, as the PHP SDK), 32 clients, 30,000 requests (quick 5,000): tasks/s, p50/p99 ms",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runEnqueueSingle(ctx, env, true)
		},
	})
	Register(Scenario{
		Name: "enqueue_batch", Group: GroupHTQ,
		Desc: "REST batches of 500, 8 clients, 200,000 tasks (quick 50,000): tasks/s",
		Run:  runEnqueueBatch,
	})
	Register(Scenario{
		Name: "redis_bytes_per_task", Group: GroupHTQ,
		Desc: "Redis used_memory per pending task, 1,000,000 tasks (quick 100,000) with 100-byte URLs in 1,000 queues",
		Run:  runRedisBytes,
	})
}

const (
	enqClients      = 32
	enqQueues       = 8
	batchClients    = 8
	batchSize       = 500
	batchQueues     = 16
	bytesURLLen     = 100
	bytesPerQueue   = 1000
	warmupPerClient = 3
)

// enqRequest is one prepared request.
type enqRequest struct {
	path  string
	body  []byte
	ctype string
	tasks int
}

// loadOutcome is what runLoad measured.
type loadOutcome struct {
	lat   []int64 // ns per request, in request order
	wall  time.Duration
	dials int64
}

// runLoad sends reqs from `clients` goroutines (each takes the next request)
// and checks each answer with ok. The measurement starts when the first
// request is sent and ends at the last answer.
func runLoad(ctx context.Context, rc *restClient, reqs []enqRequest, clients int,
	ok func(status int, body []byte, r enqRequest) error) (loadOutcome, error) {
	out := loadOutcome{lat: make([]int64, len(reqs))}
	var next atomic.Int64
	fail := newFailSignal()
	var wg sync.WaitGroup
	dials0 := rc.Dials()
	start := time.Now()
	ends := make([]time.Time, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					ends[c] = time.Now()
					return
				}
				select {
				case <-fail.C:
					return
				default:
				}
				r := reqs[i]
				t := time.Now()
				st, b, err := rc.do(ctx, http.MethodPost, r.path, r.body, r.ctype)
				out.lat[i] = int64(time.Since(t))
				if err == nil {
					err = ok(st, b, r)
				}
				if err != nil {
					fail.Fail(fmt.Errorf("request %d: %w", i, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if fail.err != nil {
		return out, fail.err
	}
	end := start
	for _, e := range ends {
		if e.After(end) {
			end = e
		}
	}
	out.wall = end.Sub(start)
	out.dials = rc.Dials() - dials0
	return out, nil
}

// warmConns opens (and keeps idle) one connection per client by sending
// warmupPerClient requests from each of `clients` goroutines at once.
func warmConns(ctx context.Context, rc *restClient, clients int, mk func(c, k int) enqRequest,
	ok func(status int, body []byte, r enqRequest) error) error {
	return parallel(ctx, clients, clients, func(ctx context.Context, c int) error {
		for k := range warmupPerClient {
			r := mk(c, k)
			st, b, err := rc.do(ctx, http.MethodPost, r.path, r.body, r.ctype)
			if err == nil {
				err = ok(st, b, r)
			}
			if err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
		return nil
	})
}

func restCreated(st int, b []byte, _ enqRequest) error {
	if st != http.StatusCreated {
		return fmt.Errorf("status %d: %s", st, clipBytes(b, 200))
	}
	return nil
}

func legacyAccepted(st int, b []byte, _ enqRequest) error {
	if st != http.StatusOK || !legacyOK(b) {
		return fmt.Errorf("status %d: %s", st, clipBytes(b, 200))
	}
	return nil
}

var idField = []byte(`"id":`)

func batchCreated(st int, b []byte, r enqRequest) error {
	if st != http.StatusCreated {
		return fmt.Errorf("status %d: %s", st, clipBytes(b, 200))
	}
	if n := bytes.Count(b, idField); n != r.tasks {
		return fmt.Errorf("%d ids for a batch of %d", n, r.tasks)
	}
	return nil
}

// verifyQueued checks that the queues hold `want` queued tasks in all.
func verifyQueued(ctx context.Context, hc *client.Client, names []string, want int) error {
	var got int64
	for _, q := range names {
		qu, err := hc.GetQueue(ctx, q)
		if err != nil {
			return fmt.Errorf("counts of %s: %w", q, err)
		}
		got += qu.Counts.Queued + qu.Counts.Scheduled + qu.Counts.Active
	}
	if got != int64(want) {
		return fmt.Errorf("tasks lost: %d accepted, %d in the queues", want, got)
	}
	return nil
}

// enqueueResult fills the common fields of an enqueue result.
func enqueueResult(tasks int, out loadOutcome, before, after RedisSnapshot, apiCPU, selfCPU *cpuMeter, m Measure) Result {
	secs := out.wall.Seconds()
	res := throughputResult(tasks, 0, out.wall.Nanoseconds(), before, after, m)
	delete(res.Extra, "redis_mem_preloaded_mb")
	res.Extra["http_conns"] = float64(out.dials)
	res.Extra["seconds"] = secs
	if s, ok := apiCPU.Seconds(); ok {
		res.Extra["api_cpu_us_per_task"] = s * 1e6 / float64(tasks)
	}
	if s, ok := selfCPU.Seconds(); ok {
		res.Extra["bench_cpu_us_per_task"] = s * 1e6 / float64(tasks)
	}
	return res
}

// selfMeter measures this benchmark process's CPU (the load generator).
func selfMeter() *cpuMeter {
	v, err := procCPU(os.Getpid())
	if err != nil {
		return &cpuMeter{}
	}
	return &cpuMeter{pids: []int{os.Getpid()}, start: []float64{v}}
}

func runEnqueueSingle(ctx context.Context, env *Env, legacy bool) (Result, error) {
	n := env.Size(30000, 5000)
	c, err := startHTQ(ctx, env, htqOptions{})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	prefix := "es"
	if legacy {
		prefix = "el"
	}
	names := queueNames(env, prefix, enqQueues+1)
	warm, names := names[enqQueues], names[:enqQueues]
	for _, q := range append([]string{warm}, names...) {
		if legacy {
			err = c.REST.Legacy(ctx, benchLegacyKey, benchLegacyToken, "addQueue",
				"queue_name", q, "type", "real_time", "stepping_time", "0", "max_time_interval", "0")
		} else {
			_, _, err = c.HTQ.PutQueue(ctx, q, client.QueueSettings{})
		}
		if err != nil {
			return Result{}, err
		}
	}
	base := env.Target.URL
	mk := func(q string, i int) enqRequest {
		u := TaskURL(base, "/t", q, i)
		if legacy {
			body, ct := legacyAddTaskForm(benchLegacyKey, benchLegacyToken, q, u)
			return enqRequest{path: "/api/addTask", body: body, ctype: ct, tasks: 1}
		}
		return enqRequest{path: queuePath(q) + "/tasks", body: []byte(`{"url":"` + u + `"}`), ctype: "application/json", tasks: 1}
	}
	ok := restCreated
	if legacy {
		ok = legacyAccepted
	}
	reqs := make([]enqRequest, n)
	for i := range reqs {
		reqs[i] = mk(names[i%enqQueues], i/enqQueues)
	}
	rc := newRESTClient(c.API, benchToken, enqClients)
	defer rc.hc.CloseIdleConnections()
	if err := warmConns(ctx, rc, enqClients, func(cl, k int) enqRequest { return mk(warm, cl*warmupPerClient+k) }, ok); err != nil {
		return Result{}, err
	}

	before, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	m := env.BeginMeasure()
	apiCPU, self := newCPUMeter(c.APIProc), selfMeter()
	out, err := runLoad(ctx, rc, reqs, enqClients, ok)
	if err != nil {
		return Result{}, err
	}
	after, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	res := enqueueResult(n, out, before, after, apiCPU, self, m)
	if err := verifyQueued(ctx, c.HTQ, names, n); err != nil {
		return Result{}, err
	}
	p50, p99, mean, mx := msStats(out.lat)
	res.P50, res.P99 = F(p50), F(p99)
	res.Extra["latency_mean_ms"], res.Extra["latency_max_ms"] = mean, mx
	res.Extra["clients"] = enqClients
	api := "REST POST /v1/queues/{q}/tasks"
	if legacy {
		api = "legacy /api/addTask multipart"
	}
	res.Note = fmt.Sprintf("%s, %d clients over %d queues, p50/p99 = request latency in ms; all %d counted in the queues; %s",
		api, enqClients, enqQueues, n, c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

func runEnqueueBatch(ctx context.Context, env *Env) (Result, error) {
	n := env.Size(200000, 50000)
	c, err := startHTQ(ctx, env, htqOptions{})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	names := queueNames(env, "eb", batchQueues+1)
	warm, names := names[batchQueues], names[:batchQueues]
	if err := putQueues(ctx, c.HTQ, append([]string{warm}, names...), client.QueueSettings{}, 8); err != nil {
		return Result{}, err
	}
	base := env.Target.URL
	next := make([]int, batchQueues) // next index per queue
	mk := func(q string, from, count int) enqRequest {
		tasks := make([]newTask, count)
		for k := range tasks {
			tasks[k] = newTask{URL: TaskURL(base, "/t", q, from+k)}
		}
		return enqRequest{path: queuePath(q) + "/tasks/batch", body: batchBody(tasks), ctype: "application/json", tasks: count}
	}
	var reqs []enqRequest
	for sent, j := 0, 0; sent < n; j++ {
		k := min(batchSize, n-sent)
		qi := j % batchQueues
		reqs = append(reqs, mk(names[qi], next[qi], k))
		next[qi] += k
		sent += k
	}
	rc := newRESTClient(c.API, benchToken, batchClients)
	defer rc.hc.CloseIdleConnections()
	if err := warmConns(ctx, rc, batchClients, func(cl, k int) enqRequest {
		return mk(warm, (cl*warmupPerClient+k)*batchSize, batchSize)
	}, batchCreated); err != nil {
		return Result{}, err
	}
	before, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	m := env.BeginMeasure()
	apiCPU, self := newCPUMeter(c.APIProc), selfMeter()
	out, err := runLoad(ctx, rc, reqs, batchClients, batchCreated)
	if err != nil {
		return Result{}, err
	}
	after, err := c.Redis.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	res := enqueueResult(n, out, before, after, apiCPU, self, m)
	if err := verifyQueued(ctx, c.HTQ, names, n); err != nil {
		return Result{}, err
	}
	p50, p99, _, _ := msStats(out.lat)
	res.Extra["batch_p50_ms"], res.Extra["batch_p99_ms"] = p50, p99
	res.Extra["batches"] = float64(len(reqs))
	res.Note = fmt.Sprintf("REST batches of %d, %d clients over %d queues; all %d counted in the queues; %s",
		batchSize, batchClients, batchQueues, n, c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// ---- redis_bytes_per_task -------------------------------------------------------

func runRedisBytes(ctx context.Context, env *Env) (Result, error) {
	n := env.Size(1000000, 100000)
	nq := max(1, n/bytesPerQueue)
	c, err := startHTQ(ctx, env, htqOptions{})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	rdb := c.Redis.Client
	mem0, err := settledMemory(ctx, c.Redis)
	if err != nil {
		return Result{}, err
	}
	names := queueNames(env, "mem", nq)
	if err := putQueues(ctx, c.HTQ, names, client.QueueSettings{}, 8); err != nil {
		return Result{}, err
	}
	memQ, err := settledMemory(ctx, c.Redis)
	if err != nil {
		return Result{}, err
	}
	keysQ, err := rdb.DBSize(ctx).Result()
	if err != nil {
		return Result{}, err
	}
	// Tasks: queue i%nq gets the i-th task; URLs exactly 100 bytes.
	base := env.Target.URL
	counts := split(n, nq)
	began := time.Now()
	if err := preload(ctx, c.HTQ, names, func(i int) int { return counts[i] }, batchClients,
		func(q string, i int) string { return paddedTaskURL(base, "/t", q, i, bytesURLLen) }); err != nil {
		return Result{}, err
	}
	enqSecs := time.Since(began).Seconds()
	memT, err := settledMemory(ctx, c.Redis)
	if err != nil {
		return Result{}, err
	}
	keysT, err := rdb.DBSize(ctx).Result()
	if err != nil {
		return Result{}, err
	}
	sum, listed, err := allCounts(ctx, c.HTQ)
	if err != nil {
		return Result{}, err
	}
	if got := sum.Queued + sum.Scheduled + sum.Active; got != int64(n) || listed != nq {
		return Result{}, fmt.Errorf("tasks lost: %d accepted, %d in %d listed queues", n, got, listed)
	}
	if a := env.Target.Count(); a != 0 {
		return Result{}, fmt.Errorf("%d tasks were called: no dispatcher should run", a)
	}
	per := float64(memT-memQ) / float64(n)
	res := Result{Value: per, Unit: "bytes/task", Extra: map[string]float64{
		"tasks":                    float64(n),
		"queues":                   float64(nq),
		"url_bytes":                bytesURLLen,
		"bytes_per_task_minus_url": per - bytesURLLen,
		"bytes_per_queue":          float64(memQ-mem0) / float64(nq),
		"keys_per_task":            float64(keysT-keysQ) / float64(n),
		"used_memory_mb":           float64(memT) / (1 << 20),
		"enqueue_tasks_per_s":      float64(n) / enqSecs,
	}}
	res.Note = fmt.Sprintf("(used_memory after − before the tasks) / tasks, settled; %.0f bytes/task beyond the %d-byte URL; %d queues x %d; %s",
		per-bytesURLLen, bytesURLLen, nq, n/nq, c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}

// settledMemory reads used_memory until two readings 300 ms apart differ by
// less than 0.1 % (at most ~5 s), and returns the last.
func settledMemory(ctx context.Context, r *Redis) (int64, error) {
	prev, err := UsedMemory(ctx, r.Client)
	if err != nil {
		return 0, err
	}
	for range 16 {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		cur, err := UsedMemory(ctx, r.Client)
		if err != nil {
			return 0, err
		}
		d := cur - prev
		if d < 0 {
			d = -d
		}
		if float64(d) < 0.001*float64(max(cur, 1)) {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}
