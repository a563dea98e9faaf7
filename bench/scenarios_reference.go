package main

// Reference scenarios: what a bare Redis-streams loop and asynq achieve
// against the same target on this machine, to put HTQ's numbers in context.
//
//   ceiling_serial  one stream,  one loop: XREADGROUP COUNT 1 BLOCK → GET → XACK
//   ceiling_multi   20 streams, one loop (goroutine) per stream
//   asynq_c1        asynq v0.26.0 server, Concurrency 1, handler does the GET
//   asynq_c10       same with Concurrency 10
//
// Throughput = tasks completed at the target / (time of the last arrival −
// start of work). Work starts when the consumer goroutines (or the asynq
// server) are started; preloading is not measured.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func init() {
	Register(Scenario{
		Name:  "ceiling_serial",
		Group: GroupReference,
		Desc:  "bare loop, 1 stream: XREADGROUP COUNT 1 BLOCK -> HTTP GET -> XACK",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runCeiling(ctx, env, 1, env.Size(20000, 3000))
		},
	})
	Register(Scenario{
		Name:  "ceiling_multi",
		Group: GroupReference,
		Desc:  "bare loop on 20 streams, one goroutine per stream",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runCeiling(ctx, env, 20, env.Size(20000, 3000))
		},
	})
	Register(Scenario{
		Name:  "ceiling_serial_proc",
		Group: GroupReference,
		Desc:  "ceiling_serial's loop in its own process, as HTQ's dispatcher runs (not beside the target)",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runCeilingIn(ctx, env, 1, env.Size(20000, 3000), true)
		},
	})
	Register(Scenario{
		Name:  "ceiling_multi_proc",
		Group: GroupReference,
		Desc:  "ceiling_multi's loops in their own process, as HTQ's dispatcher runs (not beside the target)",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runCeilingIn(ctx, env, 20, env.Size(20000, 3000), true)
		},
	})
	Register(Scenario{
		Name:  "asynq_c1",
		Group: GroupReference,
		Desc:  "asynq v0.26.0 server, Concurrency 1, handler does the HTTP GET",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runAsynq(ctx, env, 1, env.Size(20000, 3000))
		},
	})
	Register(Scenario{
		Name:  "asynq_c10",
		Group: GroupReference,
		Desc:  "asynq v0.26.0 server, Concurrency 10, handler does the HTTP GET",
		Run: func(ctx context.Context, env *Env) (Result, error) {
			return runAsynq(ctx, env, 10, env.Size(20000, 3000))
		},
	})
}

// split divides total into n near-equal parts.
func split(total, n int) []int {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = total / n
		if i < total%n {
			parts[i]++
		}
	}
	return parts
}

// failSignal records the first error of concurrent workers and closes C.
type failSignal struct {
	once sync.Once
	err  error
	C    chan struct{}
}

func newFailSignal() *failSignal { return &failSignal{C: make(chan struct{})} }

func (f *failSignal) Fail(err error) {
	f.once.Do(func() { f.err = err; close(f.C) })
}

// throughputResult builds a tasks/s result with Redis cost per task and the
// process-side counters of m.
func throughputResult(n int, t0, tEnd int64, before, after RedisSnapshot, m Measure) Result {
	secs := float64(tEnd-t0) / 1e9
	d := after.Cmds.Sub(before.Cmds)
	return Result{
		Value: float64(n) / secs,
		Unit:  "tasks/s",
		Extra: map[string]float64{
			"tasks":                  float64(n),
			"seconds":                secs,
			"redis_cmds_per_task":    float64(d.Calls) / float64(n),
			"redis_cpu_us_per_task":  (after.CPUSeconds - before.CPUSeconds) * 1e6 / float64(n),
			"redis_mem_preloaded_mb": float64(before.UsedMemory) / (1 << 20),
			"http_conns":             float64(m.Conns()),
			"gc_cycles":              float64(m.GCCycles()),
		},
	}
}

// orderNote checks completeness (an error if anything is missing or
// duplicated) and describes per-queue order.
func orderNote(env *Env, expected map[string]int) (string, error) {
	rep := CheckOrder(env.Target.Arrivals(), expected)
	env.Debugf("order: %s", rep)
	if !rep.Complete() {
		return "", fmt.Errorf("incomplete delivery: %s", rep)
	}
	if rep.OutOfOrder == 0 {
		return "order ok", nil
	}
	return fmt.Sprintf("out-of-order=%d", rep.OutOfOrder), nil
}

// ---- ceiling -----------------------------------------------------------------

const ceilingGroup = "g"

