package dispatch

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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
	LeaseTTL      time.Duration // queue lease, and the dispatcher's heartbeat
	RecoveryGrace time.Duration // added to a call's deadline before recovering its entry
	ShutdownGrace time.Duration // time calls in flight get to finish at shutdown
	PollMin       time.Duration // least time between two looks at the due index
	PollMax       time.Duration // most time between two looks at the due index (the safety net)
	History       int           // attempts kept per task
	// The settings below have no configuration key: 0 means their default.

	// YieldAfter is how long an owner keeps a busy queue while other queues
	// wait for a free slot anywhere in the cluster (0: DefaultYieldAfter).
	YieldAfter time.Duration
	// FallbackDelay is how long a partition's work may wait for its first
	// choice of dispatcher before the second choice takes it (twice as long
	// for the third, and so on; 0: DefaultFallbackDelay).
	FallbackDelay time.Duration
	// RateYieldAfter: an owner with nothing in flight that must wait longer
	// than this for a rate token hands the queue back until then, freeing
	// its slot (0: DefaultRateYieldAfter).
	RateYieldAfter time.Duration
}

// ErrConfig wraps every error of Config.Validate.
var ErrConfig = errors.New("invalid dispatcher configuration")

// Validate refuses a configuration the dispatcher cannot run with. The
// configured settings have no fallback here: their defaults live in
// internal/config, which checks them with the keys' names first.
func (c *Config) Validate() error {
	bad := func(field string, v any, rule string) error {
		return fmt.Errorf("%w: %s %v: %s", ErrConfig, field, v, rule)
	}
	switch {
	case c.ID == "":
		return bad("ID", `""`, "want a consumer name")
	case c.MaxQueues < 1:
		return bad("MaxQueues", c.MaxQueues, "want at least 1")
	case c.LeaseTTL <= 0:
		return bad("LeaseTTL", c.LeaseTTL, "want more than 0")
	case c.RecoveryGrace < 0:
		return bad("RecoveryGrace", c.RecoveryGrace, "want 0 or more")
	case c.ShutdownGrace < 0:
		return bad("ShutdownGrace", c.ShutdownGrace, "want 0 or more")
	case c.PollMin <= 0:
		return bad("PollMin", c.PollMin, "want more than 0")
	case c.PollMax < c.PollMin:
		return bad("PollMax", c.PollMax, "want at least PollMin")
	case c.History < 0:
		return bad("History", c.History, "want 0 or more")
	case c.YieldAfter < 0:
		return bad("YieldAfter", c.YieldAfter, "want 0 (the default) or more")
	case c.FallbackDelay < 0:
		return bad("FallbackDelay", c.FallbackDelay, "want 0 (the default) or more")
	case c.RateYieldAfter < 0:
		return bad("RateYieldAfter", c.RateYieldAfter, "want 0 (the default) or more")
	}
	return nil
}

// Defaults of the settings that have no configuration key.
const (
	DefaultYieldAfter     = time.Second
	DefaultFallbackDelay  = 500 * time.Millisecond
	DefaultRateYieldAfter = time.Second
)

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
	route    atomic.Pointer[routing]
	poke     chan struct{} // asks the poller for a look at the due index now
	members  chan struct{} // asks the membership loop for a heartbeat now
	starved  atomic.Bool   // a queue has waited for a slot longer than everyone's fallback
	waiting  atomic.Bool   // this dispatcher left work for lack of a slot
	draining atomic.Bool
	running  atomic.Bool
	drainCh  chan struct{} // closed when draining starts

	// lookAhead: hints may have been lost; the next poll also takes its
	// first-choice partitions' queues within store.HintGrace.
	lookAhead atomic.Bool
	// claimers counts the goroutines that claim hinted queues (intake.go).
	claimers struct {
		running, idle atomic.Int32
		started       atomic.Int64 // in all, for tests
	}

	// wrap, when set (by tests, before Run), wraps every owner's writer.
	wrap func(queueWriter) queueWriter

	mu       sync.Mutex
	owned    map[string]*owner
	claiming map[string]bool // claims in progress: never two at once for one queue

	owners sync.WaitGroup
}

