package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/client"
)

const promText = `# HELP htq_scheduler_promotion_lag_seconds Time from a delayed task being due to its promotion.
# TYPE htq_scheduler_promotion_lag_seconds histogram
htq_scheduler_promotion_lag_seconds_bucket{le="0.001"} 10
htq_scheduler_promotion_lag_seconds_bucket{le="0.01"} 50
htq_scheduler_promotion_lag_seconds_bucket{le="0.1"} 90
htq_scheduler_promotion_lag_seconds_bucket{le="1"} 100
htq_scheduler_promotion_lag_seconds_bucket{le="+Inf"} 100
htq_scheduler_promotion_lag_seconds_sum 3.5
htq_scheduler_promotion_lag_seconds_count 100
htq_dispatcher_calls_total{outcome="retry"} 3
htq_dispatcher_calls_total{outcome="success"} 97
htq_scheduler_is_leader 1
weird{a="x,y",le="0.5"} 7 1700000000000
`

func TestParseProm(t *testing.T) {
	s := parseProm(promText)
	if v, ok := promSum(s, "htq_scheduler_is_leader"); !ok || v != 1 {
		t.Fatalf("is_leader %v %v", v, ok)
	}
	if v, _ := promSum(s, "htq_dispatcher_calls_total"); v != 100 {
		t.Fatalf("calls sum %v", v)
	}
	if v := promSumWhere(s, "htq_dispatcher_calls_total", "outcome", "retry"); v != 3 {
		t.Fatalf("retry %v", v)
	}
	if _, ok := promSum(s, "nope"); ok {
		t.Fatal("missing metric found")
	}
	// Label values with commas, and a timestamp after the value.
	if v := promSumWhere(s, "weird", "a", "x,y"); v != 7 {
		t.Fatalf("weird %v", v)
	}
	if le, ok := promLabel(`a="x,y",le="0.5"`, "le"); !ok || le != "0.5" {
		t.Fatalf("le %q %v", le, ok)
	}
	b := promHistogram(s, "htq_scheduler_promotion_lag_seconds")
	if len(b) != 5 || !math.IsInf(b[4].LE, 1) || b[0].LE != 0.001 || b[2].Count != 90 {
		t.Fatalf("buckets %+v", b)
	}
}

func TestHistQuantile(t *testing.T) {
	b := []histBucket{{0.001, 10}, {0.01, 50}, {0.1, 90}, {1, 100}, {math.Inf(1), 100}}
	// rank 50 is the top of the (0.001, 0.01] bucket.
	if q := histQuantile(0.5, b); math.Abs(q-0.01) > 1e-12 {
		t.Fatalf("p50 %v", q)
	}
	// rank 99: (1-0.1) * (99-90)/(100-90) + 0.1 = 0.91
	if q := histQuantile(0.99, b); math.Abs(q-0.91) > 1e-12 {
		t.Fatalf("p99 %v", q)
	}
	// rank 5 in the first bucket: interpolated from 0.
	if q := histQuantile(0.05, b); math.Abs(q-0.0005) > 1e-12 {
		t.Fatalf("p5 %v", q)
	}
	// rank in +Inf: the highest finite bound.
	inf := []histBucket{{0.1, 1}, {1, 2}, {math.Inf(1), 10}}
	if q := histQuantile(0.99, inf); q != 1 {
		t.Fatalf("+Inf %v", q)
	}
	if q := histQuantile(0.5, []histBucket{{1, 0}, {math.Inf(1), 0}}); !math.IsNaN(q) {
		t.Fatalf("empty %v", q)
	}
	if q := histQuantile(0.5, nil); !math.IsNaN(q) {
		t.Fatalf("nil %v", q)
	}
	if a := histAbove(b, 0.1); a != 10 {
		t.Fatalf("above 0.1: %v", a)
	}
	if bb := bucketBound(b, 0.99); bb != 1 {
		t.Fatalf("bucket bound %v", bb)
	}
}