func runCeiling(ctx context.Context, env *Env, streams, total int) (Result, error) {
	return runCeilingIn(ctx, env, streams, total, false)
}

// runCeilingIn runs the bare loop in this process (beside the target, as the
// issue's reference does) or, with ownProcess, in a child process, as HTQ's
// dispatcher runs: every task then crosses one more process boundary.
func runCeilingIn(ctx context.Context, env *Env, streams, total int, ownProcess bool) (Result, error) {
	r, err := env.StartRedis(ctx)
	if err != nil {
		return Result{}, err
	}
	defer r.Stop()

	rdb := redis.NewClient(&redis.Options{
		Addr:         r.Addr,
		PoolSize:     streams + 4,
		MinIdleConns: streams,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
	})
	defer rdb.Close()

	// Preload: stream "s<k>" gets its share; each entry's field "url" is the
	// target URL carrying q=<stream>&i=<index within the stream>.
	counts := split(total, streams)
	expected := make(map[string]int, streams)
	names := make([]string, streams)
	for k, n := range counts {
		name := "s" + strconv.Itoa(k)
		names[k] = name
		expected[name] = n
		if err := rdb.XGroupCreateMkStream(ctx, name, ceilingGroup, "0").Err(); err != nil {
			return Result{}, err
		}
		for i := 0; i < n; {
			p := rdb.Pipeline()
			for j := 0; j < 1000 && i < n; j, i = j+1, i+1 {
				p.XAdd(ctx, &redis.XAddArgs{Stream: name, Values: []any{"url", TaskURL(env.Target.URL, "/t", name, i)}})
			}
			if _, err := p.Exec(ctx); err != nil {
				return Result{}, fmt.Errorf("preload: %w", err)
			}
		}
	}
	// Warm one connection per worker so dialing is not measured.
	for range streams {
		_ = rdb.Ping(ctx).Err()
	}

	hc := NewHTTPClient(streams)
	defer hc.CloseIdleConnections()

	before, err := r.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}

	fail := newFailSignal()
	var wg sync.WaitGroup
	m := env.BeginMeasure()
	t0 := m.T0
	if ownProcess {
		self, err := os.Executable()
		if err != nil {
			return Result{}, err
		}
		args := []string{ceilingWorkerArg, r.Addr}
		for k, name := range names {
			args = append(args, name, strconv.Itoa(counts[k]))
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return Result{}, err
		}
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				fail.Fail(fmt.Errorf("ceiling worker: %w", err))
			}
		})
	}
	for k, name := range names {
		if ownProcess {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ceilingLoop(ctx, rdb, hc, name, counts[k]); err != nil {
				fail.Fail(fmt.Errorf("stream %s: %w", name, err))
			}
		}()
	}
	tEnd, err := env.Target.WaitArrivals(ctx, total, fail.C)
	wg.Wait()
	if fail.err != nil {
		return Result{}, fail.err
	}
	if err != nil {
		return Result{}, err
	}
	after, err := r.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	for _, name := range names {
		pending, err := rdb.XPending(ctx, name, ceilingGroup).Result()
		if err != nil {
			return Result{}, err
		}
		if pending.Count != 0 {
			return Result{}, fmt.Errorf("stream %s: %d entries left unacked", name, pending.Count)
		}
	}

	res := throughputResult(total, t0, tEnd, before, after, m)
	res.Note, err = orderNote(env, expected)
	if err != nil {
		return Result{}, err
	}
	res.Note = fmt.Sprintf("%d stream(s), %s", streams, res.Note)
	if ownProcess {
		res.Note += ", loop in its own process"
	}
	return res, nil
}

// ceilingWorkerArg makes the bench binary a ceiling worker:
// htqbench ceiling-worker <redis addr> <stream> <n> [<stream> <n>...]
const ceilingWorkerArg = "ceiling-worker"

