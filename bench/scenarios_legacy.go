package main

// Scenarios through the legacy protocol (/api/addQueue, /api/addTask as the
// PHP SDK sends them), so that the original HTQ and this one can be measured
// the same way.
//
// With --legacy-url URL --legacy-key K --legacy-token T only group "legacy"
// runs, against that server (nothing of HTQ is started):
//
//   enqueue_single_legacy   32 clients, one addTask each request; the server's
//                           own dispatcher runs meanwhile (it cannot be
//                           stopped), and afterwards every task must arrive
//   legacy_dispatch_serial  addTask N tasks to 1 queue from one client, in order
//   legacy_dispatch_multi   addTask to 20 queues, one client per queue
//
// The two legacy_dispatch scenarios also run in the normal (HTQ) mode, against
// HTQ's legacy API with one dispatcher running, for a like-for-like
// comparison. They measure end to end: tasks / (last arrival − first addTask
// sent), with the enqueue and the dispatch overlapping; extra has the
// enqueue rate and the drain time after the last addTask.
//
// The target must be reachable from the server under test: it listens on
// 127.0.0.1, so the server must run on this machine. Task URLs carry the
// index zero-padded (i=0000017) so that text order is index order (the
// original ordered tasks due in the same second by URL text). Queues get
// unique names and are deleted afterwards (deleteQueue, best effort).

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

func init() {
	Register(Scenario{
		Name: "enqueue_single_legacy", Group: GroupLegacy,
		Desc: "external legacy server: addTask, 32 clients, 30,000 requests (quick 5,000): tasks/s, p50/p99 ms; all must arrive",
		Run:  runLegacyEnqueueExternal,
	})
	for _, g := range []string{GroupHTQ, GroupLegacy} {
		where := "HTQ's legacy API, 1 dispatcher running"
		if g == GroupLegacy {
			where = "the --legacy-url server"
		}
		Register(Scenario{
			Name: "legacy_dispatch_serial", Group: g,
			Desc: "addTask 20,000 tasks (quick 3,000) to 1 queue from 1 client, end to end to the target; " + where,
			Run: func(ctx context.Context, env *Env) (Result, error) {
				return runLegacyDispatch(ctx, env, 1, env.Size(20000, 3000))
			},
		})
		Register(Scenario{
			Name: "legacy_dispatch_multi", Group: g,
			Desc: "addTask 20,000 tasks (quick 3,000) to 20 queues, 1 client per queue, end to end; " + where,
			Run: func(ctx context.Context, env *Env) (Result, error) {
				return runLegacyDispatch(ctx, env, 20, env.Size(20000, 3000))
			},
		})
	}
}

// legacyServer is the server a legacy scenario talks to.
type legacyServer struct {
	rc         *restClient
	key, token string
	external   bool
	cluster    *htqCluster // nil when external
}

// openLegacy returns the --legacy-url server, or starts HTQ with one
// dispatcher in the normal mode. The caller must close it.
func openLegacy(ctx context.Context, env *Env, clients int) (*legacyServer, error) {
	if env.Cfg.LegacyURL != "" {
		u := strings.TrimRight(env.Cfg.LegacyURL, "/")
		return &legacyServer{rc: newRESTClient(u, "", clients), key: env.Cfg.LegacyKey, token: env.Cfg.LegacyToken, external: true}, nil
	}
	c, err := startHTQ(ctx, env, htqOptions{Dispatchers: 1})
	if err != nil {
		return nil, err
	}
	return &legacyServer{rc: newRESTClient(c.API, "", clients), key: benchLegacyKey, token: benchLegacyToken, cluster: c}, nil
}

func (s *legacyServer) close() {
	s.rc.hc.CloseIdleConnections()
	s.cluster.Close()
}

func (s *legacyServer) check() error {
	if s.cluster != nil {
		return s.cluster.Check()
	}
	return nil
}

