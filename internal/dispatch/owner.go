package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// owner runs one queue while this dispatcher holds its lease.
type owner struct {
	d         *Dispatcher
	lease     store.Lease
	cfg       task.QueueConfig
	ver       string
	claimedAt time.Time
	rnd       *rand.Rand

	mu       sync.Mutex
	validTil time.Time // start no call after this: the lease may have expired
	extendAt time.Time
	lost     atomic.Bool
}

// pending is a delivered entry not yet started.
type pending struct {
	dl          store.Delivery
	deliveredAt time.Time
}

type callResult struct {
	p     pending
	res   deliver.Result
	start time.Time
}

type holdDone struct {
	p       pending
	due     time.Time
	aborted bool // the wait was cut short by shutdown: release with the hold
}

func newOwner(d *Dispatcher, c *store.Claim, sent time.Time) *owner {
	o := &owner{
		d: d, lease: c.Lease, cfg: c.Config, ver: c.Version, claimedAt: sent,
		rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	o.extended(sent)
	return o
}

// extended records that the lease was extended by a command sent at sent:
// Redis set its expiry no earlier than sent + TTL, so until a tenth of the
// TTL before that, nobody else can hold it.
func (o *owner) extended(sent time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ttl := o.d.cfg.LeaseTTL
	if v := sent.Add(ttl - ttl/10); v.After(o.validTil) {
		o.validTil = v
	}
	if sent.After(o.extendAt) {
		o.extendAt = sent
	}
}

func (o *owner) lastExtend() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.extendAt
}

func (o *owner) valid() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.d.clock.Now().Before(o.validTil)
}

func (o *owner) lose() {
	if o.lost.CompareAndSwap(false, true) {
		o.d.m.Leases.WithLabelValues(metrics.LeaseLost).Inc()
		o.d.log.Warn("queue lease lost", "queue", o.lease.Queue, "epoch", o.lease.Epoch)
	}
}

// holdLocally is the longest strict-retry backoff an owner waits out itself;
// longer ones release the queue with a hold, freeing the slot.
func (o *owner) holdLocally() time.Duration { return o.d.cfg.LeaseTTL }

