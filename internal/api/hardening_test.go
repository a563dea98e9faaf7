package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/metrics"
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

// sendHost sends a request addressed to host (the Host header), with the
// given headers, to the test server.
func (e *testEnv) sendHost(method, path, host string, hdr ...string) *result {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, e.ts.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &result{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestCORS: without cors_origins no answer allows cross-origin access;
// with them, exactly the listed origins are allowed, with credentials only
// when asked (the config refuses credentials with "*").
func TestCORS(t *testing.T) {
	t.Parallel()
	preflight := []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "DELETE",
		"Access-Control-Request-Headers", "authorization"}
	t.Run("none by default", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		for _, r := range []*result{
			e.sendHost(http.MethodGet, "/v1/queues", "", "Origin", "https://evil.example", "Authorization", "Bearer "+testToken),
			e.sendHost(http.MethodGet, "/metrics", "", "Origin", "https://evil.example"),
			e.sendHost(http.MethodOptions, "/v1/queues/q", "", preflight...),
			e.sendHost(http.MethodGet, "/readyz", "", "Origin", "null"),
		} {
			for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods"} {
				if v := r.header.Get(h); v != "" {
					t.Errorf("%v: %s: %s", r, h, v)
				}
			}
		}
	})
	t.Run("listed origins", func(t *testing.T) {
		t.Parallel()
		e := newEnvWith(t, envOptions{mutate: func(c *api.Config) {
			c.CORSOrigins, c.CORSCredentials = []string{"https://console.example"}, true
		}})
		r := e.sendHost(http.MethodGet, "/v1/queues", "", "Origin", "https://console.example", "Authorization", "Bearer "+testToken)
		if r.header.Get("Access-Control-Allow-Origin") != "https://console.example" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("listed origin: %v %v", r, r.header)
		}
		r = e.sendHost(http.MethodOptions, "/v1/queues/q", "", "Origin", "https://console.example", "Access-Control-Request-Method", "DELETE")
		if r.header.Get("Access-Control-Allow-Origin") != "https://console.example" {
			t.Errorf("listed origin's preflight: %v %v", r, r.header)
		}
		r = e.sendHost(http.MethodOptions, "/v1/queues/q", "", preflight...)
		if v := r.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("unlisted origin's preflight allowed: %s", v)
		}
	})
}

// TestInsecureNoAuthRefusesOtherHostsAndOrigins: without authentication the
// API says so loudly at start, and /v1 answers only requests addressed to
// loopback or a configured name (no DNS rebinding) and not sent from
// another origin (no page the user opens can drive it).
func TestInsecureNoAuthRefusesOtherHostsAndOrigins(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	e := newEnvWith(t, envOptions{mutate: func(c *api.Config) {
		c.InsecureNoAuth, c.Tokens = true, nil
		c.AllowedHosts = []string{"htq.internal"}
		c.CORSOrigins = []string{"https://console.example"}
	}, log: &logs})
	if !strings.Contains(logs.String(), "AUTHENTICATION IS OFF") || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("no warning at start: %q", logs.String())
	}
	port := e.ts.Listener.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		host   string
		hdr    []string
		status int
	}{
		{"", nil, http.StatusOK}, // 127.0.0.1:port
		{"localhost:" + strconv.Itoa(port), nil, http.StatusOK},
		{"LOCALHOST", nil, http.StatusOK},
		{"[::1]:" + strconv.Itoa(port), nil, http.StatusOK},
		{"127.1.2.3", nil, http.StatusOK},
		{"htq.internal:5999", nil, http.StatusOK},
		{"HTQ.internal.", nil, http.StatusOK},
		{"evil.example", nil, http.StatusMisdirectedRequest},
		{"evil.example:" + strconv.Itoa(port), nil, http.StatusMisdirectedRequest},
		{"10.0.0.1", nil, http.StatusMisdirectedRequest},
		{"localhost.evil.example", nil, http.StatusMisdirectedRequest},
		{"", []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"", []string{"Origin", "null"}, http.StatusForbidden},
		{"", []string{"Origin", "https://console.example"}, http.StatusOK},
		{"localhost:" + strconv.Itoa(port), []string{"Origin", "http://localhost:" + strconv.Itoa(port)}, http.StatusOK}, // same origin
	} {
		r := e.sendHost(http.MethodGet, "/v1/queues", tc.host, tc.hdr...)
		if r.status != tc.status {
			t.Errorf("Host %q %v: %v, want %d", tc.host, tc.hdr, r, tc.status)
		}
	}
	// a cross-origin "simple" POST, which a browser sends without asking
	r := e.sendHost(http.MethodPost, "/v1/queues/q/pause", "", "Origin", "https://evil.example", "Content-Type", "text/plain")
	e.wantError(r, http.StatusForbidden, "forbidden", "api.cors_origins")
	// health needs no Host check: probes address pods by IP
	if r := e.sendHost(http.MethodGet, "/healthz", "10.0.0.1"); r.status != http.StatusOK {
		t.Errorf("/healthz by IP: %v", r)
	}
}

