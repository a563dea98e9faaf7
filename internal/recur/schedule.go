package recur

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/htq/htq/internal/task"
)

// Missed-run policies: what the scheduler does with occurrences whose
// instant passed while no scheduler could fire them.
const (
	MissedSkip    = "skip"     // fire none of them (the default)
	MissedRunOnce = "run_once" // fire one: the latest within catch_up
	MissedRunAll  = "run_all"  // fire each within catch_up, oldest first
)

// Overlap policies.
const (
	OverlapSkip  = "skip"  // no new run while the last run's task is still queued or active (the default)
	OverlapAllow = "allow" // every occurrence runs
)

// Defaults.
const (
	DefaultCatchUp = time.Hour
	// MaxCatchUp bounds catch_up (and so the idempotency window of an
	// occurrence, see IdempotencyWindow).
	MaxCatchUp = 7 * 24 * time.Hour
	// MaxJitter bounds jitter.
	MaxJitter = time.Hour
	// MaxNameBytes bounds a schedule's name.
	MaxNameBytes = 200
	// ScheduleHeader and ScheduledAtHeader are set on every task a schedule
	// creates.
	ScheduleHeader    = "X-HTQ-Schedule"
	ScheduledAtHeader = "X-HTQ-Scheduled-At"
)

// ErrBadSchedule reports a schedule definition that is not valid; the
// message names the field.
var ErrBadSchedule = errors.New("invalid schedule")

