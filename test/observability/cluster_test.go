package observability

// A small multi-process harness: a private redis-server (internal/redistest),
// HTQ's real binaries around it, and a target on loopback. It follows
// test/e2e's approach (build the binaries, start each process with a
// generated config and --listen 127.0.0.1:0, read the addresses from the
// "listening" log records) without importing a test package.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/htq/htq/internal/redistest"
)

// clusterOptions shape a cluster.
type clusterOptions struct {
	Schedulers, Dispatchers int
	// Config is the whole YAML configuration; "{{REDIS}}" is replaced by
	// the private Redis's URL.
	Config string
	// MetricsListen serves the API's /metrics on its own listener.
	MetricsListen bool
	// RedisPassword, when set, is required by Redis (CONFIG SET requirepass).
	RedisPassword string
}

// cluster is a private Redis with HTQ processes around it.
type cluster struct {
	t      *testing.T
	redis  *redistest.Server
	dir    string
	config string
	procs  []*proc
	api    *proc
	scheds []*proc
	disps  []*proc
}

// proc is one HTQ process; its stdout and stderr both go to log.
type proc struct {
	Role, Name string
	log        string
	cmd        *exec.Cmd
	done       chan struct{}

	mu    sync.Mutex
	addrs map[string]string // listener name (api, metrics, health) -> host:port
	seen  chan struct{}     // signalled on each new listener
}

// newCluster starts Redis, one API and the schedulers and dispatchers asked
// for, and waits until each answers /readyz.
func newCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, redis: redistest.Start(t), dir: t.TempDir()}
	if o.RedisPassword != "" {
		if err := c.redis.Client(t).ConfigSet(t.Context(), "requirepass", o.RedisPassword).Err(); err != nil {
			t.Fatalf("set the Redis password: %v", err)
		}
	}
	c.config = filepath.Join(c.dir, "htq.yaml")
	cfg := strings.ReplaceAll(o.Config, "{{REDIS}}", c.redis.URL())
	if err := os.WriteFile(c.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stopAll)
	var extra []string
	if o.MetricsListen {
		extra = []string{"--metrics-listen", "127.0.0.1:0"}
	}
	c.api = c.start("api", "api", extra...)
	for i := range o.Schedulers {
		c.scheds = append(c.scheds, c.start("scheduler", fmt.Sprintf("scheduler-%d", i)))
	}
	for i := range o.Dispatchers {
		c.disps = append(c.disps, c.start("dispatcher", fmt.Sprintf("dispatcher-%d", i)))
	}
	listeners := map[string][]string{"api": {"api"}, "scheduler": {"health"}, "dispatcher": {"health"}}
	if o.MetricsListen {
		listeners["api"] = []string{"api", "metrics"}
	}
	for _, p := range c.procs {
		for _, l := range listeners[p.Role] {
			p.waitListener(t, l)
		}
	}
	for _, p := range c.procs {
		waitFor(t, p.Name+" ready", 20*time.Second, p.ready)
	}
	return c
}

// childEnv is the test's environment without HTQ_* variables (they would
// override the generated configuration), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HTQ_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// listenRE matches the "listening" record in JSON and in text format.
var listenRE = regexp.MustCompile(`(?:"msg":"listening".*"listener":"([^"]+)".*"addr":"([^"]+)")|(?:msg=listening .*listener=(\S+) .*addr=(\S+))`)

func (c *cluster) start(role, name string, extra ...string) *proc {
	c.t.Helper()
	p := &proc{Role: role, Name: name, log: filepath.Join(c.dir, name+".log"), addrs: map[string]string{},
		seen: make(chan struct{}, 8)}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	pr, pw := io.Pipe()
	args := append([]string{"--config", c.config, "--listen", "127.0.0.1:0"}, extra...)
	p.cmd = exec.Command(binary(c.t, role), args...)
	// obs-var steps by 200 ms, below the 1 s default floor of variable queues
	p.cmd.Env = childEnv("HTQ_DISPATCHER_ID="+name, "HTQ_QUEUES_MIN_VARIABLE_GAP=100ms")
	out := io.MultiWriter(f, pw)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				name, addr := m[1]+m[3], m[2]+m[4]
				p.mu.Lock()
				p.addrs[name] = addr
				p.mu.Unlock()
				select {
				case p.seen <- struct{}{}:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = p.cmd.Wait()
		_ = pw.Close()
		_ = f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p
}

// waitListener waits for the process to log that listener.
func (p *proc) waitListener(t *testing.T, name string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if a := p.addr(name); a != "" {
			return a
		}
		select {
		case <-p.seen:
		case <-p.done:
			if a := p.addr(name); a != "" {
				return a
			}
			t.Fatalf("%s exited at start: %s", p.Name, tail(p.log))
		case <-deadline:
			t.Fatalf("%s did not log its %q listener: %s", p.Name, name, tail(p.log))
		}
	}
}

