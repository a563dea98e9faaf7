package dispatch_test

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/htq/htq/internal/task"
)

// holdsFor fails if cond becomes true within d. It is the negative check of
// a test: keep d short.
func holdsFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	end := time.After(d)
	for {
		if !cond() {
			t.Fatalf("%s did not hold for %v", what, d)
		}
		select {
		case <-end:
			return
		case <-tick.C:
		}
	}
}

// Pausing a queue (what POST /queues/{name}/pause does) lets the call in
// flight finish and starts no other until the queue is resumed; then the
// tasks run, in order.
func TestPauseStopsDispatchUntilResumed(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	release := newGate(t)
	var started atomic.Int32
	rc.handle = func(w http.ResponseWriter, r *http.Request) bool {
		started.Add(1)
		if r.URL.Query().Get("i") == "0" {
			release.wait()
		}
		return false
	}
	e.queue("q", nil)
	ids := e.push("q", rc.url("q", 0), rc.url("q", 1)) // 1 waits in the stream
	a := e.dispatcher("a", nil)
	waitFor(t, "the first call", 5*time.Second, func() bool { return started.Load() == 1 })

	if err := e.st.SetPaused(t.Context(), "q", true); err != nil {
		t.Fatal(err)
	}
	var urls []string
	for i := 2; i < 5; i++ {
		urls = append(urls, rc.url("q", i))
	}
	ids = append(ids, e.push("q", urls...)...) // enqueued while paused
	release.open()                             // the call in flight finishes
	e.waitState(ids[0], task.StateSucceeded)
	waitFor(t, "the owner to let the paused queue go", 5*time.Second, func() bool {
		return testutil.ToFloat64(a.m.OwnedQueues) == 0
	})
	holdsFor(t, "no call while paused", 300*time.Millisecond, func() bool { return started.Load() == 1 })
	if qi, err := e.st.GetQueue(t.Context(), "q"); err != nil || !qi.Paused || qi.Counts.Queued != 4 {
		t.Fatalf("paused queue = %+v, %v; want paused with 4 queued", qi, err)
	}

	if err := e.st.SetPaused(t.Context(), "q", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all calls", 10*time.Second, func() bool { return rc.count() == 5 })
	rc.mu.Lock()
	calls := append([]string(nil), rc.calls...)
	rc.mu.Unlock()
	for i, c := range calls {
		if want := "q/" + strconv.Itoa(i); c != want {
			t.Fatalf("calls %v: call %d was %s, want %s", calls, i, c, want)
		}
	}
	for _, id := range ids {
		if ti := e.waitState(id, task.StateSucceeded); ti.Attempts != 1 {
			t.Fatalf("task %s took %d attempts, want 1", id, ti.Attempts)
		}
	}
}
