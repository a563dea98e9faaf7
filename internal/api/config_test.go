package api_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/metrics"
)

// TestNewRefusesUnusableConfig: a limit or window the API cannot serve
// with is refused by New, naming it, rather than served as 0.
func TestNewRefusesUnusableConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field string
		want  error
		edit  func(*api.Config)
	}{
		{"MaxBodyBytes", api.ErrConfig, func(c *api.Config) { c.MaxBodyBytes = 0 }},
		{"MaxBatch", api.ErrConfig, func(c *api.Config) { c.MaxBatch = 0 }},
		{"Limits.MaxURLBytes", api.ErrConfig, func(c *api.Config) { c.Limits.MaxURLBytes = 0 }},
		{"Limits.MaxHeaderBytes", api.ErrConfig, func(c *api.Config) { c.Limits.MaxHeaderBytes = 0 }},
		{"Limits.MaxBodyBytes", api.ErrConfig, func(c *api.Config) { c.Limits.MaxBodyBytes = 0 }},
		{"IdempotencyWindow", api.ErrConfig, func(c *api.Config) { c.IdempotencyWindow = 0 }},
		{"MinVariableGap", api.ErrConfig, func(c *api.Config) { c.MinVariableGap = -time.Second }},
		{"EventKeepalive", api.ErrConfig, func(c *api.Config) { c.EventKeepalive = -time.Second }},
		{"QueueDefaults", api.ErrConfig, func(c *api.Config) { c.QueueDefaults.Timeout = 0 }},
		{"MinGap", legacy.ErrSettings, func(c *api.Config) { c.Legacy.MinGap = 0 }},
	}
	for _, tt := range tests {
		cfg := testConfig(time.UTC)
		tt.edit(&cfg)
		reg := prometheus.NewRegistry()
		srv, err := api.New(cfg, nil, clock.NewFake(testNow), slog.New(slog.DiscardHandler), metrics.NewAPI(reg), reg, true)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.field+" ") && !strings.Contains(err.Error(), tt.field+":") || srv != nil {
			t.Errorf("%s: New = %v, %v; want %v naming it", tt.field, srv, err, tt.want)
		}
	}
}
