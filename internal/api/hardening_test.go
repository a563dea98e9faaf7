package api_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// TestEchoedValuesAreClipped: an error quotes at most a short piece of a
// bad value, however long the value (a 0.9 MB timeout string once came
// back in a 5.4 MB error).
func TestEchoedValuesAreClipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	huge := strings.Repeat("9x", 450_000)
	for _, tc := range []struct{ name, method, path, body, code string }{
		{"timeout string", http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://x","timeout":"` + huge + `"}`, "validation_failed"},
		{"queue timeout string", http.MethodPut, "/v1/queues/q", `{"timeout":"P` + huge + `"}`, "validation_failed"},
		{"unknown field", http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://x","` + huge + `":1}`, "invalid_json"},
		{"number for a string", http.MethodPost, "/v1/queues/q/tasks", `{"url":1` + strings.Repeat("0", 900_000) + `}`, "invalid_json"},
		{"queue type", http.MethodPut, "/v1/queues/q", `{"type":"` + huge + `"}`, "validation_failed"},
		{"run_at", http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://x","run_at":"` + huge + `"}`, "validation_failed"},
	} {
		r := e.rest(tc.method, tc.path, tc.body)
		if r.status/100 != 4 {
			t.Errorf("%s: %v, want a 4xx", tc.name, r)
			continue
		}
		code, msg := restError(t, r)
		if code != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, code, tc.code)
		}
		if len(r.body) > 2048 {
			t.Errorf("%s: %d-byte error answer to a %d-byte body: %.200s…", tc.name, len(r.body), len(tc.body), msg)
		}
	}
}

// TestDueTimesBeyondYear9999InUTCAreRefused: a due time is checked in UTC
// against what can be stored and shown (1970 to the end of 9999), on every
// path that takes one. A run_at that passed the year check in its own
// offset was stored, then every answer about it failed to encode (503,
// and each plain retry stored one more task).
func TestDueTimesBeyondYear9999InUTCAreRefused(t *testing.T) {
	t.Parallel()
	west, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, envOptions{zone: west})
	e.putQueue("q", map[string]any{})
	before := e.snapshot()
	for _, runAt := range []string{
		"9999-12-31T23:59:59-23:59",     // year 10000 in UTC
		"9999-12-31T23:59:59.9999Z",     // rounds up to the next millisecond: year 10000
		"1970-01-01T00:00:00.000+00:01", // before 1970 in UTC
	} {
		e.wantError(e.rest(http.MethodPost, "/v1/queues/q/tasks", map[string]any{"url": "http://x", "run_at": runAt}),
			http.StatusUnprocessableEntity, "validation_failed", "run_at", "out of range")
		e.wantError(e.rest(http.MethodPost, "/v1/queues/q/tasks/batch", map[string]any{"tasks": []any{map[string]any{"url": "http://x", "run_at": runAt}}}),
			http.StatusUnprocessableEntity, "validation_failed", "tasks[0]", "run_at")
	}
	// legacy execute_time is read in api.time_zone, here west of UTC
	wantLegacy(t, e.legacy("addTask", encMultipart, creds("queue_name", "q", "url", "http://x", "execute_time", "9999-12-31 23:59:59")),
		1005, "execute_time")
	// a delay that ends after 9999
	e.clk.Set(time.Date(9990, 1, 1, 0, 0, 0, 0, time.UTC))
	e.wantError(e.rest(http.MethodPost, "/v1/queues/q/tasks", map[string]any{"url": "http://x", "delay": "876000h"}),
		http.StatusUnprocessableEntity, "validation_failed", "delay", "out of range")
	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Fatalf("refused requests changed Redis: %v", d)
	}
	e.clk.Set(testNow)

	// the last millisecond of 9999 is fine, and its task can be read
	tj := e.addTask("q", map[string]any{"url": "http://x", "run_at": "9999-12-31T15:59:59.999-08:00"})
	var got taskJSON
	e.must(e.rest(http.MethodGet, "/v1/tasks/"+tj.ID, nil), http.StatusOK, &got)
	if got.RunAt == nil || !got.RunAt.Equal(time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)) {
		t.Fatalf("run_at = %v", got.RunAt)
	}
	e.must(e.rest(http.MethodGet, "/v1/queues/q/tasks?state=scheduled", nil), http.StatusOK, nil)
	wantLegacy(t, e.legacy("addTask", encMultipart, creds("queue_name", "q", "url", "http://x", "execute_time", "9999-12-31 15:59:59")), 0)
}

// TestStoredTimesBeyondYear9999StillRead: a task stored with a due time
// that JSON cannot hold (by a version without the range check) can still
// be read and listed, without the time, instead of failing every answer.
func TestStoredTimesBeyondYear9999StillRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	due := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	res, err := e.st.Enqueue(e.ctx, "q", []store.NewTask{{Due: due, Spec: &task.Spec{Method: "GET", URL: "http://x/", RunAtMs: due.UnixMilli()}}}, store.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.must(e.rest(http.MethodGet, "/v1/tasks/"+res.Tasks[0].ID, nil), http.StatusOK, nil)
	e.must(e.rest(http.MethodGet, "/v1/queues/q/tasks?state=scheduled", nil), http.StatusOK, nil)
}

// TestClientFaultsAreNotServerErrors: what a client does wrong is a 4xx,
// never a 503 "the change may or may not have been made" (which any token
// holder could use to trip the 5xx alerts): a body cut off by the read
// timeout is 408, a client that hangs up mid-body 400, a list cursor whose
// parts do not fit in 64 bits 400.
func TestClientFaultsAreNotServerErrors(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{mutate: func(c *api.Config) { c.ReadTimeout = 300 * time.Millisecond }})
	e.putQueue("q", map[string]any{})
	addr := e.serve()
	req := "POST /v1/queues/q/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + testToken +
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"url\":"

	// too slow: the rest of the body never comes
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("stalled body: HTTP %d, want 408", resp.StatusCode)
	}

	// gone: the client closes its connection mid-body
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn2.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = conn2.(*net.TCPConn).CloseWrite()
	_ = conn2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(conn2), nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("body cut short: HTTP %d, want 400", resp.StatusCode)
		}
	}
	conn2.Close()

	// (nothing can follow the largest stream id either)
	for _, cursor := range []string{"18446744073709551616-0", "0-99999999999999999999", "18446744073709551615-18446744073709551615"} {
		e.wantError(e.rest(http.MethodGet, "/v1/queues/q/tasks?state=queued&cursor="+cursor, nil), http.StatusBadRequest, "bad_request", "cursor")
	}
	e.must(e.rest(http.MethodGet, "/v1/queues/q/tasks?state=queued&cursor=18446744073709551615-0", nil), http.StatusOK, nil)

	for _, code := range []string{"500", "503"} {
		if v, ok := e.metricValue(`htq_api_requests_total{code="` + code + `",method="POST",route="/v1/queues/:queue/tasks"}`); ok {
			t.Errorf("%v requests counted as %s", v, code)
		}
		if v, ok := e.metricValue(`htq_api_requests_total{code="` + code + `",method="GET",route="/v1/queues/:queue/tasks"}`); ok {
			t.Errorf("%v list requests counted as %s", v, code)
		}
	}
	if v := e.metric(`htq_api_requests_total{code="400",method="POST",route="/v1/queues/:queue/tasks"}`); v != 1 {
		t.Errorf("%v requests cut short counted as 400, want 1", v)
	}
}
