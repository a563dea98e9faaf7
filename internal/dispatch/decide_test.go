package dispatch

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

func ms(v int64) *int64 { return &v }

// TestDecideBackoffUsesTaskBounds: a retried task waits within its own
// min_backoff / max_backoff where it set them, and within the queue's
// retry policy otherwise; Retry-After is capped at the task's bounds too.
func TestDecideBackoffUsesTaskBounds(t *testing.T) {
	t.Parallel()
	cfg := task.DefaultQueueConfig()
	cfg.Retry = task.RetryPolicy{MaxAttempts: 50, MinBackoff: task.Duration(time.Second), MaxBackoff: task.Duration(time.Minute)}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		spec       task.Spec
		attempt    int
		retryAfter string
		lo, hi     time.Duration // the wait must be in [lo, hi]
	}{
		{name: "queue policy, first retry", attempt: 1, lo: time.Second, hi: time.Second},
		{name: "queue policy, late retry", attempt: 20, lo: time.Second, hi: time.Minute},
		{name: "task bounds, first retry", spec: task.Spec{MinBackoffMs: ms(50), MaxBackoffMs: ms(200)}, attempt: 1,
			lo: 50 * time.Millisecond, hi: 50 * time.Millisecond},
		{name: "task bounds, late retry", spec: task.Spec{MinBackoffMs: ms(50), MaxBackoffMs: ms(200)}, attempt: 20,
			lo: 50 * time.Millisecond, hi: 200 * time.Millisecond},
		{name: "task zero backoff", spec: task.Spec{MinBackoffMs: ms(0), MaxBackoffMs: ms(0)}, attempt: 7},
		{name: "task min only", spec: task.Spec{MinBackoffMs: ms(10_000)}, attempt: 1, lo: 10 * time.Second, hi: 10 * time.Second},
		{name: "task min only, late retry keeps the queue's max", spec: task.Spec{MinBackoffMs: ms(10_000)}, attempt: 20,
			lo: 10 * time.Second, hi: time.Minute},
		{name: "task max only", spec: task.Spec{MaxBackoffMs: ms(3_000)}, attempt: 20, lo: time.Second, hi: 3 * time.Second},
		{name: "task min above the queue's max", spec: task.Spec{MinBackoffMs: ms(120_000)}, attempt: 20,
			lo: 2 * time.Minute, hi: 2 * time.Minute},
		{name: "task max below the queue's min", spec: task.Spec{MaxBackoffMs: ms(100)}, attempt: 20,
			lo: 100 * time.Millisecond, hi: 100 * time.Millisecond},
		{name: "Retry-After capped at the task's max", spec: task.Spec{MinBackoffMs: ms(50), MaxBackoffMs: ms(2_000)}, attempt: 1,
			retryAfter: "30", lo: 2 * time.Second, hi: 2 * time.Second},
		{name: "Retry-After below the task's max", spec: task.Spec{MaxBackoffMs: ms(300_000)}, attempt: 1,
			retryAfter: "120", lo: 2 * time.Minute, hi: 2 * time.Minute},
		{name: "Retry-After capped at the queue's max", attempt: 1, retryAfter: "120", lo: time.Minute, hi: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rnd := rand.New(rand.NewPCG(1, 2))
			for range 200 {
				spec := tt.spec
				spec.URL = "http://example.com/"
				dl := &store.Delivery{TaskID: "t", Queue: "q", Spec: &spec, Attempt: tt.attempt}
				res := &deliver.Result{Status: http.StatusServiceUnavailable, Header: http.Header{}}
				if tt.retryAfter != "" {
					res.Header.Set("Retry-After", tt.retryAfter)
				}
				d := decide(&cfg, dl, res, now, now, rnd)
				if d.completion.Outcome != store.OutcomeHold {
					t.Fatalf("outcome %q, want %q (a strict retry)", d.completion.Outcome, store.OutcomeHold)
				}
				if wait := d.completion.Due.Sub(now); wait < tt.lo || wait > tt.hi {
					t.Fatalf("wait %v, want %v to %v", wait, tt.lo, tt.hi)
				}
			}
		})
	}
}

