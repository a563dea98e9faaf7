package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
)

// TestSignIn: a wrong token is refused on the form; the right one signs in
// and lives only in the tab's sessionStorage (no URL, no cookie); a reload
// keeps the session; signing out forgets the token.
func TestSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.b
	b.open("")
	b.run("wrong token",
		waitVisible(`[data-testid=token]`),
		sendKeys(`[data-testid=token]`, "not-the-token-0123456789"),
		click(`[data-testid=signin-submit]`),
		waitVisible(`[data-testid=signin-error] .error`))
	if msg := b.text(`[data-testid=signin-error]`); !strings.Contains(msg, "refused") {
		t.Fatalf("sign-in error %q does not say the token was refused", msg)
	}
	b.screenshot("TestSignIn-form")

	b.signIn(testcluster.Token)
	stored := eval[string](b, `sessionStorage.getItem('htq.console.token')`)
	cookie := eval[string](b, `document.cookie`)
	href := eval[string](b, `location.href`)
	if stored != testcluster.Token {
		t.Fatalf("sessionStorage holds %q", stored)
	}
	if strings.Contains(cookie, testcluster.Token) || strings.Contains(href, testcluster.Token) {
		t.Fatalf("the token leaked: cookie %q, URL %q", cookie, href)
	}
	b.run("reload keeps the session", chromedp.Reload(), waitVisible(`[data-testid=signout]`))
	b.screenshot("TestSignIn")

	b.run("sign out", click(`[data-testid=signout]`), waitVisible(`[data-testid=token]`))
	if !eval[bool](b, `sessionStorage.getItem('htq.console.token') === null`) {
		t.Fatal("sign-out left the token in sessionStorage")
	}
	// The API never saw the token in a URL: the access log would show it.
	if strings.Contains(e.c.Procs("api")[0].Log(), testcluster.Token) {
		t.Fatal("the API's log contains the token")
	}
	b.noDialogs()
}

// TestQueueCounts: the queues list and the queue page show a queue's counts
// as the API has them, and its waiting tasks.
func TestQueueCounts(t *testing.T) {
	e := newEnv(t)
	e.queue("orders", true) // paused: its tasks stay queued
	e.queue("emails", false)
	for i := range 3 {
		e.task("orders", client.TaskRequest{Body: jsonOf(map[string]any{"n": i})})
	}
	b := e.b
	b.signIn(testcluster.Token)
	b.nav("#/queues")
	b.waitJS("orders row with 3 queued", `(() => { const r = document.querySelector('tr[data-queue="orders"]');
		return r && [...r.cells].some((c) => c.textContent === '3') && r.textContent.includes('paused'); })()`)
	b.waitJS("emails row", `!!document.querySelector('tr[data-queue="emails"]')`)
	b.screenshot("TestQueueCounts-queues")
	if filtered, err := e.api.ListQueuesByPrefix(t.Context(), "ord", client.ListOptions{}); err == nil && len(filtered.Queues) == 1 {
		b.run("filter", sendKeys(`[data-testid=queue-filter]`, "ord"))
		b.waitJS("only orders", `document.querySelectorAll('tr[data-queue]').length === 1 && !!document.querySelector('tr[data-queue="orders"]')`)
	} else {
		t.Log("GET /v1/queues has no prefix filter on this API: the filter is not driven")
	}

	b.run("open the queue", click(`tr[data-queue="orders"] a`), waitVisible(`[data-testid=count-queued]`))
	b.waitJS("3 tasks listed", `document.querySelectorAll('[data-testid=tasks] tr[data-task]').length === 3`)
	if got := b.text(`[data-testid=count-queued] .value`); got != "3" {
		t.Fatalf("queued count %q, want 3", got)
	}
	if got := b.text(`[data-testid=queue-name]`); got != "orders" {
		t.Fatalf("queue name %q", got)
	}
	b.screenshot("TestQueueCounts")
	b.noDialogs()
}

