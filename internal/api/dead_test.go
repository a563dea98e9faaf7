package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

type bulkResultJSON struct {
	Matched   int   `json:"matched"`
	Done      int   `json:"done"`
	Remaining int64 `json:"remaining"`
	Exact     bool  `json:"exact"`
}

// deadFixture: queues a, b and c with dead letters whose URLs say their
// queue and number, statuses 500 (even) and 404 (odd); c also has a
// queued task.
func deadFixture(t *testing.T) (*testEnv, map[string][]string) {
	e := newEnv(t)
	dead := map[string][]string{}
	for qi, q := range []string{"a", "b", "c"} {
		e.putQueue(q, map[string]any{})
		n := 3 + 2*qi // 3, 5, 7
		var urls []string
		var sts []int
		for i := range n {
			urls = append(urls, fmt.Sprintf("http://h.test/%s/%d", q, i))
			sts = append(sts, []int{500, 404}[i%2])
		}
		ids := e.addTasks(q, urls...)
		e.failTasks(q, sts...)
		dead[q] = ids
	}
	e.addTasks("c", "http://h.test/c/queued")
	return e, dead
}

func (e *testEnv) deadCount(query string) int64 {
	e.t.Helper()
	var out struct {
		Count *int64 `json:"count"`
		Exact bool   `json:"exact"`
	}
	e.must(e.rest(http.MethodGet, "/v1/dead/count?"+query, nil), http.StatusOK, &out)
	if out.Count == nil || !out.Exact {
		e.t.Fatalf("count %s: %+v", query, out)
	}
	return *out.Count
}

