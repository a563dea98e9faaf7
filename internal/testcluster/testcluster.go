// Package testcluster runs HTQ's real binaries around a private
// redis-server, with a recording target, for the tests of what only breaks
// between processes (test/e2e, test/fault, test/observability).
package testcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/redistest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Token, LegacyKey and LegacyToken are the credentials every cluster accepts.
const (
	Token       = "e2e-token-0123456789abcdef"
	LegacyKey   = "e2e_key"
	LegacyToken = "e2e_token"
)

var binDir string

// Main builds the three role binaries and the htq CLI once for a test package and runs its tests:
// call it from TestMain.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "htq-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		os.Exit(1)
	}
	for _, bin := range []string{"htq-api", "htq-scheduler", "htq-dispatcher", "htq"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, bin), "./cmd/"+strings.TrimPrefix(bin, "htq-"))
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", bin, err)
			os.Exit(1)
		}
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// BinDir is where Main built the binaries.
func BinDir() string { return binDir }

// Cluster is a private Redis with HTQ processes around it.
type Cluster struct {
	t      *testing.T
	Redis  *redistest.Server
	dir    string
	config string
	API    string // base URL
	procs  []*Proc
	// Launched, when set, is called right after a process starts (or
	// restarts), before it can have called anyone: a test tracking callers
	// (Target.TrackCallers) learns the new process id there.
	Launched func(*Proc)
}

// Proc is one HTQ process.
type Proc struct {
	Role   string
	Name   string
	cmd    *exec.Cmd
	done   chan struct{}
	Health string // base URL of its health/metrics (or the API) listener

	mu    sync.Mutex
	addrs map[string]string // listener name (api, metrics, health) -> host:port
	log   string
	env   []string
	args  []string
}

// Options shape a cluster.
type Options struct {
	Schedulers  int
	Dispatchers int
	Config      string // extra YAML appended to the generated config (dispatcher/scheduler tuning)
	RedisArgs   []string
	// RedisConfig, when set, replaces the generated "redis:" section (for a
	// Redis Cluster or Sentinel the test runs itself); no private
	// redis-server is started then.
	RedisConfig string
	// WholeConfig, when set, is the whole YAML configuration instead of the
	// generated one; "{{REDIS}}" in it is replaced by the private Redis's
	// URL. The test then uses its own credentials (RESTAs).
	WholeConfig string
	// RedisPassword, when set, is required by the private Redis.
	RedisPassword string
	// MetricsListen serves the API's /metrics on a listener of its own.
	MetricsListen bool
}

// NewCluster starts Redis, one API, and the schedulers and dispatchers asked
// for, and waits until each is ready.
func NewCluster(t *testing.T, o Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dir: t.TempDir()}
	redisSection := o.RedisConfig
	if redisSection == "" {
		c.Redis = redistest.Start(t, o.RedisArgs...)
		redisSection = fmt.Sprintf("redis:\n  url: %s\n", c.Redis.URL())
		if o.RedisPassword != "" {
			if err := c.Redis.Client(t).ConfigSet(t.Context(), "requirepass", o.RedisPassword).Err(); err != nil {
				t.Fatalf("set the Redis password: %v", err)
			}
		}
	}
	c.config = filepath.Join(c.dir, "htq.yaml")
	cfg := fmt.Sprintf(`%sapi:
  tokens: [%q]
  legacy_app_key: %s
  legacy_app_token: %s
  time_zone: UTC
`, redisSection, Token, LegacyKey, LegacyToken) + o.Config
	if o.WholeConfig != "" {
		url := ""
		if c.Redis != nil {
			url = c.Redis.URL()
		}
		cfg = strings.ReplaceAll(o.WholeConfig, "{{REDIS}}", url)
	}
	if err := os.WriteFile(c.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var apiArgs []string
	if o.MetricsListen {
		apiArgs = []string{"--metrics-listen=127.0.0.1:0"}
	}
	api := c.Start("api", "api", apiArgs...)
	c.API = api.Health
	for i := range o.Schedulers {
		c.Start("scheduler", fmt.Sprintf("scheduler-%d", i))
	}
	for i := range o.Dispatchers {
		c.Start("dispatcher", fmt.Sprintf("dispatcher-%d", i))
	}
	t.Cleanup(c.StopAll)
	return c
}

// listenRE matches the "listening" record in JSON and in text format.
var listenRE = regexp.MustCompile(`(?:"msg":"listening".*"listener":"([^"]+)".*"addr":"([^"]+)")|(?:msg=listening .*listener=(\S+) .*addr=(\S+))`)

