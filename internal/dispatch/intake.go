package dispatch

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
)

const (
	// hintClaimers bounds the hinted queues claimed at once.
	hintClaimers = 64
	// idleClaimers bounds the claimers kept waiting for the next hint.
	idleClaimers = 4
)

// handleHints acts on what the dispatcher is told: a queue of one of its
// partitions got work (claim it), a queue it owns got work it has room for
// (tell its owner), the dispatchers changed (heartbeat now), hints may have
// been lost (look at the due index).
//
// Hinted queues are claimed concurrently, up to hintClaimers at once, so that
// a burst of wake-ups (many schedules firing at one instant) costs a few
// shared pipelines of claims (store.Claim is grouped), not a round trip
// after another. The claims run on goroutines of which up to idleClaimers
// stay for the next hint (the others end when they are done; all end with
// the intake): a claim needs a deeper stack than a new goroutine has, and
// growing one for every wake-up took a tenth of the dispatcher's CPU on
// idle-queue traffic. (A garbage collection may shrink an idle claimer's
// stack; under steady wake-up traffic, hints come far more often than
// collections.)
//
// A hint waits for a claimer only while hintClaimers run. Then the first
// of them to finish waits for it, unless idleClaimers others already wait,
// one of which takes it: the hint is always taken.
func (d *Dispatcher) handleHints(intake, calls context.Context, hints *store.Hints) {
	var claims sync.WaitGroup
	defer claims.Wait()
	queues := make(chan string) // to an idle claimer
	for {
		select {
		case <-intake.Done():
			return
		case <-hints.Resync():
			// A lost hint's queue is out of the pollers' sight for up to
			// store.HintGrace: look that far ahead.
			d.lookAhead.Store(true)
			d.pokePoller()
		case h := <-hints.C():
			switch h.Kind {
			case store.HintQueue:
				select {
				case queues <- h.Queue: // an idle claimer takes it
				default:
					// Only this loop adds claimers; they may leave meanwhile.
					if d.claimers.running.Load() < hintClaimers {
						d.claimers.running.Add(1)
						d.claimers.started.Add(1)
						claims.Go(func() { d.claimHinted(intake, calls, h.Queue, queues) })
						break
					}
					select {
					case queues <- h.Queue:
					case <-intake.Done():
						return
					}
				}
			case store.HintOwned:
				if o := d.ownerOf(h.Queue); o != nil {
					o.wakeUp()
				}
			case store.HintMembers:
				select {
				case d.members <- struct{}{}:
				default:
				}
			}
		}
	}
}

// claimHinted claims q, then each queue handed to it while it waits, until
// the intake ends or idleClaimers others already wait.
func (d *Dispatcher) claimHinted(intake, calls context.Context, q string, queues <-chan string) {
	defer d.claimers.running.Add(-1)
	for {
		d.onHint(intake, calls, q)
		if d.claimers.idle.Add(1) > idleClaimers {
			d.claimers.idle.Add(-1)
			return
		}
		select {
		case q = <-queues:
			d.claimers.idle.Add(-1)
		case <-intake.Done():
			d.claimers.idle.Add(-1)
			return
		}
	}
}

// onHint claims a queue that got work. When it cannot (no slot, shutting
// down, or its previous owner here is still exiting), it hands the queue
// back to the pollers at once (the hint set it out of their sight for
// store.HintGrace): the next dispatchers in its partition's order find it,
// and this one when a slot frees.
//
// Then it pokes its own poller, which finds the queue handed back (Unhint
// returns once the due index shows it) and records whether work waits for
// a slot (d.waiting, which makes the owner that frees one poke it again).
// Recording that here instead raced with both: an owner that ended between
// the failed claim and the record poked no one, and a look under way, which
// had read the queue still hinted, cleared the record when it ended; the
// queue then waited HintGrace or PollMax beside a free slot.
func (d *Dispatcher) onHint(intake, calls context.Context, q string) {
	res := d.tryClaim(intake, calls, q)
	if res != claimNoSlot && res != claimBusy {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(intake), d.cfg.LeaseTTL)
	defer cancel()
	if err := d.st.Unhint(ctx, q); err != nil {
		// the queue's due entry still covers it, HintGrace later
		d.log.Warn("hand back a hinted queue", "queue", q, "err", err)
	}
	d.pokePoller()
}

