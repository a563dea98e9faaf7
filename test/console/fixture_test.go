package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/testcluster"
)

// env is a cluster (API, scheduler, dispatcher, Redis), a target whose
// answers the test switches, and a browser.
type env struct {
	t      *testing.T
	c      *testcluster.Cluster
	api    *client.Client // the cluster's API with its token
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
	e.api = e.c.Client()
	e.b = newBrowser(t, e.c.API)
	return e
}

// queue creates a queue with quick retries (2 attempts).
func (e *env) queue(name string, paused bool) {
	e.t.Helper()
	two := 2
	cfg := client.QueueSettings{Timeout: client.D(2 * time.Second),
		Retry: &client.Retry{MaxAttempts: &two, MinBackoff: client.D(100 * time.Millisecond), MaxBackoff: client.D(200 * time.Millisecond)}}
	if _, _, err := e.api.PutQueue(e.t.Context(), name, cfg); err != nil {
		e.t.Fatalf("PUT queue %q: %v", name, err)
	}
	if paused {
		if _, err := e.api.PauseQueue(e.t.Context(), name); err != nil {
			e.t.Fatalf("pause %q: %v", name, err)
		}
	}
}

// task enqueues a task (a POST to the target's /hook unless it says
// otherwise) and returns its id.
func (e *env) task(queue string, task client.TaskRequest) string {
	e.t.Helper()
	if task.URL == "" {
		task.URL = e.target.URL + "/hook"
	}
	if task.Method == "" {
		task.Method = "POST"
	}
	cr, err := e.api.CreateTask(e.t.Context(), queue, task)
	if err != nil {
		e.t.Fatalf("enqueue to %q: %v", queue, err)
	}
	return cr.ID
}

// jsonOf is v as a JSON task body.
func jsonOf(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (e *env) getTask(id string) *client.Task {
	e.t.Helper()
	tv, err := e.api.GetTask(e.t.Context(), id)
	if err != nil {
		e.t.Fatalf("GET task %s: %v", id, err)
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

func (e *env) getQueue(name string) *client.Queue {
	e.t.Helper()
	q, err := e.api.GetQueue(e.t.Context(), name)
	if err != nil {
		e.t.Fatalf("GET queue %q: %v", name, err)
	}
	return q
}

// errStatus is the HTTP status of a call's error answer: 0 when the call
// succeeded or no answer came.
func errStatus(err error) int {
	var ae *client.Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// liveProbe returns the Content-Type of GET /v1/events (empty when the
// route is missing), reading no further than the headers. Raw HTTP on
// purpose: the Go client's Events reads the stream and shows no header.
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
