package store_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// commands runs f and returns how many commands Redis ran for it and how
// many bytes it sent (INFO stats; the test's own INFO calls are taken out).
// Scripts count each command they call.
func (e *env) commands(f func()) (cmds, bytes int) {
	e.t.Helper()
	read := func() (int, int) {
		info, err := e.rdb.Info(e.ctx, "stats").Result()
		if err != nil {
			e.t.Fatal(err)
		}
		c, b := -1, -1
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
				c, _ = strconv.Atoi(v)
			}
			if v, ok := strings.CutPrefix(line, "total_net_output_bytes:"); ok {
				b, _ = strconv.Atoi(v)
			}
		}
		if c < 0 || b < 0 {
			e.t.Fatal("INFO stats lacks the counters")
		}
		return c, b
	}
	if err := e.s.FlushDue(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	c0, b0 := read()
	f()
	if err := e.s.FlushDue(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	c1, b1 := read()
	return c1 - c0 - 1, b1 - b0
}

// idleQueues creates n queues that have each run one task.
func (e *env) idleQueues(prefix string, n int) {
	e.t.Helper()
	cfg := task.DefaultQueueConfig()
	for i := range n {
		q := fmt.Sprintf("%s%05d", prefix, i)
		if _, err := e.s.Enqueue(e.ctx, q, []store.NewTask{{Spec: &task.Spec{URL: "http://x"}}}, store.EnqueueOptions{CreateQueue: &cfg}); err != nil {
			e.t.Fatal(err)
		}
		c := e.claim(q, "A", 1)
		e.complete(c.Owned, &c.Deliveries[0], store.OutcomeSucceeded, 1)
	}
	e.settleAll()
}

// TestCostFollowsWhatChangedNotWhatIsStored: the backlog metrics' read,
// a page of the queue list and a step of the repair sweep cost the same
// with 10 idle queues as with 1,000 (they read every queue before).
func TestCostFollowsWhatChangedNotWhatIsStored(t *testing.T) {
	t.Parallel()
	small, large := openEnv(t), openEnv(t)
	small.idleQueues("q", 10)
	large.idleQueues("q", 1000)
	for _, e := range []*env{small, large} {
		e.queue("busy", nil)
		e.enqueue("busy", time.Time{}, "http://x/1", "http://x/2")
		e.enqueue("busy", e.clk.Now().Add(time.Hour), "http://x/later")
	}
	type op struct {
		name string
		run  func(e *env)
	}
	for _, o := range []op{
		{"ActiveCounts", func(e *env) {
			c, err := e.s.ActiveCounts(e.ctx)
			if err != nil || len(c) != 1 || c["busy"].Queued != 2 || c["busy"].Scheduled != 1 {
				t.Fatalf("counts = %v, %v", c, err)
			}
		}},
		{"ListQueues page", func(e *env) {
			qs, more, err := e.s.ListQueues(e.ctx, "q00003", 5)
			if err != nil || len(qs) != 5 || !more || qs[0].Name != "q00004" {
				t.Fatalf("page = %v, %v, %v", qs, more, err)
			}
		}},
		{"QueueCount", func(e *env) {
			if _, err := e.s.QueueCount(e.ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"RepairStep", func(e *env) {
			if _, err := e.s.RepairStep(e.ctx, task.Partition("q00001"), 0, 5); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		cs, bs := small.commands(func() { o.run(small) })
		cl, bl := large.commands(func() { o.run(large) })
		if o.name == "RepairStep" {
			// a step checks about the count asked for, whatever the partition holds
			if cl > 12*20 {
				t.Errorf("%s: %d commands with 1,000 queues", o.name, cl)
			}
			continue
		}
		// (the INFO reply itself is in the bytes; it grows a little with the data)
		if cl > cs+2 || bl > bs+2000 {
			t.Errorf("%s: %d commands and %d bytes with 10 idle queues, %d and %d with 1,000", o.name, cs, bs, cl, bl)
		}
	}
}