// TestPauseResume: pausing and resuming from the queues list changes the
// queue in the API; purge asks first, naming the queue, and Cancel keeps
// its tasks.
func TestPauseResume(t *testing.T) {
	e := newEnv(t)
	e.queue("billing", false)
	e.queue("billing-paused", true)
	e.task("billing-paused", client.TaskRequest{})
	b := e.b
	b.signIn(testcluster.Token)
	b.nav("#/queues")
	b.run("pause", click(`tr[data-queue="billing"] button[data-action=pause]`))
	eventually(t, "billing paused", 10*time.Second, func() error {
		if !e.getQueue("billing").Paused {
			return errNotYet
		}
		return nil
	})
	b.waitJS("resume button shown", `!!document.querySelector('tr[data-queue="billing"] button[data-action=resume]')`)
	b.screenshot("TestPauseResume-paused")
	b.run("resume", click(`tr[data-queue="billing"] button[data-action=resume]`))
	eventually(t, "billing resumed", 10*time.Second, func() error {
		if e.getQueue("billing").Paused {
			return errNotYet
		}
		return nil
	})
	b.waitJS("pause button back", `!!document.querySelector('tr[data-queue="billing"] button[data-action=pause]')`)

	b.run("purge asks", click(`tr[data-queue="billing-paused"] button[data-action=purge]`), waitVisible(`[data-testid=confirm-message]`))
	if msg := b.text(`[data-testid=confirm-message]`); !strings.Contains(msg, "“billing-paused”") {
		t.Fatalf("confirmation %q does not name the queue", msg)
	}
	b.screenshot("TestPauseResume")
	b.run("cancel purge", click(`[data-testid=confirm-cancel]`), waitGone(`[data-testid=confirm]`))
	if q := e.getQueue("billing-paused"); q.Counts.Queued != 1 {
		t.Fatalf("cancelled purge changed the queue: %+v", q.Counts)
	}
	b.run("purge", click(`tr[data-queue="billing-paused"] button[data-action=purge]`),
		waitVisible(`[data-testid=confirm-ok]`), click(`[data-testid=confirm-ok]`))
	eventually(t, "billing-paused purged", 10*time.Second, func() error {
		if e.getQueue("billing-paused").Counts.Queued != 0 {
			return errNotYet
		}
		return nil
	})
	b.noDialogs()
}

// TestDeadTaskRetry: a task that failed every attempt shows each attempt
// (status, error, answer); Retry runs it again and the page sees it
// succeed.
func TestDeadTaskRetry(t *testing.T) {
	e := newEnv(t)
	e.queue("payments", false)
	e.fail.Store(true)
	id := e.task("payments", client.TaskRequest{URL: e.target.URL + "/charge", Headers: map[string]string{"X-Request": "r-1"}, Body: jsonOf(map[string]any{"amount": 5})})
	e.waitState(id, "dead", 30*time.Second)
	b := e.b
	b.signIn(testcluster.Token)
	b.nav("#/task/" + id)
	b.waitJS("two attempts", `document.querySelectorAll('[data-testid=attempts] tr[data-attempt]').length === 2`)
	if st := b.text(`[data-testid=task-state]`); st != "dead" {
		t.Fatalf("state %q, want dead", st)
	}
	rows := b.text(`[data-testid=attempts] tbody`)
	if !strings.Contains(rows, "500") || !strings.Contains(rows, "upstream down <b>bold</b>") {
		t.Fatalf("attempts do not show status 500 and the answer: %q", rows)
	}
	b.screenshot("TestDeadTaskRetry-dead")

	e.fail.Store(false)
	b.run("retry", click(`button[data-action=retry]`))
	b.waitJS("succeeded on the page", `(document.querySelector('[data-testid=task-state]') || {}).textContent === 'succeeded'`)
	b.waitJS("third attempt shown", `document.querySelectorAll('[data-testid=attempts] tr[data-attempt]').length === 3`)
	if tv := e.getTask(id); tv.State != "succeeded" {
		t.Fatalf("API says %s", tv.State)
	}
	if !eval[bool](b, `document.querySelector('button[data-action=retry]').disabled && document.querySelector('button[data-action=cancel]').disabled`) {
		t.Fatal("a succeeded task's Retry or Cancel is enabled (the API refuses both)")
	}
	b.run("copy as curl", click(`[data-testid=copy-curl]`), waitVisible(`[data-testid=curl]`))
	curl := b.text(`[data-testid=curl]`)
	if !strings.Contains(curl, "curl -X POST '"+e.target.URL+"/charge'") {
		t.Fatalf("curl command %q", curl)
	}
	b.screenshot("TestDeadTaskRetry")
	b.noDialogs()
}

