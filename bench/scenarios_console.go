package main

// The console scenario: what every page of the web console asks the API,
// with 100,000 queues and 1,000,000 tasks stored.
//
//   console   100,000 queues × 10 scheduled tasks (quick 2,000 × 10), plus
//             2,000 dead letters in 200 queues made by a real dispatcher,
//             1,000 schedules; then each console call is timed
//             sequentially (200 samples, random pages/queues/tasks) from one
//             keep-alive client: p50/p99 per call, against the 50 ms target.
//
// The tasks are due in a day, so no dispatcher runs them: they stay stored
// (delayed sets, specs, idempotency-free), as a big backlog would.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/htq/htq/client"
)

// consoleCalls are the timed calls, in report order.
var consoleCalls = []string{
	"console_queues_page", "console_queues_prefix", "console_queue_tasks", "console_queue_search",
	"console_task", "console_dead_page", "console_dead_count", "console_dead_search", "console_overview",
	"console_schedules_page",
}

func init() {
	Register(Scenario{
		Name: "console", Group: GroupHTQ,
		Desc: "console API calls with 100,000 queues and 1,000,000 scheduled tasks stored (quick 2,000 queues, 20,000 tasks), 2,000 dead letters, 1,000 schedules: " +
			"p50/p99 of each call over 200 sequential samples; value = the worst p99 (target <= 50 ms)",
		Run:     runConsole,
		Subs:    consoleCalls,
		Timeout: 60 * time.Minute,
	})
}

const (
	consolePerQueue  = 10
	consoleDeadQ     = 200
	consoleDeadPer   = 10
	consoleSchedules = 1000
	consoleSamples   = 200
)

