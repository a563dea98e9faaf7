package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// PutQueue creates a queue or changes the given settings of an existing one;
// created says which.
func (c *Client) PutQueue(ctx context.Context, name string, s QueueSettings) (q *Queue, created bool, err error) {
	if name == "" {
		return nil, false, errEmpty
	}
	q = new(Queue)
	status, err := c.do(ctx, request{method: http.MethodPut, path: "/v1/queues/" + seg(name), body: s,
		repeatable: true, want: []int{http.StatusOK, http.StatusCreated}}, q)
	if err != nil {
		return nil, false, err
	}
	return q, status == http.StatusCreated, nil
}

// GetQueue returns a queue with its counts.
func (c *Client) GetQueue(ctx context.Context, name string) (*Queue, error) {
	if name == "" {
		return nil, errEmpty
	}
	q := new(Queue)
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/queues/" + seg(name),
		repeatable: true, want: []int{http.StatusOK}}, q); err != nil {
		return nil, err
	}
	return q, nil
}

// ListQueues returns one page of queues, sorted by name.
func (c *Client) ListQueues(ctx context.Context, o ListOptions) (*QueuePage, error) {
	return c.ListQueuesByPrefix(ctx, "", o)
}

// ListQueuesByPrefix returns one page of the queues whose names start with
// prefix (every queue when it is empty), sorted by name.
func (c *Client) ListQueuesByPrefix(ctx context.Context, prefix string, o ListOptions) (*QueuePage, error) {
	q := o.values()
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	p := new(QueuePage)
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/queues", query: q,
		repeatable: true, want: []int{http.StatusOK}}, p); err != nil {
		return nil, err
	}
	return p, nil
}

// DeleteQueue deletes a queue and all its tasks.
func (c *Client) DeleteQueue(ctx context.Context, name string) error {
	if name == "" {
		return errEmpty
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/queues/" + seg(name),
		repeatable: true, want: []int{http.StatusNoContent}}, nil)
	return err
}

// PauseQueue stops new calls of a queue (calls in flight finish).
func (c *Client) PauseQueue(ctx context.Context, name string) (*Queue, error) {
	return c.queueAction(ctx, name, "pause")
}

// ResumeQueue lets a paused queue's calls start again.
func (c *Client) ResumeQueue(ctx context.Context, name string) (*Queue, error) {
	return c.queueAction(ctx, name, "resume")
}

func (c *Client) queueAction(ctx context.Context, name, action string) (*Queue, error) {
	if name == "" {
		return nil, errEmpty
	}
	q := new(Queue)
	// Pause and resume are idempotent: safe to repeat.
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/queues/" + seg(name) + "/" + action,
		repeatable: true, want: []int{http.StatusOK}}, q); err != nil {
		return nil, err
	}
	return q, nil
}

// PurgeQueue deletes every task waiting in a queue (not those in flight,
// not dead letters). It is not retried: a repeat would purge tasks added
// in between.
func (c *Client) PurgeQueue(ctx context.Context, name string) (*Purged, error) {
	if name == "" {
		return nil, errEmpty
	}
	p := new(Purged)
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/queues/" + seg(name) + "/purge",
		want: []int{http.StatusOK}}, p); err != nil {
		return nil, err
	}
	return p, nil
}

// CreateTask adds a task to a queue. Without an IdempotencyKey it gets a
// random one, so that a retry after a lost answer does not add it twice
// (with WithoutIdempotencyKeys it goes without one and is tried once).
func (c *Client) CreateTask(ctx context.Context, queue string, t TaskRequest) (*Created, error) {
	if queue == "" {
		return nil, errEmpty
	}
	if t.URL == "" {
		return nil, errors.New("client: the task has no URL")
	}
	if t.IdempotencyKey == "" && !c.noKeys {
		t.IdempotencyKey = newKey()
	}
	out := new(Created)
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/queues/" + seg(queue) + "/tasks", body: t,
		repeatable: t.IdempotencyKey != "", want: []int{http.StatusCreated, http.StatusOK}}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateTasks adds up to the API's max_batch tasks to a queue, all or
