package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Config tunes a scheduler. The configured settings have no fallback here:
// their defaults live in internal/config; New refuses values it cannot use.
type Config struct {
	LockTTL         time.Duration
	PollInterval    time.Duration // most time between two looks at the timer due index (the safety net)
	PromoteBatch    int           // tasks moved per script call
	JanitorInterval time.Duration // time between the janitor's full passes over the partitions
	BacklogInterval time.Duration // how often the leader refreshes the backlog metrics (used with a backlog)
	// MissedGrace is how late a schedule occurrence may be fired as on
	// time; see recur.Schedule.Decide.
	MissedGrace time.Duration

	// The settings below have no configuration key: 0 means their default.

	// RepairBatch is how many queues the janitor's repair sweep checks
	// every JanitorTick (0: DefaultRepairBatch).
	RepairBatch int
	// JanitorTick is how often the janitor trims due dead letters and takes
	// a step of its repair sweep (0: DefaultJanitorTick, or JanitorInterval
	// when shorter).
	JanitorTick time.Duration
}

// ErrConfig wraps every error of Config.Validate.
var ErrConfig = errors.New("invalid scheduler configuration")

// Validate refuses a configuration the scheduler cannot run with.
func (c *Config) Validate() error {
	bad := func(field string, v any, rule string) error {
		return fmt.Errorf("%w: %s %v: %s", ErrConfig, field, v, rule)
	}
	switch {
	case c.LockTTL <= 0:
		return bad("LockTTL", c.LockTTL, "want more than 0")
	case c.PollInterval <= 0:
		return bad("PollInterval", c.PollInterval, "want more than 0")
	case c.PromoteBatch < 1:
		return bad("PromoteBatch", c.PromoteBatch, "want at least 1")
	case c.JanitorInterval <= 0:
		return bad("JanitorInterval", c.JanitorInterval, "want more than 0")
	case c.BacklogInterval < 0:
		return bad("BacklogInterval", c.BacklogInterval, "want 0 (no backlog metrics) or more")
	case c.MissedGrace <= 0:
		return bad("MissedGrace", c.MissedGrace, "want more than 0")
	case c.RepairBatch < 0:
		return bad("RepairBatch", c.RepairBatch, "want 0 (the default) or more")
	case c.JanitorTick < 0:
		return bad("JanitorTick", c.JanitorTick, "want 0 (the default) or more")
	}
	return nil
}

// Defaults of the settings without a configuration key.
const (
	DefaultRepairBatch = 10
	DefaultJanitorTick = 10 * time.Second
	// deadTrimQueues bounds the queues one dead-letter trim looks at.
	deadTrimQueues = 100
	// repairParts bounds the partitions one repair step scans.
	repairParts = 16
)

// Scheduler campaigns for leadership and, while leader, promotes due tasks
// and runs the janitor.
type Scheduler struct {
	cfg     Config
	st      *store.Store
	clock   clock.Clock
	log     *slog.Logger
	m       *metrics.Scheduler
	backlog *metrics.Backlog
	running atomic.Bool
	leader  atomic.Bool
}

// New returns a scheduler, or an error when cfg does not validate.
// backlog, when set, is exported while leading, every BacklogInterval
// (which must then be more than 0).
func New(cfg Config, st *store.Store, clk clock.Clock, log *slog.Logger, m *metrics.Scheduler, backlog *metrics.Backlog) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if backlog != nil && cfg.BacklogInterval <= 0 {
		return nil, fmt.Errorf("%w: BacklogInterval %v: want more than 0 with backlog metrics", ErrConfig, cfg.BacklogInterval)
	}
	if cfg.RepairBatch == 0 {
		cfg.RepairBatch = DefaultRepairBatch
	}
	if cfg.JanitorTick == 0 {
		cfg.JanitorTick = min(DefaultJanitorTick, cfg.JanitorInterval)
	}
	return &Scheduler{cfg: cfg, st: st, clock: clk, log: log, m: m, backlog: backlog}, nil
}

// Running reports whether the election loop runs (for readiness).
func (s *Scheduler) Running() bool { return s.running.Load() }

// Leader reports whether this scheduler leads now.
func (s *Scheduler) Leader() bool { return s.leader.Load() }

