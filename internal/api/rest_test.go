package api_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/task"
)

// field reads a dotted path ("retry.min_backoff") from decoded JSON.
func field(m map[string]any, path string) any {
	var v any = m
	for p := range strings.SplitSeq(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[p]
	}
	return v
}

func TestPutQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	type step struct {
		body   string
		status int
		want   map[string]any // dotted path -> JSON value
	}
	defaults := map[string]any{
		"type": "realtime", "concurrency": 1.0, "timeout": 30.0, "retry.max_attempts": 5.0,
		"retry.min_backoff": 1.0, "retry.max_backoff": 300.0, "ordering": "strict", "paused": false,
		"stepping_time": 0.0, "max_time_interval": 0.0, "rate": 0.0,
		"counts.queued": 0.0, "counts.active": 0.0, "counts.scheduled": 0.0, "counts.dead": 0.0,
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"defaults", []step{{`{}`, http.StatusCreated, defaults}}},
		{"numbers", []step{{
			`{"type":"variable","stepping_time":2,"max_time_interval":5.5,"concurrency":3,"rate":2.5,"timeout":10,
			  "retry":{"max_attempts":7,"min_backoff":0.25,"max_backoff":60},"ordering":"relaxed"}`,
			http.StatusCreated,
			map[string]any{"type": "variable", "stepping_time": 2.0, "max_time_interval": 5.5, "concurrency": 3.0, "rate": 2.5,
				"timeout": 10.0, "retry.max_attempts": 7.0, "retry.min_backoff": 0.25, "retry.max_backoff": 60.0, "ordering": "relaxed"},
		}}},
		{"strings", []step{{
			`{"type":"variable","stepping_time":"500ms","max_time_interval":"2s","timeout":"1m30s",
			  "retry":{"min_backoff":"100ms","max_backoff":"PT1M"}}`,
			http.StatusCreated,
			map[string]any{"stepping_time": 0.5, "max_time_interval": 2.0, "timeout": 90.0, "retry.min_backoff": 0.1,
				"retry.max_backoff": 60.0, "retry.max_attempts": 5.0},
		}}},
		{"update keeps omitted fields", []step{
			{`{"type":"variable","stepping_time":"500ms","max_time_interval":3,"concurrency":2,"ordering":"relaxed"}`, http.StatusCreated, nil},
			{`{"concurrency":4}`, http.StatusOK, map[string]any{"type": "variable", "stepping_time": 0.5, "max_time_interval": 3.0,
				"concurrency": 4.0, "ordering": "relaxed", "timeout": 30.0}},
			{`{"retry":{"max_attempts":9}}`, http.StatusOK, map[string]any{"retry.max_attempts": 9.0, "retry.min_backoff": 1.0,
				"concurrency": 4.0, "stepping_time": 0.5}},
			{`{}`, http.StatusOK, map[string]any{"retry.max_attempts": 9.0, "concurrency": 4.0, "type": "variable"}},
		}},
		{"invalid update changes nothing", []step{
			{`{"concurrency":2}`, http.StatusCreated, nil},
			{`{"concurrency":0}`, http.StatusUnprocessableEntity, nil},
			{`{"type":"realtime","timeout":"-1s"}`, http.StatusUnprocessableEntity, nil},
			{`{}`, http.StatusOK, map[string]any{"concurrency": 2.0, "timeout": 30.0}},
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			q := fmt.Sprintf("put-%d", i)
			for j, s := range tc.steps {
				r := e.rest(http.MethodPut, "/v1/queues/"+q, s.body)
				if r.status != s.status {
					t.Fatalf("step %d: %v, want HTTP %d", j, r, s.status)
				}
				if s.status >= 400 {
					restError(t, r)
					continue
				}
				var m map[string]any
				if err := json.Unmarshal(r.body, &m); err != nil {
					t.Fatal(err)
				}
				if m["name"] != q {
					t.Errorf("step %d: name %v", j, m["name"])
				}
				for path, want := range s.want {
					if got := field(m, path); !reflect.DeepEqual(got, want) {
						t.Errorf("step %d: %s = %v, want %v (%s)", j, path, got, want, r.body)
					}
				}
				// GET shows what PUT answered
				var g map[string]any
				e.must(e.rest(http.MethodGet, "/v1/queues/"+q, nil), http.StatusOK, &g)
				delete(g, "counts")
				delete(m, "counts")
				if !reflect.DeepEqual(g, m) {
					t.Errorf("step %d: GET %v, PUT answered %v", j, g, m)
				}
			}
		})
	}
}

func TestQueueCountsPauseDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	var ids []string
	for i := range 3 {
		ids = append(ids, e.addTask("q", map[string]any{"url": fmt.Sprintf("http://example.com/%d", i)}).ID)
	}
	ids = append(ids, e.addTask("q", map[string]any{"url": "http://example.com/later", "delay": 60}).ID)
	e.killTasks("q", 1)
	q := e.getQueue("q")
	if q.Counts.Queued != 2 || q.Counts.Scheduled != 1 || q.Counts.Dead != 1 || q.Counts.Active != 0 {
		t.Fatalf("counts = %+v, want 2 queued, 1 scheduled, 1 dead", q.Counts)
	}

	var p queueJSON
	e.must(e.rest(http.MethodPost, "/v1/queues/q/pause", nil), http.StatusOK, &p)
	if !p.Paused || !e.getQueue("q").Paused {
		t.Fatalf("pause: %+v", p)
	}
	e.must(e.rest(http.MethodPost, "/v1/queues/q/pause", nil), http.StatusOK, &p) // twice is fine
	e.must(e.rest(http.MethodPost, "/v1/queues/q/resume", nil), http.StatusOK, &p)
	if p.Paused || e.getQueue("q").Paused {
		t.Fatalf("resume: %+v", p)
	}

	r := e.rest(http.MethodDelete, "/v1/queues/q", nil)
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("DELETE queue: %v, want 204 without a body", r)
	}
	e.wantError(e.rest(http.MethodGet, "/v1/queues/q", nil), http.StatusNotFound, "queue_not_found")
	e.wantError(e.rest(http.MethodDelete, "/v1/queues/q", nil), http.StatusNotFound, "queue_not_found")
	for _, id := range ids {
		e.wantError(e.rest(http.MethodGet, "/v1/tasks/"+id, nil), http.StatusNotFound, "task_not_found")
	}
	e.wantError(e.rest(http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://example.com/"}`), http.StatusNotFound, "queue_not_found")
	var list struct {
		Queues []queueJSON `json:"queues"`
	}
	e.must(e.rest(http.MethodGet, "/v1/queues", nil), http.StatusOK, &list)
	if len(list.Queues) != 0 {
		t.Fatalf("queues after delete: %+v", list.Queues)
	}
}

func TestListQueuesPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var list struct {
		Queues     []queueJSON `json:"queues"`
		NextCursor *string     `json:"next_cursor"`
	}
	r := e.rest(http.MethodGet, "/v1/queues", nil)
	e.must(r, http.StatusOK, &list)
	if list.Queues == nil || len(list.Queues) != 0 || list.NextCursor != nil {
		t.Fatalf("empty list: %s", r.body)
	}
	names := []string{"a", "b", "c", "d", "e"}
	for i := len(names) - 1; i >= 0; i-- {
		e.putQueue(names[i], map[string]any{"concurrency": i + 1})
	}
	e.addTask("c", map[string]any{"url": "http://example.com/"})
	for _, tc := range []struct {
		limit int
		pages [][]string
	}{
		{1, [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"e"}}},
		{2, [][]string{{"a", "b"}, {"c", "d"}, {"e"}}},
		{5, [][]string{{"a", "b", "c", "d", "e"}}},
		{1000, [][]string{{"a", "b", "c", "d", "e"}}},
	} {
		var got [][]string
		cursor := ""
		for range 10 {
			target := fmt.Sprintf("/v1/queues?limit=%d", tc.limit)
			if cursor != "" {
				target += "&cursor=" + url.QueryEscape(cursor)
			}
			list.NextCursor = nil
			e.must(e.rest(http.MethodGet, target, nil), http.StatusOK, &list)
			var page []string
			for _, q := range list.Queues {
				page = append(page, q.Name)
				if q.Name == "c" && q.Counts.Queued != 1 {
					t.Errorf("queue c counts %+v, want 1 queued", q.Counts)
				}
			}
			got = append(got, page)
			if list.NextCursor == nil {
				break
			}
			cursor = *list.NextCursor
		}
		if !reflect.DeepEqual(got, tc.pages) {
			t.Errorf("limit %d: pages %v, want %v", tc.limit, got, tc.pages)
		}
	}
}

func TestCreateTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	now := testNow
	tests := []struct {
		name      string
		body      string
		state     string
		runAt     time.Time
		method    string
		wantField func(t *testing.T, ti *taskJSON)
	}{
		{"minimal", `{"url":"http://example.com/a"}`, "queued", time.Time{}, "GET", nil},
		{"post json body", `{"url":"https://example.com/b","method":"post","body":{"x":1}}`, "queued", time.Time{}, "POST", nil},
		{"delay number", `{"url":"http://example.com/c","delay":1.5}`, "scheduled", now.Add(1500 * time.Millisecond), "GET", nil},
		{"delay string", `{"url":"http://example.com/d","delay":"250ms"}`, "scheduled", now.Add(250 * time.Millisecond), "GET", nil},
		{"delay ISO", `{"url":"http://example.com/d","delay":"PT1M"}`, "scheduled", now.Add(time.Minute), "GET", nil},
		{"delay zero", `{"url":"http://example.com/e","delay":0}`, "queued", time.Time{}, "GET", nil},
		{"run_at future", `{"url":"http://example.com/f","run_at":"2030-01-02T03:04:05.678+08:00"}`, "scheduled",
			time.Date(2030, 1, 2, 3, 4, 5, 678e6, time.FixedZone("", 8*3600)), "GET", nil},
		{"run_at past", `{"url":"http://example.com/g","run_at":"2020-01-02T03:04:05Z"}`, "queued", time.Time{}, "GET", nil},
		// kept in milliseconds, rounded up: never called before run_at
		{"run_at below a millisecond", `{"url":"http://example.com/g2","run_at":"2030-01-02T03:04:05.678000001Z"}`, "scheduled",
			time.Date(2030, 1, 2, 3, 4, 5, 679e6, time.UTC), "GET", nil},
		{"form and options", `{"url":"http://example.com/h","method":"PUT","form":{"b":"2","a":"1"},"timeout":"5s","max_attempts":3}`,
			"queued", time.Time{}, "PUT", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			r := e.rest(http.MethodPost, "/v1/queues/q/tasks", tc.body)
			var c taskJSON
			e.must(r, http.StatusCreated, &c)
			if len(c.ID) != task.IDLength || c.Queue != "q" || c.State != tc.state || c.Existed {
				t.Fatalf("created %s", r.body)
			}
			if loc := r.header.Get("Location"); loc != "/v1/tasks/"+c.ID {
				t.Errorf("Location %q, want /v1/tasks/%s", loc, c.ID)
			}
			if tc.runAt.IsZero() != (c.RunAt == nil) || c.RunAt != nil && !c.RunAt.Equal(tc.runAt) {
				t.Errorf("created run_at %v, want %v", c.RunAt, tc.runAt)
			}
			var g taskJSON
			e.must(e.rest(http.MethodGet, "/v1/tasks/"+c.ID, nil), http.StatusOK, &g)
			var in struct{ URL string }
			_ = json.Unmarshal([]byte(tc.body), &in)
			if g.ID != c.ID || g.Queue != "q" || g.State != tc.state || g.URL != in.URL || g.Method != tc.method || g.Attempts != 0 {
				t.Errorf("GET task: %+v", g)
			}
			if tc.runAt.IsZero() != (g.RunAt == nil) || g.RunAt != nil && !g.RunAt.Equal(tc.runAt) {
				t.Errorf("GET run_at %v, want %v", g.RunAt, tc.runAt)
			}
			ti, err := e.st.GetTask(e.ctx, c.ID)
			if err != nil || ti.Spec.URL != in.URL || ti.Spec.CreatedMs != now.UnixMilli() {
				t.Fatalf("stored %+v, %v", ti, err)
			}
		})
	}
	t.Run("stored spec", func(t *testing.T) {
		t.Parallel()
		e := *e
		e.t = t
		c := e.addTask("q", map[string]any{"url": "http://example.com/s", "method": "post", "form": map[string]string{"b": "2", "a": "1"},
			"form_encoding": "multipart", "headers": map[string]string{"X-B": "2", "X-A": "1"}, "timeout": "2.5s", "max_attempts": 4})
		ti, err := e.st.GetTask(e.ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		s := ti.Spec
		if s.Method != http.MethodPost || s.BodyKind != task.BodyMultipart || s.TimeoutMs != 2500 || s.MaxAttempts != 4 ||
			!reflect.DeepEqual(s.Form, []task.Field{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}) ||
			!reflect.DeepEqual(s.Header, []task.Field{{Name: "X-A", Value: "1"}, {Name: "X-B", Value: "2"}}) {
			t.Fatalf("spec %+v", s)
		}
	})
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	t.Run("field", func(t *testing.T) {
		e := *e
		e.t = t
		body := `{"url":"http://example.com/a","idempotency_key":"k-field"}`
		var a, b taskJSON
		e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks", body), http.StatusCreated, &a)
		r := e.rest(http.MethodPost, "/v1/queues/q/tasks", body)
		e.must(r, http.StatusOK, &b)
		if a.ID == "" || b.ID != a.ID || !b.Existed || r.header.Get("Location") != "/v1/tasks/"+a.ID {
			t.Fatalf("repeat: first %+v, second %+v", a, b)
		}
	})
	t.Run("header", func(t *testing.T) {
		e := *e
		e.t = t
		var a, b, c taskJSON
		e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://example.com/b"}`, "Idempotency-Key", "k-header"), http.StatusCreated, &a)
		e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://example.com/b"}`, "Idempotency-Key", "k-header"), http.StatusOK, &b)
		// the same key in the body names the same task
		e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://example.com/b","idempotency_key":"k-header"}`), http.StatusOK, &c)
		if b.ID != a.ID || c.ID != a.ID {
			t.Fatalf("ids %s %s %s", a.ID, b.ID, c.ID)
		}
		// a different key is a different task
		var d taskJSON
		e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://example.com/b"}`, "Idempotency-Key", "k-other"), http.StatusCreated, &d)
		if d.ID == a.ID {
			t.Fatal("a different key returned the same task")
		}
	})
	t.Run("batch", func(t *testing.T) {
		e := *e
		e.t = t
		var out struct{ Tasks []taskJSON }
		e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks/batch",
			`{"tasks":[{"url":"http://example.com/1","idempotency_key":"bk"},{"url":"http://example.com/2","idempotency_key":"bk"}]}`),
			http.StatusCreated, &out)
		if len(out.Tasks) != 2 || out.Tasks[0].ID != out.Tasks[1].ID || out.Tasks[0].Existed || !out.Tasks[1].Existed {
			t.Fatalf("batch with one key twice: %+v", out.Tasks)
		}
	})
}

func TestIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	const n = 100
	var wg sync.WaitGroup
	statuses := make([]int, n)
	ids := make([]string, n)
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(e.ctx, http.MethodPost, e.ts.URL+"/v1/queues/q/tasks",
				strings.NewReader(`{"url":"http://example.com/once"}`))
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header.Set("Idempotency-Key", "one-key")
			resp, err := e.hc.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			var c taskJSON
			if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
				errs <- err.Error()
			}
			statuses[i], ids[i] = resp.StatusCode, c.ID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	created := 0
	for i := range n {
		switch statuses[i] {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Errorf("request %d: HTTP %d", i, statuses[i])
		}
		if ids[i] != ids[0] || ids[i] == "" {
			t.Errorf("request %d: id %q, first %q", i, ids[i], ids[0])
		}
	}
	if created != 1 {
		t.Errorf("%d requests answered 201, want exactly 1", created)
	}
	if q := e.getQueue("q"); q.Counts.Queued != 1 || q.Counts.Scheduled != 0 {
		t.Fatalf("counts %+v, want exactly one queued task", q.Counts)
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	before := e.snapshot()
	for _, tc := range []struct {
		name, body, bad string
		status          int
	}{
		{"second bad url", `{"tasks":[{"url":"http://example.com/1"},{"url":"ftp://example.com/2"},{"url":"http://example.com/3"}]}`, "tasks[1]", 422},
		{"last bad delay", `{"tasks":[{"url":"http://example.com/1"},{"url":"http://example.com/2","delay":"-1s"}]}`, "", 422},
		{"third missing url", `{"tasks":[{"url":"http://example.com/1"},{"url":"http://example.com/2"},{}]}`, "tasks[2]", 422},
		{"first get with body", `{"tasks":[{"url":"http://example.com/1","body":"x"}]}`, "tasks[0]", 422},
		{"too long url", `{"tasks":[{"url":"http://example.com/1"},{"url":"http://example.com/` + strings.Repeat("a", 9000) + `"}]}`, "tasks[1]", 413},
		{"empty", `{"tasks":[]}`, "tasks", 422},
	} {
		r := e.rest(http.MethodPost, "/v1/queues/q/tasks/batch", tc.body)
		e.wantError(r, tc.status, "", tc.bad)
	}
	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Fatalf("a refused batch wrote to Redis: %v", d)
	}
	if q := e.getQueue("q"); q.Counts.Queued+q.Counts.Scheduled != 0 {
		t.Fatalf("counts %+v after refused batches", q.Counts)
	}

	var out struct{ Tasks []taskJSON }
	r := e.rest(http.MethodPost, "/v1/queues/q/tasks/batch",
		`{"tasks":[{"url":"http://example.com/1"},{"url":"http://example.com/2","delay":"10s"},{"url":"http://example.com/3","method":"POST","body":"x"}]}`)
	e.must(r, http.StatusCreated, &out)
	if len(out.Tasks) != 3 {
		t.Fatalf("batch answer %s", r.body)
	}
	wantStates := []string{"queued", "scheduled", "queued"}
	for i, c := range out.Tasks {
		if c.State != wantStates[i] || c.Queue != "q" || len(c.ID) != task.IDLength {
			t.Errorf("tasks[%d] = %+v", i, c)
		}
		var g taskJSON
		e.must(e.rest(http.MethodGet, "/v1/tasks/"+c.ID, nil), http.StatusOK, &g)
		if g.URL != fmt.Sprintf("http://example.com/%d", i+1) {
			t.Errorf("tasks[%d] url %q", i, g.URL)
		}
	}
	if c := out.Tasks[1]; c.RunAt == nil || !c.RunAt.Equal(testNow.Add(10*time.Second)) {
		t.Errorf("scheduled run_at %v", c.RunAt)
	}
	if q := e.getQueue("q"); q.Counts.Queued != 2 || q.Counts.Scheduled != 1 {
		t.Fatalf("counts %+v", q.Counts)
	}
	queued := e.listTasks("q", "queued", 10)
	if len(queued) != 1 || !reflect.DeepEqual(queued[0], []string{out.Tasks[0].ID, out.Tasks[2].ID}) {
		t.Fatalf("queued order %v", queued)
	}
}

func TestListTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	e.putQueue("dq", map[string]any{})
	var queued, dead []string
	for i := range 5 {
		queued = append(queued, e.addTask("q", map[string]any{"url": fmt.Sprintf("http://example.com/%d", i)}).ID)
	}
	delays := []int{30, 10, 20, 40}
	sched := make(map[int]string)
	for _, d := range delays {
		sched[d] = e.addTask("q", map[string]any{"url": "http://example.com/later", "delay": d}).ID
	}
	for i := range 3 {
		dead = append(dead, e.addTask("dq", map[string]any{"url": fmt.Sprintf("http://example.com/dead/%d", i)}).ID)
	}
	e.killTasks("dq", 3)
	byDue := []string{sched[10], sched[20], sched[30], sched[40]}
	newestFirst := []string{dead[2], dead[1], dead[0]}

	tests := []struct {
		queue, state string
		limit        int
		want         [][]string
	}{
		{"q", "queued", 2, [][]string{queued[0:2], queued[2:4], queued[4:5]}},
		{"q", "queued", 5, [][]string{queued, nil}},
		{"q", "queued", 100, [][]string{queued}},
		{"q", "scheduled", 3, [][]string{byDue[0:3], byDue[3:4]}},
		{"q", "scheduled", 2, [][]string{byDue[0:2], byDue[2:4], nil}},
		{"q", "dead", 10, [][]string{nil}},
		{"q", "active", 10, [][]string{nil}},
		{"dq", "dead", 2, [][]string{newestFirst[0:2], newestFirst[2:3]}},
		{"dq", "queued", 2, [][]string{nil}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/%d", tc.queue, tc.state, tc.limit), func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			if got := e.listTasks(tc.queue, tc.state, tc.limit); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("pages %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("default state is queued", func(t *testing.T) {
		t.Parallel()
		var page struct{ Tasks []taskJSON }
		e := *e
		e.t = t
		e.must(e.rest(http.MethodGet, "/v1/queues/q/tasks", nil), http.StatusOK, &page)
		if len(page.Tasks) != 5 || page.Tasks[0].ID != queued[0] {
			t.Fatalf("default list: %+v", page.Tasks)
		}
	})
	t.Run("dead task details", func(t *testing.T) {
		t.Parallel()
		e := *e
		e.t = t
		var g taskJSON
		e.must(e.rest(http.MethodGet, "/v1/tasks/"+dead[0], nil), http.StatusOK, &g)
		if g.State != "dead" || g.Attempts != 1 {
			t.Fatalf("dead task %+v", g)
		}
	})
}

func TestCancelTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	e.putQueue("dq", map[string]any{})
	queued := e.addTask("q", map[string]any{"url": "http://example.com/now"}).ID
	later := e.addTask("q", map[string]any{"url": "http://example.com/later", "delay": "1h"}).ID
	dead := e.addTask("dq", map[string]any{"url": "http://example.com/dead"}).ID
	e.killTasks("dq", 1)

	for _, id := range []string{queued, later} {
		var c taskJSON
		e.must(e.rest(http.MethodDelete, "/v1/tasks/"+id, nil), http.StatusOK, &c)
		if c.ID != id || c.State != "cancelled" {
			t.Fatalf("cancel %s: %+v", id, c)
		}
		var g taskJSON
		e.must(e.rest(http.MethodGet, "/v1/tasks/"+id, nil), http.StatusOK, &g)
		if g.State != "cancelled" {
			t.Fatalf("GET after cancel: %+v", g)
		}
		e.wantError(e.rest(http.MethodDelete, "/v1/tasks/"+id, nil), http.StatusConflict, "task_finished")
	}
	q := e.getQueue("q")
	if q.Counts.Scheduled != 0 {
		t.Errorf("cancelled scheduled task still counted: %+v", q.Counts)
	}
	if q.Counts.Queued != 0 {
		// A cancelled task stays in the stream until a dispatcher skips it.
		t.Logf("NOTE: a cancelled queued task is still counted as queued: %+v", q.Counts)
	}
	var page struct{ Tasks []taskJSON }
	e.must(e.rest(http.MethodGet, "/v1/queues/q/tasks?state=queued", nil), http.StatusOK, &page)
	if len(page.Tasks) != 0 {
		// The stream entry stays until a dispatcher skips it.
		t.Logf("NOTE: a cancelled queued task is still listed under state=queued: %+v", page.Tasks)
	}

	// a dead task is deleted
	r := e.rest(http.MethodDelete, "/v1/tasks/"+dead, nil)
	if r.status != http.StatusNoContent {
		t.Fatalf("DELETE dead task: %v, want 204", r)
	}
	e.wantError(e.rest(http.MethodGet, "/v1/tasks/"+dead, nil), http.StatusNotFound, "task_not_found")
	if q := e.getQueue("dq"); q.Counts.Dead != 0 {
		t.Fatalf("dead count after delete: %+v", q.Counts)
	}

	for _, id := range []string{"ff00000000ffff", "00000000000000", "nope", "FF00000000FFFF", "../../x"} {
		e.wantError(e.rest(http.MethodDelete, "/v1/tasks/"+url.PathEscape(id), nil), http.StatusNotFound, "task_not_found")
	}
}

