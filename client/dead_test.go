package client_test

import (
	"testing"
	"time"

	"github.com/htq/htq/client"
	"github.com/htq/htq/internal/apitest"
	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/redistest"
	"github.com/htq/htq/internal/store"
)

// deadAPI starts the API with n dead letters in queue "q" (last statuses
// 500 and 502 in turn) and one live task.
func deadAPI(t *testing.T, n int) (*client.Client, string) {
	t.Helper()
	ctx := t.Context()
	st, err := store.New(redistest.Start(t).Client(t), "htq:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(ctx); err != nil {
		t.Fatal(err)
	}
	ts, err := apitest.Serve(st, apitest.Config(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Close)
	c := newClient(t, ts.URL)
	if _, _, err := c.PutQueue(ctx, "q", client.QueueSettings{}); err != nil {
		t.Fatal(err)
	}
	tasks := make([]client.TaskRequest, n+1)
	for i := range tasks {
		tasks[i] = client.TaskRequest{URL: "http://127.0.0.1:9/d"}
	}
	tasks[n].URL = "http://127.0.0.1:9/alive"
	created, err := c.CreateTasks(ctx, "q", tasks)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := st.Claim(ctx, "q", "test", store.ClaimOptions{TTL: 10 * time.Second, Want: 1})
	if err != nil || cl.Status != store.ClaimOK || len(cl.Deliveries) != 1 {
		t.Fatalf("claim: %+v, %v", cl, err)
	}
	d := cl.Deliveries[0]
	for i := range n {
		want := 1
		if i == n-1 {
			want = 0 // leave the live task queued
		}
		next, err := cl.Owned.Complete(ctx, &store.Completion{Delivery: &d, Outcome: store.OutcomeDead, Retention: time.Hour,
			Want: want, HistoryLen: 3, Attempt: &store.AttemptRecord{At: time.Now().UnixMilli(), Attempt: d.Attempt, Status: 500 + 2*(i%2), Error: "x"}})
		if err != nil || (i < n-1 && len(next.Deliveries) != 1) {
			t.Fatalf("complete %d: %+v %v", i, next, err)
		}
		if i < n-1 {
			d = next.Deliveries[0]
		}
	}
	return c, created[n].ID
}

// TestDeadRoutes: list, count, and bulk retry/delete by ids and by filter.
func TestDeadRoutes(t *testing.T) {
	ctx := t.Context()
	c, alive := deadAPI(t, 10)
	page, err := c.ListDead(ctx, client.DeadFilter{Queue: "q", Code: 502}, client.ListOptions{Limit: 100})
	if err != nil || len(page.Tasks) != 5 || page.Tasks[0].State != client.StateDead || page.Tasks[0].LastStatus != 502 {
		t.Fatalf("ListDead: %+v %v", page, err)
	}
	if n, err := c.CountDead(ctx, client.DeadFilter{}); err != nil || n.Count != 10 || !n.Exact {
		t.Fatalf("CountDead: %+v %v", n, err)
	}
	// By ids: the live task is skipped, not cancelled.
	r, err := c.DeleteDeadIDs(ctx, []string{page.Tasks[0].ID, alive})
	if err != nil || r.Matched != 1 || r.Done != 1 {
		t.Fatalf("DeleteDeadIDs: %+v %v", r, err)
	}
	if tk, err := c.GetTask(ctx, alive); err != nil || tk.State != client.StateQueued {
		t.Fatalf("the live task after DeleteDeadIDs: %+v %v", tk, err)
	}
	if r, err = c.RetryDeadIDs(ctx, []string{page.Tasks[1].ID}); err != nil || r.Done != 1 {
		t.Fatalf("RetryDeadIDs: %+v %v", r, err)
	}
	// By filter, a limit at a time, until nothing remains.
	if r, err = c.RetryDead(ctx, client.DeadFilter{Code: 500}, 2); err != nil || r.Done != 2 || r.Remaining != 3 {
		t.Fatalf("RetryDead: %+v %v", r, err)
	}
	if r, err = c.DeleteDead(ctx, client.DeadFilter{Queue: "q"}, 0); err != nil || r.Done != 6 || r.Remaining != 0 {
		t.Fatalf("DeleteDead: %+v %v", r, err)
	}
	if q, err := c.GetQueue(ctx, "q"); err != nil || q.Counts.Dead != 0 || q.Counts.Queued != 4 {
		t.Fatalf("counts at the end: %+v %v", q, err)
	}
	for _, err := range []error{
		func() error { _, err := c.RetryDeadIDs(ctx, nil); return err }(),
		func() error { _, err := c.DeleteDead(ctx, client.DeadFilter{}, 1001); return err }(),
	} {
		if err == nil {
			t.Error("want a local error")
		}
	}
	// SearchTasks: a queue's tasks by URL substring, or by id.
	if p, err := c.SearchTasks(ctx, "q", client.StateQueued, client.TaskFilter{Q: "/alive"}, client.ListOptions{}); err != nil || len(p.Tasks) != 1 || p.Tasks[0].ID != alive {
		t.Fatalf("SearchTasks by URL: %+v %v", p, err)
	}
	if p, err := c.SearchTasks(ctx, "q", client.StateQueued, client.TaskFilter{Q: "/nothing-like-it"}, client.ListOptions{}); err != nil || len(p.Tasks) != 0 {
		t.Fatalf("SearchTasks without a match: %+v %v", p, err)
	}
	if _, err := c.ListDead(ctx, client.DeadFilter{Code: 42}, client.ListOptions{}); err == nil {
		t.Error("code 42 was accepted")
	}
}