func TestDeadAcrossQueues(t *testing.T) {
	t.Parallel()
	e, dead := deadFixture(t)
	all := slices.Concat(dead["a"], dead["b"], dead["c"])
	slices.Sort(all)
	odd := func(qs ...string) []string {
		var out []string
		for _, q := range qs {
			for i, id := range dead[q] {
				if i%2 == 1 {
					out = append(out, id)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"limit=2", all},
		{"limit=1000", all},
		{"queue=b&limit=2", sorted(dead["b"])},
		{"code=404&limit=2", odd("a", "b", "c")},
		{"code=404&queue=c", odd("c")},
		{"q=/b/&limit=3", sorted(dead["b"])},
		{"q=" + dead["c"][2], []string{dead["c"][2]}},
		{"q=" + dead["c"][2] + "&queue=a", nil},
		{"q=nothing", nil},
	} {
		got := ids(e.search("/v1/dead?" + tt.query))
		if !slices.Equal(got, tt.want) {
			t.Errorf("/v1/dead?%s: got %d %v, want %d %v", tt.query, len(got), got, len(tt.want), tt.want)
		}
		count := strings.NewReplacer("limit=2", "", "limit=1000", "", "limit=3", "").Replace(tt.query)
		if n := e.deadCount(count); n != int64(len(tt.want)) {
			t.Errorf("/v1/dead/count?%s = %d, want %d", count, n, len(tt.want))
		}
	}
	// time bounds: every letter died at testNow
	at := testNow.Format("2006-01-02T15:04:05Z")
	before := testNow.Add(-1e9).Format("2006-01-02T15:04:05Z")
	if n := e.deadCount("since=" + at + "&until=" + at); n != 15 {
		t.Errorf("count at the time of death = %d, want 15", n)
	}
	if n := e.deadCount("until=" + before); n != 0 {
		t.Errorf("count before = %d, want 0", n)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestDeadBulkByIDs(t *testing.T) {
	t.Parallel()
	e, dead := deadFixture(t)
	queued := e.search("/v1/queues/c/tasks?state=queued")[0].ID
	var r bulkResultJSON
	e.must(e.rest(http.MethodPost, "/v1/dead/retry", map[string]any{"ids": []string{dead["a"][0], dead["b"][1], queued, "00000000000000"}}), http.StatusOK, &r)
	if r.Matched != 2 || r.Done != 2 || r.Remaining != 0 {
		t.Fatalf("retry: %+v, want 2 matched and done", r)
	}
	for _, id := range []string{dead["a"][0], dead["b"][1]} {
		var tj taskJSON
		e.must(e.rest(http.MethodGet, "/v1/tasks/"+id, nil), http.StatusOK, &tj)
		if tj.State != "queued" {
			t.Errorf("retried %s is %s", id, tj.State)
		}
	}
	e.must(e.rest(http.MethodPost, "/v1/dead/delete", map[string]any{"ids": []string{dead["c"][0], dead["c"][1]}}), http.StatusOK, &r)
	if r.Matched != 2 || r.Done != 2 {
		t.Fatalf("delete: %+v", r)
	}
	e.wantError(e.rest(http.MethodGet, "/v1/tasks/"+dead["c"][0], nil), http.StatusNotFound, "task_not_found")
	if n := e.deadCount(""); n != 11 {
		t.Fatalf("dead left: %d, want 11", n)
	}
}

// TestDeadBulkByFilter deletes every 404 letter in chunks of 2, as the
// console does: each call reports progress until nothing remains; other
// letters stay.
func TestDeadBulkByFilter(t *testing.T) {
	t.Parallel()
	e, _ := deadFixture(t)
	want := int64(1 + 2 + 3) // odd positions of 3, 5, 7
	var calls, done int
	for {
		var r bulkResultJSON
		e.must(e.rest(http.MethodPost, "/v1/dead/delete", map[string]any{"filter": map[string]any{"code": 404}, "limit": 2}), http.StatusOK, &r)
		calls++
		done += r.Done
		if r.Matched > 2 || r.Done != r.Matched || !r.Exact {
			t.Fatalf("call %d: %+v", calls, r)
		}
		if r.Remaining != want-int64(done) {
			t.Fatalf("call %d: remaining %d, want %d", calls, r.Remaining, want-int64(done))
		}
		if r.Remaining == 0 || calls > 10 {
			break
		}
	}
	if calls != 3 || int64(done) != want {
		t.Fatalf("%d calls, %d done, want 3 and %d", calls, done, want)
	}
	if n := e.deadCount("code=404"); n != 0 {
		t.Fatalf("404 letters left: %d", n)
	}
	if n := e.deadCount("code=500"); n != 9 {
		t.Fatalf("500 letters: %d, want 9", n)
	}
	// retry by filter, one queue and a URL substring
	var r bulkResultJSON
	e.must(e.rest(http.MethodPost, "/v1/dead/retry", map[string]any{"filter": map[string]any{"queue": "b", "q": "/b/"}}), http.StatusOK, &r)
	if r.Matched != 3 || r.Done != 3 || r.Remaining != 0 {
		t.Fatalf("retry b: %+v", r)
	}
	if got := len(e.search("/v1/queues/b/tasks?state=queued")); got != 3 {
		t.Fatalf("b has %d queued, want 3", got)
	}
}

func TestDeadBadInput(t *testing.T) {
	t.Parallel()
	e, _ := deadFixture(t)
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("%014x", i)
	}
	for _, tt := range []struct {
		name  string
		body  any
		code  string
		field string
	}{
		{"too many ids", map[string]any{"ids": many}, "validation_failed", "ids"},
		{"no ids", map[string]any{"ids": []string{}}, "validation_failed", "ids"},
		{"neither", map[string]any{}, "validation_failed", "ids"},
		{"both", map[string]any{"ids": []string{"00000000000000"}, "filter": map[string]any{}}, "validation_failed", "ids"},
		{"bad id", map[string]any{"ids": []string{"nope"}}, "validation_failed", "ids[0]"},
		{"limit with ids", map[string]any{"ids": []string{"00000000000000"}, "limit": 5}, "validation_failed", "limit"},
		{"limit 0", map[string]any{"filter": map[string]any{}, "limit": 0}, "validation_failed", "limit"},
		{"limit too big", map[string]any{"filter": map[string]any{}, "limit": 1001}, "validation_failed", "limit"},
		{"bad code", map[string]any{"filter": map[string]any{"code": "abc"}}, "validation_failed", "filter.code"},
		{"code out of range", map[string]any{"filter": map[string]any{"code": 42}}, "validation_failed", "filter.code"},
		{"bad since", map[string]any{"filter": map[string]any{"since": "now"}}, "validation_failed", "filter.since"},
		{"since after until", map[string]any{"filter": map[string]any{"since": "2026-03-05T00:00:00Z", "until": "2026-03-04T00:00:00Z"}}, "validation_failed", "filter.since"},
		{"bad queue", map[string]any{"filter": map[string]any{"queue": "a\x01"}}, "validation_failed", "filter.queue"},
		{"unknown filter", map[string]any{"filter": map[string]any{"status": 500}}, "invalid_json", "status"},
	} {
		for _, path := range []string{"/v1/dead/retry", "/v1/dead/delete"} {
			r := e.rest(http.MethodPost, path, tt.body)
			status := http.StatusUnprocessableEntity
			if tt.code == "invalid_json" {
				status = http.StatusBadRequest
			}
			e.wantError(r, status, tt.code, tt.field)
		}
	}
	e.wantError(e.rest(http.MethodPost, "/v1/dead/delete", map[string]any{"filter": map[string]any{"queue": "nosuch"}}), http.StatusNotFound, "queue_not_found")
	for _, tt := range []struct{ target, field string }{
		{"/v1/dead?cursor=zzz", "cursor"},
		{"/v1/dead?cursor=300.0.YQ", "cursor"},
		{"/v1/dead?queue=a&cursor=1.0.YQ", "cursor"},
		{"/v1/dead?state=dead", "state"},
		{"/v1/dead?code=1000", "code"},
		{"/v1/dead?until=tomorrow", "until"},
		{"/v1/dead?limit=5000", "limit"},
		{"/v1/dead/count?cursor=0.0.YQ", "cursor"},
		{"/v1/dead/count?since=2026-03-05T00:00:00Z&until=2026-03-04T00:00:00Z", "since"},
		{"/v1/dead?queue=%01", "queue"},
	} {
		e.wantError(e.rest(http.MethodGet, tt.target, nil), http.StatusBadRequest, "bad_request", tt.field)
	}
	e.wantError(e.rest(http.MethodGet, "/v1/dead/count?queue=nosuch", nil), http.StatusNotFound, "queue_not_found")
}
