package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Shanghai without the system's zoneinfo

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Credentials every test server accepts.
const (
	testToken    = "s3cret-token"
	testAppKey   = "htq-app"
	testAppToken = "htq-app-token"
	keyPrefix    = "htq:"
)

// testNow is the fake clock's start: a whole second, so "the same second"
// is easy to reason about.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testEnv is one API server on its own redis-server.
type testEnv struct {
	t     *testing.T
	ctx   context.Context
	redis *redistest.Server
	rdb   *redis.Client
	st    *store.Store
	clk   *clock.Fake // nil when the real clock is used
	cfg   api.Config
	srv   *api.Server
	ts    *httptest.Server
	hc    *http.Client
}

type envOptions struct {
	realClock bool
	zone      *time.Location
	mutate    func(*api.Config)
	log       io.Writer // also gets the server's log, at every level
}

func testConfig(zone *time.Location) api.Config {
	return api.Config{
		Tokens: [][sha256.Size]byte{sha256.Sum256([]byte(testToken))},
		Legacy: legacy.Settings{
			AppKey: testAppKey, AppToken: testAppToken, TimeZone: zone,
			// the queue defaults' attempts, and legacy.min_gap's default
			MaxAttempts: task.DefaultMaxAttempts, MinGap: time.Second,
		},
		MaxBodyBytes:      1 << 20,
		MaxBatch:          1000,
		Limits:            task.Limits{MaxURLBytes: 8192, MaxHeaderBytes: 65536, MaxBodyBytes: 1 << 20},
		QueueDefaults:     task.DefaultQueueConfig(),
		IdempotencyWindow: 24 * time.Hour,
		ReadHeaderTimeout: 5 * time.Second,
		Version:           "test",
	}
}

// newEnv starts a redis-server, a store on it and the API behind an
// httptest server, with a fake clock at testNow and the UTC zone.
func newEnv(t *testing.T) *testEnv { t.Helper(); return newEnvWith(t, envOptions{}) }

func newEnvWith(t *testing.T, o envOptions) *testEnv {
	t.Helper()
	e := &testEnv{t: t, ctx: t.Context()}
	e.redis = redistest.Start(t)
	e.rdb = e.redis.Client(t)
	var clk clock.Clock = clock.Real{}
	if !o.realClock {
		e.clk = clock.NewFake(testNow)
		clk = e.clk
	}
	st, err := store.New(e.rdb, keyPrefix, clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.st = st
	zone := o.zone
	if zone == nil {
		zone = time.UTC
	}
	e.cfg = testConfig(zone)
	if o.mutate != nil {
		o.mutate(&e.cfg)
	}
	reg := prometheus.NewRegistry()
	log := testLogger(t)
	if o.log != nil {
		log = slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, o.log), nil))
	}
	srv, err := api.New(e.cfg, st, clk, log, metrics.NewAPI(reg), reg, true)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	e.hc = e.ts.Client()
	e.hc.Timeout = 20 * time.Second
	return e
}

// testLogger writes to t.Log, so a failing test shows what the server said.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// result is an HTTP answer, read in full.
type result struct {
	status int
	header http.Header
	body   []byte
}

func (r *result) String() string {
	return fmt.Sprintf("HTTP %d %s", r.status, clipBytes(r.body, 300))
}

func clipBytes(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// send sends a request whose target is written exactly as given (so tests
// can send paths that a url.URL could not hold, like a bad %-escape).
func (e *testEnv) send(method, target string, body io.Reader, hdr http.Header) *result {
	e.t.Helper()
	base, _ := url.Parse(e.ts.URL)
	req, err := http.NewRequestWithContext(e.ctx, method, e.ts.URL, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	req.URL = &url.URL{Scheme: base.Scheme, Host: base.Host, Opaque: target}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return &result{status: resp.StatusCode, header: resp.Header, body: b}
}

// rest sends a REST request with the bearer token. body is nil, a string
// or []byte (sent as is) or anything else (sent as JSON). hdr are name,
// value pairs; a value of "-" removes the header (e.g. Authorization).
func (e *testEnv) rest(method, target string, body any, hdr ...string) *result {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	h := http.Header{"Authorization": {"Bearer " + testToken}}
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "-" {
			h.Del(hdr[i])
		} else {
			h.Set(hdr[i], hdr[i+1])
		}
	}
	return e.send(method, target, r, h)
}

// must checks the status of a REST answer and decodes its JSON into v.
func (e *testEnv) must(r *result, status int, v any) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("got %v, want HTTP %d", r, status)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			e.t.Fatalf("decode %v: %v", r, err)
		}
	}
}

// restError decodes {"error":{"code","message"}} and fails unless both
// are present.
func restError(t *testing.T, r *result) (code, msg string) {
	t.Helper()
	var b struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error == nil {
		t.Fatalf("%v: not a JSON error body (%v)", r, err)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%v: Content-Type %q, want JSON", r, ct)
	}
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("%v: error without code or message", r)
	}
	return b.Error.Code, b.Error.Message
}

