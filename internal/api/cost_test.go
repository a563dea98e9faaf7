package api_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/metrics"
)

// deepArray is a JSON array nested depth deep: [[[…]]].
func deepArray(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

// costlyBodies are the probe's item-1 requests: about 20 KB, a duration
// that does not parse, and an array nested 9,999 deep (the JSON decoder's
// limit is 10,000 levels in all), on each route that takes durations.
func costlyBodies() []struct{ name, method, path, body, field string } {
	deep := deepArray(9999)
	return []struct{ name, method, path, body, field string }{
		{"task", http.MethodPost, "/v1/queues/q/tasks",
			`{"url":"http://x/","method":"POST","delay":"soon","body":` + deep + `}`, "delay"},
		{"task, duration after the array", http.MethodPost, "/v1/queues/q/tasks",
			`{"url":"http://x/","method":"POST","body":` + deep + `,"timeout":"soon"}`, "timeout"},
		{"batch", http.MethodPost, "/v1/queues/q/tasks/batch",
			`{"tasks":[{"url":"http://x/","method":"POST","body":` + deepArray(9997) + `},{"url":"http://x/","delay":"soon"}]}`, "tasks[1].delay"},
		{"queue", http.MethodPut, "/v1/queues/q",
			`{"timeout":` + deep + `}`, "timeout"},
		{"queue, nested", http.MethodPut, "/v1/queues/q",
			`{"retry":{"max_attempts":3,"min_backoff":` + deepArray(9998) + `}}`, "retry.min_backoff"},
	}
}

// requestCost measures what serving one request allocates, the way
// testing.AllocsPerRun does (GOMAXPROCS 1, averaged over runs): the number
// of allocations and the bytes. Allocation counts and bytes are stable on a
// loaded machine where wall-clock times are not.
func requestCost(t *testing.T, h http.Handler, method, path, body string) (allocs, bytes float64, last *httptest.ResponseRecorder) {
	t.Helper()
	const runs = 5
	do := func() {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		last = httptest.NewRecorder()
		h.ServeHTTP(last, req)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	do() // warm up: lazily built tables, pools
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		do()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / runs, float64(after.TotalAlloc-before.TotalAlloc) / runs, last
}

// storelessHandler is the API without a store: enough for requests that
// are refused before they reach it (a store call would panic and answer 500).
func storelessHandler(tb testing.TB) http.Handler {
	tb.Helper()
	reg := prometheus.NewRegistry()
	srv, err := api.New(testConfig(time.UTC), nil, clock.NewFake(testNow), slog.New(slog.DiscardHandler), metrics.NewAPI(reg), reg, true)
	if err != nil {
		tb.Fatal(err)
	}
	return srv.Handler()
}

// TestBadDurationInDeepBodyIsCheap: a duration that does not parse in a
// 20 KB body nested 9,999 deep is refused with 422 naming the field, at a
// cost linear in the body. Naming the field used to re-parse every nested
// value (depth × size): one such request took 5 s of CPU and 385 MB.
// Not parallel: it reads the process's allocation counters.
func TestBadDurationInDeepBodyIsCheap(t *testing.T) {
	h := storelessHandler(t)
	for _, tc := range costlyBodies() {
		allocs, bytes, rec := requestCost(t, h, tc.method, tc.path, tc.body)
		res := &result{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		e := &testEnv{t: t}
		e.wantError(res, http.StatusUnprocessableEntity, "validation_failed", tc.field+": invalid duration")
		t.Logf("%s: %d bytes of body: %.0f allocations, %.0f KB per request", tc.name, len(tc.body), allocs, bytes/1024)
		// Reading the body, keeping the array as raw JSON and the decoder's
		// stacks of nesting states (one int per level, for each of its
		// passes) cost a multiple of the body, not of depth × size.
		if limit := 64*float64(len(tc.body)) + 256<<10; bytes > limit {
			t.Errorf("%s: %.0f KB allocated per request, limit %.0f KB", tc.name, bytes/1024, limit/1024)
		}
		if allocs > 1000 {
			t.Errorf("%s: %.0f allocations per request, limit 1000", tc.name, allocs)
		}
	}
}

// BenchmarkBadDurationInDeepBody measures the probe's item-1 request (a
// 20 KB task with "delay":"soon" and an array nested 9,999 deep) through
// the whole handler:
//
//	go test -run '^$' -bench BadDurationInDeepBody -benchmem ./internal/api/
func BenchmarkBadDurationInDeepBody(b *testing.B) {
	h := storelessHandler(b)
	tc := costlyBodies()[0]
	b.SetBytes(int64(len(tc.body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnprocessableEntity {
			b.Fatalf("HTTP %d %s", rec.Code, rec.Body.String())
		}
	}
}