func (s *legacyServer) note() string {
	if s.external {
		return "legacy server " + s.rc.base
	}
	return "HTQ legacy API; " + s.cluster.Note()
}

func (s *legacyServer) addQueues(ctx context.Context, names []string) error {
	return parallel(ctx, len(names), 8, func(ctx context.Context, i int) error {
		return s.rc.Legacy(ctx, s.key, s.token, "addQueue", "queue_name", names[i], "type", "real_time",
			"stepping_time", "0", "max_time_interval", "0")
	})
}

// deleteQueues removes the run's queues from an external server (best effort).
func (s *legacyServer) deleteQueues(names []string) {
	if !s.external {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = parallel(ctx, len(names), 4, func(ctx context.Context, i int) error {
		_ = s.rc.Legacy(ctx, s.key, s.token, "deleteQueue", "queue_name", names[i])
		return nil
	})
}

func (s *legacyServer) addTask(ctx context.Context, queue, taskURL string) error {
	body, ct := legacyAddTaskForm(s.key, s.token, queue, taskURL)
	st, b, err := s.rc.do(ctx, http.MethodPost, "/api/addTask", body, ct)
	if err == nil {
		err = legacyAccepted(st, b, enqRequest{})
	}
	return err
}

// unreachableHint explains a legacy run where nothing arrived.
func unreachableHint(env *Env, s *legacyServer, err error) error {
	if s.external && env.Target.Count() == 0 {
		return fmt.Errorf("%w (no call arrived: can the server reach %s?)", err, env.Target.URL)
	}
	return err
}

func runLegacyDispatch(ctx context.Context, env *Env, nq, total int) (Result, error) {
	env.Target.Reset(total + 1024)
	s, err := openLegacy(ctx, env, nq)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	prefix := "htqbench-ls"
	if nq > 1 {
		prefix = "htqbench-lm"
	}
	names := queueNames(env, prefix, nq)
	defer s.deleteQueues(names)
	if err := s.addQueues(ctx, names); err != nil {
		return Result{}, err
	}
	counts := split(total, nq)
	expected := make(map[string]int, nq)
	for i, q := range names {
		expected[q] = counts[i]
	}
	// Warm the client connections (one per queue client) with allQueue.
	if err := parallel(ctx, nq, nq, func(ctx context.Context, _ int) error {
		body, ct := legacyForm(s.key, s.token)
		_, _, err := s.rc.do(ctx, http.MethodPost, "/api/allQueue", body, ct)
		return err
	}); err != nil {
		return Result{}, err
	}
	base := env.Target.URL
	tr := newDeliveryTracker(expected)
	m := env.BeginMeasure()
	// One client per queue, each adding its queue's tasks in index order.
	err = parallel(ctx, nq, nq, func(ctx context.Context, qi int) error {
		q := names[qi]
		for i := range counts[qi] {
			if err := s.addTask(ctx, q, zeroPadURL(base, "/t", q, i)); err != nil {
				return fmt.Errorf("addTask %s %d: %w", q, i, err)
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	tEnq := env.Target.Now()
	tEnd, err := waitDelivered(ctx, env.Target, tr, 30*time.Second, s.check)
	if err != nil {
		return Result{}, unreachableHint(env, s, err)
	}
	time.Sleep(150 * time.Millisecond) // late duplicates, if any
	rep := CheckOrder(env.Target.Arrivals(), expected)
	env.Debugf("order: %s", rep)
	if rep.Missing > 0 || rep.Unexpected > 0 || rep.Unparsed > 0 {
		return Result{}, fmt.Errorf("tasks lost or unexpected: %s", rep)
	}
	if rep.OutOfOrder > 0 && !s.external {
		return Result{}, fmt.Errorf("per-queue order violated: %s", rep)
	}
	secs := float64(tEnd-m.T0) / 1e9
	res := Result{Value: float64(total) / secs, Unit: "tasks/s", Extra: map[string]float64{
		"tasks": float64(total), "queues": float64(nq), "seconds": secs,
		"enqueue_tasks_per_s":   float64(total) / (float64(tEnq-m.T0) / 1e9),
		"drain_after_enqueue_s": float64(max(0, tEnd-tEnq)) / 1e9,
		"first_arrival_ms":      float64(tr.first-m.T0) / 1e6,
		"duplicates":            float64(rep.Duplicates),
		"out_of_order":          float64(rep.OutOfOrder),
		"http_conns":            float64(m.Conns()),
	}}
	order := orderSummary(rep)
	if rep.OutOfOrder > 0 {
		order = fmt.Sprintf("OUT OF ORDER %d, duplicates %d", rep.OutOfOrder, rep.Duplicates)
	}
	res.Note = fmt.Sprintf("end to end (enqueue and dispatch overlap), %d queue(s), %d addTask client(s); %s; %s",
		nq, nq, order, s.note())
	if s.cluster != nil {
		addProblems(ctx, env, s.cluster, &res)
	}
	return res, nil
}

// runLegacyEnqueueExternal is enqueue_single_legacy against --legacy-url.
func runLegacyEnqueueExternal(ctx context.Context, env *Env) (Result, error) {
	n := env.Size(30000, 5000)
	env.Target.Reset(n + 1024)
	s, err := openLegacy(ctx, env, enqClients)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	names := queueNames(env, "htqbench-el", enqQueues+1)
	defer s.deleteQueues(names)
	if err := s.addQueues(ctx, names); err != nil {
		return Result{}, err
	}
	warm, qs := names[enqQueues], names[:enqQueues]
	base := env.Target.URL
	mk := func(q string, i int) enqRequest {
		body, ct := legacyAddTaskForm(s.key, s.token, q, zeroPadURL(base, "/t", q, i))
		return enqRequest{path: "/api/addTask", body: body, ctype: ct, tasks: 1}
	}
	reqs := make([]enqRequest, n)
	expected := make(map[string]int, enqQueues+1)
	for i := range reqs {
		q := qs[i%enqQueues]
		reqs[i] = mk(q, i/enqQueues)
		expected[q]++
	}
	expected[warm] = enqClients * warmupPerClient
	if err := warmConns(ctx, s.rc, enqClients, func(cl, k int) enqRequest { return mk(warm, cl*warmupPerClient+k) }, legacyAccepted); err != nil {
		return Result{}, err
	}
	m := env.BeginMeasure()
	self := selfMeter()
	out, err := runLoad(ctx, s.rc, reqs, enqClients, legacyAccepted)
	if err != nil {
		return Result{}, err
	}
	tEnq := env.Target.Now()
	tr := newDeliveryTracker(expected)
	tEnd, err := waitDelivered(ctx, env.Target, tr, 30*time.Second, nil)
	if err != nil {
		return Result{}, unreachableHint(env, s, fmt.Errorf("after the enqueue: %w", err))
	}
	res := enqueueResult(n, out, RedisSnapshot{}, RedisSnapshot{}, &cpuMeter{}, self, m)
	for _, k := range []string{"redis_cmds_per_task", "redis_cpu_us_per_task"} {
		delete(res.Extra, k)
	}
	p50, p99, mean, mx := msStats(out.lat)
	res.P50, res.P99 = F(p50), F(p99)
	res.Extra["latency_mean_ms"], res.Extra["latency_max_ms"] = mean, mx
	res.Extra["clients"] = enqClients
	res.Extra["drain_after_enqueue_s"] = float64(max(0, tEnd-tEnq)) / 1e9
	res.Note = fmt.Sprintf("legacy /api/addTask multipart, %d clients over %d queues, p50/p99 = request latency in ms; "+
		"the server dispatches meanwhile; all %d arrived afterwards; %s", enqClients, enqQueues, n, s.note())
	return res, nil
}
