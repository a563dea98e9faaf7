package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Concurrent enqueues are sent in shared pipelines; each caller still gets
// its own result, every task is stored once, and a script cache flushed
// under them (as by a Redis restart) is reloaded without losing a call.
func TestConcurrentCallsShareAPipeline(t *testing.T) {
	e := newEnv(t)
	for i := range 8 {
		e.queue(fmt.Sprintf("q%d", i), nil)
	}
	var hook pipelineCounter
	e.rdb.AddHook(&hook)
	const workers, each = 32, 50
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			q := fmt.Sprintf("q%d", w%8)
			for i := range each {
				if w == 0 && i == each/2 {
					e.rdb.ScriptFlush(e.ctx)
				}
				res, err := e.s.Enqueue(e.ctx, q, []store.NewTask{{Spec: &task.Spec{URL: fmt.Sprintf("http://x/%d/%d", w, i)}}}, store.EnqueueOptions{})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				ids[w] = append(ids[w], res.Tasks[0].ID)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for w := range workers {
		if len(ids[w]) != each {
			t.Fatalf("worker %d got %d ids", w, len(ids[w]))
		}
		for i, id := range ids[w] {
			if seen[id] {
				t.Fatalf("id %s given twice", id)
			}
			seen[id] = true
			ti, err := e.s.GetTask(e.ctx, id)
			if err != nil || ti.Spec.URL != fmt.Sprintf("http://x/%d/%d", w, i) {
				t.Fatalf("task %s = %+v, %v: results were mixed up", id, ti, err)
			}
		}
	}
	// fewer round trips than calls: the calls were grouped
	hook.mu.Lock()
	defer hook.mu.Unlock()
	t.Logf("%d enqueues in %d pipelines (%d calls) and %d single calls", workers*each, hook.pipelines, hook.grouped, hook.singles)
	if hook.pipelines == 0 || hook.grouped+hook.singles < workers*each || hook.pipelines+hook.singles >= workers*each {
		t.Fatalf("no call was grouped: %d pipelines", hook.pipelines)
	}
}

// pipelineCounter counts round trips: pipelines of script calls and single
// commands.
type pipelineCounter struct {
	mu                          sync.Mutex
	pipelines, grouped, singles int
}

func (h *pipelineCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			h.mu.Lock()
			h.singles++
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (h *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "evalsha" {
			h.mu.Lock()
			h.pipelines++
			h.grouped += len(cmds)
			h.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}
