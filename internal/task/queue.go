package task

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Kind is a queue's type.
type Kind string

// Queue kinds: a realtime queue calls each task once (then retries on
// failure); a variable queue calls each task again and again, with a gap that
// grows by SteppingTime per call up to MaxTimeInterval, until the target
// answers "done".
const (
	KindRealtime Kind = "realtime"
	KindVariable Kind = "variable"
)

// Ordering is what a serial queue does while its head task waits to retry.
type Ordering string

// Orderings: strict (the default) holds the queue until the head succeeds or
// dies; relaxed moves a retrying task aside so the next one can run.
const (
	OrderingStrict  Ordering = "strict"
	OrderingRelaxed Ordering = "relaxed"
)

// Defaults for a new queue. They are the values a queue gets when its
// creator does not set them, and they are documented in docs/api.md.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultConcurrency   = 1
	DefaultMaxAttempts   = 5
	DefaultMinBackoff    = time.Second
	DefaultMaxBackoff    = 5 * time.Minute
	DefaultMaxBacklog    = 10_000_000
	DefaultRetention     = time.Hour
	DefaultDeadRetention = 7 * 24 * time.Hour

	MaxQueueNameBytes = 200
	MaxConcurrency    = 1000
	MaxAttemptsLimit  = 1000
	MaxTimeout        = 24 * time.Hour
	MaxRate           = 1_000_000
)

// RetryPolicy says how often and how soon a failed call is tried again.
type RetryPolicy struct {
	MaxAttempts int      `json:"max_attempts"`
	MinBackoff  Duration `json:"min_backoff"`
	MaxBackoff  Duration `json:"max_backoff"`
}

// LegacyAttr keeps a queue's attributes as the legacy API posted them, so
// allQueue can echo them back unchanged (Type nil: no type was posted).
type LegacyAttr struct {
	Type            *string `json:"type,omitempty"`
	SteppingTime    *string `json:"stepping_time,omitempty"`
	MaxTimeInterval *string `json:"max_time_interval,omitempty"`
}

// QueueConfig is a queue's configuration.
type QueueConfig struct {
	Type            Kind        `json:"type"`
	SteppingTime    Duration    `json:"stepping_time"`
	MaxTimeInterval Duration    `json:"max_time_interval"`
	Concurrency     int         `json:"concurrency"`
	Rate            float64     `json:"rate"`
	Burst           int         `json:"burst"`
	Timeout         Duration    `json:"timeout"`
	Retry           RetryPolicy `json:"retry"`
	Ordering        Ordering    `json:"ordering"`
	MaxBacklog      int64       `json:"max_backlog"`
	Retention       Duration    `json:"retention"`
	DeadRetention   Duration    `json:"dead_retention"`
	Legacy          *LegacyAttr `json:"legacy,omitempty"`
}

// DefaultQueueConfig returns the configuration of a queue created without
// settings (for instance by a legacy addTask on an unknown queue).
func DefaultQueueConfig() QueueConfig {
	return QueueConfig{
		Type:        KindRealtime,
		Concurrency: DefaultConcurrency,
		Timeout:     Duration(DefaultTimeout),
		Retry: RetryPolicy{
			MaxAttempts: DefaultMaxAttempts,
			MinBackoff:  Duration(DefaultMinBackoff),
			MaxBackoff:  Duration(DefaultMaxBackoff),
		},
		Ordering:      OrderingStrict,
		MaxBacklog:    DefaultMaxBacklog,
		Retention:     Duration(DefaultRetention),
		DeadRetention: Duration(DefaultDeadRetention),
	}
}

// ErrBadQueue reports an invalid queue name or configuration.
var ErrBadQueue error = invalid("invalid queue")

// ValidateQueueName accepts 1 to 200 bytes of UTF-8 without control
// characters. Legacy clients use arbitrary names (Chinese ones included), so
// nothing else is refused.
func ValidateQueueName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: queue_name: empty", ErrBadQueue)
	}
	if len(name) > MaxQueueNameBytes {
		return fmt.Errorf("%w: queue_name: %d bytes, limit %d", ErrBadQueue, len(name), MaxQueueNameBytes)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: queue_name: invalid UTF-8", ErrBadQueue)
	}
	for _, r := range name {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("%w: queue_name: control character", ErrBadQueue)
		}
	}
	return nil
}

