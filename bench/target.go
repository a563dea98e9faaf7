package main

// The no-op HTTP target that every scenario's tasks call, and helpers to
// check what arrived.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Arrival is one request seen by the target.
type Arrival struct {
	T        int64  // monotonic ns since the target started (see Target.Now)
	Method   string // GET, POST, ...
	Path     string
	Query    string // raw query, e.g. "q=s3&i=17"
	TaskID   string // X-HTQ-Task-Id
	Queue    string // X-HTQ-Queue
	Sequence string // X-HTQ-Sequence
}

var (
	hdrTaskID   = textproto.CanonicalMIMEHeaderKey("X-HTQ-Task-Id")
	hdrQueue    = textproto.CanonicalMIMEHeaderKey("X-HTQ-Queue")
	hdrSequence = textproto.CanonicalMIMEHeaderKey("X-HTQ-Sequence")

	okBody          = []byte("ok")
	textPlainHeader = []string{"text/plain; charset=utf-8"}
)

// Target is a no-op HTTP server on 127.0.0.1 that records every arrival.
// Keep-alive is on (net/http default). Recording is a single mutex-protected
// append into a pre-allocated slice; the arrival time is taken under the
// lock so the slice is in non-decreasing time order.
type Target struct {
	URL  string // "http://127.0.0.1:PORT"
	Addr string // "127.0.0.1:PORT"

	start time.Time
	ln    net.Listener
	srv   *http.Server

	mu  sync.Mutex
	arr []Arrival
	n   atomic.Int64

	conns atomic.Int64 // TCP connections accepted since start

	status atomic.Int64 // response status (default 200)
	delay  atomic.Int64 // artificial handler delay in ns (default 0)
}

// StartTarget starts the target on a free loopback port.
func StartTarget(capacity int) (*Target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &Target{
		Addr:  ln.Addr().String(),
		URL:   "http://" + ln.Addr().String(),
		start: time.Now(),
		ln:    ln,
		arr:   make([]Arrival, 0, capacity),
	}
	t.status.Store(http.StatusOK)
	t.srv = &http.Server{
		Handler:           t,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				t.conns.Add(1)
			}
		},
	}
	go func() { _ = t.srv.Serve(ln) }()
	return t, nil
}

// Close shuts the server down.
func (t *Target) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return t.srv.Shutdown(ctx)
}

// Now is the target's clock: monotonic ns since it started. Use it for the
// start of a measurement so it compares with Arrival.T.
func (t *Target) Now() int64 { return int64(time.Since(t.start)) }

// SetStatus sets the HTTP status the target answers with (default 200).
func (t *Target) SetStatus(code int) { t.status.Store(int64(code)) }

// SetDelay makes the handler sleep d before answering (default 0).
func (t *Target) SetDelay(d time.Duration) { t.delay.Store(int64(d)) }

func (t *Target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	a := Arrival{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.RawQuery,
	}
	if v := h[hdrTaskID]; len(v) > 0 {
		a.TaskID = v[0]
	}
	if v := h[hdrQueue]; len(v) > 0 {
		a.Queue = v[0]
	}
	if v := h[hdrSequence]; len(v) > 0 {
		a.Sequence = v[0]
	}
	t.mu.Lock()
	a.T = int64(time.Since(t.start))
	t.arr = append(t.arr, a)
	t.mu.Unlock()
	t.n.Add(1)

	if d := t.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	w.Header()["Content-Type"] = textPlainHeader
	w.WriteHeader(int(t.status.Load()))
	_, _ = w.Write(okBody)
}

// Reset forgets all arrivals and makes room for capacity more.
func (t *Target) Reset(capacity int) {
	t.mu.Lock()
	if cap(t.arr) >= capacity {
		clear(t.arr)
		t.arr = t.arr[:0]
	} else {
		t.arr = make([]Arrival, 0, capacity)
	}
	t.n.Store(0)
	t.mu.Unlock()
}

// Conns is the number of TCP connections the target has accepted since it
// started (compare before/after a run to verify keep-alive reuse).
func (t *Target) Conns() int64 { return t.conns.Load() }

// Count is the number of arrivals since the last Reset (lock-free).
func (t *Target) Count() int { return int(t.n.Load()) }

// Arrivals returns a copy of all arrivals, in arrival order.
func (t *Target) Arrivals() []Arrival {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Arrival(nil), t.arr...)
}

// ArrivalTime returns Arrival.T of the i-th arrival (0-based).
func (t *Target) ArrivalTime(i int) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.arr) {
		return -1
	}
	return t.arr[i].T
}

// WaitArrivals polls (every millisecond) until at least n arrivals have been
// recorded, ctx ends, or the optional stop channel is closed (e.g. the
// workers failed). It returns the time of the n-th arrival.
func (t *Target) WaitArrivals(ctx context.Context, n int, stop <-chan struct{}) (int64, error) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if t.Count() >= n {
			return t.ArrivalTime(n - 1), nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("target saw %d of %d arrivals: %w", t.Count(), n, ctx.Err())
		case <-stop:
			if t.Count() >= n {
				return t.ArrivalTime(n - 1), nil
			}
			return -1, fmt.Errorf("target saw %d of %d arrivals: workers stopped", t.Count(), n)
		case <-tick.C:
		}
	}
}