// run calls the queue's entries until it has nothing left, loses the
// lease, or the dispatcher drains; then it hands the queue back.
func (o *owner) run(calls context.Context, first []store.Delivery) {
	d := o.d
	conc := max(1, o.cfg.Concurrency)
	now := d.clock.Now()
	var buf []pending
	for _, dl := range first {
		buf = append(buf, pending{dl: dl, deliveredAt: now})
	}
	results := make(chan callResult)
	holds := make(chan holdDone)
	inflight := 0
	stopping, released, aborted := false, false, false
	var holdUntil time.Time // release with this hold
	var rateWait *time.Timer
	var rateC <-chan time.Time

	// reloadIfNew reloads the queue's configuration when a script reports a
	// newer version of it.
	reloadIfNew := func(n *store.Next) {
		if n.Version != "" && n.Version != o.ver && !o.lost.Load() {
			o.reload(calls, n.Version)
			conc = max(1, o.cfg.Concurrency)
		}
	}
	// apply takes what a script answered; extended says whether that
	// script extended the lease.
	apply := func(n *store.Next, at time.Time, extended bool) {
		if n.Status != store.NextStale && extended {
			o.extended(at)
		}
		switch n.Status {
		case store.NextStale:
			d.m.StaleWrites.Inc()
			o.lose()
			stopping = true
		case store.NextEntries:
			for _, dl := range n.Deliveries {
				buf = append(buf, pending{dl: dl, deliveredAt: at})
			}
		case store.NextReleased:
			released = true
		case store.NextRateWait:
			if rateWait == nil {
				rateWait = time.NewTimer(max(0, n.Until.Sub(d.clock.Now())))
				rateC = rateWait.C
			}
		}
		reloadIfNew(n)
	}
	want := func() int {
		if stopping || d.draining.Load() {
			return 0
		}
		return max(0, conc-inflight-len(buf))
	}

	// onResult records a finished call and takes what comes next.
	onResult := func(r callResult) {
		inflight--
		if r.res.Kind == deliver.ErrCancelled {
			aborted, stopping = true, true // shutdown aborted the call: leave it pending
			return
		}
		if d.starved.Load() && d.clock.Now().Sub(o.claimedAt) > d.cfg.YieldAfter {
			stopping = true // other queues wait for a slot: hand this one back
		}
		dec := decide(&o.cfg, &r.p.dl, &r.res, r.start, d.clock.Now(), o.rnd)
		d.m.Calls.WithLabelValues(dec.outcome).Inc()
		d.m.CallDuration.Observe(r.res.Latency.Seconds())
		o.logCall(r, dec)
		c := dec.completion
		c.HistoryLen = d.cfg.History
		c.Retention = max(c.Retention, 0)
		c.Want = want()
		c.Extend = d.clock.Now().Sub(o.lastExtend()) >= d.cfg.LeaseTTL/3
		at := d.clock.Now()
		n, err := o.complete(calls, &c)
		if err != nil {
			if c.Outcome == store.OutcomeHold && c.Due.After(holdUntil) {
				holdUntil = c.Due
			}
			stopping = true
			return
		}
		if dec.final != "" && n.Status != store.NextStale {
			d.m.Finished.WithLabelValues(string(dec.final)).Inc()
		}
		if n.Status == store.NextHeld {
			if c.Extend {
				o.extended(at)
			}
			inflight++ // the held entry keeps its slot
			o.hold(calls, r.p, c.Due, holds)
			return
		}
		apply(n, at, c.Extend)
	}

	for {
		if d.draining.Load() {
			stopping = true
		}
		// Start what may start.
		for !stopping && inflight < conc && len(buf) > 0 {
			if !o.valid() && !o.renewNow(calls) {
				stopping = true
				break
			}
			p := buf[0]
			buf = buf[1:]
			if d.clock.Now().Sub(p.deliveredAt) > d.cfg.RecoveryGrace/2 {
				// Delivered a while ago: claim it afresh so that a later owner
				// counts this call's timeout from now.
				at := d.clock.Now()
				n, err := d.st.Reclaim(calls, o.lease, d.cfg.LeaseTTL, &p.dl)
				if err != nil {
					stopping = true
					break
				}
				if n.Status != store.NextEntries {
					apply(n, at, true)
					continue
				}
				o.extended(at)
				p = pending{dl: n.Deliveries[0], deliveredAt: at}
			}
			inflight++
			if conc == 1 && inflight == 1 {
				// A serial queue calls in this goroutine: no hand-off
				// between goroutines on the hot path.
				onResult(o.call(calls, p))
				continue
			}
			go func() { results <- o.call(calls, p) }()
		}
		if released {
			return
		}
		if inflight == 0 {
			if stopping || o.lost.Load() {
				break
			}
			if len(buf) == 0 && rateC == nil {
				at := d.clock.Now()
				n, err := d.st.Pull(calls, o.lease, d.cfg.LeaseTTL, conc)
				if err != nil {
					d.log.Warn("pull", "queue", o.lease.Queue, "err", err)
					stopping = true
					continue
				}
				apply(n, at, true)
				if n.Status == store.NextIdle {
					// entries are pending that this owner does not hold in hand
					// (a lost reply delivered them); none was started, so hand
					// the queue back cleanly and let the next claim redeliver them
					stopping = true
				}
				continue
			}
		}
		var drain <-chan struct{}
		if !stopping {
			drain = d.drainSignal()
		}
		select {
		case r := <-results:
			onResult(r)
		case h := <-holds:
			inflight--
			if h.aborted || stopping {
				if h.due.After(holdUntil) {
					holdUntil = h.due
				}
				stopping = true
				continue
			}
			at := d.clock.Now()
			n, err := d.st.Reattempt(calls, o.lease, d.cfg.LeaseTTL, &h.p.dl)
			if err != nil {
				d.log.Warn("reattempt", "queue", o.lease.Queue, "err", err)
				holdUntil, stopping = h.due, true
				continue
			}
			switch n.Status {
			case store.NextEntries:
				o.extended(at)
				buf = append([]pending{{dl: n.Deliveries[0], deliveredAt: at}}, buf...)
			case store.NextRateWait:
				// no token for the retry yet: keep holding the head until one comes
				o.extended(at)
				reloadIfNew(n)
				inflight++
				o.hold(calls, h.p, n.Until, holds)
			default:
				apply(n, at, true)
			}
		case <-rateC:
			rateWait, rateC = nil, nil
			at := d.clock.Now()
			n, err := d.st.Pull(calls, o.lease, d.cfg.LeaseTTL, want())
			if err != nil {
				stopping = true
				continue
			}
			apply(n, at, true)
		case <-drain:
			stopping = true
		}
	}
	if rateWait != nil {
		rateWait.Stop()
	}
	if o.lost.Load() {
		return // a new owner recovers what we left pending
	}
	o.release(holdUntil, !aborted)
}

