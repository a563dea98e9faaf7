package main

// Private redis-server instances for benchmarks, plus INFO helpers.
//
// Every scenario run starts its own redis-server on a free loopback port with
// a fresh temporary directory and kills it afterwards. The shared Redis on
// 127.0.0.1:6379 is never touched.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// Binary is the redis-server executable. Empty: "redis-server" from PATH,
	// falling back to /usr/bin/redis-server.
	Binary string
	// Persistence keeps redis-server's default persistence settings. By
	// default (false) the server runs with --save "" --appendonly no, which
	// is what the benchmarks want.
	Persistence bool
	// ExtraArgs are appended to the command line (e.g. "--maxmemory", "1gb").
	ExtraArgs []string
	// StartTimeout bounds the wait for the first successful PING (default 10s).
	StartTimeout time.Duration
}

// Redis is a running private redis-server.
type Redis struct {
	Addr string // "127.0.0.1:PORT"
	Port int
	Dir  string // temporary working directory (removed by Stop)

	// Client is a small go-redis client for control and INFO calls. Scenarios
	// should create their own clients with suitable pool sizes for load.
	Client *redis.Client

	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
}

var (
	liveRedisMu sync.Mutex
	liveRedis   = map[*Redis]struct{}{}
)

// StopAllRedis stops every private redis-server still running (used on
// signals and at process exit).
func StopAllRedis() {
	liveRedisMu.Lock()
	all := make([]*Redis, 0, len(liveRedis))
	for r := range liveRedis {
		all = append(all, r)
	}
	liveRedisMu.Unlock()
	for _, r := range all {
		r.Stop()
	}
}

func redisBinary(opt string) string {
	if opt != "" {
		return opt
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	return "/usr/bin/redis-server"
}

// FreePort returns a currently free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var errRedisExited = errors.New("redis-server exited during startup")

// StartRedis starts a private redis-server on a free loopback port and waits
// (polling PING, bounded by StartTimeout and ctx) until it answers. A port
// race with another process is retried on a new port.
func StartRedis(ctx context.Context, opt RedisOptions) (*Redis, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		r, err := startRedisOnce(ctx, opt, port)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if !errors.Is(err, errRedisExited) {
			return nil, err
		}
	}
	return nil, lastErr
}

