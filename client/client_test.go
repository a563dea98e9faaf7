package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/apitest"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/store"
)

const token = "client-test-token-0123456789"

// newAPI starts a redis-server and the real API in process; no dispatcher
// runs, so tasks stay where they are put.
func newAPI(t *testing.T) string {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	st, err := store.New(rdb, "htq:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	ts, err := apitest.Serve(st, apitest.Config(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Close)
	return ts.URL
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithToken(token)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// TestEveryRoute drives each method against the real API.
func TestEveryRoute(t *testing.T) {
	ctx := t.Context()
	c := newClient(t, newAPI(t))

	// A name that needs escaping in a path.
	const name = "a/b 50%"
	q, created, err := c.PutQueue(ctx, name, client.QueueSettings{
		Timeout: client.D(10 * time.Second), Concurrency: ptr(2),
		Retry: &client.Retry{MaxAttempts: ptr(3), MinBackoff: client.D(500 * time.Millisecond)},
	})
	if err != nil || !created || q.Name != name || q.Concurrency != 2 || q.Timeout.Std() != 10*time.Second ||
		q.Retry.MaxAttempts != 3 || q.Retry.MinBackoff.Std() != 500*time.Millisecond {
		t.Fatalf("PutQueue: %+v created=%v err=%v", q, created, err)
	}
	if q, created, err = c.PutQueue(ctx, name, client.QueueSettings{Concurrency: ptr(3)}); err != nil || created || q.Concurrency != 3 || q.Timeout.Std() != 10*time.Second {
		t.Fatalf("PutQueue update: %+v created=%v err=%v", q, created, err)
	}
	if _, _, err := c.PutQueue(ctx, "b", client.QueueSettings{}); err != nil {
		t.Fatal(err)
	}
	page, err := c.ListQueues(ctx, client.ListOptions{Limit: 1})
	if err != nil || len(page.Queues) != 1 || page.Queues[0].Name != name || page.NextCursor == "" {
		t.Fatalf("ListQueues page 1: %+v %v", page, err)
	}
	if page, err = c.ListQueues(ctx, client.ListOptions{Limit: 1, Cursor: page.NextCursor}); err != nil || len(page.Queues) != 1 || page.Queues[0].Name != "b" {
		t.Fatalf("ListQueues page 2: %+v %v", page, err)
	}

	cr, err := c.CreateTask(ctx, name, client.TaskRequest{URL: "http://127.0.0.1:9/x", Method: "POST", Body: json.RawMessage(`{"order":42}`)})
	if err != nil || cr.ID == "" || cr.State != client.StateQueued || cr.Queue != name {
		t.Fatalf("CreateTask: %+v %v", cr, err)
	}
	again, err := c.CreateTask(ctx, name, client.TaskRequest{URL: "http://127.0.0.1:9/y", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := c.CreateTask(ctx, name, client.TaskRequest{URL: "http://127.0.0.1:9/y", IdempotencyKey: "k1"}); err != nil || !rep.Existed || rep.ID != again.ID {
		t.Fatalf("a repeated key made %+v, %v; want the first task %s", rep, err, again.ID)
	}
	later, err := c.CreateTask(ctx, name, client.TaskRequest{URL: "http://127.0.0.1:9/later", Delay: client.D(time.Hour)})
	if err != nil || later.State != client.StateScheduled || later.RunAt == nil {
		t.Fatalf("delayed CreateTask: %+v %v", later, err)
	}
	batch, err := c.CreateTasks(ctx, name, []client.TaskRequest{{URL: "http://127.0.0.1:9/1"}, {URL: "http://127.0.0.1:9/2"}})
	if err != nil || len(batch) != 2 || batch[0].ID == batch[1].ID {
		t.Fatalf("CreateTasks: %+v %v", batch, err)
	}
	got, err := c.GetTask(ctx, cr.ID)
	if err != nil || got.URL != "http://127.0.0.1:9/x" || got.Method != http.MethodPost || got.State != client.StateQueued {
		t.Fatalf("GetTask: %+v %v", got, err)
	}
	tp, err := c.ListTasks(ctx, name, client.StateQueued, client.ListOptions{Limit: 2})
	if err != nil || len(tp.Tasks) != 2 || tp.Tasks[0].ID != cr.ID || tp.NextCursor == "" {
		t.Fatalf("ListTasks: %+v %v", tp, err)
	}
	if q, err = c.PauseQueue(ctx, name); err != nil || !q.Paused {
		t.Fatalf("PauseQueue: %+v %v", q, err)
	}
	if q, err = c.ResumeQueue(ctx, name); err != nil || q.Paused {
		t.Fatalf("ResumeQueue: %+v %v", q, err)
	}
	ct, res, err := c.CancelTask(ctx, later.ID)
	if err != nil || res != client.Cancelled || ct.State != client.StateCancelled {
		t.Fatalf("CancelTask: %+v %v %v", ct, res, err)
	}
	if rt, err := c.RetryTask(ctx, later.ID); err != nil || rt.State != client.StateQueued {
		t.Fatalf("RetryTask: %+v %v", rt, err)
	}
	if q, err = c.GetQueue(ctx, name); err != nil || q.Counts.Queued != 5 {
		t.Fatalf("GetQueue: %+v %v", q, err)
	}
	pu, err := c.PurgeQueue(ctx, name)
	if err != nil || pu.Purged != 5 {
		t.Fatalf("PurgeQueue: %+v %v", pu, err)
	}
	if err := c.DeleteQueue(ctx, name); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetQueue(ctx, name)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Code != client.CodeQueueNotFound || !client.IsNotFound(err) {
		t.Fatalf("GetQueue of a deleted queue: %v", err)
	}
}

// TestErrorsCarryTheAPIsCodeAndMessage: refusals come back as *client.Error.
func TestErrorsCarryTheAPIsCodeAndMessage(t *testing.T) {
	ctx := t.Context()
	url := newAPI(t)
	bad, err := client.New(url, client.WithToken("wrong-token-of-some-length"))
	if err != nil {
		t.Fatal(err)
	}
	var ae *client.Error
	if _, err := bad.ListQueues(ctx, client.ListOptions{}); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != client.CodeUnauthorized {
		t.Fatalf("wrong token: %v", err)
	}
	c := newClient(t, url)
	if _, _, err := c.PutQueue(ctx, "q", client.QueueSettings{Type: "sideways"}); !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || ae.Code != client.CodeValidation || ae.Message == "" {
		t.Fatalf("bad type: %v", err)
	}
	if _, err := c.CreateTask(ctx, "nosuch", client.TaskRequest{URL: "http://127.0.0.1:9/"}); !client.IsNotFound(err) {
		t.Fatalf("unknown queue: %v", err)
	}
	// Refused before anything is sent.
	for _, err := range []error{
		func() error { _, err := c.CreateTask(ctx, "q", client.TaskRequest{}); return err }(),
		func() error { _, err := c.CreateTasks(ctx, "q", nil); return err }(),
		func() error { _, err := c.GetTask(ctx, ""); return err }(),
		func() error { _, err := c.GetQueue(ctx, ""); return err }(),
	} {
		if err == nil || errors.As(err, &ae) {
			t.Errorf("want a local error, got %v", err)
		}
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct {
		url  string
		opts []client.Option
	}{
		{url: "127.0.0.1:5999"},
		{url: "ftp://h/"},
		{url: "http://"},
		{url: "http://h/?a=1"},
		{url: "http://h", opts: []client.Option{client.WithToken("a\nb")}},
		{url: "http://h", opts: []client.Option{client.WithRetries(-1, 0, 0)}},
		{url: "http://h", opts: []client.Option{client.WithRetries(1, time.Second, time.Millisecond)}},
		{url: "http://h", opts: []client.Option{client.WithHTTPClient(nil)}},
	} {
		if _, err := client.New(tc.url, tc.opts...); err == nil {
			t.Errorf("New(%q) accepted", tc.url)
		}
	}
}

// flaky is an API stand-in that answers the first fail requests with
// status (and Retry-After), then 201, recording what it was sent.
type flaky struct {
	mu      sync.Mutex
	fail    int
	status  int
	calls   int
	keys    []string
	bodies  []string
	methods []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	var body struct {
		IdempotencyKey string `json:"idempotency_key"`
	}
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &body)
	f.keys = append(f.keys, body.IdempotencyKey)
	f.bodies = append(f.bodies, string(raw))
	f.methods = append(f.methods, r.Method)
	if f.calls <= f.fail {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"busy"}}`))
		return
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"id":"1","queue":"q","state":"queued"}`))
}

// TestRetries: a create is retried on 503 and 429 with the same
// idempotency key; a purge (not repeatable) is not; retries can be off.
func TestRetries(t *testing.T) {
	ctx := t.Context()
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		f := &flaky{fail: 2, status: status}
		ts := httptest.NewServer(f)
		c := newClient(t, ts.URL, client.WithRetries(3, time.Millisecond, 5*time.Millisecond))
		cr, err := c.CreateTask(ctx, "q", client.TaskRequest{URL: "http://127.0.0.1:9/"})
		ts.Close()
		if err != nil || cr.ID != "1" || f.calls != 3 {
			t.Fatalf("status %d: %+v %v after %d calls", status, cr, err, f.calls)
		}
		if f.keys[0] == "" || f.keys[0] != f.keys[1] || f.keys[1] != f.keys[2] {
			t.Fatalf("the retries of one create carried keys %q", f.keys)
		}
	}

	f := &flaky{fail: 1, status: http.StatusServiceUnavailable}
	ts := httptest.NewServer(f)
	defer ts.Close()
	c := newClient(t, ts.URL, client.WithRetries(3, time.Millisecond, 5*time.Millisecond))
	var ae *client.Error
	if _, err := c.PurgeQueue(ctx, "q"); !errors.As(err, &ae) || ae.Status != 503 || f.calls != 1 {
		t.Fatalf("purge: %v after %d calls, want one 503", err, f.calls)
	}

	f.calls, f.fail = 0, 5
	c = newClient(t, ts.URL, client.WithRetries(2, time.Millisecond, 5*time.Millisecond))
	if _, err := c.CreateTask(ctx, "q", client.TaskRequest{URL: "http://127.0.0.1:9/"}); !errors.As(err, &ae) || f.calls != 3 {
		t.Fatalf("give up: %v after %d calls, want 3", err, f.calls)
	}
	f.calls = 0
	c = newClient(t, ts.URL, client.WithRetries(0, 0, 0))
	if _, err := c.CreateTask(ctx, "q", client.TaskRequest{URL: "http://127.0.0.1:9/"}); err == nil || f.calls != 1 {
		t.Fatalf("retries off: %v after %d calls", err, f.calls)
	}
}

