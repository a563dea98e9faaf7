// Package roles wires each HTQ role (api, scheduler, dispatcher) from its
// configuration: the Redis client and store, metrics, the health and metrics
// listener, and the role's own loop. The mains only handle the process.
package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/buildinfo"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/httpserve"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/schedule"
	"github.com/htq/htq/internal/store"
)

// Env is what every role is given by its main.
type Env struct {
	Config   *config.Config
	Log      *slog.Logger
	Registry *prometheus.Registry
	Clock    clock.Clock
	// Listening, when set, is told each address the role listens on, once
	// it listens (tests use it to find ports chosen by the OS).
	Listening func(name, addr string)
}

func (e *Env) listening(name string, l net.Listener) {
	e.Log.Info("listening", "listener", name, "addr", l.Addr().String())
	if e.Listening != nil {
		e.Listening(name, l.Addr().String())
	}
}

// openStore connects to Redis and loads the scripts. A Redis that is not
// reachable yet is not fatal: readiness stays false until it is.
func openStore(ctx context.Context, env *Env) (*store.Store, error) {
	rdb, err := store.NewClient(storeOptions(&env.Config.Redis))
	if err != nil {
		return nil, err
	}
	metrics.InstrumentRedis(env.Registry, rdb)
	st, err := store.New(rdb, env.Config.Redis.KeyPrefix, env.Clock)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := st.Init(ictx); err != nil {
		env.Log.Warn("redis not ready yet; will keep trying", "err", err)
	}
	return st, nil
}

// healthServer serves /healthz, /readyz and /metrics for the scheduler and
// dispatcher roles: ready when the role's loop runs and Redis answers.
func healthServer(env *Env, running func() bool, what string, st *store.Store) *http.Server {
	return httpserve.Server(httpserve.Ops{
		Log: env.Log,
		Checks: []httpserve.Check{
			{Name: what + " not running", Fn: func(context.Context) error {
				if !running() {
					return errors.New(what + " not running")
				}
				return nil
			}},
			{Name: "redis unreachable", Fn: st.Ready},
		},
		Gatherer: env.Registry, PProf: env.Config.Debug.PProf,
	}.Mux(), env.Log)
}

// group runs servers next to a role and collects their errors.
type group struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (g *group) run(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
		}
	})
}

func (g *group) wait() error {
	g.wg.Wait()
	return errors.Join(g.errs...)
}

func listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// RunAPI serves the API until ctx is cancelled.
func RunAPI(ctx context.Context, env *Env) error {
	cfg := env.Config
	if err := cfg.CheckAuth(); err != nil {
		return err
	}
	acfg, err := APIConfig(cfg)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	defer st.Close()
	metrics.Build(env.Registry, "api", buildinfo.Version)
	a := cfg.API
	srv, err := api.New(acfg, st, env.Clock, env.Log, metrics.NewAPI(env.Registry), env.Registry, a.MetricsListen == "")
	if err != nil {
		return err
	}

	l, err := listen(ctx, a.Listen)
	if err != nil {
		return err
	}
	env.listening("api", l)
	var g group
	g.run(func() error { return srv.Serve(ctx, l, 10*time.Second) })
	if a.MetricsListen != "" {
		ml, err := listen(ctx, a.MetricsListen)
		if err != nil {
			_ = l.Close()
			return err
		}
		env.listening("metrics", ml)
		// the profiler only here, never on the API's listener
		hs := httpserve.Server(httpserve.Ops{Gatherer: env.Registry, PProf: env.Config.Debug.PProf}.Mux(), env.Log)
		g.run(func() error { return httpserve.Serve(ctx, hs, ml, 5*time.Second) })
	}
	return g.wait()
}

// RunScheduler campaigns and, as leader, promotes until ctx is cancelled.
func RunScheduler(ctx context.Context, env *Env) error {
	cfg := env.Config
	st, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	defer st.Close()
	metrics.Build(env.Registry, "scheduler", buildinfo.Version)
	m := metrics.NewScheduler(env.Registry)
	s := &cfg.Scheduler
	sch, err := schedule.New(schedulerConfig(s), st, env.Clock, env.Log, m, metrics.NewBacklog(env.Registry, s.BacklogTopQueues))
	if err != nil {
		return err
	}
	hs := healthServer(env, sch.Running, "election loop", st)
	return runWithHealth(ctx, env, s.Listen, hs, sch.Run)
}

// RunDispatcher dispatches until ctx is cancelled, then hands its queues back.
func RunDispatcher(ctx context.Context, env *Env) error {
	cfg := env.Config
	st, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	defer st.Close()
	metrics.Build(env.Registry, "dispatcher", buildinfo.Version)
	m := metrics.NewDispatcher(env.Registry)
	dcfg := dispatcherConfig(&cfg.Dispatcher)
	opts, err := deliverOptions(cfg)
	if err != nil {
		return err
	}
	client, err := deliver.New(opts)
	if err != nil {
		return err
	}
	defer client.CloseIdle()
	dis, err := dispatch.New(dcfg, st, client, env.Clock, env.Log.With("dispatcher", dcfg.ID), m)
	if err != nil {
		return err
	}
	hs := healthServer(env, dis.Running, "dispatcher", st)
	return runWithHealth(ctx, env, cfg.Dispatcher.Listen, hs, dis.Run)
}

// runWithHealth serves hs on addr while run runs; the listener stays up
// through run's shutdown so probes see it drain.
func runWithHealth(ctx context.Context, env *Env, addr string, hs *http.Server, run func(context.Context) error) error {
	l, err := listen(ctx, addr)
	if err != nil {
		return err
	}
	env.listening("health", l)
	hctx, stop := context.WithCancel(context.Background())
	var g group
	g.run(func() error { return httpserve.Serve(hctx, hs, l, 2*time.Second) })
	err = run(ctx)
	stop()
	return errors.Join(err, g.wait())
}
