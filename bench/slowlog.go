package main

// A per-script cost breakdown for diagnosis, from Redis's SLOWLOG: run with
// --redis-args "--slowlog-log-slower-than 0 --slowlog-max-len 1000000" and
// every top-level command is logged with its duration, so the time of each
// EVALSHA can be put on its script (named by the SHA-1 of its source:
// store.ScriptNames). Logging every command costs Redis
// a little CPU itself: compare the breakdown's shares, and take the cost
// figures from a run without it.

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/store"
)

// slowlogOn reports whether the server logs every command.
func slowlogOn(ctx context.Context, rdb *redis.Client) bool {
	v, err := rdb.ConfigGet(ctx, "slowlog-log-slower-than").Result()
	return err == nil && v["slowlog-log-slower-than"] == "0"
}

// slowlogMark returns the ID of the latest entry (-1 when empty).
func slowlogMark(ctx context.Context, rdb *redis.Client) (int64, error) {
	e, err := rdb.SlowLogGet(ctx, 1).Result()
	if err != nil {
		return 0, fmt.Errorf("SLOWLOG GET: %w", err)
	}
	if len(e) == 0 {
		return -1, nil
	}
	return e[0].ID, nil
}

// topLevelCost is the calls and time of one script or top-level command.
type topLevelCost struct {
	Calls int64
	Usec  int64
}

// slowlogCosts sums the entries after mark by script (for EVALSHA and
// EVAL: "script_<name>") or command ("cmd_<name>").
func slowlogCosts(ctx context.Context, rdb *redis.Client, mark int64, scripts map[string]string) (map[string]topLevelCost, error) {
	es, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("SLOWLOG GET: %w", err)
	}
	out := map[string]topLevelCost{}
	for _, e := range es {
		if e.ID <= mark || len(e.Args) == 0 {
			continue
		}
		cmd := strings.ToLower(e.Args[0])
		if cmd == "slowlog" || cmd == "info" {
			continue
		}
		key := "cmd_" + cmd
		if (cmd == "evalsha" || cmd == "evalsha_ro") && len(e.Args) > 1 {
			name, ok := scripts[strings.ToLower(e.Args[1])]
			if !ok {
				name = "sha_" + e.Args[1][:min(8, len(e.Args[1]))]
			}
			key = "script_" + name
		}
		c := out[key]
		c.Calls++
		c.Usec += e.Duration.Microseconds()
		out[key] = c
	}
	return out, nil
}

// addTopLevelCosts puts the slowlog's breakdown since mark into extra: per
// script and top-level command, calls per task ("top_<key>_per_task") and
// µs per call ("top_<key>_us_per_call"), and the top-level commands per
// task in all (each a request Redis reads, unless pipelined).
func addTopLevelCosts(ctx context.Context, rdb *redis.Client, mark int64, tasks float64, extra map[string]float64) error {
	shas, err := store.ScriptNames()
	if err != nil {
		return err
	}
	costs, err := slowlogCosts(ctx, rdb, mark, shas)
	if err != nil {
		return err
	}
	total := 0.0
	for k, c := range costs {
		extra["top_"+k+"_per_task"] = float64(c.Calls) / tasks
		extra["top_"+k+"_us_per_call"] = float64(c.Usec) / float64(c.Calls)
		total += float64(c.Calls)
	}
	extra["top_level_cmds_per_task"] = total / tasks
	return nil
}
