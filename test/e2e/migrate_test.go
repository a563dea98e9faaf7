package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/testcluster"
)

// seedOriginal writes tasks into rdb exactly as the original's api.js did
// (LEGACY_API.md, "The original's data in Redis"), with plain commands.
type seedOriginal struct {
	t   *testing.T
	rdb *redis.Client
}

func (s seedOriginal) queue(name, attr string) {
	s.t.Helper()
	if err := s.rdb.HSet(context.Background(), "htq_queue_list", "htq_"+name, attr).Err(); err != nil {
		s.t.Fatal(err)
	}
}

// task adds a member due at due; url gets the htq_no_repeat parameter the
// original appended. It returns the member's url.
func (s seedOriginal) task(queue, url, method, header, data string, due time.Time) string {
	s.t.Helper()
	score := due.UnixMilli()
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	u := fmt.Sprintf("%s%shtq_no_repeat=%d0.%04d", url, sep, score, score%9973)
	ub, _ := json.Marshal(u)
	member := fmt.Sprintf(`{"url":%s,"header":%s,"method":%q,"data":%s}`, ub, header, method, data)
	s.raw(queue, member, due)
	return u
}

func (s seedOriginal) raw(queue, member string, due time.Time) {
	s.t.Helper()
	if err := s.rdb.ZAdd(context.Background(), "htq_"+queue, redis.Z{Score: float64(due.UnixMilli()), Member: member}).Err(); err != nil {
		s.t.Fatal(err)
	}
}

