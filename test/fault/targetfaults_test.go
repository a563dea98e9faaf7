package fault

// Scenario 6, target faults: a target that hangs, resets, closes without
// answering, trickles its body, streams 100 MB, redirects (a chain, a loop,
// a POST), and a port where nothing listens. One dispatcher works through a
// steady mix of them; every task must end in a documented state with a
// meaningful history, and the dispatcher must not leak goroutines, file
// descriptors, connections or memory.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/testcluster"
)

const (
	rtHugeBytes    = 100 << 20 // what /huge would send if read to the end
	rtMaxResponse  = 64 << 10  // dispatcher.max_response_bytes
	rtTrickleEvery = 100 * time.Millisecond
)

// rtFaultTarget is an HTTP server with misbehaving paths. It counts its open
// connections (ConnState) and the handlers still running.
type rtFaultTarget struct {
	URL string
	srv *http.Server

	open     atomic.Int64 // connections open (new .. closed or hijacked)
	peakOpen atomic.Int64
	active   atomic.Int64 // handlers running
	hugeSent atomic.Int64 // bytes /huge managed to write, all calls together
	hugeMax  atomic.Int64 // the most one /huge call wrote

	mu     sync.Mutex
	byPath map[string]int
}

func newRTFaultTarget(t *testing.T) *rtFaultTarget {
	t.Helper()
	ft := &rtFaultTarget{byPath: map[string]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ft.URL = "http://" + l.Addr().String()
	ft.srv = &http.Server{
		Handler:           ft,
		ReadHeaderTimeout: 5 * time.Second,
		// Idle keep-alive connections are closed after a second, so once the
		// queues are drained every connection the dispatcher opened must go.
		IdleTimeout: time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				if n := ft.open.Add(1); n > ft.peakOpen.Load() {
					ft.peakOpen.Store(n)
				}
			case http.StateHijacked, http.StateClosed:
				ft.open.Add(-1)
			}
		},
	}
	go func() { _ = ft.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = ft.srv.Shutdown(ctx)
		_ = ft.srv.Close()
	})
	return ft
}

func (ft *rtFaultTarget) hits() map[string]int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	out := map[string]int{}
	for k, v := range ft.byPath {
		out[k] = v
	}
	return out
}