// ---- order / completeness checks ------------------------------------------

// TaskURL builds the URL a benchmark task calls: base + path + "?q=QUEUE&i=INDEX".
func TaskURL(base, path, queue string, index int) string {
	return base + path + "?q=" + url.QueryEscape(queue) + "&i=" + strconv.Itoa(index)
}

// ArrivalKey extracts (queue, index) of an arrival: from the query "q" and
// "i" parameters, falling back to the X-HTQ-Queue and X-HTQ-Sequence headers.
func ArrivalKey(a Arrival) (queue string, index int, ok bool) {
	q, i := "", ""
	if a.Query != "" {
		if v, err := url.ParseQuery(a.Query); err == nil {
			q, i = v.Get("q"), v.Get("i")
		}
	}
	if q == "" {
		q = a.Queue
	}
	if i == "" {
		i = a.Sequence
	}
	if q == "" || i == "" {
		return "", 0, false
	}
	n, err := strconv.Atoi(i)
	if err != nil {
		return "", 0, false
	}
	return q, n, true
}

// OrderReport is the outcome of CheckOrder.
type OrderReport struct {
	Arrivals   int // total arrivals examined
	Queues     int // distinct queues seen
	Expected   int // sum of expected counts
	Missing    int // expected (queue, index) never seen
	Duplicates int // (queue, index) seen more than once (extra copies)
	OutOfOrder int // arrivals whose index is not greater than the previous one of the same queue (duplicates excluded)
	Unexpected int // queue not expected or index outside [0, expected)
	Unparsed   int // arrivals without a (queue, index)
	Examples   []string
}

// Complete reports nothing missing, duplicated, unexpected or unparsed.
func (r OrderReport) Complete() bool {
	return r.Missing == 0 && r.Duplicates == 0 && r.Unexpected == 0 && r.Unparsed == 0
}

// OK reports Complete and in order.
func (r OrderReport) OK() bool { return r.Complete() && r.OutOfOrder == 0 }

func (r OrderReport) String() string {
	s := fmt.Sprintf("arrivals=%d queues=%d expected=%d missing=%d dup=%d out_of_order=%d unexpected=%d unparsed=%d",
		r.Arrivals, r.Queues, r.Expected, r.Missing, r.Duplicates, r.OutOfOrder, r.Unexpected, r.Unparsed)
	if len(r.Examples) > 0 {
		s += " e.g. " + strings.Join(r.Examples, "; ")
	}
	return s
}

// CheckOrder verifies per-queue order and completeness. expected maps queue
// → number of tasks, whose indexes are 0..n-1. Order holds when, for each
// queue, the indexes arrive strictly increasing.
func CheckOrder(arrivals []Arrival, expected map[string]int) OrderReport {
	rep := OrderReport{Arrivals: len(arrivals)}
	for _, n := range expected {
		rep.Expected += n
	}
	type qstate struct {
		seen []bool
		last int
	}
	qs := make(map[string]*qstate, len(expected))
	example := func(format string, args ...any) {
		if len(rep.Examples) < 5 {
			rep.Examples = append(rep.Examples, fmt.Sprintf(format, args...))
		}
	}
	for _, a := range arrivals {
		q, i, ok := ArrivalKey(a)
		if !ok {
			rep.Unparsed++
			example("unparsed %s %s?%s", a.Method, a.Path, a.Query)
			continue
		}
		n, known := expected[q]
		if !known || i < 0 || i >= n {
			rep.Unexpected++
			example("unexpected q=%s i=%d", q, i)
			continue
		}
		st := qs[q]
		if st == nil {
			st = &qstate{seen: make([]bool, n), last: -1}
			qs[q] = st
		}
		if st.seen[i] {
			rep.Duplicates++
			example("duplicate q=%s i=%d", q, i)
			continue
		}
		st.seen[i] = true
		if i <= st.last {
			rep.OutOfOrder++
			example("out of order q=%s i=%d after %d", q, i, st.last)
		}
		st.last = i
	}
	rep.Queues = len(qs)
	names := make([]string, 0, len(expected))
	for q := range expected {
		names = append(names, q)
	}
	sort.Strings(names)
	for _, q := range names {
		st := qs[q]
		for i := 0; i < expected[q]; i++ {
			if st == nil || !st.seen[i] {
				rep.Missing++
				if rep.Missing <= 2 {
					example("missing q=%s i=%d", q, i)
				}
			}
		}
	}
	return rep
}

// ---- HTTP client -------------------------------------------------------------

// HTTPClient is a keep-alive http.Client with a Get that drains the body.
type HTTPClient struct {
	*http.Client
}

// NewHTTPClient returns a keep-alive client whose idle pool holds enough
// connections per host for `concurrency` parallel callers (Go's default of
// 2 idle connections per host would open a new connection for most calls).
func NewHTTPClient(concurrency int) *HTTPClient {
	idle := max(2*concurrency, 16)
	tr := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &HTTPClient{&http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Get performs a GET, drains and closes the body (so the connection is
// reused) and fails on a non-2xx status.
func (c *HTTPClient) Get(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return nil
}
