package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/htq/htq/client"
)

// TestQueueCommands: put, ls, get, pause, resume, purge, rm against the
// real API, with golden table, JSON and YAML output.
func TestQueueCommands(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	r := c.htq(t, "", "queue", "put", "emails", "--concurrency", "4", "--rate", "10", "--timeout", "10s", "--max-attempts", "5").ok(t)
	if r.stdout != "queue \"emails\" created\n" {
		t.Fatalf("put: %q", r.stdout)
	}
	c.htq(t, "", "queue", "put", "emails", "--burst", "3").ok(t)
	c.htq(t, "", "queue", "put", "feeds", "--type", "variable", "--stepping-time", "1s", "--max-time-interval", "1m").ok(t)
	for range 2 {
		c.htq(t, "", "task", "push", "-q", "emails", "http://127.0.0.1:9/hook").ok(t)
	}
	c.htq(t, "", "task", "push", "-q", "emails", "http://127.0.0.1:9/later", "--delay", "1h").ok(t)

	golden(t, "queue_ls.txt", c.htq(t, "", "queue", "ls").ok(t).stdout)
	// Shell completion of queue names, as an argument and as -q's value.
	if r := c.htq(t, "", "__complete", "queue", "get", "e").ok(t); !strings.HasPrefix(r.stdout, "emails\n:4\n") {
		t.Fatalf("completion of a queue name: %q", r.stdout)
	}
	if r := c.htq(t, "", "__complete", "task", "ls", "-q", "").ok(t); !strings.HasPrefix(r.stdout, "emails\nfeeds\n:4\n") {
		t.Fatalf("completion of -q: %q", r.stdout)
	}
	golden(t, "queue_ls.json", c.htq(t, "", "queue", "ls", "-o", "json").ok(t).stdout)
	golden(t, "queue_get.txt", c.htq(t, "", "queue", "get", "emails").ok(t).stdout)
	golden(t, "queue_get.yaml", c.htq(t, "", "queue", "get", "emails", "-o", "yaml").ok(t).stdout)

	var q client.Queue
	if err := json.Unmarshal([]byte(c.htq(t, "", "queue", "get", "emails", "-o", "json").ok(t).stdout), &q); err != nil ||
		q.Concurrency != 4 || q.Rate != 10 || q.Burst != 3 || q.Retry.MaxAttempts != 5 || q.Counts.Queued != 2 || q.Counts.Scheduled != 1 {
		t.Fatalf("queue get -o json: %+v %v", q, err)
	}
	if r := c.htq(t, "", "queue", "pause", "emails").ok(t); r.stdout != "queue \"emails\" paused\n" {
		t.Fatalf("pause: %q", r.stdout)
	}
	if r := c.htq(t, "", "queue", "resume", "emails").ok(t); r.stdout != "queue \"emails\" running\n" {
		t.Fatalf("resume: %q", r.stdout)
	}
	// purge and rm ask first; "n" changes nothing, --yes goes ahead.
	if r := c.htq(t, "n\n", "queue", "purge", "emails"); r.code != 1 || !strings.Contains(r.stderr, `Purge queue "emails" (2 queued, 1 scheduled)? [y/N]`) {
		t.Fatalf("purge answered n: %+v", r)
	}
	if r := c.htq(t, "", "queue", "purge", "emails"); r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("purge without an answer: %+v", r)
	}
	if r := c.htq(t, "y\n", "queue", "purge", "emails").ok(t); r.stdout != "purged 3 tasks from \"emails\"\n" {
		t.Fatalf("purge: %q", r.stdout)
	}
	c.htq(t, "", "queue", "rm", "feeds", "--yes").ok(t)
	if r := c.htq(t, "", "queue", "get", "feeds"); r.code != 3 || !strings.Contains(r.stderr, "queue_not_found") {
		t.Fatalf("get of a deleted queue: %+v", r)
	}
}