// Validate checks every field and names the first one that is wrong.
func (c *QueueConfig) Validate() error {
	bad := func(field, rule string, v any) error {
		return fmt.Errorf("%w: %s: %v: %s", ErrBadQueue, field, v, rule)
	}
	switch c.Type {
	case KindRealtime, KindVariable:
	default:
		return bad("type", `want "realtime" or "variable"`, c.Type)
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return bad("concurrency", fmt.Sprintf("want 1 to %d", MaxConcurrency), c.Concurrency)
	case math.IsNaN(c.Rate) || c.Rate < 0 || c.Rate > MaxRate:
		return bad("rate", fmt.Sprintf("want 0 (unlimited) to %d calls per second", MaxRate), c.Rate)
	case c.Burst < 0 || c.Burst > MaxRate:
		return bad("burst", fmt.Sprintf("want 0 to %d", MaxRate), c.Burst)
	case c.Timeout <= 0 || c.Timeout.Std() > MaxTimeout:
		return bad("timeout", "want more than 0 and at most 24h", c.Timeout.Std())
	case c.Retry.MaxAttempts < 1 || c.Retry.MaxAttempts > MaxAttemptsLimit:
		return bad("retry.max_attempts", fmt.Sprintf("want 1 to %d", MaxAttemptsLimit), c.Retry.MaxAttempts)
	case c.Retry.MinBackoff > c.Retry.MaxBackoff:
		return bad("retry.min_backoff", "must not exceed retry.max_backoff", c.Retry.MinBackoff.Std())
	case c.MaxBacklog < 1:
		return bad("max_backlog", "want at least 1", c.MaxBacklog)
	}
	switch c.Ordering {
	case OrderingStrict, OrderingRelaxed:
	default:
		return bad("ordering", `want "strict" or "relaxed"`, c.Ordering)
	}
	if c.Type == KindVariable && c.MaxTimeInterval <= 0 {
		// every gap would be 0: the task would call its target back to back forever
		return bad("max_time_interval", "a variable queue needs a maximum gap above 0", c.MaxTimeInterval.Std())
	}
	return nil
}

// CheckGapFloor refuses a variable queue that could call its target with
// less than floor between calls for good: its stepping_time and
// max_time_interval must both be at least floor. (The gap after a task's
// first call, or the first after a reset, is 0 by the variable rule; every
// gap after that is a multiple of stepping_time capped at
// max_time_interval.) Other queue types pass.
func (c *QueueConfig) CheckGapFloor(floor time.Duration) error {
	if c.Type != KindVariable {
		return nil
	}
	for _, f := range []struct {
		name string
		d    Duration
	}{{"stepping_time", c.SteppingTime}, {"max_time_interval", c.MaxTimeInterval}} {
		if f.d.Std() < floor {
			return fmt.Errorf("%w: %s: %v: a variable queue needs at least %v here (queues.min_variable_gap), else its tasks call their target back to back",
				ErrBadQueue, f.name, f.d.Std(), floor)
		}
	}
	return nil
}

// EffectiveBurst is the token-bucket size for the queue's rate limit.
func (c *QueueConfig) EffectiveBurst() int {
	if c.Burst > 0 {
		return c.Burst
	}
	return max(1, int(math.Ceil(c.Rate)))
}

// TaskTimeout is the timeout of a call of s in a queue with config c.
func (c *QueueConfig) TaskTimeout(s *Spec) time.Duration {
	if s.TimeoutMs > 0 {
		return time.Duration(s.TimeoutMs) * time.Millisecond
	}
	return c.Timeout.Std()
}

// TaskMaxAttempts is the number of attempts s gets in a queue with config c.
func (c *QueueConfig) TaskMaxAttempts(s *Spec) int {
	if s.MaxAttempts > 0 {
		return s.MaxAttempts
	}
	return c.Retry.MaxAttempts
}

// TaskRetry is the retry policy of s in a queue with config c: the queue's,
// with the task's own max_attempts, min_backoff and max_backoff in place of
// the queue's where the task set them. When the task set only one bound and
// it crosses the queue's other one (a min_backoff above the queue's
// max_backoff, or a max_backoff below its min_backoff), the task's value
// wins and the other bound moves to it.
func (c *QueueConfig) TaskRetry(s *Spec) RetryPolicy {
	p := c.Retry
	if s == nil {
		return p
	}
	p.MaxAttempts = c.TaskMaxAttempts(s)
	if d := MillisDuration(s.MinBackoffMs); d != nil {
		p.MinBackoff = *d
	}
	if d := MillisDuration(s.MaxBackoffMs); d != nil {
		p.MaxBackoff = *d
	}
	if p.MinBackoff > p.MaxBackoff {
		if s.MaxBackoffMs != nil && s.MinBackoffMs == nil {
			p.MinBackoff = p.MaxBackoff
		} else {
			p.MaxBackoff = p.MinBackoff
		}
	}
	return p
}

// MillisDuration converts optional stored milliseconds (nil stays nil),
// clamped to [0, maxDuration]: a stored spec is not trusted not to overflow.
func MillisDuration(ms *int64) *Duration {
	if ms == nil {
		return nil
	}
	d := Duration(time.Duration(min(max(*ms, 0), maxDuration.Milliseconds())) * time.Millisecond)
	return &d
}
