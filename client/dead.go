package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DeadFilter selects dead letters across queues; every field is optional.
type DeadFilter struct {
	Queue string     // one queue only
	Q     string     // a task id, or a substring of the URL
	Code  int        // the last HTTP status (0: any)
	Since *time.Time // died at or after
	Until *time.Time // died at or before
}

func (f DeadFilter) values(q url.Values) url.Values {
	if f.Queue != "" {
		q.Set("queue", f.Queue)
	}
	return TaskFilter{Q: f.Q, Code: f.Code, Since: f.Since, Until: f.Until}.values(q)
}

// TaskFilter narrows SearchTasks; every field is optional.
type TaskFilter struct {
	Q    string // a task id, or a substring of the URL
	Code int    // the last HTTP status (0: any)
	// Since and Until bound the time the list is ordered by: the due time
	// of scheduled tasks, the time a queued or active task entered its
	// queue, the time of death of a dead one.
	Since *time.Time
	Until *time.Time
}

func (f TaskFilter) values(q url.Values) url.Values {
	if f.Q != "" {
		q.Set("q", f.Q)
	}
	if f.Code != 0 {
		q.Set("code", strconv.Itoa(f.Code))
	}
	if f.Since != nil {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if f.Until != nil {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	return q
}

// deadFilterJSON is a DeadFilter in a bulk request's body.
type deadFilterJSON struct {
	Queue string `json:"queue,omitempty"`
	Q     string `json:"q,omitempty"`
	Code  int    `json:"code,omitempty"`
	Since string `json:"since,omitempty"`
	Until string `json:"until,omitempty"`
}

func (f DeadFilter) json() *deadFilterJSON {
	j := &deadFilterJSON{Queue: f.Queue, Q: f.Q, Code: f.Code}
	if f.Since != nil {
		j.Since = f.Since.Format(time.RFC3339Nano)
	}
	if f.Until != nil {
		j.Until = f.Until.Format(time.RFC3339Nano)
	}
	return j
}

// DeadCount is the answer of CountDead; Count is a lower bound when Exact
// is false (a URL or status filter over very many letters).
type DeadCount struct {
	Count int64 `json:"count"`
	Exact bool  `json:"exact"`
}

// DeadBulk is what one bulk retry or delete did: the letters it found,
// those it retried or deleted, and (for a filter) the matching letters
// left, a lower bound when Exact is false.
type DeadBulk struct {
	Matched   int   `json:"matched"`
	Done      int   `json:"done"`
	Remaining int64 `json:"remaining"`
	Exact     bool  `json:"exact"`
}

// MaxDeadIDs is how many ids one RetryDeadIDs or DeleteDeadIDs takes.
const MaxDeadIDs = 1000

// ListDead returns one page of dead letters across queues (grouped by
// queue, newest first within one); follow NextCursor until it is empty.
func (c *Client) ListDead(ctx context.Context, f DeadFilter, o ListOptions) (*TaskPage, error) {
	p := new(TaskPage)
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/dead", query: f.values(o.values()),
		repeatable: true, want: []int{http.StatusOK}}, p); err != nil {
		return nil, err
	}
	return p, nil
}

// CountDead counts the dead letters a filter matches.
func (c *Client) CountDead(ctx context.Context, f DeadFilter) (*DeadCount, error) {
	n := new(DeadCount)
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/dead/count", query: f.values(url.Values{}),
		repeatable: true, want: []int{http.StatusOK}}, n); err != nil {
		return nil, err
	}
	return n, nil
}

// RetryDeadIDs runs the given dead letters again (at most MaxDeadIDs);
// ids that are not dead letters are skipped. Safe to repeat.
func (c *Client) RetryDeadIDs(ctx context.Context, ids []string) (*DeadBulk, error) {
	return c.deadIDs(ctx, "retry", ids)
}

// DeleteDeadIDs deletes the given dead letters (at most MaxDeadIDs); ids
// that are not dead letters are skipped. Safe to repeat.
func (c *Client) DeleteDeadIDs(ctx context.Context, ids []string) (*DeadBulk, error) {
	return c.deadIDs(ctx, "delete", ids)
}

// RetryDead runs again up to limit (1 to 1000; 0: the API's 500) dead
// letters matching f. Call it until Remaining is 0. It is not retried on
// failure: a repeat would act on the next letters.
func (c *Client) RetryDead(ctx context.Context, f DeadFilter, limit int) (*DeadBulk, error) {
	return c.deadFilter(ctx, "retry", f, limit)
}

// DeleteDead deletes up to limit dead letters matching f (see RetryDead).
func (c *Client) DeleteDead(ctx context.Context, f DeadFilter, limit int) (*DeadBulk, error) {
	return c.deadFilter(ctx, "delete", f, limit)
}

func (c *Client) deadIDs(ctx context.Context, action string, ids []string) (*DeadBulk, error) {
	if len(ids) == 0 || len(ids) > MaxDeadIDs {
		return nil, errors.New("client: want 1 to 1000 ids")
	}
	out := new(DeadBulk)
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/dead/" + action, body: map[string]any{"ids": ids},
		repeatable: true, want: []int{http.StatusOK}}, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Client) deadFilter(ctx context.Context, action string, f DeadFilter, limit int) (*DeadBulk, error) {
	if limit < 0 || limit > 1000 {
		return nil, errors.New("client: limit: want 0 to 1000")
	}
	body := map[string]any{"filter": f.json()}
	if limit > 0 {
		body["limit"] = limit
	}
	out := new(DeadBulk)
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/dead/" + action, body: body,
		want: []int{http.StatusOK}}, out); err != nil {
		return nil, err
	}
	return out, nil
}
