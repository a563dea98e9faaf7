package schedule

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
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
	// fireRounds bounds the reads of one partition per look, so a schedule
	// that cannot be fired (a broken definition) cannot hold the loop.
	fireRounds = 20
	// settleWorkers is how many partitions' due entries are settled at once.
	settleWorkers = 32
	// fireLead is how long before their instant the leader reads the
	// schedules coming due and prepares their scripts (decoded, decided,
	// tasks encoded), so that at the instant only one pipeline of scripts
	// is left to send. Nothing is sent before the instant.
	fireLead = 100 * time.Millisecond
)

// fireJob is one schedule's fire script, prepared ahead of its instant.
type fireJob struct {
	part int       // index of its partition in the batch read
	at   time.Time // its instant: the script is not sent before it
	def  *recur.Schedule
	d    recur.Decision
	call *store.FireCall
}

// fireDue fires every schedule due within lead (at its instant: it waits
// for it) and returns when to look next, lead ahead of the next instant.
func (s *Scheduler) fireDue(ctx context.Context, lead time.Duration) time.Time {
	due, later, err := s.st.DueAhead(ctx, store.DueSchedules, dueLimit, 1, lead)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read schedule due index", "err", err)
		}
		return s.clock.Now().Add(min(s.cfg.PollInterval, 100*time.Millisecond))
	}
	retry := false
	if len(due) > 0 {
		retry = !s.fireParts(ctx, due, lead)
	}
	now := s.clock.Now()
	next := s.nextLook(now, later, retry, lead)
	if len(due) > 0 && !retry {
		// later was read before firing moved the due entries: look again
		// at once, to wait for the entries as they are now.
		next = now
	}
	return next
}

// fireParts fires the schedules of the due partitions that come due within
// lead, in rounds (a read of every partition left, then the firing of what
// it found) until a round finds nothing more, at most fireRounds; then it
// settles the partitions' due entries. False means something failed and it
// should be tried again soon.
func (s *Scheduler) fireParts(ctx context.Context, due []store.DueEntry, lead time.Duration) bool {
	failed := make([]bool, len(due))
	todo := make([]int, len(due)) // indexes in due of the partitions to read
	for i := range due {
		todo[i] = i
	}
	for range fireRounds {
		if len(todo) == 0 {
			break
		}
		var ok bool
		if todo, ok = s.fireRound(ctx, due, todo, lead, failed); !ok {
			return false
		}
	}
	// A partition is settled only if all its due schedules were read and
	// fired: a failure (try again soon) or the rounds running out (look
	// again at once) keeps it due.
	held := slices.Clone(failed)
	for _, i := range todo {
		held[i] = true
	}
	return s.settle(ctx, due, held) && !slices.Contains(failed, true)
}

// fireRound reads the schedules of the partitions todo (indexes in due)
// that come due within lead, and fires them: each group of schedules due at
// one instant in one pipeline at that instant. It returns the partitions
// where it fired something (more may be due), or false if it could not
// read or ctx ended.
func (s *Scheduler) fireRound(ctx context.Context, due []store.DueEntry, todo []int, lead time.Duration, failed []bool) ([]int, bool) {
	parts := make([]int, len(todo))
	for k, i := range todo {
		parts[k] = due[i].Partition
	}
	batches, err := s.st.DueSchedules(ctx, parts, fireBatch, lead)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read due schedules", "err", err)
		}
		return nil, false
	}
	now := s.clock.Now()
	upTo := now.Add(lead)
	var (
		jobs  []*fireJob
		fired []int
	)
	for k, b := range batches {
		i := todo[k]
		if b.Err != nil {
			if ctx.Err() == nil {
				s.log.Warn("read due schedules", "partition", b.Partition, "err", b.Err)
			}
			failed[i] = true
			continue
		}
		n := 0
		for _, st := range b.States {
			if st.Next.After(upTo) {
				continue // another scheduler fired it between the two reads
			}
			j, err := s.prepare(st, now)
			if err != nil {
				s.log.Warn("fire schedule", "schedule", st.Def.Name, "err", err)
				failed[i] = true
				continue
			}
			j.part = i
			jobs = append(jobs, j)
			n++
		}
		if n > 0 {
			fired = append(fired, i)
		}
	}
	slices.SortStableFunc(jobs, func(a, b *fireJob) int { return a.at.Compare(b.at) })
	for len(jobs) > 0 {
		if !s.waitUntil(ctx, jobs[0].at) {
			return nil, false
		}
		now := s.clock.Now()
		n := 1
		for n < len(jobs) && !jobs[n].at.After(now) {
			n++
		}
		s.fireGroup(ctx, jobs[:n], failed)
		jobs = jobs[n:]
	}
	return slices.DeleteFunc(fired, func(i int) bool { return failed[i] }), true
}

