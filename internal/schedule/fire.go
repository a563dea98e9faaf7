package schedule

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/recur"
	"github.com/htq/htq/internal/store"
)

// Bounds of schedule firing.
const (
	// fireBatch bounds the schedules of a partition read at once.
	fireBatch = 100
	// fireLimit bounds the occurrences of one schedule fired by one script.
	fireLimit = 50
	// fireWorkers is how many partitions are fired at once.
	fireWorkers = 32
	// fireRounds bounds the reads of one partition per look, so a schedule
	// that cannot be fired (a broken definition) cannot hold the loop.
	fireRounds = 20
)

// fireDue fires every due schedule and returns when to look next.
func (s *Scheduler) fireDue(ctx context.Context) time.Time {
	due, later, err := s.st.Due(ctx, store.DueSchedules, dueLimit, 1)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read schedule due index", "err", err)
		}
		return s.clock.Now().Add(min(s.cfg.PollInterval, 100*time.Millisecond))
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		retry bool
		sem   = make(chan struct{}, fireWorkers)
	)
	for _, e := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if !s.firePartition(ctx, e) {
				mu.Lock()
				retry = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	now := s.clock.Now()
	next := s.nextLook(now, later, retry)
	if len(due) > 0 && !retry {
		// later was read before firing moved the due entries: look again
		// at once, to wait for the entries as they are now.
		next = now
	}
	return next
}

// firePartition fires the due schedules of one partition, then settles its
// due entry; false means something failed and it should be tried again soon.
func (s *Scheduler) firePartition(ctx context.Context, e store.DueEntry) bool {
	ok := true
	for range fireRounds {
		states, err := s.st.DueSchedules(ctx, e.Partition, fireBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("read due schedules", "partition", e.Partition, "err", err)
			}
			return false
		}
		for _, st := range states {
			if err := s.fireOne(ctx, st); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("fire schedule", "schedule", st.Def.Name, "err", err)
				}
				ok = false
			}
		}
		if !ok || len(states) == 0 {
			break
		}
	}
	if !ok {
		return false
	}
	if err := s.st.Settle(ctx, store.DueSchedules, e.Partition, e.At); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("settle schedule due entry", "partition", e.Partition, "err", err)
		}
		return false
	}
	return true
}

// fireOne fires the passed occurrences of one schedule that its missed
// policy keeps, and advances it. Another scheduler having fired it (or a
// client having changed it) since it was read is not an error.
func (s *Scheduler) fireOne(ctx context.Context, st *store.ScheduleState) error {
	def := st.Def
	plan, err := def.Normalize()
	if err != nil {
		return err
	}
	now := s.clock.Now()
	d := def.Decide(plan, st.Next, now, s.cfg.MissedGrace, fireLimit)
	f := &store.Fire{State: st, NewNext: d.Next, Window: def.IdempotencyWindow(s.cfg.MissedGrace)}
	for _, at := range d.Fire {
		f.Occ = append(f.Occ, occurrence(def, at.In(plan.Location()), now))
	}
	outs, err := s.st.FireSchedule(ctx, f)
	if errors.Is(err, store.ErrScheduleChanged) || errors.Is(err, store.ErrScheduleNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	missed := d.Missed
	for i, o := range outs {
		at := d.Fire[i]
		switch o.Outcome {
		case store.FireFired:
			s.m.ScheduleRuns.WithLabelValues(metrics.RunFired).Inc()
			s.m.ScheduleLateness.Observe(max(0, now.Sub(at)).Seconds())
		case store.FireSkipped:
			s.m.ScheduleRuns.WithLabelValues(metrics.RunSkippedOverlap).Inc()
			s.log.Info("schedule run skipped: the last run is still queued or active",
				"schedule", def.Name, "scheduled_at", at, "task_id", o.TaskID)
		case store.FireFull, store.FireNoQueue:
			missed++
			s.log.Warn("schedule run not created", "schedule", def.Name, "queue", def.Queue, "scheduled_at", at, "reason", o.Outcome)
		}
	}
	if d.Missed > 0 {
		s.log.Warn("schedule runs missed", "schedule", def.Name, "missed", d.Missed, "policy", def.Missed)
	}
	if missed > 0 {
		s.m.ScheduleRuns.WithLabelValues(metrics.RunMissed).Add(float64(missed))
	}
	return nil
}

// occurrence builds the task of one occurrence of def at instant at.
func occurrence(def *recur.Schedule, at, now time.Time) store.Occurrence {
	due := at
	if j := def.Jitter.Std(); j > 0 {
		due = due.Add(rand.N(j))
	}
	return store.Occurrence{At: at, Due: due, Spec: def.Occurrence(at, now), Key: def.OccurrenceKey(at)}
}