// TestConnectionErrorsAreRetried: a refused connection is tried again, and
// the context ends the waiting.
func TestConnectionErrorsAreRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens: every dial is refused
	c := newClient(t, "http://"+addr, client.WithRetries(100, 20*time.Millisecond, 20*time.Millisecond))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.GetQueue(ctx, "q")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline after retries", err)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Fatalf("gave up after %v: the refused connection was not retried", took)
	}
}

// TestWithoutIdempotencyKeys: creates the caller gave no key go without one
// and are tried once; a create with the caller's key is still retried.
func TestWithoutIdempotencyKeys(t *testing.T) {
	ctx := t.Context()
	f := &flaky{fail: 1, status: http.StatusServiceUnavailable}
	ts := httptest.NewServer(f)
	defer ts.Close()
	c := newClient(t, ts.URL, client.WithoutIdempotencyKeys(), client.WithRetries(3, time.Millisecond, 5*time.Millisecond))
	var ae *client.Error
	if _, err := c.CreateTask(ctx, "q", client.TaskRequest{URL: "http://127.0.0.1:9/"}); !errors.As(err, &ae) || ae.Status != 503 || f.calls != 1 {
		t.Fatalf("create without a key: %v after %d calls, want one 503", err, f.calls)
	}
	if strings.Contains(f.bodies[0], "idempotency_key") {
		t.Fatalf("a create without a key sent %s", f.bodies[0])
	}
	f.calls, f.fail = 0, 1
	if _, err := c.CreateTasks(ctx, "q", []client.TaskRequest{{URL: "http://127.0.0.1:9/"}, {URL: "http://127.0.0.1:9/", IdempotencyKey: "k"}}); !errors.As(err, &ae) || f.calls != 1 {
		t.Fatalf("batch with a task without a key: %v after %d calls, want one 503", err, f.calls)
	}
	if b := f.bodies[len(f.bodies)-1]; strings.Count(b, "idempotency_key") != 1 {
		t.Fatalf("batch sent %s, want only the caller's key", b)
	}
	f.calls, f.fail = 0, 1
	if cr, err := c.CreateTask(ctx, "q", client.TaskRequest{URL: "http://127.0.0.1:9/", IdempotencyKey: "mine"}); err != nil || cr.ID != "1" || f.calls != 2 {
		t.Fatalf("create with the caller's key: %+v %v after %d calls, want a retry", cr, err, f.calls)
	}
	if k := f.keys[len(f.keys)-1]; k != "mine" {
		t.Fatalf("key %q, want the caller's", k)
	}
	f.calls, f.fail = 0, 1
	if _, err := c.CreateTasks(ctx, "q", []client.TaskRequest{{URL: "http://127.0.0.1:9/", IdempotencyKey: "a"}}); err != nil || f.calls != 2 {
		t.Fatalf("batch where every task has a key: %v after %d calls, want a retry", err, f.calls)
	}
}

// TestListQueuesByPrefix: only the queues whose names start with the
// prefix, paged like ListQueues.
func TestListQueuesByPrefix(t *testing.T) {
	ctx := t.Context()
	c := newClient(t, newAPI(t))
	for _, name := range []string{"mail/a", "mail/b", "mailbox", "other"} {
		if _, _, err := c.PutQueue(ctx, name, client.QueueSettings{}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for cursor := ""; ; {
		page, err := c.ListQueuesByPrefix(ctx, "mail/", client.ListOptions{Limit: 1, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range page.Queues {
			names = append(names, q.Name)
		}
		if page.NextCursor == "" || len(page.Queues) == 0 {
			break
		}
		cursor = page.NextCursor
	}
	if strings.Join(names, ",") != "mail/a,mail/b" {
		t.Fatalf("queues with prefix mail/: %q", names)
	}
	all, err := c.ListQueuesByPrefix(ctx, "", client.ListOptions{})
	if err != nil || len(all.Queues) != 4 {
		t.Fatalf("empty prefix: %+v %v, want every queue", all, err)
	}
}
