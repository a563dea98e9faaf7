package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/htq/htq/internal/api"
)

// metricValue reads one series of the server's /metrics, written as in the
// exposition format (labels in name order), e.g.
// `htq_api_tasks_rejected_total{reason="unauthorized"}`. ok is false when
// the series is absent.
func (e *testEnv) metricValue(series string) (v float64, ok bool) {
	e.t.Helper()
	r := e.rest(http.MethodGet, "/metrics", nil, "Authorization", "-")
	e.must(r, http.StatusOK, nil)
	for _, line := range strings.Split(string(r.body), "\n") {
		rest, found := strings.CutPrefix(line, series+" ")
		if !found {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			e.t.Fatalf("/metrics: %q: %v", line, err)
		}
		return v, true
	}
	return 0, false
}

// metric is metricValue for a series that must be present.
func (e *testEnv) metric(series string) float64 {
	e.t.Helper()
	v, ok := e.metricValue(series)
	if !ok {
		e.t.Fatalf("/metrics lacks %s", series)
	}
	return v
}

// TestRequestMetricMethodBounded: a method outside the standard set is
// counted as "other", so a client cannot create label values at will.
func TestRequestMetricMethodBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, m := range []string{"FROBNICATE", "get", "X-" + strings.Repeat("A", 30), "PROPFIND"} {
		r := e.rest(m, "/v1/queues", nil)
		if r.status < 400 {
			t.Errorf("%s /v1/queues: %v, want an error", m, r)
		}
	}
	e.must(e.rest(http.MethodGet, "/v1/queues", nil), http.StatusOK, nil)
	r := e.rest(http.MethodGet, "/metrics", nil, "Authorization", "-")
	e.must(r, http.StatusOK, nil)
	for _, bad := range []string{"FROBNICATE", `method="get"`, "X-AAAA", "PROPFIND"} {
		if strings.Contains(string(r.body), bad) {
			t.Errorf("/metrics has a label value from the client: %s", bad)
		}
	}
	if got := e.metric(`htq_api_requests_total{code="405",method="other",route="/v1/queues"}`); got != 4 {
		t.Errorf(`method="other" counted %v requests, want 4`, got)
	}
	if got := e.metric(`htq_api_requests_total{code="200",method="GET",route="/v1/queues"}`); got != 1 {
		t.Errorf(`method="GET" counted %v requests, want 1`, got)
	}
}

// TestUnauthorizedRejectionsOnlyForTaskCreation: a 401 counts as a
// rejected task on the routes that create tasks (REST create and batch,
// legacy addTask) and nowhere else.
func TestUnauthorizedRejectionsOnlyForTaskCreation(t *testing.T) {
	t.Parallel()
	const series = `htq_api_tasks_rejected_total{reason="unauthorized"}`
	task := `{"url":"http://example.com/"}`
	batch := `{"tasks":[{"url":"http://example.com/"}]}`
	tests := []struct {
		name  string
		send  func(e *testEnv) *result
		count bool
	}{
		{"GET queues", func(e *testEnv) *result { return e.rest(http.MethodGet, "/v1/queues", nil, "Authorization", "-") }, false},
		{"GET queue", func(e *testEnv) *result { return e.rest(http.MethodGet, "/v1/queues/q", nil, "Authorization", "-") }, false},
		{"GET tasks", func(e *testEnv) *result {
			return e.rest(http.MethodGet, "/v1/queues/q/tasks", nil, "Authorization", "Bearer wrong")
		}, false},
		{"PUT queue", func(e *testEnv) *result { return e.rest(http.MethodPut, "/v1/queues/q", `{}`, "Authorization", "-") }, false},
		{"DELETE task", func(e *testEnv) *result {
			return e.rest(http.MethodDelete, "/v1/tasks/00000000000001", nil, "Authorization", "-")
		}, false},
		{"unknown /v1 route", func(e *testEnv) *result { return e.rest(http.MethodPost, "/v1/nosuch", task, "Authorization", "-") }, false},
		{"legacy addQueue", func(e *testEnv) *result {
			return e.legacy("addQueue", encMultipart, fields("app_key", testAppKey, "app_token", "nope", "queue_name", "q"))
		}, false},
		{"legacy allQueue", func(e *testEnv) *result { return e.legacy("allQueue", encURLEncoded, nil) }, false},
		{"legacy countQueue", func(e *testEnv) *result {
			return e.legacy("countQueue", encMultipart, fields("queue_name", "q"))
		}, false},
		{"POST task, no token", func(e *testEnv) *result {
			return e.rest(http.MethodPost, "/v1/queues/q/tasks", task, "Authorization", "-")
		}, true},
		{"POST task, wrong token", func(e *testEnv) *result {
			return e.rest(http.MethodPost, "/v1/queues/q/tasks", task, "Authorization", "Bearer wrong")
		}, true},
		{"POST batch", func(e *testEnv) *result {
			return e.rest(http.MethodPost, "/v1/queues/q/tasks/batch", batch, "Authorization", "-")
		}, true},
		{"legacy addTask", func(e *testEnv) *result {
			return e.legacy("addTask", encMultipart, fields("app_key", testAppKey, "app_token", "nope", "url", "http://example.com/"))
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			before := e.metric(series)
			r := tc.send(e)
			if strings.HasPrefix(r.header.Get("Content-Type"), "application/json; charset=utf-8") {
				wantBody(t, r, bodyAuthFailed)
			} else if r.status != http.StatusUnauthorized {
				t.Fatalf("got %v, want 401", r)
			}
			want := before
			if tc.count {
				want++
			}
			if got := e.metric(series); got != want {
				t.Errorf("%s = %v after the call, want %v", series, got, want)
			}
		})
	}
}

// TestLegacyTooLargeRejectionsOnlyForAddTask: a legacy form over the body
// limit counts as a rejected task on addTask only.
func TestLegacyTooLargeRejectionsOnlyForAddTask(t *testing.T) {
	t.Parallel()
	const series = `htq_api_tasks_rejected_total{reason="too_large"}`
	for _, tc := range []struct {
		endpoint string
		count    bool
	}{{"addQueue", false}, {"countQueue", false}, {"addTask", true}} {
		t.Run(tc.endpoint, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, envOptions{mutate: func(c *api.Config) { c.MaxBodyBytes = 1024 }})
			before := e.metric(series)
			body, ct := encodeForm(t, encMultipart, creds("queue_name", "q", "url", "http://example.com/", "data", strings.Repeat("x", 4096)))
			// no Content-Length (chunked): the limit is found while parsing
			r := e.send(http.MethodPost, "/api/"+tc.endpoint, io.MultiReader(bytes.NewReader(body)), http.Header{"Content-Type": {ct}})
			wantLegacy(t, r, 1006)
			want := before
			if tc.count {
				want++
			}
			if got := e.metric(series); got != want {
				t.Errorf("%s = %v after the call, want %v", series, got, want)
			}
		})
	}
}
