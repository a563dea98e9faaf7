package api_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/htq/htq/internal/store"
)

type overviewT struct {
	Minutes []struct {
		T         time.Time `json:"t"`
		Succeeded int64     `json:"succeeded"`
		Failed    int64     `json:"failed"`
		Dead      int64     `json:"dead"`
	} `json:"minutes"`
	Backlog struct {
		Scheduled, Queued, Active, Dead int64
		At                              *time.Time `json:"at"`
	} `json:"backlog"`
	Queues    int64 `json:"queues"`
	Scheduler struct {
		Leader string `json:"leader"`
		Term   int64  `json:"term"`
	} `json:"scheduler"`
	Dispatchers []struct {
		ID        string    `json:"id"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"dispatchers"`
}

func TestOverview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putQueue("q", map[string]any{})
	e.putQueue("r", map[string]any{})
	e.addTasks("q", "http://h.test/1", "http://h.test/2", "http://h.test/3", "http://h.test/4")
	e.failTasks("q", 500, 404) // two dead letters this minute
	// one success and one failure (held for a retry)
	c, err := e.st.Claim(e.ctx, "q", "test2", store.ClaimOptions{TTL: 10 * time.Second, Want: 1})
	if err != nil || len(c.Deliveries) != 1 {
		t.Fatalf("claim: %+v %v", c, err)
	}
	next, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &c.Deliveries[0], Outcome: store.OutcomeSucceeded, Retention: time.Hour, Want: 1})
	if err != nil || len(next.Deliveries) != 1 {
		t.Fatalf("complete: %+v %v", next, err)
	}
	if _, err := c.Owned.Complete(e.ctx, &store.Completion{Delivery: &next.Deliveries[0], Outcome: store.OutcomeHold, Due: testNow.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.FlushStats(e.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Heartbeat(e.ctx, "d1", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	e.rdb.Set(e.ctx, "htq:leader", "lock-token-1", time.Minute)
	e.rdb.Set(e.ctx, "htq:leader:term", "7", 0)

	var o overviewT
	e.must(e.rest(http.MethodGet, "/v1/overview", nil), http.StatusOK, &o)
	if len(o.Minutes) != 60 {
		t.Fatalf("%d minutes", len(o.Minutes))
	}
	last := o.Minutes[59]
	if !last.T.Equal(testNow.Truncate(time.Minute)) || !o.Minutes[0].T.Equal(last.T.Add(-59*time.Minute)) {
		t.Fatalf("minutes from %v to %v", o.Minutes[0].T, last.T)
	}
	if last.Dead != 2 || last.Succeeded != 1 || last.Failed != 1 {
		t.Fatalf("this minute: %+v, want 2 dead, 1 succeeded, 1 failed", last)
	}
	for _, m := range o.Minutes[:59] {
		if m.Dead+m.Succeeded+m.Failed != 0 {
			t.Fatalf("earlier minute %+v not empty", m)
		}
	}
	if o.Backlog.At == nil || o.Backlog.Dead != 2 || o.Backlog.Active != 1 || o.Backlog.Queued != 0 || o.Queues != 2 {
		t.Fatalf("backlog %+v, queues %d", o.Backlog, o.Queues)
	}
	if o.Scheduler.Leader != "lock-token-1" || o.Scheduler.Term != 7 {
		t.Fatalf("scheduler %+v", o.Scheduler)
	}
	if len(o.Dispatchers) != 1 || o.Dispatchers[0].ID != "d1" || !o.Dispatchers[0].ExpiresAt.Equal(testNow.Add(10*time.Second)) {
		t.Fatalf("dispatchers %+v", o.Dispatchers)
	}
	if ttl := e.rdb.TTL(e.ctx, "htq:stats:m:"+itoa(testNow.Unix()/60)).Val(); ttl <= 0 || ttl > 3*time.Hour {
		t.Fatalf("counter TTL %v", ttl)
	}

	// a stale snapshot is refreshed in the background; meanwhile the old one is shown
	e.addTasks("r", "http://h.test/5", "http://h.test/6")
	e.clk.Advance(11 * time.Second)
	e.rdb.Del(e.ctx, "htq:stats:backlog:lock") // the refresh lock runs on Redis's clock
	for i := 0; ; i++ {
		e.must(e.rest(http.MethodGet, "/v1/overview", nil), http.StatusOK, &o)
		if o.Backlog.Queued == 2 {
			break
		}
		if i > 200 {
			t.Fatalf("backlog not refreshed: %+v", o.Backlog)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !o.Backlog.At.Equal(testNow.Add(11 * time.Second)) {
		t.Fatalf("snapshot at %v", o.Backlog.At)
	}
	// the dispatcher's heartbeat ran out
	e.clk.Advance(time.Minute)
	e.must(e.rest(http.MethodGet, "/v1/overview", nil), http.StatusOK, &o)
	if len(o.Dispatchers) != 0 {
		t.Fatalf("dispatchers %+v after their heartbeat ran out", o.Dispatchers)
	}
	if o.Minutes[58].Dead != 2 {
		t.Fatalf("the minute before: %+v", o.Minutes[58])
	}
	e.wantError(e.rest(http.MethodGet, "/v1/overview?minutes=5", nil), http.StatusBadRequest, "bad_request", "minutes")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
