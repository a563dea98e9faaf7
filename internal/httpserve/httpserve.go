// Package httpserve is the HTTP lifecycle every role shares: serving a
// listener until the role's context ends and then draining it within a
// grace period, and the operational endpoints (/healthz, /readyz,
// /metrics, optionally Go's profiler) with one answer format for all three
// roles.
package httpserve

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Serve runs hs on l until ctx ends, then shuts it down: requests in
// progress get up to grace to finish. It returns the server's error, or
// the shutdown's when the grace ran out.
func Serve(ctx context.Context, hs *http.Server, l net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// Check is one readiness condition. Name is what a probe is told when it
// fails (probes need no token, so never the error itself: it may name
// Redis's address); the error goes to the log.
type Check struct {
	Name string
	Fn   func(context.Context) error
}

// ReadyTimeout bounds one readiness probe.
const ReadyTimeout = 2 * time.Second

// Healthz answers liveness: the process serves HTTP.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, status{Status: "ok"})
	})
}

// Readyz answers 200 {"status":"ready"} when every check passes within
// ReadyTimeout, else 503 {"status":"unavailable","error":"<check name>"}
// for the first that failed, whose error is logged.
func Readyz(log *slog.Logger, checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		for _, c := range checks {
			if err := c.Fn(ctx); err != nil {
				log.Warn("not ready", "check", c.Name, "err", err)
				writeStatus(w, http.StatusServiceUnavailable, status{Status: "unavailable", Error: c.Name})
				return
			}
		}
		writeStatus(w, http.StatusOK, status{Status: "ready"})
	})
}

// Metrics serves a registry's metrics in the Prometheus formats.
func Metrics(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// Ops is what a role's operational listener serves.
type Ops struct {
	Log      *slog.Logger
	Checks   []Check             // nil: no /healthz and /readyz (a metrics-only listener)
	Gatherer prometheus.Gatherer // nil: no /metrics
	PProf    bool                // Go's profiler under /debug/pprof/
}

// Mux returns a mux with /healthz and /readyz (when there are checks),
// /metrics and, when asked, the profiler.
func (o Ops) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	if o.Checks != nil {
		mux.Handle("GET /healthz", Healthz())
		mux.Handle("GET /readyz", Readyz(o.Log, o.Checks...))
	}
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", Metrics(o.Gatherer))
	}
	if o.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Server wraps a handler for an operational listener: short timeouts (the
// profiler's 30 s CPU profile fits the write timeout), errors to the log.
func Server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 40 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// status is the body of every health answer.
type status struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func writeStatus(w http.ResponseWriter, code int, st status) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}
