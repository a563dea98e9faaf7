package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/store"
)

// taskPage is one page of a task list.
type taskPage struct {
	Tasks      []taskJSON `json:"tasks"`
	NextCursor string     `json:"next_cursor"`
}

// failTasks makes the first len(statuses) queued tasks of a queue dead,
// each with its status as its last answer, as a dispatcher would.
func (e *testEnv) failTasks(queue string, statuses ...int) {
	e.t.Helper()
	c, err := e.st.Claim(e.ctx, queue, "test", store.ClaimOptions{TTL: 10 * time.Second, Grace: 0, Want: 1})
	if err != nil || c.Status != store.ClaimOK || len(c.Deliveries) != 1 {
		e.t.Fatalf("claim %q: %+v, %v", queue, c, err)
	}
	d := c.Deliveries[0]
	for i, st := range statuses {
		want := 1
		if i == len(statuses)-1 {
			want = 0
		}
		next, err := c.Owned.Complete(e.ctx, &store.Completion{
			Delivery: &d, Outcome: store.OutcomeDead, Retention: time.Hour, Want: want, HistoryLen: 3,
			Attempt: &store.AttemptRecord{At: e.now().UnixMilli(), Attempt: d.Attempt, Status: st, Error: "test"},
		})
		if err != nil {
			e.t.Fatalf("complete: %v", err)
		}
		if i < len(statuses)-1 {
			if len(next.Deliveries) != 1 {
				e.t.Fatalf("complete %d: next = %+v", i, next)
			}
			d = next.Deliveries[0]
		}
	}
	if err := e.st.FlushDue(e.ctx); err != nil {
		e.t.Fatalf("flush due marks: %v", err)
	}
}

func (e *testEnv) now() time.Time {
	if e.clk != nil {
		return e.clk.Now()
	}
	return time.Now()
}

// addTasks adds one task per URL with a batch request, in order.
func (e *testEnv) addTasks(queue string, urls ...string) []string {
	e.t.Helper()
	var req struct {
		Tasks []map[string]any `json:"tasks"`
	}
	for _, u := range urls {
		req.Tasks = append(req.Tasks, map[string]any{"url": u})
	}
	var out struct {
		Tasks []createdJSONT `json:"tasks"`
	}
	e.must(e.rest(http.MethodPost, "/v1/queues/"+url.PathEscape(queue)+"/tasks/batch", req), http.StatusCreated, &out)
	ids := make([]string, len(out.Tasks))
	for i, t := range out.Tasks {
		ids[i] = t.ID
	}
	return ids
}

type createdJSONT struct {
	ID string `json:"id"`
}

// search follows next_cursor from target (a list URL with its filters) to
// the end and returns every task, failing on a duplicate.
func (e *testEnv) search(target string) []taskJSON {
	e.t.Helper()
	var all []taskJSON
	seen := map[string]bool{}
	cursor := ""
	for range 10000 {
		u := target
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var p taskPage
		e.must(e.rest(http.MethodGet, u, nil), http.StatusOK, &p)
		for _, t := range p.Tasks {
			if seen[t.ID] {
				e.t.Fatalf("%s: task %s listed twice", target, t.ID)
			}
			seen[t.ID] = true
			all = append(all, t)
		}
		if p.NextCursor == "" {
			return all
		}
		cursor = p.NextCursor
	}
	e.t.Fatalf("%s: no end of pages", target)
	return nil
}

func ids(ts []taskJSON) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	slices.Sort(out)
	return out
}

func TestSearchTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	var urls []string
	for i := range 30 {
		kind := "even"
		if i%2 == 1 {
			kind = "odd"
		}
		urls = append(urls, fmt.Sprintf("http://a.test/%s/%d", kind, i))
	}
	all := e.addTasks("q", urls...)
	statuses := make([]int, 20)
	for i := range statuses {
		statuses[i] = []int{500, 404}[i%4/2] // 500 500 404 404 ...
	}
	e.failTasks("q", statuses...)
	dead, queued := all[:20], all[20:]

	want := func(pred func(i int) bool, from []string) []string {
		var out []string
		for _, id := range from {
			i := slices.Index(all, id)
			if pred(i) {
				out = append(out, id)
			}
		}
		slices.Sort(out)
		return out
	}
	even := func(i int) bool { return i%2 == 0 }
	is404 := func(i int) bool { return i < 20 && statuses[i] == 404 }
	for _, tt := range []struct {
		name, target string
		want         []string
	}{
		{"dead by url", "/v1/queues/q/tasks?state=dead&q=/even/&limit=3", want(even, dead)},
		{"dead by code", "/v1/queues/q/tasks?state=dead&code=404&limit=4", want(is404, dead)},
		{"dead by url and code", "/v1/queues/q/tasks?state=dead&code=404&q=even&limit=2", want(func(i int) bool { return even(i) && is404(i) }, dead)},
		{"dead, no match", "/v1/queues/q/tasks?state=dead&q=nowhere", nil},
		{"queued by url", "/v1/queues/q/tasks?state=queued&q=/odd/&limit=2", want(func(i int) bool { return !even(i) }, queued)},
		{"queued by code (none called)", "/v1/queues/q/tasks?state=queued&code=500", nil},
		{"dead by id", "/v1/queues/q/tasks?state=dead&q=" + dead[3], []string{dead[3]}},
		{"queued by the id of a dead task", "/v1/queues/q/tasks?state=queued&q=" + dead[3], nil},
		{"queued by id", "/v1/queues/q/tasks?state=queued&q=" + queued[1], []string{queued[1]}},
	} {
		got := ids(e.search(tt.target))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	for _, tj := range e.search("/v1/queues/q/tasks?state=dead&code=404&q=even") {
		if tj.LastStatus != 404 || !strings.Contains(tj.URL, "even") || tj.State != "dead" {
			t.Errorf("match %+v", tj)
		}
	}
}

func TestSearchTasksTimeRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	var at []string
	for h := 1; h <= 3; h++ {
		tj := e.addTask("q", map[string]any{"url": "http://a.test/x", "run_at": testNow.Add(time.Duration(h) * time.Hour).Format(time.RFC3339)})
		at = append(at, tj.ID)
	}
	f := func(d time.Duration) string { return url.QueryEscape(testNow.Add(d).Format(time.RFC3339)) }
	for _, tt := range []struct {
		target string
		want   []string
	}{
		{"/v1/queues/q/tasks?state=scheduled&since=" + f(90*time.Minute) + "&until=" + f(150*time.Minute), []string{at[1]}},
		{"/v1/queues/q/tasks?state=scheduled&since=" + f(2*time.Hour), []string{at[1], at[2]}},
		{"/v1/queues/q/tasks?state=scheduled&until=" + f(2*time.Hour), []string{at[0], at[1]}},
		{"/v1/queues/q/tasks?state=scheduled&since=" + f(4*time.Hour), nil},
	} {
		got := ids(e.search(tt.target))
		w := slices.Clone(tt.want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("%s: got %v, want %v", tt.target, got, w)
		}
	}
	// queued: the time the task entered the queue
	e.clk.Advance(time.Minute)
	later := e.addTask("q", map[string]any{"url": "http://a.test/y"})
	got := ids(e.search("/v1/queues/q/tasks?state=queued&since=" + f(30*time.Second)))
	if !slices.Equal(got, []string{later.ID}) {
		t.Errorf("queued since: got %v, want %v", got, later.ID)
	}
	if got := e.search("/v1/queues/q/tasks?state=queued&until=" + f(30*time.Second)); len(got) != 0 {
		t.Errorf("queued until: got %v", ids(got))
	}
}

