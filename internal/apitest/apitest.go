// Package apitest serves the real API in process for tests of its clients
// (the Go client, the CLI): one configuration and one way to start it, so
// each test suite does not build its own.
package apitest

import (
	"fmt"
	"log/slog"
	"net/http/httptest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/roles"
	"github.com/htq/htq/internal/store"
)

// Config is the API configuration of HTQ's defaults with token as its one
// bearer token, translated as the api role does. It panics if the defaults
// do not translate, which would be a bug.
func Config(token string) api.Config {
	c := config.Default()
	c.API.Tokens = []string{token}
	cfg, err := roles.APIConfig(c)
	if err != nil {
		panic(fmt.Sprintf("apitest: the default configuration: %v", err))
	}
	return cfg
}

// Serve serves the API on st with cfg (real clock, logs discarded,
// metrics on its own registry); the caller closes the server.
func Serve(st *store.Store, cfg api.Config) (*httptest.Server, error) {
	reg := prometheus.NewRegistry()
	srv, err := api.New(cfg, st, clock.Real{}, slog.New(slog.DiscardHandler), metrics.NewAPI(reg), reg, true)
	if err != nil {
		return nil, fmt.Errorf("apitest: %w", err)
	}
	return httptest.NewServer(srv.Handler()), nil
}
