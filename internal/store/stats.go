package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
)

// Per-minute outcome counters for the overview. A dispatcher's store adds
// each completion to a counter in memory; a flusher goroutine, running
// only while there is something to write, adds them to one global hash per
// minute, <prefix>stats:m:<unix minute> (fields succeeded, failed, dead),
// at most once a second, with a TTL of StatsTTL. Cost: per dispatcher and
// second with completions, one HINCRBY per outcome seen plus one EXPIRE,
// in one round trip; nothing per task in Redis. The keys are bounded:
// StatsTTL / 1 min of them at most.

// StatsTTL is how long a minute's counters are kept.
const StatsTTL = 3 * time.Hour

// statsFlushEvery is how often pending counts are written.
const statsFlushEvery = time.Second

// StatsKey returns the key of the counters of the minute starting at min
// (Unix minutes).
func (k *Keys) StatsKey(min int64) string { return k.global("stats:m:" + strconv.FormatInt(min, 10)) }

// BacklogKey is the overview's cached backlog snapshot (a hash).
func (k *Keys) BacklogKey() string { return k.global("stats:backlog") }

// BacklogLock keeps two API replicas from refreshing the snapshot at once.
func (k *Keys) BacklogLock() string { return k.global("stats:backlog:lock") }

type statKey struct {
	min int64
	typ string
}