// prepare decides which passed occurrences of a schedule its missed policy
// keeps, as of its next instant (or now, if that has passed), and encodes
// their script.
func (s *Scheduler) prepare(st *store.ScheduleState, now time.Time) (*fireJob, error) {
	def := st.Def
	plan, err := def.Normalize()
	if err != nil {
		return nil, err
	}
	at := now // the time of the script, at the earliest
	if st.Next.After(at) {
		at = st.Next
	}
	d := def.Decide(plan, st.Next, at, s.cfg.MissedGrace, fireLimit)
	f := &store.Fire{State: st, NewNext: d.Next, Window: def.IdempotencyWindow(s.cfg.MissedGrace)}
	for _, o := range d.Fire {
		f.Occ = append(f.Occ, occurrence(def, o.In(plan.Location()), at))
	}
	call, err := s.st.PrepareFire(f)
	if err != nil {
		return nil, err
	}
	return &fireJob{at: st.Next, def: def, d: d, call: call}, nil
}

// waitUntil sleeps until the clock reaches at; false if ctx ended first.
func (s *Scheduler) waitUntil(ctx context.Context, at time.Time) bool {
	for {
		d := at.Sub(s.clock.Now())
		if d <= 0 {
			return ctx.Err() == nil
		}
		if !sleep(ctx, d) {
			return false
		}
	}
}

// fireGroup sends the scripts of jobs in one pipeline and reports their
// outcomes. Another scheduler having fired a schedule (or a client having
// changed it) since it was read is not an error; another error holds the
// job's partition due (failed).
func (s *Scheduler) fireGroup(ctx context.Context, jobs []*fireJob, failed []bool) {
	calls := make([]*store.FireCall, len(jobs))
	for i, j := range jobs {
		calls[i] = j.call
	}
	sent := s.clock.Now()
	res := s.st.FireMany(ctx, calls)
	for i, j := range jobs {
		err := res[i].Err
		if errors.Is(err, store.ErrScheduleChanged) || errors.Is(err, store.ErrScheduleNotFound) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("fire schedule", "schedule", j.def.Name, "err", err)
			}
			failed[j.part] = true
			continue
		}
		s.report(j, res[i].Outcomes, sent)
	}
}

// report counts and logs what became of a schedule's occurrences, fired
// by a script sent at sent.
func (s *Scheduler) report(j *fireJob, outs []store.FireOutcome, sent time.Time) {
	def, d := j.def, j.d
	missed := d.Missed
	for i, o := range outs {
		at := d.Fire[i]
		switch o.Outcome {
		case store.FireFired:
			s.m.ScheduleRuns.WithLabelValues(metrics.RunFired).Inc()
			s.m.ScheduleLateness.Observe(max(0, sent.Sub(at)).Seconds())
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
}

// settle settles the due entries of the partitions not held, a bounded
// number at once; false if one failed.
func (s *Scheduler) settle(ctx context.Context, due []store.DueEntry, held []bool) bool {
	var (
		wg  sync.WaitGroup
		bad atomic.Bool
		sem = make(chan struct{}, settleWorkers)
	)
	for i, e := range due {
		if held[i] {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.st.Settle(ctx, store.DueSchedules, e.Partition, e.At); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("settle schedule due entry", "partition", e.Partition, "err", err)
				}
				bad.Store(true)
			}
		})
	}
	wg.Wait()
	return !bad.Load()
}

// occurrence builds the task of one occurrence of def at instant at.
func occurrence(def *recur.Schedule, at, now time.Time) store.Occurrence {
	due := at
	if j := def.Jitter.Std(); j > 0 {
		due = due.Add(rand.N(j))
	}
	return store.Occurrence{At: at, Due: due, Spec: def.Occurrence(at, now), Key: def.OccurrenceKey(at)}
}
