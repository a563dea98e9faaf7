package httpserve_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/httpserve"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// TestReadyzNamesTheCheckNotTheError: a probe needs no token, so a failed
// check answers its name and the error (which may carry Redis's address)
// goes to the log only.
func TestReadyzNamesTheCheckNotTheError(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	up := true
	ops := httpserve.Ops{Log: log, Checks: []httpserve.Check{
		{Name: "loop not running", Fn: func(context.Context) error { return nil }},
		{Name: "redis unreachable", Fn: func(context.Context) error {
			if up {
				return nil
			}
			return errors.New("dial tcp 10.1.2.3:6379: connection refused")
		}},
	}}
	mux := ops.Mux()
	if code, body := get(t, mux, "/readyz"); code != http.StatusOK || body != `{"status":"ready"}`+"\n" {
		t.Errorf("ready: %d %q", code, body)
	}
	up = false
	code, body := get(t, mux, "/readyz")
	if code != http.StatusServiceUnavailable || body != `{"status":"unavailable","error":"redis unreachable"}`+"\n" {
		t.Errorf("not ready: %d %q", code, body)
	}
	if !strings.Contains(logs.String(), "10.1.2.3:6379") {
		t.Errorf("the cause is not logged: %q", logs.String())
	}
	if code, body := get(t, mux, "/healthz"); code != http.StatusOK || body != `{"status":"ok"}`+"\n" {
		t.Errorf("healthz must not depend on the checks: %d %q", code, body)
	}
	if code, _ := get(t, mux, "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without a gatherer: %d, want 404", code)
	}
}

func TestMetricsOnlyMux(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "htq_test_total", Help: "a test counter"})
	reg.MustRegister(c)
	c.Add(3)
	mux := httpserve.Ops{Gatherer: reg}.Mux()
	if code, body := get(t, mux, "/metrics"); code != http.StatusOK || !strings.Contains(body, "htq_test_total 3") {
		t.Errorf("/metrics: %d %q", code, body)
	}
	for _, p := range []string{"/healthz", "/readyz", "/debug/pprof/"} {
		if code, _ := get(t, mux, p); code != http.StatusNotFound {
			t.Errorf("%s on a metrics-only listener: %d, want 404", p, code)
		}
	}
	if code, _ := get(t, httpserve.Ops{Gatherer: reg, PProf: true}.Mux(), "/debug/pprof/"); code != http.StatusOK {
		t.Errorf("pprof asked for but not served: %d", code)
	}
}

// TestServeDrainsWithinGrace: when the context ends, a request in progress
// finishes if it can within the grace, and Serve returns nil.
func TestServeDrainsWithinGrace(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		_, _ = w.Write([]byte("done"))
	}), ReadHeaderTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpserve.Serve(ctx, hs, l, 5*time.Second) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + l.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	if b := <-got; b != "done" {
		t.Errorf("the request in progress got %q, want done", b)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestServeGivesUpAfterGrace: a request that outlives the grace makes
// Serve return the shutdown's error instead of hanging.
func TestServeGivesUpAfterGrace(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	hs := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(started)
		<-release
	}), ReadHeaderTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpserve.Serve(ctx, hs, l, 100*time.Millisecond) }()
	go func() {
		if resp, err := http.Get("http://" + l.Addr().String() + "/"); err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case err := <-served:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Serve after the grace: %v, want the deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its grace")
	}
}