// New returns a dispatcher, or an error when cfg does not validate.
func New(cfg Config, st *store.Store, client *deliver.Client, clk clock.Clock, log *slog.Logger, m *metrics.Dispatcher) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.YieldAfter == 0 {
		cfg.YieldAfter = DefaultYieldAfter
	}
	if cfg.FallbackDelay == 0 {
		cfg.FallbackDelay = DefaultFallbackDelay
	}
	if cfg.RateYieldAfter == 0 {
		cfg.RateYieldAfter = DefaultRateYieldAfter
	}
	m.MaxQueues.Set(float64(cfg.MaxQueues))
	var nonce [4]byte
	_, _ = crand.Read(nonce[:])
	d := &Dispatcher{
		cfg: cfg, consumer: cfg.ID + "~" + hex.EncodeToString(nonce[:]),
		st: st, client: client, clock: clk, log: log, m: m,
		slots:    make(chan struct{}, cfg.MaxQueues),
		poke:     make(chan struct{}, 1),
		members:  make(chan struct{}, 1),
		owned:    make(map[string]*owner),
		claiming: make(map[string]bool),
		drainCh:  make(chan struct{}),
	}
	// Until the first heartbeat says who else is there, this dispatcher acts
	// on every partition (and subscribes none: the first heartbeat does).
	d.route.Store(&routing{})
	return d, nil
}

// Consumer returns the dispatcher's consumer name (its ID and a nonce).
func (d *Dispatcher) Consumer() string { return d.consumer }

// Running reports whether the dispatcher is taking work (for readiness).
func (d *Dispatcher) Running() bool { return d.running.Load() }

// Run dispatches until ctx is cancelled, then shuts down in order: it
// leaves the membership (others take its partitions), stops claiming, lets
// calls in flight finish for up to the shutdown grace, aborts the rest and
// releases every queue. It returns when all is handed back.
func (d *Dispatcher) Run(ctx context.Context) error {
	intake, stopIntake := context.WithCancel(context.Background())
	defer stopIntake()
	calls, abortCalls := context.WithCancel(context.Background())
	defer abortCalls()
	work, stopWork := context.WithCancel(context.Background())
	defer stopWork()

	hints := d.st.SubscribeHints(work, d.consumer, 4096)
	defer hints.Close()
	waitCtx, cancelWait := context.WithTimeout(ctx, 5*time.Second)
	if err := hints.Wait(waitCtx); err != nil && ctx.Err() == nil { // Redis is down: the poll covers
		d.log.Warn("subscribe to hints", "err", err)
	}
	cancelWait()

	var loops sync.WaitGroup
	loops.Go(func() { d.membership(intake, hints) })
	loops.Go(func() { d.handleHints(intake, calls, hints) })
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
	d.leave()
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

func (d *Dispatcher) ownerOf(q string) *owner {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.owned[q]
}

func (d *Dispatcher) freeSlots() int { return cap(d.slots) - len(d.slots) }

func (d *Dispatcher) pokePoller() {
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// renew extends, in one pipeline, the leases of the owners that have not
// extended theirs for a third of the lease (a busy owner extends its lease
// with every completion and needs none).
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
		now := d.clock.Now()
		d.mu.Lock()
		var due []*owner
		for _, o := range d.owned {
			if now.Sub(o.valid.LastExtended()) >= every && !o.valid.Lost() {
				due = append(due, o)
			}
		}
		d.mu.Unlock()
		if len(due) == 0 {
			continue
		}
		held := make([]*store.Owned, len(due))
		for i, o := range due {
			held[i] = o.held
		}
		sent := d.clock.Now()
		for i, r := range d.st.RenewAll(ctx, held) {
			o := due[i]
			switch {
			case r.Err != nil:
				if ctx.Err() == nil {
					d.log.Warn("renew lease", "queue", o.queue(), "err", r.Err)
				}
			case !r.Held:
				o.lose()
			default:
				o.valid.Extended(sent)
			}
		}
	}
}

// String describes the dispatcher for logs.
func (d *Dispatcher) String() string { return fmt.Sprintf("dispatcher %s", d.cfg.ID) }