func runConsole(ctx context.Context, env *Env) (Result, error) {
	nq := env.Size(100000, 2000)
	c, err := startHTQ(ctx, env, htqOptions{Settings: []string{autoCreate}})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	rc, hc := c.REST, c.HTQ
	began := time.Now()

	// 1. the stored backlog: nq queues × 10 tasks due in a day
	names := queueNames(env, "con", nq)
	base := env.Target.URL
	due := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Millisecond)
	if err := parallel(ctx, len(names), batchClients, func(ctx context.Context, qi int) error {
		q := names[qi]
		tasks := make([]client.TaskRequest, consolePerQueue)
		for i := range tasks {
			tasks[i] = client.TaskRequest{URL: TaskURL(base, "/t", q, i), RunAt: &due}
		}
		return enqueueBatch(ctx, hc, q, tasks)
	}); err != nil {
		return Result{}, fmt.Errorf("fill: %w", err)
	}
	fillSecs := time.Since(began).Seconds()

	// 2. dead letters, made the real way: a dispatcher calls a target that
	// answers 500, with one attempt per task
	env.Target.Reset(consoleDeadQ*consoleDeadPer + 1024)
	env.Target.SetStatus(http.StatusInternalServerError)
	defer env.Target.SetStatus(http.StatusOK)
	deadNames := queueNames(env, "dl", consoleDeadQ)
	oneAttempt := 1
	if err := putQueues(ctx, hc, deadNames, client.QueueSettings{Retry: &client.Retry{MaxAttempts: &oneAttempt}}, 8); err != nil {
		return Result{}, err
	}
	if err := preload(ctx, hc, deadNames, func(int) int { return consoleDeadPer }, batchClients,
		func(q string, i int) string { return TaskURL(base, "/fail", q, i) }); err != nil {
		return Result{}, err
	}
	if _, err := c.StartDispatchers(ctx, 2); err != nil {
		return Result{}, err
	}
	wantDead := consoleDeadQ * consoleDeadPer
	for {
		n, err := hc.CountDead(ctx, client.DeadFilter{})
		if err != nil {
			return Result{}, fmt.Errorf("dead count: %w", err)
		}
		if n.Count >= int64(wantDead) {
			break
		}
		if err := c.Check(); err != nil {
			return Result{}, err
		}
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	env.Target.SetStatus(http.StatusOK)

	// 3. schedules
	if err := parallel(ctx, consoleSchedules, 8, func(ctx context.Context, i int) error {
		_, _, err := hc.PutSchedule(ctx, fmt.Sprintf("s-%05d", i), client.ScheduleRequest{
			Queue: names[i%len(names)], Cron: "@every 1h", Task: client.TaskRequest{URL: base + "/s"},
		})
		return err
	}); err != nil {
		return Result{}, fmt.Errorf("schedules: %w", err)
	}
	setupSecs := time.Since(began).Seconds()

	// task ids to look up: one page of 100 random queues (unmeasured)
	rng := rand.New(rand.NewPCG(uint64(env.Run), 15))
	var ids []string
	for range 100 {
		page, err := hc.ListTasks(ctx, names[rng.IntN(len(names))], client.StateScheduled, client.ListOptions{Limit: 10})
		if err != nil {
			return Result{}, fmt.Errorf("task ids: %w", err)
		}
		for _, t := range page.Tasks {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) == 0 {
		return Result{}, fmt.Errorf("no task ids listed")
	}

	// the calls, each as a page of the console makes it; timed as raw GETs
	// (the answer read whole, not decoded), so the client's decoding is not
	// in the figure
	calls := map[string]func() string{
		"console_queues_page": func() string {
			return "/v1/queues?limit=50&cursor=" + url.QueryEscape(names[rng.IntN(len(names))])
		},
		"console_queues_prefix": func() string {
			// a prefix matching ~1/100 of the names: "con-r1-<tag>-12"
			n := names[rng.IntN(len(names))]
			return "/v1/queues?limit=50&prefix=" + url.QueryEscape(n[:len(n)-max(1, len(strconv.Itoa(len(names)))-2)])
		},
		"console_queue_tasks": func() string {
			return queuePath(names[rng.IntN(len(names))]) + "/tasks?state=scheduled&limit=50"
		},
		"console_queue_search": func() string {
			q := names[rng.IntN(len(names))]
			return queuePath(q) + "/tasks?state=scheduled&limit=50&q=" + url.QueryEscape(q+"&i=3")
		},
		"console_task":       func() string { return "/v1/tasks/" + ids[rng.IntN(len(ids))] },
		"console_dead_page":  func() string { return "/v1/dead?limit=50" },
		"console_dead_count": func() string { return "/v1/dead/count" },
		"console_dead_search": func() string {
			return "/v1/dead?limit=50&code=500&queue=" + url.QueryEscape(deadNames[rng.IntN(len(deadNames))])
		},
		"console_overview":       func() string { return "/v1/overview" },
		"console_schedules_page": func() string { return "/v1/schedules?limit=50" },
	}
	res := Result{Unit: "ms", Sub: map[string]Result{}, Extra: map[string]float64{
		"queues": float64(nq), "tasks": float64(nq * consolePerQueue), "dead": float64(wantDead),
		"fill_seconds": round(fillSecs, 1), "setup_seconds": round(setupSecs, 1),
	}}
	worst := ""
	for _, name := range consoleCalls {
		path := calls[name]
		if _, _, err := rc.do(ctx, http.MethodGet, path(), nil, ""); err != nil { // warm
			return Result{}, err
		}
		lat := make([]float64, 0, consoleSamples)
		for range consoleSamples {
			p := path()
			t0 := time.Now()
			status, body, err := rc.do(ctx, http.MethodGet, p, nil, "")
			d := time.Since(t0)
			if err != nil {
				return Result{}, fmt.Errorf("%s: %w", name, err)
			}
			if status != http.StatusOK {
				return Result{}, fmt.Errorf("%s: GET %s: HTTP %d %s", name, p, status, clipBytes(body, 200))
			}
			lat = append(lat, float64(d.Microseconds())/1000)
		}
		slices.Sort(lat)
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		over := 0
		for _, v := range lat {
			if v > 50 {
				over++
			}
		}
		res.Sub[name] = Result{Value: round(p99, 2), Unit: "ms", P50: F(round(p50, 2)), P99: F(round(p99, 2)),
			Extra: map[string]float64{"max_ms": round(lat[len(lat)-1], 2), "samples_over_50ms": float64(over)}}
		if p99 > res.Value {
			res.Value, worst = round(p99, 2), name
		}
	}
	res.P99 = F(res.Value)
	res.Note = fmt.Sprintf("worst p99: %s; target 50 ms; %s", worst, c.Note())
	return res, nil
}
