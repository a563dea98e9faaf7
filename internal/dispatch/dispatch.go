package dispatch

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/metrics"
	"github.com/htq/htq/internal/store"
)

// Config tunes a dispatcher.
type Config struct {
	ID            string        // consumer name, unique per process
	MaxQueues     int           // queues owned at once
	LeaseTTL      time.Duration // queue lease
	RecoveryGrace time.Duration // added to a task's timeout before recovering its entry
	ShutdownGrace time.Duration // time calls in flight get to finish at shutdown
	PollMin       time.Duration // poll interval right after finding work
	PollMax       time.Duration // poll interval when idle
	History       int           // attempts kept per task
	// YieldAfter is how long an owner keeps a busy queue while other queues
	// wait for a free slot of this dispatcher.
	YieldAfter time.Duration
}

// Dispatcher claims queues and calls their tasks.
type Dispatcher struct {
	cfg      Config
	consumer string // Redis consumer name: the ID plus a nonce of this run
	st       *store.Store
	client   *deliver.Client
	clock    clock.Clock
	log      *slog.Logger
	m        *metrics.Dispatcher

	slots    chan struct{} // one token per owned queue
	wake     chan struct{} // pokes the poller
	hints    chan string
	starved  atomic.Bool // queues are waiting for a slot
	draining atomic.Bool
	running  atomic.Bool
	drainCh  chan struct{} // closed when draining starts

	mu       sync.Mutex
	owned    map[string]*owner
	claiming map[string]bool // claims in progress: never two at once for one queue

	owners sync.WaitGroup
}

// New returns a dispatcher.
func New(cfg Config, st *store.Store, client *deliver.Client, clk clock.Clock, log *slog.Logger, m *metrics.Dispatcher) *Dispatcher {
	if cfg.YieldAfter <= 0 {
		cfg.YieldAfter = time.Second
	}
	m.MaxQueues.Set(float64(cfg.MaxQueues))
	var nonce [4]byte
	_, _ = crand.Read(nonce[:])
	return &Dispatcher{
		cfg: cfg, consumer: cfg.ID + "~" + hex.EncodeToString(nonce[:]),
		st: st, client: client, clock: clk, log: log, m: m,
		slots:    make(chan struct{}, cfg.MaxQueues),
		wake:     make(chan struct{}, 1),
		hints:    make(chan string, 4096),
		owned:    make(map[string]*owner),
		claiming: make(map[string]bool),
		drainCh:  make(chan struct{}),
	}
}

// drainSignal is closed when the dispatcher starts shutting down.
func (d *Dispatcher) drainSignal() <-chan struct{} { return d.drainCh }

// Running reports whether the dispatcher is taking work (for readiness).
func (d *Dispatcher) Running() bool { return d.running.Load() }

// Run dispatches until ctx is cancelled, then shuts down in order: it stops
// claiming, lets calls in flight finish for up to the shutdown grace, aborts
// the rest and releases every queue. It returns when all is handed back.
func (d *Dispatcher) Run(ctx context.Context) error {
	intake, stopIntake := context.WithCancel(context.Background())
	calls, abortCalls := context.WithCancel(context.Background())
	defer abortCalls()
	work, stopWork := context.WithCancel(context.Background())
	defer stopWork()

	var loops sync.WaitGroup
	subscribed := make(chan struct{})
	loops.Go(func() { d.subscribe(intake, subscribed) })
	select { // take work once hints flow (a Redis that is down does not block start)
	case <-subscribed:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	loops.Go(func() { d.handleHints(intake, calls) })
	loops.Go(func() { d.poll(intake, calls) })
	var renewer sync.WaitGroup
	renewer.Go(func() { d.renew(work) })
	d.running.Store(true)
	d.log.Info("dispatcher started", "id", d.cfg.ID, "consumer", d.consumer, "max_queues", d.cfg.MaxQueues)

	<-ctx.Done()
	d.running.Store(false)
	d.draining.Store(true)
	close(d.drainCh)
	stopIntake()
	loops.Wait()
	d.log.Info("dispatcher stopping: finishing calls in flight", "owned_queues", d.ownedCount(), "grace", d.cfg.ShutdownGrace)

	done := make(chan struct{})
	go func() { d.owners.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.cfg.ShutdownGrace):
		d.log.Warn("shutdown grace over: aborting calls in flight", "owned_queues", d.ownedCount())
		abortCalls()
		<-done
	}
	stopWork()
	renewer.Wait()
	d.log.Info("dispatcher stopped")
	return nil
}

func (d *Dispatcher) ownedCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.owned)
}

func (d *Dispatcher) isOwned(q string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.owned[q]
	return ok || d.claiming[q]
}

