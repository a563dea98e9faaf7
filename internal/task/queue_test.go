package task_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/task"
)

func TestDefaultQueueConfigIsValid(t *testing.T) {
	t.Parallel()
	c := task.DefaultQueueConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultQueueConfig().Validate(): %v", err)
	}
	if c.Type != task.KindRealtime || c.Concurrency != 1 || c.Ordering != task.OrderingStrict {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestQueueConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(c *task.QueueConfig)
		field string // "" means valid
	}{
		{name: "default", edit: func(*task.QueueConfig) {}},
		{name: "variable", edit: func(c *task.QueueConfig) {
			c.Type = task.KindVariable
			c.SteppingTime, c.MaxTimeInterval = task.Duration(2*time.Second), task.Duration(5*time.Second)
		}},
		{name: "relaxed", edit: func(c *task.QueueConfig) { c.Ordering = task.OrderingRelaxed }},
		{name: "max concurrency", edit: func(c *task.QueueConfig) { c.Concurrency = task.MaxConcurrency }},
		{name: "rate limited", edit: func(c *task.QueueConfig) { c.Rate, c.Burst = 0.5, 3 }},
		{name: "max rate", edit: func(c *task.QueueConfig) { c.Rate, c.Burst = task.MaxRate, task.MaxRate }},
		{name: "max timeout", edit: func(c *task.QueueConfig) { c.Timeout = task.Duration(task.MaxTimeout) }},
		{name: "backoff equal", edit: func(c *task.QueueConfig) { c.Retry.MinBackoff = c.Retry.MaxBackoff }},
		{name: "one attempt", edit: func(c *task.QueueConfig) { c.Retry.MaxAttempts = 1 }},
		{name: "max attempts", edit: func(c *task.QueueConfig) { c.Retry.MaxAttempts = task.MaxAttemptsLimit }},

		{name: "empty type", edit: func(c *task.QueueConfig) { c.Type = "" }, field: "type"},
		{name: "legacy type spelling", edit: func(c *task.QueueConfig) { c.Type = "real_time" }, field: "type"},
		{name: "unknown type", edit: func(c *task.QueueConfig) { c.Type = "cron" }, field: "type"},
		{name: "zero concurrency", edit: func(c *task.QueueConfig) { c.Concurrency = 0 }, field: "concurrency"},
		{name: "negative concurrency", edit: func(c *task.QueueConfig) { c.Concurrency = -1 }, field: "concurrency"},
		{name: "huge concurrency", edit: func(c *task.QueueConfig) { c.Concurrency = task.MaxConcurrency + 1 }, field: "concurrency"},
		{name: "negative rate", edit: func(c *task.QueueConfig) { c.Rate = -0.1 }, field: "rate"},
		{name: "NaN rate", edit: func(c *task.QueueConfig) { c.Rate = math.NaN() }, field: "rate"},
		{name: "Inf rate", edit: func(c *task.QueueConfig) { c.Rate = math.Inf(1) }, field: "rate"},
		{name: "huge rate", edit: func(c *task.QueueConfig) { c.Rate = task.MaxRate + 1 }, field: "rate"},
		{name: "negative burst", edit: func(c *task.QueueConfig) { c.Burst = -1 }, field: "burst"},
		{name: "huge burst", edit: func(c *task.QueueConfig) { c.Burst = task.MaxRate + 1 }, field: "burst"},
		{name: "zero timeout", edit: func(c *task.QueueConfig) { c.Timeout = 0 }, field: "timeout"},
		{name: "negative timeout", edit: func(c *task.QueueConfig) { c.Timeout = -1 }, field: "timeout"},
		{name: "huge timeout", edit: func(c *task.QueueConfig) { c.Timeout = task.Duration(task.MaxTimeout + 1) }, field: "timeout"},
		{name: "zero attempts", edit: func(c *task.QueueConfig) { c.Retry.MaxAttempts = 0 }, field: "retry.max_attempts"},
		{name: "too many attempts", edit: func(c *task.QueueConfig) { c.Retry.MaxAttempts = task.MaxAttemptsLimit + 1 }, field: "retry.max_attempts"},
		{name: "min over max backoff", edit: func(c *task.QueueConfig) {
			c.Retry.MinBackoff, c.Retry.MaxBackoff = task.Duration(time.Minute), task.Duration(time.Second)
		}, field: "retry.min_backoff"},
		{name: "zero backlog", edit: func(c *task.QueueConfig) { c.MaxBacklog = 0 }, field: "max_backlog"},
		{name: "negative backlog", edit: func(c *task.QueueConfig) { c.MaxBacklog = -5 }, field: "max_backlog"},
		{name: "empty ordering", edit: func(c *task.QueueConfig) { c.Ordering = "" }, field: "ordering"},
		{name: "unknown ordering", edit: func(c *task.QueueConfig) { c.Ordering = "fifo" }, field: "ordering"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := task.DefaultQueueConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, task.ErrBadQueue) {
				t.Fatalf("Validate = %v, want ErrBadQueue", err)
			}
			if !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Fatalf("Validate = %q, does not name the field %q", err, tt.field)
			}
		})
	}
}

