package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/task"
)

// Counts are a queue's live task counts.
type Counts struct {
	Queued    int64 `json:"queued"`    // in the stream, not yet delivered
	Active    int64 `json:"active"`    // delivered, not yet acknowledged (running or held for a retry)
	Scheduled int64 `json:"scheduled"` // waiting for a due time (timed, variable, relaxed retries)
	Dead      int64 `json:"dead"`
}

// Unfinished is what the legacy countQueue reports: every task not yet
// finished, future-dated ones included, dead ones not.
func (c Counts) Unfinished() int64 { return c.Queued + c.Active + c.Scheduled }

// QueueInfo is a queue's configuration and state.
type QueueInfo struct {
	Name    string
	Config  task.QueueConfig
	Paused  bool
	Created time.Time
	Owner   string // "<consumer>:<epoch>" of the dispatcher holding it, if any
	Counts  Counts
}

type queueReads struct {
	meta   *redis.MapStringStringCmd
	xlen   *redis.IntCmd
	pend   *redis.XPendingCmd
	sched  *redis.IntCmd
	dead   *redis.IntCmd
	leased *redis.StringCmd
}

func (s *Store) readQueue(ctx context.Context, p redis.Pipeliner, name string) *queueReads {
	k := s.keys.Queue(name)
	return &queueReads{
		meta:   p.HGetAll(ctx, k.Meta),
		xlen:   p.XLen(ctx, k.Stream),
		pend:   p.XPending(ctx, k.Stream, group),
		sched:  p.ZCard(ctx, k.Delayed),
		dead:   p.ZCard(ctx, k.Dead),
		leased: p.Get(ctx, k.Lease),
	}
}

const group = "htq"

func (r *queueReads) info(name string) (*QueueInfo, error) {
	m := r.meta.Val()
	if len(m) == 0 || m["cfg"] == "" {
		return nil, fmt.Errorf("%w: %q", task.ErrQueueNotFound, name)
	}
	qi := &QueueInfo{Name: name, Paused: m["paused"] == "1", Owner: r.leased.Val()}
	if err := json.Unmarshal([]byte(m["cfg"]), &qi.Config); err != nil {
		return nil, fmt.Errorf("queue %q: decode config: %w", name, err)
	}
	if ms, err := strconv.ParseInt(m["created"], 10, 64); err == nil {
		qi.Created = clock.FromMillis(ms)
	}
	var pending int64
	if r.pend.Err() == nil {
		pending = r.pend.Val().Count
	}
	qi.Counts = Counts{
		Queued:    max(0, r.xlen.Val()-pending),
		Active:    pending,
		Scheduled: r.sched.Val(),
		Dead:      r.dead.Val(),
	}
	return qi, nil
}

// GetQueue returns one queue.
func (s *Store) GetQueue(ctx context.Context, name string) (*QueueInfo, error) {
	p := s.rdb.Pipeline()
	r := s.readQueue(ctx, p, name)
	if _, err := p.Exec(ctx); err != nil && !isBenign(err) {
		return nil, fmt.Errorf("get queue %q: %w", name, err)
	}
	return r.info(name)
}

// isBenign reports pipeline errors that only mean "no such key or group":
// a missing lease (redis.Nil) or the XPENDING of a queue being deleted.
func isBenign(err error) bool {
	return errors.Is(err, redis.Nil) || redis.HasErrorPrefix(err, "NOGROUP")
}

// ListQueues returns up to limit queues whose names sort after the cursor
// (empty: from the start), and whether more follow. It reads the names
// index one page at a time: the cost is the page's, not all queues'.
func (s *Store) ListQueues(ctx context.Context, after string, limit int) ([]*QueueInfo, bool, error) {
	return s.ListQueuesPrefix(ctx, "", after, limit)
}

// ListQueuesPrefix is ListQueues restricted to the names that start with
// prefix (a range of the sorted name index: its cost follows the page, not
// the number of queues).
func (s *Store) ListQueuesPrefix(ctx context.Context, prefix, after string, limit int) ([]*QueueInfo, bool, error) {
	minLex, maxLex := "-", "+"
	if prefix != "" {
		// no UTF-8 name holds the byte 0xff: every name with the prefix sorts below this
		minLex, maxLex = "["+prefix, "["+prefix+"\xff"
	}
	if after != "" && (prefix == "" || after >= prefix) {
		minLex = "(" + after
	}
	var out []*QueueInfo
	for {
		want := limit + 1 - len(out)
		if limit <= 0 {
			want = 1000
		}
		names, err := s.rdb.ZRangeByLex(ctx, s.keys.Names(), &redis.ZRangeBy{Min: minLex, Max: maxLex, Count: int64(want)}).Result()
		if err != nil {
			return nil, false, fmt.Errorf("list queues: %w", err)
		}
		infos, err := s.queueInfos(ctx, names)
		if err != nil {
			return nil, false, err
		}
		if len(infos) < len(names) {
			s.dropNames(ctx, names, infos) // deleted queues whose names stayed behind
		}
		out = append(out, infos...)
		if len(names) < want {
			return out, false, nil // the index is exhausted
		}
		if limit > 0 && len(out) > limit {
			return out[:limit], true, nil
		}
		minLex = "(" + names[len(names)-1]
	}
}