// subscribe feeds dispatch hints to handleHints. go-redis resubscribes by
// itself after a reconnect; hints lost meanwhile are covered by polling.
func (d *Dispatcher) subscribe(ctx context.Context, subscribed chan<- struct{}) {
	sub := d.st.SubscribeDispatch(ctx)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("subscribe to dispatch hints", "err", err)
	}
	close(subscribed)
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			q, ok := store.HintQueue(msg.Payload)
			if !ok {
				continue
			}
			select {
			case d.hints <- q:
			default: // full: the poller will find it
				d.poke()
			}
		}
	}
}

func (d *Dispatcher) handleHints(intake, calls context.Context) {
	for {
		select {
		case <-intake.Done():
			return
		case q := <-d.hints:
			d.tryClaim(intake, calls, q)
		}
	}
}

func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// poll looks for claimable queues: soon after finding work, then backing
// off (with jitter) to PollMax while there is none.
func (d *Dispatcher) poll(intake, calls context.Context) {
	interval := d.cfg.PollMin
	for {
		jittered := time.Duration(float64(interval) * (0.8 + 0.4*rand.Float64()))
		t := time.NewTimer(jittered)
		select {
		case <-intake.Done():
			t.Stop()
			return
		case <-t.C:
		case <-d.wake:
			t.Stop()
		}
		if d.pollOnce(intake, calls) {
			interval = d.cfg.PollMin
		} else {
			interval = min(interval*2, d.cfg.PollMax)
		}
	}
}

// pollOnce claims ready queues, oldest first, while slots are free. It
// reports whether it claimed any.
func (d *Dispatcher) pollOnce(intake, calls context.Context) bool {
	free := cap(d.slots) - len(d.slots)
	per := min(max(free, 1), 64)
	ready, err := d.st.ReadyQueues(intake, per)
	if err != nil {
		if intake.Err() == nil {
			d.log.Warn("poll ready queues", "err", err)
		}
		return false
	}
	slices.SortFunc(ready, func(a, b store.ReadyQueue) int { return a.Since.Compare(b.Since) })
	claimed, waiting := false, false
	for _, r := range ready {
		if intake.Err() != nil {
			break
		}
		if d.isOwned(r.Queue) {
			continue
		}
		switch d.tryClaim(intake, calls, r.Queue) {
		case claimOK:
			claimed = true
		case claimNoSlot:
			waiting = true
		}
	}
	d.starved.Store(waiting)
	return claimed
}

type claimResult int

const (
	claimOK claimResult = iota
	claimNone
	claimNoSlot
)

// tryClaim claims a queue if a slot is free and starts its owner.
func (d *Dispatcher) tryClaim(intake, calls context.Context, q string) claimResult {
	d.mu.Lock()
	if _, owned := d.owned[q]; owned || d.claiming[q] {
		d.mu.Unlock()
		return claimNone
	}
	select {
	case d.slots <- struct{}{}:
	default:
		d.mu.Unlock()
		d.starved.Store(true)
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
	o := newOwner(d, c, sent)
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
		o.run(calls, c.Deliveries)
	})
	return claimOK
}

// claim runs the claim script. When Redis does not answer, the claim may
// have happened with its reply lost; the script recognises this run's own
// lease and hands its entries back, so claim asks again for as long as a
// lease could last rather than leave the queue leased to nobody who knows.
// It returns the send time of the claim that answered.
func (d *Dispatcher) claim(ctx context.Context, q string) (*store.Claim, time.Time, error) {
	first := d.clock.Now()
	backoff := 50 * time.Millisecond
	for {
		sent := d.clock.Now()
		c, err := d.st.Claim(ctx, q, d.consumer, d.cfg.LeaseTTL, d.cfg.RecoveryGrace, 0)
		if err == nil || ctx.Err() != nil || d.clock.Now().Sub(first) > d.cfg.LeaseTTL {
			return c, sent, err
		}
		if !sleep(ctx, backoff) {
			return nil, sent, err
		}
		backoff = min(backoff*2, time.Second)
	}
}

func (d *Dispatcher) done(o *owner) {
	d.mu.Lock()
	delete(d.owned, o.lease.Queue)
	d.mu.Unlock()
	d.m.OwnedQueues.Dec()
	<-d.slots
	d.poke()
}

// renew extends the leases of owners that have not extended theirs for a
// third of the lease.
func (d *Dispatcher) renew(ctx context.Context) {
	every := d.cfg.LeaseTTL / 3
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		owners := make([]*owner, 0, len(d.owned))
		for _, o := range d.owned {
			owners = append(owners, o)
		}
		d.mu.Unlock()
		for _, o := range owners {
			if d.clock.Now().Sub(o.lastExtend()) < every {
				continue
			}
			sent := d.clock.Now()
			ok, err := d.st.Renew(ctx, o.lease, d.cfg.LeaseTTL)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					d.log.Warn("renew lease", "queue", o.lease.Queue, "err", err)
				}
			case !ok:
				o.lose()
			default:
				o.extended(sent)
			}
		}
	}
}

// String describes the dispatcher for logs.
func (d *Dispatcher) String() string { return fmt.Sprintf("dispatcher %s", d.cfg.ID) }
