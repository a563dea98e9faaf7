package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/api"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/config"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/metrics"
)

// stream is an open /v1/events response read line by line.
type stream struct {
	t      *testing.T
	cancel context.CancelFunc
	lines  chan string // closed at the end of the stream
}

func (e *testEnv) openEvents(query, token string) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel) // before the test server's Close (cleanups run last first)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/v1/events"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	hc := &http.Client{Transport: e.ts.Client().Transport} // no client timeout: a stream is long
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatalf("GET /v1/events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("GET /v1/events: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &stream{t: e.t, cancel: cancel, lines: make(chan string, 1024)}
	go func() {
		defer close(s.lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	s.waitLine(": subscribed")
	return s
}

// waitLine reads until a line equal to want, failing after 10 s or at the
// end of the stream.
func (s *stream) waitLine(want string) {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("stream ended before %q", want)
			}
			if l == want {
				return
			}
		case <-deadline:
			s.t.Fatalf("no %q within 10 s", want)
		}
	}
}

type eventData struct {
	Type    string    `json:"type"`
	ID      string    `json:"id"`
	Queue   string    `json:"queue"`
	Time    time.Time `json:"time"`
	Attempt int       `json:"attempt"`
	Status  int       `json:"status"`
}

// next reads the next event (event: and data: lines), skipping comments.
func (s *stream) next() eventData {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	var typ string
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				s.t.Fatal("stream ended")
			}
			switch {
			case strings.HasPrefix(l, "event: "):
				typ = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				var d eventData
				if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &d); err != nil {
					s.t.Fatalf("data %q: %v", l, err)
				}
				if d.Type != typ {
					s.t.Fatalf("event: %s with data of type %s", typ, d.Type)
				}
				return d
			}
		case <-deadline:
			s.t.Fatal("no event within 10 s")
		}
	}
}

func startDispatcher(t *testing.T, e *testEnv) {
	t.Helper()
	cfg := dispatch.Config{
		ID: "d1", MaxQueues: 64, LeaseTTL: time.Second, RecoveryGrace: 200 * time.Millisecond,
		ShutdownGrace: 5 * time.Second, PollMin: 10 * time.Millisecond, PollMax: 100 * time.Millisecond, History: 5,
	}
	client, err := deliver.New(deliver.Options{MaxResponseBytes: config.DefaultMaxResponseBytes})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(cfg, e.st, client, clock.Real{}, slog.New(slog.DiscardHandler), metrics.NewDispatcher(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dispatcher: %v", err)
		}
	})
}

// TestEventsFromARealDispatcher: a task that succeeds and one that fails
// twice, called by a real dispatcher, show every transition on the stream
// of their queue, in order, and nothing of another queue.
func TestEventsFromARealDispatcher(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(target.Close)
	e := newEnvWith(t, envOptions{realClock: true, mutate: func(c *api.Config) {
		c.ReadOnlyTokens = newReadOnlyConfig()
	}})
	e.putQueue("q", map[string]any{"retry": map[string]any{"max_attempts": 2, "min_backoff": "10ms", "max_backoff": "10ms"}})
	e.putQueue("other", map[string]any{})
	s := e.openEvents("?queue=q", testReadOnlyToken) // a read-only token may watch
	all := e.openEvents("", testToken)
	startDispatcher(t, e)

	ok := e.addTask("q", map[string]any{"url": target.URL + "/ok"})
	e.addTask("other", map[string]any{"url": target.URL + "/ok"})
	want := []eventData{
		{Type: "created", ID: ok.ID}, {Type: "started", ID: ok.ID, Attempt: 1}, {Type: "succeeded", ID: ok.ID, Attempt: 1, Status: 200},
	}
	for _, w := range want {
		checkEvent(t, s.next(), w)
	}
	fail := e.addTask("q", map[string]any{"url": target.URL + "/fail"})
	for _, w := range []eventData{
		{Type: "created", ID: fail.ID}, {Type: "started", ID: fail.ID, Attempt: 1}, {Type: "failed", ID: fail.ID, Attempt: 1, Status: 500},
		{Type: "started", ID: fail.ID, Attempt: 2}, {Type: "dead", ID: fail.ID, Attempt: 2, Status: 500},
	} {
		checkEvent(t, s.next(), w)
	}
	// the unfiltered stream saw the other queue too
	seen := map[string]bool{}
	for !seen["other"] {
		seen[all.next().Queue] = true
	}
	// a client that leaves ends its subscription
	s.cancel()
	all.cancel()
	for i := 0; ; i++ {
		n, err := e.rdb.Do(e.ctx, "PUBSUB", "SHARDNUMSUB", "htq:{p000}:ev").Slice()
		if err == nil && len(n) == 2 && n[1] == int64(0) {
			break
		}
		if i > 200 {
			t.Fatalf("subscriptions left after the clients went away: %v %v", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkEvent(t *testing.T, got, want eventData) {
	t.Helper()
	if got.Type != want.Type || got.ID != want.ID || got.Attempt != want.Attempt || got.Status != want.Status || got.Queue != "q" {
		t.Fatalf("event %+v, want %+v in queue q", got, want)
	}
	if d := time.Since(got.Time); d < 0 || d > time.Minute {
		t.Fatalf("event time %v is not now", got.Time)
	}
}

func TestEventsKeepaliveAndShutdown(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{realClock: true, mutate: func(c *api.Config) { c.EventKeepalive = 50 * time.Millisecond }})
	s := e.openEvents("", testToken)
	s.waitLine(": keepalive")
	s.waitLine(": keepalive")
	e.srv.Close() // what Serve does when its context ends
	s.waitLine(": server shutting down")
	select {
	case _, open := <-s.lines:
		for open {
			_, open = <-s.lines
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end at shutdown")
	}
}

func TestEventsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.wantError(e.rest(http.MethodGet, "/v1/events?queues=a", nil), http.StatusBadRequest, "bad_request", "queues")
	e.wantError(e.rest(http.MethodGet, "/v1/events?queue=%01", nil), http.StatusBadRequest, "bad_request", "queue")
	e.wantError(e.rest(http.MethodGet, "/v1/events", nil, "Authorization", "-"), http.StatusUnauthorized, "unauthorized")
	e.wantError(e.rest(http.MethodPost, "/v1/events", nil), http.StatusMethodNotAllowed, "method_not_allowed")
}