// youngNames remembers the young queues (created less than 5 s ago, the
// enqueue script's YOUNG_MS) this store has added to the names index, by
// name with their creation time, so that a burst of enqueues into a new
// queue adds its name once per process; a queue deleted and created again
// under the same name has another creation time.
type youngNames struct {
	mu     sync.Mutex
	listed map[string]int64 // name → creation time (ms) of the queue listed
	prune  int              // the size at which old entries are next dropped
}

// youngKeep is how long after its creation an entry is worth keeping: past
// the young window the script no longer reports the queue.
const youngKeep = 10_000 // ms

// listYoung adds a young queue's name to the names index unless this store
// already did.
func (s *Store) listYoung(ctx context.Context, name string, created int64) {
	y := &s.young
	y.mu.Lock()
	done := y.listed[name] == created
	y.mu.Unlock()
	if done || s.addName(ctx, name) != nil {
		return
	}
	now := s.nowMs()
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.listed == nil {
		y.listed = make(map[string]int64)
	}
	if len(y.listed) >= y.prune {
		for n, c := range y.listed {
			if now-c > youngKeep {
				delete(y.listed, n)
			}
		}
		y.prune = max(1024, 2*len(y.listed)) // a burst of new queues costs amortised O(1) each
	}
	y.listed[name] = created
}

// dropNames removes from the names index the names that had no queue when
// the listing read them. A queue of that name may have been created since
// (its creator's ZADD NX found the name still indexed and did nothing), so
// after the ZREM it looks again and puts back the names whose queue exists.
// A creator that adds its name after the ZREM needs no help; one that did
// so before it is seen by the look.
func (s *Store) dropNames(ctx context.Context, names []string, found []*QueueInfo) {
	have := make(map[string]bool, len(found))
	for _, qi := range found {
		have[qi.Name] = true
	}
	var gone []any
	for _, n := range names {
		if !have[n] {
			gone = append(gone, n)
		}
	}
	if len(gone) == 0 {
		return
	}
	// best effort: a failed ZREM is tried again on the next list, and a
	// failed look-again leaves the name to the janitor's repair sweep
	if s.rdb.ZRem(ctx, s.keys.Names(), gone...).Err() != nil {
		return
	}
	pipe := s.rdb.Pipeline()
	exists := make([]*redis.IntCmd, len(gone))
	for i, n := range gone {
		exists[i] = pipe.Exists(ctx, s.keys.Queue(n.(string)).Meta)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return
	}
	for i, n := range gone {
		if exists[i].Val() == 1 {
			_ = s.addName(ctx, n.(string)) // best effort (addName)
		}
	}
}

// QueueCount returns the number of queues.
func (s *Store) QueueCount(ctx context.Context) (int64, error) {
	n, err := s.rdb.ZCard(ctx, s.keys.Names()).Result()
	if err != nil {
		return 0, fmt.Errorf("count queues: %w", err)
	}
	return n, nil
}

func (s *Store) queueInfos(ctx context.Context, names []string) ([]*QueueInfo, error) {
	p := s.rdb.Pipeline()
	reads := make([]*queueReads, len(names))
	for i, n := range names {
		reads[i] = s.readQueue(ctx, p, n)
	}
	if len(names) > 0 {
		if _, err := p.Exec(ctx); err != nil && !isBenign(err) {
			return nil, fmt.Errorf("list queues: %w", err)
		}
	}
	out := make([]*QueueInfo, 0, len(names))
	for i, n := range names {
		qi, err := reads[i].info(n)
		if errors.Is(err, task.ErrQueueNotFound) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, err
		}
		out = append(out, qi)
	}
	return out, nil
}

// CountUnfinished is the legacy countQueue: tasks not yet finished, 0 for
// an unknown queue.
func (s *Store) CountUnfinished(ctx context.Context, name string) (int64, error) {
	k := s.keys.Queue(name)
	p := s.rdb.Pipeline()
	xl := p.XLen(ctx, k.Stream)
	zc := p.ZCard(ctx, k.Delayed)
	if _, err := p.Exec(ctx); err != nil {
		return 0, fmt.Errorf("count queue %q: %w", name, err)
	}
	return xl.Val() + zc.Val(), nil
}

// DeleteQueue removes a queue and all its tasks. The queue disappears at
// once; its tasks are deleted in batches before DeleteQueue returns (or, if
// that fails or the caller gives up, by the scheduler's janitor).
func (s *Store) DeleteQueue(ctx context.Context, name string) error {
	k := s.keys.Queue(name)
	v, err := s.run(ctx, s.sc.queueDelete, k.Partition,
		[]string{k.Meta, k.Stream, k.Delayed, k.Dead, k.Lease, k.Ready, k.Timers, k.Registry, k.Trash, k.Epoch},
		k.Tag, name)
	if err != nil {
		return err
	}
	token, err := asString(v)
	if err != nil {
		return fmt.Errorf("delete queue %q: %w", name, err)
	}
	if token == "0" {
		return fmt.Errorf("%w: %q", task.ErrQueueNotFound, name)
	}
	_ = s.rdb.ZRem(ctx, s.keys.Names(), name).Err() // best effort: a list drops a name left behind
	// The queue is gone. Deleting its tasks now is best effort: whatever is
	// left (the caller gave up, Redis failed) the scheduler's janitor finishes.
	for {
		n, err := s.DrainTrash(ctx, k.Partition, token)
		if err != nil || n == 0 {
			return nil //nolint:nilerr // the delete itself succeeded; the janitor finishes the cleanup
		}
	}
}