// runCeilingWorker consumes the given streams, one goroutine each, then exits.
func runCeilingWorker(args []string) int {
	if len(args) < 3 || len(args)%2 != 1 {
		fmt.Fprintln(os.Stderr, "usage: ceiling-worker <redis addr> <stream> <n>...")
		return 2
	}
	ctx := context.Background()
	streams := (len(args) - 1) / 2
	rdb := redis.NewClient(&redis.Options{Addr: args[0], PoolSize: streams + 4, MinIdleConns: streams,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	defer rdb.Close()
	hc := NewHTTPClient(streams)
	defer hc.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := 1; i < len(args); i += 2 {
		name := args[i]
		n, err := strconv.Atoi(args[i+1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "ceiling-worker:", err)
			return 2
		}
		wg.Go(func() {
			if err := ceilingLoop(ctx, rdb, hc, name, n); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		fmt.Fprintln(os.Stderr, "ceiling-worker:", err)
		return 1
	default:
		return 0
	}
}

// ceilingLoop consumes exactly n entries of one stream, one at a time.
func ceilingLoop(ctx context.Context, rdb *redis.Client, hc *HTTPClient, stream string, n int) error {
	args := &redis.XReadGroupArgs{
		Group:    ceilingGroup,
		Consumer: "c",
		Streams:  []string{stream, ">"},
		Count:    1,
		Block:    time.Second,
	}
	for done := 0; done < n; {
		res, err := rdb.XReadGroup(ctx, args).Result()
		if errors.Is(err, redis.Nil) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, st := range res {
			for _, m := range st.Messages {
				u, _ := m.Values["url"].(string)
				if err := hc.Get(ctx, u); err != nil {
					return err
				}
				if err := rdb.XAck(ctx, stream, ceilingGroup, m.ID).Err(); err != nil {
					return err
				}
				done++
			}
		}
	}
	return nil
}

// ---- asynq -----------------------------------------------------------------

const asynqTaskType = "bench:get"

// quietLogger silences asynq (asynq.Logger). Fatal keeps its contract of
// exiting the process.
type quietLogger struct{}

func (quietLogger) Debug(...any) {}
func (quietLogger) Info(...any)  {}
func (quietLogger) Warn(...any)  {}
func (quietLogger) Error(...any) {}
func (quietLogger) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"asynq fatal:"}, args...)...)
	StopAllRedis()
	os.Exit(1)
}

func runAsynq(ctx context.Context, env *Env, concurrency, total int) (Result, error) {
	r, err := env.StartRedis(ctx)
	if err != nil {
		return Result{}, err
	}
	defer r.Stop()
	opt := asynq.RedisClientOpt{Addr: r.Addr}

	// Preload with asynq.Client from 4 enqueuers; enqueuer k uses queue key
	// "e<k>" in the URL so per-key order is still checkable.
	const enqueuers = 4
	counts := split(total, enqueuers)
	expected := make(map[string]int, enqueuers)
	cl := asynq.NewClient(opt)
	var wg sync.WaitGroup
	var enqErr atomic.Pointer[error]
	for k, n := range counts {
		key := "e" + strconv.Itoa(k)
		expected[key] = n
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				t := asynq.NewTask(asynqTaskType, []byte(TaskURL(env.Target.URL, "/t", key, i)))
				if _, err := cl.EnqueueContext(ctx, t); err != nil {
					enqErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cl.Close()
	if p := enqErr.Load(); p != nil {
		return Result{}, fmt.Errorf("preload: %w", *p)
	}

	hc := NewHTTPClient(concurrency)
	defer hc.CloseIdleConnections()
	fail := newFailSignal()
	mux := asynq.NewServeMux()
	mux.HandleFunc(asynqTaskType, func(ctx context.Context, t *asynq.Task) error {
		if err := hc.Get(ctx, string(t.Payload())); err != nil {
			fail.Fail(err)
			return err
		}
		return nil
	})
	// Only Concurrency and the logger are set: every polling/interval
	// setting (TaskCheckInterval 1s, DelayedTaskCheckInterval 5s, ...) is
	// asynq's default.
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: concurrency,
		Logger:      quietLogger{},
		LogLevel:    asynq.FatalLevel,
	})

	before, err := r.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	m := env.BeginMeasure()
	t0 := m.T0
	if err := srv.Start(mux); err != nil {
		return Result{}, err
	}
	tEnd, waitErr := env.Target.WaitArrivals(ctx, total, fail.C)
	srv.Shutdown() // waits for in-flight handlers to be marked done
	if fail.err != nil {
		return Result{}, fail.err
	}
	if waitErr != nil {
		return Result{}, waitErr
	}
	after, err := r.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}

	insp := asynq.NewInspector(opt)
	qi, err := insp.GetQueueInfo("default")
	insp.Close()
	if err != nil {
		return Result{}, fmt.Errorf("inspect: %w", err)
	}
	if qi.Pending+qi.Active+qi.Retry+qi.Archived != 0 {
		return Result{}, fmt.Errorf("asynq queue not drained: pending=%d active=%d retry=%d archived=%d",
			qi.Pending, qi.Active, qi.Retry, qi.Archived)
	}

	res := throughputResult(total, t0, tEnd, before, after, m)
	res.Note, err = orderNote(env, expected)
	if err != nil {
		return Result{}, err
	}
	res.Note = fmt.Sprintf("c=%d, asynq defaults, %s", concurrency, res.Note)
	return res, nil
}