// poll looks at the due index of the ready indexes: at once when poked,
// else when the next partition entry it may act on comes due, at most
// PollMax apart. It acts on a partition when it is the partition's first
// choice, or when the partition's entry has been due longer than the
// dispatchers before it in the partition's order had to act.
func (d *Dispatcher) poll(intake, calls context.Context) {
	var last time.Time
	wait := time.Duration(0)
	for {
		t := time.NewTimer(wait)
		select {
		case <-intake.Done():
			t.Stop()
			return
		case <-t.C:
		case <-d.poke:
			t.Stop()
		}
		if since := d.clock.Now().Sub(last); since < d.cfg.PollMin {
			if !sleepCtx(intake, d.cfg.PollMin-since) {
				return
			}
		}
		last = d.clock.Now()
		wait = d.pollOnce(intake, calls)
	}
}

// pollLimit bounds the due partitions one look reads, pollPeek the ones
// after now it reads to know when to look next.
const (
	pollLimit = 256
	pollPeek  = 16
)

// pollOnce acts on the due partitions it may act on and returns how long to
// wait for the next look.
func (d *Dispatcher) pollOnce(intake, calls context.Context) time.Duration {
	var ahead time.Duration
	if d.lookAhead.Swap(false) {
		ahead = store.HintGrace
	}
	due, later, err := d.st.DueAhead(intake, store.DueReady, pollLimit, pollPeek, ahead)
	if err != nil {
		if intake.Err() == nil {
			d.log.Warn("poll due partitions", "err", err)
		}
		return jitter(d.cfg.PollMax)
	}
	r := d.route.Load()
	now := d.clock.Now()
	next := now.Add(jitter(d.cfg.PollMax))
	earlier := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	starved, waiting := false, false
	for _, e := range due {
		if intake.Err() != nil {
			break
		}
		mayAt := e.Time().Add(r.delay(e.Partition, d.cfg.FallbackDelay))
		partAhead := time.Duration(0)
		if now.Before(mayAt) {
			if ahead == 0 || r.delay(e.Partition, d.cfg.FallbackDelay) > 0 {
				earlier(mayAt) // a dispatcher before us has until then
				continue
			}
			partAhead = ahead // ours first: a hint of it may have been lost
		}
		switch d.takePartition(intake, calls, e, partAhead) {
		case partitionNoSlot:
			waiting = true
			// Waited past every dispatcher's turn and past the yield time:
			// the cluster lacks room, owners should take turns.
			if now.Sub(e.Time()) > r.everyone(d.cfg.FallbackDelay)+d.cfg.YieldAfter {
				starved = true
			}
		case partitionError:
			earlier(now.Add(d.cfg.PollMax / 4))
		}
	}
	for _, e := range later {
		earlier(e.Time().Add(r.delay(e.Partition, d.cfg.FallbackDelay)))
	}
	if len(due) == pollLimit {
		earlier(now) // more are due than one look reads
	}
	d.starved.Store(starved)
	d.waiting.Store(waiting)
	if waiting {
		if d.freeSlots() == 0 {
			// Nothing to do until a slot frees (which pokes the poller).
			return d.cfg.PollMax
		}
		// A slot freed during this look, maybe before the owner that
		// freed it could see waiting: look again.
		return 0
	}
	return max(0, next.Sub(d.clock.Now()))
}

type partitionResult int

const (
	partitionDone partitionResult = iota
	partitionNoSlot
	partitionError
)

