package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Task events cost one SPUBLISH per state change of every task (created,
// started, succeeded, ...): about a tenth of the commands a task costs, spent
// on nobody most of the time. So the scripts publish only while an event
// stream is open somewhere:
//
//   - An open EventSub registers itself in <prefix>listeners (a ZSET of
//     listener id -> expiry, wall-clock ms), renews every listenRenew for
//     listenTTL, and removes itself on Close. A listener that dies without
//     closing ages out after listenTTL.
//   - Every store that runs scripts asks once per listenPoll whether a live
//     listener exists (one ZCOUNT) and runs the loud script variants while
//     one does, the quiet ones otherwise. It asks before its first script,
//     and runs loud while Redis does not answer the question: a missed
//     event is worse than a wasted one.
//   - An EventSub is Ready listenPoll + listenSlack after its registration:
//     by then every store has seen it, so no event published after Ready is
//     missed. A script already sent quiet before a store's poll saw the
//     listener (at most a round trip before it) is older than that.
//
// Expiries are wall-clock on purpose, not the store's injected clock: they
// are compared across processes. Clocks that differ by more than
// listenTTL - listenRenew would make a listener look dead early.
const (
	listenPoll  = time.Second
	listenSlack = 500 * time.Millisecond
	listenRenew = 3 * time.Second
	listenTTL   = 15 * time.Second
)

// listenWatch tells a store whether some event stream is open. It polls
// lazily: only a store that runs scripts starts it.
type listenWatch struct {
	rdb  redis.UniversalClient
	key  string
	loud atomic.Bool

	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

func newListenWatch(rdb redis.UniversalClient, key string) *listenWatch {
	w := &listenWatch{rdb: rdb, key: key, done: make(chan struct{})}
	w.loud.Store(true)
	return w
}

// publishing reports whether the scripts should publish task events now,
// starting the poll on the first call.
func (w *listenWatch) publishing() bool {
	w.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		w.cancel = cancel
		w.check(ctx) // the first answer before the first script
		go w.poll(ctx)
	})
	return w.loud.Load()
}

func (w *listenWatch) poll(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(listenPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.check(ctx)
	}
}

func (w *listenWatch) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, listenPoll)
	defer cancel()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	n, err := w.rdb.ZCount(ctx, w.key, "("+now, "+inf").Result()
	if err != nil {
		if ctx.Err() == nil {
			w.loud.Store(true) // unknown: publish rather than miss
		}
		return
	}
	w.loud.Store(n > 0)
}

// close stops the poll, if it was started.
func (w *listenWatch) close() {
	started := true
	w.once.Do(func() { started = false })
	if started {
		w.cancel()
		<-w.done
	}
}

// variant returns the script variant to run now: loud while an event
// stream is open, quiet otherwise.
func (s *Store) variant(sc *script) *redis.Script {
	if s.listen.publishing() {
		return sc.Script
	}
	return sc.quiet
}

// listener is an EventSub's registration in the listeners set.
type listener struct {
	rdb redis.UniversalClient
	key string
	id  string
}

func newListener(rdb redis.UniversalClient, key string) *listener {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return &listener{rdb: rdb, key: key, id: hex.EncodeToString(b)}
}

// register adds or renews the registration, and drops the registrations
// of listeners that died without closing.
func (l *listener) register(ctx context.Context) error {
	now := time.Now()
	p := l.rdb.Pipeline()
	p.ZAdd(ctx, l.key, redis.Z{Score: float64(now.Add(listenTTL).UnixMilli()), Member: l.id})
	p.ZRemRangeByScore(ctx, l.key, "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
	_, err := p.Exec(ctx)
	return err
}

// keep registers the listener until ctx ends, then unregisters it;
// registered is closed listenPoll + listenSlack after the first successful
// registration (when every store has seen it). Redis errors are retried.
func (l *listener) keep(ctx context.Context, registered chan<- struct{}) {
	first := true
	for {
		wait := listenRenew
		if err := l.register(ctx); err != nil {
			wait = listenPoll
		} else if first {
			first = false
			select {
			case <-ctx.Done():
			case <-time.After(listenPoll + listenSlack):
				close(registered)
			}
			wait = listenRenew - listenPoll - listenSlack
		}
		select {
		case <-ctx.Done():
			uctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = l.rdb.ZRem(uctx, l.key, l.id).Err() // else it ages out
			return
		case <-time.After(wait):
		}
	}
}
