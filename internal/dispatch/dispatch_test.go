package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

type env struct {
	t   *testing.T
	srv *redistest.Server
	st  *store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	t.Parallel()
	srv := redistest.Start(t)
	st, err := store.New(srv.Client(t), "htq:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, st: st}
}

type running struct {
	d      *dispatch.Dispatcher
	m      *metrics.Dispatcher
	reg    *prometheus.Registry // m's: a test reads the names /metrics exports
	cancel context.CancelFunc
	done   chan error
}

func (e *env) dispatcher(id string, tune func(*dispatch.Config)) *running {
	return e.dispatcherWith(id, e.client(deliver.Options{}), tune)
}

// client returns a delivery client with o, keeping the default
// dispatcher.max_response_bytes of an answer when o says nothing.
func (e *env) client(o deliver.Options) *deliver.Client {
	e.t.Helper()
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = config.DefaultMaxResponseBytes
	}
	c, err := deliver.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) dispatcherWith(id string, client *deliver.Client, tune func(*dispatch.Config)) *running {
	e.t.Helper()
	return e.dispatcherOn(id, e.st, client, tune)
}

// dispatcherOn starts a dispatcher on st (a store on another connection to
// the env's Redis, e.g. through a proxy).
func (e *env) dispatcherOn(id string, st *store.Store, client *deliver.Client, tune func(*dispatch.Config), before ...func(*dispatch.Dispatcher)) *running {
	e.t.Helper()
	cfg := dispatch.Config{
		ID: id, MaxQueues: 64, LeaseTTL: time.Second, RecoveryGrace: 200 * time.Millisecond,
		ShutdownGrace: 5 * time.Second, PollMin: 10 * time.Millisecond, PollMax: 100 * time.Millisecond, History: 5,
	}
	if tune != nil {
		tune(&cfg)
	}
	reg := prometheus.NewRegistry()
	m := metrics.NewDispatcher(reg)
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("HTQ_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("d", id)
	}
	d, err := dispatch.New(cfg, st, client, clock.Real{}, log, m)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range before {
		f(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, m: m, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	e.t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.cancel()
	err := <-r.done
	r.done <- err // let a second stop return
}

func (e *env) queue(name string, mut func(*task.QueueConfig)) {
	e.t.Helper()
	cfg := task.DefaultQueueConfig()
	if mut != nil {
		mut(&cfg)
	}
	if _, err := e.st.PutQueue(e.t.Context(), name, &cfg, store.PutCreate); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) push(queue string, urls ...string) []string {
	e.t.Helper()
	var ts []store.NewTask
	for _, u := range urls {
		ts = append(ts, store.NewTask{Spec: &task.Spec{Method: "GET", URL: u, CreatedMs: time.Now().UnixMilli()}})
	}
	res, err := e.st.Enqueue(e.t.Context(), queue, ts, store.EnqueueOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, r := range res.Tasks {
		ids = append(ids, r.ID)
	}
	return ids
}

// gate holds target handlers until opened; it opens by itself when the test
// ends (before the target closes), so a test that fails early cannot leave
// a handler blocked and the target's Close hanging.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) wait() { <-g.ch }
func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// queues creates queues q0 … q<n-1> with the default configuration.
func (e *env) queues(n int) {
	for i := range n {
		e.queue(fmt.Sprintf("q%d", i), nil)
	}
}

// waitRegistered waits until n dispatchers are live in the registry.
func (e *env) waitRegistered(n int) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("%d dispatcher(s) to register", n), 5*time.Second, func() bool {
		live, err := e.st.LiveDispatchers(e.t.Context())
		return err == nil && len(live) == n
	})
}

// waitHintsHeard waits until every partition's hint channel has exactly
// one subscriber: from then on, work on an idle queue reaches one
// dispatcher by its hint rather than by a poll (two would mean the
// dispatchers do not yet agree on who is whose first choice).
func (e *env) waitHintsHeard() {
	e.t.Helper()
	keys := store.NewKeys("htq:")
	chans := make([]string, task.Partitions)
	for p := range chans {
		chans[p] = keys.HintChannel(p)
	}
	rdb := e.srv.Client(e.t)
	waitFor(e.t, "every partition's hint channel to be subscribed once", 5*time.Second, func() bool {
		subs, err := rdb.PubSubShardNumSub(e.t.Context(), chans...).Result()
		if err != nil || len(subs) != len(chans) {
			return false
		}
		for _, n := range subs {
			if n != 1 {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	waitForOr(t, what, within, cond, nil)
}

// waitForOr is waitFor that says what it saw last (saw, when not nil) when
// it times out.
func waitForOr(t *testing.T, what string, within time.Duration, cond func() bool, saw func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			if saw != nil {
				t.Fatalf("timed out waiting for %s: %s", what, saw())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder is a target that records calls and their overlap per queue.
type recorder struct {
	mu       sync.Mutex
	calls    []string // "queue/i"
	inflight map[string]int
	maxIn    map[string]int
	handle   func(w http.ResponseWriter, r *http.Request) bool // true: handled
	srv      *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	rc := &recorder{inflight: map[string]int{}, maxIn: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.Header.Get("X-HTQ-Queue")
		rc.mu.Lock()
		rc.inflight[q]++
		rc.maxIn[q] = max(rc.maxIn[q], rc.inflight[q])
		h := rc.handle
		rc.mu.Unlock()
		if h == nil || !h(w, r) {
			_, _ = w.Write([]byte("ok"))
		}
		rc.mu.Lock()
		rc.inflight[q]--
		rc.calls = append(rc.calls, q+"/"+r.URL.Query().Get("i"))
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.calls)
}

func (rc *recorder) url(q string, i int) string {
	return fmt.Sprintf("%s/?q=%s&i=%d", rc.srv.URL, q, i)
}

func TestDispatchesInOrderAcrossDispatchers(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	for i := range 3 {
		e.dispatcher("d"+strconv.Itoa(i), nil)
	}
	const queues, per = 10, 30
	for q := range queues {
		name := "q" + strconv.Itoa(q)
		e.queue(name, nil)
		var urls []string
		for i := range per {
			urls = append(urls, rc.url(name, i))
		}
		e.push(name, urls...)
	}
	waitFor(t, "all calls", 20*time.Second, func() bool { return rc.count() >= queues*per })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	next := map[string]int{}
	for _, c := range rc.calls {
		q, i, _ := strings.Cut(c, "/")
		if atoi(i) != next[q] {
			t.Fatalf("queue %s: call %s came when %d was due", q, i, next[q])
		}
		next[q]++
	}
	if len(next) != queues {
		t.Fatalf("calls for %d queues, want %d", len(next), queues)
	}
	for q, n := range rc.maxIn {
		if n > 1 {
			t.Fatalf("queue %s had %d calls at once", q, n)
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func TestGracefulShutdownHandsQueuesBackAtOnce(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	release := newGate(t)
	var started atomic.Int32
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("i") == "0" {
			started.Add(1)
			release.wait()
		}
		return false
	}
	// a long task timeout: a dirty hand-back would make the next owner wait a minute
	e.queue("q", func(c *task.QueueConfig) { c.Timeout = task.Duration(time.Minute) })
	e.push("q", rc.url("q", 0), rc.url("q", 1), rc.url("q", 2))
	a := e.dispatcher("a", nil)
	waitFor(t, "first call", 5*time.Second, func() bool { return started.Load() == 1 })
	stopped := make(chan struct{})
	go func() { a.stop(); close(stopped) }()
	// Let the shutdown begin while the call runs. Readiness drops first; the
	// dispatcher leaves the registry of live dispatchers only once it is
	// draining (after its owners were told to start nothing new), so wait
	// for both.
	waitFor(t, "the shutdown to begin", 5*time.Second, func() bool {
		live, err := e.st.LiveDispatchers(t.Context())
		return err == nil && !slices.Contains(live, a.d.Consumer()) && !a.d.Running()
	})
	release.open() // the call in flight finishes within the grace period
	<-stopped
	if n := rc.count(); n != 1 {
		t.Fatalf("a draining dispatcher made %d calls, want only the one in flight", n)
	}
	start := time.Now()
	e.dispatcher("b", nil)
	waitFor(t, "the rest", 5*time.Second, func() bool { return rc.count() == 3 })
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the next dispatcher waited %v: the hand-back was not clean", took)
	}
}

func TestShutdownAbortsCallsAfterGrace(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	var calls atomic.Int32
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if calls.Add(1) == 1 {
			<-r.Context().Done() // hang until the caller gives up
		}
		return false
	}
	e.queue("q", func(c *task.QueueConfig) { c.Timeout = task.Duration(time.Second) })
	ids := e.push("q", rc.url("q", 0))
	a := e.dispatcher("a", func(c *dispatch.Config) { c.ShutdownGrace = 100 * time.Millisecond })
	waitFor(t, "the call", 5*time.Second, func() bool { return calls.Load() == 1 })
	a.stop()
	// the aborted call may still be running at the target, so the next owner
	// waits for its timeout (1s) plus the grace before calling it again
	start := time.Now()
	e.dispatcher("b", nil)
	waitFor(t, "redelivery", 10*time.Second, func() bool { return calls.Load() == 2 })
	if waited := time.Since(start); waited < 800*time.Millisecond {
		t.Fatalf("an aborted call was redelivered after %v, before its timeout", waited)
	}
	var last *store.TaskInfo
	waitForOr(t, "success", 15*time.Second, func() bool {
		ti, err := e.st.GetTask(t.Context(), ids[0])
		last = ti
		return err == nil && ti.State == task.StateSucceeded && ti.Attempts == 2
	}, func() string { return fmt.Sprintf("task %+v, %d calls", last, calls.Load()) })
}

func TestLostLeaseStopsTheOwner(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	gate := newGate(t)
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("i") == "0" {
			gate.wait()
		}
		return false
	}
	e.queue("q", nil)
	e.push("q", rc.url("q", 0), rc.url("q", 1))
	a := e.dispatcher("a", nil)
	waitFor(t, "owner", 5*time.Second, func() bool { return testutil.ToFloat64(a.m.OwnedQueues) == 1 })
	// someone else takes the queue over (as after a partition)
	rdb := e.srv.Client(t)
	k := e.st.Keys().Queue("q")
	rdb.Set(t.Context(), k.Lease, "intruder:999", time.Minute)
	rdb.HSet(t.Context(), k.Meta, "epoch", "999")
	gate.open()
	waitFor(t, "stale write counted", 5*time.Second, func() bool { return testutil.ToFloat64(a.m.StaleWrites) >= 1 })
	waitFor(t, "owner gone", 5*time.Second, func() bool { return testutil.ToFloat64(a.m.OwnedQueues) == 0 })
	if n := rc.count(); n != 1 {
		t.Fatalf("a deposed owner made %d calls, want 1", n)
	}
	if v := rdb.Get(t.Context(), k.Lease).Val(); v != "intruder:999" {
		t.Fatalf("the deposed owner touched the lease: %q", v)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		time.Sleep(20 * time.Millisecond) // the target is slow, so calls overlap
		return false
	}
	e.queue("q", func(c *task.QueueConfig) { c.Concurrency = 3 })
	var urls []string
	for i := range 30 {
		urls = append(urls, rc.url("q", i))
	}
	e.push("q", urls...)
	for i := range 3 {
		e.dispatcher("d"+strconv.Itoa(i), nil)
	}
	waitFor(t, "all calls", 10*time.Second, func() bool { return rc.count() == 30 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.maxIn["q"] != 3 {
		t.Fatalf("at most %d calls at once, want exactly 3", rc.maxIn["q"])
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	var n atomic.Int32
	var times []time.Time
	var mu sync.Mutex
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if n.Add(1) <= 2 {
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	}
	e.queue("q", func(c *task.QueueConfig) {
		c.Retry = task.RetryPolicy{MaxAttempts: 5, MinBackoff: task.Duration(100 * time.Millisecond), MaxBackoff: task.Duration(300 * time.Millisecond)}
	})
	ids := e.push("q", rc.url("q", 0), rc.url("q", 1))
	e.dispatcher("a", nil)
	waitFor(t, "success", 10*time.Second, func() bool {
		ti, err := e.st.GetTask(t.Context(), ids[0])
		return err == nil && ti.State == task.StateSucceeded
	})
	ti, _ := e.st.GetTask(t.Context(), ids[0])
	if ti.Attempts != 3 || len(ti.History) != 3 || ti.History[0].Status != 502 || ti.History[2].Status != 200 {
		t.Fatalf("task = %+v", ti)
	}
	// The target takes mu on every call: hold it only to read, never while
	// waiting for the next call.
	mu.Lock()
	gaps := []time.Duration{times[1].Sub(times[0]), times[2].Sub(times[1])}
	mu.Unlock()
	// backoff n is uniform in [100ms, min(300ms, 100ms·2^(n-1))]; the upper
	// bounds allow 600 ms for a loaded machine (the default policy's first
	// backoff, 1 s, would still be refused).
	const slack = 600 * time.Millisecond
	if gaps[0] < 100*time.Millisecond || gaps[0] > 200*time.Millisecond+slack || gaps[1] < 100*time.Millisecond || gaps[1] > 300*time.Millisecond+slack {
		t.Fatalf("backoff gaps %v outside the policy", gaps)
	}
	waitFor(t, "the next task", 5*time.Second, func() bool { return rc.count() == 4 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	order := append([]string(nil), rc.calls...)
	if !sort.SliceIsSorted(order, func(i, j int) bool { return order[i] < order[j] }) || order[3] != "q/1" {
		t.Fatalf("strict ordering broken: %v", order)
	}
}