func TestSearchTasksRetrying(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	ids0 := e.addTasks("q", "http://a.test/1", "http://a.test/2")
	c, err := e.st.Claim(e.ctx, "q", "test", store.ClaimOptions{TTL: 10 * time.Second, Want: 1})
	if err != nil || len(c.Deliveries) != 1 {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	if _, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &c.Deliveries[0], Outcome: store.OutcomeHold,
		Due: testNow.Add(time.Minute), Attempt: &store.AttemptRecord{At: testNow.UnixMilli(), Attempt: 1, Status: 503}, HistoryLen: 3}); err != nil {
		t.Fatalf("hold: %v", err)
	}
	got := e.search("/v1/queues/q/tasks?state=retrying")
	if len(got) != 1 || got[0].ID != ids0[0] || got[0].State != "retrying" {
		t.Fatalf("retrying: %+v, want %s", got, ids0[0])
	}
	if got := e.search("/v1/queues/q/tasks?state=retrying&code=500"); len(got) != 0 {
		t.Fatalf("retrying with code 500: %+v", got)
	}
	if got := e.search("/v1/queues/q/tasks?state=retrying&code=503&q=" + ids0[0]); len(got) != 1 {
		t.Fatalf("retrying by id and code: %+v", got)
	}
}

// TestSearchTasksBudget: a rare match far down a long list comes after
// short pages with a next cursor, not after one request scanning it all.
func TestSearchTasksBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{"max_backlog": 10000})
	n := store.SearchBudget + 100
	urls := []string{"http://a.test/needle"}
	for i := 1; i < n; i++ {
		urls = append(urls, "http://a.test/hay")
	}
	var all []string
	for i := 0; i < n; i += 1000 {
		all = append(all, e.addTasks("q", urls[i:min(n, i+1000)]...)...)
	}
	var p taskPage
	e.must(e.rest(http.MethodGet, "/v1/queues/q/tasks?state=queued&q=hay&limit=1000", nil), http.StatusOK, &p)
	if len(p.Tasks) != 1000 || p.NextCursor == "" {
		t.Fatalf("hay: %d tasks, cursor %q", len(p.Tasks), p.NextCursor)
	}
	// newest last: the needle is the first entry, then hay
	e.must(e.rest(http.MethodGet, "/v1/queues/q/tasks?state=queued&q=needle", nil), http.StatusOK, &p)
	if len(p.Tasks) != 1 || p.Tasks[0].ID != all[0] {
		t.Fatalf("needle: %+v", p)
	}
	// the needle at the end: the first page examines the budget and stops
	e.failTasks("q", slices.Repeat([]int{500}, n)...)
	e.must(e.rest(http.MethodGet, "/v1/queues/q/tasks?state=dead&q=needle", nil), http.StatusOK, &p)
	if len(p.Tasks) != 0 || p.NextCursor != fmt.Sprint(store.SearchBudget) {
		t.Fatalf("first page: %d tasks, cursor %q, want none and %d", len(p.Tasks), p.NextCursor, store.SearchBudget)
	}
	if got := e.search("/v1/queues/q/tasks?state=dead&q=needle"); len(got) != 1 || got[0].ID != all[0] {
		t.Fatalf("needle among the dead: %v", ids(got))
	}
}

func TestSearchTasksBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	for _, tt := range []struct{ query, field string }{
		{"state=bogus", "state"},
		{"state=succeeded", "state"},
		{"state=dead&code=abc", "code"},
		{"state=dead&code=99", "code"},
		{"state=dead&code=600", "code"},
		{"state=dead&since=yesterday", "since"},
		{"state=dead&until=2026-13-01T00:00:00Z", "until"},
		{"state=dead&since=2026-03-04T06:00:00Z&until=2026-03-04T05:00:00Z", "since"},
		{"state=dead&status=500", "status"},
		{"state=dead&cursor=-1", "cursor"},
		{"state=dead&cursor=abc", "cursor"},
		{"state=queued&q=x&cursor=1-2-3", "cursor"},
		{"state=retrying&cursor=x", "cursor"},
		{"state=dead&limit=0", "limit"},
		{"state=dead&q=x&limit=1001", "limit"},
	} {
		e.wantError(e.rest(http.MethodGet, "/v1/queues/q/tasks?"+tt.query, nil), http.StatusBadRequest, "bad_request", tt.field)
	}
	e.wantError(e.rest(http.MethodGet, "/v1/queues/nosuch/tasks?state=dead&q=x", nil), http.StatusNotFound, "queue_not_found")
}