func TestHistDelta(t *testing.T) {
	before := []histBucket{{0.01, 5}, {0.1, 8}, {math.Inf(1), 10}}
	after := []histBucket{{0.001, 2}, {0.01, 105}, {0.1, 108}, {math.Inf(1), 210}}
	d := histDelta(after, before)
	want := []histBucket{{0.001, 2}, {0.01, 100}, {0.1, 100}, {math.Inf(1), 200}}
	for i := range want {
		if d[i] != want[i] {
			t.Fatalf("delta %+v, want %+v", d, want)
		}
	}
	if histTotal(d) != 200 {
		t.Fatal("total")
	}
	// p99 of the delta: rank 198 lies in the +Inf bucket → 0.1.
	if q := histQuantile(0.99, d); q != 0.1 {
		t.Fatalf("p99 %v", q)
	}
	// p50: rank 100 is the top of (0.001, 0.01].
	if q := histQuantile(0.5, d); math.Abs(q-0.01) > 1e-12 {
		t.Fatalf("p50 %v", q)
	}
}

func TestParseProcStatCPU(t *testing.T) {
	s := "1234 (htq dispatcher) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 0 0\n"
	v, err := parseProcStatCPU(s)
	if err != nil || v != 3 {
		t.Fatalf("%v %v", v, err)
	}
	if _, err := parseProcStatCPU("garbage"); err == nil {
		t.Fatal("want error")
	}
}

func TestTaskURLs(t *testing.T) {
	u := paddedTaskURL("http://127.0.0.1:12345", "/t", "mem-r1-x-7", 42, 100)
	if len(u) != 100 {
		t.Fatalf("len %d: %s", len(u), u)
	}
	q, i, ok := ArrivalKey(Arrival{Query: u[strings.IndexByte(u, '?')+1:]})
	if !ok || q != "mem-r1-x-7" || i != 42 {
		t.Fatalf("key %q %d %v", q, i, ok)
	}
	z := zeroPadURL("http://h", "/t", "q", 17)
	if !strings.HasSuffix(z, "i=0000017") {
		t.Fatal(z)
	}
	if z2 := zeroPadURL("http://h", "/t", "q", 100); z2 < z {
		t.Fatal("zero-padded URLs must sort in index order")
	}
	q, i, ok = ArrivalKey(Arrival{Query: "q=q&i=0000017&htq_no_repeat=5"})
	if !ok || q != "q" || i != 17 {
		t.Fatalf("padded key %q %d %v", q, i, ok)
	}
}

func TestDeliveryTracker(t *testing.T) {
	d := newDeliveryTracker(map[string]int{"a": 2, "b": 1})
	if d.feed([]Arrival{{T: 5, Query: "q=a&i=0"}, {T: 6, Query: "q=a&i=0"}, {T: 7, Query: "q=zz&i=0"}}) {
		t.Fatal("not complete yet")
	}
	if d.first != 5 || d.unique != 1 {
		t.Fatalf("%+v", d)
	}
	if !d.feed([]Arrival{{T: 8, Query: "q=b&i=0"}, {T: 9, Query: "q=a&i=1"}, {T: 10, Query: "q=a&i=1"}}) {
		t.Fatal("complete")
	}
	if d.doneAt != 9 {
		t.Fatalf("doneAt %d", d.doneAt)
	}
}

