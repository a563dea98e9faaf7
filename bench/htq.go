package main

// HTQ as real processes for the htq scenarios: the three binaries (built once
// per invocation from the main module with `go build -o`, or taken from
// --bin-dir), and a cluster of htq-api, htq-scheduler and htq-dispatcher
// processes around a private redis-server, configured only through HTQ_*
// environment variables and --listen.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/htq/htq/client"
)

// Credentials of the private HTQ clusters.
const (
	benchToken       = "bench-token-0123456789abcdef"
	benchLegacyKey   = "bench_key"
	benchLegacyToken = "bench_token"
)

// tuningSettings are the HTQ_* settings every cluster gets that are not
// plumbing (addresses, credentials). They are listed in each result's note.
var tuningSettings = []string{"HTQ_LOG_LEVEL=warn"}

// ---- binaries ----------------------------------------------------------------

var htqBins struct {
	once sync.Once
	dir  string // directory holding htq-api, htq-scheduler, htq-dispatcher
	desc string // where they come from
	err  error
	tmp  string // temporary build directory, removed by cleanupHTQ
}

var htqRoles = []string{"api", "scheduler", "dispatcher"}

// htqBinDir returns the directory with the three binaries: --bin-dir, or a
// temporary directory they are built into (once per invocation) from the main
// module next to the bench module. A failed build is remembered and fails
// every HTQ scenario with its message.
func htqBinDir(cfg *Config) (string, error) {
	htqBins.once.Do(func() {
		if cfg.BinDir != "" {
			for _, r := range htqRoles {
				if _, err := os.Stat(filepath.Join(cfg.BinDir, "htq-"+r)); err != nil {
					htqBins.err = fmt.Errorf("--bin-dir: %w", err)
					return
				}
			}
			dir, err := filepath.Abs(cfg.BinDir) // processes start in their own directories
			if err != nil {
				htqBins.err = fmt.Errorf("--bin-dir: %w", err)
				return
			}
			htqBins.dir, htqBins.desc = dir, "from --bin-dir "+cfg.BinDir
			return
		}
		root, err := htqSourceRoot()
		if err != nil {
			htqBins.err = err
			return
		}
		tmp, err := os.MkdirTemp("", "htqbench-bin-")
		if err != nil {
			htqBins.err = err
			return
		}
		htqBins.tmp = tmp
		began := time.Now()
		args := []string{"build", "-trimpath", "-o", tmp + string(filepath.Separator)}
		for _, r := range htqRoles {
			args = append(args, "./cmd/"+r)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			htqBins.err = fmt.Errorf("go build in %s: %w: %s", root, err, strings.TrimSpace(string(out)))
			return
		}
		for _, r := range htqRoles {
			if err := os.Rename(filepath.Join(tmp, r), filepath.Join(tmp, "htq-"+r)); err != nil {
				htqBins.err = err
				return
			}
		}
		rev := "unknown commit"
		if b, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
			rev = "commit " + strings.TrimSpace(string(b))
		}
		htqBins.dir = tmp
		htqBins.desc = fmt.Sprintf("built from %s (%s) in %.1fs", root, rev, time.Since(began).Seconds())
		fmt.Fprintf(os.Stderr, "   htq binaries %s\n", htqBins.desc)
	})
	return htqBins.dir, htqBins.err
}

// htqSourceRoot is the main module's directory: the parent of the bench
// module (found from the working directory upwards).
func htqSourceRoot() (string, error) {
	dir, _ := os.Getwd()
	for d := dir; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/htq/htq/bench") {
			root := filepath.Dir(d)
			if m, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil &&
				strings.Contains(string(m), "module github.com/htq/htq\n") {
				return root, nil
			}
			break
		}
		p := filepath.Dir(d)
		if p == d {
			break
		}
		d = p
	}
	return "", errors.New("cannot find the HTQ main module (run from bench/, or pass --bin-dir with htq-api, htq-scheduler, htq-dispatcher)")
}

