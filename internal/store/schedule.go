package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/task"
)

// Promoted is the result of one promote call.
type Promoted struct {
	Moved   int
	NextDue time.Time   // zero when nothing is delayed in the partition
	Dues    []time.Time // due time of every task moved
}

// Promote moves up to limit due tasks of a partition into their streams.
func (s *Store) Promote(ctx context.Context, partition, limit int) (*Promoted, error) {
	v, err := s.run(ctx, "promote", []string{s.keys.Timers(partition), s.keys.Ready(partition)},
		s.keys.Part(partition), s.nowMs(), limit, s.keys.DispatchChannel(), partition)
	if err != nil {
		return nil, fmt.Errorf("promote partition %d: %w", partition, err)
	}
	r, err := replyList(v)
	if err != nil || len(r) < 2 {
		return nil, fmt.Errorf("promote partition %d: unexpected reply %v", partition, v)
	}
	p := &Promoted{Moved: int(i64(r[0])), Dues: make([]time.Time, 0, len(r)-2)}
	if next := i64(r[1]); next >= 0 {
		p.NextDue = clock.FromMillis(next)
	}
	for _, d := range r[2:] {
		p.Dues = append(p.Dues, clock.FromMillis(i64(d)))
	}
	return p, nil
}

// NextDues returns each partition's earliest due time (zero: none).
func (s *Store) NextDues(ctx context.Context) ([task.Partitions]time.Time, error) {
	var out [task.Partitions]time.Time
	p := s.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, task.Partitions)
	for i := range cmds {
		cmds[i] = p.ZRangeWithScores(ctx, s.keys.Timers(i), 0, 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		return out, fmt.Errorf("read timer index: %w", err)
	}
	for i, c := range cmds {
		if z := c.Val(); len(z) > 0 {
			out[i] = clock.FromMillis(int64(z[0].Score))
		}
	}
	return out, nil
}

// SubscribeSchedule subscribes to the hints that a partition's earliest due
// time moved earlier; see ParseScheduleHint.
func (s *Store) SubscribeSchedule(ctx context.Context) *redis.PubSub {
	return s.rdb.Subscribe(ctx, s.keys.ScheduleChannel())
}

// ParseScheduleHint reads "<partition>:<due ms>".
func ParseScheduleHint(payload string) (partition int, due time.Time, ok bool) {
	ps, ds, found := strings.Cut(payload, ":")
	if !found {
		return 0, time.Time{}, false
	}
	p, err1 := strconv.Atoi(ps)
	d, err2 := strconv.ParseInt(ds, 10, 64)
	if err1 != nil || err2 != nil || p < 0 || p >= task.Partitions {
		return 0, time.Time{}, false
	}
	return p, clock.FromMillis(d), true
}

// TrashTokens returns the deleted queues of a partition still being cleaned.
func (s *Store) TrashTokens(ctx context.Context, partition int) ([]string, error) {
	v, err := s.rdb.SMembers(ctx, s.keys.Trash(partition)).Result()
	if err != nil {
		return nil, fmt.Errorf("read trash of partition %d: %w", partition, err)
	}
	return v, nil
}

// Repair checks the index entries of the given queues and fixes missing
// ones; it returns how many it fixed.
func (s *Store) Repair(ctx context.Context, queues []string) (int, error) {
	now := s.nowMs()
	p := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(queues))
	for i, q := range queues {
		k := s.keys.Queue(q)
		cmds[i] = s.sc.get("repair").Run(ctx, p,
			[]string{k.Meta, k.Stream, k.Lease, k.Ready, k.Delayed, k.Timers}, q, now)
	}
	if len(queues) == 0 {
		return 0, nil
	}
	if _, err := p.Exec(ctx); err != nil {
		if !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return 0, fmt.Errorf("repair: %w", err)
		}
		// Redis lost its script cache (a restart): load the scripts, try once more.
		if err := s.Init(ctx); err != nil {
			return 0, err
		}
		return s.Repair(ctx, queues)
	}
	fixed := 0
	for _, c := range cmds {
		fixed += int(i64(c.Val()))
	}
	return fixed, nil
}