// TestQueueNamesInPath: legacy clients name queues freely; every name the
// legacy API accepts must be reachable through REST, escaped once.
func TestQueueNamesInPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	names := []string{"plain", "100%", "a%41", "a%2Fb", "a/b", "a b", "a+b", "a?b", "a#b", "队列", "a:b", "..", "a%zz"}
	for _, n := range names {
		wantBody(t, e.legacy("addQueue", encURLEncoded, creds("queue_name", n, "type", "real_time")), bodyAdded)
	}
	for _, n := range names {
		t.Run(url.PathEscape(n), func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			p := "/v1/queues/" + url.PathEscape(n)
			var q queueJSON
			e.must(e.rest(http.MethodGet, p, nil), http.StatusOK, &q)
			if q.Name != n {
				t.Fatalf("GET %s answered queue %q, want %q", p, q.Name, n)
			}
			c := e.addTask(n, map[string]any{"url": "http://example.com/"})
			if c.Queue != n {
				t.Fatalf("task created in %q", c.Queue)
			}
			if got := e.listTasks(n, "queued", 10); len(got) != 1 || len(got[0]) != 1 || got[0][0] != c.ID {
				t.Fatalf("tasks of %q: %v", n, got)
			}
			e.must(e.rest(http.MethodPost, p+"/pause", nil), http.StatusOK, &q)
			if !q.Paused || q.Name != n {
				t.Fatalf("pause: %+v", q)
			}
		})
	}
}

func TestHealthMetricsOpenAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		r := e.rest(http.MethodGet, p, nil, "Authorization", "-")
		if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "json") {
			t.Fatalf("%s: %v", p, r)
		}
	}
	e.rest(http.MethodGet, "/v1/queues", nil)
	e.rest(http.MethodGet, "/v1/queues", nil, "Authorization", "-")
	r := e.rest(http.MethodGet, "/metrics", nil, "Authorization", "-")
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %v", r)
	}
	for _, want := range []string{
		`htq_api_requests_total{code="200",method="GET",route="/v1/queues"} 1`,
		`htq_api_requests_total{code="401",method="GET",route="/v1/queues"} 1`,
		`htq_api_tasks_rejected_total{reason="unauthorized"} 0`, // a GET creates no task
		"htq_api_request_duration_seconds",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	r = e.rest(http.MethodGet, "/openapi.yaml", nil, "Authorization", "-")
	if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "yaml") {
		t.Fatalf("/openapi.yaml: %v", r)
	}
	if !strings.HasPrefix(string(r.body), "openapi: 3") {
		t.Errorf("/openapi.yaml does not start with an OpenAPI version: %q", clipBytes(r.body, 40))
	}
	r = e.rest(http.MethodGet, "/", nil, "Authorization", "-")
	if r.status != http.StatusOK || string(r.body) != "HTQ" {
		t.Fatalf("GET /: %v", r)
	}
}

func TestReadyzRedisDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	e.redis.Stop()
	r := e.rest(http.MethodGet, "/readyz", nil, "Authorization", "-")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %v, want 503", r)
	}
	if r := e.rest(http.MethodGet, "/healthz", nil, "Authorization", "-"); r.status != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %v (liveness must not depend on Redis)", r)
	}
	// store calls fail cleanly: 503 for REST, a legacy error code, never a hang
	e.wantError(e.rest(http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://example.com/"}`), http.StatusServiceUnavailable, "unavailable")
	e.wantError(e.rest(http.MethodGet, "/v1/queues/q", nil), http.StatusServiceUnavailable, "unavailable")
	wantLegacy(t, e.legacy("addTask", encMultipart, creds("queue_name", "q", "url", "http://example.com/")), 1001)
	wantLegacy(t, e.legacy("deleteQueue", encURLEncoded, creds("queue_name", "q")), 1004)
	wantLegacy(t, e.legacy("countQueue", encMultipart, creds("queue_name", "q")), 1007)
	// authentication needs no Redis
	wantBody(t, e.legacy("allQueue", encMultipart, fields("app_key", testAppKey)), bodyAuthFailed)
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	second := "second-token"
	e := newEnvWith(t, envOptions{mutate: func(c *api.Config) {
		c.Tokens = append(c.Tokens, sha256.Sum256([]byte(second)))
	}})
	tests := []struct {
		header string
		status int
	}{
		{"Bearer " + testToken, http.StatusOK},
		{"Bearer " + second, http.StatusOK},
		{"bearer " + testToken, http.StatusOK},
		{"BEARER " + testToken, http.StatusOK},
		{"Bearer  " + testToken + " ", http.StatusOK},
		{"-", http.StatusUnauthorized},
		{"", http.StatusUnauthorized},
		{"Bearer", http.StatusUnauthorized},
		{"Bearer ", http.StatusUnauthorized},
		{"Bearer x" + testToken, http.StatusUnauthorized},
		{"Bearer " + testToken + "x", http.StatusUnauthorized},
		{"Bearer " + testAppToken, http.StatusUnauthorized},
		{"Basic " + testToken, http.StatusUnauthorized},
		{"Token " + testToken, http.StatusUnauthorized},
		{testToken, http.StatusUnauthorized},
		{"Bearer" + testToken, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			r := e.rest(http.MethodGet, "/v1/queues", nil, "Authorization", tc.header)
			if tc.status == http.StatusOK {
				e.must(r, http.StatusOK, nil)
				return
			}
			e.wantError(r, tc.status, "unauthorized")
			if a := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(a, "Bearer") {
				t.Errorf("WWW-Authenticate %q", a)
			}
		})
	}
	t.Run("no auth mode", func(t *testing.T) {
		t.Parallel()
		e := newEnvWith(t, envOptions{mutate: func(c *api.Config) { c.InsecureNoAuth = true; c.Tokens = nil }})
		e.must(e.rest(http.MethodGet, "/v1/queues", nil, "Authorization", "-"), http.StatusOK, nil)
	})
}

