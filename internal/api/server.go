// Package api serves HTQ's HTTP API: REST v1 (JSON, bearer tokens), the
// legacy /api/* protocol of the original HTQ, health endpoints and metrics.
// It is stateless: every request is one or a few store operations.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
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
	MinVariableGap    time.Duration // the floor of a variable queue's stepping_time and max_time_interval
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
	Version           string
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
}

// New builds the API. metricsOnMain says whether /metrics is served here
// (else the caller serves gath on its own listener).
func New(cfg Config, st *store.Store, clk clock.Clock, log *slog.Logger, m *metrics.API, gath prometheus.Gatherer, metricsOnMain bool) *Server {
	s := &Server{cfg: cfg, st: st, clock: clk, log: log, m: m, gath: gath}
	s.legacy = legacy.NewHandler(cfg.Legacy, legacy.Shared{
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
	s.echo = e
	return s
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
	return httpserve.Serve(ctx, hs, l, grace)
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

// authV1 applies auth to every /v1 request, routed or not. Group middleware
// would do the same but registers catch-all not-found routes for the group,
// which turn a wrong method on a known /v1 route into 404 instead of 405.
func (s *Server) authV1(next echo.HandlerFunc) echo.HandlerFunc {
	authed := s.auth(next)
	return func(c echo.Context) error {
		if p := c.Request().URL.Path; p == "/v1" || strings.HasPrefix(p, "/v1/") {
			return authed(c)
		}
		return next(c)
	}
}

// auth checks the bearer token in constant time against every accepted one.
// A refused request counts as a rejected task only on the routes that create
// tasks: a 401 on a GET refuses no task. Without authentication
// (InsecureNoAuth) it refuses what a hostile web page could send instead:
// a request addressed to another name (DNS rebinding) or sent from another
// origin (a form or fetch from any page the user opens).
func (s *Server) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.InsecureNoAuth {
			r := c.Request()
			if !s.hostAllowed(r.Host) {
				s.rejectUnauthorized(c)
				return apiErr(http.StatusMisdirectedRequest, CodeMisdirected,
					"without authentication (api.insecure_no_auth) /v1 answers only requests to a loopback address, localhost or a name in api.allowed_hosts")
			}
			if o := r.Header.Get("Origin"); o != "" && !s.originAllowed(o, r.Host) {
				s.rejectUnauthorized(c)
				return apiErr(http.StatusForbidden, CodeForbidden,
					"without authentication (api.insecure_no_auth) /v1 refuses cross-origin requests from origins not in api.cors_origins")
			}
			return next(c)
		}
		h := c.Request().Header.Get("Authorization")
		// the scheme is case-insensitive (RFC 9110 section 11.1)
		scheme, tok, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			s.rejectUnauthorized(c)
			return apiErr(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
		}
		full, readOnly := s.tokenKind(strings.TrimSpace(tok))
		if !full && !readOnly {
			s.rejectUnauthorized(c)
			return apiErr(http.StatusUnauthorized, CodeUnauthorized, "invalid bearer token")
		}
		if readOnly {
			c.Set(ctxReadOnly, true)
			if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
				s.rejectUnauthorized(c)
				return apiErr(http.StatusForbidden, CodeForbidden, "this token is read-only (api.read_only_tokens): it may only call GET routes")
			}
		}
		return next(c)
	}
}

// ctxReadOnly is the echo context key set when a request was
// authenticated with a read-only token.
const ctxReadOnly = "htq.read_only"

// tokenKind compares tok in constant time against every accepted token and
// says whether it is a full one or a read-only one (never both: config
// validation refuses a token in both lists, and a token in both counts as
// read-only here).
func (s *Server) tokenKind(tok string) (full, readOnly bool) {
	sum := sha256.Sum256([]byte(tok))
	mf, mr := 0, 0
	for _, t := range s.cfg.Tokens {
		mf |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	for _, t := range s.cfg.ReadOnlyTokens {
		mr |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return mf == 1 && mr == 0, mr == 1
}

// refuseReadOnlyLegacy refuses a legacy /api call that presents a
// read-only token as its bearer token: every legacy call changes something
// or exposes the legacy credentials' powers, so none is allowed to such a
// token. (A legacy app_token equal to a read-only token is refused in
// legacyHandler; config validation keeps the two apart.)
func (s *Server) refuseReadOnlyLegacy(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !strings.HasPrefix(c.Request().URL.Path, legacy.Prefix) || len(s.cfg.ReadOnlyTokens) == 0 {
			return next(c)
		}
		scheme, tok, _ := strings.Cut(strings.TrimSpace(c.Request().Header.Get("Authorization")), " ")
		if strings.EqualFold(scheme, "Bearer") {
			if _, ro := s.tokenKind(strings.TrimSpace(tok)); ro {
				s.legacy.RejectedBy(c, metrics.ReasonUnauthorized)
				return forbiddenLegacy
			}
		}
		return next(c)
	}
}

// refuseReadOnlyAppToken refuses a legacy call whose app_token is one of
// the read-only bearer tokens (config validation keeps the two apart; this
// holds even if they met).
func (s *Server) refuseReadOnlyAppToken(appToken string) error {
	if len(s.cfg.ReadOnlyTokens) == 0 {
		return nil
	}
	if _, ro := s.tokenKind(appToken); ro {
		return forbiddenLegacy
	}
	return nil
}

// forbiddenLegacy answers a legacy call made with a read-only token.
var forbiddenLegacy = apiErr(http.StatusForbidden, CodeForbidden, "this token is read-only (api.read_only_tokens): the legacy /api protocol is refused to it")

// isReadOnly reports whether the request was authenticated with a
// read-only token.
func isReadOnly(c echo.Context) bool {
	ro, _ := c.Get(ctxReadOnly).(bool)
	return ro
}

// whoami says what the caller's token may do.
func (s *Server) whoami(c echo.Context) error {
	return c.JSON(http.StatusOK, struct {
		ReadOnly bool `json:"read_only"`
	}{ReadOnly: isReadOnly(c)})
}

// hostAllowed reports whether a request's Host names this API without
// authentication: a loopback address, localhost, or a configured name.
func (s *Server) hostAllowed(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")), ".")
	if h == "localhost" {
		return true
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Unmap().IsLoopback() {
		return true
	}
	for _, n := range s.cfg.AllowedHosts {
		if strings.EqualFold(strings.TrimSuffix(n, "."), h) {
			return true
		}
	}
	return false
}

// originAllowed reports whether a browser's Origin may use the API without
// authentication: the API's own origin (its Host), or a configured one.
func (s *Server) originAllowed(origin, host string) bool {
	for _, o := range s.cfg.CORSOrigins {
		if o == origin {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && strings.EqualFold(u.Host, host)
}

func (s *Server) rejectUnauthorized(c echo.Context) {
	if createsTasks(c) {
		s.m.Rejected.WithLabelValues(metrics.ReasonUnauthorized).Inc()
	}
}

// now returns the injected clock's time.
func (s *Server) now() time.Time { return s.clock.Now() }
