package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/lease"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// queueWriter is what an owner writes through: the claimed queue's handle,
// *store.Owned (tests wrap it to delay or fail its replies).
type queueWriter interface {
	Lease() store.Lease
	Complete(ctx context.Context, c *store.Completion) (*store.Next, error)
	Pull(ctx context.Context, want int) (*store.Next, error)
	Reattempt(ctx context.Context, d *store.Delivery) (*store.Next, error)
	Reclaim(ctx context.Context, d *store.Delivery) (*store.Next, error)
	Renew(ctx context.Context) (bool, error)
	Release(ctx context.Context, hold time.Time, clean bool) (bool, error)
}

// ownerEnv is all an owner needs of its dispatcher.
type ownerEnv struct {
	cfg      Config
	clock    clock.Clock
	log      *slog.Logger
	m        *metrics.Dispatcher
	call     func(ctx context.Context, c *deliver.Call) deliver.Result
	queue    func(ctx context.Context, name string) (*store.QueueInfo, error) // reads a queue's configuration
	draining func() bool
	drain    <-chan struct{} // closed when the dispatcher starts shutting down
	starved  func() bool     // queues wait for a slot cluster-wide
}

func (d *Dispatcher) ownerEnv() *ownerEnv {
	return &ownerEnv{
		cfg: d.cfg, clock: d.clock, log: d.log, m: d.m,
		call:     d.client.Do,
		queue:    d.st.GetQueue,
		draining: d.draining.Load,
		drain:    d.drainCh,
		starved:  d.starved.Load,
	}
}

// owner runs one queue while this dispatcher holds its lease. Its fields
// below "loop state" belong to run's goroutine; the others are read by the
// renewer and the hint loop too, and are safe for that.
type owner struct {
	env       *ownerEnv
	held      *store.Owned // for the renewer's pipeline
	w         queueWriter
	valid     *lease.Validity
	claimedAt time.Time
	wake      chan struct{} // work arrived while calls run (a hint)
	rnd       *rand.Rand

	// loop state
	calls     context.Context
	cfg       task.QueueConfig
	ver       string
	conc      int
	buf       []pending // delivered, not started, in order
	inflight  int       // calls running, and strict retries held
	stopping  bool      // start nothing more; hand the queue back when calls end
	released  bool      // a script dropped the lease: nothing left
	aborted   bool      // shutdown aborted a call: the release is not clean
	holdUntil time.Time // release with this hold
	rateTimer *time.Timer
	rateC     <-chan time.Time
	results   chan callResult
	holds     chan holdDone
}

