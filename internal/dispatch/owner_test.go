package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// fakeWriter plays a queue's scripts for an owner: it records what the
// owner sends and answers as the test says.
type fakeWriter struct {
	mu       sync.Mutex
	ops      []string
	complete func(c *store.Completion) *store.Next
	renew    bool
}

func (f *fakeWriter) log(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
}

func (f *fakeWriter) Lease() store.Lease { return store.Lease{Queue: "q", Consumer: "c", Token: "c:1"} }
func (f *fakeWriter) Complete(_ context.Context, c *store.Completion) (*store.Next, error) {
	f.log("complete " + c.Delivery.TaskID)
	return f.complete(c), nil
}
func (f *fakeWriter) Pull(context.Context, int) (*store.Next, error) {
	f.log("pull")
	return &store.Next{Status: store.NextReleased}, nil
}
func (f *fakeWriter) Reattempt(_ context.Context, d *store.Delivery) (*store.Next, error) {
	f.log("reattempt " + d.TaskID)
	return &store.Next{Status: store.NextEntries, Deliveries: []store.Delivery{*d}}, nil
}
func (f *fakeWriter) Reclaim(_ context.Context, d *store.Delivery) (*store.Next, error) {
	f.log("reclaim " + d.TaskID)
	return &store.Next{Status: store.NextEntries, Deliveries: []store.Delivery{*d}}, nil
}
func (f *fakeWriter) Renew(context.Context) (bool, error) {
	f.log("renew")
	return f.renew, nil
}
func (f *fakeWriter) Release(context.Context, time.Time, bool) (bool, error) {
	f.log("release")
	return true, nil
}

func testOwner(t *testing.T, clk clock.Clock, w *fakeWriter, call func(*deliver.Call) deliver.Result) *owner {
	t.Helper()
	env := &ownerEnv{
		cfg:   Config{LeaseTTL: time.Second, RecoveryGrace: 200 * time.Millisecond, YieldAfter: time.Second, RateYieldAfter: time.Second, History: 3},
		clock: clk, log: slog.New(slog.DiscardHandler), m: metrics.NewDispatcher(prometheus.NewRegistry()),
		call:     func(_ context.Context, c *deliver.Call) deliver.Result { return call(c) },
		queue:    func(context.Context, string) (*store.QueueInfo, error) { return nil, task.ErrQueueNotFound },
		draining: func() bool { return false },
		drain:    make(chan struct{}),
		starved:  func() bool { return false },
	}
	return newOwner(env, nil, w, &store.Claim{Config: task.DefaultQueueConfig(), Version: "1"}, clk.Now())
}

func delivery(id string) store.Delivery {
	return store.Delivery{EntryID: id, TaskID: id, Queue: "q", Spec: &task.Spec{URL: "http://x/" + id}, Attempt: 1, Timeout: time.Second}
}

func ok(*deliver.Call) deliver.Result { return deliver.Result{Status: 200} }

// TestClaimDeliveriesCountFromTheClaimsSendTime: entries a claim delivered
// are as old as the claim's send time, not its reply's: a reply that took
// longer than half the recovery grace makes the owner claim them afresh
// before calling, so a later owner's recovery counts from then.
func TestClaimDeliveriesCountFromTheClaimsSendTime(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	w := &fakeWriter{renew: true, complete: func(*store.Completion) *store.Next { return &store.Next{Status: store.NextReleased} }}
	o := testOwner(t, clk, w, ok)
	sent := clk.Now().Add(-150 * time.Millisecond) // the claim's reply took 150 ms
	o.run(t.Context(), []store.Delivery{delivery("1")}, sent)
	if got := w.ops; len(got) < 2 || got[0] != "reclaim 1" || got[1] != "complete 1" {
		t.Fatalf("ops = %v, want the entry claimed afresh before its call", got)
	}
	// a prompt reply needs no fresh claim
	w2 := &fakeWriter{renew: true, complete: w.complete}
	o2 := testOwner(t, clk, w2, ok)
	o2.run(t.Context(), []store.Delivery{delivery("1")}, clk.Now().Add(-50*time.Millisecond))
	if got := w2.ops; len(got) == 0 || got[0] != "complete 1" {
		t.Fatalf("ops = %v", got)
	}
}

// TestALostLeaseStartsNoCall: once the owner knows its lease is lost (the
// renewer found it taken), it starts no further call, even while the
// lease's time has not run out.
func TestALostLeaseStartsNoCall(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	var o *owner
	var calls []string
	w := &fakeWriter{renew: false, complete: func(c *store.Completion) *store.Next {
		return &store.Next{Status: store.NextEntries, Version: "1"}
	}}
	o = testOwner(t, clk, w, func(c *deliver.Call) deliver.Result {
		calls = append(calls, c.TaskID)
		o.lose() // the renewer, meanwhile, found the lease taken
		return deliver.Result{Status: 200}
	})
	o.run(t.Context(), []store.Delivery{delivery("1"), delivery("2")}, clk.Now())
	if len(calls) != 1 {
		t.Fatalf("calls = %v: a call started after the lease was known lost", calls)
	}
}
