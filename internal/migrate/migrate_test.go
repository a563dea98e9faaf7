package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/migrate"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/task"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestConvertMember(t *testing.T) {
	t.Parallel()
	due := now.Add(time.Hour)
	tests := []struct {
		name, member string
		dueMs        int64
		want         migrate.TaskRequest
		dueNow       bool
		err          string
	}{
		{name: "suffix cut as the original cut it", member: `{"url":"http://h/p?htq_no_repeat=17000000000000.1234","header":[],"method":"get","data":[]}`,
			dueMs: now.UnixMilli(), want: migrate.TaskRequest{URL: "http://h/p", Method: "GET"}, dueNow: true},
		{name: "after other parameters", member: `{"url":"http://h/p?a=1&htq_no_repeat=1.5","header":{"X-A":"1"},"method":"POST","data":{"k":"v"}}`,
			dueMs: due.UnixMilli(), want: migrate.TaskRequest{URL: "http://h/p?a=1", Method: "POST", Headers: map[string]string{"X-A": "1"},
				Form: map[string]string{"k": "v"}, FormEncoding: "multipart", RunAt: "2030-01-02T04:04:05Z"}},
		{name: "GET data is not sent", member: `{"url":"http://h/?htq_no_repeat=1","header":[],"method":"get","data":{"k":"v"}}`,
			dueMs: 1, want: migrate.TaskRequest{URL: "http://h/", Method: "GET"}, dueNow: true},
		{name: "a PHP list of data", member: `{"url":"http://h/?htq_no_repeat=1","method":"put","data":["x","y"]}`,
			dueMs: 1, want: migrate.TaskRequest{URL: "http://h/", Method: "PUT", Form: map[string]string{"0": "x", "1": "y"}, FormEncoding: "multipart"}, dueNow: true},
		{name: "no method", member: `{"url":"http://h/a b?htq_no_repeat=1"}`, dueMs: 1, want: migrate.TaskRequest{URL: "http://h/a%20b", Method: "GET"}, dueNow: true},

		{name: "not JSON", member: `{"url":`, err: "not JSON"},
		{name: "no url", member: `{"method":"get"}`, err: "no url"},
		{name: "no htq_no_repeat", member: `{"url":"http://h/p"}`, err: "htq_no_repeat"},
		{name: "bad url", member: `{"url":"ftp://h/?htq_no_repeat=1"}`, err: "scheme"},
		{name: "bad header", member: `{"url":"http://h/?htq_no_repeat=1","header":"x"}`, err: "header"},
		{name: "method not a string", member: `{"url":"http://h/?htq_no_repeat=1","method":1}`, err: "method"},
	}
	for _, tt := range tests {
		c, err := migrate.ConvertMember("htq_", "q", migrate.SourceMember{Member: tt.member, DueMs: tt.dueMs}, now)
		if tt.err != "" {
			if !errors.Is(err, migrate.ErrMalformed) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want ErrMalformed about %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		tt.want.IdempotencyKey = migrate.IdempotencyKey("htq_", "q", tt.member)
		got, _ := json.Marshal(c.Task)
		want, _ := json.Marshal(tt.want)
		if string(got) != string(want) || c.DueNow != tt.dueNow {
			t.Errorf("%s:\n got %s (due now %v)\nwant %s (due now %v)", tt.name, got, c.DueNow, want, tt.dueNow)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	a := migrate.IdempotencyKey("htq_", "q", "m")
	if a != migrate.IdempotencyKey("htq_", "q", "m") {
		t.Fatal("the key is not stable")
	}
	for _, other := range []string{migrate.IdempotencyKey("htq_", "q", "m2"), migrate.IdempotencyKey("htq_", "q2", "m"),
		migrate.IdempotencyKey("htq_q", "", "m"), migrate.IdempotencyKey("x_", "q", "m")} {
		if other == a {
			t.Fatal("two different members share a key")
		}
	}
	if len(a) > 256 {
		t.Fatalf("key of %d bytes, HTQ accepts 256", len(a))
	}
}

func TestConvertQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attr, want string
		err        bool
	}{
		{`{"type":"real_time","stepping_time":"0","max_time_interval":"0"}`, `{"type":"realtime","retry":{"max_attempts":1}}`, false},
		{`{"type":"variable","stepping_time":"60","max_time_interval":"600"}`, `{"type":"variable","stepping_time":60,"max_time_interval":600}`, false},
		{`{"type":"variable","stepping_time":2,"max_time_interval":0.5}`, `{"type":"variable","stepping_time":2,"max_time_interval":1}`, false},
		{`{"type":"variable"}`, `{"type":"variable","stepping_time":1,"max_time_interval":315360000}`, false},
		{`{"type":"timing"}`, `{"type":"realtime","retry":{"max_attempts":1}}`, false},
		{`{}`, `{"type":"realtime","retry":{"max_attempts":1}}`, false},
		{`not json`, "", true},
		{`{"type":"variable","stepping_time":"two"}`, "", true},
		{`{"type":"variable","stepping_time":true}`, "", true},
	}
	for _, tt := range tests {
		q, err := migrate.ConvertQueue("q", tt.attr, time.Second, 1)
		if tt.err {
			if !errors.Is(err, migrate.ErrMalformed) {
				t.Errorf("%s: error %v, want ErrMalformed", tt.attr, err)
			}
			continue
		}
		got, _ := json.Marshal(q)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: %s, %v; want %s", tt.attr, got, err, tt.want)
		}
	}
	if _, err := migrate.ConvertQueue("bad\x01name", `{}`, time.Second, 1); !errors.Is(err, migrate.ErrMalformed) {
		t.Errorf("a queue name HTQ refuses: %v", err)
	}
}

