package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
	"github.com/htq/htq/internal/testcluster"
)

// observed is a running dispatcher with the registry its metrics are on, so
// a test reads them by the names /metrics exports.
type observed struct {
	*running
	reg *prometheus.Registry
}

// observedDispatcher starts a dispatcher as dispatcherWith does, keeping its
// registry. st nil means the env's store; client nil, a plain client.
func (e *env) observedDispatcher(id string, st *store.Store, client *deliver.Client) *observed {
	e.t.Helper()
	if st == nil {
		st = e.st
	}
	if client == nil {
		client = deliver.New(deliver.Options{})
	}
	cfg := dispatch.Config{
		ID: id, MaxQueues: 64, LeaseTTL: time.Second, RecoveryGrace: 200 * time.Millisecond,
		ShutdownGrace: 5 * time.Second, PollMin: 10 * time.Millisecond, PollMax: 100 * time.Millisecond, History: 5,
	}
	reg := prometheus.NewRegistry()
	m := metrics.NewDispatcher(reg)
	d := dispatch.New(cfg, st, client, clock.Real{}, slog.New(slog.DiscardHandler), m)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	e.t.Cleanup(r.stop)
	return &observed{running: r, reg: reg}
}

// series returns the value reg exports for name{labels} (label pairs as
// "key", "value", ...), or -1 when it exports no such series.
func series(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// expectSeries fails unless reg exports exactly want (exposition text
// without HELP lines) for the named metrics.
func expectSeries(t *testing.T, who string, reg prometheus.Gatherer, want string, names ...string) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, mf := range mfs { // the help texts are not what is under test
		if slices.Contains(names, mf.GetName()) {
			fmt.Fprintf(&text, "# HELP %s %s\n", mf.GetName(), mf.GetHelp())
		}
	}
	text.WriteString(want)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(text.String()), names...); err != nil {
		t.Errorf("%s metrics:\n%v", who, err)
	}
}

