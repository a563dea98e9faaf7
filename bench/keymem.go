package main

// Where HTQ's Redis memory goes, by kind of key (internal/store/keys.go):
// the per-queue and per-task keys are many, so they are estimated from a
// random sample; the partition indexes and the global keys are few, so they
// are measured exactly.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// htqPrefix is the key prefix of the benchmark's clusters (the default).
const htqPrefix = "htq:"

// partitionKeyNames are the keys every partition has (keys.go), and
// globalKeyNames the keys outside partitions.
var (
	partitionKeyNames = []string{"queues", "ready", "timers", "deadq", "seq", "epoch", "seqs", "trash"}
	globalKeyNames    = []string{"due:ready", "due:timers", "due:dead", "dispatchers", "names", "listeners", "leader", "leader:term"}
)

// keyKind classifies a key: "m", "s", "t", "u", … for the per-queue and
// per-task keys "<prefix>{pNNN}:<kind>:<name>", "partition" for a
// partition's own keys, "global" for the rest.
func keyKind(prefix, key string) string {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || !strings.HasPrefix(rest, "{p") {
		return "global"
	}
	_, after, ok := strings.Cut(rest, "}:")
	if !ok {
		return "global"
	}
	if kind, _, ok := strings.Cut(after, ":"); ok {
		return kind
	}
	return "partition"
}

// keyKindBytes estimates Redis memory (MEMORY USAGE) by kind of key: the
// per-queue and per-task kinds from `samples` random keys scaled to DBSIZE,
// the partitions' keys and the global keys exactly ("partition", "names",
// "global").
func keyKindBytes(ctx context.Context, rdb *redis.Client, samples int) (map[string]float64, error) {
	n, err := rdb.DBSize(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("DBSIZE: %w", err)
	}
	out := map[string]float64{}
	if n == 0 {
		return out, nil
	}
	p := rdb.Pipeline()
	rk := make([]*redis.StringCmd, samples)
	for i := range rk {
		rk[i] = p.RandomKey(ctx)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("RANDOMKEY: %w", err)
	}
	keys := make([]string, 0, samples)
	for _, c := range rk {
		keys = append(keys, c.Val())
	}
	sizes, err := memoryUsage(ctx, rdb, keys)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if kind := keyKind(htqPrefix, k); kind != "partition" && kind != "global" {
			out[kind] += float64(sizes[i]) / float64(samples) * float64(n)
		}
	}
	var exact []string
	for part := range 256 {
		for _, name := range partitionKeyNames {
			exact = append(exact, fmt.Sprintf("%s{p%03d}:%s", htqPrefix, part, name))
		}
	}
	for _, name := range globalKeyNames {
		exact = append(exact, htqPrefix+name)
	}
	sizes, err = memoryUsage(ctx, rdb, exact)
	if err != nil {
		return nil, err
	}
	for i, k := range exact {
		kind := keyKind(htqPrefix, k)
		if k == htqPrefix+"names" {
			kind = "names"
		}
		out[kind] += float64(sizes[i])
	}
	return out, nil
}

// memoryUsage returns MEMORY USAGE (every element counted) of each key, 0
// for a key that does not exist.
func memoryUsage(ctx context.Context, rdb *redis.Client, keys []string) ([]int64, error) {
	p := rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.MemoryUsage(ctx, k, 0)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("MEMORY USAGE: %w", err)
	}
	out := make([]int64, len(keys))
	for i, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("MEMORY USAGE %s: %w", keys[i], err)
		}
		out[i] = c.Val()
	}
	return out, nil
}
