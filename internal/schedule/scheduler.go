package schedule

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Config tunes a scheduler.
type Config struct {
	LockTTL         time.Duration
	PollInterval    time.Duration // how often the timer index is re-read in full
	PromoteBatch    int           // tasks moved per script call
	JanitorInterval time.Duration
	BacklogInterval time.Duration // how often the leader refreshes the backlog metrics
}

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

// New returns a scheduler. backlog, when set, is exported while leading.
func New(cfg Config, st *store.Store, clk clock.Clock, log *slog.Logger, m *metrics.Scheduler, backlog *metrics.Backlog) *Scheduler {
	return &Scheduler{cfg: cfg, st: st, clock: clk, log: log, m: m, backlog: backlog}
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
	hints := make(chan hint, 1024)
	subscribed := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { s.subscribe(ctx, hints, subscribed) })
	select {
	case <-subscribed:
	case <-ctx.Done():
	case <-time.After(5 * time.Second): // Redis is down: campaign anyway, the poll covers
	}
	s.running.Store(true)
	defer s.running.Store(false)
	s.log.Info("scheduler started", "lock_ttl", s.cfg.LockTTL)
	el.Run(ctx, func(t *Term) { s.lead(t, hints) })
	wg.Wait()
	s.log.Info("scheduler stopped")
	return nil
}

// lead does the leader's work for one term.
func (s *Scheduler) lead(t *Term, hints <-chan hint) {
	ctx := t.Context()
	var wg sync.WaitGroup
	wg.Go(func() { s.janitor(ctx) })
	if s.backlog != nil {
		wg.Go(func() { s.exportBacklog(ctx) })
	}
	s.promoteLoop(ctx, hints)
	wg.Wait()
}

// exportBacklog refreshes the backlog metrics while the term lasts, and
// clears them when it ends: only the leader exports them.
func (s *Scheduler) exportBacklog(ctx context.Context) {
	defer s.backlog.Clear()
	for {
		counts, err := s.st.AllCounts(ctx)
		if err == nil {
			rows := make([]metrics.QueueCounts, 0, len(counts))
			for q, c := range counts {
				rows = append(rows, metrics.QueueCounts{Queue: q, Queued: c.Queued, Active: c.Active, Scheduled: c.Scheduled, Dead: c.Dead})
			}
			s.backlog.Set(rows)
		} else if ctx.Err() == nil {
			s.log.Warn("refresh backlog metrics", "err", err)
		}
		if !sleep(ctx, s.cfg.BacklogInterval) {
			return
		}
	}
}

type hint struct {
	partition int
	due       time.Time
}

// subscribe feeds schedule hints to out; it closes subscribed once Redis
// has confirmed the subscription. go-redis resubscribes after a reconnect.
func (s *Scheduler) subscribe(ctx context.Context, out chan<- hint, subscribed chan<- struct{}) {
	sub := s.st.SubscribeSchedule(ctx)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("subscribe to schedule hints", "err", err)
	}
	close(subscribed)
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			if p, due, ok := store.ParseScheduleHint(msg.Payload); ok {
				select {
				case out <- hint{p, due}:
				default: // the periodic refresh covers it
				}
			}
		}
	}
}

// promoteLoop sleeps until the earliest due time it knows, promotes what is
// due, and re-reads the timer index every poll interval.
func (s *Scheduler) promoteLoop(ctx context.Context, hints <-chan hint) {
	var next [task.Partitions]time.Time
	var refreshed time.Time
	for ctx.Err() == nil {
		now := s.clock.Now()
		if now.Sub(refreshed) >= s.cfg.PollInterval {
			nd, err := s.st.NextDues(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("read timer index", "err", err)
				}
				sleep(ctx, min(s.cfg.PollInterval, 100*time.Millisecond))
				continue
			}
			next, refreshed = nd, now
		}
		for p := range next {
			if next[p].IsZero() || next[p].After(now) {
				continue
			}
			next[p] = s.promotePartition(ctx, p)
		}
		wake := refreshed.Add(s.cfg.PollInterval)
		for _, t := range next {
			if !t.IsZero() && t.Before(wake) {
				wake = t
			}
		}
		timer := time.NewTimer(max(0, wake.Sub(s.clock.Now())))
		select {
		case <-ctx.Done():
		case <-timer.C:
		case h := <-hints:
			if next[h.partition].IsZero() || h.due.Before(next[h.partition]) {
				next[h.partition] = h.due
			}
		}
		timer.Stop()
	}
}

// promotePartition moves a partition's due tasks in batches and returns its
// next due time (zero: none; an error leaves it due, to try again soon).
func (s *Scheduler) promotePartition(ctx context.Context, p int) time.Time {
	for ctx.Err() == nil {
		r, err := s.st.Promote(ctx, p, s.cfg.PromoteBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("promote", "partition", p, "err", err)
			}
			return s.clock.Now().Add(100 * time.Millisecond)
		}
		now := s.clock.Now()
		s.m.Promoted.Add(float64(r.Moved))
		for _, due := range r.Dues {
			s.m.PromotionLag.Observe(max(0, now.Sub(due)).Seconds())
		}
		if r.Moved < s.cfg.PromoteBatch || !r.NextDue.Before(now) {
			return r.NextDue
		}
	}
	return time.Time{}
}

// janitor finishes deleting removed queues and puts back lost index entries.
func (s *Scheduler) janitor(ctx context.Context) {
	for sleep(ctx, s.cfg.JanitorInterval) {
		fixed := 0
		for p := range task.Partitions {
			tokens, err := s.st.TrashTokens(ctx, p)
			if err != nil {
				break
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
		names, err := s.st.QueueNames(ctx)
		if err != nil {
			continue
		}
		for i := 0; i < len(names) && ctx.Err() == nil; i += 500 {
			n, err := s.st.Repair(ctx, names[i:min(i+500, len(names))])
			if err != nil {
				s.log.Warn("janitor repair", "err", err)
				break
			}
			fixed += n
		}
		if fixed > 0 {
			s.m.JanitorFixes.Add(float64(fixed))
			s.log.Warn("janitor repaired index entries", "fixed", fixed)
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