func TestWaitDelivered(t *testing.T) {
	tg, err := StartTarget(16)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	hc := NewHTTPClient(1)
	ctx := context.Background()
	go func() {
		for i := range 3 {
			_ = hc.Get(ctx, TaskURL(tg.URL, "/t", "a", i))
		}
	}()
	d := newDeliveryTracker(map[string]int{"a": 3})
	tEnd, err := waitDelivered(ctx, tg, d, 5*time.Second, nil)
	if err != nil || tEnd <= 0 || tEnd != tg.ArrivalTime(2) {
		t.Fatalf("tEnd %d err %v", tEnd, err)
	}
	// A stall is reported, and so is a failing check.
	d = newDeliveryTracker(map[string]int{"b": 1})
	if _, err := waitDelivered(ctx, tg, d, 50*time.Millisecond, nil); err == nil || !strings.Contains(err.Error(), "stalled") {
		t.Fatalf("want stall, got %v", err)
	}
	boom := errors.New("dispatcher exited")
	if _, err := waitDelivered(ctx, tg, newDeliveryTracker(map[string]int{"b": 1}), time.Second,
		func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("want check error, got %v", err)
	}
	w := tg.WallTime(tg.ArrivalTime(0))
	if d := time.Since(w); d < 0 || d > 5*time.Second {
		t.Fatalf("wall time off by %v", d)
	}
	if back := tg.TargetTime(w); back != tg.ArrivalTime(0) {
		t.Fatalf("round trip %d != %d", back, tg.ArrivalTime(0))
	}
}

func TestVariableSchedule(t *testing.T) {
	// Calls at ages 0, 0, 1, 3, 6, 10, 15, 21, 28, 36 …
	for _, c := range []struct {
		age  float64
		want int
	}{{-1, 0}, {0, 2}, {0.5, 2}, {1, 3}, {2.9, 3}, {3, 4}, {30, 9}, {36, 10}} {
		if got := variableCallsBy(c.age, 1, 120); got != c.want {
			t.Errorf("calls by %v: %d, want %d", c.age, got, c.want)
		}
	}
	// With a cap of 2 s: 0, 0, 1, 3, 5, 7 …
	if got := variableCallsBy(7, 1, 2); got != 6 {
		t.Errorf("capped: %d", got)
	}
	if g := variableGap(0, time.Second, 5*time.Second); g != 0 {
		t.Error(g)
	}
	if g := variableGap(3, time.Second, 5*time.Second); g != 3*time.Second {
		t.Error(g)
	}
	if g := variableGap(9, time.Second, 5*time.Second); g != 5*time.Second {
		t.Error(g)
	}
}

func TestQueueCompletion(t *testing.T) {
	arr := []Arrival{
		{T: 1e9, Query: "q=a&i=0"}, {T: 2e9, Query: "q=b&i=0"}, {T: 3e9, Query: "q=a&i=1"},
		{T: 9e9, Query: "q=x&i=0"}, // unexpected
	}
	c := queueCompletion(arr, map[string]int{"a": 2, "b": 1}, 0)
	if len(c) != 2 || c["a"] != 3 || c["b"] != 2 {
		t.Fatalf("%v", c)
	}
	st := completionStats(c)
	if st.max != 3 || st.mean != 2.5 || st.max/st.mean != 1.2 {
		t.Fatalf("%+v", st)
	}
}

func TestLegacyForm(t *testing.T) {
	body, ct := legacyAddTaskForm("k", "tok", "q1", "http://h/t?q=q1&i=0")
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Fatal(err)
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var names []string
	for {
		p, err := r.NextPart()
		if err != nil {
			break
		}
		names = append(names, p.FormName())
	}
	want := "app_key app_token queue_name url execute_time method header data"
	if strings.Join(names, " ") != want {
		t.Fatalf("fields %v, want %s", names, want)
	}
	if !legacyOK([]byte(`{"error_code":0,"message":"添加成功"}`)) || legacyOK([]byte(`{"error_code":1000}`)) || legacyOK([]byte(`[]`)) {
		t.Fatal("legacyOK")
	}
}

