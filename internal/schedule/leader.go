package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/lease"
)

// Term is one period of leadership.
type Term struct {
	Epoch int64 // grows with every term, across all schedulers
	ctx   context.Context
}

// Context is cancelled when the term ends (or could have ended).
func (t *Term) Context() context.Context { return t.ctx }

// Elector takes and keeps the leader lock.
type Elector struct {
	mutex    *redsync.Mutex
	lockKey  string
	termKey  string
	rdb      redis.UniversalClient
	ttl      time.Duration
	clock    clock.Clock
	log      *slog.Logger
	onChange func(leader bool)
}

// NewElector returns an elector for the lock key.
func NewElector(rdb redis.UniversalClient, lockKey, termKey string, ttl time.Duration, clk clock.Clock, log *slog.Logger, onChange func(bool)) *Elector {
	rs := redsync.New(goredis.NewPool(rdb))
	m := rs.NewMutex(lockKey,
		redsync.WithExpiry(ttl),
		redsync.WithTries(1),
		redsync.WithDriftFactor(0.01),
		redsync.WithTimeoutFactor(0.05),
	)
	return &Elector{mutex: m, lockKey: lockKey, termKey: termKey, rdb: rdb, ttl: ttl, clock: clk, log: log, onChange: onChange}
}

// Run campaigns until ctx is cancelled, calling lead for every term won; lead
// must return when the term's context is done. On return the lock is given
// up, so a standby takes over at once.
func (e *Elector) Run(ctx context.Context, lead func(*Term)) {
	for ctx.Err() == nil {
		sent := e.clock.Now()
		err := e.mutex.TryLockContext(ctx)
		if err != nil {
			var taken *redsync.ErrTaken
			if !errors.As(err, &taken) && !errors.Is(err, redsync.ErrFailed) && ctx.Err() == nil {
				e.log.Warn("leader election", "err", err)
			}
			e.wait(ctx, e.untilFree(ctx))
			continue
		}
		epoch, err := e.rdb.Incr(ctx, e.termKey).Result()
		if err != nil {
			e.log.Warn("leader term", "err", err)
			e.unlock()
			e.wait(ctx, e.ttl/3)
			continue
		}
		e.serve(ctx, epoch, sent, lead)
	}
}

// serve holds one term: it extends the lock every TTL/3 and ends the term at
// the first failure, or when the lock could have expired (lease.Validity:
// the last extension's send time plus the TTL, less a tenth of it).
func (e *Elector) serve(ctx context.Context, epoch int64, sent time.Time, lead func(*Term)) {
	termCtx, end := context.WithCancel(ctx)
	defer end()
	valid := lease.New(e.ttl, e.ttl/10, sent)
	e.log.Info("became leader", "epoch", epoch)
	e.onChange(true)
	defer e.onChange(false)

	var wg sync.WaitGroup
	wg.Go(func() {
		defer end()
		for {
			next := min(e.ttl/3, valid.Until().Sub(e.clock.Now()))
			if next <= 0 || !e.wait(termCtx, next) {
				if next <= 0 {
					e.log.Warn("leader lock may have expired: stepping down", "epoch", epoch)
				}
				return
			}
			if !valid.Valid(e.clock.Now()) {
				e.log.Warn("leader lock may have expired: stepping down", "epoch", epoch)
				return
			}
			at := e.clock.Now()
			ok, err := e.mutex.ExtendContext(termCtx)
			if err != nil || !ok {
				if termCtx.Err() == nil {
					e.log.Warn("leader lock extension failed: stepping down", "epoch", epoch, "err", err)
				}
				valid.Lose()
				return
			}
			valid.Extended(at)
		}
	})
	lead(&Term{Epoch: epoch, ctx: termCtx})
	end()
	wg.Wait()
	e.unlock()
	e.log.Info("leadership ended", "epoch", epoch)
}

// untilFree returns how long to wait before campaigning again: until just
// after the current leader's lock expires (so a dead leader is replaced as
// soon as its lock runs out), at most a third of the TTL.
func (e *Elector) untilFree(ctx context.Context) time.Duration {
	pttl, err := e.rdb.PTTL(ctx, e.lockKey).Result()
	if err != nil || pttl <= 0 {
		return e.ttl / 10
	}
	return min(pttl+5*time.Millisecond, e.ttl/3)
}

func (e *Elector) unlock() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = e.mutex.UnlockContext(ctx)
}

// wait sleeps about d (jittered by ±10%), reporting false if ctx ended first.
func (e *Elector) wait(ctx context.Context, d time.Duration) bool {
	d = time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// String names the elector for logs.
func (e *Elector) String() string { return fmt.Sprintf("elector(ttl=%s)", e.ttl) }
