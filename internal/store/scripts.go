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

// script is one Lua script: the helpers of the shared prelude
// (lua/common.lua) that it uses, followed by lua/<name>.lua, under a
// "#!lua" shebang: Redis 7 then refuses to run a
// writing script when it is out of memory rather than failing half-way, and
// rejects cross-slot key access, which keeps every script valid on Redis
// Cluster.
//
// Each script comes in two variants: the loud one publishes task events
// (event() in common.lua), the quiet one does not. Events cost one SPUBLISH
// per task state change, so the store runs the quiet variant while nobody
// listens (listeners.go).
type script struct {
	name          string
	*redis.Script               // loud: publishes task events
	quiet         *redis.Script // publishes none
}

// scripts holds every script, one named field each, so that a misspelt
// script is a compile error, not a panic at run time.
type scripts struct {
	enqueue, claim, complete, reattempt, renew, release, pull   *script
	promote, queuePut, queueDelete, trashDrain, pause, purge    *script
	repair, cancel, retry, janitor, deadTrim, dueSettle, unhint *script
	schedulePut, scheduleDelete, scheduleFire                   *script
}

// all lists the scripts with the file each is read from.
func (s *scripts) all() []**script {
	return []**script{
		&s.enqueue, &s.claim, &s.complete, &s.reattempt, &s.renew, &s.release, &s.pull,
		&s.promote, &s.queuePut, &s.queueDelete, &s.trashDrain, &s.pause, &s.purge,
		&s.repair, &s.cancel, &s.retry, &s.janitor, &s.deadTrim, &s.dueSettle, &s.unhint,
		&s.schedulePut, &s.scheduleDelete, &s.scheduleFire,
	}
}

// scriptFiles names the file of each field of scripts, in the order of all.
var scriptFiles = []string{
	"enqueue", "claim", "complete", "reattempt", "renew", "release", "pull",
	"promote", "queue_put", "queue_delete", "trash_drain", "pause", "purge",
	"repair", "cancel", "retry", "janitor", "dead_trim", "due_settle", "unhint",
	"schedule_put", "schedule_delete", "schedule_fire",
}

func loadScripts() (*scripts, error) {
	src, err := luaFiles.ReadFile("lua/common.lua")
	if err != nil {
		return nil, fmt.Errorf("read common.lua: %w", err)
	}
	common, err := parsePrelude(string(src))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := new(scripts)
	fields := s.all()
	if len(fields) != len(scriptFiles) {
		return nil, fmt.Errorf("store: %d script fields for %d files", len(fields), len(scriptFiles))
	}
	for i, name := range scriptFiles {
		body, err := luaFiles.ReadFile("lua/" + name + ".lua")
		if err != nil {
			return nil, fmt.Errorf("read %s.lua: %w", name, err)
		}
		*fields[i] = &script{
			name:   name,
			Script: redis.NewScript(scriptSource(common, name, string(body), true)),
			quiet:  redis.NewScript(scriptSource(common, name, string(body), false)),
		}
	}
	return s, nil
}

// scriptSource assembles a script: the shebang, whether it publishes task
// events, the helpers of common.lua it uses, then the script's own file.
func scriptSource(common *prelude, name, body string, events bool) string {
	var src strings.Builder
	src.WriteString("#!lua\n")
	fmt.Fprintf(&src, "local EVENTS = %t\n", events)
	src.WriteString(common.forScript(body))
	src.WriteString("\n-- ===== ")
	src.WriteString(name)
	src.WriteString(".lua =====\n")
	src.WriteString(body)
	return src.String()
}

// load sends every script to Redis (SCRIPT LOAD; on a cluster, to every
// primary), so that the first call of each is an EVALSHA. Scripts are loaded
// again transparently after a Redis restart: go-redis falls back to EVAL on
// NOSCRIPT.
func (s *scripts) load(ctx context.Context, c redis.Scripter) error {
	for _, sc := range s.all() {
		if err := (*sc).Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("load script %s: %w", (*sc).name, err)
		}
		if err := (*sc).quiet.Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("load script %s (quiet): %w", (*sc).name, err)
		}
	}
	return nil
}

// ScriptNames maps the SHA-1 Redis names each script by (both variants) to
// the script's file name, for tools that read Redis's SLOWLOG or
// commandstats (the bench's per-script breakdown).
func ScriptNames() (map[string]string, error) {
	s, err := loadScripts()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, sc := range s.all() {
		out[(*sc).Hash()] = (*sc).name
		out[(*sc).quiet.Hash()] = (*sc).name
	}
	return out, nil
}