// TestBulkRetryByFilter: the dead letters page counts what a filter
// matches, asks, retries it in bounded calls and leaves other queues' dead
// tasks alone. Needs the console-api routes (/v1/dead).
func TestBulkRetryByFilter(t *testing.T) {
	e := newEnv(t)
	if !routeExists(t, e.c, "/v1/dead/count") {
		t.Skip("this API has no /v1/dead routes yet (console-api): nothing to drive")
	}
	e.queue("bulk-a", false)
	e.queue("bulk-b", false)
	e.fail.Store(true)
	var ids []string
	for range 3 {
		ids = append(ids, e.task("bulk-a", client.TaskRequest{}))
	}
	other := e.task("bulk-b", client.TaskRequest{})
	for _, id := range append(ids, other) {
		e.waitState(id, "dead", 30*time.Second)
	}
	e.fail.Store(false)
	b := e.b
	b.signIn(testcluster.Token)
	b.nav("#/dead")
	b.waitJS("4 dead tasks listed", `document.querySelectorAll('[data-testid=dead-list] tr[data-task]').length === 4`)
	b.run("filter on bulk-a", sendKeys(`[data-testid=dead-queue]`, "bulk-a"), click(`[data-testid=dead-apply]`))
	b.waitJS("3 listed", `document.querySelectorAll('[data-testid=dead-list] tr[data-task]').length === 3`)
	b.run("retry matching", click(`button[data-action=retry-matching]`), waitVisible(`[data-testid=confirm-message]`))
	if msg := b.text(`[data-testid=confirm-message]`); !strings.Contains(msg, "Retry 3 dead task(s)") || !strings.Contains(msg, "queue=bulk-a") {
		t.Fatalf("confirmation %q does not give the count and the filter", msg)
	}
	b.screenshot("TestBulkRetryByFilter-confirm")
	b.run("confirm", click(`[data-testid=confirm-ok]`))
	b.waitJS("progress done", `((document.querySelector('[data-testid=bulk-label]') || {}).textContent || '').includes('Retried 3')`)
	b.screenshot("TestBulkRetryByFilter")
	for _, id := range ids {
		e.waitState(id, "succeeded", 30*time.Second)
	}
	if st := e.getTask(other).State; st != "dead" {
		t.Fatalf("a dead task outside the filter is %s", st)
	}

	// The selection: bulk-b's task, deleted by id after a confirmation.
	b.run("all queues", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](`(() => { document.querySelector('[data-testid=dead-queue]').value = ''; return ''; })()`)(ctx, tg)
		return err
	}), click(`[data-testid=dead-apply]`))
	b.waitJS("bulk-b's task listed", fmt.Sprintf(`!!document.querySelector('[data-testid=dead-list] input[data-id=%q]')`, other))
	b.run("select and delete", click(fmt.Sprintf(`[data-testid=dead-list] input[data-id=%q]`, other)),
		click(`button[data-action=delete-selected]`), waitVisible(`[data-testid=confirm-ok]`), click(`[data-testid=confirm-ok]`))
	eventually(t, "the selected task deleted", 10*time.Second, func() error {
		switch _, err := e.api.GetTask(t.Context(), other); {
		case err == nil:
			return fmt.Errorf("GET task: still there")
		case !client.IsNotFound(err):
			return fmt.Errorf("GET task: %w", err)
		}
		return nil
	})
	b.waitJS("list empty", `!!document.querySelector('[data-testid=dead-empty]')`)
	b.noDialogs()
}