func TestBadDurationNamesItsField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	for _, tc := range []struct {
		method, path, body, field string
	}{
		{http.MethodPut, "/v1/queues/q", `{"timeout":"abc"}`, "timeout"},
		{http.MethodPut, "/v1/queues/q", `{"retry":{"max_backoff":-3}}`, "retry.max_backoff"},
		{http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://x","delay":"soon"}`, "delay"},
		{http.MethodPost, "/v1/queues/q/tasks/batch", `{"tasks":[{"url":"http://x"},{"url":"http://x","timeout":"1x"}]}`, "tasks[1].timeout"},
	} {
		e.wantError(e.rest(tc.method, tc.path, tc.body), http.StatusUnprocessableEntity, "validation_failed", tc.field+": invalid duration")
	}
}

func TestIdempotentRepeatReportsTheStoredTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	var first, again struct {
		ID      string `json:"id"`
		State   string `json:"state"`
		Existed bool   `json:"existed"`
	}
	e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks", map[string]any{"url": "http://x", "idempotency_key": "k"}), http.StatusCreated, &first)
	// the repeat asks for a delay; the stored task is queued, and says so
	e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks", map[string]any{"url": "http://x", "idempotency_key": "k", "delay": 60}), http.StatusOK, &again)
	if again.ID != first.ID || !again.Existed || again.State != "queued" {
		t.Fatalf("repeat = %+v, want the stored queued task", again)
	}
}

func TestDeadLettersRetryDeleteAndPurgeThroughREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	var ids []string
	for i := range 5 {
		ids = append(ids, e.addTask("q", map[string]any{"url": fmt.Sprintf("http://x/%d", i)}).ID)
	}
	e.killTasks("q", 3) // tasks 0, 1, 2 die; 3 and 4 wait
	dead := e.listTasks("q", "dead", 10)
	if got := len(dead[0]); got != 3 {
		t.Fatalf("dead letters = %v", dead)
	}
	var tj taskJSON
	e.must(e.rest(http.MethodGet, "/v1/tasks/"+ids[0], nil), http.StatusOK, &tj)
	if tj.State != "dead" || len(tj.History) != 1 || tj.History[0].Status != 500 {
		t.Fatalf("dead task = %+v", tj)
	}
	// retry one: it runs again, at the tail of the queue
	e.must(e.rest(http.MethodPost, "/v1/tasks/"+ids[0]+"/retry", nil), http.StatusOK, &tj)
	if tj.State != "queued" || tj.Attempts != 0 {
		t.Fatalf("retried = %+v", tj)
	}
	e.wantError(e.rest(http.MethodPost, "/v1/tasks/"+ids[0]+"/retry", nil), http.StatusConflict, "task_not_dead")
	e.wantError(e.rest(http.MethodPost, "/v1/tasks/ff0000000000ff/retry", nil), http.StatusNotFound, "task_not_found")
	// delete another dead letter
	if r := e.rest(http.MethodDelete, "/v1/tasks/"+ids[1], nil); r.status != http.StatusNoContent {
		t.Fatalf("delete dead: %v", r)
	}
	e.wantError(e.rest(http.MethodGet, "/v1/tasks/"+ids[1], nil), http.StatusNotFound, "task_not_found")
	q := e.getQueue("q")
	if q.Counts.Dead != 1 || q.Counts.Queued != 3 {
		t.Fatalf("counts = %+v", q.Counts)
	}
	// purge the waiting tasks (3, 4 and the retried 0); the dead letter stays
	var purged struct {
		Purged int `json:"purged"`
	}
	e.must(e.rest(http.MethodPost, "/v1/queues/q/purge", nil), http.StatusOK, &purged)
	if purged.Purged != 3 {
		t.Fatalf("purged %d, want 3", purged.Purged)
	}
	if q := e.getQueue("q"); q.Counts.Queued != 0 || q.Counts.Dead != 1 {
		t.Fatalf("after purge: %+v", q.Counts)
	}
	e.wantError(e.rest(http.MethodPost, "/v1/queues/nope/purge", nil), http.StatusNotFound, "queue_not_found")
}
