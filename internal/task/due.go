package task

import (
	"fmt"
	"time"
)

// The instants a task may be due at: what the store (milliseconds since
// 1970) and the API's answers (RFC 3339, years 0 to 9999) can both hold,
// judged in UTC whatever offset or zone the time was given in.
var (
	MinDue = time.Unix(0, 0).UTC()
	MaxDue = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
)

// ErrBadTime reports a due time outside MinDue to MaxDue.
var ErrBadTime error = invalid("time out of range")

// CheckDue refuses a due time that could be stored but not shown, or not
// stored: before 1970 or after 9999 in UTC. Check the time after any
// rounding (a round up to the millisecond can cross into year 10000).
func CheckDue(t time.Time) error {
	if t.Before(MinDue) || t.After(MaxDue) {
		return fmt.Errorf("%w: %s in UTC: want %s to %s", ErrBadTime,
			t.UTC().Format(time.RFC3339Nano), MinDue.Format(time.RFC3339), MaxDue.Format(time.RFC3339Nano))
	}
	return nil
}