// TestVariableQueuesHaveAFloorGap: a variable queue may not settle on gaps
// below queues.min_variable_gap, through REST or the legacy addQueue: a
// max_time_interval of 1ns once let one task call its target 70 times in
// 3 s.
func TestVariableQueuesHaveAFloorGap(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{mutate: func(c *api.Config) { c.MinVariableGap = time.Second }})
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"1ns maximum", map[string]any{"type": "variable", "stepping_time": 1, "max_time_interval": "1ns"}, "max_time_interval"},
		{"no stepping", map[string]any{"type": "variable", "stepping_time": 0, "max_time_interval": 5}, "stepping_time"},
		{"stepping left out", map[string]any{"type": "variable", "max_time_interval": 5}, "stepping_time"},
		{"sub-second stepping", map[string]any{"type": "variable", "stepping_time": "999ms", "max_time_interval": 5}, "stepping_time"},
	} {
		e.wantError(e.rest(http.MethodPut, "/v1/queues/v", tc.body), http.StatusUnprocessableEntity, "validation_failed",
			tc.field, "queues.min_variable_gap")
	}
	e.putQueue("v", map[string]any{"type": "variable", "stepping_time": 1, "max_time_interval": "1s"})
	// an update may not take it below the floor either
	e.wantError(e.rest(http.MethodPut, "/v1/queues/v", map[string]any{"max_time_interval": "500ms"}),
		http.StatusUnprocessableEntity, "validation_failed", "max_time_interval")
	// other queue types have no gaps to bound
	e.putQueue("r", map[string]any{"type": "realtime", "stepping_time": 0})

	// Legacy: the SDK's 0 is raised to the floor (issue 13); a gap posted
	// below it is refused like a REST one.
	wantLegacy(t, e.legacy("addQueue", encMultipart, creds("queue_name", "lv", "type", "variable", "stepping_time", "0.5", "max_time_interval", "5")),
		1005, "stepping_time", "queues.min_variable_gap")
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "lz", "type", "variable", "stepping_time", "0", "max_time_interval", "5")), bodyAdded)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "lv", "type", "variable", "stepping_time", "1", "max_time_interval", "0")), bodyAdded)
}

// TestReadyzDoesNotDiscloseRedis: /readyz needs no token, so when Redis is
// down it says so without Redis's address.
func TestReadyzDoesNotDiscloseRedis(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	st, err := store.New(rdb, keyPrefix, clock.NewFake(testNow))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv, err := api.New(testConfig(time.UTC), st, clock.NewFake(testNow), testLogger(t), metrics.NewAPI(reg), reg, true)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	_, port, _ := net.SplitHostPort(addr)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "redis unreachable") ||
		strings.Contains(rec.Body.String(), port) || strings.Contains(rec.Body.String(), "127.0.0.1") {
		t.Fatalf("/readyz with Redis down: %d %s", rec.Code, rec.Body.String())
	}
}

// TestLegacyAnswersEscapeWhatTheyEcho: the messages of the codes the
// original never sent (1005 on) quote the client's values with <, > and &
// escaped; the original's own answers stay byte for byte. Every answer,
// REST or legacy, says nosniff.
func TestLegacyAnswersEscapeWhatTheyEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.legacy("addQueue", encMultipart, creds("queue_name", "q", "type", "variable", "stepping_time", "<script>alert(1)</script>"))
	wantLegacy(t, r, 1005, "stepping_time", "<script>") // decoded
	if strings.Contains(string(r.body), "<script>") || !strings.Contains(string(r.body), `\u003cscript\u003e`) {
		t.Errorf("echo not escaped: %s", r.body)
	}
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "<b>", "type", "real_time")), bodyAdded)
	r = e.legacy("allQueue", encMultipart, creds())
	if !strings.Contains(string(r.body), `"queue_name":"<b>"`) {
		t.Errorf("allQueue is no longer as the original wrote it: %s", r.body)
	}
	for _, r := range []*result{
		r, e.legacy("addQueue", encMultipart, creds()),
		e.rest(http.MethodGet, "/v1/queues", nil), e.rest(http.MethodGet, "/v1/nowhere", nil),
		e.rest(http.MethodGet, "/v1/queues", nil, "Authorization", "-"),
		e.rest(http.MethodGet, "/healthz", nil), e.rest(http.MethodGet, "/metrics", nil), e.rest(http.MethodGet, "/openapi.yaml", nil),
		e.rest(http.MethodGet, "/", nil),
	} {
		if v := r.header.Get("X-Content-Type-Options"); v != "nosniff" {
			t.Errorf("%v: X-Content-Type-Options %q", r, v)
		}
	}
}