// TestReadOnly: a read-only token sees every page with its actions
// disabled, and the API refuses the actions anyway. Needs console-api's
// whoami and api.read_only_tokens.
func TestReadOnly(t *testing.T) {
	e := newEnv(t)
	if !routeExists(t, e.c, "/v1/whoami") {
		t.Skip("this API has no /v1/whoami yet (console-api): no read-only tokens to test")
	}
	const ro = "read-only-token-0123456789"
	api := e.c.Start("api", "api-read-only", "HTQ_API_READ_ONLY_TOKENS="+ro)
	e.queue("audit", false)
	id := e.task("audit", client.TaskRequest{})
	e.waitState(id, "succeeded", 30*time.Second)
	if _, created, err := e.api.PutSchedule(t.Context(), "nightly", client.ScheduleRequest{Queue: "audit", Cron: "0 3 * * *",
		Task: client.TaskRequest{URL: e.target.URL + "/nightly"}}); err != nil || !created {
		t.Fatalf("PUT schedule: created=%v %v", created, err)
	}
	b := newBrowser(t, api.Health)
	b.signIn(ro)
	b.run("read-only badge", waitVisible(`[data-testid=readonly]`))
	for _, page := range []struct{ frag, ready string }{
		{"#/queues", `tr[data-queue="audit"]`},
		{"#/queue/audit", `[data-testid=settings-form]`},
		{"#/task/" + id, `[data-testid=task-state]`},
		{"#/dead", `[data-testid=dead-filter]`},
		{"#/schedules", `tr[data-schedule="nightly"]`},
	} {
		b.nav(page.frag)
		b.run("wait "+page.frag, waitVisible(page.ready))
		n := eval[int](b, `document.querySelectorAll('button[data-action]:not([data-action=edit])').length`)
		enabled := eval[int](b, `[...document.querySelectorAll('button[data-action]:not([data-action=edit]), [data-setting]')].filter((x) => !x.disabled).length`)
		if n == 0 || enabled != 0 {
			t.Fatalf("%s: %d action buttons, %d enabled; want some, none enabled", page.frag, n, enabled)
		}
		if page.frag == "#/queues" {
			b.screenshot("TestReadOnly")
		}
	}
	roAPI, err := client.New(api.Health, client.WithToken(ro), client.WithRetries(0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"POST /v1/queues/audit/pause", func() error { _, err := roAPI.PauseQueue(ctx, "audit"); return err }},
		{"DELETE /v1/queues/audit", func() error { return roAPI.DeleteQueue(ctx, "audit") }},
		{"POST /v1/tasks/" + id + "/retry", func() error { _, err := roAPI.RetryTask(ctx, id); return err }},
		{"POST /v1/schedules/nightly/trigger", func() error { _, err := roAPI.TriggerSchedule(ctx, "nightly"); return err }},
	} {
		if err := call.do(); errStatus(err) != http.StatusForbidden {
			t.Errorf("%s with the read-only token: %v, want 403", call.name, err)
		}
	}
	if _, err := roAPI.GetQueue(ctx, "audit"); err != nil {
		t.Errorf("GET with the read-only token: %v, want 200", err)
	}
	if e.getQueue("audit").Paused {
		t.Fatal("the read-only token paused the queue")
	}
	b.noDialogs()
}

// The strings a hostile API client could store, to be shown as text.
const (
	xssScript = `<script>alert("xss-script");window.__xss=1</script>`
	xssImg    = `"><img src=x onerror="alert('xss-img');window.__xss=2">`
	// xssURL is both in a form a URL may hold (no spaces).
	xssURL = `"><img/src=x/onerror=alert('xss-url')><script>window.__xss=3</script>`
)

