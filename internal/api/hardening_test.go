package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestEchoedValuesAreClipped: an error quotes at most a short piece of a
// bad value, however long the value (a 0.9 MB timeout string once came
// back in a 5.4 MB error).
func TestEchoedValuesAreClipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	huge := strings.Repeat("9x", 450_000)
	for _, tc := range []struct{ name, method, path, body, code string }{
		{"timeout string", http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://x","timeout":"` + huge + `"}`, "validation_failed"},
		{"queue timeout string", http.MethodPut, "/v1/queues/q", `{"timeout":"P` + huge + `"}`, "validation_failed"},
		{"unknown field", http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://x","` + huge + `":1}`, "invalid_json"},
		{"number for a string", http.MethodPost, "/v1/queues/q/tasks", `{"url":1` + strings.Repeat("0", 900_000) + `}`, "invalid_json"},
		{"queue type", http.MethodPut, "/v1/queues/q", `{"type":"` + huge + `"}`, "validation_failed"},
		{"run_at", http.MethodPost, "/v1/queues/q/tasks", `{"url":"http://x","run_at":"` + huge + `"}`, "validation_failed"},
	} {
		r := e.rest(tc.method, tc.path, tc.body)
		if r.status/100 != 4 {
			t.Errorf("%s: %v, want a 4xx", tc.name, r)
			continue
		}
		code, msg := restError(t, r)
		if code != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, code, tc.code)
		}
		if len(r.body) > 2048 {
			t.Errorf("%s: %d-byte error answer to a %d-byte body: %.200s…", tc.name, len(r.body), len(tc.body), msg)
		}
	}
}