// Run campaigns until ctx is cancelled, then steps down.
func (s *Scheduler) Run(ctx context.Context) error {
	k := s.st.Keys()
	el := NewElector(s.st.Client(), k.LeaderLock(), k.LeaderTerm(), s.cfg.LockTTL, s.clock, s.log, func(lead bool) {
		s.leader.Store(lead)
		s.m.LeaderChanges.Inc()
		if lead {
			s.m.IsLeader.Set(1)
		} else {
			s.m.IsLeader.Set(0)
		}
	})
	// Hints flow for the scheduler's whole life, from before its first
	// campaign, so a leader never misses one sent as its term begins.
	hints := s.st.SubscribeSchedule(ctx, 1024)
	defer hints.Close()
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := hints.Wait(waitCtx); err != nil && ctx.Err() == nil { // Redis is down: campaign anyway, the poll covers
		s.log.Warn("subscribe to schedule hints", "err", err)
	}
	cancel()
	s.running.Store(true)
	defer s.running.Store(false)
	s.log.Info("scheduler started", "lock_ttl", s.cfg.LockTTL)
	el.Run(ctx, func(t *Term) { s.lead(t, hints) })
	s.log.Info("scheduler stopped")
	return nil
}

// lead does the leader's work for one term.
func (s *Scheduler) lead(t *Term, hints *store.ScheduleHints) {
	ctx := t.Context()
	var wg sync.WaitGroup
	wg.Go(func() { s.janitor(ctx) })
	if s.backlog != nil {
		wg.Go(func() { s.exportBacklog(ctx) })
	}
	// One subscription, two loops: timer hints go to promotion, schedule
	// hints to firing.
	timers, scheds := make(chan store.ScheduleHint, 256), make(chan store.ScheduleHint, 256)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case h := <-hints.C():
				to := timers
				if h.Kind == store.DueSchedules {
					to = scheds
				}
				select {
				case to <- h:
				default: // the due index has it
				}
			}
		}
	})
	wg.Go(func() { s.dueLoop(ctx, scheds, s.fireDue) })
	s.dueLoop(ctx, timers, s.promoteDue)
	wg.Wait()
}

// exportBacklog refreshes the backlog metrics while the term lasts, and
// clears them when it ends: only the leader exports them. It reads only the
// queues that have work or dead letters (store.ActiveCounts).
func (s *Scheduler) exportBacklog(ctx context.Context) {
	defer s.backlog.Clear()
	for {
		counts, err := s.st.ActiveCounts(ctx)
		var total int64
		if err == nil {
			total, err = s.st.QueueCount(ctx)
		}
		if err == nil {
			rows := make([]metrics.QueueCounts, 0, len(counts))
			for q, c := range counts {
				rows = append(rows, metrics.QueueCounts{Queue: q, Queued: c.Queued, Active: c.Active, Scheduled: c.Scheduled, Dead: c.Dead})
			}
			s.backlog.Set(rows, int(total))
		} else if ctx.Err() == nil {
			s.log.Warn("refresh backlog metrics", "err", err)
		}
		if !sleep(ctx, s.cfg.BacklogInterval) {
			return
		}
	}
}

// dueLimit bounds the due partitions one look at the timer due index reads.
const dueLimit = 256

// dueLoop runs look when the time it last returned comes (the earliest
// entry of the due index it reads), when a hint says an earlier one
// arrived, or when PollInterval passed; the promotion and the firing of
// schedules are each one such loop over their own due index.
func (s *Scheduler) dueLoop(ctx context.Context, hints <-chan store.ScheduleHint, look func(context.Context) time.Time) {
	wake := time.Time{}
	for ctx.Err() == nil {
		timer := time.NewTimer(max(0, wake.Sub(s.clock.Now())))
		select {
		case <-ctx.Done():
		case <-timer.C:
		case h := <-hints:
			if h.Due.Before(wake) {
				wake = h.Due
			}
			timer.Stop()
			continue
		}
		timer.Stop()
		if ctx.Err() != nil {
			return
		}
		wake = look(ctx)
	}
}

// nextLook is when a due loop looks again: PollInterval from now at the
// latest, the first due entry after now (later, as read) if sooner, and
// within 100 ms when something failed (retry).
func (s *Scheduler) nextLook(now time.Time, later []store.DueEntry, retry bool) time.Time {
	next := now.Add(s.cfg.PollInterval)
	if len(later) > 0 && later[0].Time().Before(next) {
		next = later[0].Time()
	}
	if soon := now.Add(100 * time.Millisecond); retry && soon.Before(next) {
		next = soon
	}
	return next
}