// TestTaskCommands: push (flags and stdin), get, ls, cancel, retry.
func TestTaskCommands(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.htq(t, "", "queue", "put", "q").ok(t)
	r := c.htq(t, "", "task", "push", "-q", "q", "http://127.0.0.1:9/hook", "-X", "post", "-H", "X-Trace=abc",
		"--json", `{"order": 42}`, "--timeout", "5s", "--max-attempts", "3", "--idempotency-key", "order-42", "-o", "json").ok(t)
	var cr client.Created
	if err := json.Unmarshal([]byte(r.stdout), &cr); err != nil || cr.State != "queued" || cr.Existed {
		t.Fatalf("push: %s %v", r.stdout, err)
	}
	again := c.htq(t, "", "task", "push", "-q", "q", "http://127.0.0.1:9/hook", "--idempotency-key", "order-42", "-o", "json").ok(t)
	if !strings.Contains(again.stdout, `"existed": true`) || !strings.Contains(again.stdout, cr.ID) {
		t.Fatalf("a repeated key: %s", again.stdout)
	}
	got, err := c.api.GetTask(t.Context(), cr.ID)
	if err != nil || got.Method != http.MethodPost || got.MaxAttempts != 3 {
		t.Fatalf("the pushed task: %+v %v", got, err)
	}
	c.htq(t, `{"url":"http://127.0.0.1:9/stdin","method":"PUT","form":{"a":"1"}}`, "task", "push", "-q", "q", "-").ok(t)
	c.htq(t, "", "task", "push", "-q", "q", "http://127.0.0.1:9/at", "--at", "2030-01-02T15:04:05Z", "--data", "hello").ok(t)

	golden(t, "task_ls.txt", c.htq(t, "", "task", "ls", "-q", "q").ok(t).stdout)
	if r := c.htq(t, "", "task", "ls", "-q", "q", "--search", "/stdin", "-o", "json").ok(t); strings.Count(r.stdout, `"id"`) != 1 || !strings.Contains(r.stdout, "/stdin") {
		t.Fatalf("task ls --search: %s", r.stdout)
	}
	if r := c.htq(t, "", "export", "-q", "q", "--search", "/hook").ok(t); strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("export --search: %s", r.stdout)
	}
	golden(t, "task_ls_scheduled.json", c.htq(t, "", "task", "ls", "-q", "q", "--state", "scheduled", "-o", "json").ok(t).stdout)
	golden(t, "task_get.txt", c.htq(t, "", "task", "get", cr.ID).ok(t).stdout)
	golden(t, "task_get.json", c.htq(t, "", "task", "get", cr.ID, "-o", "json").ok(t).stdout)

	if r := c.htq(t, "", "task", "cancel", cr.ID).ok(t); r.stdout != "task "+cr.ID+" cancelled\n" {
		t.Fatalf("cancel: %q", r.stdout)
	}
	if r := c.htq(t, "", "task", "retry", cr.ID).ok(t); r.stdout != "task "+cr.ID+" queued\n" {
		t.Fatalf("retry: %q", r.stdout)
	}
	if r := c.htq(t, "", "task", "cancel", cr.ID, "-o", "json").ok(t); !strings.Contains(r.stdout, `"result": "cancelled"`) || !strings.Contains(r.stdout, `"state": "cancelled"`) {
		t.Fatalf("cancel -o json: %s", r.stdout)
	}
	if r := c.htq(t, "", "task", "retry", cr.ID).ok(t); r.stdout != "task "+cr.ID+" queued\n" {
		t.Fatalf("retry: %q", r.stdout)
	}
	if r := c.htq(t, "", "task", "retry", cr.ID); r.code != 1 || !strings.Contains(r.stderr, "task_not_dead") {
		t.Fatalf("retry of a queued task: %+v", r)
	}
	if r := c.htq(t, "", "task", "get", "00000000000000"); r.code != 3 {
		t.Fatalf("get of an unknown task: %+v", r)
	}
}