// TestDecideMaxAttemptsUsesTask: the task's own max_attempts ends it
// before the queue's would.
func TestDecideMaxAttemptsUsesTask(t *testing.T) {
	t.Parallel()
	cfg := task.DefaultQueueConfig()
	now := time.Now()
	rnd := rand.New(rand.NewPCG(1, 2))
	spec := task.Spec{URL: "http://example.com/", MaxAttempts: 2, MinBackoffMs: ms(5)}
	res := &deliver.Result{Status: http.StatusInternalServerError}
	if d := decide(&cfg, &store.Delivery{Spec: &spec, Attempt: 1}, res, now, now, rnd); d.completion.Outcome != store.OutcomeHold ||
		d.completion.Due.Sub(now) != 5*time.Millisecond {
		t.Fatalf("attempt 1 of 2: %q after %v, want a hold of 5ms", d.completion.Outcome, d.completion.Due.Sub(now))
	}
	if d := decide(&cfg, &store.Delivery{Spec: &spec, Attempt: 2}, res, now, now, rnd); d.completion.Outcome != store.OutcomeDead {
		t.Fatalf("attempt 2 of 2: %q, want dead", d.completion.Outcome)
	}
}

// TestDecideLegacyVariableRepeatsThroughFailures: a variable task of a
// queue made through the legacy API keeps its schedule when its target
// fails (4xx, 5xx, timeout, refused), even with one attempt per task, as
// the original's monitors did (issue 13: a 4xx killed it at once, five 5xx
// too); a REST variable queue still retries and dies.
func TestDecideLegacyVariableRepeatsThroughFailures(t *testing.T) {
	t.Parallel()
	variable := "variable"
	legacyCfg := task.DefaultQueueConfig()
	legacyCfg.Type, legacyCfg.Legacy = task.KindVariable, &task.LegacyAttr{Type: &variable}
	legacyCfg.SteppingTime, legacyCfg.MaxTimeInterval = task.Duration(2*time.Second), task.Duration(5*time.Second)
	legacyCfg.Retry.MaxAttempts = 1
	restCfg := legacyCfg
	restCfg.Legacy = nil
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	failures := map[string]*deliver.Result{
		"404":     {Status: http.StatusNotFound, Header: http.Header{}},
		"500":     {Status: http.StatusInternalServerError, Header: http.Header{}},
		"timeout": {Kind: deliver.ErrTimeout, Err: errTest},
		"refused": {Kind: deliver.ErrConnection, Err: errTest},
	}
	for name, res := range failures {
		for k, wantGap := range map[int64]time.Duration{0: 0, 2: 4 * time.Second, 9: 5 * time.Second} {
			dl := &store.Delivery{TaskID: "t", Queue: "q", Spec: &task.Spec{URL: "http://example.com/"}, Attempt: 1, K: k}
			d := decide(&legacyCfg, dl, res, now, now, rand.New(rand.NewPCG(1, 2)))
			c := d.completion
			if c.Outcome != store.OutcomeAgain || !c.Due.Equal(now.Add(wantGap)) || c.K != k+1 || !c.SetK {
				t.Errorf("legacy, %s, k=%d: outcome %s due +%v k %d; want again +%v k %d", name, k, c.Outcome, c.Due.Sub(now), c.K, wantGap, k+1)
			}
			if c.Attempt == nil || (c.Attempt.Status != res.Status) || (res.Err != nil && c.Attempt.Error == "") {
				t.Errorf("legacy, %s: the failure is not recorded: %+v", name, c.Attempt)
			}
		}
		dl := &store.Delivery{TaskID: "t", Queue: "q", Spec: &task.Spec{URL: "http://example.com/"}, Attempt: 1}
		if d := decide(&restCfg, dl, res, now, now, rand.New(rand.NewPCG(1, 2))); d.completion.Outcome != store.OutcomeDead {
			t.Errorf("REST, %s: outcome %s, want dead after its one attempt", name, d.completion.Outcome)
		}
	}
	// an egress refusal still ends it: HTQ may never call that address
	dl := &store.Delivery{TaskID: "t", Queue: "q", Spec: &task.Spec{URL: "http://example.com/"}, Attempt: 1}
	if d := decide(&legacyCfg, dl, &deliver.Result{Kind: deliver.ErrEgress, Err: errTest}, now, now, rand.New(rand.NewPCG(1, 2))); d.completion.Outcome != store.OutcomeDead {
		t.Errorf("egress refusal: outcome %s, want dead", d.completion.Outcome)
	}
}

var errTest = errors.New("test failure")