func (ft *rtFaultTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ft.active.Add(1)
	defer ft.active.Add(-1)
	_, _ = io.Copy(io.Discard, r.Body)
	path := r.URL.Path
	key := path
	if strings.HasPrefix(path, "/redir/") {
		key = "/redir/*"
	}
	ft.mu.Lock()
	ft.byPath[key]++
	ft.mu.Unlock()
	ctx := r.Context()
	switch {
	case path == "/ok":
		_, _ = w.Write([]byte("ok"))
	case path == "/hang": // until the caller goes away
		select {
		case <-ctx.Done():
		case <-time.After(60 * time.Second):
		}
	case path == "/reset": // RST mid-request: SO_LINGER 0, then close
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	case path == "/close": // the request was read; close without a word
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_ = conn.Close()
	case path == "/slow", path == "/slowok": // one byte every 100 ms
		n := 100 // 10 s: longer than the timeout
		if path == "/slowok" {
			n = 2 // 200 ms: within it
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for i := range n {
			select {
			case <-ctx.Done():
				return
			case <-time.After(rtTrickleEvery):
			}
			if _, err := w.Write([]byte{byte('a' + i%26)}); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	case path == "/huge": // 100 MB, as long as the caller reads
		w.Header().Set("Content-Length", strconv.Itoa(rtHugeBytes))
		chunk := []byte(strings.Repeat("0123456789abcdef", 4096)) // 64 KiB
		var sent int64
		for sent < rtHugeBytes {
			n, err := w.Write(chunk)
			sent += int64(n)
			if err != nil {
				break
			}
		}
		ft.hugeSent.Add(sent)
		for {
			m := ft.hugeMax.Load()
			if sent <= m || ft.hugeMax.CompareAndSwap(m, sent) {
				break
			}
		}
	case strings.HasPrefix(path, "/redir/"): // /redir/N → /redir/N-1 … /redir/0 answers
		n, _ := strconv.Atoi(strings.TrimPrefix(path, "/redir/"))
		if n <= 0 {
			_, _ = w.Write([]byte("arrived"))
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redir/%d", n-1), http.StatusFound)
	case path == "/loop":
		http.Redirect(w, r, "/loop", http.StatusFound)
	case path == "/post302":
		http.Redirect(w, r, "/ok", http.StatusFound)
	default:
		http.NotFound(w, r)
	}
}

// rtFaultKind is one kind of misbehaviour and what HTQ must make of it.
type rtFaultKind struct {
	name     string
	task     func(target, refused string) client.TaskRequest
	state    string         // final state
	attempts int            // calls in the run
	errRE    *regexp.Regexp // each history entry's error must match (nil: no error)
	status   int            // each history entry's status (0: no answer)
}

func rtFaultKinds() []rtFaultKind {
	get := func(path string) func(string, string) client.TaskRequest {
		return func(target, _ string) client.TaskRequest { return client.TaskRequest{URL: target + path} }
	}
	timeout := regexp.MustCompile(`context deadline exceeded|Client\.Timeout|timeout`)
	return []rtFaultKind{
		{name: "ok", task: get("/ok"), state: "succeeded", attempts: 1, status: 200},
		{name: "hang", task: get("/hang"), state: "dead", attempts: 2, errRE: timeout},
		{name: "reset", task: get("/reset"), state: "dead", attempts: 2, errRE: regexp.MustCompile(`connection reset by peer|EOF|broken pipe`)},
		{name: "close", task: get("/close"), state: "dead", attempts: 2, errRE: regexp.MustCompile(`EOF|connection reset|server closed`)},
		{name: "slow", task: get("/slow"), state: "dead", attempts: 2, status: 200, errRE: regexp.MustCompile(`read answer: .*(` + timeout.String() + `)`)},
		{name: "slowok", task: get("/slowok"), state: "succeeded", attempts: 1, status: 200},
		{name: "huge", task: get("/huge"), state: "succeeded", attempts: 1, status: 200},
		{name: "redirect", task: get("/redir/3"), state: "succeeded", attempts: 1, status: 200},
		{name: "loop", task: get("/loop"), state: "dead", attempts: 1, errRE: regexp.MustCompile(`stopped after 5 redirects`)},
		{name: "post302", task: func(target, _ string) client.TaskRequest {
			return client.TaskRequest{URL: target + "/post302", Method: "POST", Body: json.RawMessage(`{"order":42}`)}
		}, state: "dead", attempts: 1, status: 302},
		{name: "refused", task: func(_, refused string) client.TaskRequest {
			return client.TaskRequest{URL: refused + "/nothing-listens"}
		},
			state: "dead", attempts: 2, errRE: regexp.MustCompile(`connection refused`)},
	}
}

// rtScrape reads one series of a metric from a process's /metrics: the
// series whose labels contain match ("" for a metric without labels, or to
// sum every series).
func rtScrape(p *testcluster.Proc, name, match string) float64 {
	resp, err := http.Get(p.Health + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') || !strings.Contains(rest, match) {
			continue
		}
		fields := strings.Fields(rest)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// rtProcSample is a dispatcher's resource use at one moment.
type rtProcSample struct {
	Goroutines, FDs, HeapInuse, RedisConns float64
}

func (s rtProcSample) nonRedisFDs() float64 { return s.FDs - max(s.RedisConns, 0) }

func (s rtProcSample) String() string {
	return fmt.Sprintf("%.0f goroutines, %.0f fds (%.0f of them Redis connections), heap in use %.1f MB",
		s.Goroutines, s.FDs, s.RedisConns, s.HeapInuse/(1<<20))
}

func rtSample(p *testcluster.Proc) rtProcSample {
	return rtProcSample{
		Goroutines: rtScrape(p, "go_goroutines", ""),
		FDs:        rtScrape(p, "process_open_fds", ""),
		HeapInuse:  rtScrape(p, "go_memstats_heap_inuse_bytes", ""),
		RedisConns: rtScrape(p, "htq_redis_pool_connections", `state="total"`),
	}
}

// TestTargetFaults runs a steady mix of misbehaving targets through one
// dispatcher for about 20 s (timeout 500 ms, 2 attempts, backoff 100-200 ms)
// and checks that every task ends succeeded or dead as documented, with the
// right error in every attempt of its history, and that the dispatcher's
// goroutines, file descriptors, connections to the target and heap come
// back to their level before the load.
func TestTargetFaults(t *testing.T) {
	c := testcluster.NewCluster(t, testcluster.Options{Schedulers: 1, Dispatchers: 1, Config: fmt.Sprintf(`dispatcher:
  max_response_bytes: %d
  poll_max: 200ms
`, rtMaxResponse)})
	disp := c.Procs("dispatcher")[0]
	ft := newRTFaultTarget(t)
	refused := fmt.Sprintf("http://127.0.0.1:%d", redistest.FreePort(t)) // nothing listens there

	kinds := rtFaultKinds()
	const queuesPerKind = 3
	type queue struct {
		name string
		kind rtFaultKind
	}
	hc := c.Client()
	var queues []queue
	for _, k := range kinds {
		for i := range queuesPerKind {
			name := fmt.Sprintf("tf-%s-%d", k.name, i)
			cfg := client.QueueSettings{Timeout: client.D(500 * time.Millisecond),
				Retry: &client.Retry{MaxAttempts: ptr(2), MinBackoff: client.D(100 * time.Millisecond), MaxBackoff: client.D(200 * time.Millisecond)}}
			if _, created, err := hc.PutQueue(t.Context(), name, cfg); err != nil || !created {
				t.Fatalf("create %s: created=%v %v", name, created, err)
			}
			queues = append(queues, queue{name: name, kind: k})
		}
	}
	type pushed struct {
		id   string
		kind rtFaultKind
	}
	var tasks []pushed
	push := func() {
		for _, q := range queues {
			out, err := hc.CreateTask(t.Context(), q.name, q.kind.task(ft.URL, refused))
			if err != nil {
				t.Fatalf("enqueue on %s: %v", q.name, err)
			}
			tasks = append(tasks, pushed{id: out.ID, kind: q.kind})
		}
	}
	finished := func(from int) func() bool {
		return func() bool {
			for _, p := range tasks[from:] {
				v, err := hc.GetTask(t.Context(), p.id)
				if err != nil || (v.State != "succeeded" && v.State != "dead") {
					return false
				}
			}
			return c.Drained()
		}
	}
	// settled: no connection to the target open, no handler running, no
	// call in flight.
	settled := func() bool {
		return ft.open.Load() == 0 && ft.active.Load() == 0 && rtScrape(disp, "htq_dispatcher_inflight_calls", "") == 0
	}

	// Warm-up: every kind once, so that lazily started machinery (connection
	// pools, DNS-free dialers, scripts) exists before the baseline.
	push()
	rtPoll(t, "the warm-up tasks finished", 30*time.Second, finished(0))
	rtPoll(t, "the target's connections closed after the warm-up", 15*time.Second, settled)
	base := rtSample(disp)
	t.Logf("baseline after warm-up: %v", base)

	// Load: a round of every queue every 1.5 s for 20 s (the slowest kinds,
	// hang and refused, take about 1.1 s per task: the queues keep up).
	const loadFor, every = 20 * time.Second, 1500 * time.Millisecond
	from := len(tasks)
	peak := base
	loadStart := time.Now()
	for next := loadStart; time.Since(loadStart) < loadFor; next = next.Add(every) {
		push()
		for until := time.Until(next.Add(every)); until > 0; until = time.Until(next.Add(every)) {
			s := rtSample(disp)
			peak.Goroutines, peak.FDs, peak.HeapInuse, peak.RedisConns = max(peak.Goroutines, s.Goroutines), max(peak.FDs, s.FDs), max(peak.HeapInuse, s.HeapInuse), max(peak.RedisConns, s.RedisConns)
			time.Sleep(min(until, 250*time.Millisecond)) // pacing the load and the sampling
		}
	}
	loaded := len(tasks) - from
	rtPoll(t, "every task finished", 45*time.Second, finished(from))
	drained := time.Since(loadStart)

	// Every task ended as documented, with a meaningful history. A task
	// meant to succeed may have needed its second attempt when the machine
	// was slow (its first then timed out); that is counted and reported.
	byState := map[string]int{}
	example := map[string]string{}
	retried := 0
	timeoutRE := regexp.MustCompile(`context deadline exceeded|Client\.Timeout|timeout`)
	for _, p := range tasks {
		v, err := hc.GetTask(t.Context(), p.id)
		if err != nil {
			t.Errorf("%s task %s: GET: %v", p.kind.name, p.id, err)
			continue
		}
		byState[p.kind.name+":"+v.State]++
		want := p.kind.attempts
		if p.kind.state == "succeeded" && v.Attempts == 2 && len(v.History) == 2 && timeoutRE.MatchString(v.History[0].Error) {
			want, retried = 2, retried+1
		}
		if v.State != p.kind.state || v.Attempts != want || len(v.History) != want {
			t.Errorf("%s task %s: state %s after %d attempts (%d in history), want %s after %d; last status %d, last error %q",
				p.kind.name, p.id, v.State, v.Attempts, len(v.History), p.kind.state, p.kind.attempts, v.LastStatus, v.LastError)
			continue
		}
		for n, h := range v.History {
			if n < want-p.kind.attempts {
				continue // the timed-out first try of a task that then succeeded
			}
			switch {
			case p.kind.errRE == nil && h.Error != "":
				t.Errorf("%s task %s attempt %d: error %q, want none", p.kind.name, p.id, h.Attempt, h.Error)
			case p.kind.errRE != nil && !p.kind.errRE.MatchString(h.Error):
				t.Errorf("%s task %s attempt %d: error %q, want one matching %q", p.kind.name, p.id, h.Attempt, h.Error, p.kind.errRE)
			case h.Status != p.kind.status:
				t.Errorf("%s task %s attempt %d: status %d, want %d", p.kind.name, p.id, h.Attempt, h.Status, p.kind.status)
			}
			if _, ok := example[p.kind.name]; !ok {
				example[p.kind.name] = fmt.Sprintf("%s after %d attempt(s): status %d, error %q", v.State, v.Attempts, h.Status, h.Error)
			}
		}
		if p.kind.name == "huge" && (len(v.History) == 0 || !strings.HasPrefix(v.History[len(v.History)-1].Body, "0123456789abcdef")) {
			t.Errorf("huge task %s: history %+v, want the first bytes of the answer", p.id, v.History)
		}
	}
	if t.Failed() {
		t.Logf("states by kind: %v", byState)
	}

	// No leak: once the queues are drained and idle connections are closed,
	// the dispatcher is back to its baseline.
	rtPoll(t, "the target's connections closed after the load", 15*time.Second, settled)
	var end rtProcSample
	back := func() bool {
		end = rtSample(disp)
		return end.Goroutines <= base.Goroutines+20 && end.nonRedisFDs() <= base.nonRedisFDs()+10
	}
	deadline := time.Now().Add(15 * time.Second)
	for !back() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if end.Goroutines > base.Goroutines+20 {
		t.Errorf("dispatcher goroutines: %.0f after the load, %.0f before (peak %.0f): more than +20, a leak", end.Goroutines, base.Goroutines, peak.Goroutines)
	}
	if end.nonRedisFDs() > base.nonRedisFDs()+10 {
		t.Errorf("dispatcher file descriptors other than Redis connections: %.0f after the load, %.0f before (peak %.0f fds in all): more than +10, a leak",
			end.nonRedisFDs(), base.nonRedisFDs(), peak.FDs)
	}
	if end.FDs > base.FDs+20+max(0, end.RedisConns-base.RedisConns) {
		t.Errorf("dispatcher file descriptors: %.0f after the load, %.0f before", end.FDs, base.FDs)
	}
	const heapLimit = 200 << 20
	if peak.HeapInuse > heapLimit || peak.HeapInuse < 0 {
		t.Errorf("dispatcher heap in use peaked at %.1f MB while %d huge answers of 100 MB streamed (limit 200 MB)", peak.HeapInuse/(1<<20), loaded/len(kinds))
	}
	hits := ft.hits()
	hugeCalls := hits["/huge"]
	if hugeCalls > 0 && ft.hugeMax.Load() >= rtHugeBytes {
		t.Errorf("a /huge answer was read to its end (%d bytes): the dispatcher did not bound its read", ft.hugeMax.Load())
	}

	paths := make([]string, 0, len(hits))
	for p := range hits {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var perPath []string
	for _, p := range paths {
		perPath = append(perPath, fmt.Sprintf("%s %d", p, hits[p]))
	}
	t.Logf("%d tasks on %d queues (%d kinds) in %v of load, all finished %v after it began; requests per path: %s",
		len(tasks), len(queues), len(kinds), loadFor, drained.Round(time.Millisecond), strings.Join(perPath, ", "))
	t.Logf("final states: %v (%d tasks meant to succeed needed a second attempt after a timeout)", byState, retried)
	for _, k := range kinds {
		t.Logf("  %-8s %s", k.name, example[k.name])
	}
	t.Logf("/huge: %d calls, %.1f MB written to the dispatcher in all, at most %.0f KB in one call (of 100 MB; max_response_bytes %d KB)",
		hugeCalls, float64(ft.hugeSent.Load())/(1<<20), float64(ft.hugeMax.Load())/1024, rtMaxResponse>>10)
	t.Logf("dispatcher: baseline %v", base)
	t.Logf("dispatcher: peak     %v", peak)
	t.Logf("dispatcher: end      %v", end)
	t.Logf("target connections: peak %d open at once, %d open at the end", ft.peakOpen.Load(), ft.open.Load())
}
