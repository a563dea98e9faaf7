// Package roles wires each HTQ role (api, scheduler, dispatcher) from its
// configuration: the Redis client and store, metrics, the health and metrics
// listener, and the role's own loop. The mains only handle the process.
package roles

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/buildinfo"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/console"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/httpserve"
	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/schedule"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
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
	r := env.Config.Redis
	rdb, err := store.NewClient(store.Options{
		Mode: r.Mode, URL: r.URL, Addrs: r.Addrs, Username: r.Username, Password: r.Password, DB: r.DB,
		MasterName: r.MasterName, SentinelUsername: r.SentinelUsername, SentinelPassword: r.SentinelPassword,
		TLS: r.TLS, PoolSize: r.PoolSize, DialTimeout: r.DialTimeout.Std(), ReadTimeout: r.ReadTimeout.Std(),
		WriteTimeout: r.WriteTimeout.Std(),
	})
	if err != nil {
		return nil, err
	}
	metrics.InstrumentRedis(env.Registry, rdb)
	st, err := store.New(rdb, r.KeyPrefix, env.Clock)
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
	loc, err := time.LoadLocation(cfg.API.TimeZone)
	if err != nil {
		return fmt.Errorf("api.time_zone: %w", err)
	}
	st, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	defer st.Close()
	metrics.Build(env.Registry, "api", buildinfo.Version)
	m := metrics.NewAPI(env.Registry)
	a := cfg.API
	var ui http.Handler
	if a.UI {
		ui = console.Handler()
	}
	srv := api.New(api.Config{
		Tokens: cfg.BearerHashes(), ReadOnlyTokens: cfg.ReadOnlyHashes(), InsecureNoAuth: a.InsecureNoAuth,
		Legacy: legacy.Settings{
			AppKey: a.LegacyAppKey, AppToken: a.LegacyAppToken, TimeZone: loc,
			MaxAttempts: cfg.Legacy.MaxAttempts, MinGap: cfg.Legacy.MinGap.Std(),
			StrictExecuteTime: cfg.Legacy.StrictExecuteTime,
		},
		CORSOrigins: a.CORSOrigins, CORSCredentials: a.CORSCredentials, AllowedHosts: a.AllowedHosts,
		AutoCreateQueues: a.AutoCreateQueues, MinVariableGap: cfg.Queues.MinVariableGap.Std(),
		MaxBodyBytes: a.MaxBodyBytes, MaxBatch: a.MaxBatch,
		Limits:        task.Limits{MaxURLBytes: a.MaxURLBytes, MaxHeaderBytes: a.MaxHeaderBytes, MaxBodyBytes: a.MaxBodyBytes},
		QueueDefaults: cfg.QueueDefaults(), IdempotencyWindow: cfg.Queues.IdempotencyWindow.Std(),
		ReadHeaderTimeout: a.ReadHeaderTimeout.Std(), ReadTimeout: a.ReadTimeout.Std(),
		WriteTimeout: a.WriteTimeout.Std(), IdleTimeout: a.IdleTimeout.Std(), Version: buildinfo.Version,
		UI: ui,
	}, st, env.Clock, env.Log, m, env.Registry, a.MetricsListen == "")

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
	s := cfg.Scheduler
	sch := schedule.New(schedule.Config{
		LockTTL: s.LockTTL.Std(), PollInterval: s.PollInterval.Std(), PromoteBatch: s.PromoteBatch,
		JanitorInterval: s.JanitorInterval.Std(), BacklogInterval: s.BacklogInterval.Std(),
		MissedGrace: s.MissedGrace.Std(),
	}, st, env.Clock, env.Log, m, metrics.NewBacklog(env.Registry, s.BacklogTopQueues))
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
	d := cfg.Dispatcher
	id := d.ID
	if id == "" {
		id = defaultID()
	}
	signer, err := deliver.NewSigner(cfg.Signing.Secret, cfg.Signing.PreviousSecret)
	if err != nil {
		return fmt.Errorf("signing.secret: %w", err)
	}
	var deny []string
	if cfg.Egress.DefaultDeny {
		deny = append(deny, deliver.DefaultDeny...)
	}
	guard, err := deliver.NewGuard(append(deny, cfg.Egress.Deny...), cfg.Egress.Allow, cfg.Egress.DenyLoopback)
	if err != nil {
		return err
	}
	client := deliver.New(deliver.Options{
		UserAgent: buildinfo.UserAgent(), MaxResponseBytes: d.MaxResponseBytes, MaxIdleConnsPerHost: d.MaxQueues,
		Guard: guard, Signer: signer,
	})
	defer client.CloseIdle()
	dis := dispatch.New(dispatch.Config{
		ID: id, MaxQueues: d.MaxQueues, LeaseTTL: d.LeaseTTL.Std(), RecoveryGrace: d.RecoveryGrace.Std(),
		ShutdownGrace: d.ShutdownGrace.Std(), PollMin: d.PollMin.Std(), PollMax: d.PollMax.Std(), History: d.History,
	}, st, client, env.Clock, env.Log.With("dispatcher", id), m)
	hs := healthServer(env, dis.Running, "dispatcher", st)
	return runWithHealth(ctx, env, d.Listen, hs, dis.Run)
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

func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "htq"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
