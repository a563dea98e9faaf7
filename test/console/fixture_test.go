package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htq/htq/internal/testcluster"
)

// env is a cluster (API, scheduler, dispatcher, Redis), a target whose
// answers the test switches, and a browser.
type env struct {
	t      *testing.T
	c      *testcluster.Cluster
	target *testcluster.Target
	fail   atomic.Bool // the target answers 500 while set
	b      *browser
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t}
	e.target = testcluster.NewTarget(t)
	e.target.Respond = func(w http.ResponseWriter, r *http.Request, _ int) {
		if e.fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"upstream down <b>bold</b>"}`))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	e.c = testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 1})
	e.b = newBrowser(t, e.c.API)
	return e
}

// queue creates a queue with quick retries (2 attempts).
func (e *env) queue(name string, paused bool) {
	e.t.Helper()
	cfg := map[string]any{"timeout": "2s", "retry": map[string]any{"max_attempts": 2, "min_backoff": "100ms", "max_backoff": "200ms"}}
	if st := e.c.REST("PUT", "/v1/queues/"+url.PathEscape(name), cfg, nil); st != 201 && st != 200 {
		e.t.Fatalf("PUT queue %q: %d", name, st)
	}
	if paused {
		if st := e.c.REST("POST", "/v1/queues/"+url.PathEscape(name)+"/pause", nil, nil); st != 200 {
			e.t.Fatalf("pause %q: %d", name, st)
		}
	}
}

// task enqueues a task and returns its id.
func (e *env) task(queue string, body map[string]any) string {
	e.t.Helper()
	if body["url"] == nil {
		body["url"] = e.target.URL + "/hook"
	}
	if body["method"] == nil {
		body["method"] = "POST"
	}
	var out struct {
		ID string `json:"id"`
	}
	if st := e.c.REST("POST", "/v1/queues/"+url.PathEscape(queue)+"/tasks", body, &out); st != 201 && st != 202 && st != 200 {
		e.t.Fatalf("enqueue to %q: %d", queue, st)
	}
	return out.ID
}

type taskView struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	History  []struct {
		Status int `json:"status"`
	} `json:"history"`
	Request *struct {
		Headers []struct{ Name, Value string } `json:"headers"`
		Body    *string                        `json:"body"`
	} `json:"request"`
}

func (e *env) getTask(id string) taskView {
	e.t.Helper()
	var tv taskView
	if st := e.c.REST("GET", "/v1/tasks/"+id, nil, &tv); st != 200 {
		e.t.Fatalf("GET task %s: %d", id, st)
	}
	return tv
}

// waitState waits until a task reaches state.
func (e *env) waitState(id, state string, within time.Duration) {
	e.t.Helper()
	eventually(e.t, fmt.Sprintf("task %s %s", id, state), within, func() error {
		if got := e.getTask(id).State; got != state {
			return fmt.Errorf("state %s", got)
		}
		return nil
	})
}

type queueView struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused"`
	Counts struct {
		Queued, Active, Scheduled, Dead int64
	} `json:"counts"`
}

func (e *env) getQueue(name string) queueView {
	e.t.Helper()
	var q queueView
	if st := e.c.REST("GET", "/v1/queues/"+url.PathEscape(name), nil, &q); st != 200 {
		e.t.Fatalf("GET queue %q: %d", name, st)
	}
	return q
}

// restAs sends a request with another token and returns the status.
func (e *env) restAs(base, tok, method, path string) int {
	e.t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// liveProbe returns the Content-Type of GET /v1/events (empty when the
// route is missing), reading no further than the headers.
func (e *env) liveProbe() string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.c.API+"/v1/events", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testcluster.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return resp.Header.Get("Content-Type")
}
