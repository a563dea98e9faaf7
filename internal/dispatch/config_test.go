package dispatch_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/metrics"
)

// TestNewRefusesUnusableConfig: a setting the dispatcher cannot run with is
// refused by New, naming it, instead of being replaced by a default that
// would differ from the configured one.
func TestNewRefusesUnusableConfig(t *testing.T) {
	t.Parallel()
	good := dispatch.Config{
		ID: "d", MaxQueues: 1, LeaseTTL: time.Second, PollMin: time.Millisecond, PollMax: time.Millisecond,
	}
	tests := []struct {
		field string
		edit  func(*dispatch.Config)
	}{
		{"ID", func(c *dispatch.Config) { c.ID = "" }},
		{"MaxQueues", func(c *dispatch.Config) { c.MaxQueues = 0 }},
		{"LeaseTTL", func(c *dispatch.Config) { c.LeaseTTL = 0 }},
		{"RecoveryGrace", func(c *dispatch.Config) { c.RecoveryGrace = -time.Second }},
		{"ShutdownGrace", func(c *dispatch.Config) { c.ShutdownGrace = -time.Second }},
		{"PollMin", func(c *dispatch.Config) { c.PollMin = 0 }},
		{"PollMax", func(c *dispatch.Config) { c.PollMax = time.Microsecond }},
		{"History", func(c *dispatch.Config) { c.History = -1 }},
		{"YieldAfter", func(c *dispatch.Config) { c.YieldAfter = -1 }},
		{"FallbackDelay", func(c *dispatch.Config) { c.FallbackDelay = -1 }},
		{"RateYieldAfter", func(c *dispatch.Config) { c.RateYieldAfter = -1 }},
	}
	client, err := deliver.New(deliver.Options{MaxResponseBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		cfg := good
		tt.edit(&cfg)
		d, err := dispatch.New(cfg, nil, client, clock.Real{}, slog.New(slog.DiscardHandler), metrics.NewDispatcher(prometheus.NewRegistry()))
		if !errors.Is(err, dispatch.ErrConfig) || !strings.Contains(err.Error(), tt.field+" ") || d != nil {
			t.Errorf("%s: New = %v, %v; want an ErrConfig naming it", tt.field, d, err)
		}
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("the good configuration: %v", err)
	}
}