// takePartition claims a due partition's claimable queues (those due by
// ahead from now), oldest first, while slots are free, then settles the
// partition's due entry.
func (d *Dispatcher) takePartition(intake, calls context.Context, e store.DueEntry, ahead time.Duration) partitionResult {
	free := d.freeSlots()
	if free == 0 {
		return partitionNoSlot
	}
	ready, err := d.st.ReadyIn(intake, e.Partition, min(free+8, 64), ahead)
	if err != nil {
		if intake.Err() == nil {
			d.log.Warn("read ready queues", "partition", e.Partition, "err", err)
		}
		return partitionError
	}
	slices.SortFunc(ready, func(a, b store.ReadyQueue) int { return a.Since.Compare(b.Since) })
	res := partitionDone
	for _, rq := range ready {
		if intake.Err() != nil {
			return partitionError
		}
		if d.ownerOf(rq.Queue) != nil {
			continue
		}
		if d.tryClaim(intake, calls, rq.Queue) == claimNoSlot {
			res = partitionNoSlot
			break
		}
	}
	if err := d.st.Settle(intake, store.DueReady, e.Partition, e.At); err != nil {
		if intake.Err() == nil {
			d.log.Warn("settle due partition", "partition", e.Partition, "err", err)
		}
		return partitionError
	}
	return res
}

type claimResult int

const (
	claimOK     claimResult = iota
	claimNone               // claimed and found nothing to do, or Redis failed
	claimNoSlot             // no free slot
	claimBusy               // this dispatcher owns or is claiming the queue, or is shutting down
)

// tryClaim claims a queue if a slot is free and starts its owner.
func (d *Dispatcher) tryClaim(intake, calls context.Context, q string) claimResult {
	d.mu.Lock()
	if _, owned := d.owned[q]; owned || d.claiming[q] || d.draining.Load() {
		d.mu.Unlock()
		return claimBusy
	}
	select {
	case d.slots <- struct{}{}:
	default:
		d.mu.Unlock()
		return claimNoSlot
	}
	d.claiming[q] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.claiming, q)
		d.mu.Unlock()
	}()
	c, sent, err := d.claim(intake, q)
	if err != nil {
		<-d.slots
		if intake.Err() == nil {
			d.log.Warn("claim", "queue", q, "err", err)
		}
		return claimNone
	}
	d.m.Claims.WithLabelValues(string(c.Status)).Inc()
	if c.Status != store.ClaimOK {
		<-d.slots
		return claimNone
	}
	o := d.newOwner(c, sent)
	d.mu.Lock()
	d.owned[q] = o
	d.mu.Unlock()
	d.m.OwnedQueues.Inc()
	event := metrics.LeaseTaken
	for _, dl := range c.Deliveries {
		if dl.Attempt > 1 && dl.Since.IsZero() {
			event = metrics.LeaseTakeover
		}
	}
	d.m.Leases.WithLabelValues(event).Inc()
	d.owners.Go(func() {
		defer d.done(o)
		o.run(calls, c.Deliveries, sent)
	})
	return claimOK
}

// claim runs the claim script. When Redis does not answer, the claim may
// have happened with its reply lost; the script recognises this run's own
// lease and hands its entries back, so claim asks again for as long as a
// lease could last rather than leave the queue leased to nobody who knows.
// It returns the send time of the claim that answered: the lease, and the
// deliveries' deadlines, count from no later than that.
func (d *Dispatcher) claim(ctx context.Context, q string) (*store.Claim, time.Time, error) {
	first := d.clock.Now()
	backoff := 50 * time.Millisecond
	opt := store.ClaimOptions{
		TTL: d.cfg.LeaseTTL, Grace: d.cfg.RecoveryGrace,
		WakeChannel: d.st.Keys().OwnerChannel(d.consumer),
	}
	for {
		sent := d.clock.Now()
		c, err := d.st.Claim(ctx, q, d.consumer, opt)
		if err == nil || ctx.Err() != nil || d.clock.Now().Sub(first) > d.cfg.LeaseTTL {
			return c, sent, err
		}
		if !sleepCtx(ctx, backoff) {
			return nil, sent, err
		}
		backoff = min(backoff*2, time.Second)
	}
}

// done frees an owner's slot; when queues wait for one, the poller looks
// for them at once (and only then: an owner's exit costs no poll).
func (d *Dispatcher) done(o *owner) {
	d.mu.Lock()
	delete(d.owned, o.queue())
	d.mu.Unlock()
	d.m.OwnedQueues.Dec()
	<-d.slots
	if d.waiting.Load() {
		d.pokePoller()
	}
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
