package store

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/task"
)

// DueKind names a kind of per-partition index that a global due index sums
// up. A due index holds, per partition, a time at or before which that
// partition's index may hold an entry that needs acting on; a poller reads
// the due index (one command, whatever the number of partitions and queues)
// instead of every partition's index.
//
// The invariant, for every partition p: due[p] <= the earliest score in p's
// index, whenever that index is not empty. Two rules keep it:
//
//   - Whoever adds an entry to a partition's index, or moves one earlier,
//     lowers due[p] to it (every script reports such moves as marks, and the
//     store applies them with ZADD LT, asynchronously: see dueMarker).
//     Entries only moved later (a lease renewed) need nothing.
//   - A poller that finds due[p] passed raises it to the earliest entry it
//     then reads, or removes it when the index is empty, but only if due[p]
//     is still what it saw (compare and set, lua/due_settle.lua), and then
//     reads the index again and lowers due[p] if an earlier entry arrived
//     in between. An entry written before that second read is seen by it;
//     one written after it is marked after the compare and set.
//
// A queue whose wake-up hint a dispatcher heard is listed in the ready index
// HintGrace ahead (and so marked), not at once: see HintGrace.
//
// A mark can be lost (a process dies between a script and its mark, or
// while a mark ahead of its time waits to share a round: see dueMarker); the
// scheduler leader's janitor lowers every due entry to its partition's
// earliest on a slow full pass (Store.JanitorPass), and the announcement
// that goes with most marks (a hint) makes the loss harmless meanwhile.
type DueKind int

// Due index kinds.
const (
	DueReady     DueKind = iota // the ready index: queues to claim (read by dispatchers)
	DueTimers                   // the timer index: delayed tasks to promote (read by the scheduler leader)
	DueDead                     // the deadq index: dead letters to trim (read by the janitor)
	DueSchedules                // the schedule index: schedules to fire (read by the scheduler leader)
	dueKinds     = 4
)

func (k DueKind) String() string {
	switch k {
	case DueReady:
		return "ready"
	case DueTimers:
		return "timers"
	case DueDead:
		return "dead"
	case DueSchedules:
		return "schedules"
	}
	return "kind" + strconv.Itoa(int(k))
}

// partIndex is the partition index that kind sums up.
func (k *Keys) partIndex(kind DueKind, p int) string {
	switch kind {
	case DueTimers:
		return k.Timers(p)
	case DueDead:
		return k.DeadQueues(p)
	case DueSchedules:
		return k.Schedules(p)
	default:
		return k.Ready(p)
	}
}

// DueEntry is one partition's entry in a due index.
type DueEntry struct {
	Partition int
	At        int64 // ms since the epoch
}

// Time returns the entry's time.
func (e DueEntry) Time() time.Time { return clock.FromMillis(e.At) }

// Due reads a due index: up to limit partitions due at or before now, and
// the first peek partitions due after now (so a poller knows when to look
// next).
func (s *Store) Due(ctx context.Context, kind DueKind, limit, peek int) (due, later []DueEntry, err error) {
	return s.DueAhead(ctx, kind, limit, peek, 0)
}

// DueAhead is Due with "now" moved ahead by ahead.
func (s *Store) DueAhead(ctx context.Context, kind DueKind, limit, peek int, ahead time.Duration) (due, later []DueEntry, err error) {
	now := strconv.FormatInt(s.nowMs()+ahead.Milliseconds(), 10)
	key := s.keys.DueIndex(kind)
	p := s.rdb.Pipeline()
	dc := p.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: "-inf", Max: now, Count: int64(limit)})
	var lc *redis.ZSliceCmd
	if peek > 0 {
		lc = p.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: "(" + now, Max: "+inf", Count: int64(peek)})
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("read %s due index: %w", kind, err)
	}
	if due, err = dueEntries(dc.Val()); err != nil {
		return nil, nil, err
	}
	if lc != nil {
		if later, err = dueEntries(lc.Val()); err != nil {
			return nil, nil, err
		}
	}
	return due, later, nil
}