func (p *proc) addr(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addrs[name]
}

// base is the URL of the process's API (api) or health listener (others).
func (p *proc) base() string {
	if p.Role == "api" {
		return "http://" + p.addr("api")
	}
	return "http://" + p.addr("health")
}

// metricsAddr is where the process serves /metrics.
func (p *proc) metricsAddr() string {
	if a := p.addr("metrics"); a != "" {
		return a
	}
	return strings.TrimPrefix(p.base(), "http://")
}

func (p *proc) ready() bool {
	resp, err := http.Get(p.base() + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// output returns everything the process wrote so far.
func (p *proc) output(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// scrape returns the text exposition of the process's /metrics.
func (p *proc) scrape(t *testing.T) []byte {
	t.Helper()
	resp, err := http.Get("http://" + p.metricsAddr() + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", p.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", p.Name, resp.StatusCode, err)
	}
	return b
}

// stopAll stops every process with SIGTERM and waits (SIGKILL after 30 s).
// It is safe to call more than once.
func (c *cluster) stopAll() {
	for _, p := range c.procs {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if c.t.Failed() {
		for _, p := range c.procs {
			c.t.Logf("---- %s output (tail) ----\n%s", p.Name, tail(p.log))
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every 50 ms until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventually polls check every 250 ms until it reports no problem, failing
// the test with the last problems after within.
func eventually(t *testing.T, what string, within time.Duration, check func() []string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		problems := check()
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s:\n  %s", within, what, strings.Join(problems, "\n  "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// rest sends a REST request with a bearer token (none when token is empty)
// and returns the status code and body.
func (c *cluster) rest(token, method, path string, body any) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.api.base()+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustREST is rest that fails the test unless the status is want.
func (c *cluster) mustREST(token, method, path string, body any, want int) string {
	c.t.Helper()
	code, b := c.rest(token, method, path, body)
	if code != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	return b
}

// legacy posts a legacy call as the PHP SDK does (a multipart form) and
// returns its error_code.
func (c *cluster) legacy(endpoint string, fields ...string) float64 {
	c.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = w.WriteField(fields[i], fields[i+1])
	}
	_ = w.Close()
	resp, err := http.Post(c.api.base()+"/api/"+endpoint, w.FormDataContentType(), &buf)
	if err != nil {
		c.t.Fatalf("legacy %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	var out struct {
		Code *float64 `json:"error_code"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil || out.Code == nil {
		c.t.Fatalf("legacy %s: %q: %v", endpoint, b, err)
	}
	return *out.Code
}

// target answers HTQ's calls on loopback by path:
//
//	/ok/...    200 "ok"
//	/fail/...  500
//	/slow/...  waits for the caller to give up (at most 5 s), then 503
//	/var/...   200 with X-HTQ-Next-In: 0.2 twice, then 200 "done"
//
// and counts the 2xx answers it sent and the calls per first path segment.
type target struct {
	URL string
	srv *http.Server

	mu      sync.Mutex
	ok      int            // 2xx answers
	byKind  map[string]int // calls by first path segment
	byPath  map[string]int
	headers []http.Header
}

func newTarget(t *testing.T) *target {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{URL: "http://" + l.Addr().String(), byKind: map[string]int{}, byPath: map[string]int{}}
	tg.srv = &http.Server{Handler: tg, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = tg.srv.Serve(l) }()
	t.Cleanup(func() { _ = tg.srv.Close() })
	return tg
}

func (tg *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	kind, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	tg.mu.Lock()
	tg.byKind[kind]++
	tg.byPath[r.URL.Path]++
	n := tg.byPath[r.URL.Path]
	tg.headers = append(tg.headers, r.Header.Clone())
	tg.mu.Unlock()
	status := http.StatusOK
	switch kind {
	case "ok":
		_, _ = w.Write([]byte("ok"))
	case "fail":
		status = http.StatusInternalServerError
		w.WriteHeader(status)
	case "slow":
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		status = http.StatusServiceUnavailable
		w.WriteHeader(status)
	case "var":
		if n < 3 {
			w.Header().Set("X-HTQ-Next-In", "0.2")
			_, _ = w.Write([]byte("again"))
		} else {
			_, _ = w.Write([]byte("done"))
		}
	default:
		status = http.StatusNotFound
		w.WriteHeader(status)
	}
	if status < 300 {
		tg.mu.Lock()
		tg.ok++
		tg.mu.Unlock()
	}
}

// counts returns the 2xx answers and the calls by kind so far.
func (tg *target) counts() (ok int, byKind map[string]int) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	byKind = map[string]int{}
	for k, v := range tg.byKind {
		byKind[k] = v
	}
	return tg.ok, byKind
}
