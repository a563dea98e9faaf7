package migrate

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the original's default redis_key_prefix.
const DefaultPrefix = "htq_"

// Source reads the original HTQ's data from its Redis. With P the prefix
// (LEGACY_API.md, "The original's data in Redis"):
//
//	P + "queue_list"        HASH  P + queue name -> attribute JSON as posted
//	P + queue name          ZSET  task member JSON -> due time (ms)
//	P + queue name + "_times" HASH member's url -> calls since the last reset (variable queues)
type Source struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewSource reads the original's keys under prefix from rdb.
func NewSource(rdb redis.UniversalClient, prefix string) *Source {
	return &Source{rdb: rdb, prefix: prefix}
}

// SourceQueue is one of the original's queues.
type SourceQueue struct {
	Name      string
	Attribute string // the attribute JSON as posted
}

// Queues lists the original's queues, sorted by name (its hash keeps no
// order a client can read).
func (s *Source) Queues(ctx context.Context) ([]SourceQueue, error) {
	m, err := s.rdb.HGetAll(ctx, s.prefix+"queue_list").Result()
	if err != nil {
		return nil, fmt.Errorf("read %squeue_list: %w", s.prefix, err)
	}
	out := make([]SourceQueue, 0, len(m))
	for field, attr := range m {
		out = append(out, SourceQueue{Name: strings.TrimPrefix(field, s.prefix), Attribute: attr})
	}
	sortQueues(out)
	return out, nil
}

// SourceMember is one task of the original: its sorted-set member and score.
type SourceMember struct {
	Member string
	DueMs  int64
}

// Members returns a queue's tasks in due order (the original's order).
func (s *Source) Members(ctx context.Context, queue string) ([]SourceMember, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.prefix+queue, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read the tasks of %q: %w", queue, err)
	}
	out := make([]SourceMember, 0, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		out = append(out, SourceMember{Member: m, DueMs: int64(z.Score)})
	}
	return out, nil
}

// Times returns a variable queue's call counters (member url -> k).
func (s *Source) Times(ctx context.Context, queue string) (map[string]string, error) {
	m, err := s.rdb.HGetAll(ctx, s.prefix+queue+"_times").Result()
	if err != nil {
		return nil, fmt.Errorf("read %s%s_times: %w", s.prefix, queue, err)
	}
	return m, nil
}

// Remove deletes members HTQ has accepted from a queue's sorted set, and
// their counters (timesFields, the members' urls) from its _times hash.
func (s *Source) Remove(ctx context.Context, queue string, members, timesFields []string) error {
	if len(members) == 0 {
		return nil
	}
	pipe := s.rdb.TxPipeline()
	zm := make([]any, len(members))
	for i, m := range members {
		zm[i] = m
	}
	pipe.ZRem(ctx, s.prefix+queue, zm...)
	if len(timesFields) > 0 {
		pipe.HDel(ctx, s.prefix+queue+"_times", timesFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("remove %d migrated tasks of %q from the source: %w", len(members), queue, err)
	}
	return nil
}