// fakeHTQ answers the REST calls the migration makes; failBatch makes the
// nth batch fail with 503.
type fakeHTQ struct {
	mu        sync.Mutex
	queues    map[string]bool
	keys      map[string]bool
	batches   int
	failBatch int
}

func (f *fakeHTQ) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v1/queues")
	switch {
	case r.Method == http.MethodGet && p == "":
		_, _ = w.Write([]byte(`{"queues":[]}`))
	case r.Method == http.MethodGet:
		if !f.queues[strings.TrimPrefix(p, "/")] {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	case r.Method == http.MethodPut:
		f.queues[strings.TrimPrefix(p, "/")] = true
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/tasks/batch"):
		f.batches++
		if f.batches == f.failBatch {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"redis down"}}`))
			return
		}
		var in struct{ Tasks []migrate.TaskRequest }
		_ = json.NewDecoder(r.Body).Decode(&in)
		var out []map[string]any
		for _, tr := range in.Tasks {
			out = append(out, map[string]any{"id": "x", "existed": f.keys[tr.IdempotencyKey]})
			f.keys[tr.IdempotencyKey] = true
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"tasks": out})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func seed(t *testing.T, rdb *redis.Client, n int) {
	t.Helper()
	ctx := context.Background()
	rdb.HSet(ctx, "htq_queue_list", "htq_q", `{"type":"real_time"}`)
	for i := range n {
		rdb.ZAdd(ctx, "htq_q", redis.Z{Score: float64(i), Member: `{"url":"http://h/` + string(rune('a'+i)) + `?htq_no_repeat=1","method":"get"}`})
	}
}

// TestRunLosesNothing: a batch HTQ refuses stops the run with its error;
// with --delete-source only the members of accepted batches leave the
// source, and a re-run finishes the rest without creating anything twice.
func TestRunLosesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	seed(t, rdb, 5)
	fake := &fakeHTQ{queues: map[string]bool{}, keys: map[string]bool{}, failBatch: 2}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client, err := migrate.NewClient(srv.URL, "tok", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	opts := migrate.Options{Source: migrate.NewSource(rdb, "htq_"), HTQ: client, DeleteSource: true, Batch: 2,
		MinGap: config.DefaultLegacyMinGap, MaxAttempts: config.DefaultLegacyMaxAttempts, MalformedFile: filepath.Join(t.TempDir(), "bad.jsonl"), Now: func() time.Time { return now }}
	rep, err := migrate.Run(ctx, opts)
	if err == nil || !errors.Is(err, migrate.ErrHTQ) || !strings.Contains(err.Error(), "redis down") {
		t.Fatalf("run with a failing batch: %v", err)
	}
	if rep.Created != 2 || rep.Deleted != 2 {
		t.Fatalf("report %+v, want 2 created and 2 deleted", rep)
	}
	if n := rdb.ZCard(ctx, "htq_q").Val(); n != 3 {
		t.Fatalf("source keeps %d members, want the 3 not accepted", n)
	}
	rep, err = migrate.Run(ctx, opts)
	if err != nil || rep.Created != 3 || rep.Existed != 0 || rep.Deleted != 3 || rep.QueuesExisted != 1 {
		t.Fatalf("re-run: %+v, %v", rep, err)
	}
	if n := rdb.ZCard(ctx, "htq_q").Val(); n != 0 {
		t.Fatalf("source keeps %d members", n)
	}
	if len(fake.keys) != 5 {
		t.Fatalf("HTQ got %d distinct tasks, want 5", len(fake.keys))
	}
	if _, err := os.Stat(opts.MalformedFile); !os.IsNotExist(err) {
		t.Fatalf("a malformed file was written with nothing malformed: %v", err)
	}
}

func TestRunDryRunNeedsNoHTQ(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	seed(t, rdb, 3)
	rdb.ZAdd(context.Background(), "htq_q", redis.Z{Score: 1, Member: "junk"})
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	rep, err := migrate.Run(context.Background(), migrate.Options{Source: migrate.NewSource(rdb, "htq_"), DryRun: true, MalformedFile: bad, Now: func() time.Time { return now },
		MinGap: config.DefaultLegacyMinGap, MaxAttempts: config.DefaultLegacyMaxAttempts})
	if err != nil || rep.DueNow != 3 || rep.Malformed != 1 || rep.MalformedFile != bad {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	var out strings.Builder
	if err := rep.Print(&out); err != nil || !strings.Contains(out.String(), "dry run") || !strings.Contains(out.String(), bad) {
		t.Fatalf("printed %q, %v", out.String(), err)
	}
	if _, err := migrate.Run(context.Background(), migrate.Options{Source: migrate.NewSource(rdb, "htq_"), MinGap: time.Second, MaxAttempts: 1}); err == nil {
		t.Fatal("a real run without an HTQ client did not fail")
	}
}

// TestRunRefusesNoGapOrAttempts: the floor gap and the attempts have no
// default of their own here (the command line has HTQ's); 0 is refused.
func TestRunRefusesNoGapOrAttempts(t *testing.T) {
	t.Parallel()
	for _, o := range []migrate.Options{
		{DryRun: true, MaxAttempts: 1},
		{DryRun: true, MinGap: time.Second},
		{DryRun: true, MinGap: time.Second, MaxAttempts: task.MaxAttemptsLimit + 1},
	} {
		if _, err := migrate.Run(context.Background(), o); err == nil {
			t.Errorf("Run(MinGap %v, MaxAttempts %d) did not fail", o.MinGap, o.MaxAttempts)
		}
	}
}

func TestNewClientRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "ftp://h", "http://", "127.0.0.1:5999", "::"} {
		if _, err := migrate.NewClient(u, "tok", nil); err == nil {
			t.Errorf("NewClient(%q) accepted it", u)
		}
	}
	if _, err := migrate.NewClient("http://h", "", nil); err == nil {
		t.Error("NewClient accepted no token")
	}
}