// TestDeadCommands: ls across queues and with a filter, retry and rm by
// id and in bulk (a count and a question first).
func TestDeadCommands(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	for _, q := range []string{"q", "r"} {
		c.htq(t, "", "queue", "put", q).ok(t)
		for _, u := range []string{"a", "b", "c", "d"} {
			c.htq(t, "", "task", "push", "-q", q, "http://127.0.0.1:9/"+q+"/"+u).ok(t)
		}
		c.htq(t, "", "task", "push", "-q", q, "http://127.0.0.1:9/alive").ok(t)
		c.killTasks(t, q, 4) // statuses 500, 501, 500, 501
	}
	golden(t, "dead_ls.txt", c.htq(t, "", "dead", "ls").ok(t).stdout)
	var ts []client.Task
	if err := json.Unmarshal([]byte(c.htq(t, "", "dead", "ls", "-q", "q", "--status", "501", "-o", "json").ok(t).stdout), &ts); err != nil || len(ts) != 2 {
		t.Fatalf("dead ls -q q --status 501: %+v %v", ts, err)
	}
	// By id: no question asked.
	if r := c.htq(t, "", "dead", "retry", ts[0].ID).ok(t); r.stdout != "retried 1 of 1 dead letters\n" {
		t.Fatalf("retry by id: %q", r.stdout)
	}
	// A filter: a count and a question; "n" changes nothing.
	if r := c.htq(t, "n\n", "dead", "rm", "--status", "500"); r.code != 1 || !strings.Contains(r.stderr, "Delete 4 dead letters (all queues)? [y/N]") {
		t.Fatalf("rm by filter, answered n: %+v", r)
	}
	r := c.htq(t, "y\n", "dead", "rm", "-q", "q", "--status", "500")
	if r.code != 0 || !strings.Contains(r.stderr, `Delete 2 dead letters of queue "q"? [y/N]`) || r.stdout != "deleted 2 dead letters\n" {
		t.Fatalf("rm by filter: %+v", r)
	}
	alive, err := c.api.ListTasks(t.Context(), "q", client.StateQueued, client.ListOptions{})
	if err != nil || len(alive.Tasks) != 2 {
		t.Fatalf("queued after the retry: %+v %v", alive, err)
	}
	// rm skips a task that is not dead (it is not cancelled).
	if r := c.htq(t, "", "dead", "rm", alive.Tasks[0].ID); r.code != 3 || !strings.Contains(r.stderr, "none of the 1 ids is a dead letter") {
		t.Fatalf("rm of a queued task: %+v", r)
	}
	if r := c.htq(t, "", "dead", "rm", alive.Tasks[0].ID, ts[1].ID); r.code != 1 || !strings.Contains(r.stderr, "1 of 2 ids were not dead letters") {
		t.Fatalf("rm of a queued and a dead task: %+v", r)
	}
	if r := c.htq(t, "", "dead", "retry", "--all", "--yes", "-o", "json").ok(t); !strings.Contains(r.stdout, `"done": 4`) {
		t.Fatalf("retry --all: %s", r.stdout)
	}
	for q, want := range map[string]int64{"q": 2, "r": 5} {
		if qq, err := c.api.GetQueue(t.Context(), q); err != nil || qq.Counts.Dead != 0 || qq.Counts.Queued != want {
			t.Fatalf("queue %s at the end: %+v %v", q, qq, err)
		}
	}
	if r := c.htq(t, "", "dead", "retry", "--all", "--yes").ok(t); r.stdout != "no dead letters match\n" {
		t.Fatalf("retry with none left: %q", r.stdout)
	}
}

