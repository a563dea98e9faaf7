package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCreateTaskWithK: a task may be created with its variable call count
// (k), shown back until its first call; a k that is not a whole number from
// 0 up is refused with the field named, and nothing is stored.
func TestCreateTaskWithK(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("v", map[string]any{"type": "variable", "stepping_time": 1, "max_time_interval": 10})
	tj := e.addTask("v", map[string]any{"url": "http://example.com/poll", "k": 4})
	var got struct {
		K int64 `json:"k"`
	}
	e.must(e.rest(http.MethodGet, "/v1/tasks/"+tj.ID, nil), http.StatusOK, &got)
	if got.K != 4 {
		t.Errorf("k = %d, want 4", got.K)
	}
	before := e.snapshot()
	for _, body := range []string{
		`{"url":"http://example.com/a","k":-1}`,
		`{"url":"http://example.com/a","k":1.5}`,
		`{"url":"http://example.com/a","k":"3"}`,
		`{"url":"http://example.com/a","k":10000000000}`,
	} {
		r := e.rest(http.MethodPost, "/v1/queues/v/tasks", body)
		status := http.StatusUnprocessableEntity
		if r.status == http.StatusBadRequest { // the wrong JSON type: invalid_json
			status = http.StatusBadRequest
		}
		e.wantError(r, status, "")
		t.Logf("%s -> %d %s", body, r.status, r.body)
		if _, m := restError(t, r); !strings.HasPrefix(m, "k: ") {
			t.Errorf("%s: message %q does not name the field k", body, m)
		}
	}
	if d := diffSnapshots(before, e.snapshot()); len(d) > 0 {
		t.Errorf("refused creates changed Redis: %v", d)
	}
}
