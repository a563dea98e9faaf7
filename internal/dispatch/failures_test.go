package dispatch_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

func (e *env) state(id string) *store.TaskInfo {
	e.t.Helper()
	ti, err := e.st.GetTask(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return ti
}

func (e *env) waitState(id string, want task.State) *store.TaskInfo {
	e.t.Helper()
	var ti *store.TaskInfo
	waitFor(e.t, "task "+id+" "+string(want), 15*time.Second, func() bool {
		ti = e.state(id)
		return ti.State == want
	})
	return ti
}

func TestPermanentFailureDiesAtOnce(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("i") == "0" {
			http.NotFound(w, r)
			return true
		}
		return false
	}
	e.queue("q", nil)
	ids := e.push("q", rc.url("q", 0), rc.url("q", 1))
	e.dispatcher("a", nil)
	ti := e.waitState(ids[0], task.StateDead)
	if ti.Attempts != 1 || ti.LastStatus != 404 || len(ti.History) != 1 {
		t.Fatalf("dead task = %+v", ti)
	}
	e.waitState(ids[1], task.StateSucceeded)
	dead, _, err := e.st.ListTasks(t.Context(), "q", task.StateDead, "", 10)
	if err != nil || len(dead) != 1 || dead[0].ID != ids[0] {
		t.Fatalf("dead letters = %v, %v", dead, err)
	}
}

func TestTargetCanEndRetriesWithDead(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("X-HTQ-Action", "dead")
		w.WriteHeader(http.StatusServiceUnavailable) // retryable, but the target says stop
		return true
	}
	e.queue("q", nil)
	ids := e.push("q", rc.url("q", 0))
	e.dispatcher("a", nil)
	if ti := e.waitState(ids[0], task.StateDead); ti.Attempts != 1 {
		t.Fatalf("attempts = %d, want 1", ti.Attempts)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	var mu sync.Mutex
	var at []time.Time
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	}
	e.queue("q", func(c *task.QueueConfig) {
		c.Retry = task.RetryPolicy{MaxAttempts: 3, MinBackoff: task.Duration(10 * time.Millisecond), MaxBackoff: task.Duration(time.Minute)}
	})
	ids := e.push("q", rc.url("q", 0))
	e.dispatcher("a", nil)
	e.waitState(ids[0], task.StateSucceeded)
	mu.Lock()
	defer mu.Unlock()
	if gap := at[1].Sub(at[0]); gap < 2*time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 2", gap)
	}
}

func TestOrderingStrictHoldsRelaxedStepsAside(t *testing.T) {
	for _, ord := range []task.Ordering{task.OrderingStrict, task.OrderingRelaxed} {
		t.Run(string(ord), func(t *testing.T) {
			e := newEnv(t)
			rc := newRecorder(t)
			var fails atomic.Int32
			rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Query().Get("i") == "0" && fails.Add(1) <= 2 {
					w.WriteHeader(http.StatusInternalServerError)
					return true
				}
				return false
			}
			e.queue("q", func(c *task.QueueConfig) {
				c.Ordering = ord
				c.Retry = task.RetryPolicy{MaxAttempts: 5, MinBackoff: task.Duration(300 * time.Millisecond), MaxBackoff: task.Duration(300 * time.Millisecond)}
			})
			ids := e.push("q", rc.url("q", 0), rc.url("q", 1))
			e.dispatcher("a", nil)
			e.promoter("q") // relaxed retries wait in the delayed set
			e.waitState(ids[0], task.StateSucceeded)
			e.waitState(ids[1], task.StateSucceeded)
			rc.mu.Lock()
			defer rc.mu.Unlock()
			firstOne := -1
			for i, c := range rc.calls {
				if c == "q/1" {
					firstOne = i
				}
			}
			// calls: 0 (fail), 0 (fail), 0 (ok), 1 in strict order; relaxed runs 1 while 0 waits
			if ord == task.OrderingStrict && firstOne != 3 {
				t.Fatalf("strict: calls %v, want task 1 after task 0 succeeded", rc.calls)
			}
			if ord == task.OrderingRelaxed && firstOne != 1 {
				t.Fatalf("relaxed: calls %v, want task 1 during task 0's backoff", rc.calls)
			}
		})
	}
}

func TestCancelRunningTaskIsNotRetried(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	gate := newGate(t)
	var calls atomic.Int32
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		calls.Add(1)
		gate.wait()
		w.WriteHeader(http.StatusInternalServerError) // would be retried
		return true
	}
	e.queue("q", func(c *task.QueueConfig) {
		c.Retry = task.RetryPolicy{MaxAttempts: 5, MinBackoff: task.Duration(10 * time.Millisecond), MaxBackoff: task.Duration(10 * time.Millisecond)}
	})
	ids := e.push("q", rc.url("q", 0))
	e.dispatcher("a", nil)
	waitFor(t, "the call", 5*time.Second, func() bool { return calls.Load() == 1 })
	if r, err := e.st.CancelTask(t.Context(), ids[0], time.Hour); err != nil || r != store.Cancelling {
		t.Fatalf("cancel = %v, %v", r, err)
	}
	gate.open()
	ti := e.waitState(ids[0], task.StateCancelled)
	if calls.Load() != 1 || len(ti.History) != 1 {
		t.Fatalf("a cancelled task was called %d times", calls.Load())
	}
}