// Schedule is a schedule's definition, as stored.
type Schedule struct {
	Name     string `json:"name"`
	Queue    string `json:"queue"`
	Cron     string `json:"cron"`
	TimeZone string `json:"time_zone"`
	// Task is the task as the client gave it (shown back by the API); Spec
	// is its validated form, the template of every task the schedule
	// creates.
	Task      json.RawMessage `json:"task"`
	Spec      *task.Spec      `json:"spec"`
	Missed    string          `json:"missed"`
	CatchUp   task.Duration   `json:"catch_up"`
	Overlap   string          `json:"overlap"`
	Jitter    task.Duration   `json:"jitter"`
	Paused    bool            `json:"paused"`
	StartAt   *time.Time      `json:"start_at,omitempty"`
	EndAt     *time.Time      `json:"end_at,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// ValidateName checks a schedule name (the rules of a queue name, which
// keep it free of the newline the store's name index uses).
func ValidateName(name string) error {
	if err := task.ValidateQueueName(name); err != nil {
		return fmt.Errorf("%w: name: %w", ErrBadSchedule, errors.Unwrap(err))
	}
	if len(name) > MaxNameBytes {
		return fmt.Errorf("%w: name: %d bytes, limit %d", ErrBadSchedule, len(name), MaxNameBytes)
	}
	return nil
}

// Normalize fills defaults and checks every field, naming the first that is
// wrong. It returns the schedule's plan.
func (s *Schedule) Normalize() (*Plan, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadSchedule, field, fmt.Sprintf(format, args...))
	}
	if err := ValidateName(s.Name); err != nil {
		return nil, err
	}
	if s.Queue == "" {
		return nil, bad("queue", "required")
	}
	if err := task.ValidateQueueName(s.Queue); err != nil {
		return nil, bad("queue", "%v", err)
	}
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	if _, err := LoadZone(s.TimeZone); err != nil {
		return nil, bad("time_zone", "%v", err)
	}
	if s.Cron == "" {
		return nil, bad("cron", "required")
	}
	p, err := Parse(s.Cron, s.TimeZone)
	if err != nil {
		return nil, bad("cron", "%v", err)
	}
	if s.Spec == nil {
		return nil, bad("task", "required")
	}
	switch s.Missed {
	case "":
		s.Missed = MissedSkip
	case MissedSkip, MissedRunOnce, MissedRunAll:
	default:
		return nil, bad("missed", "%q: want skip, run_once or run_all", s.Missed)
	}
	switch s.Overlap {
	case "":
		s.Overlap = OverlapSkip
	case OverlapSkip, OverlapAllow:
	default:
		return nil, bad("overlap", "%q: want skip or allow", s.Overlap)
	}
	if s.CatchUp == 0 {
		s.CatchUp = task.Duration(DefaultCatchUp)
	}
	if s.CatchUp < 0 || s.CatchUp.Std() > MaxCatchUp {
		return nil, bad("catch_up", "want more than 0 and at most %s", MaxCatchUp)
	}
	if s.Jitter < 0 || s.Jitter.Std() > MaxJitter {
		return nil, bad("jitter", "want 0 to %s", MaxJitter)
	}
	if s.StartAt != nil && s.EndAt != nil && !s.EndAt.After(*s.StartAt) {
		return nil, bad("end_at", "must be after start_at")
	}
	return p, nil
}

// First returns the schedule's first instant after now (or after start_at,
// if that is later), or the zero time when it has none before end_at.
func (s *Schedule) First(p *Plan, now time.Time) time.Time {
	from := now
	if s.StartAt != nil && s.StartAt.After(from) {
		from = s.StartAt.Add(-time.Nanosecond) // start_at itself may be an instant
	}
	return s.bounded(p.Next(from))
}

// bounded returns t, or the zero time when it is after end_at.
func (s *Schedule) bounded(t time.Time) time.Time {
	if s.EndAt != nil && t.After(*s.EndAt) {
		return time.Time{}
	}
	return t
}

// NextRuns returns the schedule's next n instants after now.
func (s *Schedule) NextRuns(p *Plan, now time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for t := s.First(p, now); !t.IsZero() && len(out) < n; t = s.bounded(p.Next(t)) {
		out = append(out, t.In(p.Location()))
	}
	return out
}

// IdempotencyWindow is how long an occurrence's idempotency key must be
// kept: longer than any occurrence can still be fired.
func (s *Schedule) IdempotencyWindow(grace time.Duration) time.Duration {
	return max(s.CatchUp.Std(), grace) + time.Hour
}

// maxScan bounds the passed instants one Decide walks one by one; beyond
// it, the instants too old to fire are skipped in one step (and counted
// as one).
const maxScan = 10000

// Decision is what to do with the occurrences of a schedule whose next
// instant has passed.
type Decision struct {
	Fire   []time.Time // occurrences to fire now, oldest first
	Missed int         // occurrences that will never fire
	Next   time.Time   // the next instant to wait for (zero: the schedule has ended)
}

// Decide chooses which passed occurrences, from next up to now, to fire.
// An occurrence is late when now is more than grace after its instant: a
// scheduler was not there to fire it. On-time occurrences fire; late ones
// follow the missed policy: skip fires none, run_once fires the latest
// within catch_up, run_all fires each within catch_up, oldest first. At
// most limit occurrences are fired at once; Next is then the first one not
// fired yet.
func (s *Schedule) Decide(p *Plan, next, now time.Time, grace time.Duration, limit int) Decision {
	var d Decision
	late := now.Add(-grace)
	oldest := now.Add(-max(s.CatchUp.Std(), grace))
	var latest time.Time // run_once: the latest late occurrence within catch_up
	t := s.bounded(next)
	for steps := 0; !t.IsZero() && !t.After(now); steps++ {
		if steps >= maxScan && t.Before(oldest) {
			d.Missed++ // a long outage: skip to the window in one step
			t = s.bounded(p.Next(oldest.Add(-time.Nanosecond)))
			continue
		}
		switch {
		case !t.Before(late): // on time
			if len(d.Fire) >= limit {
				d.Next = t
				return d.withLatest(latest)
			}
			d.Fire = append(d.Fire, t)
		case s.Missed == MissedSkip || t.Before(oldest):
			d.Missed++
		case s.Missed == MissedRunOnce:
			if !latest.IsZero() {
				d.Missed++
			}
			latest = t
		default: // run_all
			if len(d.Fire) >= limit {
				d.Next = t
				return d.withLatest(latest)
			}
			d.Fire = append(d.Fire, t)
		}
		t = s.bounded(p.Next(t))
	}
	d.Next = t
	return d.withLatest(latest)
}

func (d Decision) withLatest(latest time.Time) Decision {
	if !latest.IsZero() {
		d.Fire = append([]time.Time{latest}, d.Fire...)
	}
	return d
}

// Occurrence returns the spec of the task that fires occurrence at, created
// at now: the template with the schedule's headers.
func (s *Schedule) Occurrence(at, now time.Time) *task.Spec {
	sp := *s.Spec
	sp.Header = append(append(make([]task.Field, 0, len(s.Spec.Header)+2), s.Spec.Header...),
		task.Field{Name: ScheduleHeader, Value: s.Name},
		task.Field{Name: ScheduledAtHeader, Value: at.Format(time.RFC3339Nano)})
	sp.CreatedMs = now.UnixMilli()
	sp.RunAtMs = 0
	return &sp
}

// OccurrenceKey is the idempotency key of the task of occurrence at: the
// same for every scheduler that fires it.
func (s *Schedule) OccurrenceKey(at time.Time) string {
	return "schedule\x00" + s.Name + "\x00" + fmt.Sprint(at.UnixMilli())
}

// TriggerKey is the idempotency key of a run triggered by hand at now.
func (s *Schedule) TriggerKey(now time.Time) string {
	return "schedule-trigger\x00" + s.Name + "\x00" + fmt.Sprint(now.UnixNano())
}
