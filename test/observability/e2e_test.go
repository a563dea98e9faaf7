package observability

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	e2eToken       = "obs-e2e-token-0123456789abcdef"
	e2eLegacyKey   = "obs_key"
	e2eLegacyToken = "obs_legacy_token"
)

// e2eConfig refreshes the backlog gauges every second (the minimum) and
// keeps shutdown short; everything else is the default.
const e2eConfig = `redis:
  url: {{REDIS}}
api:
  tokens: ["` + e2eToken + `"]
  legacy_app_key: ` + e2eLegacyKey + `
  legacy_app_token: ` + e2eLegacyToken + `
  time_zone: UTC
scheduler:
  backlog_interval: 1s
dispatcher:
  shutdown_grace: 2s
log:
  level: info
`

// TestPrometheusEndToEnd: Redis, the API (metrics on their own listener),
// one scheduler and two dispatchers on loopback, scraped every second by a
// real Prometheus that loads deploy/monitoring/alerts.rules.yaml. The test
// pushes tasks that succeed, fail into dead letters, time out, wait for a
// time, repeat (variable queue), and requests the API refuses; then, through
// Prometheus's HTTP API, it checks that the counters match what it did, that
// every metric the dashboard and the rules use returns data, that every
// dashboard query answers with data, and that the rules load, evaluate
// without error and do not fire.
func TestPrometheusEndToEnd(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	tg := newTarget(t)
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 2, MetricsListen: true, WholeConfig: e2eConfig})
	if c.Procs("api")[0].MetricsAddr() == strings.TrimPrefix(c.API, "http://") {
		t.Fatalf("the API did not open its own metrics listener")
	}
	t.Logf("cluster ready after %v", time.Since(begin).Round(time.Millisecond))
	prom := startPrometheus(t, map[string][]string{
		"htq-api":        {c.Procs("api")[0].MetricsAddr()},
		"htq-scheduler":  {c.Procs("scheduler")[0].MetricsAddr()},
		"htq-dispatcher": {c.Procs("dispatcher")[0].MetricsAddr(), c.Procs("dispatcher")[1].MetricsAddr()},
	}, filepath.Join(monitoringDir, "alerts.rules.yaml"))

	// Prometheus applies new scrape targets a few seconds after it starts;
	// wait for a scrape of every process, so that the counters have a
	// baseline before the workload and rates see all of it.
	c.Eventually("a scrape of every process", 30*time.Second, func() []string {
		if n, err := prom.scalar(`count(up{job=~"htq-(api|scheduler|dispatcher)"})`); err != nil || n != 4 {
			return []string{fmt.Sprintf("%g of 4 targets scraped (%v)", n, err)}
		}
		return nil
	})
	t.Logf("Prometheus scrapes every process after %v", time.Since(begin).Round(time.Millisecond))

	// ---- the workload
	hc := c.ClientAs(e2eToken)
	one := 1
	for q, cfg := range map[string]client.QueueSettings{
		"obs-ok":   {},
		"obs-fail": {Retry: &client.Retry{MaxAttempts: &one}},
		"obs-slow": {Timeout: client.D(300 * time.Millisecond), Retry: &client.Retry{MaxAttempts: &one}},
		"obs-var":  {Type: "variable", SteppingTime: client.D(200 * time.Millisecond), MaxTimeInterval: client.D(500 * time.Millisecond)},
	} {
		if _, created, err := hc.PutQueue(t.Context(), q, cfg); err != nil || !created {
			t.Fatalf("PUT queue %s: created=%v %v", q, created, err)
		}
	}
	// A schedule firing every second until end_at: its next_runs (at most
	// 5, none after end_at) are exactly the runs it will fire.
	end := time.Now().Add(2500 * time.Millisecond).UTC()
	sched, schedCreated, err := hc.PutSchedule(t.Context(), "obs-every-second", client.ScheduleRequest{
		Queue: "obs-ok", Cron: "* * * * * *", Overlap: "allow", EndAt: &end,
		Task: client.TaskRequest{URL: tg.URL + "/ok/schedule"},
	})
	if err != nil || !schedCreated {
		t.Fatalf("PUT schedule: created=%v %v", schedCreated, err)
	}
	schedRuns := len(sched.NextRuns)
	if schedRuns < 2 {
		t.Fatalf("schedule next_runs %v: want 2 or 3 runs before end_at", sched.NextRuns)
	}
	created := 0 // 201 answers of POST /v1/queues/:queue/tasks
	post := func(q string, task client.TaskRequest) {
		t.Helper()
		if cr, err := hc.CreateTask(t.Context(), q, task); err != nil || cr.Existed {
			t.Fatalf("POST %s task: %+v %v, want a new task (201)", q, cr, err)
		}
		created++
	}
	const okSingles, okBatch, okTimed, fails, slows, vars, legacyNow = 12, 5, 3, 4, 2, 2, 3
	auth := []string{"app_key", e2eLegacyKey, "app_token", e2eLegacyToken}
	addTask := func(fields ...string) {
		t.Helper()
		if code := legacyCode(t, c, "addTask", append(auth, fields...)...); code != 0 {
			t.Fatalf("legacy addTask %v: error_code %v", fields, code)
		}
	}
	for i := range okSingles {
		task := client.TaskRequest{URL: fmt.Sprintf("%s/ok/%d", tg.URL, i)}
		if i == 0 {
			task.IdempotencyKey = "obs-once"
		}
		post("obs-ok", task)
		if i == 0 {
			addTask("queue_name", "obs-legacy", "url", tg.URL+"/ok/legacy-0", "execute_time", "0", "method", "get", "header", "[]", "data", "[]")
			// The API's request series exist from their first request on: let
			// Prometheus see them once, so that rates count the rest.
			c.Eventually("a scrape of the first requests", 10*time.Second, func() []string {
				n, err := prom.scalar(`count(htq_api_requests_total{route=~"/v1/queues/:queue/tasks|/api/addTask"})`)
				if err != nil || n != 2 {
					return []string{fmt.Sprintf("%g of 2 request series (%v)", n, err)}
				}
				return nil
			})
		}
	}
	// an idempotent repeat: 200, not counted as enqueued
	if cr, err := hc.CreateTask(t.Context(), "obs-ok", client.TaskRequest{URL: tg.URL + "/ok/0", IdempotencyKey: "obs-once"}); err != nil || !cr.Existed {
		t.Fatalf("idempotent repeat: %+v %v, want the earlier task (200)", cr, err)
	}
	var batch []client.TaskRequest
	for i := range okBatch {
		batch = append(batch, client.TaskRequest{URL: fmt.Sprintf("%s/ok/batch-%d", tg.URL, i)})
	}
	if _, err := hc.CreateTasks(t.Context(), "obs-ok", batch); err != nil {
		t.Fatalf("batch: %v", err)
	}
	for i := range okTimed {
		post("obs-ok", client.TaskRequest{URL: fmt.Sprintf("%s/ok/timed-%d", tg.URL, i), Delay: client.D(time.Second)})
	}
	for i := range fails {
		post("obs-fail", client.TaskRequest{URL: fmt.Sprintf("%s/fail/%d", tg.URL, i), Method: "POST", Body: json.RawMessage(`"x"`)})
	}
	for i := range slows {
		post("obs-slow", client.TaskRequest{URL: fmt.Sprintf("%s/slow/%d", tg.URL, i)})
	}
	for i := range vars {
		post("obs-var", client.TaskRequest{URL: fmt.Sprintf("%s/var/%d", tg.URL, i)})
	}
	for i := 1; i < legacyNow; i++ {
		addTask("queue_name", "obs-legacy", "url", fmt.Sprintf("%s/ok/legacy-%d", tg.URL, i), "execute_time", "0",
			"method", "get", "header", "[]", "data", "[]")
	}
	at := time.Now().UTC().Add(2 * time.Second).Format(time.DateTime)
	addTask("queue_name", "obs-legacy", "url", tg.URL+"/ok/legacy-timed", "execute_time", at,
		"method", "post", "header", `{"X-A":"1"}`, "data", `{"a":"1"}`)
	// refused: no token, an unknown queue, a bad URL, a wrong legacy token
	if status := errStatus(c.ClientAs("").CreateTask(t.Context(), "obs-ok", client.TaskRequest{URL: tg.URL + "/ok/x"})); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", status)
	}
	if status := errStatus(hc.CreateTask(t.Context(), "obs-nope", client.TaskRequest{URL: tg.URL + "/ok/x"})); status != http.StatusNotFound {
		t.Fatalf("unknown queue: %d", status)
	}
	if status := errStatus(hc.CreateTask(t.Context(), "obs-ok", client.TaskRequest{URL: "ftp://x"})); status != http.StatusUnprocessableEntity {
		t.Fatalf("bad url: %d", status)
	}
	if code := legacyCode(t, c, "addTask", "app_key", e2eLegacyKey, "app_token", "wrong", "url", tg.URL+"/ok/x"); code != 1000 {
		t.Fatalf("wrong legacy token: error_code %v", code)
	}

	realtime := okSingles + okBatch + okTimed + fails + slows + legacyNow + 1
	okCalls := okSingles + okBatch + okTimed + legacyNow + 1 + 3*vars + schedRuns // each variable task: 3 calls
	c.WaitFor("every call", 45*time.Second, func() bool {
		ok, by := counts(tg)
		return ok >= okCalls && by["fail"] >= fails && by["slow"] >= slows
	})
	ok, by := counts(tg)
	if ok != okCalls || by["fail"] != fails || by["slow"] != slows {
		t.Fatalf("the target saw %d successful calls (want %d) and %v", ok, okCalls, by)
	}
	allCalls := okCalls + fails + slows
	t.Logf("workload done after %v: %d calls", time.Since(begin).Round(time.Millisecond), allCalls)

	// ---- the counters match what was done
	checks := []struct {
		expr string
		want float64
	}{
		{`sum(htq_api_tasks_enqueued_total)`, float64(realtime + vars)},
		{`sum(htq_api_tasks_enqueued_total{kind="realtime"})`, float64(realtime)},
		{`sum(htq_api_tasks_enqueued_total{kind="variable"})`, vars},
		{`sum(htq_api_tasks_rejected_total)`, 4},
		{`sum(htq_api_tasks_rejected_total{reason="unauthorized"})`, 2},
		{`sum(htq_api_tasks_rejected_total{reason="queue_not_found"})`, 1},
		{`sum(htq_api_tasks_rejected_total{reason="invalid"})`, 1},
		{`sum(htq_api_requests_total{route="/v1/queues/:queue/tasks",method="POST",code="201"})`, float64(created)},
		{`sum(htq_api_requests_total{route="/v1/queues/:queue/tasks",method="POST",code="200"})`, 1},
		{`sum(htq_api_requests_total{route="/v1/queues/:queue/tasks/batch",code="201"})`, 1},
		// every enqueue that reached Redis: REST singles, the repeat, the
		// batch, legacy tasks, and the one refused for its unknown queue
		{`sum(htq_api_enqueue_duration_seconds_count)`, float64(created + 1 + 1 + legacyNow + 1 + 1)},
		{`sum(htq_dispatcher_calls_total{outcome="success"})`, float64(okCalls)},
		{`sum(htq_dispatcher_calls_total{outcome="retry"})`, fails},
		{`sum(htq_dispatcher_calls_total{outcome="timeout"})`, slows},
		{`sum(htq_dispatcher_calls_total{outcome=~"permanent|egress_denied"})`, 0},
		{`sum(htq_dispatcher_call_duration_seconds_count)`, float64(allCalls)},
		{`sum(htq_dispatcher_queue_lag_seconds_count)`, float64(allCalls)},
		{`sum(htq_dispatcher_tasks_finished_total{state="succeeded"})`, float64(okCalls - 2*vars)},
		{`sum(htq_dispatcher_tasks_finished_total{state="dead"})`, fails + slows},
		{`sum(htq_queue_tasks{state="dead"})`, fails + slows},
		{`sum(htq_queue_tasks{state=~"queued|scheduled|active"})`, 0},
		{`max(htq_queues)`, 5},
		{`sum(htq_scheduler_tasks_promoted_total)`, okTimed + 1 + 2*vars}, // variable tasks: 2 delayed calls each
		{`sum(htq_scheduler_promotion_lag_seconds_count)`, okTimed + 1 + 2*vars},
		{`sum(htq_scheduler_schedule_runs_total{outcome="fired"})`, float64(schedRuns)},
		{`sum(htq_scheduler_schedule_runs_total{outcome=~"missed|skipped_overlap"})`, 0},
		{`sum(htq_scheduler_schedule_lateness_seconds_count)`, float64(schedRuns)},
		{`sum(htq_scheduler_is_leader)`, 1},
		{`sum(htq_scheduler_leader_changes_total)`, 1},
		{`sum(htq_dispatcher_inflight_calls)`, 0},
		{`sum(htq_dispatcher_stale_writes_total)`, 0},
		{`sum(htq_dispatcher_leases_total{event=~"lost|takeover"})`, 0},
		{`sum(htq_redis_pool_timeouts_total)`, 0},
		{`count(up{job=~"htq-(api|scheduler|dispatcher)"} == 1)`, 4},
		{`count(htq_build_info{role="dispatcher"})`, 2},
	}
	c.Eventually("Prometheus to see the counters match", 30*time.Second, func() []string {
		var wrong []string
		for _, ch := range checks {
			v, err := prom.scalar(ch.expr)
			if err != nil {
				t.Fatal(err)
			}
			if v != ch.want {
				wrong = append(wrong, fmt.Sprintf("%s = %g, want %g", ch.expr, v, ch.want))
			}
		}
		return wrong
	})
	t.Logf("counters match after %v", time.Since(begin).Round(time.Millisecond))

	// ---- every metric the dashboard and the rules use returns data
	for _, m := range usedMetrics {
		s, err := prom.query(fmt.Sprintf(`count({__name__=%q})`, m))
		if err != nil {
			t.Fatal(err)
		}
		if len(s) == 0 {
			t.Errorf("metric %s: no data in Prometheus", m)
		}
	}

	// ---- every dashboard query answers with data; $__rate_interval covers
	// the whole run, so rates and quantiles see the workload
	for _, q := range loadDashboard(t).queries() {
		e, err := expand(q.Expr, "5m")
		if err != nil {
			t.Fatal(err)
		}
		s, err := prom.query(e)
		if err != nil {
			t.Errorf("panel %s: %v", q.Panel, err)
			continue
		}
		if !slices.ContainsFunc(s, func(x sample) bool { return !math.IsNaN(x.Value) }) {
			t.Errorf("panel %s: %s answered no number: [%s]", q.Panel, e, render(s))
		}
	}

	// ---- the rules are loaded, evaluate without error, and do not fire
	names := map[string]bool{}
	for _, r := range loadRules(t).alerts() {
		names[r.Alert] = true
	}
	var rules []promRule
	c.WaitFor("every rule to be evaluated", 10*time.Second, func() bool {
		var err error
		if rules, err = prom.rules(); err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if r.Health != "ok" {
				return false
			}
		}
		return len(rules) == len(names)
	})
	for _, r := range rules {
		if r.Type != "alerting" || !names[r.Name] || r.LastError != "" {
			t.Errorf("rule %s: type %s, health %s, error %q", r.Name, r.Type, r.Health, r.LastError)
		}
		for _, a := range r.Alerts {
			if a.State == "firing" {
				t.Errorf("alert %s is firing in a healthy run: %v", r.Name, a.Labels)
			}
		}
		// Tasks did die: the dead-letter alert must have seen it (it fires
		// only after 5 minutes).
		if r.Name == "HTQDeadLettersIncreasing" && r.State != "pending" {
			t.Errorf("HTQDeadLettersIncreasing is %q after %d dead letters, want pending", r.State, fails+slows)
		}
	}

	prom.stop(t)
	if d := time.Since(begin); d > 90*time.Second {
		t.Errorf("the end-to-end test took %v, want at most 90s", d)
	}
}

// errStatus is the HTTP status of a call's error answer: 0 when the call
// succeeded or no answer came.
func errStatus[T any](_ T, err error) int {
	var ae *client.Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}
