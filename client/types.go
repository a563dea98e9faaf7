package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Duration is a time.Duration that the API reads as a string ("500ms",
// "1m30s") and shows as seconds (a number, 0.5).
type Duration time.Duration

// D converts a time.Duration.
func D(d time.Duration) *Duration { v := Duration(d); return &v }

// Std returns the time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads seconds (a number) or a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want seconds or a string", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// Retry is a queue's retry policy.
type Retry struct {
	MaxAttempts *int      `json:"max_attempts,omitempty"`
	MinBackoff  *Duration `json:"min_backoff,omitempty"`
	MaxBackoff  *Duration `json:"max_backoff,omitempty"`
}

// QueueSettings are the fields of PUT /v1/queues/{queue}: each one left nil
// keeps its current value (or the default, for a new queue).
type QueueSettings struct {
	Type            string    `json:"type,omitempty"` // realtime or variable
	SteppingTime    *Duration `json:"stepping_time,omitempty"`
	MaxTimeInterval *Duration `json:"max_time_interval,omitempty"`
	Concurrency     *int      `json:"concurrency,omitempty"`
	Rate            *float64  `json:"rate,omitempty"`
	Burst           *int      `json:"burst,omitempty"`
	Timeout         *Duration `json:"timeout,omitempty"`
	Retry           *Retry    `json:"retry,omitempty"`
	Ordering        string    `json:"ordering,omitempty"` // strict or relaxed
	MaxBacklog      *int64    `json:"max_backlog,omitempty"`
	Retention       *Duration `json:"retention,omitempty"`
	DeadRetention   *Duration `json:"dead_retention,omitempty"`
}

// Counts are a queue's tasks by state.
type Counts struct {
	Queued    int64 `json:"queued"`
	Active    int64 `json:"active"`
	Scheduled int64 `json:"scheduled"`
	Dead      int64 `json:"dead"`
}

// Queue is a queue as the API shows it.
type Queue struct {
	Name            string            `json:"name"`
	Type            string            `json:"type"`
	SteppingTime    Duration          `json:"stepping_time"`
	MaxTimeInterval Duration          `json:"max_time_interval"`
	Concurrency     int               `json:"concurrency"`
	Rate            float64           `json:"rate"`
	Burst           int               `json:"burst"`
	Timeout         Duration          `json:"timeout"`
	Retry           QueueRetry        `json:"retry"`
	Ordering        string            `json:"ordering"`
	MaxBacklog      int64             `json:"max_backlog"`
	Retention       Duration          `json:"retention"`
	DeadRetention   Duration          `json:"dead_retention"`
	Legacy          map[string]string `json:"legacy,omitempty"`
	Paused          bool              `json:"paused"`
	CreatedAt       time.Time         `json:"created_at"`
	Counts          Counts            `json:"counts"`
}

// QueueRetry is a queue's retry policy as shown.
type QueueRetry struct {
	MaxAttempts int      `json:"max_attempts"`
	MinBackoff  Duration `json:"min_backoff"`
	MaxBackoff  Duration `json:"max_backoff"`
}

// TaskRequest is a task to create. Set at most one of Body (JSON),
// BodyBase64 and Form; Delay and RunAt are exclusive.
type TaskRequest struct {
	URL          string            `json:"url"`
	Method       string            `json:"method,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	Body         json.RawMessage   `json:"body,omitempty"`
	BodyBase64   *string           `json:"body_base64,omitempty"`
	Form         map[string]string `json:"form,omitempty"`
	FormEncoding string            `json:"form_encoding,omitempty"`
	RunAt        *time.Time        `json:"run_at,omitempty"`
	Delay        *Duration         `json:"delay,omitempty"`
	Timeout      *Duration         `json:"timeout,omitempty"`
	MaxAttempts  *int              `json:"max_attempts,omitempty"`
	// K is, for a variable queue, the calls the task already had since its
	// last reset, so its gaps continue where they were.
	K              int64     `json:"k,omitempty"`
	MinBackoff     *Duration `json:"min_backoff,omitempty"`
	MaxBackoff     *Duration `json:"max_backoff,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
}

// Created is the answer to a create.
type Created struct {
	ID      string     `json:"id"`
	Queue   string     `json:"queue"`
	State   string     `json:"state,omitempty"`
	RunAt   *time.Time `json:"run_at,omitempty"`
	Existed bool       `json:"existed,omitempty"` // an idempotency key returned an earlier task
}

// Attempt is one call of a task.
type Attempt struct {
	At        time.Time `json:"at"`
	Attempt   int       `json:"attempt"`
	Status    int       `json:"status"`
	LatencyMs int64     `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
	Body      string    `json:"body,omitempty"`
	Sequence  int64     `json:"sequence"`
}

// Task is a task as the API shows it.
type Task struct {
	ID              string       `json:"id"`
	Queue           string       `json:"queue"`
	State           string       `json:"state"`
	Method          string       `json:"method"`
	URL             string       `json:"url"`
	CreatedAt       *time.Time   `json:"created_at,omitempty"`
	RunAt           *time.Time   `json:"run_at,omitempty"`
	Attempts        int          `json:"attempts"`
	MaxAttempts     int          `json:"max_attempts,omitempty"`
	MinBackoff      *Duration    `json:"min_backoff,omitempty"`
	MaxBackoff      *Duration    `json:"max_backoff,omitempty"`
	K               int64        `json:"k,omitempty"`
	LastStatus      int          `json:"last_status,omitempty"`
	LastError       string       `json:"last_error,omitempty"`
	UpdatedAt       *time.Time   `json:"updated_at,omitempty"`
	FinishedAt      *time.Time   `json:"finished_at,omitempty"`
	CancelRequested bool         `json:"cancel_requested,omitempty"`
	Request         *SentRequest `json:"request,omitempty"` // GetTask only
	History         []Attempt    `json:"history"`
}

// Field is a header or form field.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// SentRequest is what a task's call sends besides its method and URL: the
// headers in order and the body (secrets redacted for a read-only token).
type SentRequest struct {
	Headers    []Field `json:"headers"`
	BodyKind   string  `json:"body_kind,omitempty"` // raw, multipart or urlencoded
	Body       *string `json:"body,omitempty"`      // as text
	BodyBase64 string  `json:"body_base64,omitempty"`
	Form       []Field `json:"form,omitempty"`
}

// Task states (Task.State).
const (
	StateQueued    = "queued"
	StateActive    = "active"
	StateScheduled = "scheduled"
	StateRetrying  = "retrying"
	StateSucceeded = "succeeded"
	StateDead      = "dead"
	StateCancelled = "cancelled"
)

// ListOptions page through a list: Limit (0: the API's default) and the
// Cursor of the previous page's NextCursor.
type ListOptions struct {
	Limit  int
	Cursor string
}

// QueuePage is one page of queues.
type QueuePage struct {
	Queues     []Queue `json:"queues"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// TaskPage is one page of a queue's tasks.
type TaskPage struct {
	Tasks      []Task `json:"tasks"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Purged is the answer to a purge.
type Purged struct {
	Queue  string `json:"queue"`
	Purged int64  `json:"purged"`
}

// CancelResult says what a cancel did.
type CancelResult int

// What a cancel did.
const (
	Cancelled       CancelResult = iota // the waiting task will never be called (200)
	CancelRequested                     // a call runs; no further call is made (202)
	DeadDeleted                         // the dead letter was deleted (204)
)

var errEmpty = errors.New("client: empty name")
