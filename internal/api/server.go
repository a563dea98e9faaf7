// Package api serves HTQ's HTTP API: REST v1 (JSON, bearer tokens), the
// legacy /api/* protocol of the original HTQ, health endpoints and metrics.
// It is stateless: every request is one or a few store operations.
package api

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/httpserve"
	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

//go:embed openapi.yaml
var openAPI []byte

// Config is what the API needs to know.
type Config struct {
	Tokens         [][sha256.Size]byte // accepted bearer tokens (hashed)
	ReadOnlyTokens [][sha256.Size]byte // bearer tokens that may only read (GET, HEAD)
	InsecureNoAuth bool
	// Legacy holds the legacy protocol's own settings; the limits and
	// queue defaults below apply to it too.
	Legacy            legacy.Settings
	CORSOrigins       []string // empty: no cross-origin access
	CORSCredentials   bool
	AllowedHosts      []string      // with InsecureNoAuth: Host names /v1 answers besides loopback
	MinVariableGap    time.Duration // the floor of a variable queue's stepping_time and max_time_interval (0: none)
	AutoCreateQueues  bool
	MaxBodyBytes      int
	MaxBatch          int
	Limits            task.Limits
	QueueDefaults     task.QueueConfig
	IdempotencyWindow time.Duration
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	EventKeepalive    time.Duration // between keepalive comments of /v1/events; 0: 15 s (no configuration key)
	Version           string
	UI                http.Handler // the browser console, served at /ui/ (nil: none; api.ui)
}

// The routes that create tasks (under /v1, POST): only their refusals count
// in htq_api_tasks_rejected_total.
const (
	pathCreateTask  = "/queues/:queue/tasks"
	pathCreateTasks = "/queues/:queue/tasks/batch"
)

// createsTasks reports whether the request was routed to a REST route that
// creates tasks.
func createsTasks(c echo.Context) bool {
	if c.Request().Method != http.MethodPost {
		return false
	}
	switch c.Path() {
	case "/v1" + pathCreateTask, "/v1" + pathCreateTasks:
		return true
	}
	return false
}

// Server is the API.
type Server struct {
	cfg   Config
	st    *store.Store
	clock clock.Clock
	log   *slog.Logger
	m     *metrics.API
	gath  prometheus.Gatherer
	echo  *echo.Echo
	// legacy serves the original's /api/* protocol
	legacy *legacy.Handler
	// closing is closed when Serve starts shutting down, ending the event
	// streams (http.Server.Shutdown waits for them otherwise).
	closing   chan struct{}
	closeOnce sync.Once
	// background work (the overview's backlog refresh): baseCtx ends at
	// Close, Serve waits for bg.
	baseCtx    context.Context
	cancelBase context.CancelFunc
	bg         sync.WaitGroup
	refreshing atomic.Bool
}

// ErrConfig wraps every error of Config.Validate but the legacy
// settings' (legacy.ErrSettings).
var ErrConfig = errors.New("invalid API configuration")

// Validate refuses a configuration the API cannot serve with. The
// configured settings have no fallback here: their defaults live in
// internal/config, which checks them with the keys' names first. The
// timeouts keep net/http's meaning (0: none).
func (c *Config) Validate() error {
	bad := func(field string, v any, rule string) error {
		return fmt.Errorf("%w: %s %v: %s", ErrConfig, field, v, rule)
	}
	switch {
	case c.MaxBodyBytes < 1:
		return bad("MaxBodyBytes", c.MaxBodyBytes, "want at least 1")
	case c.MaxBatch < 1:
		return bad("MaxBatch", c.MaxBatch, "want at least 1")
	case c.Limits.MaxURLBytes < 1:
		return bad("Limits.MaxURLBytes", c.Limits.MaxURLBytes, "want at least 1")
	case c.Limits.MaxHeaderBytes < 1:
		return bad("Limits.MaxHeaderBytes", c.Limits.MaxHeaderBytes, "want at least 1")
	case c.Limits.MaxBodyBytes < 1:
		return bad("Limits.MaxBodyBytes", c.Limits.MaxBodyBytes, "want at least 1")
	case c.IdempotencyWindow <= 0:
		return bad("IdempotencyWindow", c.IdempotencyWindow, "want more than 0")
	case c.MinVariableGap < 0:
		return bad("MinVariableGap", c.MinVariableGap, "want 0 (no floor) or more")
	case c.EventKeepalive < 0:
		return bad("EventKeepalive", c.EventKeepalive, "want 0 (the default) or more")
	}
	if err := c.QueueDefaults.Validate(); err != nil {
		return fmt.Errorf("%w: QueueDefaults: %w", ErrConfig, err)
	}
	return c.Legacy.Validate()
}