// TestXSSRendersAsText: a queue name, task URL, header and body holding
// <script> and "><img onerror> appear as text on every page that shows
// them; no script runs, no dialog opens, no img element is created.
func TestXSSRendersAsText(t *testing.T) {
	e := newEnv(t)
	queue := "q" + xssScript + xssImg
	e.queue(queue, true)
	taskURL := e.target.URL + "/x?a=" + xssURL
	id := e.task(queue, client.TaskRequest{URL: taskURL,
		Headers: map[string]string{"X-Evil": xssScript + xssImg},
		Body:    jsonOf(xssScript + xssImg)})
	b := e.b
	b.signIn(testcluster.Token)

	clean := func(where string) {
		t.Helper()
		imgs := eval[int](b, `document.querySelectorAll('img').length`)
		flag := eval[bool](b, `window.__xss !== undefined`)
		if imgs != 0 || flag {
			t.Fatalf("%s: %d img elements, injected script ran: %v", where, imgs, flag)
		}
		b.noDialogs()
	}
	b.nav("#/queues")
	b.waitJS("queue row", fmt.Sprintf(`[...document.querySelectorAll('tr[data-queue]')].some((r) => r.dataset.queue === %q)`, queue))
	shown := eval[string](b, `document.querySelector('tr[data-queue] a').textContent`)
	if shown != queue {
		t.Fatalf("queues page shows the name as %q, want %q", shown, queue)
	}
	clean("queues page")

	b.run("open the queue", click(`tr[data-queue] a`), waitVisible(`[data-testid=queue-name]`))
	b.waitJS("task listed", `!!document.querySelector('[data-testid=tasks] tr[data-task]')`)
	if got := b.text(`[data-testid=queue-name]`); got != queue {
		t.Fatalf("queue page shows %q", got)
	}
	shown = eval[string](b, `document.querySelector('[data-testid=tasks] td.url').textContent`)
	if shown != taskURL {
		t.Fatalf("queue page shows the URL as %q, want %q", shown, taskURL)
	}
	clean("queue page")

	b.nav("#/task/" + id)
	b.run("task page", waitVisible(`[data-testid=task-url]`))
	if got := b.text(`[data-testid=task-url]`); got != taskURL {
		t.Fatalf("task page shows the URL as %q, want %q", got, taskURL)
	}
	// The request as it will be sent: headers and body, as text.
	if tv := e.getTask(id); tv.Request == nil || tv.Request.Body == nil || len(tv.Request.Headers) == 0 {
		t.Fatalf("GET /v1/tasks/%s shows no request: %+v", id, tv.Request)
	}
	if got := b.text(`[data-testid=task-headers]`); !strings.Contains(got, "X-Evil") || !strings.Contains(got, xssScript+xssImg) {
		t.Fatalf("task page shows the headers as %q", got)
	}
	if got := b.text(`[data-testid=task-body]`); got != xssScript+xssImg {
		t.Fatalf("task page shows the body as %q", got)
	}
	b.run("curl", click(`[data-testid=copy-curl]`), waitVisible(`[data-testid=curl]`))
	curl := b.text(`[data-testid=curl]`)
	q := func(s string) string { return `'` + strings.ReplaceAll(s, `'`, `'\''`) + `'` }
	for _, want := range []string{q(taskURL), "-H " + q("X-Evil: "+xssScript+xssImg), "--data-binary " + q(xssScript+xssImg)} {
		if !strings.Contains(curl, want) {
			t.Fatalf("curl %q lacks %s", curl, want)
		}
	}
	b.screenshot("TestXSSRendersAsText")
	clean("task page")
}

// TestUIOff: with api.ui false the API serves no console; on, /ui/ comes
// with its security headers.
func TestUIOff(t *testing.T) {
	e := testcluster.NewCluster(t, testcluster.Options{})
	off := e.Start("api", "api-no-ui", "HTQ_API_UI=false")
	resp, err := http.Get(off.Health + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("api.ui false: GET /ui/ = %d, want 404", resp.StatusCode)
	}
	resp, err = http.Get(e.API + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
		resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("GET /ui/: %d, headers %v", resp.StatusCode, resp.Header)
	}
}