// TestLegacyStoredStringsAreBounded: addQueue stores type, stepping_time
// and max_time_interval as posted, and every allQueue lists them: each is
// bounded (a 900 KB type was once accepted).
func TestLegacyStoredStringsAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wantLegacy(t, e.legacy("addQueue", encMultipart, creds("queue_name", "a", "type", strings.Repeat("t", 900_000))), 1005, "type")
	wantLegacy(t, e.legacy("addQueue", encMultipart, creds("queue_name", "b", "type", "variable", "stepping_time", "1"+strings.Repeat(" ", 100_000),
		"max_time_interval", "5")), 1005, "stepping_time")
	wantLegacy(t, e.legacy("addQueue", encMultipart, creds("queue_name", "c", "type", "real_time", "max_time_interval", strings.Repeat(" ", 1000)+"0")),
		1005, "max_time_interval")
	wantBody(t, e.legacy("allQueue", encMultipart, creds()), `[]`)
	wantBody(t, e.legacy("addQueue", encMultipart, creds("queue_name", "d", "type", strings.Repeat("t", 64))), bodyAdded)
}

// TestPathTricksNeverReachAHandlerWithoutAToken keeps the probe's passing
// classes: spellings of a /v1 path that a lax router might clean up or
// match are refused without a token and change nothing, and
// method-override headers are ignored.
func TestPathTricksNeverReachAHandlerWithoutAToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	e.addTask("q", map[string]any{"url": "http://x/"})
	before := e.snapshot()
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "//v1/queues"},
		{http.MethodGet, "/v1/./queues"},
		{http.MethodGet, "/v1/queues/%2e%2e/x"},
		{http.MethodGet, "/v1/queues/../queues"},
		{http.MethodGet, "/V1/queues"},
		{http.MethodGet, "/v1//queues"},
		{http.MethodGet, "/v1%2fqueues"},
		{http.MethodGet, "/api/../v1/queues"},
		{http.MethodDelete, "//v1/queues/q"},
		{http.MethodDelete, "/v1/./queues/q"},
		{http.MethodDelete, "/V1/queues/q"},
		{http.MethodPost, "/v1/queues/%2e%2e/v1/queues/q/purge"},
		{http.MethodPost, "//v1/queues/q/purge"},
	} {
		r := e.send(tc.method, tc.path, nil, nil)
		if r.status == http.StatusOK || r.status == http.StatusNoContent || r.status/100 == 5 {
			t.Errorf("%s %s without a token: %v", tc.method, tc.path, r)
		}
		if r.status != http.StatusUnauthorized && r.status != http.StatusNotFound && r.status != http.StatusMovedPermanently &&
			r.status != http.StatusBadRequest && r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s without a token: %v, want 401, 404, 400, 405 or a redirect", tc.method, tc.path, r)
		}
	}
	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Fatalf("requests without a token changed Redis: %v", d)
	}
	// an overriding header does not turn a GET into a DELETE, with or without a token
	for _, h := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
		r := e.send(http.MethodGet, "/v1/queues/q", nil, http.Header{h: {"DELETE"}})
		if r.status != http.StatusUnauthorized {
			t.Errorf("GET with %s: DELETE and no token: %v", h, r)
		}
		e.must(e.rest(http.MethodGet, "/v1/queues/q", nil, h, "DELETE"), http.StatusOK, nil)
		if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
			t.Fatalf("GET with %s: DELETE changed Redis: %v", h, d)
		}
	}
	var tj taskJSON
	e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks", map[string]any{"url": "http://x/"}, "X-HTTP-Method-Override", "DELETE"), http.StatusCreated, &tj)
	if q := e.getQueue("q"); q.Counts.Queued != 2 {
		t.Fatalf("POST with X-HTTP-Method-Override: DELETE: queue %+v", q)
	}
}
