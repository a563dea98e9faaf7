package schedule

import (
	"context"
	"time"
)

// FireDue fires every due schedule once, by the scheduler's clock (tests
// drive it with a fake clock), with no look-ahead.
func (s *Scheduler) FireDue(ctx context.Context) time.Time { return s.fireDue(ctx, 0) }

// FireDueAhead is FireDue reading the schedules due within lead, and
// waiting for each one's instant to fire it.
func (s *Scheduler) FireDueAhead(ctx context.Context, lead time.Duration) time.Time {
	return s.fireDue(ctx, lead)
}