// wantError checks a REST error answer: status, code (if given) and that
// the message contains each of the given substrings.
func (e *testEnv) wantError(r *result, status int, code string, msgHas ...string) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("got %v, want HTTP %d", r, status)
	}
	c, m := restError(e.t, r)
	if code != "" && c != code {
		e.t.Errorf("%v: code %q, want %q", r, c, code)
	}
	for _, s := range msgHas {
		if !strings.Contains(m, s) {
			e.t.Errorf("%v: message %q does not mention %q", r, m, s)
		}
	}
}

// Form encodings a legacy client may use.
const (
	encMultipart  = "multipart"
	encURLEncoded = "urlencoded"
)

var encodings = []string{encMultipart, encURLEncoded}

// form is an ordered list of form fields.
type form [][2]string

// creds returns the legacy credentials followed by the given fields.
func creds(fields ...string) form {
	f := form{{"app_key", testAppKey}, {"app_token", testAppToken}}
	for i := 0; i+1 < len(fields); i += 2 {
		f = append(f, [2]string{fields[i], fields[i+1]})
	}
	return f
}

// fields returns the given name, value pairs as a form.
func fields(kv ...string) form {
	var f form
	for i := 0; i+1 < len(kv); i += 2 {
		f = append(f, [2]string{kv[i], kv[i+1]})
	}
	return f
}

// encodeForm encodes fields in order, as the PHP SDK (curl) posts them.
func encodeForm(t *testing.T, enc string, f form) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	switch enc {
	case encMultipart:
		w := multipart.NewWriter(&buf)
		for _, kv := range f {
			if err := w.WriteField(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), w.FormDataContentType()
	case encURLEncoded:
		for i, kv := range f {
			if i > 0 {
				buf.WriteByte('&')
			}
			buf.WriteString(url.QueryEscape(kv[0]) + "=" + url.QueryEscape(kv[1]))
		}
		return buf.Bytes(), "application/x-www-form-urlencoded"
	}
	t.Fatalf("unknown encoding %q", enc)
	return nil, ""
}

// legacy posts a form to /api/<endpoint>.
func (e *testEnv) legacy(endpoint, enc string, f form) *result {
	e.t.Helper()
	body, ct := encodeForm(e.t, enc, f)
	return e.send(http.MethodPost, "/api/"+endpoint, bytes.NewReader(body), http.Header{"Content-Type": {ct}})
}

// legacyBody is a legacy answer object.
type legacyBody struct {
	ErrorCode *int   `json:"error_code"`
	Message   string `json:"message"`
	Count     *int64 `json:"count"`
}

// legacyResult checks that r is a legacy answer (HTTP 200, JSON) and
// decodes it.
func legacyResult(t *testing.T, r *result) legacyBody {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("legacy answer %v: want HTTP 200", r)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("legacy answer %v: Content-Type %q", r, ct)
	}
	var b legacyBody
	if err := json.Unmarshal(r.body, &b); err != nil || b.ErrorCode == nil {
		t.Fatalf("legacy answer %v: not an error_code object (%v)", r, err)
	}
	return b
}

// wantLegacy checks a legacy answer's code and that its message contains
// each of the given substrings (and is not empty unless code is 0).
func wantLegacy(t *testing.T, r *result, code int, msgHas ...string) legacyBody {
	t.Helper()
	b := legacyResult(t, r)
	if *b.ErrorCode != code {
		t.Fatalf("legacy answer %v: error_code %d, want %d", r, *b.ErrorCode, code)
	}
	if code != 0 && b.Message == "" {
		t.Errorf("legacy answer %v: error without a message", r)
	}
	for _, s := range msgHas {
		if !strings.Contains(b.Message, s) {
			t.Errorf("legacy answer %v: message does not mention %q", r, s)
		}
	}
	return b
}

// wantBody checks a byte-exact legacy answer.
func wantBody(t *testing.T, r *result, body string) {
	t.Helper()
	if r.status != http.StatusOK || string(r.body) != body {
		t.Fatalf("got %v, want HTTP 200 %s", r, body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q, want application/json; charset=utf-8", ct)
	}
}

// Exact legacy bodies.
const (
	bodyAdded       = `{"error_code":0,"message":"添加成功"}`
	bodyDeleted     = `{"error_code":0,"message":"删除成功"}`
	bodyAuthFailed  = `{"error_code":1000,"message":"认证失败"}`
	bodyQueueExists = `{"error_code":1002,"message":"队列名已经存在"}`
	bodyNoQueue     = `{"error_code":1003,"message":"队列不存在，请先创建"}`
)

// queueJSON is the part of a REST queue the tests read.
type queueJSON struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Paused bool   `json:"paused"`
	Counts struct {
		Queued    int64 `json:"queued"`
		Active    int64 `json:"active"`
		Scheduled int64 `json:"scheduled"`
		Dead      int64 `json:"dead"`
	} `json:"counts"`
}