// AllDue returns every entry of a due index (the partitions whose index is
// not empty, as far as the index knows).
func (s *Store) AllDue(ctx context.Context, kind DueKind) ([]DueEntry, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.keys.DueIndex(kind), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s due index: %w", kind, err)
	}
	return dueEntries(zs)
}

func dueEntries(zs []redis.Z) ([]DueEntry, error) {
	out := make([]DueEntry, 0, len(zs))
	for _, z := range zs {
		name, _ := z.Member.(string)
		p, err := strconv.Atoi(name)
		if err != nil || p < 0 || p >= task.Partitions {
			return nil, badReply("due index member", z.Member)
		}
		out = append(out, DueEntry{Partition: p, At: int64(math.Round(z.Score))})
	}
	return out, nil
}

// partMin reads the earliest score of a partition's index.
func (s *Store) partMin(ctx context.Context, kind DueKind, p int) (int64, bool, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.keys.partIndex(kind, p), 0, 0).Result()
	if err != nil {
		return 0, false, fmt.Errorf("read %s index of partition %d: %w", kind, p, err)
	}
	if len(zs) == 0 {
		return 0, false, nil
	}
	return int64(math.Round(zs[0].Score)), true, nil
}

// Settle moves a partition's due entry, which its poller found passed at
// seen, to the earliest entry of the partition's index, or removes it when
// that index is empty; see DueKind for why this never loses an entry.
func (s *Store) Settle(ctx context.Context, kind DueKind, p int, seen int64) error {
	first, ok, err := s.partMin(ctx, kind, p)
	if err != nil {
		return err
	}
	if ok && first <= seen {
		return nil // still due: leave it
	}
	newScore := ""
	if ok {
		newScore = strconv.FormatInt(first, 10)
	}
	if _, err := s.run(ctx, s.sc.dueSettle, -1, []string{s.keys.DueIndex(kind)}, p, seen, newScore); err != nil {
		return fmt.Errorf("settle %s due entry of partition %d: %w", kind, p, err)
	}
	again, ok2, err := s.partMin(ctx, kind, p)
	if err != nil {
		return err
	}
	if ok2 && (!ok || again < first) {
		if err := s.rdb.ZAddLT(ctx, s.keys.DueIndex(kind), redis.Z{Score: float64(again), Member: p}).Err(); err != nil {
			return fmt.Errorf("lower %s due entry of partition %d: %w", kind, p, err)
		}
	}
	return nil
}

// dueMarker applies scripts' marks to the due indexes. Marks are applied
// asynchronously, coalesced per (kind, partition) to the earliest, in one
// pipeline per round, so that they cost the caller no round trip: the hint
// that goes with a ready mark is what makes pick-up fast, the mark only
// keeps the queue from being forgotten if that hint is lost. A ready mark
// for a time ahead (a heard hint's HintGrace, a lease expiry, a retry)
// waits up to markDefer, and no later than markLead before its time, so that the
// marks of many scripts share a round (one request per round rather than
// per wake-up); a mark due now goes at once and takes the waiting ones
// along. A round that fails is tried again with a backoff while the marks
// wait (at most one per kind and partition).
type dueMarker struct {
	rdb   redis.UniversalClient
	keys  *Keys
	clock clock.Clock

	mu      sync.Mutex
	pending map[dueKey]dueMark
	running bool
	closed  bool
	force   bool          // apply every mark now (flush, close)
	kick    chan struct{} // wakes a loop waiting for a deferred mark
	idle    *sync.Cond    // signalled when a round ends with nothing pending
}

// How long a mark ahead of its time may wait to share a round.
const (
	markDefer = time.Second            // at most this long after its script
	markLead  = 250 * time.Millisecond // and at least this long before its time
)

type dueKey struct {
	kind DueKind
	p    int
}

// dueMark is a mark waiting: its time and when it must be applied (ms).
type dueMark struct{ at, by int64 }

func newDueMarker(rdb redis.UniversalClient, keys *Keys, clk clock.Clock) *dueMarker {
	m := &dueMarker{rdb: rdb, keys: keys, clock: clk, pending: make(map[dueKey]dueMark), kick: make(chan struct{}, 1)}
	m.idle = sync.NewCond(&m.mu)
	return m
}

