package fault

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/testcluster"
)

// TestSchedulerFailoverWhileTasksAreDue: kill -9 the leading scheduler while
// it promotes thousands of timed tasks that fell due, with variable tasks cycling
// through the delayed sets. The follower takes over within the lock TTL,
// every timed task is called exactly once, and every variable task is in
// exactly one place afterwards — its stream, its delayed set or, if its calls
// kept failing, the dead letters — never twice (no duplicate stream entry),
// never nowhere.
func TestSchedulerFailoverWhileTasksAreDue(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 2, Dispatchers: 2,
		Config: fmt.Sprintf("scheduler:\n  lock_ttl: %s\n  promote_batch: 200\n", ttl)})
	tg := testcluster.NewTarget(t)
	const varPerQueue = 20
	timedQueues, varQueues := queueNames("timed", 50), queueNames("var", 50) // 3,000 timed and 1,000 variable tasks
	createQueues(t, c, timedQueues, client.QueueSettings{})
	createQueues(t, c, varQueues, client.QueueSettings{Type: "variable", SteppingTime: client.D(300 * time.Millisecond), MaxTimeInterval: client.D(600 * time.Millisecond)})

	leader, follower := c.Leaders()

	hc := c.Client()
	var varIDs []string
	for _, q := range varQueues { // variable tasks, cycling
		var tasks []client.TaskRequest
		for i := range varPerQueue {
			tasks = append(tasks, client.TaskRequest{URL: fmt.Sprintf("%s/var?q=%s&i=%d", tg.URL, q, i)})
		}
		res, err := hc.CreateTasks(t.Context(), q, tasks)
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		for _, r := range res {
			varIDs = append(varIDs, r.ID)
		}
	}
	// 3,000 timed tasks: half due at one instant, half spread over 3 s.
	base := time.Now().Add(3 * time.Second)
	spread := func(n int) time.Duration { return time.Duration(n) * 3 * time.Second / 3000 }
	due := map[string]time.Time{}
	for qi, q := range timedQueues {
		var tasks []client.TaskRequest
		for i := range 60 {
			at := base
			if i%2 == 1 {
				at = base.Add(spread(qi*60 + i))
			}
			runAt := at.UTC()
			tasks = append(tasks, client.TaskRequest{URL: fmt.Sprintf("%s/timed?q=%s&i=%d", tg.URL, q, i), RunAt: &runAt})
		}
		res, err := hc.CreateTasks(t.Context(), q, tasks)
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		for i, r := range res {
			at := base
			if i%2 == 1 {
				at = base.Add(spread(qi*60 + i))
			}
			due[r.ID] = at
		}
	}
	if time.Now().After(base) {
		t.Fatal("enqueueing the timed tasks took longer than their lead time: the kill would not fall while they are due")
	}
	// Kill while the leader promotes: 1,500 tasks fell due 100 ms ago, more
	// fall due every millisecond.
	time.Sleep(time.Until(base.Add(100 * time.Millisecond)))
	killed := time.Now()
	leader.Signal(t, syscall.SIGKILL)
	c.WaitFor("the follower to lead", 3*ttl, func() bool { return follower.Metric("htq_scheduler_is_leader") == 1 })
	takeover := time.Since(killed)

	count := func() map[string]int {
		n := map[string]int{}
		for _, cl := range tg.Calls() {
			if cl.Path == "/timed" {
				n[cl.TaskID]++
			}
		}
		return n
	}
	c.WaitFor("every timed task", 60*time.Second, func() bool { return len(count()) == len(due) })
	// Pause the variable queues so every variable task settles in one place.
	for _, q := range varQueues {
		if _, err := hc.PauseQueue(t.Context(), q); err != nil {
			t.Logf("pause %s: %v", q, err)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: c.Redis.Addr()})
	defer rdb.Close()
	keys := store.NewKeys("htq:")
	c.WaitFor("variable queues idle", 20*time.Second, func() bool {
		for _, q := range varQueues {
			if p, err := rdb.XPending(t.Context(), keys.Queue(q).Stream, "htq").Result(); err != nil || p.Count > 0 {
				return false
			}
		}
		return true
	})
	// Read each queue's stream and sets in one MULTI: the scheduler keeps
	// promoting a paused queue's due tasks, and a task moved from the delayed
	// set to the stream between two separate reads would be found in neither.
	places := map[string]int{}
	for _, q := range varQueues {
		k := keys.Queue(q)
		var entries *redis.XMessageSliceCmd
		var delayed, dead *redis.StringSliceCmd
		if _, err := rdb.TxPipelined(t.Context(), func(p redis.Pipeliner) error {
			entries = p.XRange(t.Context(), k.Stream, "-", "+")
			delayed = p.ZRange(t.Context(), k.Delayed, 0, -1)
			dead = p.ZRange(t.Context(), k.Dead, 0, -1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries.Val() {
			places[fmt.Sprint(e.Values["t"])]++
		}
		for _, id := range delayed.Val() {
			places[id]++
		}
		for _, id := range dead.Val() {
			places[id]++
			ti, err := hc.GetTask(t.Context(), id)
			if err != nil {
				ti = &client.Task{LastError: fmt.Sprintf("(GET failed: %v)", err)}
			}
			t.Logf("variable task %s is dead (last status %d, error %q): visible, not lost", id, ti.LastStatus, ti.LastError)
		}
	}

	dups, late := 0, []time.Duration{}
	for _, cl := range tg.Calls() {
		if cl.Path == "/timed" {
			late = append(late, cl.Start.Sub(due[cl.TaskID]))
		}
	}
	for _, n := range count() {
		dups += n - 1
	}
	slices.Sort(late)
	t.Logf("takeover %v after the kill (lock TTL %v); %d timed tasks, %d duplicates; lateness p50 %v p99 %v max %v; %d variable tasks in %d places",
		takeover.Round(time.Millisecond), ttl, len(due), dups, late[len(late)/2].Round(time.Millisecond),
		late[len(late)*99/100].Round(time.Millisecond), late[len(late)-1].Round(time.Millisecond), len(places), sum(places))
	if takeover > ttl+500*time.Millisecond {
		t.Errorf("takeover took %v, more than the lock TTL %v", takeover, ttl)
	}
	if dups > 0 {
		t.Errorf("%d timed tasks were called more than once", dups)
	}
	if late[0] < 0 {
		t.Errorf("a timed task ran %v early", -late[0])
	}
	if want := len(varQueues) * varPerQueue; len(places) != want {
		t.Errorf("%d variable tasks found, want %d", len(places), want)
	}
	for _, id := range varIDs {
		if places[id] == 0 {
			ti, err := hc.GetTask(t.Context(), id)
			t.Errorf("variable task %s is nowhere: %+v %v", id, ti, err)
		}
	}
	for id, n := range places {
		if n != 1 {
			t.Errorf("variable task %s is in %d places (a duplicate stream entry)", id, n)
		}
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
