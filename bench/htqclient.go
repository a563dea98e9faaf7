package main

// Raw HTTP to HTQ's REST and legacy APIs for load generation, set-up and
// checks through the Go client (package client), /metrics scraping with histogram
// quantiles from bucket deltas, and waiting for deliveries at the target.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htq/htq/client"
)

// ---- REST --------------------------------------------------------------------

// restClient sends pre-encoded requests to an HTQ API with a bearer token
// over keep-alive connections and counts the connections it dials: the
// load generators' path, where the Go client's encoding, decoding and
// retries would be part of what is measured (bench/README.md, "The Go
// client"). Set-up and checks use the Go client over the same connections.
type restClient struct {
	base  string
	auth  string
	hc    *http.Client
	dials atomic.Int64
}

func newRESTClient(base, token string, concurrency int) *restClient {
	c := &restClient{base: strings.TrimRight(base, "/"), auth: "Bearer " + token}
	idle := max(2*concurrency, 16)
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	c.hc = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	return c
}

// Dials is the number of TCP connections opened so far.
func (c *restClient) Dials() int64 { return c.dials.Load() }

// do sends one request and returns the status and the whole answer.
func (c *restClient) do(ctx context.Context, method, path string, body []byte, contentType string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if c.auth != "" && strings.HasPrefix(path, "/v1/") {
		req.Header.Set("Authorization", c.auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, b, err
}

func clipBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func queuePath(name string) string { return "/v1/queues/" + url.PathEscape(name) }

// newTask is one task of a REST batch the load generators send pre-encoded.
type newTask struct {
	URL   string `json:"url"`
	RunAt string `json:"run_at,omitempty"`
}

// batchBody encodes {"tasks":[...]}.
func batchBody(tasks []newTask) []byte {
	b, _ := json.Marshal(struct {
		Tasks []newTask `json:"tasks"`
	}{tasks})
	return b
}

// ---- REST set-up and checks, through the Go client -----------------------------

// newAPIClient is the Go client of an HTQ API over rc's connections (so
// rc.Dials counts its dials too). It sends no idempotency key of its own:
// the preloads would otherwise make the API store one key per task, which
// the memory and throughput figures must not include.
func newAPIClient(rc *restClient, token string) (*client.Client, error) {
	hc, err := client.New(rc.base, client.WithToken(token), client.WithHTTPClient(rc.hc),
		client.WithoutIdempotencyKeys(), client.WithUserAgent("htq-bench"))
	if err != nil {
		return nil, fmt.Errorf("api client: %w", err)
	}
	return hc, nil
}

// putQueues creates (or updates) queues with `workers` concurrent requests.
func putQueues(ctx context.Context, hc *client.Client, names []string, s client.QueueSettings, workers int) error {
	return parallel(ctx, len(names), workers, func(ctx context.Context, i int) error {
		if _, _, err := hc.PutQueue(ctx, names[i], s); err != nil {
			return fmt.Errorf("put queue %s: %w", names[i], err)
		}
		return nil
	})
}

// enqueueBatch creates a batch of tasks and checks that an id came back for each.
func enqueueBatch(ctx context.Context, hc *client.Client, queue string, tasks []client.TaskRequest) error {
	created, err := hc.CreateTasks(ctx, queue, tasks)
	if err != nil {
		return fmt.Errorf("batch of %d to %s: %w", len(tasks), queue, err)
	}
	if len(created) != len(tasks) {
		return fmt.Errorf("batch of %d to %s: %d ids in the answer", len(tasks), queue, len(created))
	}
	for _, t := range created {
		if t.ID == "" {
			return fmt.Errorf("batch to %s: a task without id", queue)
		}
	}
	return nil
}

// allCounts sums the counts of every queue (GET /v1/queues, paginated) and
// returns the number of queues listed.
func allCounts(ctx context.Context, hc *client.Client) (client.Counts, int, error) {
	var sum client.Counts
	n := 0
	cursor := ""
	for {
		page, err := hc.ListQueues(ctx, client.ListOptions{Limit: 1000, Cursor: cursor})
		if err != nil {
			return sum, n, fmt.Errorf("list queues: %w", err)
		}
		for _, q := range page.Queues {
			sum.Queued += q.Counts.Queued
			sum.Active += q.Counts.Active
			sum.Scheduled += q.Counts.Scheduled
			sum.Dead += q.Counts.Dead
			n++
		}
		if page.NextCursor == "" || len(page.Queues) == 0 {
			return sum, n, nil
		}
		cursor = page.NextCursor
	}
}

// rfc3339ms formats t as the API takes run_at (UTC, milliseconds).
func rfc3339ms(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// ---- legacy ------------------------------------------------------------------

// legacyForm builds a multipart/form-data body as the PHP SDK sends it
// (fields in the SDK's order: app_key, app_token, then the call's fields).
func legacyForm(key, token string, fields ...string) ([]byte, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	all := append([]string{"app_key", key, "app_token", token}, fields...)
	for i := 0; i+1 < len(all); i += 2 {
		_ = w.WriteField(all[i], all[i+1])
	}
	_ = w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

// legacyAddTaskForm is an addTask of a GET task due now, as the SDK sends it.
func legacyAddTaskForm(key, token, queue, taskURL string) ([]byte, string) {
	return legacyForm(key, token, "queue_name", queue, "url", taskURL, "execute_time", "0",
		"method", "get", "header", "[]", "data", "[]")
}

// legacyOK reports whether a legacy answer has error_code 0.
func legacyOK(b []byte) bool {
	var r struct {
		Code *int `json:"error_code"`
	}
	return json.Unmarshal(b, &r) == nil && r.Code != nil && *r.Code == 0
}

// Legacy posts a legacy call and wants error_code 0.
func (c *restClient) Legacy(ctx context.Context, key, token, endpoint string, fields ...string) error {
	body, ct := legacyForm(key, token, fields...)
	st, b, err := c.do(ctx, http.MethodPost, "/api/"+endpoint, body, ct)
	if err != nil {
		return fmt.Errorf("legacy %s: %w", endpoint, err)
	}
	if st != http.StatusOK || !legacyOK(b) {
		return fmt.Errorf("legacy %s: %d %s", endpoint, st, clipBytes(b, 300))
	}
	return nil
}

// ---- concurrency helper --------------------------------------------------------

// parallel runs f(0..n-1) on `workers` goroutines and returns the first error
// (the others stop taking new items).
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// the parent context ended
		return context.Cause(ctx)
	}
	return first
}

// paddedTaskURL is TaskURL plus a padding parameter so the URL is exactly
// size bytes long (or TaskURL itself if that is already longer).
func paddedTaskURL(base, path, queue string, index, size int) string {
	u := TaskURL(base, path, queue, index) + "&p="
	if n := size - len(u); n > 0 {
		return u + strings.Repeat("x", n)
	}
	return u
}

// zeroPadURL is TaskURL with the index zero-padded to 7 digits, so that the
// URLs of one queue sort as text in index order (the original HTQ ordered
// tasks due in the same second by URL text).
func zeroPadURL(base, path, queue string, index int) string {
	return base + path + "?q=" + url.QueryEscape(queue) + "&i=" + fmt.Sprintf("%07d", index)
}

// ---- /metrics ------------------------------------------------------------------

// promSample is one line of the Prometheus text format.
type promSample struct {
	Name   string
	Labels string // the text between { and }, "" when none
	Value  float64
}

// parseProm parses the Prometheus text exposition format (comments skipped;
// timestamps ignored).
func parseProm(text string) []promSample {
	var out []promSample
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		var s promSample
		rest := ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			s.Name, s.Labels, rest = line[:i], line[i+1:j], line[j+1:]
		} else {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			s.Name, rest = f[0], strings.Join(f[1:], " ")
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		s.Value = v
		out = append(out, s)
	}
	return out
}

// promLabel returns the value of one label in a label text.
func promLabel(labels, name string) (string, bool) {
	for _, part := range splitLabels(labels) {
		k, v, ok := strings.Cut(part, "=")
		if ok && strings.TrimSpace(k) == name {
			if u, err := strconv.Unquote(strings.TrimSpace(v)); err == nil {
				return u, true
			}
		}
	}
	return "", false
}

// splitLabels splits `a="x",b="y,z"` at commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	inQ, esc, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			inQ = !inQ
		case c == ',' && !inQ:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// promSum sums every series of a metric; ok is false if there is none.
func promSum(samples []promSample, name string) (float64, bool) {
	sum, ok := 0.0, false
	for _, s := range samples {
		if s.Name == name {
			sum += s.Value
			ok = true
		}
	}
	return sum, ok
}

// promSumWhere sums the series of a metric whose label has a value.
func promSumWhere(samples []promSample, name, label, value string) float64 {
	sum := 0.0
	for _, s := range samples {
		if s.Name == name {
			if v, ok := promLabel(s.Labels, label); ok && v == value {
				sum += s.Value
			}
		}
	}
	return sum
}

var scrapeClient = &http.Client{Timeout: 5 * time.Second}

// scrape reads and parses a /metrics URL.
func scrape(ctx context.Context, u string) ([]promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return parseProm(string(b)), nil
}

// histBucket is one cumulative bucket of a histogram.
type histBucket struct {
	LE    float64 // upper bound (+Inf for the last)
	Count float64 // observations <= LE
}

// promHistogram returns the cumulative buckets of histogram `name` (the
// <name>_bucket series, summed over other labels), sorted by bound.
func promHistogram(samples []promSample, name string) []histBucket {
	byLE := map[float64]float64{}
	for _, s := range samples {
		if s.Name != name+"_bucket" {
			continue
		}
		le, ok := promLabel(s.Labels, "le")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(le, 64) // handles "+Inf"
		if err != nil {
			continue
		}
		byLE[v] += s.Value
	}
	out := make([]histBucket, 0, len(byLE))
	for le, c := range byLE {
		out = append(out, histBucket{le, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LE < out[j].LE })
	return out
}

// histDelta returns after − before, bucket by bucket (buckets missing from
// before count as 0).
func histDelta(after, before []histBucket) []histBucket {
	b := map[float64]float64{}
	for _, x := range before {
		b[x.LE] = x.Count
	}
	out := make([]histBucket, len(after))
	for i, x := range after {
		out[i] = histBucket{x.LE, x.Count - b[x.LE]}
	}
	return out
}

// histTotal is the number of observations (the +Inf bucket, else the last).
func histTotal(b []histBucket) float64 {
	if len(b) == 0 {
		return 0
	}
	return b[len(b)-1].Count
}

// histQuantile estimates the q-quantile (0 < q < 1) of cumulative buckets
// as Prometheus's histogram_quantile does: find the bucket holding rank
// q × total and interpolate linearly inside it (from 0 for the first
// bucket). If the rank falls in the +Inf bucket the highest finite bound is
// returned. NaN when there are no observations.
func histQuantile(q float64, b []histBucket) float64 {
	total := histTotal(b)
	if len(b) == 0 || total <= 0 {
		return math.NaN()
	}
	rank := q * total
	prevLE, prevCount := 0.0, 0.0
	for i, x := range b {
		if x.Count >= rank {
			if math.IsInf(x.LE, 1) {
				if i == 0 {
					return math.NaN()
				}
				return b[i-1].LE
			}
			if x.Count == prevCount {
				return x.LE
			}
			return prevLE + (x.LE-prevLE)*(rank-prevCount)/(x.Count-prevCount)
		}
		prevLE, prevCount = x.LE, x.Count
	}
	return b[len(b)-1].LE
}

// histAbove returns the number of observations above bound le (which
// should be one of the bucket bounds).
func histAbove(b []histBucket, le float64) float64 {
	for _, x := range b {
		if x.LE >= le {
			return histTotal(b) - x.Count
		}
	}
	return 0
}

// ---- deliveries at the target ----------------------------------------------------

// ArrivalsSince returns a copy of the arrivals from index `from` on.
func (t *Target) ArrivalsSince(from int) []Arrival {
	t.mu.Lock()
	defer t.mu.Unlock()
	if from >= len(t.arr) {
		return nil
	}
	return append([]Arrival(nil), t.arr[from:]...)
}

// WallTime converts an arrival time (Arrival.T) to wall-clock time.
func (t *Target) WallTime(ns int64) time.Time { return t.start.Add(time.Duration(ns)) }

// TargetTime converts a wall-clock time to the target's clock (ns).
func (t *Target) TargetTime(w time.Time) int64 { return w.Sub(t.start).Nanoseconds() }

// deliveryTracker follows arrivals incrementally until every expected
// (queue, index) has arrived at least once.
type deliveryTracker struct {
	expected map[string]int
	total    int
	seen     map[string][]bool
	unique   int
	doneAt   int64 // Arrival.T of the arrival that completed the set
	first    int64 // Arrival.T of the first expected arrival (-1 before)
}

func newDeliveryTracker(expected map[string]int) *deliveryTracker {
	d := &deliveryTracker{expected: expected, seen: make(map[string][]bool, len(expected)), first: -1}
	for _, n := range expected {
		d.total += n
	}
	return d
}

// feed takes new arrivals (in arrival order) and reports completion.
func (d *deliveryTracker) feed(as []Arrival) bool {
	for _, a := range as {
		if d.unique == d.total {
			break
		}
		q, i, ok := ArrivalKey(a)
		if !ok {
			continue
		}
		n, known := d.expected[q]
		if !known || i < 0 || i >= n {
			continue
		}
		s := d.seen[q]
		if s == nil {
			s = make([]bool, n)
			d.seen[q] = s
		}
		if s[i] {
			continue
		}
		s[i] = true
		d.unique++
		if d.first < 0 {
			d.first = a.T
		}
		if d.unique == d.total {
			d.doneAt = a.T
		}
	}
	return d.unique == d.total
}

// waitDelivered waits until every expected task has arrived at the target
// and returns the time of the arrival that completed the set. It fails when
// ctx ends, when no new arrival came for `stall`, or when check (called
// every 100 ms, may be nil) reports an error (e.g. a process died).
func waitDelivered(ctx context.Context, t *Target, d *deliveryTracker, stall time.Duration, check func() error) (int64, error) {
	from := 0
	last := time.Now()
	lastCheck := time.Now()
	for {
		as := t.ArrivalsSince(from)
		from += len(as)
		if len(as) > 0 {
			last = time.Now()
			if d.feed(as) {
				return d.doneAt, nil
			}
		} else if d.total == 0 {
			return t.Now(), nil
		}
		if check != nil && time.Since(lastCheck) > 100*time.Millisecond {
			lastCheck = time.Now()
			if err := check(); err != nil {
				return -1, fmt.Errorf("%d of %d tasks arrived: %w", d.unique, d.total, err)
			}
		}
		if time.Since(last) > stall {
			return -1, fmt.Errorf("stalled: %d of %d tasks arrived, none new for %v", d.unique, d.total, stall)
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("%d of %d tasks arrived: %w", d.unique, d.total, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// ---- latency summaries ----------------------------------------------------------

// msStats returns p50, p99, mean and max of durations given in ns, in ms.
func msStats(ns []int64) (p50, p99, mean, maxv float64) {
	if len(ns) == 0 {
		return 0, 0, 0, 0
	}
	xs := make([]float64, len(ns))
	sum := 0.0
	for i, v := range ns {
		xs[i] = float64(v) / 1e6
		sum += xs[i]
		maxv = max(maxv, xs[i])
	}
	return Percentile(xs, 50), Percentile(xs, 99), sum / float64(len(xs)), maxv
}
