package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/htq/htq/internal/recur"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// putSchedule stores an every-second schedule on queue q whose next
// instant is next.
func (e *env) putSchedule(name, q string, next time.Time) *recur.Schedule {
	e.t.Helper()
	def := &recur.Schedule{Name: name, Queue: q, Cron: "* * * * * *", Overlap: recur.OverlapAllow,
		Spec: &task.Spec{Method: "POST", URL: "http://example.test/" + name}}
	if _, err := def.Normalize(); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.s.PutSchedule(e.ctx, def, next, 0); err != nil {
		e.t.Fatal(err)
	}
	return def
}

// twoPartitionQueues returns two queue names in different partitions.
func twoPartitionQueues() (string, string) {
	a := "qa"
	for i := 0; ; i++ {
		if b := fmt.Sprintf("qb%d", i); task.Partition(b) != task.Partition(a) {
			return a, b
		}
	}
}

// TestDueSchedulesReadsAheadAcrossPartitions: one call reads the due
// schedules of many partitions, those due within the look-ahead included,
// and a partition that cannot be read does not keep the others from being
// read.
func TestDueSchedulesReadsAheadAcrossPartitions(t *testing.T) {
	e := newEnv(t)
	qa, qb := twoPartitionQueues()
	e.queue(qa, nil)
	e.queue(qb, nil)
	now := e.clk.Now().Truncate(time.Second)
	e.clk.Set(now)
	e.putSchedule("a1", qa, now)
	e.putSchedule("a2", qa, now.Add(80*time.Millisecond))
	e.putSchedule("a3", qa, now.Add(time.Second))
	e.putSchedule("b1", qb, now.Add(-time.Second))
	pa, pb := task.Partition(qa), task.Partition(qb)

	names := func(b store.DueBatch) []string {
		var out []string
		for _, st := range b.States {
			out = append(out, st.Def.Name)
		}
		return out
	}
	got, err := e.s.DueSchedules(e.ctx, []int{pa, pb}, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := fmt.Sprint(names(got[0]), names(got[1])); n != "[a1] [b1]" {
		t.Errorf("due now: %s, want [a1] [b1]", n)
	}
	got, err = e.s.DueSchedules(e.ctx, []int{pa, pb}, 10, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if n := fmt.Sprint(names(got[0]), names(got[1])); n != "[a1 a2] [b1]" {
		t.Errorf("due within 100 ms: %s, want [a1 a2] [b1]", n)
	}
	got, err = e.s.DueSchedules(e.ctx, []int{pa}, 2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].States) != 2 {
		t.Errorf("limit 2 of 3: %d read", len(got[0].States))
	}

	// A schedule whose definition cannot be decoded fails its partition only.
	if err := e.rdb.HSet(e.ctx, e.s.Keys().Schedule(pb, "b1"), "def", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	got, err = e.s.DueSchedules(e.ctx, []int{pa, pb}, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Err != nil || len(got[0].States) != 1 {
		t.Errorf("healthy partition: %d read, err %v", len(got[0].States), got[0].Err)
	}
	if got[1].Err == nil || got[1].States != nil {
		t.Errorf("broken partition: %d read, err %v; want an error and nothing", len(got[1].States), got[1].Err)
	}
}

// TestFireManyFiresEachOnItsOwn: prepared fire calls sent together each
// create their task and advance their schedule, and one whose schedule
// changed since it was read fails alone with ErrScheduleChanged.
func TestFireManyFiresEachOnItsOwn(t *testing.T) {
	e := newEnv(t)
	qa, qb := twoPartitionQueues()
	e.queue(qa, nil)
	e.queue(qb, nil)
	at := e.clk.Now().Truncate(time.Second)
	e.clk.Set(at)
	var calls []*store.FireCall
	for _, s := range []struct{ name, q string }{{"a", qa}, {"b", qb}, {"c", qb}} {
		def := e.putSchedule(s.name, s.q, at)
		st, err := e.s.GetSchedule(e.ctx, s.name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.s.PrepareFire(&store.Fire{State: st, NewNext: at.Add(time.Second), Window: time.Hour,
			Occ: []store.Occurrence{{At: at, Due: at, Spec: def.Occurrence(at, at), Key: def.OccurrenceKey(at)}}})
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
	}
	// "c" changes after it was read: its prepared call is stale.
	e.putSchedule("c", qb, at.Add(time.Minute))

	res := e.s.FireMany(e.ctx, calls)
	for i, name := range []string{"a", "b"} {
		if res[i].Err != nil || len(res[i].Outcomes) != 1 || res[i].Outcomes[0].Outcome != store.FireFired {
			t.Errorf("%s: %+v", name, res[i])
		}
		st, err := e.s.GetSchedule(e.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Next.Equal(at.Add(time.Second)) {
			t.Errorf("%s: next %v, want %v", name, st.Next, at.Add(time.Second))
		}
	}
	if !errors.Is(res[2].Err, store.ErrScheduleChanged) {
		t.Errorf("changed schedule: %v, want ErrScheduleChanged", res[2].Err)
	}
	for _, q := range []string{qa, qb} {
		tis, _, err := e.s.ListTasks(e.ctx, q, task.StateQueued, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(tis) != 1 {
			t.Errorf("queue %s: %d tasks, want 1", q, len(tis))
		}
	}

	// Sent again (a second leader with the same reads): nothing more.
	for i, r := range e.s.FireMany(e.ctx, calls[:2]) {
		if !errors.Is(r.Err, store.ErrScheduleChanged) {
			t.Errorf("second fire of call %d: %v, want ErrScheduleChanged", i, r.Err)
		}
	}
}
