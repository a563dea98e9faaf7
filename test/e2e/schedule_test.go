package e2e

import (
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
)

// TestScheduleOverlapSkipSlowTarget: a schedule firing every second whose
// target takes 2.5 s, on a queue that would run 3 calls at once. With
// overlap "skip" no run starts while the previous run's task is queued or
// active, so its calls never overlap and the skipped occurrences are
// counted; the same schedule with overlap "allow" on a twin queue does
// overlap, which shows the target would see it.
func TestScheduleOverlapSkipSlowTarget(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 1})
	tg := testcluster.NewTarget(t)
	tg.Respond = func(w http.ResponseWriter, _ *http.Request, _ int) {
		time.Sleep(2500 * time.Millisecond)
		_, _ = w.Write([]byte("ok"))
	}
	hc := c.Client()
	for _, q := range []string{"skipq", "allowq"} {
		concurrency := 3
		if _, created, err := hc.PutQueue(t.Context(), q, client.QueueSettings{Concurrency: &concurrency, Timeout: client.D(10 * time.Second)}); err != nil || !created {
			t.Fatalf("PUT queue %s: created=%v %v", q, created, err)
		}
	}
	begin := time.Now()
	for name, overlap := range map[string]string{"skipq": "skip", "allowq": "allow"} {
		s := client.ScheduleRequest{Queue: name, Cron: "@every 1s", Overlap: overlap,
			Task: client.TaskRequest{URL: tg.URL + "/" + name}}
		if _, _, err := hc.PutSchedule(t.Context(), name, s); err != nil {
			t.Fatalf("PUT schedule %s: %v", name, err)
		}
	}
	// enough runs to see both policies: 5 finished calls of the allow twin
	// (about 7.5 s) and 2 of the skip schedule
	c.WaitFor("both schedules to run", 30*time.Second, func() bool {
		n := map[string]int{}
		for _, call := range tg.Calls() {
			n[call.Path]++
		}
		return n["/allowq"] >= 5 && n["/skipq"] >= 2
	})
	window := time.Since(begin)
	for _, name := range []string{"skipq", "allowq"} {
		if _, err := hc.PauseSchedule(t.Context(), name); err != nil {
			t.Logf("pause %s: %v", name, err)
		}
	}
	leader := c.Procs("scheduler")[0]
	skipped := leader.Metric("htq_scheduler_schedule_runs_total", "outcome", "skipped_overlap")
	c.WaitFor("calls in progress to end", 15*time.Second, func() bool { return tg.InFlight() == 0 })

	byPath := map[string][]testcluster.Call{}
	for _, call := range tg.Calls() {
		if call.Header.Get("X-HTQ-Schedule") == "" || call.Header.Get("X-HTQ-Scheduled-At") == "" {
			t.Errorf("call %s without the schedule headers", call.Path)
		}
		byPath[call.Path] = append(byPath[call.Path], call)
	}
	overlaps := func(calls []testcluster.Call) int {
		sort.Slice(calls, func(i, j int) bool { return calls[i].Start.Before(calls[j].Start) })
		n := 0
		for i := 1; i < len(calls); i++ {
			if calls[i].Start.Before(calls[i-1].End) {
				n++
			}
		}
		return n
	}
	skipCalls, allowCalls := byPath["/skipq"], byPath["/allowq"]
	if len(skipCalls) < 2 {
		t.Fatalf("skip: %d calls in %v, want at least 2 (one run after another)", len(skipCalls), window)
	}
	if n := overlaps(skipCalls); n != 0 {
		t.Errorf("overlap skip: %d calls started while the previous one ran", n)
	}
	// one run at a time: at most one start per 2.5 s call, plus the one
	// running when the schedule was paused
	if most := int(window/(2500*time.Millisecond)) + 1; len(skipCalls) > most {
		t.Errorf("overlap skip: %d calls of 2.5 s in %v (at most %d one after another): runs were not skipped", len(skipCalls), window, most)
	}
	if skipped < 3 {
		t.Errorf("htq_scheduler_schedule_runs_total{outcome=skipped_overlap} = %v, want at least 3", skipped)
	}
	if n := overlaps(allowCalls); n == 0 {
		t.Errorf("overlap allow: %d calls, none overlapping: the test cannot tell skip from allow", len(allowCalls))
	}
}