// trashBatch bounds the work of one trash_drain call.
const trashBatch = 500

// DrainTrash deletes a batch of a deleted queue's tasks and returns how many
// it deleted (0: finished).
func (s *Store) DrainTrash(ctx context.Context, partition int, token string) (int64, error) {
	v, err := s.run(ctx, s.sc.trashDrain, partition, []string{s.keys.Trash(partition)}, s.keys.Part(partition), token, trashBatch)
	if err != nil {
		return 0, err
	}
	n, err := asInt(v)
	if err != nil {
		return 0, fmt.Errorf("drain trash: %w", err)
	}
	return n, nil
}

// SetPaused pauses or resumes a queue.
func (s *Store) SetPaused(ctx context.Context, name string, paused bool) error {
	k := s.keys.Queue(name)
	flag := "0"
	if paused {
		flag = "1"
	}
	v, err := s.run(ctx, s.sc.pause, k.Partition, []string{k.Meta, k.Stream, k.Lease, k.Ready},
		k.Tag, name, s.nowMs(), flag)
	if err != nil {
		return err
	}
	if n, err := asInt(v); err != nil {
		return fmt.Errorf("pause %q: %w", name, err)
	} else if n == 0 {
		return fmt.Errorf("%w: %q", task.ErrQueueNotFound, name)
	}
	return nil
}

// Purge removes a queue's waiting tasks (queued and scheduled; calls in
// flight finish, dead letters stay) and returns how many it removed.
func (s *Store) Purge(ctx context.Context, name string) (int64, error) {
	k := s.keys.Queue(name)
	var total int64
	for {
		v, err := s.run(ctx, s.sc.purge, k.Partition, []string{k.Meta, k.Stream, k.Delayed, k.Timers, k.Ready, k.Lease}, k.Tag, name, trashBatch)
		if err != nil {
			return total, fmt.Errorf("purge %q: %w", name, err)
		}
		n, err := asInt(v)
		if err != nil {
			return total, fmt.Errorf("purge %q: %w", name, err)
		}
		if n < 0 {
			return 0, fmt.Errorf("%w: %q", task.ErrQueueNotFound, name)
		}
		if n == 0 {
			return total, nil
		}
		total += n
	}
}

// ActiveCounts returns the task counts of every queue that has work or dead
// letters (every other queue counts zero everywhere): the members of the
// ready, timer and dead-letter indexes of the partitions the due indexes
// list. Its cost is proportional to those queues, not to all queues.
func (s *Store) ActiveCounts(ctx context.Context) (map[string]Counts, error) {
	queues := make(map[string]bool)
	for _, kind := range []DueKind{DueReady, DueTimers, DueDead} { // the indexes of queues
		parts, err := s.AllDue(ctx, kind)
		if err != nil {
			return nil, err
		}
		p := s.rdb.Pipeline()
		cmds := make([]*redis.StringSliceCmd, len(parts))
		for i, e := range parts {
			cmds[i] = p.ZRange(ctx, s.keys.partIndex(kind, e.Partition), 0, -1)
		}
		if len(parts) > 0 {
			if _, err := p.Exec(ctx); err != nil {
				return nil, fmt.Errorf("count queues: %w", err)
			}
		}
		for _, c := range cmds {
			for _, q := range c.Val() {
				queues[q] = true
			}
		}
	}
	names := make([]string, 0, len(queues))
	for q := range queues {
		names = append(names, q)
	}
	out := make(map[string]Counts, len(names))
	const chunk = 1000
	for i := 0; i < len(names); i += chunk {
		part := names[i:min(i+chunk, len(names))]
		p := s.rdb.Pipeline()
		type reads struct {
			xlen, sched, dead *redis.IntCmd
			pend              *redis.XPendingCmd
		}
		rs := make([]reads, len(part))
		for j, n := range part {
			k := s.keys.Queue(n)
			rs[j] = reads{p.XLen(ctx, k.Stream), p.ZCard(ctx, k.Delayed), p.ZCard(ctx, k.Dead), p.XPending(ctx, k.Stream, group)}
		}
		if _, err := p.Exec(ctx); err != nil && !isBenign(err) {
			return nil, fmt.Errorf("count queues: %w", err)
		}
		for j, n := range part {
			var pending int64
			if rs[j].pend.Err() == nil {
				pending = rs[j].pend.Val().Count
			}
			out[n] = Counts{
				Queued: max(0, rs[j].xlen.Val()-pending), Active: pending,
				Scheduled: rs[j].sched.Val(), Dead: rs[j].dead.Val(),
			}
		}
	}
	return out, nil
}