// taskJSON is the part of a REST task the tests read.
type taskJSON struct {
	ID         string     `json:"id"`
	Queue      string     `json:"queue"`
	State      string     `json:"state"`
	Method     string     `json:"method"`
	URL        string     `json:"url"`
	RunAt      *time.Time `json:"run_at"`
	Existed    bool       `json:"existed"`
	Attempts   int        `json:"attempts"`
	LastStatus int        `json:"last_status"`
	History    []struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	} `json:"history"`
}

func (e *testEnv) putQueue(name string, body any) {
	e.t.Helper()
	r := e.rest(http.MethodPut, "/v1/queues/"+url.PathEscape(name), body)
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		e.t.Fatalf("PUT queue %q: %v", name, r)
	}
}

func (e *testEnv) getQueue(name string) queueJSON {
	e.t.Helper()
	var q queueJSON
	e.must(e.rest(http.MethodGet, "/v1/queues/"+url.PathEscape(name), nil), http.StatusOK, &q)
	return q
}

func (e *testEnv) addTask(queue string, body any) taskJSON {
	e.t.Helper()
	var tj taskJSON
	e.must(e.rest(http.MethodPost, "/v1/queues/"+url.PathEscape(queue)+"/tasks", body), http.StatusCreated, &tj)
	return tj
}

// listTasks follows next_cursor to the end and returns every page's ids.
func (e *testEnv) listTasks(queue, state string, limit int) [][]string {
	e.t.Helper()
	var pages [][]string
	cursor := ""
	for range 1000 {
		target := fmt.Sprintf("/v1/queues/%s/tasks?state=%s&limit=%d", url.PathEscape(queue), state, limit)
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Tasks      []taskJSON `json:"tasks"`
			NextCursor string     `json:"next_cursor"`
		}
		e.must(e.rest(http.MethodGet, target, nil), http.StatusOK, &page)
		var ids []string
		for _, tj := range page.Tasks {
			if tj.State != state {
				e.t.Errorf("list %s: task %s is %s", state, tj.ID, tj.State)
			}
			ids = append(ids, tj.ID)
		}
		pages = append(pages, ids)
		if page.NextCursor == "" {
			return pages
		}
		cursor = page.NextCursor
	}
	e.t.Fatal("list tasks: no end of pages")
	return nil
}

// storedTasks lists a queue's tasks in one state straight from the store.
func (e *testEnv) storedTasks(queue string, state task.State) []*store.TaskInfo {
	e.t.Helper()
	ts, _, err := e.st.ListTasks(e.ctx, queue, state, "", 1000)
	if err != nil {
		e.t.Fatalf("list %s tasks of %q: %v", state, queue, err)
	}
	return ts
}

// killTasks makes the first n queued tasks of a queue dead, as a dispatcher
// would after their last failed attempt.
func (e *testEnv) killTasks(queue string, n int) {
	e.t.Helper()
	c, err := e.st.Claim(e.ctx, queue, "test", store.ClaimOptions{TTL: 10 * time.Second, Grace: 0, Want: 1})
	if err != nil || c.Status != store.ClaimOK || len(c.Deliveries) != 1 {
		e.t.Fatalf("claim %q: %+v, %v", queue, c, err)
	}
	d := c.Deliveries[0]
	for i := range n {
		want := 1
		if i == n-1 {
			want = 0
		}
		next, err := c.Owned.Complete(e.ctx, &store.Completion{
			Delivery: &d, Outcome: store.OutcomeDead, Retention: time.Hour, Want: want, HistoryLen: 3,
			Attempt: &store.AttemptRecord{At: testNow.UnixMilli(), Attempt: d.Attempt, Status: 500, Error: "test"},
		})
		if err != nil {
			e.t.Fatalf("complete: %v", err)
		}
		if i < n-1 {
			if len(next.Deliveries) != 1 {
				e.t.Fatalf("complete %d: next = %+v", i, next)
			}
			d = next.Deliveries[0]
		}
	}
	// The due-index marks are written after the script, asynchronously;
	// wait for them so a later snapshot sees a settled store.
	if err := e.st.FlushDue(e.ctx); err != nil {
		e.t.Fatalf("flush due marks: %v", err)
	}
}

// snapshot returns every key of the test's prefix with its DUMP, once the
// store's asynchronous due-index marks are written.
func (e *testEnv) snapshot() map[string]string {
	e.t.Helper()
	if err := e.st.FlushDue(e.ctx); err != nil {
		e.t.Fatalf("flush due marks: %v", err)
	}
	if err := e.st.FlushStats(e.ctx); err != nil {
		e.t.Fatalf("flush counters: %v", err)
	}
	return snapshot(e.t, e.ctx, e.rdb)
}

// snapshot returns every key of the test's prefix with its DUMP, so a test
// can show that nothing was written.
func snapshot(t *testing.T, ctx context.Context, rdb *redis.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	var keys []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := rdb.Dump(ctx, k).Result()
		if err != nil {
			t.Fatalf("DUMP %s: %v", k, err)
		}
		out[k] = v
	}
	return out
}

// diffSnapshots describes how two snapshots differ.
func diffSnapshots(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		a, ok := after[k]
		switch {
		case !ok:
			d = append(d, "deleted "+k)
		case a != v:
			d = append(d, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	slices.Sort(d)
	return d
}
