package schedule_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/schedule"
)

// TestNewRefusesUnusableConfig: a setting the scheduler cannot run with is
// refused by New, naming it, instead of being replaced by a default of its
// own (scheduler.missed_grace had one, besides config's).
func TestNewRefusesUnusableConfig(t *testing.T) {
	t.Parallel()
	good := schedule.Config{
		LockTTL: time.Second, PollInterval: time.Second, PromoteBatch: 1, JanitorInterval: time.Minute,
		BacklogInterval: time.Second, MissedGrace: time.Second,
	}
	tests := []struct {
		field   string
		edit    func(*schedule.Config)
		backlog bool
	}{
		{field: "LockTTL", edit: func(c *schedule.Config) { c.LockTTL = 0 }},
		{field: "PollInterval", edit: func(c *schedule.Config) { c.PollInterval = 0 }},
		{field: "PromoteBatch", edit: func(c *schedule.Config) { c.PromoteBatch = 0 }},
		{field: "JanitorInterval", edit: func(c *schedule.Config) { c.JanitorInterval = 0 }},
		{field: "BacklogInterval", edit: func(c *schedule.Config) { c.BacklogInterval = -1 }},
		{field: "BacklogInterval", edit: func(c *schedule.Config) { c.BacklogInterval = 0 }, backlog: true},
		{field: "MissedGrace", edit: func(c *schedule.Config) { c.MissedGrace = 0 }},
		{field: "RepairBatch", edit: func(c *schedule.Config) { c.RepairBatch = -1 }},
		{field: "JanitorTick", edit: func(c *schedule.Config) { c.JanitorTick = -1 }},
	}
	for _, tt := range tests {
		cfg := good
		tt.edit(&cfg)
		reg := prometheus.NewRegistry()
		var b *metrics.Backlog
		if tt.backlog {
			b = metrics.NewBacklog(reg, 1)
		}
		s, err := schedule.New(cfg, nil, clock.Real{}, slog.New(slog.DiscardHandler), metrics.NewScheduler(reg), b)
		if !errors.Is(err, schedule.ErrConfig) || !strings.Contains(err.Error(), tt.field+" ") || s != nil {
			t.Errorf("%s: New = %v, %v; want an ErrConfig naming it", tt.field, s, err)
		}
	}
	// Without backlog metrics their interval is not used: 0 is fine.
	cfg := good
	cfg.BacklogInterval = 0
	if _, err := schedule.New(cfg, nil, clock.Real{}, slog.New(slog.DiscardHandler), metrics.NewScheduler(prometheus.NewRegistry()), nil); err != nil {
		t.Fatalf("no backlog, BacklogInterval 0: %v", err)
	}
}