// runHTQ runs the htq CLI and returns its output.
func runHTQ(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testcluster.BinDir(), "htq"), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestMigrateLegacy: a private Redis in the original's exact layout
// (queues, due-now, future and variable tasks, a malformed member) is moved
// by `htq migrate-legacy` into a running HTQ: the dry run changes nothing,
// every task is delivered at its time with its method, headers, data and
// original URL, the variable task repeats with its queue's gaps, the
// malformed member is reported and kept, a second run creates nothing
// twice, and --delete-source empties the old sorted sets.
func TestMigrateLegacy(t *testing.T) {
	ctx := context.Background()
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 1})
	tg := testcluster.NewTarget(t)
	tg.Respond = func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/poll" && n >= 4 {
			_, _ = w.Write([]byte("done"))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	src := redistest.Start(t)
	rdb := src.Client(t)
	seed := seedOriginal{t: t, rdb: rdb}

	now := time.Now()
	later := now.Add(6 * time.Second)
	seed.queue("orders", `{"type":"real_time","stepping_time":"0","max_time_interval":"0"}`)
	seed.queue("poll", `{"type":"variable","stepping_time":"1","max_time_interval":"2"}`)
	seed.queue("auto", `{"type":"real_time"}`)
	seed.task("orders", tg.URL+"/post", "post", `{"X-Trace":"abc"}`, `{"order":"42","name":"李"}`, now.Add(-5*time.Second))
	seed.task("orders", tg.URL+"/get?x=1", "get", `[]`, `[]`, now.Add(-4*time.Second))
	seed.task("orders", tg.URL+"/later", "GET", `[]`, `[]`, later)
	seed.task("auto", tg.URL+"/auto?a=b", "get", `{"Host":"example.test"}`, `[]`, now.Add(-time.Second))
	pollURL := seed.task("poll", tg.URL+"/poll", "get", `[]`, `[]`, now.Add(-2*time.Second))
	if err := rdb.HSet(ctx, "htq_poll_times", pollURL, "1").Err(); err != nil {
		t.Fatal(err)
	}
	seed.raw("orders", `{"url":"not json`, now)
	before := sourceState(t, rdb)

	env := []string{"HTQ_URL=" + c.API, "HTQ_TOKEN=" + testcluster.Token}

	// a dry run counts and changes nothing, on either side
	out, err := runHTQ(t, env, "migrate-legacy", "--from-redis", src.URL(), "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{"dry run", "queues            3", "tasks due now     4", "tasks due later   1", "variable tasks    1", "malformed, skipped  1"} {
		if !strings.Contains(squeeze(out), squeeze(want)) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if after := sourceState(t, rdb); after != before {
		t.Fatalf("the dry run changed the source:\n%s\nwas\n%s", after, before)
	}
	hc := c.Client()
	list, err := hc.ListQueues(t.Context(), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Queues) != 0 {
		t.Fatalf("the dry run created queues: %+v", list.Queues)
	}

	// bad input stops before anything moves
	for _, bad := range [][]string{
		{"migrate-legacy", "--from-redis", src.URL(), "--token", "wrong-token-0123456789"},
		{"migrate-legacy", "--from-redis", "redis://127.0.0.1:1/0"},
		{"migrate-legacy", "--from-redis", src.URL(), "--url", "ftp://x"},
		{"migrate-legacy", "--from-redis", src.URL(), "--bogus"},
		{"migrate-legacy"},
	} {
		out, err := runHTQ(t, env, bad...)
		if err == nil {
			t.Errorf("%q succeeded:\n%s", bad, out)
		}
		t.Logf("%q: %s", bad[1:], strings.TrimSpace(out))
	}
	if list, err = hc.ListQueues(t.Context(), client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(list.Queues) != 0 || sourceState(t, rdb) != before {
		t.Fatalf("a refused run changed something: %+v", list.Queues)
	}

	// the real run
	start := time.Now()
	out, err = runHTQ(t, env, "migrate-legacy", "--from-redis", src.URL(), "--malformed-file", filepath.Join(t.TempDir(), "bad.jsonl"))
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	t.Logf("migrate-legacy:\n%s", out)
	if !strings.Contains(squeeze(out), squeeze("tasks created  5")) {
		t.Fatalf("first run did not create 5 tasks:\n%s", out)
	}
	badFile := strings.TrimSpace(out[strings.LastIndex(out, " ")+1:])
	checkMalformedFile(t, badFile, `{"url":"not json`)

	// a second run creates nothing twice
	out, err = runHTQ(t, env, "migrate-legacy", "--from-redis", src.URL(), "--malformed-file", filepath.Join(t.TempDir(), "bad.jsonl"))
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if s := squeeze(out); !strings.Contains(s, squeeze("tasks created  0")) || !strings.Contains(s, squeeze("tasks already in HTQ (an earlier run)  5")) {
		t.Fatalf("second run:\n%s", out)
	}

	c.WaitFor("every task delivered", 30*time.Second, func() bool {
		n := map[string]int{}
		for _, call := range tg.Calls() {
			n[call.Path]++
		}
		return n["/post"] == 1 && n["/get"] == 1 && n["/later"] == 1 && n["/auto"] == 1 && n["/poll"] >= 4
	})
	calls := map[string][]testcluster.Call{}
	for _, call := range tg.Calls() {
		calls[call.Path] = append(calls[call.Path], call)
	}
	for path, cs := range calls {
		if path != "/poll" && len(cs) != 1 {
			t.Errorf("%s called %d times, want once", path, len(cs))
		}
	}
	// what the target receives: method, URL as originally given, headers, data
	post := calls["/post"][0]
	if post.Method != http.MethodPost || post.RequestURI != "/post" || post.Header.Get("X-Trace") != "abc" {
		t.Errorf("/post: %s %s X-Trace=%q", post.Method, post.RequestURI, post.Header.Get("X-Trace"))
	}
	if form := multipartForm(t, post); form["order"] != "42" || form["name"] != "李" || len(form) != 2 {
		t.Errorf("/post form %v, want order=42 name=李", form)
	}
	if g := calls["/get"][0]; g.Method != http.MethodGet || g.RequestURI != "/get?x=1" || g.Body != "" {
		t.Errorf("/get: %s %s body %q", g.Method, g.RequestURI, g.Body)
	}
	if a := calls["/auto"][0]; a.RequestURI != "/auto?a=b" {
		t.Errorf("/auto called as %s", a.RequestURI)
	}
	// due-now tasks right away, the later one at its time (±100 ms)
	for _, p := range []string{"/post", "/get", "/auto"} {
		if d := calls[p][0].Start.Sub(start); d > 5*time.Second {
			t.Errorf("%s called %v after the migration started", p, d)
		}
	}
	if d := calls["/later"][0].Start.Sub(later); d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("/later called %v from its due time, want within ±100ms", d)
	}
	// the variable task goes on with its queue's gaps (stepping 1 s, max 2 s)
	// where it was: the original had called it once since its last reset
	// (htq_poll_times 1), so its gaps are 1 s, 2 s, 2 s, not 0, 1 s, 2 s
	polls := calls["/poll"]
	if len(polls) != 4 {
		t.Fatalf("/poll called %d times, want 4 (done on the 4th)", len(polls))
	}
	checkGaps(t, "/poll", gapsOf(tg.Calls(), "/poll"), []time.Duration{time.Second, 2 * time.Second, 2 * time.Second}, 300*time.Millisecond)
	if _, err := hc.GetQueue(t.Context(), "poll"); err != nil {
		t.Errorf("queue poll was not created: %v", err)
	}

	// --delete-source: what HTQ accepted leaves the old sorted sets; the
	// malformed member stays, nothing is dropped
	out, err = runHTQ(t, env, "migrate-legacy", "--from-redis", src.URL(), "--delete-source", "--malformed-file", filepath.Join(t.TempDir(), "bad.jsonl"))
	if err != nil {
		t.Fatalf("--delete-source: %v\n%s", err, out)
	}
	if !strings.Contains(squeeze(out), squeeze("removed from the source  5")) {
		t.Fatalf("--delete-source:\n%s", out)
	}
	for q, want := range map[string]int64{"htq_orders": 1, "htq_auto": 0, "htq_poll": 0} {
		if n := rdb.ZCard(ctx, q).Val(); n != want {
			t.Errorf("%s has %d members after --delete-source, want %d", q, n, want)
		}
	}
	if n := rdb.HLen(ctx, "htq_poll_times").Val(); n != 0 {
		t.Errorf("htq_poll_times keeps %d counters", n)
	}
	// nothing was delivered twice by the later runs
	n := 0
	for _, call := range tg.Calls() {
		if call.Path == "/post" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("/post called %d times after three runs, want once", n)
	}
}

func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

// sourceState describes every key of the source Redis.
func sourceState(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, k := range sortedStrings(keys) {
		d, err := rdb.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%x\n", k, d)
	}
	return b.String()
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func checkMalformedFile(t *testing.T, path, member string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the malformed file named in the summary: %v", err)
	}
	defer func() { _ = f.Close() }()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("malformed file line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 1 || lines[0]["member"] != member || lines[0]["queue"] != "orders" || lines[0]["error"] == "" {
		t.Fatalf("malformed file %v, want the one member %q", lines, member)
	}
}

func multipartForm(t *testing.T, call testcluster.Call) map[string]string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(call.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("Content-Type %q, want multipart/form-data", call.Header.Get("Content-Type"))
	}
	r := multipart.NewReader(bytes.NewReader([]byte(call.Body)), params["boundary"])
	form, err := r.ReadForm(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range form.Value {
		out[k] = v[0]
	}
	return out
}
