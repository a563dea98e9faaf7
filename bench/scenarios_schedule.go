package main

// schedule_precision: 1,000 schedules (quick 200) firing every second on
// idle queues for 20 s (quick 8 s): call start − scheduled instant, ms
// (value = p99), every occurrence called once; then 100,000 schedules
// (quick 10,000) registered with none due: Redis commands/s over 10 s.
//
// The target does not see X-HTQ-Scheduled-At, so an arrival is attributed
// to the whole second it falls in: valid while every call starts less than
// a second after its instant (a later one would show as a missing and a
// doubled occurrence, and fail the run).

import (
	"context"
	"fmt"
	"time"

	"github.com/htq/htq/client"
)

func init() {
	Register(Scenario{
		Name: "schedule_precision", Group: GroupHTQ,
		Desc: "1,000 schedules every second on idle queues for 20 s (quick 200 for 8 s): call start − scheduled instant p99, ms; then 100,000 idle schedules (quick 10,000): Redis commands/s",
		Run:  runSchedulePrecision,
	})
}

func runSchedulePrecision(ctx context.Context, env *Env) (Result, error) {
	n := env.Size(1000, 200)
	secs := 20
	idle := env.Size(100000, 10000)
	if env.Cfg.Quick {
		secs = 8
	}
	env.Target.Reset(n*(secs+2) + 1024)
	c, err := startHTQ(ctx, env, htqOptions{Dispatchers: 1})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	if err := c.WaitLeader(ctx); err != nil {
		return Result{}, err
	}
	names := queueNames(env, "sched", n)
	if err := putQueues(ctx, c.HTQ, names, client.QueueSettings{}, 8); err != nil {
		return Result{}, err
	}
	start := time.Now().Add(5 * time.Second).Truncate(time.Second)
	end := start.Add(time.Duration(secs) * time.Second)
	err = parallel(ctx, n, 8, func(ctx context.Context, i int) error {
		startAt, endAt := start.UTC(), end.Add(-time.Millisecond).UTC()
		_, _, err := c.HTQ.PutSchedule(ctx, names[i], client.ScheduleRequest{
			Queue: names[i], Cron: "* * * * * *", Overlap: "allow", StartAt: &startAt, EndAt: &endAt,
			Task: client.TaskRequest{URL: TaskURL(env.Target.URL, "/s", names[i], 0)},
		})
		return err
	})
	if err != nil {
		return Result{}, err
	}
	if time.Now().After(start) {
		return Result{}, fmt.Errorf("registering %d schedules took past their start", n)
	}
	from := env.Target.Count()
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-time.After(time.Until(end.Add(2 * time.Second))):
	}
	if err := c.Check(); err != nil {
		return Result{}, err
	}
	type occ struct {
		q   string
		sec int64
	}
	seen := map[occ]int{}
	var late []float64
	for _, a := range env.Target.ArrivalsSince(from) {
		q, _, ok := ArrivalKey(a)
		if !ok {
			continue
		}
		w := env.Target.WallTime(a.T)
		inst := w.Truncate(time.Second)
		seen[occ{q, inst.Unix()}]++
		late = append(late, float64(w.Sub(inst))/1e6)
	}
	missing, doubled := 0, 0
	for _, q := range names {
		for s := start; s.Before(end); s = s.Add(time.Second) {
			switch k := seen[occ{q, s.Unix()}]; {
			case k == 0:
				missing++
			case k > 1:
				doubled += k - 1
			}
		}
	}
	if missing > 0 || doubled > 0 || len(late) != n*secs {
		return Result{}, fmt.Errorf("%d calls for %d occurrences: %d missing, %d doubled", len(late), n*secs, missing, doubled)
	}
	p50, p99 := Percentile(late, 50), Percentile(late, 99)

	// Idle: register more schedules far ahead (start_at tomorrow), delete
	// the firing ones, and count Redis commands over 10 s.
	tomorrow := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	err = parallel(ctx, idle, 16, func(ctx context.Context, i int) error {
		q := names[i%n]
		_, _, err := c.HTQ.PutSchedule(ctx, fmt.Sprintf("idle-%06d", i), client.ScheduleRequest{
			Queue: q, Cron: "* * * * * *", StartAt: &tomorrow,
			Task: client.TaskRequest{URL: TaskURL(env.Target.URL, "/idle", q, 0)},
		})
		return err
	})
	if err != nil {
		return Result{}, err
	}
	time.Sleep(2 * time.Second) // let the registration's due marks settle
	before, err := GetCommandStats(ctx, c.Redis.Client)
	if err != nil {
		return Result{}, err
	}
	const window = 10 * time.Second
	time.Sleep(window)
	after, err := GetCommandStats(ctx, c.Redis.Client)
	if err != nil {
		return Result{}, err
	}
	d := after.Sub(before)
	cps := float64(d.Calls-1) / window.Seconds() // less this INFO call
	res := Result{Value: p99, Unit: "ms", P50: F(p50), P99: F(p99), Extra: map[string]float64{
		"schedules": float64(n), "seconds": float64(secs), "occurrences": float64(n * secs),
		"missing": 0, "doubled": 0, "idle_schedules": float64(idle), "idle_redis_cmds_per_s": cps,
	}}
	res.Note = fmt.Sprintf("value = p99 of call start − scheduled instant; %d schedules × %d s, 0 missing, 0 doubled; "+
		"%d idle schedules: %.1f Redis commands/s (every role, all polling included); %s", n, secs, idle, cps, c.Note())
	addProblems(ctx, env, c, &res)
	return res, nil
}
