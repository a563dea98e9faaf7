package task

import (
	"errors"
	"fmt"
)

// Expected outcomes of operations on queues and tasks. The API maps each to
// an HTTP status and a legacy error code in one place.
var (
	ErrQueueNotFound = errors.New("queue not found")
	ErrQueueExists   = errors.New("queue already exists")
	ErrQueueFull     = errors.New("queue full")
	ErrTaskNotFound  = errors.New("task not found")
	ErrTaskFinished  = errors.New("task already finished")
	ErrTaskNotDead   = errors.New("task is not dead or cancelled")
)

// ErrInvalid is what every validation error of this package wraps: input
// that can never be accepted as it is (a client's mistake, answered 422),
// as opposed to a state of the store (not found, full, finished).
// errors.Is(err, ErrInvalid) is the one test the API needs.
var ErrInvalid = errors.New("invalid input")

// invalid is a validation error: its own message, wrapping ErrInvalid.
type invalid string

func (e invalid) Error() string { return string(e) }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e invalid) Unwrap() error { return ErrInvalid }

// Invalidf returns a validation error (one that wraps ErrInvalid) with the
// formatted message; the message should start with the field it is about.
func Invalidf(format string, a ...any) error { return invalid(fmt.Sprintf(format, a...)) }

// QueueFullError says how full a queue was when a task was refused.
type QueueFullError struct {
	Queue   string
	Backlog int64
	Max     int64
	Adding  int
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("queue %q is full: %d tasks waiting, limit %d (adding %d)", e.Queue, e.Backlog, e.Max, e.Adding)
}

// Unwrap makes errors.Is(err, ErrQueueFull) true.
func (e *QueueFullError) Unwrap() error { return ErrQueueFull }
