package fault

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/recur"
	"github.com/htq/htq/internal/task"
	"github.com/htq/htq/internal/testcluster"
)

// TestScheduleFailover: 200 schedules fire every second for 10 s (missed:
// run_all); the leading scheduler is killed with SIGKILL 4 s in. Every
// occurrence creates exactly one task, none twice, none missing, and each
// task is created within the takeover time of its instant.
func TestScheduleFailover(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 2, Dispatchers: 2,
		Config: fmt.Sprintf("scheduler:\n  lock_ttl: %s\n", ttl)})
	tg := testcluster.NewTarget(t)
	queues := queueNames("sched", 20)
	createQueues(t, c, queues, client.QueueSettings{Concurrency: ptr(10)})

	leader, follower := c.Leaders()

	start := time.Now().Add(3 * time.Second).Truncate(time.Second)
	end := start.Add(10 * time.Second)
	const n = 200
	hc := c.Client()
	startAt, endAt := start.UTC(), end.Add(-time.Millisecond).UTC()
	for i := range n {
		s := client.ScheduleRequest{
			Queue: queues[i%len(queues)], Cron: "* * * * * *", Missed: "run_all", Overlap: "allow",
			StartAt: &startAt, EndAt: &endAt, Task: client.TaskRequest{URL: tg.URL + "/sched"},
		}
		if _, created, err := hc.PutSchedule(t.Context(), fmt.Sprintf("s%03d", i), s); err != nil || !created {
			t.Fatalf("PUT schedule %d: created=%v %v", i, created, err)
		}
	}
	if time.Now().After(start) {
		t.Fatal("creating the schedules took longer than their lead time")
	}
	time.Sleep(time.Until(start.Add(4*time.Second + 300*time.Millisecond)))
	killed := time.Now()
	leader.Signal(t, syscall.SIGKILL)
	c.WaitFor("the follower to lead", 3*ttl, func() bool { return follower.Metric("htq_scheduler_is_leader") == 1 })
	takeover := time.Since(killed)

	// Occurrences: every whole second in [start, end).
	want := 10 * n
	rdb := redis.NewClient(&redis.Options{Addr: c.Redis.Addr()})
	defer rdb.Close()
	type occ struct {
		name string
		at   int64 // ms
	}
	var tasks map[occ][]time.Time // occurrence -> creation time of each task
	read := func() int {
		tasks = map[occ][]time.Time{}
		var keys []string
		iter := rdb.Scan(t.Context(), 0, "htq:*:t:*", 1000).Iterator()
		for iter.Next(t.Context()) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			raw, err := rdb.Get(t.Context(), k).Result()
			if err != nil {
				continue
			}
			_, sp, err := task.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			var o occ
			for _, h := range sp.Header {
				switch h.Name {
				case recur.ScheduleHeader:
					o.name = h.Value
				case recur.ScheduledAtHeader:
					at, err := time.Parse(time.RFC3339Nano, h.Value)
					if err != nil {
						t.Fatal(err)
					}
					o.at = at.UnixMilli()
				}
			}
			tasks[o] = append(tasks[o], time.UnixMilli(sp.CreatedMs))
		}
		return len(keys)
	}
	c.WaitFor("every occurrence's task", 30*time.Second, func() bool { return read() >= want })
	time.Sleep(time.Until(end.Add(ttl))) // anything extra would show by now
	total := read()

	var dups, missing []string
	var lateBefore, lateAfter []time.Duration
	for i := range n {
		name := fmt.Sprintf("s%03d", i)
		for at := start; at.Before(end); at = at.Add(time.Second) {
			created := tasks[occ{name, at.UnixMilli()}]
			switch {
			case len(created) == 0:
				missing = append(missing, fmt.Sprintf("%s@%s", name, at.Format(time.TimeOnly)))
			case len(created) > 1:
				dups = append(dups, fmt.Sprintf("%s@%s ×%d", name, at.Format(time.TimeOnly), len(created)))
			default:
				if at.Before(killed) {
					lateBefore = append(lateBefore, created[0].Sub(at))
				} else {
					lateAfter = append(lateAfter, created[0].Sub(at))
				}
			}
		}
	}
	slices.Sort(lateBefore)
	slices.Sort(lateAfter)
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[int(math.Ceil(p*float64(len(d))))-1]
	}
	t.Logf("killed the leader %v after the first instant; takeover %v; %d tasks for %d occurrences; "+
		"lateness before the kill p50 %v p99 %v max %v; at or after it p50 %v p99 %v max %v",
		killed.Sub(start).Round(time.Millisecond), takeover.Round(time.Millisecond), total, want,
		pct(lateBefore, .5), pct(lateBefore, .99), pct(lateBefore, 1), pct(lateAfter, .5), pct(lateAfter, .99), pct(lateAfter, 1))
	if len(dups) > 0 || len(missing) > 0 || total != want {
		t.Fatalf("%d tasks for %d occurrences; doubled %d (%s); missing %d (%s)", total, want,
			len(dups), strings.Join(first(dups, 10), ", "), len(missing), strings.Join(first(missing, 10), ", "))
	}
	// Each occurrence is created within the takeover time of its instant:
	// those due while no scheduler led wait at most for the takeover (its
	// instant is after the kill), the others are fired on time. A little
	// room for the time firing 200 schedules takes once the new leader
	// starts.
	const work = 500 * time.Millisecond
	if m := pct(lateAfter, 1); m > takeover+work {
		t.Errorf("an occurrence due after the kill was created %v after its instant; takeover took %v", m, takeover)
	}
	// One due before the kill that the old leader had not fired yet waits
	// for the takeover too.
	for i, l := range lateBefore {
		if l > takeover+work {
			t.Errorf("an occurrence due before the kill was created %v after its instant (%d of %d over %v)", l, len(lateBefore)-i, len(lateBefore), work)
			break
		}
	}
}
