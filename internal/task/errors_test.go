package task_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/htq/htq/internal/task"
)

// TestValidationErrorsWrapErrInvalid: the API answers 422 for exactly the
// errors that wrap task.ErrInvalid, so every validation sentinel must wrap
// it, keep its own identity and message, and nothing else may.
func TestValidationErrorsWrapErrInvalid(t *testing.T) {
	t.Parallel()
	for _, e := range []error{task.ErrBadURL, task.ErrBadMethod, task.ErrBadHeader, task.ErrBadTimeout,
		task.ErrBadDuration, task.ErrBadTime, task.ErrBadID, task.ErrBadQueue, task.Invalidf("f: %d", 1)} {
		wrapped := fmt.Errorf("field: %w", e)
		if !errors.Is(wrapped, task.ErrInvalid) {
			t.Errorf("%q does not wrap ErrInvalid", e)
		}
		if !errors.Is(wrapped, e) {
			t.Errorf("%q lost its identity when wrapped", e)
		}
	}
	if task.ErrBadURL.Error() != "invalid url" || task.Invalidf("min_backoff: %s", "x").Error() != "min_backoff: x" {
		t.Errorf("messages changed: %q, %q", task.ErrBadURL, task.Invalidf("min_backoff: %s", "x"))
	}
	if errors.Is(task.ErrBadURL, task.ErrBadMethod) {
		t.Error("two sentinels compare equal")
	}
	for _, e := range []error{task.ErrQueueNotFound, task.ErrQueueExists, task.ErrQueueFull, task.ErrTaskNotFound,
		task.ErrTaskFinished, task.ErrTaskNotDead, task.ErrTooLarge, task.ErrBadSpec} {
		if errors.Is(e, task.ErrInvalid) {
			t.Errorf("%q wraps ErrInvalid: it is not a client's validation error", e)
		}
	}
}
