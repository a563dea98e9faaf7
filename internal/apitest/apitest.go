// Package apitest serves the real API in process for tests of its clients
// (the Go client, the CLI): one configuration and one way to start it, so
// each test suite does not build its own.
package apitest

import (
	"crypto/sha256"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Config is an API configuration with token as its one bearer token and
// the server's default limits and queue settings.
func Config(token string) api.Config {
	return api.Config{
		Tokens:            [][sha256.Size]byte{sha256.Sum256([]byte(token))},
		MaxBodyBytes:      1 << 20,
		MaxBatch:          1000,
		Limits:            task.Limits{MaxURLBytes: 8192, MaxHeaderBytes: 65536, MaxBodyBytes: 1 << 20},
		QueueDefaults:     task.DefaultQueueConfig(),
		IdempotencyWindow: time.Hour,
		ReadHeaderTimeout: 5 * time.Second,
		Version:           "test",
	}
}

// Serve serves the API on st with cfg (real clock, logs discarded,
// metrics on its own registry); the caller closes the server.
func Serve(st *store.Store, cfg api.Config) *httptest.Server {
	reg := prometheus.NewRegistry()
	srv := api.New(cfg, st, clock.Real{}, slog.New(slog.DiscardHandler), metrics.NewAPI(reg), reg, true)
	return httptest.NewServer(srv.Handler())
}