// TestScheduleCommands: put (flags and -f), ls, get, pause, resume,
// trigger, rm.
func TestScheduleCommands(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.htq(t, "", "queue", "put", "reports").ok(t)
	c.htq(t, "", "schedule", "put", "nightly", "-q", "reports", "--cron", "0 9 * * 1-5", "--tz", "Europe/Berlin",
		"--task-url", "http://127.0.0.1:9/report", "-X", "POST", "--json", `{"kind":"daily"}`, "--overlap", "allow").ok(t)
	c.htq(t, `{"queue":"reports","cron":"@every 90s","task":{"url":"http://127.0.0.1:9/poll"},"paused":true}`,
		"schedule", "put", "poll", "-f", "-").ok(t)
	if r := c.htq(t, "", "__complete", "schedule", "trigger", "n").ok(t); !strings.HasPrefix(r.stdout, "nightly\n:4\n") {
		t.Fatalf("completion of a schedule name: %q", r.stdout)
	}
	ls := c.htq(t, "", "schedule", "ls").ok(t).stdout
	if !strings.Contains(ls, "nightly") || !strings.Contains(ls, "@every 90s") {
		t.Fatalf("schedule ls:\n%s", ls)
	}
	golden(t, "schedule_ls.txt", reTime.ReplaceAllString(ls, "<time>"))
	var s client.Schedule
	if err := json.Unmarshal([]byte(c.htq(t, "", "schedule", "get", "nightly", "-o", "json").ok(t).stdout), &s); err != nil ||
		s.TimeZone != "Europe/Berlin" || s.Overlap != "allow" || len(s.NextRuns) != 5 || string(s.Task) == "" {
		t.Fatalf("schedule get: %+v %v", s, err)
	}
	if r := c.htq(t, "", "schedule", "pause", "nightly").ok(t); r.stdout != "schedule \"nightly\" paused\n" {
		t.Fatalf("pause: %q", r.stdout)
	}
	if r := c.htq(t, "", "schedule", "resume", "nightly").ok(t); r.stdout != "schedule \"nightly\" running\n" {
		t.Fatalf("resume: %q", r.stdout)
	}
	if r := c.htq(t, "", "schedule", "trigger", "nightly").ok(t); !strings.Contains(r.stdout, `created in "reports"`) {
		t.Fatalf("trigger: %q", r.stdout)
	}
	if q, err := c.api.GetQueue(t.Context(), "reports"); err != nil || q.Counts.Queued != 1 {
		t.Fatalf("after trigger: %+v %v", q, err)
	}
	if r := c.htq(t, "", "schedule", "put", "bad", "-q", "reports", "--cron", "0 25 * * *", "--task-url", "http://127.0.0.1:9/"); r.code != 1 || !strings.Contains(r.stderr, "cron") {
		t.Fatalf("a bad cron: %+v", r)
	}
	c.htq(t, "", "schedule", "rm", "nightly").ok(t)
	if r := c.htq(t, "", "schedule", "get", "nightly"); r.code != 3 {
		t.Fatalf("get of a deleted schedule: %+v", r)
	}
}

// TestStatsAndExport: the counts of every queue; export streams NDJSON.
func TestStatsAndExport(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.htq(t, "", "queue", "put", "a").ok(t)
	c.htq(t, "", "queue", "put", "b").ok(t)
	c.htq(t, "", "queue", "pause", "b").ok(t)
	tasks := make([]client.TaskRequest, 2500)
	for i := range tasks {
		tasks[i] = client.TaskRequest{URL: "http://127.0.0.1:9/x"}
	}
	for i := 0; i < len(tasks); i += 1000 {
		if _, err := c.api.CreateTasks(t.Context(), "a", tasks[i:min(i+1000, len(tasks))]); err != nil {
			t.Fatal(err)
		}
	}
	c.htq(t, "", "task", "push", "-q", "b", "http://127.0.0.1:9/y", "--delay", "1h").ok(t)
	golden(t, "stats.txt", c.htq(t, "", "stats").ok(t).stdout)
	golden(t, "stats.json", c.htq(t, "", "stats", "-o", "json").ok(t).stdout)

	out := c.htq(t, "", "export", "-q", "a").ok(t).stdout
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		var tk client.Task
		if err := json.Unmarshal([]byte(l), &tk); err != nil || tk.Queue != "a" || seen[tk.ID] {
			t.Fatalf("export line %q: %v", l, err)
		}
		seen[tk.ID] = true
	}
	if len(seen) != 2500 {
		t.Fatalf("export wrote %d tasks, want 2500 (three pages)", len(seen))
	}
	if out := c.htq(t, "", "export", "-q", "a", "--limit", "10").ok(t).stdout; strings.Count(out, "\n") != 10 {
		t.Fatalf("export --limit 10 wrote %d lines", strings.Count(out, "\n"))
	}
}

// TestVersionAndCompletion: both work without an API.
func TestVersionAndCompletion(t *testing.T) {
	t.Parallel()
	var none *cluster
	if r := none.htq(t, "", "version", "-o", "json").ok(t); !strings.Contains(r.stdout, `"version"`) {
		t.Fatalf("version: %q", r.stdout)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if r := none.htq(t, "", "completion", sh).ok(t); !strings.Contains(r.stdout, "htq") || len(r.stdout) < 500 {
			t.Fatalf("completion %s: %q", sh, r.stdout)
		}
	}
}
