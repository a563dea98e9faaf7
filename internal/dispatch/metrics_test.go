package dispatch_test

import (
	"context"
	"fmt"
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
	a := e.dispatcherWith("a", e.client(deliver.Options{Guard: g, DialTimeout: time.Second}), nil)
	// the call is counted before its result is recorded, the final state after
	waitFor(t, "three dead tasks", 10*time.Second, func() bool {
		return testutil.ToFloat64(a.m.Finished.WithLabelValues("dead")) == 3
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
// gatedWriter holds an owner's record of its first call until a gate
// opens: the owner is frozen between its call and its record.
type gatedWriter struct {
	dispatch.QueueWriter
	gate *gate
	held atomic.Bool
}

func (g *gatedWriter) Complete(ctx context.Context, c *store.Completion) (*store.Next, error) {
	if g.held.CompareAndSwap(false, true) {
		g.gate.wait()
	}
	return g.QueueWriter.Complete(ctx, c)
}

func TestMetricsCountTakeoverLostLeaseAndStaleWrite(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	release := newGate(t)
	e.queue("q", func(c *task.QueueConfig) { c.Timeout = task.Duration(100 * time.Millisecond) })
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
	var gw *gatedWriter
	a := e.dispatcherOn("a", stA, e.client(deliver.Options{}), nil, func(d *dispatch.Dispatcher) {
		dispatch.WrapWriters(d, func(w dispatch.QueueWriter) dispatch.QueueWriter {
			gw = &gatedWriter{QueueWriter: w, gate: release}
			return gw
		})
	})
	// a calls task 0, then freezes before recording it, and loses Redis:
	// its lease runs out and b takes the queue over, past the call's
	// deadline plus the recovery grace.
	waitFor(t, "the first call", 5*time.Second, func() bool { return rc.count() == 1 })
	if v := testutil.ToFloat64(a.m.Leases.WithLabelValues(metrics.LeaseTaken)); v != 1 {
		t.Fatalf("first owner: leases taken = %v, want 1", v)
	}
	proxy.Cut()
	b := e.dispatcher("b", nil)
	waitFor(t, "the takeover", 10*time.Second, func() bool {
		return testutil.ToFloat64(b.m.Leases.WithLabelValues(metrics.LeaseTakeover)) == 1
	})
	waitFor(t, "the new owner's calls", 10*time.Second, func() bool { return rc.count() == 4 })

	proxy.Restore()
	release.open() // a thaws and records its call: refused
	waitFor(t, "the stale write", 10*time.Second, func() bool {
		return testutil.ToFloat64(a.m.StaleWrites) == 1 &&
			testutil.ToFloat64(a.m.Leases.WithLabelValues(metrics.LeaseLost)) == 1 &&
			testutil.ToFloat64(a.m.OwnedQueues) == 0
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