func TestMetricsCountEgressDenials(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	// loopback is allowed, but the deny list (checked first) covers it
	g, err := deliver.NewGuard(append(append([]string(nil), deliver.DefaultDeny...), "127.0.0.0/8"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	e.queue("q", nil)
	e.push("q",
		"http://169.254.169.254/latest/meta-data/",
		"http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", // the same, through NAT64
		rc.url("q", 0), // the recorder is on 127.0.0.1
	)
	a := e.observedDispatcher("a", nil, deliver.New(deliver.Options{Guard: g, DialTimeout: time.Second}))
	// the call is counted before its result is recorded, the final state after
	waitFor(t, "three dead tasks", 10*time.Second, func() bool {
		return series(t, a.reg, "htq_dispatcher_tasks_finished_total", "state", "dead") == 3
	})
	expectSeries(t, "dispatcher", a.reg, `
# TYPE htq_dispatcher_calls_total counter
htq_dispatcher_calls_total{outcome="egress_denied"} 3
htq_dispatcher_calls_total{outcome="permanent"} 0
htq_dispatcher_calls_total{outcome="retry"} 0
htq_dispatcher_calls_total{outcome="success"} 0
htq_dispatcher_calls_total{outcome="timeout"} 0
# TYPE htq_dispatcher_tasks_finished_total counter
htq_dispatcher_tasks_finished_total{state="cancelled"} 0
htq_dispatcher_tasks_finished_total{state="dead"} 3
htq_dispatcher_tasks_finished_total{state="succeeded"} 0
`, "htq_dispatcher_calls_total", "htq_dispatcher_tasks_finished_total")
	if n := rc.count(); n != 0 {
		t.Fatalf("the target behind a denied address got %d calls", n)
	}
	// the constants the code counts with are the exported label values
	if v := testutil.ToFloat64(a.m.Calls.WithLabelValues(metrics.OutcomeEgressDenied)); v != 3 {
		t.Fatalf("Calls[%s] = %v", metrics.OutcomeEgressDenied, v)
	}
}

// An owner cut off from Redis cannot renew its lease; a second dispatcher
// takes the queue over once the lease expired and the entry in flight can no
// longer be running. When the first owner's call ends and the partition has
// healed, its write is refused as stale.
func TestMetricsCountTakeoverLostLeaseAndStaleWrite(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	release := newGate(t)
	var firstCalls atomic.Int32
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("i") == "0" && firstCalls.Add(1) == 1 {
			release.wait() // the first owner's call outlives its lease
		}
		return false
	}
	// a long task timeout: the first owner's call is not cut short
	e.queue("q", func(c *task.QueueConfig) { c.Timeout = task.Duration(time.Minute) })
	ids := e.push("q", rc.url("q", 0), rc.url("q", 1), rc.url("q", 2))

	proxy := testcluster.NewProxy(t, e.srv.Addr())
	rdbA := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	t.Cleanup(func() { _ = rdbA.Close() })
	stA, err := store.New(rdbA, "htq:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if err := stA.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := e.observedDispatcher("a", stA, nil)
	waitFor(t, "the first call", 5*time.Second, func() bool { return firstCalls.Load() == 1 })
	if v := series(t, a.reg, "htq_dispatcher_leases_total", "event", metrics.LeaseTaken); v != 1 {
		t.Fatalf("first owner: leases taken = %v, want 1", v)
	}

	proxy.Cut() // a can no longer renew
	// A new owner waits for the task timeout plus the recovery grace before
	// it recovers an entry whose call may still run; shorten the timeout so
	// the takeover happens while a's call is still running.
	cfg := task.DefaultQueueConfig()
	cfg.Timeout = task.Duration(100 * time.Millisecond)
	if _, err := e.st.PutQueue(t.Context(), "q", &cfg, store.PutUpdate); err != nil {
		t.Fatal(err)
	}
	b := e.observedDispatcher("b", nil, nil)
	waitFor(t, "the takeover", 10*time.Second, func() bool {
		return series(t, b.reg, "htq_dispatcher_leases_total", "event", metrics.LeaseTakeover) == 1
	})
	waitFor(t, "the new owner's calls", 10*time.Second, func() bool { return rc.count() == 3 })

	proxy.Restore()
	release.open() // a's call ends; recording it is refused
	waitFor(t, "the stale write", 10*time.Second, func() bool {
		return series(t, a.reg, "htq_dispatcher_stale_writes_total") == 1 &&
			series(t, a.reg, "htq_dispatcher_leases_total", "event", metrics.LeaseLost) == 1 &&
			series(t, a.reg, "htq_dispatcher_owned_queues") == 0
	})
	expectSeries(t, "first owner", a.reg, `
# TYPE htq_dispatcher_leases_total counter
htq_dispatcher_leases_total{event="lost"} 1
htq_dispatcher_leases_total{event="taken"} 1
htq_dispatcher_leases_total{event="takeover"} 0
# TYPE htq_dispatcher_stale_writes_total counter
htq_dispatcher_stale_writes_total 1
`, "htq_dispatcher_leases_total", "htq_dispatcher_stale_writes_total")
	expectSeries(t, "new owner", b.reg, `
# TYPE htq_dispatcher_leases_total counter
htq_dispatcher_leases_total{event="lost"} 0
htq_dispatcher_leases_total{event="taken"} 0
htq_dispatcher_leases_total{event="takeover"} 1
# TYPE htq_dispatcher_stale_writes_total counter
htq_dispatcher_stale_writes_total 0
`, "htq_dispatcher_leases_total", "htq_dispatcher_stale_writes_total")
	// a's late success wrote nothing: task 0's record is b's call alone
	ti := e.state(ids[0])
	if ti.State != task.StateSucceeded || ti.Attempts != 2 || len(ti.History) != 1 || ti.History[0].Attempt != 2 {
		t.Fatalf("task 0 = %+v, want succeeded on the recovered (second) attempt only", ti)
	}
}