func TestRateLimitAcrossDispatchers(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	starts := &startTimes{}
	rc.handle = starts.handle
	const rate, burst = 10.0, 2
	e.queue("q", func(c *task.QueueConfig) { c.Rate, c.Burst, c.Concurrency = rate, burst, 4 })
	var urls []string
	for i := range 30 {
		urls = append(urls, rc.url("q", i))
	}
	e.push("q", urls...)
	// The owner changes as dispatchers yield, stop and start; the bucket
	// lives in Redis, so no new owner gets a fresh burst.
	var ds []*running
	for i := range 3 {
		ds = append(ds, e.dispatcher("d"+strconv.Itoa(i), func(c *dispatch.Config) { c.YieldAfter = 200 * time.Millisecond }))
	}
	waitFor(t, "a third of the calls", 10*time.Second, func() bool { return rc.count() >= 10 })
	ds[0].stop()
	ds[1].stop()
	waitFor(t, "two thirds of the calls", 10*time.Second, func() bool { return rc.count() >= 20 })
	e.dispatcher("d3", nil)
	ds[2].stop()
	waitFor(t, "all calls", 20*time.Second, func() bool { return rc.count() == 30 })
	starts.check(t, rate, burst, 30)
}

// Retries are calls like any other: a strict queue's retries wait for
// rate tokens too, however short their backoff.
func TestRateLimitCoversRetries(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	starts := &startTimes{}
	var mu sync.Mutex
	tries := map[string]int{}
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		starts.handle(w, r)
		mu.Lock()
		defer mu.Unlock()
		i := r.URL.Query().Get("i")
		tries[i]++
		if tries[i] <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	}
	const rate, burst = 10.0, 1
	e.queue("q", func(c *task.QueueConfig) {
		c.Rate, c.Burst = rate, burst
		c.Retry = task.RetryPolicy{MaxAttempts: 5, MinBackoff: task.Duration(time.Millisecond), MaxBackoff: task.Duration(2 * time.Millisecond)}
	})
	var urls []string
	for i := range 10 {
		urls = append(urls, rc.url("q", i))
	}
	ids := e.push("q", urls...)
	e.dispatcher("a", nil)
	for _, id := range ids {
		e.waitState(id, task.StateSucceeded)
	}
	starts.check(t, rate, burst, 30)
}

// startTimes records when calls start, to check them against a rate limit.
type startTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (s *startTimes) handle(http.ResponseWriter, *http.Request) bool {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	return false
}

// check fails unless there were n starts and, in any window of length w, at
// most burst + rate·w of them.
func (s *startTimes) check(t *testing.T, rate float64, burst, n int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.at) != n {
		t.Fatalf("%d calls, want %d", len(s.at), n)
	}
	for i := range s.at {
		for j := i; j < len(s.at); j++ {
			// The starts are seen at the target: a call can arrive up to
			// 100 ms late on a loaded machine (a first dial, a descheduled
			// process), bunching it with later ones. A fresh burst per
			// owner, the bug this guards against, is caught by the total
			// time below.
			w := s.at[j].Sub(s.at[i]).Seconds() + 0.1
			if k := float64(j - i + 1); k > float64(burst)+rate*w+1 { // +1: clock granularity between Redis and here
				t.Fatalf("%v calls within %.3fs: over the rate of %v/s with burst %d", k, w, rate, burst)
			}
		}
	}
	if least := time.Duration(float64(n-burst) / rate * float64(time.Second) * 0.9); s.at[n-1].Sub(s.at[0]) < least {
		t.Fatalf("%d calls at %v/s took %v, want at least %v", n, rate, s.at[n-1].Sub(s.at[0]), least)
	}
}

func TestEgressDenialIsPermanentAndVisible(t *testing.T) {
	e := newEnv(t)
	g, err := deliver.NewGuard(deliver.DefaultDeny, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	e.queue("q", nil)
	ids := e.push("q", "http://169.254.169.254/latest/meta-data/")
	e.dispatcherWith("a", e.client(deliver.Options{Guard: g}), nil)
	ti := e.waitState(ids[0], task.StateDead)
	if ti.Attempts != 1 || len(ti.History) != 1 || ti.History[0].Error == "" {
		t.Fatalf("denied task = %+v", ti)
	}
	if want := "egress denied"; !contains(ti.History[0].Error, want) {
		t.Fatalf("history error %q does not say %q", ti.History[0].Error, want)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// promoter does the scheduler's job for one queue's partition in tests that
// run no scheduler.
func (e *env) promoter(queue string) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			_, _ = e.st.Promote(context.Background(), task.Partition(queue), 100)
		}
	}()
	e.t.Cleanup(func() { close(stop); <-done })
}