func TestValidateQueueName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
	}{
		{"q", true},
		{"default_queue", true},
		{"订单队列", true},
		{"with space", true},
		{"a:b{c}/d", true},
		{"🚀", true},
		{strings.Repeat("a", task.MaxQueueNameBytes), true},
		{strings.Repeat("队", task.MaxQueueNameBytes/3), true}, // 198 bytes

		{"", false},
		{strings.Repeat("a", task.MaxQueueNameBytes+1), false},
		{strings.Repeat("队", task.MaxQueueNameBytes/3+1), false}, // 201 bytes
		{"a\nb", false},
		{"a\rb", false},
		{"a\tb", false},
		{"\x00", false},
		{"a\x7f", false},
		{"\xff", false},
		{"a\xc3", false},
	}
	for _, tt := range tests {
		err := task.ValidateQueueName(tt.name)
		if tt.ok {
			if err != nil {
				t.Errorf("ValidateQueueName(%.40q): %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, task.ErrBadQueue) || !strings.Contains(err.Error(), "queue_name") {
			t.Errorf("ValidateQueueName(%.40q) = %v, want ErrBadQueue naming queue_name", tt.name, err)
		}
	}
}

func TestEffectiveBurst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rate  float64
		burst int
		want  int
	}{
		{0, 0, 1},
		{0.5, 0, 1},
		{1, 0, 1},
		{2.1, 0, 3},
		{100, 0, 100},
		{100, 7, 7},
		{0, 5, 5},
	}
	for _, tt := range tests {
		c := task.QueueConfig{Rate: tt.rate, Burst: tt.burst}
		if got := c.EffectiveBurst(); got != tt.want {
			t.Errorf("EffectiveBurst(rate %v, burst %d) = %d, want %d", tt.rate, tt.burst, got, tt.want)
		}
	}
}

func TestTaskOverrides(t *testing.T) {
	t.Parallel()
	c := task.DefaultQueueConfig()
	if got := c.TaskTimeout(&task.Spec{}); got != task.DefaultTimeout {
		t.Errorf("TaskTimeout without override = %v", got)
	}
	if got := c.TaskTimeout(&task.Spec{TimeoutMs: 1500}); got != 1500*time.Millisecond {
		t.Errorf("TaskTimeout with 1500 ms = %v", got)
	}
	if got := c.TaskMaxAttempts(&task.Spec{}); got != task.DefaultMaxAttempts {
		t.Errorf("TaskMaxAttempts without override = %d", got)
	}
	if got := c.TaskMaxAttempts(&task.Spec{MaxAttempts: 9}); got != 9 {
		t.Errorf("TaskMaxAttempts with 9 = %d", got)
	}
}

func TestTaskRetry(t *testing.T) {
	t.Parallel()
	c := task.DefaultQueueConfig()
	c.Retry = task.RetryPolicy{MaxAttempts: 4, MinBackoff: task.Duration(time.Second), MaxBackoff: task.Duration(time.Minute)}
	ms := func(v int64) *int64 { return &v }
	pol := func(n int, lo, hi time.Duration) task.RetryPolicy {
		return task.RetryPolicy{MaxAttempts: n, MinBackoff: task.Duration(lo), MaxBackoff: task.Duration(hi)}
	}
	tests := []struct {
		name string
		spec *task.Spec
		want task.RetryPolicy
	}{
		{"nil spec", nil, pol(4, time.Second, time.Minute)},
		{"no override", &task.Spec{}, pol(4, time.Second, time.Minute)},
		{"max_attempts", &task.Spec{MaxAttempts: 9}, pol(9, time.Second, time.Minute)},
		{"both bounds", &task.Spec{MinBackoffMs: ms(250), MaxBackoffMs: ms(4000)}, pol(4, 250*time.Millisecond, 4*time.Second)},
		{"zero bounds", &task.Spec{MinBackoffMs: ms(0), MaxBackoffMs: ms(0)}, pol(4, 0, 0)},
		{"min only", &task.Spec{MinBackoffMs: ms(5000)}, pol(4, 5*time.Second, time.Minute)},
		{"max only", &task.Spec{MaxBackoffMs: ms(2000)}, pol(4, time.Second, 2*time.Second)},
		{"min only, above the queue's max", &task.Spec{MinBackoffMs: ms(120_000)}, pol(4, 2*time.Minute, 2*time.Minute)},
		{"max only, below the queue's min", &task.Spec{MaxBackoffMs: ms(10)}, pol(4, 10*time.Millisecond, 10*time.Millisecond)},
		{"stored out of range", &task.Spec{MinBackoffMs: ms(-5), MaxBackoffMs: ms(math.MaxInt64)}, pol(4, 0, 100*365*24*time.Hour)},
	}
	for _, tt := range tests {
		if got := c.TaskRetry(tt.spec); got != tt.want {
			t.Errorf("%s: TaskRetry = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestStateTerminal(t *testing.T) {
	t.Parallel()
	for s, want := range map[task.State]bool{
		task.StateScheduled: false, task.StateQueued: false, task.StateActive: false, task.StateRetrying: false,
		task.StateSucceeded: true, task.StateDead: true, task.StateCancelled: true,
	} {
		if got := s.Terminal(); got != want {
			t.Errorf("%s.Terminal() = %v, want %v", s, got, want)
		}
	}
}

func TestQueueFullError(t *testing.T) {
	t.Parallel()
	var err error = &task.QueueFullError{Queue: "q", Backlog: 10, Max: 10, Adding: 2}
	if !errors.Is(err, task.ErrQueueFull) {
		t.Fatal("QueueFullError does not match ErrQueueFull")
	}
	var qf *task.QueueFullError
	if !errors.As(errors.Join(errors.New("x"), err), &qf) || qf.Adding != 2 {
		t.Fatal("errors.As does not find QueueFullError")
	}
	for _, part := range []string{`"q"`, "10 tasks", "limit 10", "adding 2"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("%q does not contain %q", err, part)
		}
	}
}
