package testcluster

// The core end-to-end scenario, shared by test/e2e (on one Redis) and
// test/fault (unchanged, on a Redis Cluster, with and without a shard
// restart), so that the two cannot drift apart.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htq/htq/client"
)

// CheckSerial asserts that each queue's calls arrived
// in index order, one at a time, each index exactly once.
func CheckSerial(t *testing.T, calls []Call, perQueue int) {
	t.Helper()
	byQueue := map[string][]Call{}
	for _, c := range calls {
		byQueue[c.Query.Get("q")] = append(byQueue[c.Query.Get("q")], c)
	}
	for q, cs := range byQueue {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
		if len(cs) != perQueue {
			t.Errorf("queue %s: %d calls, want %d", q, len(cs), perQueue)
		}
		for i, c := range cs {
			if got := c.Query.Get("i"); got != strconv.Itoa(i) {
				t.Errorf("queue %s: call %d was task %s (out of order or duplicated)", q, i, got)
				break
			}
			if i > 0 && c.Start.Before(cs[i-1].End) {
				t.Errorf("queue %s: task %d started before task %d finished", q, i, i-1)
				break
			}
		}
	}
}

var coreHTTP = &http.Client{Timeout: 15 * time.Second}

// EnqueueREST creates one task through the Go client (tried once, no
// idempotency key); it reports whether it was accepted, or why not.
func EnqueueREST(c *Cluster, queue string, task client.TaskRequest) (bool, string) {
	if _, err := c.Client(client.WithHTTPClient(coreHTTP)).CreateTask(context.Background(), queue, task); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// EnqueueLegacy adds one task through the legacy API as the PHP SDK does.
func EnqueueLegacy(c *Cluster, queue, url string) (bool, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, kv := range [][2]string{
		{"app_key", LegacyKey}, {"app_token", LegacyToken},
		{"queue_name", queue}, {"url", url}, {"execute_time", "0"}, {"method", "get"}, {"header", "[]"}, {"data", "[]"},
	} {
		_ = w.WriteField(kv[0], kv[1])
	}
	_ = w.Close()
	resp, err := coreHTTP.Post(c.API+"/api/addTask", w.FormDataContentType(), &buf)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(rb, &out); err != nil || out["error_code"] != float64(0) {
		return false, fmt.Sprintf("%d %s", resp.StatusCode, rb)
	}
	return true, ""
}

// CoreResult is what RunCore measured.
type CoreResult struct {
	Enqueued   time.Duration // until every task was accepted
	Took       time.Duration // until every task was called and the queues drained
	Failures   int64         // enqueue requests refused or failed (then tried again)
	FirstError string
	// Refused maps "queue/index" to the answers of its refused tries.
	Refused map[string][]string
	// Sent maps "queue/index" to when its accepted try was sent.
	Sent map[string]time.Time
}

// RunCore is the core end-to-end scenario: queues × perQueue tasks (the
// tests use 50 × 100), even queues through the legacy API and odd ones through REST, pushed by one
// goroutine per queue. With retry, a refused enqueue is tried again (the
// task counts as accepted when one try is); without, it is an error. fault,
// when set, runs in the test goroutine while the tasks flow.
func RunCore(t *testing.T, c *Cluster, tg *Target, queues, perQueue int, retry bool, fault func()) CoreResult {
	t.Helper()
	var res CoreResult
	var failures atomic.Int64
	var firstErr sync.Once
	var mu sync.Mutex
	res.Refused = map[string][]string{}
	res.Sent = map[string]time.Time{}
	start := time.Now()
	for qi := range queues {
		if qi%2 == 1 {
			name := fmt.Sprintf("q%02d", qi)
			if _, created, err := c.Client().PutQueue(t.Context(), name, client.QueueSettings{}); err != nil || !created {
				t.Fatalf("create %s: created=%v %v", name, created, err)
			}
		}
	}
	var wg sync.WaitGroup
	for qi := range queues {
		name := fmt.Sprintf("q%02d", qi)
		legacy := qi%2 == 0
		wg.Go(func() {
			for i := range perQueue {
				u := fmt.Sprintf("%s/task?q=%s&i=%d", tg.URL, name, i)
				deadline := time.Now().Add(40 * time.Second)
				for {
					var ok bool
					var detail string
					sent := time.Now()
					if legacy {
						ok, detail = EnqueueLegacy(c, name, u)
					} else {
						ok, detail = EnqueueREST(c, name, client.TaskRequest{URL: u})
					}
					if ok {
						mu.Lock()
						res.Sent[fmt.Sprintf("%s/%d", name, i)] = sent
						mu.Unlock()
						break
					}
					failures.Add(1)
					firstErr.Do(func() { res.FirstError = detail })
					mu.Lock()
					key := fmt.Sprintf("%s/%d", name, i)
					res.Refused[key] = append(res.Refused[key], fmt.Sprintf("%s after %v: %s", map[bool]string{true: "legacy", false: "REST"}[legacy], time.Since(start).Round(time.Millisecond), detail))
					mu.Unlock()
					if !retry || time.Now().After(deadline) {
						t.Errorf("enqueue %s #%d: %s", name, i, detail)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	if fault != nil {
		fault()
	}
	wg.Wait()
	res.Enqueued = time.Since(start)
	res.Failures = failures.Load()
	distinct := func() int {
		seen := map[string]bool{}
		for _, cl := range tg.Calls() {
			seen[cl.Query.Get("q")+"/"+cl.Query.Get("i")] = true
		}
		return len(seen)
	}
	c.WaitFor("every task called", 120*time.Second, func() bool { return tg.Count() >= queues*perQueue && distinct() == queues*perQueue })
	c.WaitFor("queues drained", 30*time.Second, c.Drained)
	res.Took = time.Since(start)
	return res
}
