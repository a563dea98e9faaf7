package console

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
)

// TestSchedules: the schedules page lists a schedule with its next runs;
// trigger makes a task that shows as its last run; pause reaches the API;
// an edited definition is saved.
func TestSchedules(t *testing.T) {
	e := newEnv(t)
	e.queue("reports", false)
	def := client.ScheduleRequest{Queue: "reports", Cron: "0 3 * * *", TimeZone: "UTC", Task: client.TaskRequest{URL: e.target.URL + "/report", Method: "POST"}}
	if _, created, err := e.api.PutSchedule(t.Context(), "nightly-report", def); err != nil || !created {
		t.Fatalf("PUT schedule: created=%v %v", created, err)
	}
	b := e.b
	b.signIn(testcluster.Token)
	b.nav("#/schedules")
	row := `tr[data-schedule="nightly-report"]`
	b.run("schedule listed", waitVisible(row+` ul.runs li`))
	b.run("trigger", click(row+` button[data-action=trigger]`))
	b.waitJS("triggered", `((document.querySelector('[data-testid=flash]') || {}).textContent || '').includes('triggered: task ')`)
	sc := &client.Schedule{}
	getSchedule := func() {
		if got, err := e.api.GetSchedule(t.Context(), "nightly-report"); err == nil {
			sc = got
		} else {
			t.Logf("GET schedule: %v", err)
		}
	}
	eventually(t, "a last run", 10*time.Second, func() error {
		getSchedule()
		if sc.LastRun == nil {
			return errNotYet
		}
		return nil
	})
	b.waitJS("last run links its task", fmt.Sprintf(`!!document.querySelector('%s a[href="#/task/%s"]')`, row, sc.LastRun.TaskID))

	b.run("pause", click(row+` button[data-action=pause]`), waitVisible(row+` button[data-action=resume]`))
	getSchedule()
	if !sc.Paused {
		t.Fatal("the schedule is not paused in the API")
	}
	b.run("resume", click(row+` button[data-action=resume]`), waitVisible(row+` button[data-action=pause]`))
	b.screenshot("TestSchedules")

	b.run("edit", click(row+` button[data-action=edit]`), waitVisible(`[data-testid=schedule-json]`))
	b.run("change the cron", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](`(() => { const ta = document.querySelector('[data-testid=schedule-json]');
			const d = JSON.parse(ta.value); d.cron = '30 4 * * *'; ta.value = JSON.stringify(d); return ''; })()`)(ctx, tg)
		return err
	}), click(`button[data-action=save-schedule]`))
	eventually(t, "the new cron", 10*time.Second, func() error {
		getSchedule()
		if sc.Cron != "30 4 * * *" {
			return fmt.Errorf("cron %q", sc.Cron)
		}
		return nil
	})
	b.noDialogs()
}

// TestQueueSettings: the queue page saves changed settings, and shows the
// API's refusal of a bad one with the field's name.
func TestQueueSettings(t *testing.T) {
	e := newEnv(t)
	e.queue("tuning", false)
	b := e.b
	b.signIn(testcluster.Token)
	b.nav("#/queue/tuning")
	b.run("settings", waitVisible(`[data-setting=concurrency]`))
	setValue := func(name, v string) {
		b.run("set "+name, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[string](fmt.Sprintf(`(() => { document.querySelector('[data-setting=%s]').value = %q; return ''; })()`, name, v))(ctx, tg)
			return err
		}))
	}
	setValue("concurrency", "4")
	setValue("timeout", "45s")
	b.run("save", click(`button[data-action=save-settings]`))
	q := &client.Queue{}
	getQueue := func() {
		if got, err := e.api.GetQueue(t.Context(), "tuning"); err == nil {
			q = got
		} else {
			t.Logf("GET queue: %v", err)
		}
	}
	eventually(t, "settings saved", 10*time.Second, func() error {
		getQueue()
		if q.Concurrency != 4 || q.Timeout.Std() != 45*time.Second {
			return fmt.Errorf("concurrency %d, timeout %v", q.Concurrency, q.Timeout.Std())
		}
		return nil
	})
	b.waitJS("form reloaded", `document.querySelector('[data-setting=timeout]').value === '45'`)
	setValue("concurrency", "-2")
	b.run("save a bad value", click(`button[data-action=save-settings]`))
	b.waitJS("refusal shown", `((document.querySelector('[data-testid=flash].error') || {}).textContent || '').includes('concurrency')`)
	b.screenshot("TestQueueSettings")
	getQueue()
	if q.Concurrency != 4 {
		t.Fatalf("a refused value changed the queue: %+v", q)
	}
	b.noDialogs()
}

