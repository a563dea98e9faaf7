package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/task"
)

// HintKind says what a dispatcher is told.
type HintKind int

// Hint kinds.
const (
	// HintQueue: a queue nobody owns got work (on one of the dispatcher's
	// partitions).
	HintQueue HintKind = iota
	// HintOwned: a queue the dispatcher owns, and said it has room in, got work.
	HintOwned
	// HintMembers: a dispatcher joined or left.
	HintMembers
)

// Hint is one message for a dispatcher.
type Hint struct {
	Kind  HintKind
	Queue string
}

// Hints is a dispatcher's subscription: the shard channels of the
// partitions it is the first choice for (see SetPartitions), its own wake-up
// channel and the membership channel. It hands out typed hints on C and a
// signal on Resync whenever hints may have been lost: a subscription was
// (re)established after a connection loss, or C was full. The subscriber
// then looks at the due index, which covers every lost hint.
type Hints struct {
	st      *Store
	c       chan Hint
	resync  chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	cluster bool

	subscribed chan struct{} // closed once the global channels are subscribed
	once       sync.Once

	mu     sync.Mutex
	global *redis.PubSub         // owner + members channels
	shard  *redis.PubSub         // standalone, sentinel: every shard channel on one connection
	parts  map[int]*redis.PubSub // cluster: one connection per partition (each its own slot)
	wg     sync.WaitGroup
}

// SubscribeHints subscribes a dispatcher's hints; buffer bounds the hints
// waiting on C. Close it when done.
func (s *Store) SubscribeHints(ctx context.Context, consumer string, buffer int) *Hints {
	ctx, cancel := context.WithCancel(ctx)
	_, cluster := s.rdb.(*redis.ClusterClient)
	h := &Hints{
		st: s, c: make(chan Hint, buffer), resync: make(chan struct{}, 1), subscribed: make(chan struct{}),
		ctx: ctx, cancel: cancel, cluster: cluster, parts: make(map[int]*redis.PubSub),
	}
	owner, members := s.keys.OwnerChannel(consumer), s.keys.MembersChannel()
	h.global = s.rdb.Subscribe(ctx, owner, members)
	h.forward(h.global, func(m *redis.Message) (Hint, bool) {
		if m.Channel == members {
			return Hint{Kind: HintMembers}, true
		}
		return Hint{Kind: HintOwned, Queue: m.Payload}, m.Payload != ""
	}, func() { h.once.Do(func() { close(h.subscribed) }) })
	if !cluster {
		h.shard = s.rdb.SSubscribe(ctx)
		h.forward(h.shard, queueHint, nil)
	}
	return h
}

func queueHint(m *redis.Message) (Hint, bool) {
	return Hint{Kind: HintQueue, Queue: m.Payload}, m.Payload != ""
}

// C delivers the hints.
func (h *Hints) C() <-chan Hint { return h.c }

// Resync is signalled when hints may have been lost.
func (h *Hints) Resync() <-chan struct{} { return h.resync }

// Wait waits until the wake-up and membership channels are subscribed (so
// that nothing sent after it is missed), or ctx ends.
func (h *Hints) Wait(ctx context.Context) error {
	select {
	case <-h.subscribed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("subscribe hints: %w", ctx.Err())
	}
}

// SetPartitions subscribes the shard channels of exactly these partitions.
func (h *Hints) SetPartitions(ctx context.Context, parts []int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := make(map[int]bool, len(parts))
	for _, p := range parts {
		want[p] = true
	}
	if h.cluster {
		for p, ps := range h.parts {
			if !want[p] {
				_ = ps.Close()
				delete(h.parts, p)
			}
		}
		for p := range want {
			if _, ok := h.parts[p]; !ok {
				ps := h.st.rdb.SSubscribe(h.ctx, h.st.keys.HintChannel(p))
				h.parts[p] = ps
				h.forward(ps, queueHint, nil)
			}
		}
		return nil
	}
	var add, drop []string
	for p := range task.Partitions {
		_, had := h.parts[p]
		switch {
		case want[p] && !had:
			add = append(add, h.st.keys.HintChannel(p))
			h.parts[p] = nil
		case !want[p] && had:
			drop = append(drop, h.st.keys.HintChannel(p))
			delete(h.parts, p)
		}
	}
	if len(drop) > 0 {
		if err := h.shard.SUnsubscribe(ctx, drop...); err != nil {
			return fmt.Errorf("unsubscribe hints: %w", err)
		}
	}
	if len(add) > 0 {
		if err := h.shard.SSubscribe(ctx, add...); err != nil {
			return fmt.Errorf("subscribe hints: %w", err)
		}
	}
	return nil
}

