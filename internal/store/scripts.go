package store

import (
	"context"
	"embed"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// scriptNames lists every script; each lives in lua/<name>.lua.
var scriptNames = []string{
	"enqueue", "claim", "complete", "reattempt", "renew", "release",
	"promote", "queue_put", "queue_delete", "trash_drain", "pause",
	"repair", "cancel", "pull", "purge", "retry",
}

// scripts holds the loaded scripts. Each is the shared prelude
// (lua/common.lua) followed by the script itself, under a "#!lua" shebang:
// Redis 7 then refuses to run a writing script when it is out of memory
// rather than failing half-way, and rejects cross-slot key access, which
// keeps every script valid on Redis Cluster.
type scripts struct {
	byName map[string]*redis.Script
}

func loadScripts() (*scripts, error) {
	common, err := luaFiles.ReadFile("lua/common.lua")
	if err != nil {
		return nil, fmt.Errorf("read common.lua: %w", err)
	}
	s := &scripts{byName: make(map[string]*redis.Script, len(scriptNames))}
	for _, name := range scriptNames {
		body, err := luaFiles.ReadFile("lua/" + name + ".lua")
		if err != nil {
			return nil, fmt.Errorf("read %s.lua: %w", name, err)
		}
		var src strings.Builder
		src.WriteString("#!lua\n")
		src.Write(common)
		src.WriteString("\n-- ===== ")
		src.WriteString(name)
		src.WriteString(".lua =====\n")
		src.Write(body)
		s.byName[name] = redis.NewScript(src.String())
	}
	return s, nil
}

func (s *scripts) get(name string) *redis.Script {
	sc, ok := s.byName[name]
	if !ok {
		panic("store: unknown script " + name)
	}
	return sc
}

// load sends every script to Redis (SCRIPT LOAD; on a cluster, to every
// primary), so that the first call of each is an EVALSHA. Scripts are loaded
// again transparently after a Redis restart: go-redis falls back to EVAL on
// NOSCRIPT.
func (s *scripts) load(ctx context.Context, c redis.Scripter) error {
	for _, name := range scriptNames {
		if err := s.byName[name].Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("load script %s: %w", name, err)
		}
	}
	return nil
}
