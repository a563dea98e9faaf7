package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// fillQueue creates a realtime queue that holds at most max tasks and
// fills it through REST.
func (e *testEnv) fillQueue(name string, max int) {
	e.t.Helper()
	e.putQueue(name, map[string]any{"max_backlog": max})
	for range max {
		e.addTask(name, map[string]any{"url": "http://example.com/fill"})
	}
}

// TestQueueFullREST: a full queue refuses a task with 429 queue_full and
// a JSON error naming the queue and its limit, stores nothing, and counts
// the refusal; a batch that would cross the limit is refused whole.
func TestQueueFullREST(t *testing.T) {
	t.Parallel()
	const series = `htq_api_tasks_rejected_total{reason="queue_full"}`
	e := newEnv(t)
	e.fillQueue("tiny", 2)
	before := e.snapshot()

	r := e.rest(http.MethodPost, "/v1/queues/tiny/tasks", `{"url":"http://example.com/over"}`)
	e.wantError(r, http.StatusTooManyRequests, "queue_full", `queue "tiny" is full`, "2 tasks waiting", "limit 2", "adding 1")
	if got := e.metric(series); got != 1 {
		t.Errorf("%s = %v, want 1", series, got)
	}

	r = e.rest(http.MethodPost, "/v1/queues/tiny/tasks/batch",
		`{"tasks":[{"url":"http://example.com/b1"},{"url":"http://example.com/b2"},{"url":"http://example.com/b3"}]}`)
	e.wantError(r, http.StatusTooManyRequests, "queue_full", `queue "tiny" is full`, "limit 2", "adding 3")
	if got := e.metric(series); got != 4 {
		t.Errorf("%s = %v after a refused batch of 3, want 4", series, got)
	}

	// an idempotent request for a full queue is refused too, and leaves no
	// key behind that would make its retry a "repeat" of nothing
	r = e.rest(http.MethodPost, "/v1/queues/tiny/tasks", `{"url":"http://example.com/over"}`, "Idempotency-Key", "k1")
	e.wantError(r, http.StatusTooManyRequests, "queue_full")

	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Errorf("refused enqueues changed Redis: %v", d)
	}
	if q := e.getQueue("tiny"); q.Counts.Queued != 2 {
		t.Errorf("queued = %d, want 2", q.Counts.Queued)
	}

	// room again: the same idempotency key now creates the task
	e.killTasks("tiny", 1)
	e.rest(http.MethodDelete, "/v1/tasks/"+e.storedTasks("tiny", "dead")[0].ID, nil)
	var created taskJSON
	e.must(e.rest(http.MethodPost, "/v1/queues/tiny/tasks", `{"url":"http://example.com/over"}`, "Idempotency-Key", "k1"),
		http.StatusCreated, &created)
	if created.Existed {
		t.Errorf("the task refused while the queue was full counts as existing: %+v", created)
	}
}

// TestQueueFullLegacy: legacy addTask on a full queue answers 1001 with the
// original's "add failed" message followed by why, and stores nothing.
func TestQueueFullLegacy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fillQueue("tiny", 2)
	before := e.snapshot()
	for _, enc := range encodings {
		r := e.legacy("addTask", enc, creds("queue_name", "tiny", "url", "http://example.com/over", "execute_time", "0",
			"method", "get", "header", "[]", "data", "[]"))
		b := wantLegacy(t, r, 1001, "队列已满", `queue "tiny" is full`, "limit 2")
		if !strings.HasPrefix(b.Message, "添加失败：") {
			t.Errorf("%s: message %q does not start with 添加失败：", enc, b.Message)
		}
	}
	// a future-dated task counts against the backlog as well
	r := e.legacy("addTask", encMultipart, creds("queue_name", "tiny", "url", "http://example.com/later",
		"execute_time", "2030-01-02 03:04:05"))
	wantLegacy(t, r, 1001, "队列已满")
	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Errorf("refused legacy adds changed Redis: %v", d)
	}
	if got := e.metric(`htq_api_tasks_rejected_total{reason="queue_full"}`); got != 3 {
		t.Errorf("queue_full rejections = %v, want 3", got)
	}
	b := wantLegacy(t, e.legacy("countQueue", encMultipart, creds("queue_name", "tiny")), 0)
	if b.Count == nil || *b.Count != 2 {
		t.Errorf("countQueue after refused adds: %+v, want 2", b)
	}
}
