package dispatch

import (
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// historyBodyBytes bounds the response body kept in an attempt record.
const historyBodyBytes = 256

// decision is what to record after a call.
type decision struct {
	completion store.Completion
	outcome    string // htq_dispatcher_calls_total label
	final      task.State
}

// decide applies HTQ's rules to a call's result: success ends a realtime
// task and reschedules a variable one (done / reset / X-HTQ-Next-In); a
// target's "X-HTQ-Action: done" ends any task as succeeded and
// "X-HTQ-Action: dead" as dead; a retryable failure is tried
// again after a backoff (the queue's retry policy with the task's own
// min_backoff / max_backoff; Retry-After honoured, capped at max_backoff) while
// attempts remain, holding the queue (strict) or stepping aside (relaxed);
// anything else, or the last attempt, makes the task dead. A variable task
// of a legacy-created queue is the exception: any failure (but an egress
// refusal or an undecodable spec) schedules its next call as usual.
func decide(cfg *task.QueueConfig, dl *store.Delivery, res *deliver.Result, start, now time.Time, rnd *rand.Rand) decision {
	rec := &store.AttemptRecord{
		At: clock.Millis(start), Attempt: dl.Attempt, Status: res.Status,
		LatencyMs: res.Latency.Milliseconds(), Seq: dl.Seq, Redirects: res.Redirects,
	}
	if res.Err != nil {
		rec.Error = truncateUTF8(res.Err.Error(), 512)
	}
	rec.Body = truncateUTF8(strings.ToValidUTF8(string(res.Body[:min(len(res.Body), historyBodyBytes)]), "�"), historyBodyBytes)

	c := store.Completion{Delivery: dl, Attempt: rec}
	d := decision{}
	verdict := task.VerdictRetry
	switch {
	case dl.Err != nil:
		rec.Error = "stored task cannot be decoded: " + dl.Err.Error()
		verdict, d.outcome = task.VerdictPermanent, metrics.OutcomePermanent
	case res.Kind == deliver.ErrEgress:
		verdict, d.outcome = task.VerdictPermanent, metrics.OutcomeEgressDenied
	case res.Kind == deliver.ErrRequest:
		verdict, d.outcome = task.VerdictPermanent, metrics.OutcomePermanent
	case res.Kind == deliver.ErrTimeout:
		d.outcome = metrics.OutcomeTimeout
	case res.Err != nil:
		d.outcome = metrics.OutcomeRetry
	default:
		verdict = task.Judge(res.Status)
		switch verdict {
		case task.VerdictSuccess:
			d.outcome = metrics.OutcomeSuccess
		case task.VerdictRetry:
			d.outcome = metrics.OutcomeRetry
		default:
			d.outcome = metrics.OutcomePermanent
		}
	}

	// X-HTQ-Action steers any task whatever the status; a body of "done" or
	// "reset" only steers a variable task's successful call (the legacy rule).
	action := task.ActionNone
	if res.Status != 0 && res.Err == nil {
		action = task.ActionFromHeader(res.Header)
		if action == task.ActionNone && verdict == task.VerdictSuccess && cfg.Type == task.KindVariable {
			action = task.ActionFromBody(res.Body)
		}
	}
	switch {
	case action == task.ActionDead:
		// the target says never to call again: no retries, whatever the status
		c.Outcome, c.Retention, d.final = store.OutcomeDead, cfg.DeadRetention.Std(), task.StateDead
	case action == task.ActionDone:
		// the target says it is finished, whatever the status: no more calls, no retries
		c.Outcome, c.Retention, d.final = store.OutcomeSucceeded, cfg.Retention.Std(), task.StateSucceeded
	case verdict == task.VerdictSuccess && cfg.Type == task.KindVariable:
		nextIn, has := task.ParseNextIn(res.Header)
		gap, k := task.NextCall(dl.K, action, cfg.SteppingTime.Std(), cfg.MaxTimeInterval.Std(), nextIn, has)
		c.Outcome, c.Due, c.K, c.SetK = store.OutcomeAgain, now.Add(gap), k, true
	case verdict == task.VerdictSuccess:
		c.Outcome, c.Retention, d.final = store.OutcomeSucceeded, cfg.Retention.Std(), task.StateSucceeded
	case cfg.Type == task.KindVariable && cfg.Legacy != nil && dl.Err == nil && res.Kind != deliver.ErrEgress:
		// A variable task of a queue made through the legacy API is a
		// monitor, as in the original: a failed call (4xx, 5xx, timeout,
		// refused) is recorded in its history and the schedule goes on,
		// with the gap of an ordinary answer; it is neither retried nor
		// killed. Only the target's done (or X-HTQ-Action: dead) ends it.
		gap, k := task.NextCall(dl.K, task.ActionNone, cfg.SteppingTime.Std(), cfg.MaxTimeInterval.Std(), 0, false)
		c.Outcome, c.Due, c.K, c.SetK = store.OutcomeAgain, now.Add(gap), k, true
	case verdict == task.VerdictRetry && dl.Attempt < cfg.TaskMaxAttempts(dl.Spec):
		policy := cfg.TaskRetry(dl.Spec) // the queue's, with the task's own bounds
		wait := task.Backoff(policy, dl.Attempt, rnd)
		if res.Header != nil {
			if ra, ok := task.RetryAfter(res.Header, now); ok {
				wait = min(ra, max(policy.MaxBackoff.Std(), policy.MinBackoff.Std()))
			}
		}
		c.Due = now.Add(wait)
		if cfg.Ordering == task.OrderingRelaxed {
			c.Outcome = store.OutcomeRetry
		} else {
			c.Outcome = store.OutcomeHold
		}
	default:
		c.Outcome, c.Retention, d.final = store.OutcomeDead, cfg.DeadRetention.Std(), task.StateDead
	}
	d.completion = c
	return d
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
