package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/htq/htq/internal/clock"
	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/dispatch"
	"github.com/htq/htq/internal/store"
)

// slowLink adds a round-trip time to every command and pipeline a client
// sends (not to the messages its subscriptions receive), and records the
// most claim scripts one request carried.
type slowLink struct {
	rtt    time.Duration
	claims map[string]bool // the claim script's SHA-1s (both variants)
	mu     sync.Mutex
	most   int
}

func newSlowLink(t *testing.T, rtt time.Duration) *slowLink {
	names, err := store.ScriptNames()
	if err != nil {
		t.Fatal(err)
	}
	l := &slowLink{rtt: rtt, claims: map[string]bool{}}
	for sha, name := range names {
		if name == "claim" {
			l.claims[sha] = true
		}
	}
	return l
}

// note records a request of cmds.
func (l *slowLink) note(cmds ...redis.Cmder) {
	n := 0
	for _, c := range cmds {
		if a := c.Args(); len(a) > 1 && a[0] == "evalsha" && l.claims[fmt.Sprint(a[1])] {
			n++
		}
	}
	l.mu.Lock()
	l.most = max(l.most, n)
	l.mu.Unlock()
}

func (l *slowLink) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *slowLink) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.note(cmd)
		time.Sleep(l.rtt)
		return next(ctx, cmd)
	}
}

func (l *slowLink) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		l.note(cmds...)
		time.Sleep(l.rtt)
		return next(ctx, cmds)
	}
}

// TestABurstOfWakeUpsIsClaimedAtOnce: many idle queues that get work at one
// instant (schedules firing together) are claimed concurrently, their
// claims sharing round trips: over a link with a 25 ms round trip, the 60
// claims of 60 wake-ups travel in a few requests, many to a request (one
// each if they were made one after another, which would take 1.5 s).
func TestABurstOfWakeUpsIsClaimedAtOnce(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	const n, rtt = 60, 25 * time.Millisecond // n within the slots (MaxQueues 64)
	e.queues(n)
	rdb := e.srv.Client(t)
	link := newSlowLink(t, rtt)
	rdb.AddHook(link)
	st, err := store.New(rdb, "htq:", clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	r := e.dispatcherOn("a", st, e.client(deliver.Options{}), func(c *dispatch.Config) { c.PollMax = 10 * time.Second })
	e.waitRegistered(1)
	e.waitHintsHeard()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		q := fmt.Sprintf("q%d", i)
		wg.Go(func() { e.push(q, rc.url(q, 0)) })
	}
	wg.Wait()
	waitFor(t, "every call", 5*time.Second, func() bool { return rc.count() == n })
	link.mu.Lock()
	most := link.most
	link.mu.Unlock()
	if most < n/6 {
		t.Fatalf("at most %d of %d claims in one request: claimed one after another", most, n)
	}
	t.Logf("%d wake-ups called in %v, up to %d claims a request", n, time.Since(start), most)
	// The burst's claimers end but the few kept for the next hint.
	waitFor(t, "the claimers to end", 5*time.Second, func() bool { return dispatch.ClaimersRunning(r.d) <= 4 })
}

// TestWakeUpsOneAfterAnotherReuseAClaimer: a hinted queue is claimed on a
// goroutine that stays for the next hint, so wake-ups that come one at a
// time (the normal shape of idle-queue traffic) need one claimer, not one
// new goroutine (and its stack growth) each.
func TestWakeUpsOneAfterAnotherReuseAClaimer(t *testing.T) {
	e := newEnv(t)
	rc := newRecorder(t)
	const n = 20
	e.queues(n)
	r := e.dispatcher("a", func(c *dispatch.Config) { c.PollMax = 10 * time.Second })
	e.waitRegistered(1)
	e.waitHintsHeard()
	for i := range n {
		q := fmt.Sprintf("q%d", i)
		e.push(q, rc.url(q, 0))
		waitFor(t, "the call of "+q, 5*time.Second, func() bool { return rc.count() == i+1 })
	}
	// A claimer may still be on its way back to wait when the next hint
	// comes: then a second one starts. Without reuse there would be n.
	if got := dispatch.ClaimersStarted(r.d); got < 1 || got > 3 {
		t.Fatalf("%d claimers started for %d wake-ups one after another", got, n)
	}
}