// Partitions returns the partitions whose hints are subscribed, sorted.
func (h *Hints) Partitions() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int, 0, len(h.parts))
	for p := range h.parts {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// forward is the one loop that reads a subscription: messages become hints,
// (re)subscriptions a resync. go-redis reconnects and resubscribes by
// itself.
func (h *Hints) forward(ps *redis.PubSub, decode func(*redis.Message) (Hint, bool), onSubscribed func()) {
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(256))
	h.wg.Go(func() {
		for {
			select {
			case <-h.ctx.Done():
				return
			case v, ok := <-ch:
				if !ok {
					return
				}
				switch m := v.(type) {
				case *redis.Message:
					hint, ok := decode(m)
					if !ok {
						continue
					}
					select {
					case h.c <- hint:
					default:
						h.signalResync() // full: the due index has it
					}
				case *redis.Subscription:
					if strings.HasSuffix(m.Kind, "subscribe") && !strings.HasSuffix(m.Kind, "unsubscribe") {
						if onSubscribed != nil {
							onSubscribed()
						}
						h.signalResync()
					}
				}
			}
		}
	})
}

func (h *Hints) signalResync() {
	select {
	case h.resync <- struct{}{}:
	default:
	}
}

// Close ends the subscription and waits for its loops.
func (h *Hints) Close() error {
	h.cancel()
	h.mu.Lock()
	err := h.global.Close()
	if h.shard != nil {
		_ = h.shard.Close()
	}
	for _, ps := range h.parts {
		if ps != nil {
			_ = ps.Close()
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
	if err != nil {
		return fmt.Errorf("close hints: %w", err)
	}
	return nil
}

// ScheduleHint says a partition's earliest due time moved earlier: of its
// timer index (Kind DueTimers) or of its schedule index (DueSchedules).
type ScheduleHint struct {
	Partition int
	Due       time.Time
	Kind      DueKind
}

// ScheduleHints is a scheduler's subscription to earlier due times.
type ScheduleHints struct {
	ps         *redis.PubSub
	c          chan ScheduleHint
	subscribed chan struct{}
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// SubscribeSchedule subscribes to the hints that a partition's earliest due
// time moved earlier. Close it when done.
func (s *Store) SubscribeSchedule(ctx context.Context, buffer int) *ScheduleHints {
	ctx, cancel := context.WithCancel(ctx)
	sh := &ScheduleHints{
		ps: s.rdb.Subscribe(ctx, s.keys.ScheduleChannel()), c: make(chan ScheduleHint, buffer),
		subscribed: make(chan struct{}), cancel: cancel,
	}
	ch := sh.ps.ChannelWithSubscriptions(redis.WithChannelSize(256))
	var once sync.Once
	sh.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case v, ok := <-ch:
				if !ok {
					return
				}
				switch m := v.(type) {
				case *redis.Subscription:
					once.Do(func() { close(sh.subscribed) })
				case *redis.Message:
					kind, payload := DueTimers, m.Payload
					if rest, ok := strings.CutPrefix(payload, "r"); ok {
						kind, payload = DueSchedules, rest
					}
					if p, due, ok := ParseScheduleHint(payload); ok {
						select {
						case sh.c <- ScheduleHint{Partition: p, Due: due, Kind: kind}:
						default: // the due index has it
						}
					}
				}
			}
		}
	})
	return sh
}

// C delivers the hints.
func (sh *ScheduleHints) C() <-chan ScheduleHint { return sh.c }

// Wait waits until the subscription is confirmed, or ctx ends.
func (sh *ScheduleHints) Wait(ctx context.Context) error {
	select {
	case <-sh.subscribed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("subscribe schedule hints: %w", ctx.Err())
	}
}

// Close ends the subscription and waits for its loop.
func (sh *ScheduleHints) Close() error {
	sh.cancel()
	err := sh.ps.Close()
	sh.wg.Wait()
	if err != nil {
		return fmt.Errorf("close schedule hints: %w", err)
	}
	return nil
}

// ParseScheduleHint reads "<partition>:<due ms>" (a schedule index's hint
// has an "r" before it, which the subscription strips).
func ParseScheduleHint(payload string) (partition int, due time.Time, ok bool) {
	ps, ds, found := strings.Cut(payload, ":")
	if !found {
		return 0, time.Time{}, false
	}
	p, err1 := strconv.Atoi(ps)
	d, err2 := strconv.ParseInt(ds, 10, 64)
	if err1 != nil || err2 != nil || p < 0 || p >= task.Partitions {
		return 0, time.Time{}, false
	}
	return p, clock.FromMillis(d), true
}
