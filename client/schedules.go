package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Error codes of the schedule routes (Error.Code).
const (
	CodeScheduleNotFound = "schedule_not_found"
	CodeScheduleChanged  = "schedule_changed"
	CodeScheduleOverlap  = "schedule_overlap"
)

// ScheduleRequest is the body of PUT /v1/schedules/{name}: a schedule is
// replaced as a whole, so every field left empty takes its default.
type ScheduleRequest struct {
	Queue    string      `json:"queue"`
	Cron     string      `json:"cron"`                // 5 or 6 fields, @daily, "@every 90s", …
	TimeZone string      `json:"time_zone,omitempty"` // an IANA zone; UTC when empty
	Task     TaskRequest `json:"task"`                // no RunAt, Delay or IdempotencyKey
	Missed   string      `json:"missed,omitempty"`    // skip, run_once or run_all
	CatchUp  *Duration   `json:"catch_up,omitempty"`
	Overlap  string      `json:"overlap,omitempty"` // skip or allow
	Jitter   *Duration   `json:"jitter,omitempty"`
	Paused   *bool       `json:"paused,omitempty"`
	StartAt  *time.Time  `json:"start_at,omitempty"`
	EndAt    *time.Time  `json:"end_at,omitempty"`
}

// LastRun is the last task a schedule created.
type LastRun struct {
	ScheduledAt time.Time `json:"scheduled_at"`
	TaskID      string    `json:"task_id"`
	State       string    `json:"state,omitempty"` // only from GetSchedule; empty once the task expired
}

// Schedule is a schedule as the API shows it.
type Schedule struct {
	Name      string          `json:"name"`
	Queue     string          `json:"queue"`
	Cron      string          `json:"cron"`
	TimeZone  string          `json:"time_zone"`
	Task      json.RawMessage `json:"task"`
	Missed    string          `json:"missed"`
	CatchUp   Duration        `json:"catch_up"`
	Overlap   string          `json:"overlap"`
	Jitter    Duration        `json:"jitter"`
	Paused    bool            `json:"paused"`
	StartAt   *time.Time      `json:"start_at,omitempty"`
	EndAt     *time.Time      `json:"end_at,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	NextRuns  []string        `json:"next_runs"` // RFC 3339 with the zone's offset
	LastRun   *LastRun        `json:"last_run,omitempty"`
}

// SchedulePage is one page of schedules.
type SchedulePage struct {
	Schedules  []Schedule `json:"schedules"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// Triggered is the answer to TriggerSchedule: the task it created.
type Triggered struct {
	TaskID      string `json:"task_id"`
	Queue       string `json:"queue"`
	ScheduledAt string `json:"scheduled_at"`
}

// PutSchedule creates or replaces a schedule; created says which.
func (c *Client) PutSchedule(ctx context.Context, name string, s ScheduleRequest) (sc *Schedule, created bool, err error) {
	if name == "" {
		return nil, false, errEmpty
	}
	if s.Queue == "" || s.Cron == "" || s.Task.URL == "" {
		return nil, false, errors.New("client: a schedule needs a queue, a cron and a task URL")
	}
	sc = new(Schedule)
	status, err := c.do(ctx, request{method: http.MethodPut, path: "/v1/schedules/" + seg(name), body: s,
		repeatable: true, want: []int{http.StatusOK, http.StatusCreated}}, sc)
	if err != nil {
		return nil, false, err
	}
	return sc, status == http.StatusCreated, nil
}

// GetSchedule returns a schedule with its next runs and its last run.
func (c *Client) GetSchedule(ctx context.Context, name string) (*Schedule, error) {
	if name == "" {
		return nil, errEmpty
	}
	sc := new(Schedule)
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/schedules/" + seg(name),
		repeatable: true, want: []int{http.StatusOK}}, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// ListSchedules returns one page of schedules, sorted by name.
func (c *Client) ListSchedules(ctx context.Context, o ListOptions) (*SchedulePage, error) {
	p := new(SchedulePage)
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/schedules", query: o.values(),
		repeatable: true, want: []int{http.StatusOK}}, p); err != nil {
		return nil, err
	}
	return p, nil
}

// DeleteSchedule deletes a schedule; the tasks it created stay.
func (c *Client) DeleteSchedule(ctx context.Context, name string) error {
	if name == "" {
		return errEmpty
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/schedules/" + seg(name),
		repeatable: true, want: []int{http.StatusNoContent}}, nil)
	return err
}

// PauseSchedule stops a schedule from firing.
func (c *Client) PauseSchedule(ctx context.Context, name string) (*Schedule, error) {
	return c.scheduleAction(ctx, name, "pause")
}

// ResumeSchedule lets a paused schedule fire again, from its first instant
// after now.
func (c *Client) ResumeSchedule(ctx context.Context, name string) (*Schedule, error) {
	return c.scheduleAction(ctx, name, "resume")
}

func (c *Client) scheduleAction(ctx context.Context, name, action string) (*Schedule, error) {
	if name == "" {
		return nil, errEmpty
	}
	sc := new(Schedule)
	// Pause and resume are idempotent: safe to repeat.
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/schedules/" + seg(name) + "/" + action,
		repeatable: true, want: []int{http.StatusOK}}, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// TriggerSchedule creates one run now, outside the plan. It is not
// retried: a repeat would create a second run.
func (c *Client) TriggerSchedule(ctx context.Context, name string) (*Triggered, error) {
	if name == "" {
		return nil, errEmpty
	}
	tr := new(Triggered)
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/schedules/" + seg(name) + "/trigger",
		want: []int{http.StatusCreated}}, tr); err != nil {
		return nil, err
	}
	return tr, nil
}
