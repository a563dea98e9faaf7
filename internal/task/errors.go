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