// New builds the API, or returns an error when cfg does not validate.
// metricsOnMain says whether /metrics is served here (else the caller
// serves gath on its own listener).
func New(cfg Config, st *store.Store, clk clock.Clock, log *slog.Logger, m *metrics.API, gath prometheus.Gatherer, metricsOnMain bool) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, st: st, clock: clk, log: log, m: m, gath: gath, closing: make(chan struct{})}
	lh, err := legacy.NewHandler(cfg.Legacy, legacy.Shared{
		Limits: cfg.Limits, MaxBodyBytes: cfg.MaxBodyBytes, MinVariableGap: cfg.MinVariableGap, QueueDefaults: cfg.QueueDefaults,
	}, legacy.Deps{
		Store: st,
		Enqueue: func(ctx context.Context, queue string, tasks []store.NewTask, create *task.QueueConfig) error {
			_, err := s.enqueue(ctx, queue, tasks, create)
			return err
		},
		Refuse: s.refuseReadOnlyAppToken,
		Now:    s.now, Log: log, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	s.legacy = lh
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(noSniff, s.instrument, s.recoverPanic, s.limitBody)
	if len(cfg.CORSOrigins) > 0 { // none by default: no cross-origin access
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:     cfg.CORSOrigins,
			AllowCredentials: cfg.CORSCredentials,
			AllowHeaders:     []string{"Authorization", "Content-Type", "Idempotency-Key"},
			AllowMethods:     []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete},
		}))
	}
	e.Use(s.authV1, s.refuseReadOnlyLegacy)
	if cfg.InsecureNoAuth {
		log.Warn("AUTHENTICATION IS OFF (api.insecure_no_auth): anyone who can reach this port can create, read and delete every queue and task; "+
			"/v1 answers only requests addressed to a loopback address, localhost or api.allowed_hosts and refuses cross-origin ones from browsers. "+
			"Never expose this port beyond the machine", "allowed_hosts", cfg.AllowedHosts)
	}

	e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "HTQ") })
	e.GET("/healthz", echo.WrapHandler(httpserve.Healthz()))
	// the probe needs no token: it says what failed, never where (the
	// error names Redis's address); the log has the whole error
	e.GET("/readyz", echo.WrapHandler(httpserve.Readyz(log, httpserve.Check{Name: "redis unreachable", Fn: st.Ready})))
	e.GET("/openapi.yaml", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/yaml", openAPI) })
	if cfg.UI != nil { // public files; the console's calls to /v1 carry the token
		e.Any("/ui", echo.WrapHandler(cfg.UI))
		e.Any("/ui/*", echo.WrapHandler(cfg.UI))
	}
	if metricsOnMain {
		e.GET("/metrics", echo.WrapHandler(httpserve.Metrics(gath)))
	}

	s.legacy.Register(e.Group(strings.TrimSuffix(legacy.Prefix, "/")))

	v1 := e.Group("/v1") // no group middleware: see authV1
	v1.GET("/whoami", s.whoami)
	v1.PUT("/queues/:queue", s.putQueue)
	v1.GET("/queues", s.listQueues)
	v1.GET("/queues/:queue", s.getQueue)
	v1.DELETE("/queues/:queue", s.deleteQueue)
	v1.POST("/queues/:queue/pause", s.pauseQueue)
	v1.POST("/queues/:queue/resume", s.resumeQueue)
	v1.POST("/queues/:queue/purge", s.purgeQueue)
	v1.POST(pathCreateTask, s.createTask)
	v1.POST(pathCreateTasks, s.createTasks)
	v1.GET("/queues/:queue/tasks", s.listTasks)
	v1.GET("/tasks/:id", s.getTask)
	v1.DELETE("/tasks/:id", s.cancelTask)
	v1.POST("/tasks/:id/retry", s.retryTask)
	s.scheduleRoutes(v1)
	s.deadRoutes(v1)
	v1.GET("/events", s.events)
	v1.GET("/overview", s.overview)
	s.echo = e
	return s, nil
}

// Handler returns the HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.echo }

// Serve serves on l until ctx is cancelled, then shuts down gracefully:
// requests in progress get up to grace to finish.
func (s *Server) Serve(ctx context.Context, l net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    1 << 16,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(s.Close)
	err := httpserve.Serve(ctx, hs, l, grace)
	s.Close()
	s.bg.Wait()
	return err
}

// Close ends every event stream (Serve calls it when it shuts down; a
// caller serving Handler itself calls it before shutting its server down).
// Safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancelBase()
	})
}

// noSniff tells browsers to take every answer as the type it says (JSON,
// YAML, text), never to sniff it into HTML or script.
func noSniff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		return next(c)
	}
}

// instrument counts requests by route template, method (standard methods
// only, see metrics.MethodLabel) and status.
func (s *Server) instrument(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.m.Requests.WithLabelValues(route, metrics.MethodLabel(c.Request().Method), strconv.Itoa(c.Response().Status)).Inc()
		s.m.RequestDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return nil
	}
}

func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(r)
				}
				s.log.Error("handler panic", "route", c.Path(), "panic", r)
				err = apiErr(http.StatusInternalServerError, CodeInternal, "internal error")
			}
		}()
		return next(c)
	}
}

// limitBody caps every request body; reading past the cap fails with
// *http.MaxBytesError, which becomes 413 (REST) or code 1006 (legacy).
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > int64(s.cfg.MaxBodyBytes) {
			if strings.HasPrefix(r.URL.Path, legacy.Prefix) {
				return s.legacy.TooLarge(c)
			}
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
				Message: "request body over the limit of " + strconv.Itoa(s.cfg.MaxBodyBytes) + " bytes", reason: metrics.ReasonTooLarge}
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, int64(s.cfg.MaxBodyBytes))
		return next(c)
	}
}

// now returns the injected clock's time.
func (s *Server) now() time.Time { return s.clock.Now() }
