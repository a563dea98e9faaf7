package dispatch_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// The regression tests of the dispatcher cluster's cost and fairness fixes
// (issue 11); each failed before its fix.

// commandCalls returns how often Redis ran a command (INFO commandstats).
func commandCalls(t *testing.T, rdb *redis.Client, cmd string) int {
	t.Helper()
	info, err := rdb.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// TestWakeUpsCostNoScan: a task that wakes an idle queue costs a few
// commands, not a read of every partition's ready index (which an owner's
// exit used to trigger).
func TestWakeUpsCostNoScan(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	const n = 40
	e.queues(n)
	e.dispatcher("a", nil)
	rdb := e.srv.Client(t)
	rdb.ConfigResetStat(t.Context())
	for i := range n {
		q := fmt.Sprintf("q%d", i)
		e.push(q, rc.url(q, 0))
		waitFor(t, "the call of "+q, 5*time.Second, func() bool { return rc.count() == i+1 })
	}
	// A poll every PollMax (100 ms here) reads the due index; the task-wise
	// cost is the partition's settle. 256 reads per wake-up before.
	if reads := commandCalls(t, rdb, "zrangebyscore"); reads > 10*n {
		t.Fatalf("%d ready-index reads for %d wake-ups", reads, n)
	}
}

// TestPickUpIsByHint: with the safety-net poll ten seconds apart, idle
// queues' work is picked up at once, through hints, by one dispatcher alone
// and by one of three.
func TestPickUpIsByHint(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d dispatchers", n), func(t *testing.T) {
			e := newEnv(t)
			rc := newRecorder(t)
			for i := range n {
				e.dispatcher(fmt.Sprintf("d%d", i), func(c *dispatch.Config) { c.PollMax = 10 * time.Second })
			}
			e.waitRegistered(n)
			e.waitHintsHeard()
			for i := range 5 {
				q := fmt.Sprintf("q%d", i)
				e.queue(q, nil)
				start := time.Now()
				e.push(q, rc.url(q, 0))
				waitFor(t, "the call of "+q, 5*time.Second, func() bool { return rc.count() == i+1 })
				if took := time.Since(start); took > 2*time.Second {
					t.Fatalf("%s picked up after %v: not by hint", q, took)
				}
			}
		})
	}
}

// TestAWakeUpGoesToOneDispatcher: the hint of a queue that got work reaches
// the first choice of its partition only, so four dispatchers make about
// one claim per wake-up, not four.
func TestAWakeUpGoesToOneDispatcher(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	const n = 40
	e.queues(n)
	var ds []*running
	for i := range 4 {
		ds = append(ds, e.dispatcher(fmt.Sprintf("d%d", i), nil))
	}
	e.waitRegistered(4)
	e.waitHintsHeard() // every dispatcher sees the others: each partition has one listener
	claims := func() float64 {
		var sum float64
		for _, d := range ds {
			for _, s := range []string{"ok", "owned", "empty", "wait", "gone", "paused"} {
				sum += testutil.ToFloat64(d.m.Claims.WithLabelValues(s))
			}
		}
		return sum
	}
	before := claims()
	for i := range n {
		q := fmt.Sprintf("q%d", i)
		e.push(q, rc.url(q, 0))
		waitFor(t, "the call of "+q, 5*time.Second, func() bool { return rc.count() == i+1 })
	}
	if got := claims() - before; got > n*3/2 {
		t.Fatalf("%v claims for %d wake-ups with 4 dispatchers: hints reach more than one", got, n)
	}
}

// TestNewWorkDoesNotWaitBehindALongCall: with one long call in flight and
// free concurrency, a new task of the queue starts at once.
func TestNewWorkDoesNotWaitBehindALongCall(t *testing.T) {
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
	e.queue("q", func(c *task.QueueConfig) { c.Concurrency = 3; c.Timeout = task.Duration(time.Minute) })
	e.dispatcher("a", nil)
	e.push("q", rc.url("q", 0))
	waitFor(t, "the long call", 5*time.Second, func() bool { return started.Load() == 1 })
	time.Sleep(100 * time.Millisecond) //nolint:forbidigo // the owner settles into waiting for its call
	e.push("q", rc.url("q", 1))
	waitFor(t, "the new task, while the long call runs", 2*time.Second, func() bool { return rc.count() == 1 })
	release.open()
}