// promoteDue promotes every due partition's due tasks and returns when to
// look next.
func (s *Scheduler) promoteDue(ctx context.Context) time.Time {
	due, later, err := s.st.Due(ctx, store.DueTimers, dueLimit, 1)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read timer due index", "err", err)
		}
		return s.clock.Now().Add(min(s.cfg.PollInterval, 100*time.Millisecond))
	}
	retry := false
	for len(due) > 0 && ctx.Err() == nil {
		var again []store.DueEntry
		for _, e := range due {
			more, err := s.promoteBatch(ctx, e.Partition)
			switch {
			case err != nil:
				retry = true
			case more:
				again = append(again, e)
			default:
				if err := s.st.Settle(ctx, store.DueTimers, e.Partition, e.At); err != nil {
					if ctx.Err() == nil {
						s.log.Warn("settle timer due entry", "partition", e.Partition, "err", err)
					}
					retry = true
				}
			}
		}
		due = again
	}
	next := s.nextLook(s.clock.Now(), later, retry)
	if len(due) == dueLimit {
		next = s.clock.Now()
	}
	return next
}

// promoteBatch moves one batch of a partition's due tasks; more says a
// full batch moved and more may be due.
func (s *Scheduler) promoteBatch(ctx context.Context, p int) (more bool, err error) {
	r, err := s.st.Promote(ctx, p, s.cfg.PromoteBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("promote", "partition", p, "err", err)
		}
		return false, err
	}
	now := s.clock.Now()
	s.m.Promoted.Add(float64(r.Moved))
	for _, due := range r.Dues {
		s.m.PromotionLag.Observe(max(0, now.Sub(due)).Seconds())
	}
	return r.Moved >= s.cfg.PromoteBatch && !r.NextDue.IsZero() && !r.NextDue.After(now), nil
}

// janitor keeps Redis tidy while the term lasts. Every JanitorTick it trims
// the dead letters past retention (the partitions the dead-letter due index
// says are due) and checks RepairBatch more queues of its slow repair sweep;
// every JanitorInterval it makes its full pass over the partitions (due
// indexes reconciled, deleted queues drained, old sequences pruned). Its cost
// is proportional to what is due plus a fixed trickle, not to the number of
// queues.
func (s *Scheduler) janitor(ctx context.Context) {
	if err := s.st.EnsureNames(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("janitor: build the queue names index", "err", err)
	}
	var sweep struct {
		p      int
		cursor uint64
	}
	var seqCursors [task.Partitions]string
	lastPass := s.clock.Now()
	for sleep(ctx, s.cfg.JanitorTick) {
		s.trimDead(ctx)
		// One step of the repair sweep: RepairBatch queues, over as many
		// partitions as that takes (at most repairParts, for the empty ones).
		checked := 0
		for range repairParts {
			r, err := s.st.RepairStep(ctx, sweep.p, sweep.cursor, s.cfg.RepairBatch-checked)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("janitor repair", "err", err)
				}
				break
			}
			if sweep.cursor = r.Next; sweep.cursor == 0 {
				sweep.p = (sweep.p + 1) % task.Partitions
			}
			if r.Fixed > 0 || r.Consumers > 0 {
				s.m.JanitorFixes.Add(float64(r.Fixed))
				s.log.Warn("janitor repaired queues", "index_entries", r.Fixed, "idle_consumers_removed", r.Consumers)
			}
			if checked += r.Checked; checked >= s.cfg.RepairBatch {
				break
			}
		}
		if s.clock.Now().Sub(lastPass) < s.cfg.JanitorInterval {
			continue
		}
		lastPass = s.clock.Now()
		for p := 0; p < task.Partitions && ctx.Err() == nil; p++ {
			cur := seqCursors[p]
			if cur == "" {
				cur = "0"
			}
			trash, next, err := s.st.JanitorPass(ctx, p, cur)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("janitor pass", "partition", p, "err", err)
				}
				break
			}
			seqCursors[p] = next
			if trash > 0 {
				s.drainTrash(ctx, p)
			}
		}
	}
}

// trimDead trims the dead letters of the partitions that are due.
func (s *Scheduler) trimDead(ctx context.Context) {
	due, _, err := s.st.Due(ctx, store.DueDead, dueLimit, 0)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read dead-letter due index", "err", err)
		}
		return
	}
	for _, e := range due {
		if _, err := s.st.TrimDead(ctx, e.Partition, deadTrimQueues); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("trim dead letters", "partition", e.Partition, "err", err)
			}
			return
		}
		if err := s.st.Settle(ctx, store.DueDead, e.Partition, e.At); err != nil {
			return
		}
	}
}

// drainTrash finishes deleting the removed queues of a partition.
func (s *Scheduler) drainTrash(ctx context.Context, p int) {
	tokens, err := s.st.TrashTokens(ctx, p)
	if err != nil {
		return
	}
	for _, tok := range tokens {
		for {
			n, err := s.st.DrainTrash(ctx, p, tok)
			if err != nil || n == 0 {
				break
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
