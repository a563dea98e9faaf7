package schedule

import (
	"context"
	"time"
)

// FireDue fires every due schedule once, by the scheduler's clock (tests
// drive it with a fake clock).
func (s *Scheduler) FireDue(ctx context.Context) time.Time { return s.fireDue(ctx) }
