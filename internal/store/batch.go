package store

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"
)

// maxBatch bounds the script calls sent in one pipeline.
const maxBatch = 128

// batcher sends concurrent script calls to Redis together, in one pipeline:
// one write and one read for many calls instead of one each, on both sides.
// It costs a lone caller nothing: with no call in progress, a caller runs its
// own at once ("group commit"). While one runs, callers queue; when it ends,
// the first queued caller becomes the leader and runs the whole queue.
//
// Every call keeps its own result and error. A pipeline that fails in transit
// fails all its calls, each of which then reports its outcome as unknown, as
// a lone call would.
type batcher struct {
	rdb   redis.UniversalClient
	onErr func(context.Context) error // reloads the scripts after NOSCRIPT

	mu      sync.Mutex
	busy    bool
	pending []*batchCall
}

type batchCall struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any
	res    any
	err    error
	lead   []*batchCall  // set before done when this caller is to run a batch
	done   chan struct{} // exactly one signal: the result is ready, or lead
}

func (b *batcher) run(ctx context.Context, sc *redis.Script, keys []string, args []any) (any, error) {
	c := &batchCall{ctx: ctx, script: sc, keys: keys, args: args, done: make(chan struct{}, 1)}
	b.mu.Lock()
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
		b.lead([]*batchCall{c})
		return c.res, c.err
	}
	b.pending = append(b.pending, c)
	b.mu.Unlock()
	<-c.done
	if c.lead != nil { // promoted: run the queued calls, ours first among them
		b.lead(c.lead)
	}
	return c.res, c.err
}

// lead runs a batch whose first call is the caller's own, then hands the
// calls queued meanwhile to the first of them, or goes idle.
func (b *batcher) lead(batch []*batchCall) {
	b.exec(batch)
	b.mu.Lock()
	var next []*batchCall
	if n := min(len(b.pending), maxBatch); n > 0 {
		next = b.pending[:n:n]
		b.pending = b.pending[n:]
	} else {
		b.busy = false
	}
	b.mu.Unlock()
	for _, c := range batch[1:] {
		c.done <- struct{}{}
	}
	if next != nil {
		next[0].lead = next
		next[0].done <- struct{}{}
	}
}

func (b *batcher) exec(batch []*batchCall) {
	if len(batch) == 1 {
		c := batch[0]
		c.res, c.err = c.script.Run(c.ctx, b.rdb, c.keys, c.args...).Result()
		return
	}
	// The calls come from different requests: the batch runs under the
	// first one's context, not bounded by a canceled caller's.
	ctx := context.WithoutCancel(batch[0].ctx)
	p := b.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
	}
	_, _ = p.Exec(ctx)
	noscript := false
	for i, c := range batch {
		c.res, c.err = cmds[i].Result()
		noscript = noscript || redis.HasErrorPrefix(c.err, "NOSCRIPT")
	}
	if !noscript {
		return
	}
	// Redis lost its script cache (a restart): a NOSCRIPT call did not run,
	// so it is safe to run it again, alone, with its source.
	if err := b.onErr(ctx); err != nil {
		for i, c := range batch {
			if redis.HasErrorPrefix(c.err, "NOSCRIPT") {
				c.err = errors.Join(err, cmds[i].Err())
			}
		}
		return
	}
	for _, c := range batch {
		if redis.HasErrorPrefix(c.err, "NOSCRIPT") {
			c.res, c.err = c.script.Run(ctx, b.rdb, c.keys, c.args...).Result()
		}
	}
}