// call makes one call and returns its result.
func (o *owner) call(ctx context.Context, p pending) callResult {
	d := o.d
	start := d.clock.Now()
	if due := p.dl.DueTime(); !due.IsZero() {
		d.m.QueueLag.Observe(max(0, start.Sub(due)).Seconds())
	}
	d.m.InFlight.Inc()
	defer d.m.InFlight.Dec()
	var res deliver.Result
	if p.dl.Err == nil {
		res = d.client.Do(ctx, &deliver.Call{
			TaskID: p.dl.TaskID, Queue: p.dl.Queue, Attempt: p.dl.Attempt, Seq: p.dl.Seq,
			Spec: p.dl.Spec, Timeout: o.cfg.TaskTimeout(p.dl.Spec),
		})
	}
	return callResult{p: p, res: res, start: start}
}

// complete records a call; when Redis does not answer it tries again (the
// script is idempotent) while the lease is certainly valid, asking for no
// new entries: any it delivered unseen were never started, so the release
// that follows may be clean.
func (o *owner) complete(ctx context.Context, c *store.Completion) (*store.Next, error) {
	d := o.d
	n, err := d.st.Complete(ctx, o.lease, d.cfg.LeaseTTL, c)
	if err == nil {
		return n, nil
	}
	d.log.Warn("record call", "queue", o.lease.Queue, "task_id", c.Delivery.TaskID, "err", err)
	c.Want = 0
	backoff := 50 * time.Millisecond
	for o.valid() && ctx.Err() == nil {
		if !sleep(ctx, backoff) {
			break
		}
		backoff = min(backoff*2, time.Second)
		if _, err = d.st.Complete(ctx, o.lease, d.cfg.LeaseTTL, c); err == nil {
			return nil, errRecorded
		}
	}
	o.lose()
	return nil, err
}

// errRecorded says a call was recorded after a retry: the owner stops and
// releases the queue.
var errRecorded = errors.New("recorded after a retry")

// hold waits out a strict retry's backoff, then asks run to try again.
func (o *owner) hold(ctx context.Context, p pending, due time.Time, out chan<- holdDone) {
	wait := due.Sub(o.d.clock.Now())
	if wait > o.holdLocally() || o.d.draining.Load() {
		go func() { out <- holdDone{p: p, due: due, aborted: true} }()
		return
	}
	go func() {
		t := time.NewTimer(max(0, wait))
		defer t.Stop()
		select {
		case <-t.C:
			out <- holdDone{p: p, due: due}
		case <-o.d.drainSignal():
			out <- holdDone{p: p, due: due, aborted: true}
		case <-ctx.Done():
			out <- holdDone{p: p, due: due, aborted: true}
		}
	}()
}

// renewNow extends the lease before a call when its validity ran out.
func (o *owner) renewNow(ctx context.Context) bool {
	sent := o.d.clock.Now()
	ok, err := o.d.st.Renew(ctx, o.lease, o.d.cfg.LeaseTTL)
	if err != nil || !ok {
		if err == nil {
			o.d.m.StaleWrites.Inc()
		}
		o.lose()
		return false
	}
	o.extended(sent)
	return true
}

func (o *owner) reload(ctx context.Context, ver string) {
	qi, err := o.d.st.GetQueue(ctx, o.lease.Queue)
	if err != nil {
		o.d.log.Warn("reload queue config", "queue", o.lease.Queue, "err", err)
		return
	}
	o.cfg, o.ver = qi.Config, ver
}

// release hands the queue back, trying again while the lease lasts: a
// release that never arrives makes the next owner wait for the task
// timeout (the entries look abandoned), one that arrives lets it go on.
func (o *owner) release(hold time.Time, clean bool) {
	d := o.d
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.LeaseTTL)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		ok, err := d.st.Release(ctx, o.lease, hold, clean)
		switch {
		case err == nil && !ok:
			d.m.StaleWrites.Inc()
			o.lose()
			return
		case err == nil:
			return
		}
		if !sleep(ctx, backoff) {
			d.log.Warn("release queue", "queue", o.lease.Queue, "err", err)
			return
		}
		backoff = min(backoff*2, time.Second)
	}
}

func (o *owner) logCall(r callResult, dec decision) {
	lv := o.d.log.Debug
	if dec.outcome != metrics.OutcomeSuccess {
		lv = o.d.log.Info
	} else if !o.d.log.Enabled(context.Background(), slog.LevelDebug) {
		return // the hot path builds no record nobody reads
	}
	args := []any{
		"queue", o.lease.Queue, "task_id", r.p.dl.TaskID, "attempt", r.p.dl.Attempt, "seq", r.p.dl.Seq,
		"status", r.res.Status, "latency_ms", r.res.Latency.Milliseconds(), "outcome", dec.outcome,
		"next", string(dec.completion.Outcome),
	}
	if r.res.Err != nil {
		args = append(args, "err", r.res.Err.Error())
	}
	lv("call", args...)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
