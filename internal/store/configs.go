package store

import (
	"encoding/json"
	"sync"

	"github.com/htq/htq/internal/task"
)

// configCacheMax bounds the distinct configurations a store keeps decoded;
// the cache starts afresh when it is full.
const configCacheMax = 1024

// configCache holds decoded queue configurations by their JSON. Every claim
// returns its queue's configuration, and decoding it took a tenth of a
// dispatcher's CPU on idle-queue traffic (one claim per task). Queues share
// a few configurations, and a configuration's JSON names it exactly, so a
// kept decoding is never stale: a changed configuration is other JSON.
type configCache struct {
	mu     sync.Mutex
	m      map[string]task.QueueConfig
	misses int // decodings, for tests
}

// decode returns the configuration raw encodes. Its Legacy attributes are
// the caller's own copy, down to their strings.
func (c *configCache) decode(raw string) (task.QueueConfig, error) {
	c.mu.Lock()
	cfg, ok := c.m[raw]
	c.mu.Unlock()
	if !ok {
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			return task.QueueConfig{}, err
		}
		c.mu.Lock()
		if c.m == nil || len(c.m) >= configCacheMax {
			c.m = make(map[string]task.QueueConfig)
		}
		c.m[raw] = cfg
		c.misses++
		c.mu.Unlock()
	}
	if cfg.Legacy != nil {
		cfg.Legacy = cloneLegacy(cfg.Legacy)
	}
	return cfg, nil
}

// cloneLegacy returns a copy of l that shares nothing with it.
func cloneLegacy(l *task.LegacyAttr) *task.LegacyAttr {
	c := *l
	for _, p := range []**string{&c.Type, &c.SteppingTime, &c.MaxTimeInterval} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	return &c
}
