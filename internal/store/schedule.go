package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
)

// Promoted is the result of one promote call.
type Promoted struct {
	Moved   int
	NextDue time.Time   // zero when nothing is delayed in the partition
	Dues    []time.Time // due time of every task moved
}

// Promote moves up to limit due tasks of a partition into their streams.
func (s *Store) Promote(ctx context.Context, partition, limit int) (*Promoted, error) {
	v, err := s.run(ctx, s.sc.promote, partition, []string{s.keys.Timers(partition), s.keys.Ready(partition)},
		s.keys.Part(partition), s.nowMs(), limit)
	if err != nil {
		return nil, fmt.Errorf("promote partition %d: %w", partition, err)
	}
	rd := newReader("promote", v)
	p := &Promoted{Moved: int(rd.int())}
	if next := rd.int(); next >= 0 {
		p.NextDue = clock.FromMillis(next)
	}
	p.Dues = make([]time.Time, 0, rd.left())
	for rd.left() > 0 {
		p.Dues = append(p.Dues, clock.FromMillis(rd.int()))
	}
	if rd.err != nil {
		return nil, fmt.Errorf("promote partition %d: %w", partition, rd.err)
	}
	return p, nil
}

// seqsScan bounds the entries of a partition's seqs hash one janitor pass
// looks at.
const seqsScan = 100

// JanitorPass is the janitor's slow look at partition p (lua/janitor.lua):
// it lowers the partition's entries in the due indexes to its indexes'
// earliest entries, prunes the sequences kept for deleted queue names once
// the clock has passed them (cursor: where the last pass stopped, "0" to
// start), and reports how many deleted queues wait in its trash.
func (s *Store) JanitorPass(ctx context.Context, p int, cursor string) (trash int64, next string, err error) {
	v, err := s.run(ctx, s.sc.janitor, p,
		[]string{s.keys.Ready(p), s.keys.Timers(p), s.keys.DeadQueues(p), s.keys.Trash(p), s.keys.Seqs(p), s.keys.Schedules(p)},
		s.nowMs(), seqsScan, cursor)
	if err != nil {
		return 0, cursor, fmt.Errorf("janitor partition %d: %w", p, err)
	}
	rd := newReader("janitor", v)
	trash, next = rd.int(), rd.str()
	if rd.err != nil {
		return 0, cursor, fmt.Errorf("janitor partition %d: %w", p, rd.err)
	}
	return trash, next, nil
}

// TrimDead drops the dead letters of up to limit queues of partition p that
// are past their queue's dead-letter retention, and returns how many it
// dropped.
func (s *Store) TrimDead(ctx context.Context, p, limit int) (int64, error) {
	v, err := s.run(ctx, s.sc.deadTrim, p, []string{s.keys.DeadQueues(p)}, s.keys.Part(p), s.nowMs(), limit)
	if err != nil {
		return 0, fmt.Errorf("trim dead letters of partition %d: %w", p, err)
	}
	n, err := asInt(v)
	if err != nil {
		return 0, fmt.Errorf("trim dead letters of partition %d: %w", p, err)
	}
	return n, nil
}

// TrashTokens returns the deleted queues of a partition still being cleaned.
func (s *Store) TrashTokens(ctx context.Context, partition int) ([]string, error) {
	v, err := s.rdb.SMembers(ctx, s.keys.Trash(partition)).Result()
	if err != nil {
		return nil, fmt.Errorf("read trash of partition %d: %w", partition, err)
	}
	return v, nil
}

// Repaired is what one repair sweep step did.
type Repaired struct {
	Checked   int    // queues looked at
	Fixed     int    // index entries put back
	Consumers int    // idle stream consumers removed
	Next      uint64 // cursor for the next step; 0: the sweep of the partition is complete
}

// RepairStep checks about count queues of partition p, from cursor (0: the
// start), with lua/repair.lua, and makes sure each is in the names index.
func (s *Store) RepairStep(ctx context.Context, p int, cursor uint64, count int) (Repaired, error) {
	names, next, err := s.rdb.SScan(ctx, s.keys.Registry(p), cursor, "", int64(count)).Result()
	if err != nil {
		return Repaired{}, fmt.Errorf("scan registry of partition %d: %w", p, err)
	}
	r := Repaired{Checked: len(names), Next: next}
	if len(names) == 0 {
		return r, nil
	}
	now := s.nowMs()
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(names))
	for i, q := range names {
		k := s.keys.Queue(q)
		cmds[i] = s.variant(s.sc.repair).EvalSha(ctx, pipe,
			[]string{k.Meta, k.Stream, k.Lease, k.Ready, k.Delayed, k.Timers, k.Dead}, k.Tag, q, now)
	}
	zs := make([]redis.Z, len(names))
	for i, q := range names {
		zs[i] = redis.Z{Member: q}
	}
	pipe.ZAddNX(ctx, s.keys.Names(), zs...)
	if _, err := pipe.Exec(ctx); err != nil {
		if !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return r, fmt.Errorf("repair partition %d: %w", p, err)
		}
		// Redis lost its script cache (a restart): load the scripts, try once more.
		if err := s.Init(ctx); err != nil {
			return r, err
		}
		return s.RepairStep(ctx, p, cursor, count)
	}
	for _, c := range cmds {
		body, err := s.reply(s.sc.repair, p, c.Val(), c.Err())
		if err != nil {
			return r, err
		}
		rd := newReader("repair", body)
		r.Fixed += int(rd.int())
		r.Consumers += int(rd.int())
		if rd.err != nil {
			return r, rd.err
		}
	}
	return r, nil
}

// namesBuilt marks that the names index holds every queue (written once,
// by the first janitor of a version that keeps the index).
const namesBuilt = "names:built"

// EnsureNames builds the sorted index of queue names from the partitions'
// registries, once: data written by a version of HTQ without the index gets
// it. Queues created meanwhile add themselves.
func (s *Store) EnsureNames(ctx context.Context) error {
	marker := s.keys.global(namesBuilt)
	n, err := s.rdb.Exists(ctx, marker).Result()
	if err != nil {
		return fmt.Errorf("check names index: %w", err)
	}
	if n == 1 {
		return nil
	}
	for p := range len(s.keys.tags) {
		var cursor uint64
		for {
			names, next, err := s.rdb.SScan(ctx, s.keys.Registry(p), cursor, "", 1000).Result()
			if err != nil {
				return fmt.Errorf("build names index: %w", err)
			}
			if len(names) > 0 {
				zs := make([]redis.Z, len(names))
				for i, q := range names {
					zs[i] = redis.Z{Member: q}
				}
				if err := s.rdb.ZAddNX(ctx, s.keys.Names(), zs...).Err(); err != nil {
					return fmt.Errorf("build names index: %w", err)
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	if err := s.rdb.Set(ctx, marker, strconv.FormatInt(s.nowMs(), 10), 0).Err(); err != nil {
		return fmt.Errorf("build names index: %w", err)
	}
	return nil
}

// addName adds a new queue to the names index. Callers treat it as best
// effort (the queue exists either way, and the janitor's repair sweep puts
// a lost name back); its error says whether the name was added.
func (s *Store) addName(ctx context.Context, name string) error {
	if err := s.rdb.ZAddNX(ctx, s.keys.Names(), redis.Z{Member: name}).Err(); err != nil {
		return fmt.Errorf("list queue %q: %w", name, err)
	}
	return nil
}