// childEnv is the test's environment without HTQ_* variables.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HTQ_") {
			env = append(env, kv)
		}
	}
	return env
}

// Start starts a process of a role; name is its dispatcher id and log name.
// Arguments starting with "--" are added to its command line; the others
// are HTQ_* variables added to its environment (for instance another
// HTQ_REDIS_URL).
func (c *Cluster) Start(role, name string, extra ...string) *Proc {
	c.t.Helper()
	p := &Proc{Role: role, Name: name, log: filepath.Join(c.dir, name+".log")}
	p.args = []string{"--config", c.config, "--listen", "127.0.0.1:0"}
	// The test's own HTQ_* variables would override the generated
	// configuration. Tests use variable queues with sub-second steps, below
	// the 1 s default floor.
	p.env = append(childEnv(), "HTQ_DISPATCHER_ID="+name, "HTQ_QUEUES_MIN_VARIABLE_GAP=100ms")
	for _, e := range extra {
		if strings.HasPrefix(e, "--") {
			p.args = append(p.args, e)
		} else {
			p.env = append(p.env, e)
		}
	}
	c.launch(p)
	c.procs = append(c.procs, p)
	return p
}

func (c *Cluster) launch(p *Proc) {
	c.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	pr, pw := io.Pipe()
	p.cmd = exec.Command(filepath.Join(binDir, "htq-"+p.Role), p.args...) //nolint:noctx // the cluster owns the process lifetime
	p.cmd.Env = p.env
	p.cmd.Stdout = f
	p.cmd.Stderr = io.MultiWriter(f, pw)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	if c.Launched != nil {
		c.Launched(p)
	}
	p.done = make(chan struct{})
	p.mu.Lock()
	p.addrs = map[string]string{}
	p.mu.Unlock()
	// the API serves its routes on "api", the others health and metrics on
	// "health"; an API with --metrics-listen also logs "metrics"
	want := []string{"health"}
	if p.Role == "api" {
		want = []string{"api"}
		if slices.ContainsFunc(p.args, func(a string) bool { return strings.HasPrefix(a, "--metrics-listen") }) {
			want = append(want, "metrics")
		}
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			m := listenRE.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			p.mu.Lock()
			p.addrs[m[1]+m[3]] = m[2] + m[4]
			all := true
			for _, w := range want {
				all = all && p.addrs[w] != ""
			}
			main := p.addrs[want[0]]
			p.mu.Unlock()
			if all && !sent {
				addr <- main
				sent = true
			}
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		_ = pw.Close()
		_ = f.Close()
		close(p.done)
	}()
	select {
	case a := <-addr:
		p.Health = "http://" + a
	case <-p.done:
		c.t.Fatalf("%s exited at start: %s", p.Name, Tail(p.log))
	case <-time.After(20 * time.Second):
		c.t.Fatalf("%s did not start listening: %s", p.Name, Tail(p.log))
	}
	c.WaitFor(fmt.Sprintf("%s ready", p.Name), 20*time.Second, func() bool { return p.Ready() })
}