// pending is a delivered entry not yet started.
type pending struct {
	dl          store.Delivery
	deliveredAt time.Time // send time of the script that delivered it
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

func (d *Dispatcher) newOwner(c *store.Claim, sent time.Time) *owner {
	var w queueWriter = c.Owned
	if d.wrap != nil {
		w = d.wrap(w)
	}
	return newOwner(d.ownerEnv(), c.Owned, w, c, sent)
}

func newOwner(env *ownerEnv, held *store.Owned, w queueWriter, c *store.Claim, sent time.Time) *owner {
	ttl := env.cfg.LeaseTTL
	return &owner{
		env: env, held: held, w: w, cfg: c.Config, ver: c.Version, claimedAt: sent,
		valid: lease.New(ttl, ttl/10, sent),
		wake:  make(chan struct{}, 1),
		rnd:   rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
}

func (o *owner) queue() string { return o.w.Lease().Queue }

func (o *owner) now() time.Time { return o.env.clock.Now() }

// wakeUp tells the owner that its queue got work while its calls run.
func (o *owner) wakeUp() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *owner) lose() {
	if o.valid.Lose() {
		o.env.m.Leases.WithLabelValues(metrics.LeaseLost).Inc()
		o.env.log.Warn("queue lease lost", "queue", o.queue(), "token", o.w.Lease().Token)
	}
}

// holdLocally is the longest strict-retry backoff an owner waits out itself;
// longer ones release the queue with a hold, freeing the slot.
func (o *owner) holdLocally() time.Duration { return o.env.cfg.LeaseTTL }

// run calls the queue's entries until it has nothing left, loses the
// lease, or the dispatcher drains; then it hands the queue back. first are
// the claim's deliveries, sent the claim's send time.
func (o *owner) run(calls context.Context, first []store.Delivery, sent time.Time) {
	o.calls = calls
	o.conc = max(1, o.cfg.Concurrency)
	o.results = make(chan callResult)
	o.holds = make(chan holdDone)
	for _, dl := range first {
		o.buf = append(o.buf, pending{dl: dl, deliveredAt: sent})
	}
	for {
		if o.env.draining() {
			o.stopping = true
		}
		o.startCalls()
		if o.released {
			break
		}
		if o.inflight == 0 {
			if o.stopping || o.valid.Lost() {
				break
			}
			if len(o.buf) == 0 && o.rateC == nil {
				o.fetch()
				continue
			}
		}
		o.wait()
	}
	o.finish()
}

// want is how many more entries the owner can take.
func (o *owner) want() int {
	if o.stopping || o.env.draining() {
		return 0
	}
	return max(0, o.conc-o.inflight-len(o.buf))
}

// startCalls starts what may start: entries in order, while the
// concurrency allows and the lease is certainly held.
func (o *owner) startCalls() {
	for !o.stopping && o.inflight < o.conc && len(o.buf) > 0 {
		if !o.valid.Valid(o.now()) && !o.renewNow() {
			o.stopping = true
			return
		}
		p := o.buf[0]
		o.buf = o.buf[1:]
		if o.now().Sub(p.deliveredAt) > o.env.cfg.RecoveryGrace/2 {
			// Delivered a while ago: claim it afresh, so that a later owner
			// counts this call's deadline from now.
			at := o.now()
			n, err := o.w.Reclaim(o.calls, &p.dl)
			if err != nil {
				o.stopping = true
				return
			}
			if n.Status != store.NextEntries {
				o.apply(n, at, true)
				continue
			}
			o.valid.Extended(at)
			p = pending{dl: n.Deliveries[0], deliveredAt: at}
		}
		o.inflight++
		if o.conc == 1 && o.inflight == 1 {
			// A serial queue calls in this goroutine: no hand-off between
			// goroutines on the hot path.
			o.handleResult(o.call(p))
			continue
		}
		go func() { o.results <- o.call(p) }()
	}
}

// fetch asks for more entries when nothing is in flight or buffered.
func (o *owner) fetch() {
	at := o.now()
	n, err := o.w.Pull(o.calls, o.conc)
	if err != nil {
		o.env.log.Warn("pull", "queue", o.queue(), "err", err)
		o.stopping = true
		return
	}
	o.apply(n, at, true)
	if n.Status == store.NextIdle {
		// Entries are pending that this owner does not hold in hand (a lost
		// reply delivered them); none was started, so hand the queue back
		// cleanly and let the next claim deliver them again.
		o.stopping = true
	}
}

// wait waits for the next thing to act on.
func (o *owner) wait() {
	var drain <-chan struct{}
	if !o.stopping {
		drain = o.env.drain
	}
	select {
	case r := <-o.results:
		o.handleResult(r)
	case h := <-o.holds:
		o.handleHold(h)
	case <-o.rateC:
		o.rateTick()
	case <-o.wake:
		o.pullMore()
	case <-drain:
		o.stopping = true
	}
}

// pullMore takes work that arrived while calls run, when there is room for
// it (a queue of concurrency > 1).
func (o *owner) pullMore() {
	want := o.want()
	if want == 0 || o.rateC != nil || o.inflight == 0 {
		return // a free owner pulls anyway; a rate wait pulls when it ends
	}
	at := o.now()
	n, err := o.w.Pull(o.calls, want)
	if err != nil {
		o.env.log.Warn("pull", "queue", o.queue(), "err", err)
		return
	}
	o.apply(n, at, true)
}

// apply takes what a script answered; extended says whether that script
// extended the lease, at its send time at.
func (o *owner) apply(n *store.Next, at time.Time, extended bool) {
	if n.Status != store.NextStale && extended {
		o.valid.Extended(at)
	}
	switch n.Status {
	case store.NextStale:
		o.env.m.StaleWrites.Inc()
		o.lose()
		o.stopping = true
	case store.NextEntries:
		for _, dl := range n.Deliveries {
			o.buf = append(o.buf, pending{dl: dl, deliveredAt: at})
		}
	case store.NextReleased:
		o.released = true
	case store.NextRateWait:
		o.rateWait(n.Until)
	}
	o.reloadIfNew(n.Version)
}

// rateWait waits for the rate limit's next token: holding the queue when
// the wait is short and others do not need the slot, else handing the
// queue back until then (clean: nothing of it is running), so the slot is
// free meanwhile.
func (o *owner) rateWait(until time.Time) {
	if o.rateC != nil {
		return
	}
	wait := until.Sub(o.now())
	if o.inflight == 0 && len(o.buf) == 0 && (wait > o.env.cfg.RateYieldAfter || o.env.starved()) {
		if until.After(o.holdUntil) {
			o.holdUntil = until
		}
		o.stopping = true
		return
	}
	o.rateTimer = time.NewTimer(max(0, wait))
	o.rateC = o.rateTimer.C
}

// rateTick: the next token is there.
func (o *owner) rateTick() {
	o.rateTimer, o.rateC = nil, nil
	at := o.now()
	n, err := o.w.Pull(o.calls, o.want())
	if err != nil {
		o.stopping = true
		return
	}
	o.apply(n, at, true)
}

// reloadIfNew reloads the queue's configuration when a script reports a
// newer version of it.
func (o *owner) reloadIfNew(ver string) {
	if ver == "" || ver == o.ver || o.valid.Lost() {
		return
	}
	qi, err := o.env.queue(o.calls, o.queue())
	if err != nil {
		o.env.log.Warn("reload queue config", "queue", o.queue(), "err", err)
		return
	}
	o.cfg, o.ver = qi.Config, ver
	o.conc = max(1, o.cfg.Concurrency)
}

// call makes one call and returns its result. Its timeout is the one
// stamped in the task's state when it was handed out: a later owner
// recovers the entry only past that deadline.
func (o *owner) call(p pending) callResult {
	start := o.now()
	if due := p.dl.DueTime(); !due.IsZero() {
		o.env.m.QueueLag.Observe(max(0, start.Sub(due)).Seconds())
	}
	o.env.m.InFlight.Inc()
	defer o.env.m.InFlight.Dec()
	var res deliver.Result
	if p.dl.Err == nil {
		timeout := p.dl.Timeout
		if timeout <= 0 {
			timeout = o.cfg.TaskTimeout(p.dl.Spec)
		}
		res = o.env.call(o.calls, &deliver.Call{
			TaskID: p.dl.TaskID, Queue: p.dl.Queue, Attempt: p.dl.Attempt, Seq: p.dl.Seq,
			Spec: p.dl.Spec, Timeout: timeout,
			// the legacy protocol's queues follow redirects as node-fetch did
			FollowAllRedirects: o.cfg.Legacy != nil,
		})
	}
	return callResult{p: p, res: res, start: start}
}

// handleResult records a finished call and takes what comes next.
func (o *owner) handleResult(r callResult) {
	o.inflight--
	if r.res.Kind == deliver.ErrCancelled {
		o.aborted, o.stopping = true, true // shutdown aborted the call: leave it pending
		return
	}
	if o.env.starved() && o.now().Sub(o.claimedAt) > o.env.cfg.YieldAfter {
		o.stopping = true // queues wait for a slot everywhere: hand this one back
	}
	dec := decide(&o.cfg, &r.p.dl, &r.res, r.start, o.now(), o.rnd)
	o.env.m.Calls.WithLabelValues(dec.outcome).Inc()
	o.env.m.CallDuration.Observe(r.res.Latency.Seconds())
	o.logCall(r, dec)
	c := dec.completion
	c.HistoryLen = o.env.cfg.History
	c.Retention = max(c.Retention, 0)
	c.Want = o.want()
	c.Extend = o.now().Sub(o.valid.LastExtended()) >= o.env.cfg.LeaseTTL/3
	at := o.now()
	n, err := o.complete(&c)
	if err != nil {
		if c.Outcome == store.OutcomeHold && c.Due.After(o.holdUntil) {
			o.holdUntil = c.Due
		}
		o.stopping = true
		return
	}
	if dec.final != "" && n.Status != store.NextStale {
		o.env.m.Finished.WithLabelValues(string(dec.final)).Inc()
	}
	if n.Status == store.NextHeld {
		if c.Extend {
			o.valid.Extended(at)
		}
		o.inflight++ // the held entry keeps its slot
		o.hold(r.p, c.Due)
		return
	}
	o.apply(n, at, c.Extend)
}

// handleHold: a strict retry's backoff ended (or was cut short).
func (o *owner) handleHold(h holdDone) {
	o.inflight--
	if h.aborted || o.stopping {
		if h.due.After(o.holdUntil) {
			o.holdUntil = h.due
		}
		o.stopping = true
		return
	}
	at := o.now()
	n, err := o.w.Reattempt(o.calls, &h.p.dl)
	if err != nil {
		o.env.log.Warn("reattempt", "queue", o.queue(), "err", err)
		o.holdUntil, o.stopping = h.due, true
		return
	}
	switch n.Status {
	case store.NextEntries:
		o.valid.Extended(at)
		o.buf = append([]pending{{dl: n.Deliveries[0], deliveredAt: at}}, o.buf...)
	case store.NextRateWait:
		// no token for the retry yet: keep holding the head until one comes
		o.valid.Extended(at)
		o.reloadIfNew(n.Version)
		o.inflight++
		o.hold(h.p, n.Until)
	default:
		o.apply(n, at, true)
	}
}

// complete records a call; when Redis does not answer it tries again (the
// script is idempotent) while the lease is certainly valid, asking for no
// new entries: any it delivered unseen were never started, so the release
// that follows may be clean.
func (o *owner) complete(c *store.Completion) (*store.Next, error) {
	n, err := o.w.Complete(o.calls, c)
	if err == nil {
		return n, nil
	}
	o.env.log.Warn("record call", "queue", o.queue(), "task_id", c.Delivery.TaskID, "err", err)
	c.Want = 0
	backoff := 50 * time.Millisecond
	for o.valid.Valid(o.now()) && o.calls.Err() == nil {
		if !sleepCtx(o.calls, backoff) {
			break
		}
		backoff = min(backoff*2, time.Second)
		if _, err = o.w.Complete(o.calls, c); err == nil {
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
func (o *owner) hold(p pending, due time.Time) {
	wait := due.Sub(o.now())
	out := o.holds
	if wait > o.holdLocally() || o.env.draining() {
		go func() { out <- holdDone{p: p, due: due, aborted: true} }()
		return
	}
	drain, calls := o.env.drain, o.calls
	go func() {
		t := time.NewTimer(max(0, wait))
		defer t.Stop()
		select {
		case <-t.C:
			out <- holdDone{p: p, due: due}
		case <-drain:
			out <- holdDone{p: p, due: due, aborted: true}
		case <-calls.Done():
			out <- holdDone{p: p, due: due, aborted: true}
		}
	}()
}

// renewNow extends the lease before a call when its validity ran out.
func (o *owner) renewNow() bool {
	sent := o.now()
	ok, err := o.w.Renew(o.calls)
	if err != nil || !ok {
		if err == nil {
			o.env.m.StaleWrites.Inc()
		}
		o.lose()
		return false
	}
	o.valid.Extended(sent)
	return true
}

// finish hands the queue back, unless a script already did (nothing was
// left) or the lease is lost (a new owner recovers what was left pending).
func (o *owner) finish() {
	if o.rateTimer != nil {
		o.rateTimer.Stop()
	}
	if o.released || o.valid.Lost() {
		return
	}
	o.release(o.holdUntil, !o.aborted)
}

// release hands the queue back, trying again while the lease lasts: a
// release that never arrives makes the next owner wait for the call
// deadlines (the entries look abandoned), one that arrives lets it go on.
func (o *owner) release(hold time.Time, clean bool) {
	ctx, cancel := context.WithTimeout(context.Background(), o.env.cfg.LeaseTTL)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		ok, err := o.w.Release(ctx, hold, clean)
		switch {
		case err == nil && !ok:
			o.env.m.StaleWrites.Inc()
			o.lose()
			return
		case err == nil:
			return
		}
		if !sleepCtx(ctx, backoff) {
			o.env.log.Warn("release queue", "queue", o.queue(), "err", err)
			return
		}
		backoff = min(backoff*2, time.Second)
	}
}

func (o *owner) logCall(r callResult, dec decision) {
	lv := o.env.log.Debug
	if dec.outcome != metrics.OutcomeSuccess {
		lv = o.env.log.Info
	} else if !o.env.log.Enabled(context.Background(), slog.LevelDebug) {
		return // the hot path builds no record nobody reads
	}
	args := []any{
		"queue", o.queue(), "task_id", r.p.dl.TaskID, "attempt", r.p.dl.Attempt, "seq", r.p.dl.Seq,
		"status", r.res.Status, "latency_ms", r.res.Latency.Milliseconds(), "outcome", dec.outcome,
		"next", string(dec.completion.Outcome),
	}
	if r.res.Err != nil {
		args = append(args, "err", r.res.Err.Error())
	}
	lv("call", args...)
}