// TestOverview: the overview shows the last hour's counters and the
// backlog. Needs console-api's /v1/overview.
func TestOverview(t *testing.T) {
	e := newEnv(t)
	if !routeExists(t, e.c, "/v1/overview") {
		t.Skip("this API has no /v1/overview yet (console-api)")
	}
	e.queue("stats", false)
	for range 3 {
		e.waitState(e.task("stats", client.TaskRequest{}), "succeeded", 30*time.Second)
	}
	b := e.b
	b.signIn(testcluster.Token)
	b.waitJS("succeeded counted", `+((document.querySelector('[data-testid=card-succeeded] .value') || {}).textContent || 0) >= 3`)
	b.run("backlog, chart, dispatcher", waitVisible(`[data-testid=backlog]`), waitVisible(`svg.chart rect.succeeded`),
		waitVisible(`[data-testid=dispatchers] tr[data-dispatcher]`))
	if got := b.text(`[data-testid=leader]`); !strings.Contains(got, "term") {
		t.Fatalf("no scheduler leader shown: %q", got)
	}
	b.screenshot("TestOverview")
	b.noDialogs()
}

// TestLive: the live page shows task events as they happen, for the queue
// it follows. Needs console-api's /v1/events.
func TestLive(t *testing.T) {
	e := newEnv(t)
	if !strings.Contains(e.liveProbe(), "text/event-stream") {
		t.Skip("this API has no /v1/events yet (console-api)")
	}
	e.queue("live-a", false)
	e.queue("live-b", false)
	b := e.b
	b.signIn(testcluster.Token)
	b.nav("#/live")
	b.run("follow live-a", sendKeys(`[data-testid=live-queue]`, "live-a"), click(`form button[type=submit]`))
	b.waitJS("connected", `(document.querySelector('[data-testid=live-status]') || {}).textContent.startsWith('connected')`)
	idA := e.task("live-a", client.TaskRequest{})
	e.task("live-b", client.TaskRequest{})
	b.waitJS("succeeded event", fmt.Sprintf(`!!document.querySelector('[data-testid=live] tr[data-event=succeeded] a[href="#/task/%s"]')`, idA))
	if n := eval[int](b, `[...document.querySelectorAll('[data-testid=live] tbody a[href^="#/queue/"]')].filter((a) => a.textContent !== 'live-a').length`); n != 0 {
		t.Fatalf("%d events of another queue shown", n)
	}
	b.screenshot("TestLive")
	b.noDialogs()
}

// TestQueueSearch: the queue page searches a state's tasks by URL part and
// by last status. Needs console-api's task search (state=retrying is its
// mark: the API before it refuses that state).
func TestQueueSearch(t *testing.T) {
	e := newEnv(t)
	e.queue("search", false)
	if _, err := e.api.ListTasks(t.Context(), "search", client.StateRetrying, client.ListOptions{}); err != nil {
		t.Skip("this API has no task search yet (console-api)")
	}
	e.fail.Store(true)
	a := e.task("search", client.TaskRequest{URL: e.target.URL + "/invoices/alpha"})
	bID := e.task("search", client.TaskRequest{URL: e.target.URL + "/invoices/beta"})
	e.waitState(a, "dead", 30*time.Second)
	e.waitState(bID, "dead", 30*time.Second)
	b := e.b
	b.signIn(testcluster.Token)
	b.nav("#/queue/search")
	b.run("dead tab", click(`button[data-state=dead]`))
	b.waitJS("both dead listed", `document.querySelectorAll('[data-testid=tasks] tr[data-task]').length === 2`)
	b.run("search beta", sendKeys(`[data-testid=search-q]`, "invoices/beta"), click(`[data-testid=search] button[type=submit]`))
	b.waitJS("only beta", fmt.Sprintf(`(() => { const rows = document.querySelectorAll('[data-testid=tasks] tr[data-task]');
		return rows.length === 1 && rows[0].dataset.task === %q; })()`, bID))
	b.screenshot("TestQueueSearch")
	b.run("search status 404", sendKeys(`[data-testid=search-code]`, "404"), click(`[data-testid=search] button[type=submit]`))
	b.waitJS("none with 404", `document.querySelectorAll('[data-testid=tasks] tr[data-task]').length === 0 && !!document.querySelector('[data-testid=tasks] p.muted')`)
	b.noDialogs()
}

// TestCancelTask: Cancel on a waiting task asks, naming the task and its
// queue, and the API then has it cancelled (or gone).
func TestCancelTask(t *testing.T) {
	e := newEnv(t)
	e.queue("held", true) // paused: the task waits
	id := e.task("held", client.TaskRequest{})
	b := e.b
	b.signIn(testcluster.Token)
	b.nav("#/task/" + id)
	b.run("cancel asks", waitVisible(`[data-testid=task-state]`), click(`button[data-action=cancel]`), waitVisible(`[data-testid=confirm-message]`))
	if msg := b.text(`[data-testid=confirm-message]`); !strings.Contains(msg, id) || !strings.Contains(msg, "“held”") {
		t.Fatalf("confirmation %q does not name the task and its queue", msg)
	}
	b.run("confirm", click(`[data-testid=confirm-ok]`))
	eventually(t, "the task cancelled", 10*time.Second, func() error {
		switch tv, err := e.api.GetTask(t.Context(), id); {
		case client.IsNotFound(err), err == nil && tv.State == "cancelled":
			return nil
		case err != nil:
			return fmt.Errorf("GET: %w", err)
		default:
			return fmt.Errorf("GET: state %s", tv.State)
		}
	})
	b.noDialogs()
}
