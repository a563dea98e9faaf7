package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/api"
)

type scheduleJSON struct {
	Name     string   `json:"name"`
	Queue    string   `json:"queue"`
	Cron     string   `json:"cron"`
	TimeZone string   `json:"time_zone"`
	Missed   string   `json:"missed"`
	CatchUp  float64  `json:"catch_up"`
	Overlap  string   `json:"overlap"`
	Paused   bool     `json:"paused"`
	NextRuns []string `json:"next_runs"`
	Task     struct {
		URL string `json:"url"`
	} `json:"task"`
	LastRun *struct {
		ScheduledAt time.Time `json:"scheduled_at"`
		TaskID      string    `json:"task_id"`
		State       string    `json:"state"`
	} `json:"last_run"`
}

const goodSchedule = `{"queue":"q","cron":"0 9 * * 1-5","time_zone":"Europe/Berlin","task":{"url":"http://example.test/report","method":"POST","body":{"kind":"daily"}}}`

func TestScheduleLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // the fake clock: 2026-03-04T05:06:07Z, a Wednesday
	e.putQueue("q", map[string]any{})

	var s scheduleJSON
	e.must(e.rest(http.MethodPut, "/v1/schedules/report", goodSchedule), http.StatusCreated, &s)
	want := []string{"2026-03-04T09:00:00+01:00", "2026-03-05T09:00:00+01:00", "2026-03-06T09:00:00+01:00",
		"2026-03-09T09:00:00+01:00", "2026-03-10T09:00:00+01:00"}
	if strings.Join(s.NextRuns, " ") != strings.Join(want, " ") {
		t.Errorf("next_runs %v, want %v", s.NextRuns, want)
	}
	if s.Missed != "skip" || s.Overlap != "skip" || s.CatchUp != 3600 || s.Task.URL != "http://example.test/report" {
		t.Errorf("defaults: %+v", s)
	}
	// PUT again updates (200).
	e.must(e.rest(http.MethodPut, "/v1/schedules/report",
		strings.Replace(goodSchedule, `"0 9 * * 1-5"`, `"@every 90s"`, 1)), http.StatusOK, &s)
	if len(s.NextRuns) != 5 || s.NextRuns[0] != "2026-03-04T06:07:37+01:00" {
		t.Errorf("@every 90s next_runs %v", s.NextRuns)
	}

	e.must(e.rest(http.MethodPost, "/v1/schedules/report/pause", nil), http.StatusOK, &s)
	if !s.Paused || len(s.NextRuns) != 0 {
		t.Errorf("paused: %+v", s)
	}
	e.clk.Advance(time.Hour)
	e.must(e.rest(http.MethodPost, "/v1/schedules/report/resume", nil), http.StatusOK, &s)
	if s.Paused || len(s.NextRuns) != 5 || s.NextRuns[0] != "2026-03-04T07:07:37+01:00" {
		t.Errorf("resumed from now: %+v", s)
	}

	// trigger: one run now, with the schedule's headers; overlap skip
	// refuses a second while it is queued.
	var tr struct {
		TaskID      string `json:"task_id"`
		ScheduledAt string `json:"scheduled_at"`
	}
	e.must(e.rest(http.MethodPost, "/v1/schedules/report/trigger", nil), http.StatusCreated, &tr)
	ti, err := e.st.GetTask(e.ctx, tr.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{}
	for _, h := range ti.Spec.Header {
		hdr[h.Name] = h.Value
	}
	if hdr["X-HTQ-Schedule"] != "report" || hdr["X-HTQ-Scheduled-At"] != tr.ScheduledAt || ti.Spec.Body != `{"kind":"daily"}` {
		t.Errorf("triggered task: headers %v, body %q", hdr, ti.Spec.Body)
	}
	e.wantError(e.rest(http.MethodPost, "/v1/schedules/report/trigger", nil), http.StatusConflict, "schedule_overlap", tr.TaskID)

	e.must(e.rest(http.MethodGet, "/v1/schedules/report", nil), http.StatusOK, &s)
	if s.LastRun == nil || s.LastRun.TaskID != tr.TaskID || s.LastRun.State != "queued" {
		t.Errorf("last_run %+v", s.LastRun)
	}

	e.putQueue("r", map[string]any{})
	for _, n := range []string{"a", "b", "c"} {
		e.must(e.rest(http.MethodPut, "/v1/schedules/"+n, strings.Replace(goodSchedule, `"queue":"q"`, `"queue":"r"`, 1)), http.StatusCreated, nil)
	}
	var page struct {
		Schedules  []scheduleJSON `json:"schedules"`
		NextCursor string         `json:"next_cursor"`
	}
	e.must(e.rest(http.MethodGet, "/v1/schedules?limit=2", nil), http.StatusOK, &page)
	if len(page.Schedules) != 2 || page.Schedules[0].Name != "a" || page.NextCursor != "b" {
		t.Fatalf("page 1: %+v", page)
	}
	page.NextCursor = ""
	e.must(e.rest(http.MethodGet, "/v1/schedules?limit=2&cursor=b", nil), http.StatusOK, &page)
	if len(page.Schedules) != 2 || page.Schedules[0].Name != "c" || page.Schedules[1].Name != "report" || page.NextCursor != "" {
		t.Fatalf("page 2: %+v", page)
	}

	// Moving a schedule to another queue keeps one copy.
	e.must(e.rest(http.MethodPut, "/v1/schedules/a", goodSchedule), http.StatusOK, &s)
	if s.Queue != "q" {
		t.Errorf("moved: %+v", s)
	}
	e.must(e.rest(http.MethodGet, "/v1/schedules", nil), http.StatusOK, &page)
	if len(page.Schedules) != 4 {
		t.Errorf("after the move: %d schedules", len(page.Schedules))
	}

	e.must(e.rest(http.MethodDelete, "/v1/schedules/report", nil), http.StatusNoContent, nil)
	e.wantError(e.rest(http.MethodGet, "/v1/schedules/report", nil), http.StatusNotFound, "schedule_not_found")
	e.wantError(e.rest(http.MethodDelete, "/v1/schedules/report", nil), http.StatusNotFound, "schedule_not_found")
	e.wantError(e.rest(http.MethodPost, "/v1/schedules/report/trigger", nil), http.StatusNotFound, "schedule_not_found")
	// Its task stays.
	if _, err := e.st.GetTask(e.ctx, tr.TaskID); err != nil {
		t.Errorf("deleting the schedule touched its task: %v", err)
	}
}

func TestScheduleAutoCreatesQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.wantError(e.rest(http.MethodPut, "/v1/schedules/s", goodSchedule), http.StatusUnprocessableEntity, "validation_failed", "queue")
	e2 := newEnvWith(t, envOptions{mutate: func(c *api.Config) { c.AutoCreateQueues = true }})
	e2.must(e2.rest(http.MethodPut, "/v1/schedules/s", goodSchedule), http.StatusCreated, nil)
	e2.getQueue("q")
}

// TestScheduleBadInput: every bad field is a 422 naming it, and nothing is
// stored.
func TestScheduleBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	set := func(field, value string) string {
		return strings.Replace(goodSchedule, `{"queue"`, `{`+field+`:`+value+`,"queue"`, 1)
	}
	replace := func(old, new string) string { return strings.Replace(goodSchedule, old, new, 1) }
	before := e.snapshot()
	for _, c := range []struct {
		name, body, field string
	}{
		{"cron does not parse", replace(`"0 9 * * 1-5"`, `"0 9 * *"`), "cron"},
		{"cron out of range", replace(`"0 9 * * 1-5"`, `"0 25 * * *"`), "cron"},
		{"cron never fires", replace(`"0 9 * * 1-5"`, `"0 0 30 2 *"`), "cron"},
		{"cron missing", replace(`"cron":"0 9 * * 1-5",`, ``), "cron"},
		{"every too short", replace(`"0 9 * * 1-5"`, `"@every 100ms"`), "cron"},
		{"zone in cron", replace(`"0 9 * * 1-5"`, `"TZ=UTC 0 9 * * *"`), "cron"},
		{"unknown zone", replace(`"Europe/Berlin"`, `"Europe/Atlantis"`), "time_zone"},
		{"queue missing", replace(`"queue":"q",`, ``), "queue"},
		{"queue does not exist", replace(`"queue":"q"`, `"queue":"nope"`), "queue"},
		{"bad missed", set(`"missed"`, `"sometimes"`), "missed"},
		{"bad overlap", set(`"overlap"`, `"maybe"`), "overlap"},
		{"bad catch_up", set(`"catch_up"`, `"soon"`), "catch_up"},
		{"negative catch_up", set(`"catch_up"`, `-5`), "catch_up"},
		{"catch_up too long", set(`"catch_up"`, `"30d"`), "catch_up"},
		{"bad jitter", set(`"jitter"`, `"2h"`), "jitter"},
		{"bad start_at", set(`"start_at"`, `"tomorrow"`), "start_at"},
		{"end_at before start_at", set(`"start_at":"2026-06-01T00:00:00Z","end_at"`, `"2026-05-01T00:00:00Z"`), "end_at"},
		{"end_at in the past", set(`"end_at"`, `"2020-01-01T00:00:00Z"`), "end_at"},
		// the year is judged in UTC, not in the offset given (issue 12)
		{"end_at beyond 9999 in UTC", set(`"end_at"`, `"9999-12-31T23:59:59-23:59"`), "end_at"},
		{"start_at beyond 9999 in UTC", set(`"start_at"`, `"9999-12-31T23:59:59-23:59"`), "start_at"},
		{"unknown field", set(`"color"`, `"blue"`), "color"},
		{"task missing", replace(`,"task":{"url":"http://example.test/report","method":"POST","body":{"kind":"daily"}}`, ``), "task"},
		{"task without url", replace(`"url":"http://example.test/report",`, ``), "task.url"},
		{"task bad url", replace(`"http://example.test/report"`, `"ftp://example.test/x"`), "task"},
		{"task unknown field", replace(`"method":"POST"`, `"method":"POST","colour":1`), "colour"},
		{"task with run_at", replace(`"method":"POST"`, `"method":"POST","run_at":"2030-01-01T00:00:00Z"`), "task.run_at"},
		{"task with delay", replace(`"method":"POST"`, `"method":"POST","delay":5`), "task.delay"},
		{"task with idempotency key", replace(`"method":"POST"`, `"method":"POST","idempotency_key":"k"`), "task.idempotency_key"},
		{"task GET with body", replace(`"method":"POST"`, `"method":"GET"`), "task.body"},
		{"task bad max_attempts", replace(`"method":"POST"`, `"method":"POST","max_attempts":0`), "task.max_attempts"},
	} {
		r := e.rest(http.MethodPut, "/v1/schedules/s", c.body)
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: got %v, want 422", c.name, r)
			continue
		}
		if _, msg := restError(t, r); !strings.Contains(msg, c.field) {
			t.Errorf("%s: message %q does not name %s", c.name, msg, c.field)
		}
	}
	e.wantError(e.rest(http.MethodPut, "/v1/schedules/a%0Ab", goodSchedule), http.StatusUnprocessableEntity, "", "name")
	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Errorf("bad input stored something: %v", d)
	}
}