// minuteCounter is the in-memory side of the counters.
type minuteCounter struct {
	rdb  redis.UniversalClient
	keys *Keys

	mu      sync.Mutex
	pending map[statKey]int64
	running bool
	closed  bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newMinuteCounter(rdb redis.UniversalClient, keys *Keys) *minuteCounter {
	return &minuteCounter{rdb: rdb, keys: keys, pending: make(map[statKey]int64), stop: make(chan struct{})}
}

// add counts one outcome at time ms.
func (c *minuteCounter) add(typ string, ms int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending[statKey{min: ms / 60000, typ: typ}]++
	if !c.running && !c.closed {
		c.running = true
		c.wg.Go(c.loop)
	}
}

// loop writes pending counts every statsFlushEvery until there are none.
func (c *minuteCounter) loop() {
	for {
		t := time.NewTimer(statsFlushEvery)
		select {
		case <-t.C:
		case <-c.stop:
			t.Stop()
		}
		c.mu.Lock()
		batch := c.pending
		c.pending = make(map[statKey]int64)
		if len(batch) == 0 || c.closed {
			c.running = false
			if len(batch) > 0 { // closing: put it back for close to write
				for k, n := range batch {
					c.pending[k] += n
				}
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.apply(ctx, batch) // lost on error: counters are best effort
		cancel()
	}
}

func (c *minuteCounter) apply(ctx context.Context, batch map[statKey]int64) error {
	p := c.rdb.Pipeline()
	seen := map[int64]bool{}
	for k, n := range batch {
		key := c.keys.StatsKey(k.min)
		p.HIncrBy(ctx, key, k.typ, n)
		if !seen[k.min] {
			seen[k.min] = true
			p.Expire(ctx, key, StatsTTL)
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("write counters: %w", err)
	}
	return nil
}

// close stops the flusher and writes what is pending.
func (c *minuteCounter) close(ctx context.Context) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.stop)
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	batch := c.pending
	c.pending = make(map[statKey]int64)
	c.mu.Unlock()
	if len(batch) > 0 {
		_ = c.apply(ctx, batch)
	}
}

// flush writes what is pending now (tests).
func (c *minuteCounter) flush(ctx context.Context) error {
	c.mu.Lock()
	batch := c.pending
	c.pending = make(map[statKey]int64)
	c.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	return c.apply(ctx, batch)
}

// countOutcome records a completion's outcome in the per-minute counters.
func (s *Store) countOutcome(o Outcome, ms int64) {
	switch o {
	case OutcomeSucceeded, OutcomeAgain:
		s.stats.add("succeeded", ms)
	case OutcomeRetry, OutcomeHold:
		s.stats.add("failed", ms)
	case OutcomeDead:
		s.stats.add("dead", ms)
	}
}

// FlushStats writes the counters pending in this store now (tests).
func (s *Store) FlushStats(ctx context.Context) error { return s.stats.flush(ctx) }

// MinuteCount is what finished in one minute.
type MinuteCount struct {
	Start     time.Time
	Succeeded int64
	Failed    int64
	Dead      int64
}

// Minutes returns the counters of the n minutes up to and including the
// current one, oldest first: one round trip of n HMGETs.
func (s *Store) Minutes(ctx context.Context, n int) ([]MinuteCount, error) {
	now := s.nowMs() / 60000
	p := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, n)
	for i := range n {
		cmds[i] = p.HMGet(ctx, s.keys.StatsKey(now-int64(n-1-i)), "succeeded", "failed", "dead")
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	out := make([]MinuteCount, n)
	for i, c := range cmds {
		v := c.Val()
		num := func(j int) int64 {
			if j >= len(v) {
				return 0
			}
			str, _ := v[j].(string)
			x, _ := strconv.ParseInt(str, 10, 64)
			return x
		}
		out[i] = MinuteCount{Start: clock.FromMillis((now - int64(n-1-i)) * 60000), Succeeded: num(0), Failed: num(1), Dead: num(2)}
	}
	return out, nil
}

// Backlog is a snapshot of the task counts of all queues.
type Backlog struct {
	Counts
	Queues int64
	At     time.Time // when it was taken
}

// CachedBacklog returns the last backlog snapshot (ok false when none).
func (s *Store) CachedBacklog(ctx context.Context) (b Backlog, ok bool, err error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.BacklogKey()).Result()
	if err != nil {
		return b, false, fmt.Errorf("read backlog: %w", err)
	}
	if len(m) == 0 {
		return b, false, nil
	}
	n := func(k string) int64 { x, _ := strconv.ParseInt(m[k], 10, 64); return x }
	b = Backlog{Counts: Counts{Queued: n("queued"), Active: n("active"), Scheduled: n("scheduled"), Dead: n("dead")},
		Queues: n("queues"), At: clock.FromMillis(n("at"))}
	return b, true, nil
}

// RefreshBacklog takes a new backlog snapshot and stores it, unless
// another caller took the refresh lock within lockFor (then it returns
// false). It reads every queue that has work or dead letters
// (ActiveCounts): its cost follows those, which is why callers cache it.
func (s *Store) RefreshBacklog(ctx context.Context, lockFor time.Duration) (bool, error) {
	got, err := s.rdb.SetNX(ctx, s.keys.BacklogLock(), "1", lockFor).Result()
	if err != nil {
		return false, fmt.Errorf("refresh backlog: %w", err)
	}
	if !got {
		return false, nil
	}
	counts, err := s.ActiveCounts(ctx)
	if err != nil {
		return false, err
	}
	total, err := s.QueueCount(ctx)
	if err != nil {
		return false, err
	}
	var sum Counts
	for _, c := range counts {
		sum.Queued += c.Queued
		sum.Active += c.Active
		sum.Scheduled += c.Scheduled
		sum.Dead += c.Dead
	}
	if err := s.rdb.HSet(ctx, s.keys.BacklogKey(), "queued", sum.Queued, "active", sum.Active, "scheduled", sum.Scheduled,
		"dead", sum.Dead, "queues", total, "at", s.nowMs()).Err(); err != nil {
		return false, fmt.Errorf("refresh backlog: %w", err)
	}
	return true, nil
}

// LeaderToken returns the scheduler leader lock's value (an opaque token
// of the holder; "" when no scheduler leads) and the current term.
func (s *Store) LeaderToken(ctx context.Context) (string, int64, error) {
	p := s.rdb.Pipeline()
	lock := p.Get(ctx, s.keys.LeaderLock())
	term := p.Get(ctx, s.keys.LeaderTerm())
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", 0, fmt.Errorf("read leader: %w", err)
	}
	t, _ := strconv.ParseInt(term.Val(), 10, 64)
	return lock.Val(), t, nil
}

// Member is a live dispatcher.
type Member struct {
	ID      string
	Expires time.Time // when its last heartbeat runs out
}

// LiveMembers returns the live dispatchers with their heartbeat expiry.
func (s *Store) LiveMembers(ctx context.Context) ([]Member, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.keys.Dispatchers(), &redis.ZRangeBy{
		Min: strconv.FormatInt(s.nowMs(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read dispatchers: %w", err)
	}
	out := make([]Member, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		out = append(out, Member{ID: id, Expires: clock.FromMillis(int64(z.Score))})
	}
	return out, nil
}