// Ready reports whether the process answers /readyz with 200.
func (p *Proc) Ready() bool {
	resp, err := http.Get(p.Health + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Signal sends sig to the process and, for deadly signals, waits for it.
func (p *Proc) Signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM || sig == syscall.SIGINT {
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s did not exit after %v", p.Name, sig)
		}
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Restart starts a stopped process again.
func (c *Cluster) Restart(p *Proc) {
	c.t.Helper()
	c.launch(p)
}

// Addr returns the host:port of one of the process's listeners (api,
// metrics, health), "" when it has not logged it.
func (p *Proc) Addr(listener string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addrs[listener]
}

// MetricsAddr is the host:port where the process serves /metrics.
func (p *Proc) MetricsAddr() string {
	if a := p.Addr("metrics"); a != "" {
		return a
	}
	return strings.TrimPrefix(p.Health, "http://")
}

// ScrapeText returns the process's /metrics exposition as it was served.
func (p *Proc) ScrapeText() ([]byte, error) {
	resp, err := http.Get("http://" + p.MetricsAddr() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return b, err
}

// Scrape reads the process's /metrics and parses it with Prometheus's own
// text parser.
func (p *Proc) Scrape() (map[string]*dto.MetricFamily, error) {
	b, err := p.ScrapeText()
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(b))
}

// Metric returns the sum of a counter's or gauge's series (histograms and
// summaries: their sample counts) whose labels include the given
// name=value pairs; -1 when the process does not answer or has no such
// series.
func (p *Proc) Metric(name string, labels ...string) float64 {
	fams, err := p.Scrape()
	if err != nil {
		return -1
	}
	return SumSeries(fams, name, labels...)
}

// SumSeries sums the series of family name whose labels include the given
// name=value pairs (-1 when there is none).
func SumSeries(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	fam, ok := fams[name]
	if !ok {
		return -1
	}
	sum, found := 0.0, false
series:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			match := false
			for _, lp := range m.GetLabel() {
				match = match || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
			}
			if !match {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		}
		found = true
	}
	if !found {
		return -1
	}
	return sum
}

// Leaders waits until one of the cluster's two schedulers leads, and
// returns it and the other one.
func (c *Cluster) Leaders() (leader, follower *Proc) {
	scheds := c.Procs("scheduler")
	if len(scheds) != 2 {
		c.t.Fatalf("Leaders needs 2 schedulers, the cluster has %d", len(scheds))
	}
	c.WaitFor("a leader", 10*time.Second, func() bool {
		for i, p := range scheds {
			if p.Metric("htq_scheduler_is_leader") == 1 {
				leader, follower = p, scheds[1-i]
				return true
			}
		}
		return false
	})
	return leader, follower
}

// StopAll stops every process gracefully (SIGTERM), then kills stragglers.
func (c *Cluster) StopAll() {
	for _, p := range c.procs {
		if !p.Exited() {
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
			c.t.Logf("---- %s log (tail) ----\n%s", p.Name, Tail(p.log))
		}
	}
}

// Log returns the process's log so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Procs returns the cluster's processes of a role ("" for all).
func (c *Cluster) Procs(role string) []*Proc {
	var out []*Proc
	for _, p := range c.procs {
		if role == "" || p.Role == role {
			out = append(out, p)
		}
	}
	return out
}

// Pid returns the process id of the running process.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Tail returns the last lines of a log file.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// WaitFor polls cond until it holds or the deadline passes.
func (c *Cluster) WaitFor(what string, within time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Eventually polls check every 250 ms until it reports no problem, failing
// the test with the last problems after within.
func (c *Cluster) Eventually(what string, within time.Duration, check func() []string) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		problems := check()
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s:\n  %s", within, what, strings.Join(problems, "\n  "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// RESTAs sends a raw REST request with the given bearer token (none when
// empty) and returns the status and the body.
//
// Raw HTTP is for what the Go client cannot or must not send: a body the
// client never writes (durations as numbers, malformed or legacy-shaped
// JSON) or a probe of a route it has no method for. Every ordinary call
// goes through Client.
func (c *Cluster) RESTAs(token, method, path string, body any) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.API+path, rd)
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

// REST is RESTAs with the cluster's token, decoding the answer into out
// (when not nil); raw on purpose, see RESTAs.
func (c *Cluster) REST(method, path string, body any, out any) int {
	c.t.Helper()
	code, b := c.RESTAs(Token, method, path, body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	if code >= 400 {
		c.t.Logf("%s %s -> %d %s", method, path, code, b)
	}
	return code
}

// Legacy posts a legacy call as the PHP SDK does (multipart form, fields in
// the SDK's order) and returns the decoded answer.
func (c *Cluster) Legacy(endpoint string, fields ...string) map[string]any {
	c.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	all := fields
	if !slices.Contains(fields, "app_key") { // the cluster's credentials unless the test gives its own
		all = append([]string{"app_key", LegacyKey, "app_token", LegacyToken}, fields...)
	}
	for i := 0; i+1 < len(all); i += 2 {
		_ = w.WriteField(all[i], all[i+1])
	}
	_ = w.Close()
	resp, err := http.Post(c.API+"/api/"+endpoint, w.FormDataContentType(), &buf)
	if err != nil {
		c.t.Fatalf("legacy %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		c.t.Fatalf("legacy %s: %q: %v", endpoint, b, err)
	}
	return out
}

// Call is one call the target received.
type Call struct {
	Queue      string
	Method     string
	RequestURI string // the path and query as sent
	Header     http.Header
	Path       string
	Query      url.Values
	TaskID     string
	Attempt    string
	Seq        string
	Start      time.Time
	End        time.Time
	Body       string
	Status     int    // the status the target answered
	Caller     string // the calling process's name, with TrackCallers
	Remote     string
	conn       *connInfo
}

// connInfo is what the target learnt of one connection.
type connInfo struct {
	caller   string        // guarded by Target.mu
	resolved chan struct{} // closed once caller is looked up (nil: not tracked)
}

type connKey struct{}

// Target records every call. Behaviour per call comes from Respond.
type Target struct {
	URL string
	srv *http.Server

	mu    sync.Mutex
	calls []Call
	// Respond decides the answer; nil answers 200 "ok" at once.
	Respond func(w http.ResponseWriter, r *http.Request, n int) // n: calls so far to this path
	byPath  map[string]int
	pids    map[int]string // TrackCallers

	callerWait  time.Duration // how long a call waits for its caller's lookup
	resolveMu   sync.Mutex
	toResolve   []pendingConn // connections whose caller is to be found
	resolveWake chan struct{}
	// inflight counts calls in progress per queue; Overlaps records a call
	// that started while another of its queue was in progress.
	inflight map[string]int
	Overlaps []string
}

// NewTarget starts a recording target on loopback.
func NewTarget(t *testing.T) *Target {
	t.Helper()
	tg := &Target{byPath: map[string]int{}, inflight: map[string]int{},
		resolveWake: make(chan struct{}, 1), callerWait: defaultCallerWait}
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	tg.URL = "http://" + l.Addr().String()
	tg.srv = &http.Server{Handler: tg, ReadHeaderTimeout: 10 * time.Second, ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		ci := &connInfo{}
		tg.noteConn(c, ci)
		return context.WithValue(ctx, connKey{}, ci)
	}}
	done := make(chan struct{})
	go tg.resolver(done)
	go func() { _ = tg.srv.Serve(l) }()
	t.Cleanup(func() {
		close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = tg.srv.Shutdown(ctx)
	})
	return tg
}

func (tg *Target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	body, _ := io.ReadAll(r.Body)
	q, _ := url.PathUnescape(r.Header.Get("X-HTQ-Queue"))
	tg.mu.Lock()
	tg.byPath[r.URL.Path]++
	n := tg.byPath[r.URL.Path]
	respond := tg.Respond
	tg.inflight[q]++
	if tg.inflight[q] > 1 {
		tg.Overlaps = append(tg.Overlaps, fmt.Sprintf("queue %s: %d calls at once at %s", q, tg.inflight[q], start.Format(time.StampMicro)))
	}
	tg.mu.Unlock()
	sw := &statusWriter{ResponseWriter: w}
	if respond != nil {
		respond(sw, r, n)
	} else {
		_, _ = sw.Write([]byte("ok"))
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	// The end is when the handler finished, not when the record could be
	// written: a reader holding the lock (Calls copying a long record)
	// would otherwise make a call that ended at its deadline look as if it
	// overlapped the next one.
	end := time.Now()
	tg.mu.Lock()
	tg.inflight[q]--
	tg.calls = append(tg.calls, Call{
		Queue: q, Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(),
		Path: r.URL.Path, Query: r.URL.Query(), TaskID: r.Header.Get("X-HTQ-Task-Id"),
		Attempt: r.Header.Get("X-HTQ-Attempt"), Seq: r.Header.Get("X-HTQ-Sequence"),
		Start: start, End: end, Body: string(body), Status: sw.status, Remote: r.RemoteAddr, conn: ci,
	})
	tg.mu.Unlock()
	awaitCaller(ci, tg.callerWait)
}

// statusWriter remembers the status a Respond function answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.NewResponseController reach Flush and Hijack.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// OverlapList returns the overlaps seen so far.
func (tg *Target) OverlapList() []string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]string(nil), tg.Overlaps...)
}

// Calls returns a copy of the calls so far.
func (tg *Target) Calls() []Call {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	out := append([]Call(nil), tg.calls...)
	for i := range out {
		if ci := out[i].conn; ci != nil {
			out[i].Caller = ci.caller
		}
	}
	return out
}

// Count returns the number of calls so far.
func (tg *Target) Count() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return len(tg.calls)
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// Drained reports whether no queue has work left.
func (c *Cluster) Drained() bool {
	hc := c.Client()
	for cursor := ""; ; {
		page, err := hc.ListQueues(c.t.Context(), client.ListOptions{Limit: 1000, Cursor: cursor})
		if err != nil {
			c.t.Logf("list queues: %v", err)
			return false
		}
		for _, q := range page.Queues {
			if q.Counts.Queued+q.Counts.Active+q.Counts.Scheduled > 0 {
				return false
			}
		}
		if page.NextCursor == "" {
			return true
		}
		cursor = page.NextCursor
	}
}

// InFlight returns the number of calls the target is handling now.
func (tg *Target) InFlight() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	n := 0
	for _, v := range tg.inflight {
		n += v
	}
	return n
}
