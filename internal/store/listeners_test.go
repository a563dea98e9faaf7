package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/store"
)

// published subscribes, as a bystander, to the event channel of queue q's
// partition and returns a function that reports which event types arrived
// within wait of its call (an enqueue's "created" among them or not).
func (e *env) published(q string) func(wait time.Duration) []string {
	e.t.Helper()
	ch := e.s.Keys().EventChannel(e.s.Keys().Queue(q).Partition)
	ps := e.rdb.SSubscribe(e.ctx, ch)
	e.t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(e.ctx); err != nil { // the subscription's confirmation
		e.t.Fatal(err)
	}
	msgs := ps.Channel()
	return func(wait time.Duration) []string {
		var got []string
		deadline := time.After(wait)
		for {
			select {
			case m := <-msgs:
				got = append(got, strings.SplitN(m.Payload, "\n", 2)[0])
			case <-deadline:
				return got
			}
		}
	}
}

// TestEventsArePublishedOnlyWhileSomeoneListens: with no event stream open
// the scripts publish nothing (an SPUBLISH per state change saved); from
// an EventSub's Ready on, every event is published and reaches it; after
// its Close they stop again.
func TestEventsArePublishedOnlyWhileSomeoneListens(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	got := e.published("q")

	e.enqueue("q", time.Time{}, "http://x/1")
	if ev := got(300 * time.Millisecond); len(ev) != 0 {
		t.Fatalf("nobody listens, yet the enqueue published %v", ev)
	}

	sub := e.s.SubscribeEvents(e.ctx, 16)
	select {
	case <-sub.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream never became ready")
	}
	ids := e.enqueue("q", time.Time{}, "http://x/2")
	if ev := got(300 * time.Millisecond); len(ev) != 1 || ev[0] != store.EventCreated {
		t.Fatalf("a stream is open: published %v, want one created", ev)
	}
	select {
	case ev := <-sub.C():
		if ev.Type != store.EventCreated || ev.ID != ids[0] {
			t.Fatalf("the stream got %+v, want created %s", ev, ids[0])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream got no event")
	}

	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := e.rdb.ZCard(e.ctx, e.s.Keys().Listeners()).Result(); err != nil || n != 0 {
		t.Fatalf("after Close %d listeners are registered (%v), want 0", n, err)
	}
	time.Sleep(1500 * time.Millisecond) // a poll of the store
	e.enqueue("q", time.Time{}, "http://x/3")
	if ev := got(300 * time.Millisecond); len(ev) != 0 {
		t.Fatalf("the stream was closed, yet the enqueue published %v", ev)
	}
}

// TestADeadListenerAgesOut: a listener that died without closing keeps
// events published only until its registration expires.
func TestADeadListenerAgesOut(t *testing.T) {
	e := newEnv(t)
	e.queue("q", nil)
	got := e.published("q")
	expiry := time.Now().Add(4 * time.Second)
	if err := e.rdb.ZAdd(e.ctx, e.s.Keys().Listeners(), redis.Z{Score: float64(expiry.UnixMilli()), Member: "dead"}).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a poll of the store
	e.enqueue("q", time.Time{}, "http://x/1")
	if ev := got(300 * time.Millisecond); len(ev) != 1 {
		t.Fatalf("a listener is registered: published %v, want one event", ev)
	}
	time.Sleep(time.Until(expiry) + 1500*time.Millisecond) // expired, and a poll since
	e.enqueue("q", time.Time{}, "http://x/2")
	if ev := got(300 * time.Millisecond); len(ev) != 0 {
		t.Fatalf("the listener's registration ran out, yet the enqueue published %v", ev)
	}
}