// add records a script's marks for partition p.
func (m *dueMarker) add(p int, mk marks) {
	if mk == (marks{}) {
		return
	}
	now := clock.Millis(m.clock.Now())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for kind, at := range mk {
		if at <= 0 {
			continue
		}
		k := dueKey{DueKind(kind), p}
		by := min(at-markLead.Milliseconds(), now+markDefer.Milliseconds())
		if DueKind(kind) != DueReady {
			// The scheduler leader sleeps until the earliest timer or
			// schedule entry it sees: one that waited here would be seen
			// only at its next poll (up to scheduler.poll_interval late).
			// Only ready marks, many and a safety net behind a hint, wait.
			by = now
		}
		cur, ok := m.pending[k]
		if !ok || at < cur.at {
			cur.at = at
		}
		if !ok || by < cur.by {
			cur.by = by
		}
		m.pending[k] = cur
	}
	if !m.running {
		m.running = true
		go m.loop()
		return
	}
	m.wake() // the loop may be waiting for a later mark than this one's
}

// wake tells a waiting loop to look again (m.mu held or not).
func (m *dueMarker) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *dueMarker) loop() {
	backoff := 50 * time.Millisecond
	for {
		m.mu.Lock()
		if len(m.pending) == 0 {
			m.running, m.force = false, false
			m.idle.Broadcast()
			m.mu.Unlock()
			return
		}
		if !m.force {
			now := clock.Millis(m.clock.Now())
			first := int64(math.MaxInt64)
			for _, mk := range m.pending {
				first = min(first, mk.by)
			}
			if first > now {
				m.mu.Unlock()
				t := time.NewTimer(time.Duration(first-now) * time.Millisecond)
				select {
				case <-t.C:
				case <-m.kick:
				}
				t.Stop()
				continue
			}
		}
		batch := m.pending
		m.pending = make(map[dueKey]dueMark, len(batch))
		closed := m.closed
		m.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := m.apply(ctx, batch)
		cancel()
		if err == nil {
			backoff = 50 * time.Millisecond
			continue
		}
		if closed {
			continue // closing: the marks are dropped (the janitor's pass covers them)
		}
		m.mu.Lock()
		for k, mk := range batch {
			cur, ok := m.pending[k]
			if !ok || mk.at < cur.at {
				cur.at = mk.at
			}
			if !ok || mk.by < cur.by {
				cur.by = mk.by
			}
			m.pending[k] = cur
		}
		m.mu.Unlock()
		time.Sleep(backoff) // the marks wait; nothing else is held
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (m *dueMarker) apply(ctx context.Context, batch map[dueKey]dueMark) error {
	p := m.rdb.Pipeline()
	for k, mk := range batch {
		p.ZAddLT(ctx, m.keys.DueIndex(k.kind), redis.Z{Score: float64(mk.at), Member: k.p})
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("mark due partitions: %w", err)
	}
	return nil
}

// applyNow applies a script's marks for partition p before it returns, for
// a caller whose next step is a look at the due index that must see them.
// Marks it could not apply are left to the asynchronous rounds.
func (m *dueMarker) applyNow(ctx context.Context, p int, mk marks) error {
	batch := make(map[dueKey]dueMark, dueKinds)
	for kind, at := range mk {
		if at > 0 {
			batch[dueKey{DueKind(kind), p}] = dueMark{at: at}
		}
	}
	if len(batch) == 0 {
		return nil
	}
	if err := m.apply(ctx, batch); err != nil {
		m.add(p, mk)
		return err
	}
	return nil
}

// flush applies every mark added so far, deferred ones included, and waits
// until they are applied (or the marker is closed, or ctx ends).
func (m *dueMarker) flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		m.idle.Broadcast()
		m.mu.Unlock()
	})
	defer stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		m.force = true
		m.wake()
	}
	for m.running && ctx.Err() == nil {
		m.idle.Wait()
	}
	return ctx.Err()
}

// close applies the marks waiting (one try) and stops taking new ones.
func (m *dueMarker) close(ctx context.Context) {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	_ = m.flush(ctx)
}
