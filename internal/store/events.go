package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/task"
)

// Task event types, published by the scripts where a task changes state
// (see event() in lua/common.lua).
const (
	EventCreated   = "created"   // enqueue
	EventStarted   = "started"   // handed to a dispatcher for a call
	EventSucceeded = "succeeded" // a call succeeded (also a variable task's call)
	EventFailed    = "failed"    // a call failed; the task will be tried again
	EventDead      = "dead"      // the task became a dead letter
)

// Event is one task event.
type Event struct {
	Type    string
	ID      string
	Queue   string
	Time    time.Time
	Attempt int // started, succeeded, failed, dead; 0 otherwise
	Status  int // last HTTP status of succeeded, failed, dead; 0 when none
}

// parseEvents decodes a payload; a created payload may carry several ids.
func parseEvents(payload string) ([]Event, bool) {
	parts := strings.SplitN(payload, "\n", 6)
	if len(parts) != 6 {
		return nil, false
	}
	ms, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return nil, false
	}
	e := Event{Type: parts[0], Queue: parts[5], Time: clock.FromMillis(ms)}
	e.Attempt, _ = strconv.Atoi(parts[3])
	e.Status, _ = strconv.Atoi(parts[4])
	var out []Event
	for id := range strings.SplitSeq(parts[1], ",") {
		e.ID = id
		out = append(out, e)
	}
	return out, true
}

// EventSub is a subscription to the task events of every partition. Events
// come on C; when C is full an event is dropped and counted (Dropped), so a
// slow reader never holds up Redis or other readers.
type EventSub struct {
	c       chan Event
	ready   chan struct{}
	cancel  context.CancelFunc
	subs    []*redis.PubSub
	wg      sync.WaitGroup
	mu      sync.Mutex
	dropped int64
}

// SubscribeEvents subscribes the event channels of all partitions: one
// connection on a standalone or Sentinel Redis, one per partition on a
// cluster (a shard subscription is per slot). It also registers as a
// listener, without which the scripts publish no events (listeners.go), so
// Ready comes about 1.5 s after the call. Close it when done.
func (s *Store) SubscribeEvents(ctx context.Context, buffer int) *EventSub {
	ctx, cancel := context.WithCancel(ctx)
	es := &EventSub{c: make(chan Event, buffer), ready: make(chan struct{}), cancel: cancel}
	chans := make([]string, task.Partitions)
	for p := range chans {
		chans[p] = s.keys.EventChannel(p)
	}
	var pending sync.WaitGroup
	pending.Add(len(chans))
	if _, cluster := s.rdb.(*redis.ClusterClient); cluster {
		for _, ch := range chans {
			es.forward(ctx, s.rdb.SSubscribe(ctx, ch), &pending)
		}
	} else {
		es.forward(ctx, s.rdb.SSubscribe(ctx, chans...), &pending)
	}
	registered := make(chan struct{})
	l := newListener(s.rdb, s.keys.Listeners())
	es.wg.Go(func() { l.keep(ctx, registered) })
	go func() {
		pending.Wait()
		select {
		case <-registered:
			close(es.ready)
		case <-ctx.Done():
		}
	}()
	return es
}

func (es *EventSub) forward(ctx context.Context, ps *redis.PubSub, pending *sync.WaitGroup) {
	es.subs = append(es.subs, ps)
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
	es.wg.Go(func() {
		confirmed := map[string]bool{}
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
					if m.Kind == "ssubscribe" && !confirmed[m.Channel] {
						confirmed[m.Channel] = true
						pending.Done()
					}
				case *redis.Message:
					evs, ok := parseEvents(m.Payload)
					if !ok {
						continue
					}
					for _, e := range evs {
						select {
						case es.c <- e:
						default:
							es.mu.Lock()
							es.dropped++
							es.mu.Unlock()
						}
					}
				}
			}
		}
	})
}

// C delivers the events.
func (es *EventSub) C() <-chan Event { return es.c }

// Ready is closed once every channel is subscribed and every store
// publishes events: no event after it is missed (unless C overflows).
func (es *EventSub) Ready() <-chan struct{} { return es.ready }

// Dropped returns how many events were dropped because C was full.
func (es *EventSub) Dropped() int64 {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.dropped
}

// Close ends the subscription and waits for its goroutines.
func (es *EventSub) Close() error {
	es.cancel()
	var err error
	for _, ps := range es.subs {
		if e := ps.Close(); e != nil && err == nil {
			err = fmt.Errorf("close event subscription: %w", e)
		}
	}
	es.wg.Wait()
	return err
}