// nothing, in order. Tasks without an IdempotencyKey get a random one
// (with WithoutIdempotencyKeys they go without one, and the batch is tried
// once unless every task has a key).
func (c *Client) CreateTasks(ctx context.Context, queue string, tasks []TaskRequest) ([]Created, error) {
	if queue == "" {
		return nil, errEmpty
	}
	if len(tasks) == 0 {
		return nil, errors.New("client: no tasks")
	}
	batch := make([]TaskRequest, len(tasks))
	repeatable := true // when every task has a key
	for i, t := range tasks {
		if t.URL == "" {
			return nil, fmt.Errorf("client: task %d has no URL", i)
		}
		if t.IdempotencyKey == "" && !c.noKeys {
			t.IdempotencyKey = newKey()
		}
		repeatable = repeatable && t.IdempotencyKey != ""
		batch[i] = t
	}
	var out struct {
		Tasks []Created `json:"tasks"`
	}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/queues/" + seg(queue) + "/tasks/batch",
		body: map[string]any{"tasks": batch}, repeatable: repeatable, want: []int{http.StatusCreated, http.StatusOK}}, &out); err != nil {
		return nil, err
	}
	return out.Tasks, nil
}

// ListTasks returns one page of a queue's tasks in a state: StateQueued,
// StateActive, StateScheduled or StateDead.
func (c *Client) ListTasks(ctx context.Context, queue, state string, o ListOptions) (*TaskPage, error) {
	if queue == "" {
		return nil, errEmpty
	}
	q := o.values()
	if state != "" {
		q.Set("state", state)
	}
	p := new(TaskPage)
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/queues/" + seg(queue) + "/tasks", query: q,
		repeatable: true, want: []int{http.StatusOK}}, p); err != nil {
		return nil, err
	}
	return p, nil
}

// SearchTasks returns one page of a queue's tasks in a state (StateQueued,
// StateActive, StateScheduled, StateRetrying or StateDead) that match f.
func (c *Client) SearchTasks(ctx context.Context, queue, state string, f TaskFilter, o ListOptions) (*TaskPage, error) {
	if queue == "" {
		return nil, errEmpty
	}
	q := f.values(o.values())
	if state != "" {
		q.Set("state", state)
	}
	p := new(TaskPage)
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/queues/" + seg(queue) + "/tasks", query: q,
		repeatable: true, want: []int{http.StatusOK}}, p); err != nil {
		return nil, err
	}
	return p, nil
}

// GetTask returns a task with its attempts.
func (c *Client) GetTask(ctx context.Context, id string) (*Task, error) {
	if id == "" {
		return nil, errEmpty
	}
	t := new(Task)
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/tasks/" + seg(id),
		repeatable: true, want: []int{http.StatusOK}}, t); err != nil {
		return nil, err
	}
	return t, nil
}

// CancelTask cancels a waiting task, stops a running one after its current
// call, or deletes a dead letter; the task is nil after a deletion.
func (c *Client) CancelTask(ctx context.Context, id string) (*Task, CancelResult, error) {
	if id == "" {
		return nil, 0, errEmpty
	}
	t := new(Task)
	status, err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/tasks/" + seg(id),
		repeatable: true, want: []int{http.StatusOK, http.StatusAccepted, http.StatusNoContent}}, t)
	switch {
	case err != nil:
		return nil, 0, err
	case status == http.StatusAccepted:
		return t, CancelRequested, nil
	case status == http.StatusNoContent:
		return nil, DeadDeleted, nil
	}
	return t, Cancelled, nil
}

// RetryTask runs a dead or cancelled task again. It is not retried on
// failure: a repeat after a lost answer would find the task not dead (409).
func (c *Client) RetryTask(ctx context.Context, id string) (*Task, error) {
	if id == "" {
		return nil, errEmpty
	}
	t := new(Task)
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/tasks/" + seg(id) + "/retry",
		want: []int{http.StatusOK}}, t); err != nil {
		return nil, err
	}
	return t, nil
}

func (o ListOptions) values() url.Values {
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}
