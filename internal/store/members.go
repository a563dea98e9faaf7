package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Heartbeat records consumer as a live dispatcher until now + ttl, forgets
// dispatchers whose heartbeat ran out long ago, and returns the live ones
// (sorted by name). Dispatchers route partitions to each other with it.
func (s *Store) Heartbeat(ctx context.Context, consumer string, ttl time.Duration) ([]string, error) {
	now := s.nowMs()
	key := s.keys.Dispatchers()
	p := s.rdb.Pipeline()
	p.ZAdd(ctx, key, redis.Z{Score: float64(now + ttl.Milliseconds()), Member: consumer})
	p.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now-10*ttl.Milliseconds(), 10))
	live := p.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: strconv.FormatInt(now, 10), Max: "+inf"})
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	return sortedStrings(live.Val()), nil
}

// LiveDispatchers returns the dispatchers whose heartbeat has not run out.
func (s *Store) LiveDispatchers(ctx context.Context) ([]string, error) {
	v, err := s.rdb.ZRangeByScore(ctx, s.keys.Dispatchers(), &redis.ZRangeBy{
		Min: strconv.FormatInt(s.nowMs(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read dispatchers: %w", err)
	}
	return sortedStrings(v), nil
}

// Leave removes consumer from the live dispatchers and tells the others.
func (s *Store) Leave(ctx context.Context, consumer string) error {
	p := s.rdb.Pipeline()
	p.ZRem(ctx, s.keys.Dispatchers(), consumer)
	p.Publish(ctx, s.keys.MembersChannel(), "left")
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// AnnounceMembers tells the dispatchers that one joined.
func (s *Store) AnnounceMembers(ctx context.Context) error {
	if err := s.rdb.Publish(ctx, s.keys.MembersChannel(), "joined").Err(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}