// TestARateWaitFreesTheSlot: an owner waiting for a rate token with nothing
// in flight hands its queue back, so a dispatcher whose slots are all held
// by slow queues still serves the others.
func TestARateWaitFreesTheSlot(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	e.queue("slow", func(c *task.QueueConfig) { c.Rate, c.Burst = 0.2, 1 }) // a call every 5 s
	e.queue("other", nil)
	e.dispatcher("a", func(c *dispatch.Config) { c.MaxQueues = 1 })
	e.push("slow", rc.url("slow", 0), rc.url("slow", 1), rc.url("slow", 2))
	waitFor(t, "the slow queue's first call", 5*time.Second, func() bool { return rc.count() == 1 })
	e.push("other", rc.url("other", 0))
	waitFor(t, "the other queue, while the slow one waits for tokens", 3*time.Second, func() bool { return rc.count() == 2 })
}

// TestNoYieldWhileOthersHaveRoom: a dispatcher without a free slot does not
// make its queues take turns when another dispatcher has room for the
// waiting work.
func TestNoYieldWhileOthersHaveRoom(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	var busyCalls atomic.Int32
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("X-HTQ-Queue") == "busy" {
			busyCalls.Add(1)
			time.Sleep(5 * time.Millisecond) //nolint:forbidigo // a target that takes its time
		}
		return false
	}
	e.queue("busy", nil)
	var urls []string
	for i := range 2000 {
		urls = append(urls, rc.url("busy", i))
	}
	e.push("busy", urls...)
	// A short yield time: were a to yield while b has room, it would do so
	// about fifteen times during the trickle, far above the slack allowed
	// below for leases lost to a loaded machine.
	a := e.dispatcher("a", func(c *dispatch.Config) { c.MaxQueues, c.YieldAfter = 1, 200*time.Millisecond })
	waitFor(t, "a to take the busy queue", 5*time.Second, func() bool { return busyCalls.Load() > 0 })
	b := e.dispatcher("b", func(c *dispatch.Config) { c.MaxQueues = 64 })
	// Idle queues get work, one every 50 ms for 3 s (longer than YieldAfter):
	// whatever partition each is in, b has room for it.
	const n = 60
	for i := range n {
		q := fmt.Sprintf("q%d", i)
		e.queue(q, nil)
		e.push(q, rc.url(q, 0))
		time.Sleep(50 * time.Millisecond) //nolint:forbidigo // a steady trickle of wake-ups
	}
	waitFor(t, "the trickle's calls", 10*time.Second, func() bool { return rc.count()-int(busyCalls.Load()) >= n })
	if busyCalls.Load() >= 2000 {
		t.Fatal("the busy queue finished during the trickle: the test proves nothing")
	}
	taken := testutil.ToFloat64(a.m.Leases.WithLabelValues(metrics.LeaseTaken)) +
		testutil.ToFloat64(b.m.Leases.WithLabelValues(metrics.LeaseTaken))
	if taken > n+1+3 {
		t.Fatalf("queues were taken %v times for %d wake-ups and one busy queue: the busy queue yielded while b had room", taken, n)
	}
}

// TestAHintWithoutASlotIsHandedBack: a wake-up whose hint reached a
// dispatcher is out of the pollers' sight for store.HintGrace; when that
// dispatcher has no free slot, it hands the queue back at once, so the queue
// is taken as soon as a slot frees, not a grace later.
func TestAHintWithoutASlotIsHandedBack(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	release := newGate(t)
	var started atomic.Int32
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("X-HTQ-Queue") == "long" {
			started.Add(1)
			release.wait()
		}
		return false
	}
	e.queue("long", nil)
	e.queue("next", nil)
	e.dispatcher("a", func(c *dispatch.Config) { c.MaxQueues, c.PollMax = 1, 10*time.Second })
	e.waitRegistered(1)
	e.waitHintsHeard()
	e.push("long", rc.url("long", 0))
	waitFor(t, "the long call", 5*time.Second, func() bool { return started.Load() == 1 })
	e.push("next", rc.url("next", 0))  // its hint finds no slot
	time.Sleep(100 * time.Millisecond) //nolint:forbidigo // the hint is handled
	freed := time.Now()
	release.open()
	waitFor(t, "both calls", 5*time.Second, func() bool { return rc.count() == 2 })
	if took := time.Since(freed); took > store.HintGrace/2 {
		t.Fatalf("the waiting queue was taken %v after the slot freed: it waited out the hint's grace", took)
	}
}