func startRedisOnce(ctx context.Context, opt RedisOptions, port int) (*Redis, error) {
	dir, err := os.MkdirTemp("", "htqbench-redis-")
	if err != nil {
		return nil, err
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
	if !opt.Persistence {
		args = append(args, "--save", "", "--appendonly", "no")
	}
	args = append(args, opt.ExtraArgs...)

	cmd := exec.Command(redisBinary(opt.Binary), args...)
	cmd.Dir = dir
	cmd.SysProcAttr = redisSysProcAttr()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &Redis{
		Addr:   fmt.Sprintf("127.0.0.1:%d", port),
		Port:   port,
		Dir:    dir,
		cmd:    cmd,
		exited: make(chan struct{}),
	}
	go func() {
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()
	liveRedisMu.Lock()
	liveRedis[r] = struct{}{}
	liveRedisMu.Unlock()

	r.Client = redis.NewClient(&redis.Options{
		Addr:         r.Addr,
		PoolSize:     4,
		DialTimeout:  500 * time.Millisecond,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		MaxRetries:   -1,
	})

	timeout := opt.StartTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.waitReady(wctx); err != nil {
		logTail := tailFile(filepath.Join(dir, "redis.log"), 5)
		r.Stop()
		if logTail != "" {
			err = fmt.Errorf("%w\nredis.log:\n%s", err, logTail)
		}
		return nil, err
	}
	return r, nil
}

// waitReady polls until this process answers on its port (INFO server
// names its pid: a PING could be answered by another server that took the
// port after FreePort saw it free), the process exits, or ctx ends.
func (r *Redis) waitReady(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		info, err := infoSection(pctx, r.Client, "server")
		cancel()
		if err == nil {
			if pid := info["process_id"]; pid == strconv.Itoa(r.cmd.Process.Pid) {
				return nil
			}
			// errRedisExited: StartRedis tries again on another port
			return fmt.Errorf("%w (port %d): another process (%s) answers there", errRedisExited, r.Port, info["process_id"])
		}
		select {
		case <-r.exited:
			return fmt.Errorf("%w (port %d): %w", errRedisExited, r.Port, r.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s not answering PING: %w (last: %w)", r.Addr, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5s) and removes its
// directory. Safe to call more than once.
func (r *Redis) Stop() {
	r.stopOnce.Do(func() {
		if r.Client != nil {
			r.Client.Close()
		}
		if r.cmd != nil && r.cmd.Process != nil {
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.exited:
			case <-time.After(5 * time.Second):
				_ = r.cmd.Process.Kill()
				<-r.exited
			}
		}
		os.RemoveAll(r.Dir)
		liveRedisMu.Lock()
		delete(liveRedis, r)
		liveRedisMu.Unlock()
	})
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- INFO helpers ----------------------------------------------------------

// ParseInfo parses the text of an INFO reply into key → value.
func ParseInfo(s string) map[string]string {
	m := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if ok {
			m[k] = v
		}
	}
	return m
}

func infoSection(ctx context.Context, c redis.Cmdable, section string) (map[string]string, error) {
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("INFO %s: %w", section, err)
	}
	return ParseInfo(s), nil
}

// UsedMemory returns INFO memory used_memory in bytes.
func UsedMemory(ctx context.Context, c redis.Cmdable) (int64, error) {
	m, err := infoSection(ctx, c, "memory")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(m["used_memory"], 10, 64)
}

// UsedCPU returns INFO cpu used_cpu_sys + used_cpu_user in seconds.
func UsedCPU(ctx context.Context, c redis.Cmdable) (float64, error) {
	m, err := infoSection(ctx, c, "cpu")
	if err != nil {
		return 0, err
	}
	sys, err1 := strconv.ParseFloat(m["used_cpu_sys"], 64)
	usr, err2 := strconv.ParseFloat(m["used_cpu_user"], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("INFO cpu: %w", err)
	}
	return sys + usr, nil
}

// CmdStat is one cmdstat_* line of INFO commandstats.
type CmdStat struct {
	Calls  int64
	Usec   int64
	Failed int64
}

// CommandStats is INFO commandstats: totals over all commands plus per
// command (names as Redis reports them, e.g. "xack", "xgroup|create").
// The totals include the INFO calls made to read them (one per snapshot).
type CommandStats struct {
	Calls   int64
	Usec    int64
	Failed  int64
	ByCmd   map[string]CmdStat
	Present bool
}

// Sub returns c - before (for the interval between two snapshots).
func (c CommandStats) Sub(before CommandStats) CommandStats {
	d := CommandStats{
		Calls:   c.Calls - before.Calls,
		Usec:    c.Usec - before.Usec,
		Failed:  c.Failed - before.Failed,
		ByCmd:   make(map[string]CmdStat, len(c.ByCmd)),
		Present: c.Present,
	}
	for k, v := range c.ByCmd {
		b := before.ByCmd[k]
		if dv := (CmdStat{v.Calls - b.Calls, v.Usec - b.Usec, v.Failed - b.Failed}); dv.Calls != 0 {
			d.ByCmd[k] = dv
		}
	}
	return d
}

// ParseCommandStats parses the text of INFO commandstats.
func ParseCommandStats(s string) CommandStats {
	cs := CommandStats{ByCmd: map[string]CmdStat{}, Present: true}
	for k, v := range ParseInfo(s) {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		var st CmdStat
		for _, kv := range strings.Split(v, ",") {
			f, val, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseFloat(val, 64)
			switch f {
			case "calls":
				st.Calls = int64(n)
			case "usec":
				st.Usec = int64(n)
			case "failed_calls":
				st.Failed = int64(n)
			}
		}
		cs.ByCmd[name] = st
		cs.Calls += st.Calls
		cs.Usec += st.Usec
		cs.Failed += st.Failed
	}
	return cs
}

// GetCommandStats reads INFO commandstats.
func GetCommandStats(ctx context.Context, c redis.Cmdable) (CommandStats, error) {
	s, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return CommandStats{}, fmt.Errorf("INFO commandstats: %w", err)
	}
	return ParseCommandStats(s), nil
}

// CommandsProcessed returns INFO stats total_commands_processed (commands
// run inside scripts count too) and total_reads_processed (the reads from
// client connections: about one per request or pipeline).
func CommandsProcessed(ctx context.Context, c redis.Cmdable) (cmds, reads int64, err error) {
	m, err := infoSection(ctx, c, "stats")
	if err != nil {
		return 0, 0, err
	}
	cmds, err1 := strconv.ParseInt(m["total_commands_processed"], 10, 64)
	reads, err2 := strconv.ParseInt(m["total_reads_processed"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("INFO stats: %w", err)
	}
	return cmds, reads, nil
}

// snapshotInfoCalls is the number of INFO commands one Snapshot sends
// (they are counted in the next snapshot's totals).
const snapshotInfoCalls = 4

// RedisSnapshot bundles the four INFO readings.
type RedisSnapshot struct {
	UsedMemory int64   // bytes
	CPUSeconds float64 // used_cpu_sys + used_cpu_user
	Processed  int64   // total_commands_processed
	Reads      int64   // total_reads_processed
	Cmds       CommandStats
}

// Snapshot reads used_memory, CPU, total_commands_processed and
// commandstats from c.
func Snapshot(ctx context.Context, c redis.Cmdable) (RedisSnapshot, error) {
	var s RedisSnapshot
	var err error
	if s.UsedMemory, err = UsedMemory(ctx, c); err != nil {
		return s, err
	}
	if s.CPUSeconds, err = UsedCPU(ctx, c); err != nil {
		return s, err
	}
	if s.Processed, s.Reads, err = CommandsProcessed(ctx, c); err != nil {
		return s, err
	}
	s.Cmds, err = GetCommandStats(ctx, c)
	return s, err
}

// Commands is the number of commands Redis ran between two snapshots
// (total_commands_processed), without the snapshots' own INFO calls.
func (s RedisSnapshot) Commands(before RedisSnapshot) int64 {
	return s.Processed - before.Processed - snapshotInfoCalls
}

// ReadsSince is the number of reads from clients between two snapshots
// (total_reads_processed), without the snapshots' own INFO calls.
func (s RedisSnapshot) ReadsSince(before RedisSnapshot) int64 {
	return s.Reads - before.Reads - snapshotInfoCalls
}

// roundTripCPU measures Redis CPU µs per request of n unpipelined PINGs:
// the fixed cost of one round trip on this machine now, beside which a
// scenario's reads per task can be put.
func roundTripCPU(ctx context.Context, c *redis.Client, n int) (float64, error) {
	c0, err := UsedCPU(ctx, c)
	if err != nil {
		return 0, err
	}
	for range n {
		if err := c.Ping(ctx).Err(); err != nil {
			return 0, fmt.Errorf("PING: %w", err)
		}
	}
	c1, err := UsedCPU(ctx, c)
	if err != nil {
		return 0, err
	}
	return (c1 - c0) * 1e6 / float64(n), nil
}

// Snapshot reads the INFO values of this server.
func (r *Redis) Snapshot(ctx context.Context) (RedisSnapshot, error) {
	return Snapshot(ctx, r.Client)
}