// ---- processes -----------------------------------------------------------------

// htqProc is one running HTQ process.
type htqProc struct {
	Role   string
	Name   string
	Health string // base URL of its listener (the API itself for the api role)
	Log    string

	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopping atomic.Bool
}

var (
	liveProcsMu sync.Mutex
	liveProcs   = map[*htqProc]struct{}{}
)

// cleanupHTQ kills every HTQ process still running and removes the
// temporary binaries (at exit and on signals).
func cleanupHTQ() {
	liveProcsMu.Lock()
	all := make([]*htqProc, 0, len(liveProcs))
	for p := range liveProcs {
		all = append(all, p)
	}
	liveProcsMu.Unlock()
	for _, p := range all {
		p.kill()
	}
	if htqBins.tmp != "" {
		os.RemoveAll(htqBins.tmp)
	}
}

func (p *htqProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *htqProc) kill() {
	p.stopping.Store(true)
	if p.cmd.Process != nil && !p.exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stop sends SIGTERM and waits up to grace before SIGKILL.
func (p *htqProc) stop(grace time.Duration) {
	p.stopping.Store(true)
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Pid of the process.
func (p *htqProc) Pid() int { return p.cmd.Process.Pid }

func (p *htqProc) tail(n int) string { return tailFile(p.Log, n) }

// ---- cluster ------------------------------------------------------------------

// htqOptions shape a cluster.
type htqOptions struct {
	Dispatchers int      // started (and waited for) with the cluster; more with StartDispatchers
	NoScheduler bool     // no scheduler process
	Schedulers  int      // scheduler processes (0: one, unless NoScheduler)
	Settings    []string // extra HTQ_* settings (KEY=VALUE) for every process, listed in the note
}

// htqCluster is a private redis-server with HTQ processes around it.
type htqCluster struct {
	env         *Env
	Redis       *Redis
	Dir         string
	API         string // base URL of the API
	APIProc     *htqProc
	Scheduler   *htqProc       // the first scheduler
	Schedulers  []*htqProc     // every scheduler
	Dispatchers []*htqProc     // the dispatchers running (StopDispatcher removes one)
	REST        *restClient    // 16 keep-alive connections, for raw requests
	HTQ         *client.Client // the Go client over REST's connections, for set-up and checks

	bins     string
	env0     []string // environment of every process
	settings []string // tuning settings (for the note)
	procs    []*htqProc
	nextD    int
}

// startHTQ starts a private Redis, the API, the scheduler and opt.Dispatchers
// dispatchers, each ready (/readyz answers 200) when it returns.
func startHTQ(ctx context.Context, env *Env, opt htqOptions) (c *htqCluster, err error) {
	bins, err := htqBinDir(env.Cfg)
	if err != nil {
		return nil, err
	}
	r, err := env.StartRedis(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "htqbench-run-")
	if err != nil {
		r.Stop()
		return nil, err
	}
	c = &htqCluster{env: env, Redis: r, Dir: dir, bins: bins}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	c.settings = append(append([]string(nil), tuningSettings...), opt.Settings...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HTQ_") { // the caller's HTQ settings must not leak in
			c.env0 = append(c.env0, kv)
		}
	}
	c.env0 = append(c.env0,
		"HTQ_REDIS_URL=redis://"+r.Addr+"/0",
		"HTQ_API_TOKENS="+benchToken,
		"HTQ_API_LEGACY_APP_KEY="+benchLegacyKey,
		"HTQ_API_LEGACY_APP_TOKEN="+benchLegacyToken,
		"HTQ_API_TIME_ZONE=UTC",
		"HTQ_LOG_FORMAT=json",
	)
	c.env0 = append(c.env0, c.settings...)

	if c.APIProc, err = c.launch(ctx, "api", "api"); err != nil {
		return c, err
	}
	c.API = c.APIProc.Health
	c.REST = newRESTClient(c.API, benchToken, 16)
	if c.HTQ, err = newAPIClient(c.REST, benchToken); err != nil {
		return c, err
	}
	if !opt.NoScheduler {
		for i := range max(1, opt.Schedulers) {
			name := "scheduler"
			if i > 0 {
				name += strconv.Itoa(i + 1)
			}
			p, err := c.launch(ctx, "scheduler", name)
			if err != nil {
				return c, err
			}
			c.Schedulers = append(c.Schedulers, p)
		}
		c.Scheduler = c.Schedulers[0]
	}
	if opt.Dispatchers > 0 {
		if _, err = c.StartDispatchers(ctx, opt.Dispatchers); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Note lists the tuning settings, for a result's note.
func (c *htqCluster) Note() string { return strings.Join(c.settings, " ") }

// StartDispatchers starts n more dispatchers at once and waits until each is
// ready. Time the start just before calling it.
func (c *htqCluster) StartDispatchers(ctx context.Context, n int) ([]*htqProc, error) {
	ps := make([]*htqProc, 0, n)
	for range n {
		c.nextD++
		p, err := c.spawn("dispatcher", fmt.Sprintf("bench-d%d", c.nextD))
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := c.waitReady(ctx, p); err != nil {
			return nil, err
		}
	}
	c.Dispatchers = append(c.Dispatchers, ps...)
	return ps, nil
}

// StopDispatcher stops one of the cluster's dispatchers: gracefully
// (SIGTERM, SIGKILL after grace) or at once with SIGKILL (kill -9, nothing
// released). It is removed from Dispatchers; its log stays in LogProblems.
func (c *htqCluster) StopDispatcher(p *htqProc, graceful bool, grace time.Duration) error {
	i := slices.Index(c.Dispatchers, p)
	if i < 0 {
		return fmt.Errorf("%s is not a running dispatcher of this cluster", p.Name)
	}
	if graceful {
		p.stop(grace)
	} else {
		p.kill()
	}
	c.Dispatchers = slices.Delete(c.Dispatchers, i, i+1)
	liveProcsMu.Lock()
	delete(liveProcs, p)
	liveProcsMu.Unlock()
	if graceful && p.waitErr != nil {
		return fmt.Errorf("%s did not exit cleanly on SIGTERM (%w): %s", p.Name, p.waitErr, p.tail(8))
	}
	return nil
}

// launch starts a process and waits until it is ready; a port taken between
// choosing and binding it is retried on another port.
func (c *htqCluster) launch(ctx context.Context, role, name string) (*htqProc, error) {
	var err error
	for range 3 {
		var p *htqProc
		if p, err = c.spawn(role, name); err != nil {
			return nil, err
		}
		if err = c.waitReady(ctx, p); err == nil {
			return p, nil
		}
		if !strings.Contains(p.tail(20), "address already in use") {
			return nil, err
		}
	}
	return nil, err
}

func (c *htqCluster) spawn(role, name string) (*htqProc, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p := &htqProc{Role: role, Name: name, Log: filepath.Join(c.Dir, name+".log"), done: make(chan struct{})}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p.Health = "http://" + addr
	p.cmd = exec.Command(filepath.Join(c.bins, "htq-"+role), "--listen", addr)
	p.cmd.Env = append(append([]string(nil), c.env0...), "HTQ_DISPATCHER_ID="+name)
	p.cmd.Stdout = f
	p.cmd.Stderr = f
	p.cmd.Dir = c.Dir
	p.cmd.SysProcAttr = redisSysProcAttr() // dies with the benchmark (Linux)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start htq-%s: %w", role, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	liveProcsMu.Lock()
	liveProcs[p] = struct{}{}
	liveProcsMu.Unlock()
	c.procs = append(c.procs, p)
	return p, nil
}

var healthClient = &http.Client{Timeout: 2 * time.Second}

func (c *htqCluster) waitReady(ctx context.Context, p *htqProc) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		if p.exited() {
			return fmt.Errorf("%s exited at start (%w): %s", p.Name, p.waitErr, p.tail(8))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Health+"/readyz", nil)
		if resp, err := healthClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 20s: %s", p.Name, p.tail(8))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", p.Name, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// WaitLeader waits until the scheduler reports htq_scheduler_is_leader 1.
func (c *htqCluster) WaitLeader(ctx context.Context) error {
	if c.Scheduler == nil {
		return errors.New("no scheduler")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s, err := scrape(ctx, c.Scheduler.Health+"/metrics"); err == nil {
			if v, ok := promSum(s, "htq_scheduler_is_leader"); ok && v == 1 {
				return nil
			}
		}
		if err := c.Check(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scheduler not leader after 20s: %s", c.Scheduler.tail(8))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Check reports a process that exited on its own, with its log's tail.
func (c *htqCluster) Check() error {
	for _, p := range c.procs {
		if !p.stopping.Load() && p.exited() {
			return fmt.Errorf("%s exited (%w): %s", p.Name, p.waitErr, p.tail(8))
		}
	}
	return nil
}

// LogProblems returns the number of WARN/ERROR lines in all the processes'
// logs and the first few of them.
func (c *htqCluster) LogProblems() (int, []string) {
	n := 0
	var first []string
	for _, p := range c.procs {
		f, err := os.Open(p.Log)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if bytes.Contains(line, []byte(`"level":"WARN"`)) || bytes.Contains(line, []byte(`"level":"ERROR"`)) {
				n++
				if len(first) < 3 {
					s := string(line)
					if len(s) > 300 {
						s = s[:300] + "…"
					}
					first = append(first, p.Name+": "+s)
				}
			}
		}
		f.Close()
	}
	return n, first
}

// DispatcherMetric sums a metric over every dispatcher.
func (c *htqCluster) DispatcherMetric(ctx context.Context, name string) float64 {
	sum := 0.0
	for _, p := range c.Dispatchers {
		if s, err := scrape(ctx, p.Health+"/metrics"); err == nil {
			v, _ := promSum(s, name)
			sum += v
		}
	}
	return sum
}

// Close stops the processes (dispatchers first, SIGTERM then SIGKILL),
// Redis, and removes the run directory.
func (c *htqCluster) Close() {
	if c == nil {
		return
	}
	var wg sync.WaitGroup
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(5 * time.Second)
			liveProcsMu.Lock()
			delete(liveProcs, p)
			liveProcsMu.Unlock()
		}()
	}
	wg.Wait()
	if c.REST != nil {
		c.REST.hc.CloseIdleConnections()
	}
	c.Redis.Stop()
	os.RemoveAll(c.Dir)
}

// procCPU returns the CPU time (user + system, seconds) a process has used,
// from /proc/<pid>/stat (Linux; an error elsewhere).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(string(b))
}

// parseProcStatCPU reads utime+stime (fields 14 and 15, clock ticks of
// 1/100 s) from the text of /proc/<pid>/stat.
func parseProcStatCPU(s string) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (ut + st) / 100, nil
}

// cpuMeter measures the CPU used by some processes over an interval.
type cpuMeter struct {
	pids  []int
	start []float64
}

func newCPUMeter(procs ...*htqProc) *cpuMeter {
	m := &cpuMeter{}
	for _, p := range procs {
		if p == nil {
			continue
		}
		v, err := procCPU(p.Pid())
		if err != nil {
			return &cpuMeter{}
		}
		m.pids = append(m.pids, p.Pid())
		m.start = append(m.start, v)
	}
	return m
}

// Seconds used since newCPUMeter (summed); ok is false when unavailable.
func (m *cpuMeter) Seconds() (float64, bool) {
	if len(m.pids) == 0 {
		return 0, false
	}
	sum := 0.0
	for i, pid := range m.pids {
		v, err := procCPU(pid)
		if err != nil {
			return 0, false
		}
		sum += v - m.start[i]
	}
	return sum, true
}
