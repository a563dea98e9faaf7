package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestTaskBackoffOverrides: a task may set its own min_backoff and
// max_backoff (durations, like the queue's retry bounds); they are stored
// with the task and shown back, 0 included.
func TestTaskBackoffOverrides(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{"retry": map[string]any{"min_backoff": 1, "max_backoff": 60}})
	tests := []struct {
		name     string
		body     string
		min, max *float64 // as shown back, nil: absent
		minMs    *int64   // as stored
		maxMs    *int64
	}{
		{name: "none", body: `{"url":"http://example.com/"}`},
		{name: "both as strings", body: `{"url":"http://example.com/","min_backoff":"250ms","max_backoff":"PT2M"}`,
			min: f64(0.25), max: f64(120), minMs: i64(250), maxMs: i64(120_000)},
		{name: "both as seconds", body: `{"url":"http://example.com/","min_backoff":0.5,"max_backoff":3}`,
			min: f64(0.5), max: f64(3), minMs: i64(500), maxMs: i64(3000)},
		{name: "zero", body: `{"url":"http://example.com/","min_backoff":0,"max_backoff":0}`,
			min: f64(0), max: f64(0), minMs: i64(0), maxMs: i64(0)},
		{name: "equal", body: `{"url":"http://example.com/","min_backoff":"2s","max_backoff":2}`,
			min: f64(2), max: f64(2), minMs: i64(2000), maxMs: i64(2000)},
		{name: "min only", body: `{"url":"http://example.com/","min_backoff":"10s"}`, min: f64(10), minMs: i64(10_000)},
		{name: "max only", body: `{"url":"http://example.com/","max_backoff":"1m"}`, max: f64(60), maxMs: i64(60_000)},
		{name: "min only, above the queue's max", body: `{"url":"http://example.com/","min_backoff":"5m"}`, min: f64(300), minMs: i64(300_000)},
		{name: "sub-millisecond rounds up", body: `{"url":"http://example.com/","min_backoff":"100us"}`, min: f64(0.001), minMs: i64(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created := e.addTask("q", tt.body)
			var got struct {
				MinBackoff *float64 `json:"min_backoff"`
				MaxBackoff *float64 `json:"max_backoff"`
			}
			e.must(e.rest(http.MethodGet, "/v1/tasks/"+created.ID, nil), http.StatusOK, &got)
			if !sameF64(got.MinBackoff, tt.min) || !sameF64(got.MaxBackoff, tt.max) {
				t.Errorf("shown min_backoff %v max_backoff %v, want %v %v", show64(got.MinBackoff), show64(got.MaxBackoff), show64(tt.min), show64(tt.max))
			}
			ti, err := e.st.GetTask(e.ctx, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !sameI64(ti.Spec.MinBackoffMs, tt.minMs) || !sameI64(ti.Spec.MaxBackoffMs, tt.maxMs) {
				t.Errorf("stored min %v max %v ms, want %v %v", ti.Spec.MinBackoffMs, ti.Spec.MaxBackoffMs, tt.minMs, tt.maxMs)
			}
		})
	}

	// batches carry them per task
	var out struct {
		Tasks []taskJSON `json:"tasks"`
	}
	e.must(e.rest(http.MethodPost, "/v1/queues/q/tasks/batch",
		`{"tasks":[{"url":"http://example.com/1"},{"url":"http://example.com/2","min_backoff":"1s","max_backoff":"5s"}]}`), http.StatusCreated, &out)
	for i, want := range []*int64{nil, i64(5000)} {
		ti, err := e.st.GetTask(e.ctx, out.Tasks[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if !sameI64(ti.Spec.MaxBackoffMs, want) {
			t.Errorf("batch task %d: stored max_backoff %v ms, want %v", i, ti.Spec.MaxBackoffMs, want)
		}
	}
}

// TestTaskBackoffValidation: invalid per-task backoff bounds are refused
// with an error naming the field, and nothing is stored.
func TestTaskBackoffValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	before := e.snapshot()
	tests := []struct {
		name, body string
		status     int
		code       string
		msgHas     []string
	}{
		{"min above max", `{"url":"http://x/","min_backoff":"10s","max_backoff":"5s"}`, 422, "validation_failed",
			[]string{"min_backoff", "must not exceed max_backoff", "10s", "5s"}},
		{"min above max, seconds", `{"url":"http://x/","min_backoff":2,"max_backoff":1.5}`, 422, "validation_failed",
			[]string{"min_backoff", "max_backoff"}},
		{"negative min", `{"url":"http://x/","min_backoff":-1}`, 422, "validation_failed", []string{"min_backoff: invalid duration"}},
		{"negative max string", `{"url":"http://x/","max_backoff":"-5s"}`, 422, "validation_failed", []string{"max_backoff: invalid duration"}},
		{"not a duration", `{"url":"http://x/","max_backoff":"soon"}`, 422, "validation_failed", []string{"max_backoff: invalid duration"}},
		{"over 100 years", `{"url":"http://x/","max_backoff":4e9}`, 422, "validation_failed", []string{"max_backoff: invalid duration"}},
		{"wrong type", `{"url":"http://x/","min_backoff":true}`, 422, "validation_failed", []string{"min_backoff"}},
		{"in a batch", `{"tasks":[{"url":"http://x/"},{"url":"http://x/","min_backoff":"1m","max_backoff":"1s"}]}`, 422, "validation_failed",
			[]string{"tasks[1]: min_backoff"}},
		{"nested in retry is unknown", `{"url":"http://x/","retry":{"min_backoff":1}}`, 400, "invalid_json", []string{"retry"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v1/queues/q/tasks"
			if tt.name == "in a batch" {
				path += "/batch"
			}
			e.wantError(e.rest(http.MethodPost, path, tt.body), tt.status, tt.code, tt.msgHas...)
		})
	}
	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Errorf("refused tasks changed Redis: %v", d)
	}
}

func f64(v float64) *float64 { return &v }
func i64(v int64) *int64     { return &v }

func sameF64(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
func sameI64(a, b *int64) bool   { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func show64(p *float64) string {
	if p == nil {
		return "absent"
	}
	b, _ := json.Marshal(*p)
	return string(b)
}
