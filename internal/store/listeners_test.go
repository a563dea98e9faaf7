package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/store"
)

// published subscribes, as a bystander, to the event channel of queue q's
// partition and returns a function that reports the types of the events
// published since its last call. It publishes a marker on the channel and
// reads up to it: a script's events reach the subscriber before a command
// sent after the script returned, so no waiting window is needed.
func (e *env) published(q string) func() []string {
	e.t.Helper()
	ch := e.s.Keys().EventChannel(e.s.Keys().Queue(q).Partition)
	ps := e.rdb.SSubscribe(e.ctx, ch)
	e.t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(e.ctx); err != nil { // the subscription's confirmation
		e.t.Fatal(err)
	}
	msgs := ps.Channel()
	const marker = "marker"
	return func() []string {
		e.t.Helper()
		if err := e.rdb.SPublish(e.ctx, ch, marker).Err(); err != nil {
			e.t.Fatal(err)
		}
		var got []string
		for {
			select {
			case m := <-msgs:
				if m.Payload == marker {
					return got
				}
				got = append(got, strings.SplitN(m.Payload, "\n", 2)[0])
			case <-time.After(5 * time.Second):
				e.t.Fatal("the marker never arrived")
			}
		}
	}
}

// publishing waits until the store's answer to "is an event stream open?"
// is want, and returns when that happened.
func (e *env) publishing(want bool, within time.Duration) time.Time {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for store.PublishesEvents(e.s) != want {
		if time.Now().After(deadline) {
			e.t.Fatalf("the store did not see an event stream %s within %v", map[bool]string{true: "open", false: "closed"}[want], within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Now()
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
	if ev := got(); len(ev) != 0 {
		t.Fatalf("nobody listens, yet the enqueue published %v", ev)
	}

	sub := e.s.SubscribeEvents(e.ctx, 16)
	select {
	case <-sub.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream never became ready")
	}
	ids := e.enqueue("q", time.Time{}, "http://x/2")
	if ev := got(); len(ev) != 1 || ev[0] != store.EventCreated {
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
	e.publishing(false, 5*time.Second) // the store's next poll
	e.enqueue("q", time.Time{}, "http://x/3")
	if ev := got(); len(ev) != 0 {
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
	e.publishing(true, 3*time.Second) // the store's next poll
	e.enqueue("q", time.Time{}, "http://x/1")
	if ev := got(); len(ev) != 1 {
		t.Fatalf("a listener is registered: published %v, want one event", ev)
	}
	if stopped := e.publishing(false, time.Until(expiry)+3*time.Second); stopped.Before(expiry) {
		t.Fatalf("events stopped at %v, before the listener's registration ran out at %v", stopped, expiry)
	}
	e.enqueue("q", time.Time{}, "http://x/2")
	if ev := got(); len(ev) != 0 {
		t.Fatalf("the listener's registration ran out, yet the enqueue published %v", ev)
	}
}
