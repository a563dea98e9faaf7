package schedule_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/recur"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/schedule"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// fireEnv is a store and a scheduler on a fake clock; tests fire by
// calling FireDue after moving the clock.
type fireEnv struct {
	t   *testing.T
	ctx context.Context
	clk *clock.Fake
	st  *store.Store
	s   *schedule.Scheduler
	m   *metrics.Scheduler
}

func newFireEnv(t *testing.T, now string) *fireEnv {
	t.Helper()
	srv := redistest.Start(t)
	clk := clock.NewFake(parseTime(t, now))
	st, err := store.New(srv.Client(t), "htq:", clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := metrics.NewScheduler(prometheus.NewRegistry())
	s, err := schedule.New(schedule.Config{LockTTL: time.Second, PollInterval: time.Second, PromoteBatch: 100,
		JanitorInterval: time.Minute, MissedGrace: time.Second}, st, clk, slog.New(slog.DiscardHandler), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := task.DefaultQueueConfig()
	if _, err := st.PutQueue(t.Context(), "q", &cfg, store.PutCreate); err != nil {
		t.Fatal(err)
	}
	return &fireEnv{t: t, ctx: t.Context(), clk: clk, st: st, s: s, m: m}
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// put stores a schedule on queue q, as the API does.
func (e *fireEnv) put(def recur.Schedule) *recur.Schedule {
	e.t.Helper()
	if def.Queue == "" {
		def.Queue = "q"
	}
	if def.Spec == nil {
		def.Spec = &task.Spec{Method: "POST", URL: "http://example.test/hook"}
	}
	p, err := def.Normalize()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.PutSchedule(e.ctx, &def, def.First(p, e.clk.Now()), 0); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.FlushDue(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return &def
}

// fireAt moves the clock to at and fires what is due.
func (e *fireEnv) fireAt(at string) {
	e.t.Helper()
	e.clk.Set(parseTime(e.t, at))
	e.s.FireDue(e.ctx)
	if err := e.st.FlushDue(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// runs returns the X-HTQ-Scheduled-At of every task in queue q, in order.
func (e *fireEnv) runs() []string {
	e.t.Helper()
	var out []string
	for _, state := range []task.State{task.StateQueued, task.StateScheduled} {
		tis, _, err := e.st.ListTasks(e.ctx, "q", state, "", 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ti := range tis {
			for _, h := range ti.Spec.Header {
				if h.Name == recur.ScheduledAtHeader {
					out = append(out, h.Value)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func (e *fireEnv) count(outcome string) float64 {
	return testutil.ToFloat64(e.m.ScheduleRuns.WithLabelValues(outcome))
}

func (e *fireEnv) wantRuns(want ...string) {
	e.t.Helper()
	got := e.runs()
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		e.t.Fatalf("runs %v, want %v", got, want)
	}
}

func TestFiresOnTimeWithHeaders(t *testing.T) {
	t.Parallel()
	e := newFireEnv(t, "2026-01-01T10:00:30Z")
	e.put(recur.Schedule{Name: "tick", Cron: "* * * * *"})
	e.fireAt("2026-01-01T10:00:59Z")
	e.wantRuns()
	e.fireAt("2026-01-01T10:01:00.004Z")
	e.wantRuns("2026-01-01T10:01:00Z")
	tis, _, err := e.st.ListTasks(e.ctx, "q", task.StateQueued, "", 10)
	if err != nil || len(tis) != 1 {
		t.Fatalf("tasks %v, %v", tis, err)
	}
	var name string
	for _, h := range tis[0].Spec.Header {
		if h.Name == recur.ScheduleHeader {
			name = h.Value
		}
	}
	if name != "tick" {
		t.Errorf("X-HTQ-Schedule %q, want tick", name)
	}
	if got := e.count(metrics.RunFired); got != 1 {
		t.Errorf("fired %v, want 1", got)
	}
	if n := testutil.CollectAndCount(e.m.ScheduleLateness); n != 1 {
		t.Errorf("lateness histogram: %d series", n)
	}
	// Firing again at the same instant creates nothing more.
	e.fireAt("2026-01-01T10:01:00.500Z")
	e.wantRuns("2026-01-01T10:01:00Z")
}

// TestMissedPolicies: every scheduler was down from 10:00:30 to 10:10:30;
// an every-minute schedule missed 10 instants (10:01 … 10:10).
func TestMissedPolicies(t *testing.T) {
	t.Parallel()
	all := []string{"2026-01-01T10:05:00Z", "2026-01-01T10:06:00Z", "2026-01-01T10:07:00Z",
		"2026-01-01T10:08:00Z", "2026-01-01T10:09:00Z", "2026-01-01T10:10:00Z"}
	for _, c := range []struct {
		missed  string
		want    []string
		nMissed float64
	}{
		{recur.MissedSkip, nil, 10},
		{recur.MissedRunOnce, []string{"2026-01-01T10:10:00Z"}, 9},
		{recur.MissedRunAll, all, 4}, // catch_up 5m30s: 10:05 … 10:10, oldest first
	} {
		t.Run(c.missed, func(t *testing.T) {
			t.Parallel()
			e := newFireEnv(t, "2026-01-01T10:00:30Z")
			e.put(recur.Schedule{Name: "m", Cron: "* * * * *", Missed: c.missed, Overlap: recur.OverlapAllow,
				CatchUp: task.Duration(5*time.Minute + 30*time.Second)})
			e.fireAt("2026-01-01T10:10:30Z")
			e.wantRuns(c.want...)
			if got := e.count(metrics.RunMissed); got != c.nMissed {
				t.Errorf("missed %v, want %v", got, c.nMissed)
			}
			// The schedule goes on from the next instant.
			e.fireAt("2026-01-01T10:11:00Z")
			e.wantRuns(append(slices.Clone(c.want), "2026-01-01T10:11:00Z")...)
		})
	}
}

func TestRunAllFiresOldestFirstInBatches(t *testing.T) {
	t.Parallel()
	e := newFireEnv(t, "2026-01-01T10:00:00Z")
	e.put(recur.Schedule{Name: "s", Cron: "* * * * * *", Missed: recur.MissedRunAll, Overlap: recur.OverlapAllow})
	e.fireAt("2026-01-01T10:02:00Z") // 120 occurrences: more than one script's batch
	if got := len(e.runs()); got != 120 {
		t.Fatalf("%d runs, want 120", got)
	}
	tis, _, err := e.st.ListTasks(e.ctx, "q", task.StateQueued, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, ti := range tis {
		for _, h := range ti.Spec.Header {
			if h.Name == recur.ScheduledAtHeader {
				order = append(order, h.Value)
			}
		}
	}
	if !slices.IsSorted(order) {
		t.Errorf("tasks not created oldest first: %v", order[:5])
	}
}

func TestDaylightSavingFiring(t *testing.T) {
	t.Parallel()
	t.Run("berlin spring", func(t *testing.T) {
		t.Parallel()
		e := newFireEnv(t, "2026-03-28T12:00:00+01:00")
		e.put(recur.Schedule{Name: "d", Cron: "30 2 * * *", TimeZone: "Europe/Berlin"})
		e.fireAt("2026-03-29T02:59:59+02:00") // 00:59:59Z: before the change
		e.wantRuns()
		e.fireAt("2026-03-29T03:00:00+02:00")
		e.wantRuns("2026-03-29T03:00:00+02:00")
		e.fireAt("2026-03-29T03:30:00+02:00")
		e.wantRuns("2026-03-29T03:00:00+02:00")
	})
	t.Run("berlin autumn", func(t *testing.T) {
		t.Parallel()
		e := newFireEnv(t, "2026-10-24T12:00:00+02:00")
		e.put(recur.Schedule{Name: "d", Cron: "30 2 * * *", TimeZone: "Europe/Berlin"})
		e.fireAt("2026-10-25T02:30:00+02:00")
		e.wantRuns("2026-10-25T02:30:00+02:00")
		e.fireAt("2026-10-25T02:30:00+01:00") // the repeated 02:30
		e.wantRuns("2026-10-25T02:30:00+02:00")
		st, err := e.st.GetSchedule(e.ctx, "d")
		if err != nil {
			t.Fatal(err)
		}
		if want := parseTime(t, "2026-10-26T02:30:00+01:00"); !st.Next.Equal(want) {
			t.Errorf("next %s, want %s", st.Next, want)
		}
	})
	t.Run("new york spring", func(t *testing.T) {
		t.Parallel()
		e := newFireEnv(t, "2026-03-07T12:00:00-05:00")
		e.put(recur.Schedule{Name: "d", Cron: "30 2 * * *", TimeZone: "America/New_York"})
		e.fireAt("2026-03-08T03:00:00-04:00")
		e.wantRuns("2026-03-08T03:00:00-04:00")
	})
	t.Run("new york autumn", func(t *testing.T) {
		t.Parallel()
		e := newFireEnv(t, "2026-10-31T12:00:00-04:00")
		e.put(recur.Schedule{Name: "d", Cron: "30 1 * * *", TimeZone: "America/New_York"})
		e.fireAt("2026-11-01T01:30:00-04:00")
		e.fireAt("2026-11-01T01:30:00-05:00")
		e.wantRuns("2026-11-01T01:30:00-04:00")
	})
	t.Run("every ignores the wall clock", func(t *testing.T) {
		t.Parallel()
		e := newFireEnv(t, "2026-10-25T01:00:00+02:00")
		e.put(recur.Schedule{Name: "d", Cron: "@every 1h", TimeZone: "Europe/Berlin", Overlap: recur.OverlapAllow})
		for _, at := range []string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"} {
			e.fireAt(at)
		}
		e.wantRuns("2026-10-25T02:00:00+01:00", "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00")
	})
}

func TestOverlapSkip(t *testing.T) {
	t.Parallel()
	e := newFireEnv(t, "2026-01-01T10:00:30Z")
	e.put(recur.Schedule{Name: "o", Cron: "* * * * *"})
	e.fireAt("2026-01-01T10:01:00Z")
	e.fireAt("2026-01-01T10:02:00Z") // the 10:01 task is still queued: skipped
	e.wantRuns("2026-01-01T10:01:00Z")
	if got := e.count(metrics.RunSkippedOverlap); got != 1 {
		t.Errorf("skipped_overlap %v, want 1", got)
	}
	// Once the last run is finished, the next occurrence runs.
	st, err := e.st.GetSchedule(e.ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CancelTask(e.ctx, st.LastTask, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.fireAt("2026-01-01T10:03:00Z")
	e.wantRuns("2026-01-01T10:01:00Z", "2026-01-01T10:03:00Z")
}

func TestEndAtStopsAndPauseResume(t *testing.T) {
	t.Parallel()
	e := newFireEnv(t, "2026-01-01T10:00:30Z")
	end := parseTime(t, "2026-01-01T10:02:00Z")
	def := e.put(recur.Schedule{Name: "e", Cron: "* * * * *", Overlap: recur.OverlapAllow, EndAt: &end})
	e.fireAt("2026-01-01T10:01:00Z")
	e.fireAt("2026-01-01T10:02:00Z")
	e.fireAt("2026-01-01T10:03:00Z")
	e.wantRuns("2026-01-01T10:01:00Z", "2026-01-01T10:02:00Z")
	st, err := e.st.GetSchedule(e.ctx, "e")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Next.IsZero() {
		t.Errorf("ended schedule still has a next instant %s", st.Next)
	}
	if due, _ := e.st.AllDue(e.ctx, store.DueSchedules); len(due) != 0 {
		// settled away: nothing is due or waiting
		t.Errorf("due index after the end: %v", due)
	}

	// Pause: nothing fires; resume: the plan goes on from now.
	def.EndAt = nil
	def.Paused = true
	if _, err := e.st.PutSchedule(e.ctx, def, parseTime(t, "2026-01-01T10:04:00Z"), 0); err != nil {
		t.Fatal(err)
	}
	e.fireAt("2026-01-01T10:04:00Z")
	e.fireAt("2026-01-01T10:05:00Z")
	e.wantRuns("2026-01-01T10:01:00Z", "2026-01-01T10:02:00Z")
	def.Paused = false
	if _, err := e.st.PutSchedule(e.ctx, def, parseTime(t, "2026-01-01T10:06:00Z"), 0); err != nil {
		t.Fatal(err)
	}
	_ = e.st.FlushDue(e.ctx)
	e.fireAt("2026-01-01T10:06:00Z")
	e.wantRuns("2026-01-01T10:01:00Z", "2026-01-01T10:02:00Z", "2026-01-01T10:06:00Z")
}

// TestTwoSchedulersFireOnce: two leaders at once (a failover where the old
// one has not noticed yet) fire each occurrence once.
func TestTwoSchedulersFireOnce(t *testing.T) {
	t.Parallel()
	e := newFireEnv(t, "2026-01-01T10:00:00Z")
	other, err := schedule.New(schedule.Config{LockTTL: time.Second, PollInterval: time.Second, PromoteBatch: 100,
		JanitorInterval: time.Minute, MissedGrace: time.Second}, e.st, e.clk, slog.New(slog.DiscardHandler), metrics.NewScheduler(prometheus.NewRegistry()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		e.put(recur.Schedule{Name: "s" + string(rune('a'+i)), Cron: "* * * * * *", Missed: recur.MissedRunAll, Overlap: recur.OverlapAllow})
	}
	for sec := 1; sec <= 5; sec++ {
		e.clk.Set(parseTime(t, "2026-01-01T10:00:00Z").Add(time.Duration(sec) * time.Second))
		var wg sync.WaitGroup
		wg.Go(func() { e.s.FireDue(e.ctx) })
		wg.Go(func() { other.FireDue(e.ctx) })
		wg.Wait()
	}
	if got := len(e.runs()); got != 100 {
		t.Errorf("%d tasks for 20 schedules × 5 instants, want 100", got)
	}
}

func TestDeleteKeepsTasks(t *testing.T) {
	t.Parallel()
	e := newFireEnv(t, "2026-01-01T10:00:30Z")
	e.put(recur.Schedule{Name: "x", Cron: "* * * * *"})
	e.fireAt("2026-01-01T10:01:00Z")
	if err := e.st.DeleteSchedule(e.ctx, "x"); err != nil {
		t.Fatal(err)
	}
	e.fireAt("2026-01-01T10:02:00Z")
	e.wantRuns("2026-01-01T10:01:00Z")
	if _, err := e.st.GetSchedule(e.ctx, "x"); err == nil {
		t.Error("deleted schedule still found")
	}
}