func TestBatchBody(t *testing.T) {
	b := string(batchBody([]newTask{{URL: "http://h/t?q=a&i=0"}, {URL: "http://h/t", RunAt: rfc3339ms(time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.UTC))}}))
	want := `{"tasks":[{"url":"http://h/t?q=a\u0026i=0"},{"url":"http://h/t","run_at":"2030-01-02T03:04:05.006Z"}]}`
	if b != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestParallel(t *testing.T) {
	seen := make([]bool, 50)
	if err := parallel(context.Background(), 50, 7, func(_ context.Context, i int) error { seen[i] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for i, s := range seen {
		if !s {
			t.Fatalf("item %d not run", i)
		}
	}
	boom := errors.New("boom")
	if err := parallel(context.Background(), 50, 4, func(_ context.Context, i int) error {
		if i == 3 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

func TestSelectScenariosOrderAndLegacy(t *testing.T) {
	scen, _, err := selectScenarios(&Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(scen) == 0 || scen[0].Group != GroupReference {
		t.Fatal("references must run first")
	}
	for _, s := range scen {
		if s.Group == GroupLegacy {
			t.Fatalf("legacy scenario %s selected without --legacy-url", s.Name)
		}
	}
	scen, _, err = selectScenarios(&Config{LegacyURL: "http://x", Only: []string{"enqueue_single_legacy"}})
	if err != nil || len(scen) != 1 || scen[0].Group != GroupLegacy {
		t.Fatalf("legacy --only: %v %v", scen, err)
	}
	scen, _, err = selectScenarios(&Config{Only: []string{"enqueue_single_legacy"}})
	if err != nil || len(scen) != 1 || scen[0].Group != GroupHTQ {
		t.Fatalf("htq --only: %v %v", scen, err)
	}
}

func TestQuickDefaultsToOneRun(t *testing.T) {
	cfg, err := parseFlags([]string{"--quick"})
	if err != nil || cfg.Runs != 1 {
		t.Fatalf("quick runs %d %v", cfg.Runs, err)
	}
	cfg, err = parseFlags([]string{"--quick", "--runs", "3"})
	if err != nil || cfg.Runs != 3 {
		t.Fatalf("quick --runs 3: %d %v", cfg.Runs, err)
	}
	cfg, err = parseFlags(nil)
	if err != nil || cfg.Runs != 3 {
		t.Fatalf("default runs %d %v", cfg.Runs, err)
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--runs", "0"},
		{"--profile-seconds", "0"},
		{"--runs", "x"},
		{"stray"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	cfg, err := parseFlags([]string{"--profile-dir", "p", "--profile-seconds", "5"})
	if err != nil || cfg.ProfileDir != "p" || cfg.ProfileSecs != 5 {
		t.Fatalf("profile flags: %+v %v", cfg, err)
	}
}

func TestFetchProfile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/pprof/profile" || r.URL.Query().Get("seconds") != "3" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("profile-bytes"))
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "sub", "p.pprof")
	if err := fetchProfile(context.Background(), srv.URL, 3, path); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "profile-bytes" {
		t.Fatalf("saved %q %v", b, err)
	}
	if err := fetchProfile(context.Background(), srv.URL, 4, path); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("404 not reported: %v", err)
	}
}

func TestScaleOutSummary(t *testing.T) {
	res := Results{
		"scale_out_1": {Value: 8000, Unit: "tasks/s", Extra: map[string]float64{"redis_cpu_us_per_task": 57}},
		"scale_out_2": {Value: 9000, Unit: "tasks/s", Extra: map[string]float64{"redis_cpu_us_per_task": 50}},
		"scale_out_4": {Value: 10000, Unit: "tasks/s"},
	}
	sum, ok := scaleOutSummary(res)
	if !ok || sum.Unit != "ratio" || sum.Value != 1.25 {
		t.Fatalf("summary = %+v, %v; want ratio 1.25", sum, ok)
	}
	if sum.Extra["tasks_per_s_2"] != 9000 || sum.Extra["redis_cpu_us_per_task_1"] != 57 || len(sum.Extra) != 5 {
		t.Fatalf("extra = %v", sum.Extra)
	}
	// unless all three ran and none failed, the summary is an error
	for _, r := range []Results{
		{"scale_out_2": res["scale_out_2"], "scale_out_4": res["scale_out_4"]},
		{"scale_out_1": res["scale_out_1"], "scale_out_2": res["scale_out_2"]},
		{"scale_out_1": {Unit: "error"}, "scale_out_2": res["scale_out_2"], "scale_out_4": res["scale_out_4"]},
		{"scale_out_1": res["scale_out_1"], "scale_out_2": res["scale_out_2"], "scale_out_4": {Value: 1, Unit: "tasks/s", Note: "FAILED run 2: x"}},
	} {
		if sum, ok := scaleOutSummary(r); !ok || sum.Unit != "error" || sum.Value != 0 {
			t.Fatalf("summary of %v = %+v, %v; want an error entry", r, sum, ok)
		}
	}
	// none ran: no entry at all
	if sum, ok := scaleOutSummary(Results{"dispatch_multi": res["scale_out_1"]}); ok {
		t.Fatalf("summary without scale_out_N = %+v", sum)
	}
}

// fakeHTQ answers the few routes the set-up helpers call: two pages of
// queues, and batches with one id fewer than sent when short is set.
type fakeHTQ struct {
	short   bool
	auth    []string
	bodies  []string
	batches int
}

func (f *fakeHTQ) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.bodies = append(f.bodies, string(b))
	switch {
	case r.URL.Path == "/v1/queues" && r.URL.Query().Get("cursor") == "":
		_, _ = w.Write([]byte(`{"queues":[{"name":"a","counts":{"queued":1,"active":2}},{"name":"b","counts":{"scheduled":3,"dead":4}}],"next_cursor":"b"}`))
	case r.URL.Path == "/v1/queues":
		_, _ = w.Write([]byte(`{"queues":[{"name":"c","counts":{"queued":10}}]}`))
	case strings.HasSuffix(r.URL.Path, "/tasks/batch"):
		f.batches++
		var in struct{ Tasks []json.RawMessage }
		_ = json.Unmarshal(b, &in)
		n := len(in.Tasks)
		if f.short {
			n--
		}
		ids := make([]map[string]string, n)
		for i := range ids {
			ids[i] = map[string]string{"id": fmt.Sprint(i + 1)}
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"tasks": ids})
	default:
		http.NotFound(w, r)
	}
}

// TestAPIClientHelpers: the set-up helpers over the Go client send the
// token and no idempotency key, page through the queues, and refuse a batch
// answer that lacks ids.
func TestAPIClientHelpers(t *testing.T) {
	f := &fakeHTQ{}
	ts := httptest.NewServer(f)
	defer ts.Close()
	rc := newRESTClient(ts.URL, "tok", 1)
	hc, err := newAPIClient(rc, "tok")
	if err != nil {
		t.Fatal(err)
	}
	sum, n, err := allCounts(t.Context(), hc)
	if err != nil || n != 3 || sum.Queued != 11 || sum.Active != 2 || sum.Scheduled != 3 || sum.Dead != 4 {
		t.Fatalf("allCounts: %+v over %d queues, %v", sum, n, err)
	}
	tasks := []client.TaskRequest{{URL: "http://h/t?i=0"}, {URL: "http://h/t?i=1"}}
	if err := enqueueBatch(t.Context(), hc, "q", tasks); err != nil {
		t.Fatal(err)
	}
	if f.auth[0] != "Bearer tok" || strings.Contains(f.bodies[len(f.bodies)-1], "idempotency_key") {
		t.Fatalf("auth %q, batch %s: want the token and no key", f.auth[0], f.bodies[len(f.bodies)-1])
	}
	if rc.Dials() == 0 {
		t.Fatal("the Go client did not use the raw client's connections")
	}
	f.short = true
	if err := enqueueBatch(t.Context(), hc, "q", tasks); err == nil || !strings.Contains(err.Error(), "1 ids") {
		t.Fatalf("a batch answer with an id missing: %v", err)
	}
	if f.batches != 2 {
		t.Fatalf("%d batches sent, want 2 (a batch without keys is never repeated)", f.batches)
	}
}
